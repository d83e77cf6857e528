/*
 * tls_client: the outbound SSL_CTX and the loading of DANE state into an SSL.
 *
 * OpenSSL does all TLSA matching (RFC 6698 §2.1, RFC 7671) and name checks;
 * this file feeds it what RFC 7672 §3 asks for and reads the results back.
 * Verification never aborts the handshake (SSL_VERIFY_NONE): the caller
 * completes it, reads tls_verify_result() and lets the dane layer classify
 * the failure, so a report can say what went wrong instead of "handshake
 * failed".
 */
#include "tls/tls_client.h"

#include <stdbool.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "core/str.h"

/* The digests of the TLSA matching types (RFC 6698 §7.3, IANA registry). */
static const struct {
	const char *name;
	uint8_t mtype;
	const EVP_MD *(*md)(void);
} tls_digests[] = {
	{ "sha256", 1, EVP_sha256 },
	{ "sha512", 2, EVP_sha512 },
};

#define TLS_NDIGESTS (sizeof(tls_digests) / sizeof(tls_digests[0]))

/* Index of digest name in tls_digests[], or -1 when unknown. */
static int
tls_digest_find(const char *name)
{
	size_t i;

	for (i = 0; i < TLS_NDIGESTS; i++)
		if (str_eq_ci(name, tls_digests[i].name))
			return (int)i;
	return -1;
}

/*
 * RFC 7671 §9 digest agility: OpenSSL prefers the matching type with the
 * highest ordinal, so the first (most preferred) name gets the highest.
 * A digest missing from the list is disabled: SSL_CTX_dane_mtype_set(3)
 * with a NULL md makes records of that matching type unusable.
 */
static int
tls_set_digests(SSL_CTX *ctx, char **digests, const char **errstr)
{
	bool listed[TLS_NDIGESTS] = { false };
	size_t i, n;
	int d;

	for (n = 0; digests[n] != NULL; n++)
		;
	if (n == 0) {
		*errstr = "empty digest list";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((d = tls_digest_find(digests[i])) == -1) {
			*errstr = "unknown digest (known: sha256, sha512)";
			return -1;
		}
		if (listed[d]) {
			*errstr = "digest listed twice";
			return -1;
		}
		listed[d] = true;
		/* n <= TLS_NDIGESTS: each known name appears at most once. */
		if (SSL_CTX_dane_mtype_set(ctx, tls_digests[d].md(),
		        tls_digests[d].mtype, (uint8_t)(n - i)) <= 0)
			goto fail;
	}
	for (i = 0; i < TLS_NDIGESTS; i++) {
		if (!listed[i] &&
		    SSL_CTX_dane_mtype_set(
		        ctx, NULL, tls_digests[i].mtype, 0) <= 0)
			goto fail;
	}
	return 0;
fail:
	ERR_clear_error();
	*errstr = "cannot set the DANE digest order";
	return -1;
}

SSL_CTX *
tls_client_ctx_new(char **digests, const char **errstr)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		ERR_clear_error();
		*errstr = "cannot create the TLS client context";
		return NULL;
	}
	/*
	 * TLS 1.2 at least, in code, whatever the system policy allows
	 * (RFC 8996: TLS 1.0 and 1.1 are deprecated; RFC 8461 §7.2 and
	 * RFC 7525 for MTA-STS). The system may still raise the floor,
	 * never lower it.
	 */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		*errstr = "cannot set the TLS protocol floor";
		return NULL;
	}
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		*errstr = "cannot enable DANE in the TLS client context";
		return NULL;
	}
	if (digests != NULL && tls_set_digests(ctx, digests, errstr) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Idle connections (waiting for mail, or for a slow server) give
	 * their 16 KiB record buffers back (docs/PERFORMANCE.md). */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/*
 * Copy name without a trailing dot into out (RFC 6066 §3: SNI has none; a
 * certificate's names have none either). -1 when empty or too long.
 */
static int
tls_host_copy(const char *name, char *out, size_t outsz)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n >= outsz)
		return -1;
	memcpy(out, name, n);
	out[n] = '\0';
	return 0;
}

