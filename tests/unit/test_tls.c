/*
 * test_tls: the tls module against real in-process TLS handshakes.
 *
 * A small PKI (CA, leaves with various names and dates) is made at start
 * with EVP_EC_gen and the X509 API; client and server SSLs talk over a BIO
 * pair, so the whole OpenSSL DANE path runs, including the X509_V_ERR codes
 * the dane layer classifies. Known-value cases check tls_cert against
 * digests computed once with the openssl CLI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "tls/tls_cert.h"
#include "tls/tls_client.h"
#include "tls/tls_gate.h"
#include "tls/tls_server.h"

#include "t.h"

#define DAY (24L * 60 * 60)

/* The test PKI, made once by pki_make(). */
enum t_leaf {
	LEAF_GOOD,    /* SAN mx.example.com, valid, issued by the CA */
	LEAF_EXPIRED, /* same name, expired yesterday */
	LEAF_WILD,    /* SAN *.example.com */
	LEAF_PARTIAL, /* SAN mx*.example.com (RFC 7672 §3.2.3: invalid) */
	LEAF_CN_ONLY, /* no SAN, CN mx.example.com */
	LEAF_FUTURE,  /* valid from tomorrow */
	LEAF_OLD_CA,  /* valid, but issued by an expired CA */
	LEAF_MAX,
};

static struct {
	EVP_PKEY *ca_key, *leaf_key;
	X509 *ca, *old_ca;
	X509 *leaf[LEAF_MAX];
	X509 *issuer[LEAF_MAX]; /* borrowed: ca or old_ca */
	char dir[64];
	char sni[256]; /* what the server saw */
} pki;

static X509 *
t_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
    EVP_PKEY *issuer_key, bool ca, long from, long to)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	static long serial = 1;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC,
	    (const unsigned char *)"Danerelay Test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(
	    nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(
	    x, issuer != NULL ? X509_get_subject_name(issuer) : nm);
	X509_NAME_free(nm);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (san != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <=
	    0)
		panic("t_cert: cannot sign");
	return x;
}

static void
pki_make(void)
{
	int i;

	pki.ca_key = EVP_EC_gen("P-256");
	pki.leaf_key = EVP_EC_gen("P-256");
	ASSERT(pki.ca_key != NULL && pki.leaf_key != NULL);
	pki.ca = t_cert(pki.ca_key, "Danerelay Test CA", NULL, NULL, NULL, true,
	    -DAY, 30 * DAY);
	pki.leaf[LEAF_GOOD] = t_cert(pki.leaf_key, "mx.example.com",
	    "DNS:mx.example.com", pki.ca, pki.ca_key, false, -DAY, 30 * DAY);
	pki.leaf[LEAF_EXPIRED] = t_cert(pki.leaf_key, "mx.example.com",
	    "DNS:mx.example.com", pki.ca, pki.ca_key, false, -30 * DAY, -DAY);
	pki.leaf[LEAF_WILD] = t_cert(pki.leaf_key, "wild", "DNS:*.example.com",
	    pki.ca, pki.ca_key, false, -DAY, 30 * DAY);
	pki.leaf[LEAF_PARTIAL] = t_cert(pki.leaf_key, "partial",
	    "DNS:mx*.example.com", pki.ca, pki.ca_key, false, -DAY, 30 * DAY);
	pki.leaf[LEAF_CN_ONLY] = t_cert(pki.leaf_key, "mx.example.com", NULL,
	    pki.ca, pki.ca_key, false, -DAY, 30 * DAY);
	pki.leaf[LEAF_FUTURE] = t_cert(pki.leaf_key, "mx.example.com",
	    "DNS:mx.example.com", pki.ca, pki.ca_key, false, DAY, 30 * DAY);
	pki.old_ca = t_cert(pki.ca_key, "Danerelay Old CA", NULL, NULL, NULL,
	    true, -30 * DAY, -DAY);
	pki.leaf[LEAF_OLD_CA] =
	    t_cert(pki.leaf_key, "mx.example.com", "DNS:mx.example.com",
	        pki.old_ca, pki.ca_key, false, -DAY, 30 * DAY);
	for (i = 0; i < LEAF_MAX; i++)
		pki.issuer[i] = i == LEAF_OLD_CA ? pki.old_ca : pki.ca;
	snprintf(pki.dir, sizeof(pki.dir), "/tmp/test_tls.XXXXXX");
	if (mkdtemp(pki.dir) == NULL)
		panic("mkdtemp failed");
}

static void
pki_free(void)
{
	int i;

	for (i = 0; i < LEAF_MAX; i++)
		X509_free(pki.leaf[i]);
	X509_free(pki.ca);
	X509_free(pki.old_ca);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.leaf_key);
	rmdir(pki.dir);
}

static int
t_servername(SSL *s, int *al, void *arg)
{
	const char *n = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

	snprintf(pki.sni, sizeof(pki.sni), "%s", n != NULL ? n : "");
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
t_server_ctx(enum t_leaf leaf, bool send_ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	ASSERT(ctx != NULL);
	if (SSL_CTX_use_certificate(ctx, pki.leaf[leaf]) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pki.leaf_key) != 1 ||
	    (send_ca && SSL_CTX_add1_chain_cert(ctx, pki.issuer[leaf]) != 1))
		panic("t_server_ctx: cannot configure");
	SSL_CTX_set_tlsext_servername_callback(ctx, t_servername);
	return ctx;
}

/* Drive both ends over a BIO pair; 0 when both finished the handshake. */
static int
t_handshake(SSL *c, SSL *s)
{
	BIO *bc, *bs;
	int i, r, done_c = 0, done_s = 0;

	if (BIO_new_bio_pair(&bc, 0, &bs, 0) != 1)
		panic("BIO_new_bio_pair");
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	pki.sni[0] = '\0';
	for (i = 0; i < 50 && !(done_c && done_s); i++) {
		if (!done_c) {
			r = SSL_do_handshake(c);
			if (r == 1)
				done_c = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				return -1;
		}
		if (!done_s) {
			r = SSL_do_handshake(s);
			if (r == 1)
				done_s = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				return -1;
		}
	}
	return done_c && done_s ? 0 : -1;
}

/* Which certificate a record's association data is computed from. */
enum t_data {
	DATA_LEAF,
	DATA_CA,
	DATA_WRONG, /* the leaf's, one bit flipped */
};

