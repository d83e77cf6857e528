/*
 * tls_client: the outbound TLS context and the loading of DANE state into
 * OpenSSL. OpenSSL's DANE API does the TLSA matching (RFC 6698 §2.1,
 * RFC 7671); this file only feeds it the records, the reference names and
 * the flags RFC 7672 §3 requires, and reads the result back.
 */
#ifndef DR_TLS_CLIENT_H
#define DR_TLS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* One TLSA record as found in DNS (borrowed data). */
struct tls_tlsa {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	const uint8_t *data;
	size_t len;
};

/*
 * Client SSL_CTX for SMTP: DANE enabled, digest agility order from digests
 * (NULL-terminated, most preferred first: {"sha512", "sha256", NULL}; RFC
 * 7671 §9: when records of the same usage and selector use different
 * digests, only those with the most preferred digest are used). Known
 * names: sha256 (matching type 1), sha512 (2), case-insensitive. A digest
 * left out of the list is disabled: its records become unusable. digests
 * NULL keeps OpenSSL's order (sha512, then sha256). An empty list, an
 * unknown or a repeated name is an error. The protocol floor is TLS 1.2
 * (set here, not left to the system policy); peer verification is off at the
 * context level (see tls_dane_setup). Returns new (SSL_CTX_free), or NULL with
 * *errstr (static).
 */
SSL_CTX *tls_client_ctx_new(char **digests, const char **errstr);

/*
 * Prepare ssl for a DANE-authenticated handshake:
 *  - SNI and first reference identifier = base_domain (RFC 7672 §8.1, §3.2.2),
 *  - further reference identifiers from names (NULL-terminated, may be NULL),
 *  - no partial wildcards (RFC 7672 §3.2.3), DANE-EE without name checks
 *    (§3.2.1, DANE_FLAG_NO_DANE_EE_NAMECHECKS),
 *  - the records; usages other than DANE-TA(2)/DANE-EE(3) are skipped
 *    (§3.1.3), and so are records OpenSSL finds unusable (unknown selector
 *    or matching type, disabled digest, wrong digest length, Full(0) data
 *    that does not parse).
 * Names may carry one trailing dot (dropped). Verification does not abort
 * the handshake (SSL_VERIFY_NONE): read tls_verify_*() after it. Call once
 * per ssl, before the handshake. recs are copied. When 0 records are usable
 * nothing will be authenticated: the caller decides (RFC 7672 §2.2, TLS
 * without authentication). Returns the number of usable records loaded, or
 * -1 with *errstr (static) on a bad name or an OpenSSL error. The OpenSSL
 * error queue is left empty.
 */
int tls_dane_setup(SSL *ssl, const char *base_domain, char **names,
    const struct tls_tlsa *recs, size_t n, const char **errstr);

/*
 * Prepare ssl for unauthenticated TLS with SNI (may be NULL; one trailing
 * dot dropped; a bad name is silently not sent).
 */
void tls_plain_setup(SSL *ssl, const char *sni);

/*
 * Trust anchors for PKIX validation (MTA-STS, RFC 8461 §4.2): ca_file (PEM
 * bundle) or, when NULL, the system's default store. Returns 0, or -1
 * with *errstr (static).
 */
int tls_client_ctx_load_ca(
    SSL_CTX *ctx, const char *ca_file, const char **errstr);

/*
 * Prepare ssl for PKIX validation of host (RFC 8461 §4.2, RFC 6125 name
 * checks, no partial wildcards): SNI = host, reference name = host. As with
 * DANE, verification does not abort the handshake: read tls_verify_result().
 */
void tls_pkix_setup(SSL *ssl, const char *host);

/*
 * After the handshake: X509_V_OK or the X509 verification error; also an
 * error (X509_V_ERR_UNSPECIFIED) when no peer certificate was seen, so
 * "nothing verified" never reads as success. With DANE records loaded,
 * OpenSSL 3.0 yields (checked by tests/unit/test_tls.c):
 *  - no TLSA record matches the chain, DANE-EE or DANE-TA:
 *    X509_V_ERR_DANE_NO_MATCH (65);
 *  - DANE-TA(2) record names a TA certificate the server did not send
 *    (2 0 x, 2 1 1, 2 1 2): also X509_V_ERR_DANE_NO_MATCH (65); OpenSSL
 *    cannot tell "TA missing" from "wrong TA" (a bare key, 2 1 0, still
 *    matches by the signature of the top certificate);
 *  - DANE-TA matched but no reference identifier matches the leaf (also a
 *    partial wildcard "mx*.example.com", or "*.example.com" against two
 *    labels): X509_V_ERR_HOSTNAME_MISMATCH (62);
 *  - DANE-TA matched but the leaf has expired: X509_V_ERR_CERT_HAS_EXPIRED
 *    (10); an expired TA certificate gives the same code; not yet valid:
 *    X509_V_ERR_CERT_NOT_YET_VALID (9). Names are checked before dates,
 *    so a leaf both misnamed and expired reports the name;
 *  - DANE-EE(3) match: X509_V_OK whatever the dates and names of the leaf
 *    (RFC 7672 §3.1.1, §3.2.1).
 * Only meaningful after a completed handshake.
 */
long tls_verify_result(const SSL *ssl);

/* Human text of the verification error. */
const char *tls_verify_error_str(long err);

/*
 * The TLSA record that authenticated the peer: returns the chain depth it
 * matched at (0 = leaf), or -1 when none matched. Fills the record's fields.
 * -1 too whenever verification failed, even if a record matched (OpenSSL
 * reports a match only for a verified chain). A DANE-TA bare key (2 1 0)
 * whose certificate the server left out reports the depth of the
 * certificate it signed. Pointers may be NULL.
 */
int tls_dane_matched(
    SSL *ssl, uint8_t *usage, uint8_t *selector, uint8_t *mtype);

/*
 * The name that matched a reference identifier (DANE-TA), or NULL; NULL
 * after a DANE-EE match (no name checks). It is the certificate's name as
 * presented ("*.example.com" for a wildcard match), not the reference
 * identifier. Set as soon as the name check passes, so it can be non-NULL
 * when verification failed later (expired leaf): read it only after
 * tls_verify_result() == X509_V_OK. Borrowed, valid while ssl lives.
 */
const char *tls_peername(SSL *ssl);

/* "TLSv1.3", cipher name ("(NONE)" before a handshake). Borrowed. */
const char *tls_version_str(const SSL *ssl);
const char *tls_cipher_str(const SSL *ssl);

/*
 * Last OpenSSL error as text into buf ("no OpenSSL error" when none); the
 * whole error queue is cleared. Returns buf.
 */
const char *tls_error_text(char *buf, size_t len);

#endif
