/*
 * tls_cert: certificate facts and TLSA association data (RFC 6698 §2.1).
 *
 * Everything here reads untrusted bytes: certificates sent by a peer, or
 * files an administrator points `danerelay tlsa` at. Files are read into
 * memory under a cap and parsed from a memory BIO, PEM block by PEM block,
 * so that each kind of bad input gets its own error and nothing is ever
 * prompted for (no passphrase callbacks). Digests come from OpenSSL.
 */
#include "tls/tls_cert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/xmalloc.h"

/* More certificates than any real chain; keeps hostile files cheap. */
#define TLS_CERTS_MAX 100

struct tls_chain {
	struct tls_cert_facts *certs;
	size_t n;
};

static EVP_PKEY *key_der(const uint8_t *, size_t);

/* Signature of the per-block handler of pem_walk(). */
#define PEM_FN(f)                                              \
	int (*f)(void *arg, const char *name, const char *hdr, \
	    const unsigned char *data, long len, const char **errstr)

static void
hex_into(char *out, size_t outsz, const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	ASSERT(outsz >= 2 * n + 1);
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* DER of the whole certificate (selector 0) or its SPKI (selector 1). */
static unsigned char *
cert_der(X509 *cert, int selector, size_t *len)
{
	unsigned char *der = NULL;
	int n;

	if (selector == 0)
		n = i2d_X509(cert, &der);
	else
		n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (n <= 0) {
		OPENSSL_free(der);
		return NULL;
	}
	*len = (size_t)n;
	return der;
}

/* Hex digest of p into out, or "" if the digest cannot be computed. */
static void
digest_hex(
    const EVP_MD *md, const unsigned char *p, size_t n, char *out, size_t outsz)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen;

	out[0] = '\0';
	if (p != NULL && EVP_Digest(p, n, d, &dlen, md, NULL) == 1)
		hex_into(out, outsz, d, dlen);
}

/* The association data of RFC 6698 §2.1.3 for matching type mtype. */
static uint8_t *
tlsa_match(const unsigned char *der, size_t n, int mtype, size_t *len,
    const char **errstr)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen;
	const EVP_MD *md;

	switch (mtype) {
	case 0:
		*len = n;
		return xmemdup(der, n);
	case 1:
		md = EVP_sha256();
		break;
	case 2:
		md = EVP_sha512();
		break;
	default:
		*errstr = "matching type must be 0, 1 or 2";
		return NULL;
	}
	if (EVP_Digest(der, n, d, &dlen, md, NULL) != 1) {
		ERR_clear_error();
		*errstr = "digest failed";
		return NULL;
	}
	*len = dlen;
	return xmemdup(d, dlen);
}

uint8_t *
tls_tlsa_data_cert(
    X509 *cert, int selector, int mtype, size_t *len, const char **errstr)
{
	unsigned char *der;
	uint8_t *out;
	size_t n;

	if (selector != 0 && selector != 1) {
		*errstr = "selector must be 0 or 1";
		return NULL;
	}
	if ((der = cert_der(cert, selector, &n)) == NULL) {
		ERR_clear_error();
		*errstr = "cannot encode the certificate";
		return NULL;
	}
	out = tlsa_match(der, n, mtype, len, errstr);
	OPENSSL_free(der);
	return out;
}

uint8_t *
tls_tlsa_data_key(EVP_PKEY *key, int mtype, size_t *len, const char **errstr)
{
	unsigned char *der = NULL;
	uint8_t *out;
	int n;

	/* i2d_PUBKEY writes the SubjectPublicKeyInfo even of a private key. */
	if ((n = i2d_PUBKEY(key, &der)) <= 0) {
		OPENSSL_free(der);
		ERR_clear_error();
		*errstr = "cannot encode the public key";
		return NULL;
	}
	out = tlsa_match(der, (size_t)n, mtype, len, errstr);
	OPENSSL_free(der);
	return out;
}