/* SNI, reference identifiers and the RFC 7672 §3.2 name-check flags. */
static int
tls_dane_names(
    SSL *ssl, const char *base_domain, char **names, const char **errstr)
{
	char host[256];
	size_t i;

	if (tls_host_copy(base_domain, host, sizeof(host)) == -1) {
		*errstr = "bad TLSA base domain";
		return -1;
	}
	/* §8.1: SNI is the TLSA base domain. */
	if (SSL_set_tlsext_host_name(ssl, host) != 1 ||
	    SSL_dane_enable(ssl, host) <= 0) {
		*errstr = "cannot enable DANE on the connection";
		return -1;
	}
	/* §3.2.1: DANE-EE binds the key by DNS alone, so no name checks. */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	/* §3.2.3: "*.example.com" yes, "smtp*.example.com" no. */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	for (i = 0; names != NULL && names[i] != NULL; i++) {
		/* §3.2.2: more reference identifiers (next-hop domain...). */
		if (tls_host_copy(names[i], host, sizeof(host)) == -1 ||
		    SSL_add1_host(ssl, host) != 1) {
			*errstr = "bad reference identifier";
			return -1;
		}
	}
	return 0;
}

int
tls_dane_setup(SSL *ssl, const char *base_domain, char **names,
    const struct tls_tlsa *recs, size_t n, const char **errstr)
{
	size_t i;
	int r, usable = 0;

	if (tls_dane_names(ssl, base_domain, names, errstr) == -1)
		goto fail;
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	for (i = 0; i < n; i++) {
		/* §3.1.3: PKIX-TA(0)/PKIX-EE(1) are unusable for SMTP. */
		if (recs[i].usage != 2 && recs[i].usage != 3)
			continue;
		r = SSL_dane_tlsa_add(ssl, recs[i].usage, recs[i].selector,
		    recs[i].mtype, recs[i].data, recs[i].len);
		if (r < 0) {
			*errstr = "cannot add a TLSA record";
			goto fail;
		}
		/* 0: unusable (unknown selector/mtype, bad digest length). */
		if (r == 0)
			ERR_clear_error();
		else
			usable++;
	}
	return usable;
fail:
	ERR_clear_error();
	return -1;
}

void
tls_plain_setup(SSL *ssl, const char *sni)
{
	unsigned char bin[16];
	char host[256];

	/* RFC 6066 §3: no IP address literals in server_name. */
	if (sni != NULL &&
	    (inet_pton(AF_INET, sni, bin) == 1 ||
	        inet_pton(AF_INET6, sni, bin) == 1))
		sni = NULL;
	if (sni != NULL && tls_host_copy(sni, host, sizeof(host)) == 0 &&
	    SSL_set_tlsext_host_name(ssl, host) != 1)
		ERR_clear_error();
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
}

long
tls_verify_result(const SSL *ssl)
{
	/*
	 * OpenSSL reports X509_V_OK when nothing was verified at all; a DANE
	 * client must not take "no certificate" for success.
	 */
	if (SSL_get0_peer_certificate(ssl) == NULL)
		return X509_V_ERR_UNSPECIFIED;
	return SSL_get_verify_result(ssl);
}

const char *
tls_verify_error_str(long err)
{
	return X509_verify_cert_error_string(err);
}

int
tls_dane_matched(SSL *ssl, uint8_t *usage, uint8_t *selector, uint8_t *mtype)
{
	return SSL_get0_dane_tlsa(ssl, usage, selector, mtype, NULL, NULL);
}

const char *
tls_peername(SSL *ssl)
{
	return SSL_get0_peername(ssl);
}

const char *
tls_version_str(const SSL *ssl)
{
	return SSL_get_version(ssl);
}

const char *
tls_cipher_str(const SSL *ssl)
{
	return SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
}

const char *
tls_error_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "no OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

int
tls_client_ctx_load_ca(SSL_CTX *ctx, const char *ca_file, const char **errstr)
{
	int ok = ca_file != NULL ?
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx);

	if (ok != 1) {
		ERR_clear_error();
		*errstr = ca_file != NULL ? "cannot load the CA file" :
		                            "cannot load the system CA store";
		return -1;
	}
	return 0;
}

void
tls_pkix_setup(SSL *ssl, const char *host)
{
	tls_plain_setup(ssl, host);
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(ssl, host) != 1)
		ERR_clear_error();
}