struct t_rec {
	uint8_t usage, selector, mtype;
	enum t_data of;
};

/* One DANE handshake: server setup, records, expected result. */
struct t_dane_case {
	const char *name;
	enum t_leaf leaf;
	bool send_ca;
	struct t_rec rec[2];
	size_t nrec;
	int nusable; /* what tls_dane_setup should count */
	const char *base;
	char *names[3];
	char *digests[3]; /* { NULL } = OpenSSL default order */
	long want_err;
	const char *want_peer; /* NULL: no peer name expected */
	int want_depth;        /* -1: none (verification failed) */
};

#define EE(s, m, of)        \
	{                   \
		3, s, m, of \
	}
#define TA(s, m)                 \
	{                        \
		2, s, m, DATA_CA \
	}
#define MX "mx.example.com"

static const struct t_dane_case dane_cases[] = {
	{ .name = "ee_311",
	    .rec = { EE(1, 1, DATA_LEAF) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK },
	{ .name = "ee_301",
	    .rec = { EE(0, 1, DATA_LEAF) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK },
	{ .name = "ee_312",
	    .rec = { EE(1, 2, DATA_LEAF) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK },
	{ .name = "ee_310",
	    .rec = { EE(1, 0, DATA_LEAF) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK },
	/* RFC 7672 §3.1.1: the leaf's dates are ignored under DANE-EE. */
	{ .name = "ee_expired_leaf_ok",
	    .leaf = LEAF_EXPIRED,
	    .rec = { EE(1, 1, DATA_LEAF) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK },
	/* §3.2.1: and so are its names. */
	{ .name = "ee_other_name_ok",
	    .rec = { EE(1, 1, DATA_LEAF) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = "mx.example.org",
	    .want_err = X509_V_OK },
	{ .name = "ee_wrong_digest",
	    .rec = { EE(1, 1, DATA_WRONG) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_ERR_DANE_NO_MATCH,
	    .want_depth = -1 },
	{ .name = "ta_201_ok",
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK,
	    .want_peer = MX,
	    .want_depth = 1 },
	{ .name = "ta_211_ok",
	    .send_ca = true,
	    .rec = { TA(1, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK,
	    .want_peer = MX,
	    .want_depth = 1 },
	/* §3.2.2: the next-hop domain as a second reference identifier. */
	{ .name = "ta_second_name_ok",
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = "relay.example.org",
	    .names = { "mx.example.com.", NULL },
	    .want_err = X509_V_OK,
	    .want_peer = MX,
	    .want_depth = 1 },
	{ .name = "ta_wrong_name",
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = "mx.example.org",
	    .want_err = X509_V_ERR_HOSTNAME_MISMATCH,
	    .want_depth = -1 },
	/* §3.2.3: the CN-ID counts when there is no DNS-ID. */
	{ .name = "ta_cn_only_ok",
	    .leaf = LEAF_CN_ONLY,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK,
	    .want_peer = MX,
	    .want_depth = 1 },
	{ .name = "ta_wildcard_ok",
	    .leaf = LEAF_WILD,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = "mx1.example.com",
	    .want_err = X509_V_OK,
	    .want_peer = "*.example.com",
	    .want_depth = 1 },
	{ .name = "ta_wildcard_two_labels",
	    .leaf = LEAF_WILD,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = "a.mx1.example.com",
	    .want_err = X509_V_ERR_HOSTNAME_MISMATCH,
	    .want_depth = -1 },
	{ .name = "ta_partial_wildcard_refused",
	    .leaf = LEAF_PARTIAL,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = "mx1.example.com",
	    .want_err = X509_V_ERR_HOSTNAME_MISMATCH,
	    .want_depth = -1 },
	/* §3.1.2: the server must send the TA certificate. */
	{ .name = "ta_not_in_chain",
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_ERR_DANE_NO_MATCH,
	    .want_depth = -1 },
	/* The name check passed before the date check failed: peer set. */
	{ .name = "ta_211_not_in_chain",
	    .rec = { TA(1, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_ERR_DANE_NO_MATCH,
	    .want_depth = -1 },
	/*
	 * A bare TA key (2 1 0) verifies the top certificate's signature, so
	 * the TA may be absent; the match is reported at the depth of the
	 * certificate it signed (here the leaf, 0).
	 */
	{ .name = "ta_210_not_in_chain_ok",
	    .rec = { TA(1, 0) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK,
	    .want_peer = MX,
	    .want_depth = 0 },
	{ .name = "ta_expired_leaf",
	    .leaf = LEAF_EXPIRED,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_ERR_CERT_HAS_EXPIRED,
	    .want_peer = MX,
	    .want_depth = -1 },
	/* Names are checked before dates. */
	{ .name = "ta_expired_and_misnamed",
	    .leaf = LEAF_EXPIRED,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = "mx.example.org",
	    .want_err = X509_V_ERR_HOSTNAME_MISMATCH,
	    .want_depth = -1 },
	{ .name = "ta_future_leaf",
	    .leaf = LEAF_FUTURE,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_ERR_CERT_NOT_YET_VALID,
	    .want_peer = MX,
	    .want_depth = -1 },
	/* The TA's own dates count too (OpenSSL checks the anchor's time). */
	{ .name = "ta_expired_ca",
	    .leaf = LEAF_OLD_CA,
	    .send_ca = true,
	    .rec = { TA(0, 1) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_ERR_CERT_HAS_EXPIRED,
	    .want_peer = MX,
	    .want_depth = -1 },
	{ .name = "ee_under_expired_ca_ok",
	    .leaf = LEAF_OLD_CA,
	    .send_ca = true,
	    .rec = { EE(1, 1, DATA_LEAF) },
	    .nrec = 1,
	    .nusable = 1,
	    .base = MX,
	    .want_err = X509_V_OK },
	/* RFC 7671 §9: with sha512 preferred, the wrong 3 0 2 hides 3 0 1. */
	{ .name = "agility_sha512_first",
	    .rec = { EE(0, 1, DATA_LEAF), EE(0, 2, DATA_WRONG) },
	    .nrec = 2,
	    .nusable = 2,
	    .base = MX,
	    .digests = { "sha512", "sha256", NULL },
	    .want_err = X509_V_ERR_DANE_NO_MATCH,
	    .want_depth = -1 },
	{ .name = "agility_default_order",
	    .rec = { EE(0, 1, DATA_LEAF), EE(0, 2, DATA_WRONG) },
	    .nrec = 2,
	    .nusable = 2,
	    .base = MX,
	    .want_err = X509_V_ERR_DANE_NO_MATCH,
	    .want_depth = -1 },
	{ .name = "agility_sha256_first",
	    .rec = { EE(0, 1, DATA_LEAF), EE(0, 2, DATA_WRONG) },
	    .nrec = 2,
	    .nusable = 2,
	    .base = MX,
	    .digests = { "sha256", "sha512", NULL },
	    .want_err = X509_V_OK },
	/* A digest left out of the list is disabled: 3 0 2 is unusable. */
	{ .name = "agility_sha256_only",
	    .rec = { EE(0, 1, DATA_LEAF), EE(0, 2, DATA_WRONG) },
	    .nrec = 2,
	    .nusable = 1,
	    .base = MX,
	    .digests = { "sha256", NULL },
	    .want_err = X509_V_OK },
	/* Full(0) records are never hidden by agility. */
	{ .name = "agility_full_kept",
	    .rec = { EE(1, 0, DATA_LEAF), EE(1, 2, DATA_WRONG) },
	    .nrec = 2,
	    .nusable = 2,
	    .base = MX,
	    .digests = { "sha512", "sha256", NULL },
	    .want_err = X509_V_OK },
};

/* Association data for rec, new. */
static uint8_t *
t_rec_data(const struct t_rec *r, enum t_leaf leaf, size_t *len)
{
	const char *errstr = NULL;
	X509 *x = r->of == DATA_CA ? pki.issuer[leaf] : pki.leaf[leaf];
	uint8_t *d;

	d = tls_tlsa_data_cert(x, r->selector, r->mtype, len, &errstr);
	ASSERT(d != NULL);
	if (r->of == DATA_WRONG)
		d[*len - 1] ^= 1;
	return d;
}

static void
t_dane_run(const struct t_dane_case *tc)
{
	struct tls_tlsa recs[2];
	uint8_t *data[2] = { NULL, NULL };
	const char *errstr = NULL, *peer;
	uint8_t u = 9, s = 9, m = 9;
	char *names[3], *digests[3];
	SSL_CTX *cctx, *sctx;
	SSL *c, *srv;
	size_t i;
	int depth;

	/* The API takes char **; the table is const. */
	memcpy(names, tc->names, sizeof(names));
	memcpy(digests, tc->digests, sizeof(digests));
	cctx = tls_client_ctx_new(digests[0] != NULL ? digests : NULL, &errstr);
	T_CHECK(cctx != NULL);
	if (cctx == NULL)
		return;
	sctx = t_server_ctx(tc->leaf, tc->send_ca);
	c = SSL_new(cctx);
	srv = SSL_new(sctx);
	for (i = 0; i < tc->nrec; i++) {
		data[i] = t_rec_data(&tc->rec[i], tc->leaf, &recs[i].len);
		recs[i].usage = tc->rec[i].usage;
		recs[i].selector = tc->rec[i].selector;
		recs[i].mtype = tc->rec[i].mtype;
		recs[i].data = data[i];
	}
	T_CHECK(tls_dane_setup(c, tc->base, names, recs, tc->nrec, &errstr) ==
	    tc->nusable);
	T_CHECK(t_handshake(c, srv) == 0);
	if (tls_verify_result(c) != tc->want_err)
		printf("# %s: verify %ld (%s), want %ld\n", tc->name,
		    tls_verify_result(c),
		    tls_verify_error_str(tls_verify_result(c)), tc->want_err);
	T_CHECK(tls_verify_result(c) == tc->want_err);
	/* §8.1: SNI is the TLSA base domain. */
	T_STREQ(pki.sni, tc->base);
	peer = tls_peername(c);
	if (tc->want_peer == NULL)
		T_CHECK(peer == NULL);
	else
		T_STREQ(peer, tc->want_peer);
	depth = tls_dane_matched(c, &u, &s, &m);
	if (depth != tc->want_depth)
		printf("# %s: matched depth %d, want %d\n", tc->name, depth,
		    tc->want_depth);
	T_CHECK(depth == tc->want_depth);
	if (depth >= 0 && tc->nrec == 1)
		T_CHECK(u == tc->rec[0].usage && s == tc->rec[0].selector &&
		    m == tc->rec[0].mtype);
	SSL_free(c);
	SSL_free(srv);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	free(data[0]);
	free(data[1]);
}

static void
dane_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(dane_cases) / sizeof(dane_cases[0]); i++) {
		t_name = dane_cases[i].name;
		t_failed_now = 0;
		t_dane_run(&dane_cases[i]);
		if (!t_failed_now)
			printf("PASS %s\n", t_name);
		else
			t_total_failed++;
	}
}

/* Records OpenSSL or RFC 7672 cannot use: tls_dane_setup counts none. */
static void
dane_unusable_only(void)
{
	static const uint8_t d32[32], d64[64], junk[5] = { 1, 2, 3, 4, 5 };
	static const struct tls_tlsa recs[] = {
		{ 0, 0, 1, d32, 32 }, /* PKIX-TA: §3.1.3 */
		{ 1, 1, 1, d32, 32 }, /* PKIX-EE: §3.1.3 */
		{ 4, 1, 1, d32, 32 }, /* unknown usage */
		{ 3, 2, 1, d32, 32 }, /* unknown selector */
		{ 3, 1, 3, d32, 32 }, /* unknown matching type */
		{ 3, 1, 1, d64, 64 }, /* wrong digest length */
		{ 3, 1, 2, d64, 64 }, /* sha512 disabled below */
		{ 3, 1, 0, junk, 5 }, /* not an SPKI */
		{ 2, 0, 0, junk, 5 }, /* not a certificate */
	};
	char *sha256_only[] = { "sha256", NULL };
	const char *errstr = NULL;
	SSL_CTX *ctx;
	SSL *ssl;

	ctx = tls_client_ctx_new(sha256_only, &errstr);
	T_CHECK(ctx != NULL);
	ssl = SSL_new(ctx);
	T_CHECK(tls_dane_setup(ssl, "mx.example.com", NULL, recs,
	            sizeof(recs) / sizeof(recs[0]), &errstr) == 0);
	T_CHECK(ERR_peek_error() == 0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

static void
ctx_bad_digests(void)
{
	char *unknown[] = { "md5", NULL };
	char *twice[] = { "sha256", "SHA256", NULL };
	char *empty[] = { NULL };
	const char *errstr = NULL;

	T_CHECK(tls_client_ctx_new(unknown, &errstr) == NULL);
	T_CHECK(errstr != NULL && strstr(errstr, "unknown") != NULL);
	errstr = NULL;
	T_CHECK(tls_client_ctx_new(twice, &errstr) == NULL);
	T_CHECK(errstr != NULL && strstr(errstr, "twice") != NULL);
	errstr = NULL;
	T_CHECK(tls_client_ctx_new(empty, &errstr) == NULL);
	T_CHECK(errstr != NULL);
}

static void
dane_bad_base_domain(void)
{
	const char *errstr = NULL;
	SSL_CTX *ctx = tls_client_ctx_new(NULL, &errstr);
	SSL *ssl = SSL_new(ctx);

	T_CHECK(tls_dane_setup(ssl, ".", NULL, NULL, 0, &errstr) == -1);
	T_CHECK(errstr != NULL);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

/* Unauthenticated TLS: SNI sent, handshake completes, facts readable. */
static void
plain_handshake(void)
{
	const char *errstr = NULL;
	SSL_CTX *cctx = tls_client_ctx_new(NULL, &errstr);
	SSL_CTX *sctx = t_server_ctx(LEAF_GOOD, true);
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	struct tls_chain *ch;

	tls_plain_setup(c, "mx.example.com.");
	T_CHECK(t_handshake(c, s) == 0);
	T_STREQ(pki.sni, "mx.example.com");
	T_STREQ(tls_version_str(c), "TLSv1.3");
	T_CHECK(tls_cipher_str(c) != NULL);
	T_CHECK(tls_verify_result(c) != X509_V_OK);
	T_CHECK(tls_dane_matched(c, NULL, NULL, NULL) == -1);
	ch = tls_chain_from_ssl(c);
	T_CHECK(tls_chain_count(ch) == 2);
	if (tls_chain_count(ch) == 2) {
		T_STREQ(tls_chain_cert(ch, 0)->sans[0], "mx.example.com");
		T_CHECK(tls_chain_cert(ch, 0)->sans[1] == NULL);
		T_CHECK(!tls_chain_cert(ch, 0)->is_ca);
		T_CHECK(!tls_chain_cert(ch, 0)->self_signed);
		T_CHECK(tls_chain_cert(ch, 1)->is_ca);
		T_CHECK(tls_chain_cert(ch, 1)->self_signed);
		T_CHECK(tls_chain_cert(ch, 1)->depth == 1);
		T_STREQ(tls_chain_cert(ch, 1)->subject,
		    "CN=Danerelay Test CA,O=Danerelay Test");
		T_STREQ(tls_chain_cert(ch, 0)->issuer,
		    "CN=Danerelay Test CA,O=Danerelay Test");
	}
	tls_chain_free(ch);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void
verify_no_handshake(void)
{
	const char *errstr = NULL;
	SSL_CTX *ctx = tls_client_ctx_new(NULL, &errstr);
	SSL *ssl = SSL_new(ctx);
	struct tls_chain *ch;

	/* No certificate seen: never X509_V_OK. */
	T_CHECK(tls_verify_result(ssl) != X509_V_OK);
	ch = tls_chain_from_ssl(ssl);
	T_CHECK(tls_chain_count(ch) == 0);
	tls_chain_free(ch);
	tls_chain_free(NULL);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
}

static void
error_text(void)
{
	char buf[200];

	ERR_clear_error();
	T_STREQ(tls_error_text(buf, sizeof(buf)), "no OpenSSL error");
	ERR_raise(ERR_LIB_SSL, SSL_R_DANE_TLSA_BAD_DIGEST_LENGTH);
	T_CHECK(strstr(tls_error_text(buf, sizeof(buf)), "digest") != NULL);
	T_CHECK(ERR_peek_error() == 0);
	T_CHECK(strstr(tls_verify_error_str(X509_V_ERR_DANE_NO_MATCH),
	            "DANE") != NULL);
}

/* Made once with the openssl CLI; see the digests below. */
static const char known_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB1TCCAXqgAwIBAgIBBzAKBggqhkjOPQQDAjAyMRcwFQYDVQQKDA5EYW5lcmVs\n"
    "YXkgVGVzdDEXMBUGA1UEAwwObXguZXhhbXBsZS5jb20wHhcNMjYxMTI5MDIwMjE1\n"
    "WhcNMzYxMTI2MDIwMjE1WjAyMRcwFQYDVQQKDA5EYW5lcmVsYXkgVGVzdDEXMBUG\n"
    "A1UEAwwObXguZXhhbXBsZS5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARs\n"
    "mFzVkQkeeClzB2qVPl7Wzt8O6RHmMMeR+04/06RXGYVZV4BfxLubnFs266V4s30N\n"
    "jjK0Irmo3/JBJthcc3fvo4GAMH4wHQYDVR0OBBYEFC+6a0Om9Hj/gvw2cH9bRG9P\n"
    "uT6TMB8GA1UdIwQYMBaAFC+6a0Om9Hj/gvw2cH9bRG9PuT6TMC4GA1UdEQQnMCWC\n"
    "Dm14LmV4YW1wbGUuY29tgg0qLmV4YW1wbGUubmV0hwTAAAIBMAwGA1UdEwEB/wQC\n"
    "MAAwCgYIKoZIzj0EAwIDSQAwRgIhAMnmb/eA+0mD04bMjFjsEPy7EJ9eKhIMeqNd\n"
    "ooO51PQ4AiEAjXRlX1BAw+ZJZXot+c858mO7qkGkt9bQzfF9WqPn1DI=\n"
    "-----END CERTIFICATE-----\n";

static const char known_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+uJeSgVZaMCGfKdc\n"
    "EL6SImTxWqMhN6zCIrDu9vktCVChRANCAARsmFzVkQkeeClzB2qVPl7Wzt8O6RHm\n"
    "MMeR+04/06RXGYVZV4BfxLubnFs266V4s30NjjK0Irmo3/JBJthcc3fv\n"
    "-----END PRIVATE KEY-----\n";

#define KNOWN_CERT_SHA256 \
	"20d8ca93f53e076c9e7d10d7e193cfe1a3743fe72a8cbef6451a8e358c912ea4"
#define KNOWN_CERT_SHA512                                                  \
	"685f41303c67618b1b0f4bf77d103b05711515264658a37caff2afcdbec7c1a6" \
	"c3240813048ce75162abac669fa402544c4d5033e3e2ac1c92495ba615e540da"
#define KNOWN_SPKI_SHA256 \
	"61e6a9656eeff68ed51bfc11fdc8fac1c408cc59f0c5e992c3e3b03e92710db6"
#define KNOWN_SPKI_SHA512                                                  \
	"ca0b45525c51fdc1537c08431b2cc7b8fd692af3904ed6eb58b7d090d113658f" \
	"ef3792d3d04d616e2a162a8abb8632c63fcdfd686288693a27d5e2bc49cd2dac"
#define NOT_AFTER_T ((time_t)2111277735) /* 2036-11-26T02:02:15Z */
#define KNOWN_SPKI                                                         \
	"3059301306072a8648ce3d020106082a8648ce3d030107034200046c985cd591" \
	"091e782973076a953e5ed6cedf0ee911e630c791fb4e3fd3a45719855957805f" \
	"c4bb9b9c5b36eba578b37d0d8e32b422b9a8dff24126d85c7377ef"

/* Write n bytes to a new file in the test dir; returns its path (static). */
static const char *
t_file(const char *name, const void *p, size_t n)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", pki.dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		panic("cannot write %s", path);
	if (n > 0 && fwrite(p, 1, n, f) != n)
		panic("cannot write %s", path);
	fclose(f);
	return path;
}

static const char *
t_text(const char *name, const char *s)
{
	return t_file(name, s, strlen(s));
}

/* Hex of tls_tlsa_data_cert(); new. */
static char *
t_tlsa_hex(X509 *x, int selector, int mtype)
{
	const char *errstr = NULL;
	uint8_t *d;
	size_t n;
	char *h;

	if ((d = tls_tlsa_data_cert(x, selector, mtype, &n, &errstr)) == NULL)
		return xstrdup("(error)");
	h = str_hex(d, n);
	free(d);
	return h;
}

static void
known_facts(void)
{
	const char *errstr = NULL;
	const struct tls_cert_facts *f;
	struct tls_chain *ch;

	ch = tls_chain_from_file(t_text("known.pem", known_cert), &errstr);
	T_CHECK(ch != NULL && tls_chain_count(ch) == 1);
	if (ch == NULL || tls_chain_count(ch) != 1)
		return;
	f = tls_chain_cert(ch, 0);
	T_CHECK(f->depth == 0);
	T_STREQ(f->subject, "CN=mx.example.com,O=Danerelay Test");
	T_STREQ(f->issuer, "CN=mx.example.com,O=Danerelay Test");
	T_STREQ(f->sans[0], "mx.example.com");
	T_STREQ(f->sans[1], "*.example.net");
	T_CHECK(f->sans[2] == NULL); /* the IP SAN is not a DNS name */
	T_STREQ(f->not_before, "2026-11-29T02:02:15Z");
	T_STREQ(f->not_after, "2036-11-26T02:02:15Z");
	T_CHECK(f->not_after_t == NOT_AFTER_T);
	T_CHECK(f->self_signed);
	T_CHECK(!f->is_ca);
	T_STREQ(f->sha256, KNOWN_CERT_SHA256);
	T_STREQ(f->sha512, KNOWN_CERT_SHA512);
	T_STREQ(f->spki_sha256, KNOWN_SPKI_SHA256);
	T_STREQ(f->spki_sha512, KNOWN_SPKI_SHA512);
	tls_chain_free(ch);
}

static void
known_tlsa_data(void)
{
	static const struct {
		int selector, mtype;
		const char *hex;
	} want[] = {
		{ 0, 1, KNOWN_CERT_SHA256 },
		{ 0, 2, KNOWN_CERT_SHA512 },
		{ 1, 0, KNOWN_SPKI },
		{ 1, 1, KNOWN_SPKI_SHA256 },
		{ 1, 2, KNOWN_SPKI_SHA512 },
	};
	const char *errstr = NULL;
	STACK_OF(X509) *sk;
	X509 *x;
	char *h;
	size_t i;

	sk = tls_load_certs(t_text("known.pem", known_cert), &errstr);
	T_CHECK(sk != NULL);
	if (sk == NULL)
		return;
	x = sk_X509_value(sk, 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		h = t_tlsa_hex(x, want[i].selector, want[i].mtype);
		T_STREQ(h, want[i].hex);
		free(h);
	}
	/* 3 0 0 is the DER certificate itself; its digest is known. */
	h = t_tlsa_hex(x, 0, 0);
	T_CHECK(strlen(h) == 2 * 473);
	free(h);
	h = t_tlsa_hex(x, 2, 1);
	T_STREQ(h, "(error)");
	free(h);
	h = t_tlsa_hex(x, 1, 3);
	T_STREQ(h, "(error)");
	free(h);
	sk_X509_pop_free(sk, X509_free);
}

static void
known_key_data(void)
{
	const char *errstr = NULL;
	EVP_PKEY *k;
	uint8_t *d;
	size_t n;
	char *h;

	k = tls_load_key(t_text("known.key", known_key), &errstr);
	T_CHECK(k != NULL);
	if (k == NULL)
		return;
	d = tls_tlsa_data_key(k, 1, &n, &errstr);
	T_CHECK(d != NULL && n == 32);
	h = d != NULL ? str_hex(d, n) : NULL;
	T_STREQ(h, KNOWN_SPKI_SHA256);
	free(h);
	free(d);
	d = tls_tlsa_data_key(k, 0, &n, &errstr);
	h = d != NULL ? str_hex(d, n) : NULL;
	T_STREQ(h, KNOWN_SPKI);
	free(h);
	free(d);
	T_CHECK(tls_tlsa_data_key(k, 7, &n, &errstr) == NULL);
	EVP_PKEY_free(k);
	/* The certificate gives the same key. */
	k = tls_load_key(t_text("known.pem", known_cert), &errstr);
	d = k != NULL ? tls_tlsa_data_key(k, 1, &n, &errstr) : NULL;
	h = d != NULL ? str_hex(d, n) : NULL;
	T_STREQ(h, KNOWN_SPKI_SHA256);
	free(h);
	free(d);
	EVP_PKEY_free(k);
}

/* DER encodings of the test PKI, for the loader cases. */
static uint8_t *
t_der_cert(X509 *x, size_t *n)
{
	unsigned char *p = NULL;
	int len = i2d_X509(x, &p);
	uint8_t *out;

	ASSERT(len > 0);
	out = xmemdup(p, (size_t)len);
	OPENSSL_free(p);
	*n = (size_t)len;
	return out;
}

static char *
t_pem_of(int (*wr)(BIO *, void *), void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	ASSERT(wr(b, obj) == 1);
	n = BIO_get_mem_data(b, &p);
	s = xstrndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static int
t_wr_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int
t_wr_pub(BIO *b, void *k)
{
	return PEM_write_bio_PUBKEY(b, k);
}

static int
t_wr_priv(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int
t_wr_enc(BIO *b, void *k)
{
	return PEM_write_bio_PKCS8PrivateKey(
	    b, k, EVP_aes_128_cbc(), "pw", 2, NULL, NULL);
}

/*
 * A peer of old: TLS 1.0 and 1.1 only, at security level 0 (which TLS
 * 1.1's SHA-1 signatures need), as a permissive system policy
 * (OPENSSL_CONF with MinProtocol = TLSv1) would leave it.
 */
static SSL_CTX *
t_old_ctx(SSL_CTX *ctx)
{
	ASSERT(ctx != NULL);
	SSL_CTX_set_security_level(ctx, 0);
	if (SSL_CTX_set_cipher_list(ctx, "DEFAULT@SECLEVEL=0") != 1 ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION) != 1)
		panic("t_old_ctx: cannot configure");
	return ctx;
}

/* Whether a handshake between contexts c and s completes. */
static bool
t_handshake_ok(SSL_CTX *cctx, SSL_CTX *sctx)
{
	SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
	bool ok;

	ASSERT(c != NULL && s != NULL);
	ok = t_handshake(c, s) == 0;
	SSL_free(c);
	SSL_free(s);
	ERR_clear_error();
	return ok;
}

/*
 * The TLS floor is TLS 1.2 in our code on both sides, not left to the
 * system policy: with everything else made permissive (security level 0,
 * every cipher), a TLS 1.1 peer is still refused. The control pair shows
 * this OpenSSL can speak TLS 1.1 at all, so the refusal is the floor's.
 */
static void
tls_floor(void)
{
	const char *errstr = NULL, *cert, *key;
	char *pem, *err2 = NULL, path[128];
	SSL_CTX *cctx = tls_client_ctx_new(NULL, &errstr), *sctx, *oc, *os;

	pem = t_pem_of(t_wr_cert, pki.leaf[LEAF_GOOD]);
	cert = t_text("floor.crt", pem);
	snprintf(path, sizeof(path), "%s", cert);
	free(pem);
	pem = t_pem_of(t_wr_priv, pki.leaf_key);
	key = t_text("floor.key", pem);
	free(pem);
	sctx = tls_server_ctx_new(path, key, &err2);
	T_CHECK(cctx != NULL && sctx != NULL);
	if (cctx == NULL || sctx == NULL) {
		printf("  %s %s\n", errstr ? errstr : "", err2 ? err2 : "");
		goto out;
	}
	T_CHECK(SSL_CTX_get_min_proto_version(cctx) == TLS1_2_VERSION);
	T_CHECK(SSL_CTX_get_min_proto_version(sctx) == TLS1_2_VERSION);
	SSL_CTX_set_security_level(cctx, 0);
	SSL_CTX_set_security_level(sctx, 0);
	T_CHECK(SSL_CTX_set_cipher_list(cctx, "DEFAULT@SECLEVEL=0") == 1);
	T_CHECK(SSL_CTX_set_cipher_list(sctx, "DEFAULT@SECLEVEL=0") == 1);
	oc = t_old_ctx(SSL_CTX_new(TLS_client_method()));
	os = t_old_ctx(t_server_ctx(LEAF_GOOD, false));
	/* Control: TLS 1.1 works where no floor is set. */
	T_CHECK(t_handshake_ok(oc, os));
	/* Our server refuses a TLS 1.1 client, our client a TLS 1.1 server. */
	T_CHECK(!t_handshake_ok(oc, sctx));
	T_CHECK(!t_handshake_ok(cctx, os));
	/* And TLS 1.2 or better between our two still works. */
	T_CHECK(t_handshake_ok(cctx, sctx));
	SSL_CTX_free(oc);
	SSL_CTX_free(os);
out:
	free(err2);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	unlink(path);
	unlink(key);
}

static void
load_certs_errors(void)
{
	static const struct {
		const char *file, *content, *want;
	} cases[] = {
		{ "empty", "", "file is empty" },
		{ "blank", " \n\n", "file is empty" },
		{ "garbage", "hello world\n",
		    "not a certificate (neither PEM nor DER)" },
		{ "badb64",
		    "-----BEGIN CERTIFICATE-----\n!!!!\n"
		    "-----END CERTIFICATE-----\n",
		    "malformed PEM block" },
		{ "noend", "-----BEGIN CERTIFICATE-----\nAAAA\n",
		    "malformed PEM block" },
		{ "notcert",
		    "-----BEGIN CERTIFICATE-----\naGVsbG8=\n"
		    "-----END CERTIFICATE-----\n",
		    "malformed certificate in PEM block" },
		{ "params",
		    "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
		    "-----END EC PARAMETERS-----\n",
		    "no CERTIFICATE block in PEM file" },
	};
	const char *errstr;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errstr = NULL;
		T_CHECK(tls_load_certs(t_text(cases[i].file, cases[i].content),
		            &errstr) == NULL);
		if (errstr == NULL ||
		    strncmp(errstr, cases[i].want, strlen(cases[i].want)) != 0)
			printf("# %s: %s\n", cases[i].file,
			    errstr != NULL ? errstr : "(null)");
		T_CHECK(errstr != NULL &&
		    strncmp(errstr, cases[i].want, strlen(cases[i].want)) == 0);
		unlink(t_text(cases[i].file, ""));
	}
}

static void
load_certs_io(void)
{
	const char *errstr = NULL, *path;
	uint8_t *big;
	size_t n;

	T_CHECK(tls_load_certs("/nonexistent/cert.pem", &errstr) == NULL);
	T_STREQ(errstr, "No such file or directory");
	T_CHECK(tls_load_file(pki.dir, &n, &errstr) == NULL);
	T_STREQ(errstr, "Is a directory");
	big = xcalloc(TLS_LOAD_MAX + 10, 1);
	memset(big, 'A', TLS_LOAD_MAX + 10);
	path = t_file("big", big, TLS_LOAD_MAX + 10);
	free(big);
	big = tls_load_file(path, &n, &errstr);
	T_CHECK(big != NULL && n == TLS_LOAD_MAX + 1);
	free(big);
	T_CHECK(tls_load_certs(path, &errstr) == NULL);
	T_STREQ(errstr, "file too large (over 1 MiB)");
	unlink(path);
}

static void
load_certs_ok(void)
{
	const char *errstr = NULL, *path;
	STACK_OF(X509) *sk;
	struct buf b;
	uint8_t *der;
	char *pem;
	size_t n;

	/* A chain file with a key in the middle, leaf first. */
	buf_init(&b, 1 << 16);
	pem = t_pem_of(t_wr_cert, pki.leaf[LEAF_GOOD]);
	buf_adds(&b, "leading text is fine\n");
	buf_adds(&b, pem);
	free(pem);
	pem = t_pem_of(t_wr_priv, pki.leaf_key);
	buf_adds(&b, pem);
	free(pem);
	pem = t_pem_of(t_wr_cert, pki.ca);
	buf_adds(&b, pem);
	free(pem);
	path = t_text("chain.pem", buf_cstr(&b));
	buf_free(&b);
	sk = tls_load_certs(path, &errstr);
	T_CHECK(sk != NULL && sk_X509_num(sk) == 2);
	if (sk != NULL && sk_X509_num(sk) == 2) {
		T_CHECK(
		    X509_cmp(sk_X509_value(sk, 0), pki.leaf[LEAF_GOOD]) == 0);
		T_CHECK(X509_cmp(sk_X509_value(sk, 1), pki.ca) == 0);
	}
	sk_X509_pop_free(sk, X509_free);
	unlink(path);
	/* DER, a single certificate. */
	der = t_der_cert(pki.ca, &n);
	path = t_file("ca.der", der, n);
	sk = tls_load_certs(path, &errstr);
	T_CHECK(sk != NULL && sk_X509_num(sk) == 1);
	sk_X509_pop_free(sk, X509_free);
	/* DER with a trailing byte is not DER. */
	der = xreallocarray(der, n + 1, 1);
	der[n] = 0;
	path = t_file("ca.der", der, n + 1);
	T_CHECK(tls_load_certs(path, &errstr) == NULL);
	unlink(path);
	free(der);
}

static void
load_certs_key_given(void)
{
	const char *errstr = NULL;
	unsigned char *p = NULL;
	char *pem;
	int n;

	pem = t_pem_of(t_wr_priv, pki.leaf_key);
	T_CHECK(tls_load_certs(t_text("k.pem", pem), &errstr) == NULL);
	T_STREQ(errstr, "file holds a key, not a certificate");
	free(pem);
	n = i2d_PUBKEY(pki.leaf_key, &p);
	errstr = NULL;
	T_CHECK(tls_load_certs(t_file("k.der", p, (size_t)n), &errstr) == NULL);
	T_STREQ(errstr, "file holds a key, not a certificate");
	OPENSSL_free(p);
	unlink(t_text("k.pem", ""));
	unlink(t_text("k.der", ""));
}

/* Every key form gives the same SPKI; bad ones give their error. */
static void
load_keys(void)
{
	const char *errstr = NULL, *path;
	unsigned char *p = NULL;
	uint8_t *want, *got;
	size_t wn, gn;
	EVP_PKEY *k;
	char *pem;
	int n, i;

	want = tls_tlsa_data_key(pki.leaf_key, 1, &wn, &errstr);
	for (i = 0; i < 5; i++) {
		p = NULL;
		switch (i) {
		case 0:
			pem = t_pem_of(t_wr_priv, pki.leaf_key);
			path = t_text("key", pem);
			free(pem);
			break;
		case 1:
			pem = t_pem_of(t_wr_pub, pki.leaf_key);
			path = t_text("key", pem);
			free(pem);
			break;
		case 2:
			n = i2d_PrivateKey(pki.leaf_key, &p);
			path = t_file("key", p, (size_t)n);
			break;
		case 3:
			n = i2d_PUBKEY(pki.leaf_key, &p);
			path = t_file("key", p, (size_t)n);
			break;
		default:
			pem = t_pem_of(t_wr_cert, pki.leaf[LEAF_GOOD]);
			path = t_text("key", pem);
			free(pem);
			break;
		}
		OPENSSL_free(p);
		k = tls_load_key(path, &errstr);
		T_CHECK(k != NULL);
		got = k != NULL ? tls_tlsa_data_key(k, 1, &gn, &errstr) : NULL;
		T_CHECK(got != NULL && gn == wn && memcmp(got, want, wn) == 0);
		free(got);
		EVP_PKEY_free(k);
	}
	free(want);
	pem = t_pem_of(t_wr_enc, pki.leaf_key);
	T_CHECK(tls_load_key(t_text("key", pem), &errstr) == NULL);
	T_CHECK(strncmp(errstr, "encrypted private key", 21) == 0);
	free(pem);
	T_CHECK(tls_load_key(t_text("key", "junk"), &errstr) == NULL);
	T_STREQ(errstr, "not a key (neither PEM nor DER)");
	T_CHECK(tls_load_key(t_text("key", ""), &errstr) == NULL);
	T_STREQ(errstr, "file is empty");
	T_CHECK(
	    tls_load_key(t_text("key",
	                     "-----BEGIN EC PARAMETERS-----\n"
	                     "BggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
	        &errstr) == NULL);
	T_STREQ(errstr, "no key or certificate block in PEM file");
	T_CHECK(tls_load_key("/nonexistent/key", &errstr) == NULL);
	T_STREQ(errstr, "No such file or directory");
	unlink(t_text("key", ""));
	T_CHECK(ERR_peek_error() == 0);
}

/* Dates and hostile SAN bytes, on a certificate built field by field. */
static void
facts_escaping_dates(void)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	const struct tls_cert_facts *f;
	struct tls_chain *ch;
	X509 *x;

	x = t_cert(pki.leaf_key, "x", NULL, NULL, NULL, false, 0, DAY);
	ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "20250102030405Z");
	ASN1_TIME_set_string_X509(X509_getm_notAfter(x), "20500101000000Z");
	ASN1_STRING_set(ia5, "a\nb\\c\001.example.com", -1);
	GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
	sk_GENERAL_NAME_push(gens, g);
	X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0);
	GENERAL_NAMES_free(gens);
	X509_sign(x, pki.leaf_key, EVP_sha256());
	sk_X509_push(sk, x);
	ch = tls_chain_from_certs(sk);
	f = tls_chain_cert(ch, 0);
	T_STREQ(f->sans[0], "a\\010b\\092c\\001.example.com");
	T_STREQ(f->not_before, "2025-01-02T03:04:05Z");
	T_STREQ(f->not_after, "2050-01-01T00:00:00Z");
	T_CHECK(f->not_after_t == 2524608000);
	T_CHECK(f->self_signed && !f->is_ca);
	tls_chain_free(ch);
	sk_X509_pop_free(sk, X509_free);
}

/* --- tls_gate --- */

struct gate_rec {
	char order[8];
	size_t n;
};
struct gate_arg {
	struct gate_rec *rec;
	char name;
};

static void
gate_cb(void *arg)
{
	struct gate_arg *a = arg;

	if (a->rec->n + 1 < sizeof(a->rec->order))
		a->rec->order[a->rec->n++] = a->name;
}

/* At most max at once; the queue is served first come, first served. */
static void
gate_fifo(void)
{
	struct event_base *base = event_base_new();
	struct tls_gate *g = tls_gate_new(base, 2, 60000);
	struct gate_rec rec = { "", 0 };
	struct gate_arg aa = { &rec, 'a' }, ab = { &rec, 'b' },
	                ac = { &rec, 'c' }, ad = { &rec, 'd' },
	                ae = { &rec, 'e' };
	struct tls_gate_slot *a, *b, *c, *d, *e;

	a = tls_gate_enter(g, gate_cb, &aa);
	b = tls_gate_enter(g, gate_cb, &ab);
	c = tls_gate_enter(g, gate_cb, &ac);
	d = tls_gate_enter(g, gate_cb, &ad);
	T_CHECK(tls_gate_granted(a) && tls_gate_granted(b));
	T_CHECK(!tls_gate_granted(c) && !tls_gate_granted(d));
	T_CHECK(tls_gate_busy(g) == 2 && tls_gate_queued(g) == 2);
	tls_gate_leave(a);
	/* A newcomer does not overtake the queue, even with a slot free. */
	e = tls_gate_enter(g, gate_cb, &ae);
	T_CHECK(!tls_gate_granted(e));
	T_CHECK(rec.n == 0); /* callbacks only from the loop */
	event_base_loop(base, EVLOOP_NONBLOCK);
	T_STREQ(rec.order, "c");
	T_CHECK(tls_gate_granted(c) && tls_gate_busy(g) == 2);
	tls_gate_leave(d); /* given up while queued: never called */
	tls_gate_leave(b);
	event_base_loop(base, EVLOOP_NONBLOCK);
	T_STREQ(rec.order, "ce");
	tls_gate_leave(c);
	tls_gate_leave(e);
	T_CHECK(tls_gate_busy(g) == 0 && tls_gate_queued(g) == 0);
	tls_gate_free(g);
	event_base_free(base);
}

/* A slot held past hold_ms stops counting: a stalled handshake does not
 * keep the next one waiting. Leaving it later changes nothing. */
static void
gate_expiry(void)
{
	struct event_base *base = event_base_new();
	struct tls_gate *g = tls_gate_new(base, 1, 30);
	struct gate_rec rec = { "", 0 };
	struct gate_arg aa = { &rec, 'a' }, ab = { &rec, 'b' };
	struct tls_gate_slot *a, *b;
	struct timeval tv = { 0, 200000 };

	a = tls_gate_enter(g, gate_cb, &aa);
	b = tls_gate_enter(g, gate_cb, &ab);
	T_CHECK(tls_gate_granted(a) && !tls_gate_granted(b));
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	T_STREQ(rec.order, "b");
	T_CHECK(tls_gate_granted(b) && tls_gate_busy(g) == 0);
	tls_gate_leave(a);
	T_CHECK(tls_gate_busy(g) == 0);
	tls_gate_leave(b);
	tls_gate_free(g);
	event_base_free(base);
}

/* Freeing the gate with slots out: they can still be left (no leak, no
 * use after free under ASan), and the queued one is never called. */
static void
gate_free_early(void)
{
	struct event_base *base = event_base_new();
	struct tls_gate *g = tls_gate_new(base, 1, 60000);
	struct gate_rec rec = { "", 0 };
	struct gate_arg aa = { &rec, 'a' }, ab = { &rec, 'b' };
	struct tls_gate_slot *a = tls_gate_enter(g, gate_cb, &aa);
	struct tls_gate_slot *b = tls_gate_enter(g, gate_cb, &ab);

	tls_gate_free(g);
	event_base_loop(base, EVLOOP_NONBLOCK);
	tls_gate_leave(b);
	tls_gate_leave(a);
	T_CHECK(rec.n == 0);
	event_base_free(base);
}

int
main(void)
{
	pki_make();
	dane_table();
	T_RUN(dane_unusable_only);
	T_RUN(ctx_bad_digests);
	T_RUN(dane_bad_base_domain);
	T_RUN(plain_handshake);
	T_RUN(verify_no_handshake);
	T_RUN(error_text);
	T_RUN(known_facts);
	T_RUN(known_tlsa_data);
	T_RUN(known_key_data);
	T_RUN(load_certs_errors);
	T_RUN(load_certs_io);
	T_RUN(load_certs_ok);
	T_RUN(load_certs_key_given);
	T_RUN(load_keys);
	T_RUN(tls_floor);
	T_RUN(facts_escaping_dates);
	T_RUN(gate_fifo);
	T_RUN(gate_expiry);
	T_RUN(gate_free_early);
	unlink(t_text("known.pem", ""));
	unlink(t_text("known.key", ""));
	pki_free();
	T_EXIT();
}