/* RFC 2253 text of a name; new string. */
static char *
name_text(const X509_NAME *nm)
{
	BIO *bio;
	char *p, *s;
	long n;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return xstrdup("");
	if (X509_NAME_print_ex(bio, nm, 0, XN_FLAG_RFC2253) < 0)
		ERR_clear_error();
	n = BIO_get_mem_data(bio, &p);
	s = n > 0 ? xstrndup(p, (size_t)n) : xstrdup("");
	BIO_free(bio);
	return s;
}

/* A DNS name from a certificate, hostile bytes escaped as \DDD. */
static char *
dns_text(const ASN1_STRING *a)
{
	const unsigned char *p = ASN1_STRING_get0_data(a);
	int i, n = ASN1_STRING_length(a);
	struct buf b;

	buf_init(&b, (size_t)n * 4 + 1);
	for (i = 0; i < n; i++) {
		if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '\\')
			buf_addc(&b, (char)p[i]);
		else
			buf_printf(&b, "\\%03u", (unsigned)p[i]);
	}
	return buf_steal(&b);
}

/* The dNSName entries of the subjectAltName extension; NULL-terminated. */
static char **
dns_sans(X509 *x)
{
	GENERAL_NAMES *gens;
	char **v;
	int i, n;
	size_t k = 0;

	/* A duplicated extension yields NULL: no names, not an error. */
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
	v = xcalloc((size_t)n + 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			v[k++] = dns_text(g->d.dNSName);
	}
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return v;
}

/* ISO 8601 UTC text of t into out; *tt gets the time_t when asked. */
static void
time_text(const ASN1_TIME *t, char *out, size_t outsz, time_t *tt)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	/* ASN1_TIME_to_tm(NULL) would mean "now": never let that happen. */
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		ERR_clear_error();
		snprintf(out, outsz, "invalid");
		if (tt != NULL)
			*tt = 0;
		return;
	}
	if (tt != NULL)
		*tt = timegm(&tm);
}

static void
facts_digests(struct tls_cert_facts *f, X509 *x)
{
	unsigned char *der;
	size_t n = 0;

	der = cert_der(x, 0, &n);
	digest_hex(EVP_sha256(), der, n, f->sha256, sizeof(f->sha256));
	digest_hex(EVP_sha512(), der, n, f->sha512, sizeof(f->sha512));
	OPENSSL_free(der);
	n = 0;
	der = cert_der(x, 1, &n);
	digest_hex(
	    EVP_sha256(), der, n, f->spki_sha256, sizeof(f->spki_sha256));
	digest_hex(
	    EVP_sha512(), der, n, f->spki_sha512, sizeof(f->spki_sha512));
	OPENSSL_free(der);
	ERR_clear_error();
}

static void
facts_fill(struct tls_cert_facts *f, X509 *x, int depth)
{
	f->depth = depth;
	f->subject = name_text(X509_get_subject_name(x));
	f->issuer = name_text(X509_get_issuer_name(x));
	f->sans = dns_sans(x);
	time_text(
	    X509_get0_notBefore(x), f->not_before, sizeof(f->not_before), NULL);
	time_text(X509_get0_notAfter(x), f->not_after, sizeof(f->not_after),
	    &f->not_after_t);
	/* Names and key ids only: a report needs no signature check. */
	f->self_signed = X509_self_signed(x, 0) == 1;
	f->is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
	facts_digests(f, x);
	ERR_clear_error();
}

struct tls_chain *
tls_chain_from_certs(const STACK_OF(X509) *certs)
{
	struct tls_chain *c = xcalloc(1, sizeof(*c));
	int i, n = certs != NULL ? sk_X509_num(certs) : 0;

	if (n <= 0)
		return c;
	c->certs = xcalloc((size_t)n, sizeof(*c->certs));
	for (i = 0; i < n; i++)
		facts_fill(&c->certs[i], sk_X509_value(certs, i), i);
	c->n = (size_t)n;
	return c;
}

struct tls_chain *
tls_chain_from_ssl(SSL *ssl)
{
	STACK_OF(X509) *sk;
	struct tls_chain *c;
	X509 *leaf;

	/* On a client the stack starts with the leaf (SSL_get_peer_cert_chain).
	 */
	if ((sk = SSL_get_peer_cert_chain(ssl)) != NULL && sk_X509_num(sk) > 0)
		return tls_chain_from_certs(sk);
	/* A resumed session keeps only the leaf. */
	if ((leaf = SSL_get0_peer_certificate(ssl)) == NULL)
		return tls_chain_from_certs(NULL);
	sk = sk_X509_new_null();
	if (sk == NULL || sk_X509_push(sk, leaf) <= 0)
		panic("tls_chain_from_ssl: out of memory");
	c = tls_chain_from_certs(sk);
	sk_X509_free(sk);
	return c;
}

struct tls_chain *
tls_chain_from_file(const char *path, const char **errstr)
{
	STACK_OF(X509) *sk;
	struct tls_chain *c;

	if ((sk = tls_load_certs(path, errstr)) == NULL)
		return NULL;
	c = tls_chain_from_certs(sk);
	sk_X509_pop_free(sk, X509_free);
	return c;
}

void
tls_chain_free(struct tls_chain *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->certs[i].subject);
		free(c->certs[i].issuer);
		for (j = 0; c->certs[i].sans[j] != NULL; j++)
			free(c->certs[i].sans[j]);
		free(c->certs[i].sans);
	}
	free(c->certs);
	free(c);
}

size_t
tls_chain_count(const struct tls_chain *c)
{
	return c->n;
}

const struct tls_cert_facts *
tls_chain_cert(const struct tls_chain *c, size_t i)
{
	ASSERT(i < c->n);
	return &c->certs[i];
}

uint8_t *
tls_load_file(const char *path, size_t *len, const char **errstr)
{
	struct buf b;
	char chunk[8192];
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*errstr = strerror(errno);
		return NULL;
	}
	/* One byte over the cap lets the loaders say "too large". */
	buf_init(&b, TLS_LOAD_MAX + 1);
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			*errstr = strerror(errno);
			close(fd);
			buf_free(&b);
			return NULL;
		}
		if (buf_add(&b, chunk, (size_t)r) == -1) {
			buf_add(&b, chunk, b.max - b.len);
			break;
		}
	}
	close(fd);
	*len = b.len;
	return (uint8_t *)buf_steal(&b);
}

/*
 * Call fn for each PEM block of p[0..n) until it returns non-zero. Returns
 * the number of blocks seen, or -1 with *errstr when a block is malformed
 * or fn fails. OpenSSL's own errors are dropped: *errstr says it better.
 */
static int
pem_walk(const uint8_t *p, size_t n, PEM_FN(fn), void *arg, const char **errstr)
{
	char *name, *hdr;
	unsigned char *data;
	unsigned long e;
	int blocks = 0, r = 0, ok;
	long len;
	BIO *bio;

	if ((bio = BIO_new_mem_buf(p, (int)n)) == NULL)
		panic("pem_walk: out of memory");
	while (r == 0) {
		ERR_set_mark();
		ok = PEM_read_bio(bio, &name, &hdr, &data, &len);
		e = ERR_peek_last_error();
		ERR_pop_to_mark();
		if (!ok) {
			/* "No start line" is how OpenSSL says end of input. */
			if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
			    ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
				*errstr = "malformed PEM block (bad base64 or "
				          "no END line)";
				r = -1;
			}
			break;
		}
		blocks++;
		r = fn(arg, name, hdr, data, len, errstr);
		OPENSSL_free(name);
		OPENSSL_free(hdr);
		OPENSSL_free(data);
	}
	BIO_free(bio);
	return r < 0 ? -1 : blocks;
}

/* d2i of a certificate that must use exactly len bytes. */
static X509 *
cert_d2i(const unsigned char *data, long len, bool aux)
{
	const unsigned char *q = data;
	X509 *x;

	x = aux ? d2i_X509_AUX(NULL, &q, len) : d2i_X509(NULL, &q, len);
	if (x != NULL && q != data + len) {
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	return x;
}

/* What tls_load_certs_mem has seen so far. */
struct certs_walk {
	STACK_OF(X509) *sk;
	bool saw_key;
};

static int
certs_block(void *arg, const char *name, const char *hdr,
    const unsigned char *data, long len, const char **errstr)
{
	struct certs_walk *w = arg;
	bool aux = strcmp(name, PEM_STRING_X509_TRUSTED) == 0;
	X509 *x;

	if (strcmp(name, PEM_STRING_X509) != 0 &&
	    strcmp(name, PEM_STRING_X509_OLD) != 0 && !aux) {
		/* Keys and parameters may share the file; note and skip. */
		if (strstr(name, "KEY") != NULL)
			w->saw_key = true;
		return 0;
	}
	if (sk_X509_num(w->sk) >= TLS_CERTS_MAX) {
		*errstr = "too many certificates in file";
		return -1;
	}
	if ((x = cert_d2i(data, len, aux)) == NULL) {
		*errstr = "malformed certificate in PEM block";
		return -1;
	}
	if (sk_X509_push(w->sk, x) <= 0)
		panic("certs_block: out of memory");
	return 0;
}

static bool
all_space(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* Refusals common to both loaders; NULL when p[0..n) is worth parsing. */
static const char *
input_refusal(const uint8_t *p, size_t n)
{
	if (n > TLS_LOAD_MAX)
		return "file too large (over 1 MiB)";
	if (all_space(p, n))
		return "file is empty";
	return NULL;
}

/* When neither PEM nor DER certificate: is it a key? For the error text. */
static bool
der_is_key(const uint8_t *p, size_t n)
{
	EVP_PKEY *k;

	k = key_der(p, n);
	EVP_PKEY_free(k);
	return k != NULL;
}

STACK_OF(X509) *
tls_load_certs_mem(const uint8_t *p, size_t n, const char **errstr)
{
	struct certs_walk w = { NULL, false };
	X509 *x;
	int blocks;

	if ((*errstr = input_refusal(p, n)) != NULL)
		return NULL;
	if ((w.sk = sk_X509_new_null()) == NULL)
		panic("tls_load_certs_mem: out of memory");
	if ((blocks = pem_walk(p, n, certs_block, &w, errstr)) == -1)
		goto fail;
	if (sk_X509_num(w.sk) > 0)
		return w.sk;
	if (blocks > 0) {
		*errstr = w.saw_key ? "file holds a key, not a certificate" :
		                      "no CERTIFICATE block in PEM file";
		goto fail;
	}
	if ((x = cert_d2i(p, (long)n, false)) != NULL) {
		if (sk_X509_push(w.sk, x) <= 0)
			panic("tls_load_certs_mem: out of memory");
		return w.sk;
	}
	*errstr = der_is_key(p, n) ? "file holds a key, not a certificate" :
	                             "not a certificate (neither PEM nor DER)";
fail:
	sk_X509_pop_free(w.sk, X509_free);
	return NULL;
}

STACK_OF(X509) *
tls_load_certs(const char *path, const char **errstr)
{
	STACK_OF(X509) *sk;
	uint8_t *p;
	size_t n;

	if ((p = tls_load_file(path, &n, errstr)) == NULL)
		return NULL;
	sk = tls_load_certs_mem(p, n, errstr);
	free(p);
	return sk;
}

/* Decoder of a key from DER, as d2i_AutoPrivateKey and d2i_PUBKEY are. */
#define KEY_D2I(f) EVP_PKEY *(*f)(EVP_PKEY **, const unsigned char **, long)

/* d2i of a key that must use exactly len bytes. */
static EVP_PKEY *
key_exact(KEY_D2I(d2i), const unsigned char *data, long len)
{
	const unsigned char *q = data;
	EVP_PKEY *k;

	k = d2i(NULL, &q, len);
	if (k != NULL && q != data + len) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	ERR_clear_error();
	return k;
}

/* The public key of the certificate in DER data, or NULL. */
static EVP_PKEY *
key_of_cert(const unsigned char *data, long len)
{
	EVP_PKEY *k = NULL;
	X509 *x;

	if ((x = cert_d2i(data, len, false)) != NULL)
		k = X509_get_pubkey(x);
	X509_free(x);
	ERR_clear_error();
	return k;
}

/* PKCS#1 RSAPublicKey, the one key form without an algorithm identifier. */
static EVP_PKEY *
key_rsa_public(const unsigned char *data, long len)
{
	const unsigned char *q = data;
	EVP_PKEY *k;

	k = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, len);
	if (k != NULL && q != data + len) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	ERR_clear_error();
	return k;
}

static int
key_block(void *arg, const char *name, const char *hdr,
    const unsigned char *data, long len, const char **errstr)
{
	EVP_PKEY **kp = arg;

	/* PKCS#8 encrypted, or legacy PEM with "Proc-Type: 4,ENCRYPTED". */
	if (strcmp(name, PEM_STRING_PKCS8) == 0 ||
	    (hdr != NULL && strstr(hdr, "ENCRYPTED") != NULL)) {
		*errstr = "encrypted private key: give the public key instead "
		          "(openssl pkey -pubout)";
		return -1;
	}
	if (strcmp(name, PEM_STRING_PUBLIC) == 0)
		*kp = key_exact(d2i_PUBKEY, data, len);
	else if (strcmp(name, PEM_STRING_RSA_PUBLIC) == 0)
		*kp = key_rsa_public(data, len);
	else if (strcmp(name, PEM_STRING_X509) == 0 ||
	    strcmp(name, PEM_STRING_X509_OLD) == 0)
		*kp = key_of_cert(data, len);
	else if (strstr(name, "PRIVATE KEY") != NULL)
		*kp = key_exact(d2i_AutoPrivateKey, data, len);
	else
		return 0; /* parameters and such: keep looking */
	if (*kp == NULL) {
		*errstr = "malformed key in PEM block";
		return -1;
	}
	return 1;
}

/* A DER file: private key, public key, or a certificate's key. */
static EVP_PKEY *
key_der(const uint8_t *p, size_t n)
{
	EVP_PKEY *k;

	if ((k = key_exact(d2i_AutoPrivateKey, p, (long)n)) != NULL)
		return k;
	if ((k = key_exact(d2i_PUBKEY, p, (long)n)) != NULL)
		return k;
	return key_of_cert(p, (long)n);
}

EVP_PKEY *
tls_load_key_mem(const uint8_t *p, size_t n, const char **errstr)
{
	EVP_PKEY *k = NULL;
	int blocks;

	if ((*errstr = input_refusal(p, n)) != NULL)
		return NULL;
	if ((blocks = pem_walk(p, n, key_block, &k, errstr)) == -1)
		return NULL;
	if (k != NULL)
		return k;
	if (blocks > 0) {
		*errstr = "no key or certificate block in PEM file";
		return NULL;
	}
	if ((k = key_der(p, n)) == NULL)
		*errstr = "not a key (neither PEM nor DER)";
	return k;
}

EVP_PKEY *
tls_load_key(const char *path, const char **errstr)
{
	EVP_PKEY *k;
	uint8_t *p;
	size_t n;

	if ((p = tls_load_file(path, &n, errstr)) == NULL)
		return NULL;
	k = tls_load_key_mem(p, n, errstr);
	free(p);
	return k;
}
