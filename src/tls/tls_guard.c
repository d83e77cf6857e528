/*
 * tls_guard: does our own certificate chain match our published TLSA
 * records, judged as a DANE client would judge it? See tls_guard.h. The
 * digests are computed by tls_cert.c, the same code `danerelay tlsa` uses
 * to print records, so a suggested record is exactly what that command
 * would print.
 */
#include "tls/tls_guard.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "tls/tls_cert.h"

#define SUGGEST_MAX (64 * 1024)

/* RFC 7672 §3.1 and RFC 6698 §2.1: can a DANE SMTP client use r? */
static bool
guard_usable(const struct tls_tlsa *r)
{
	if ((r->usage != 2 && r->usage != 3) || r->selector > 1 ||
	    r->data == NULL)
		return false;
	switch (r->mtype) {
	case 0:
		return r->len > 0;
	case 1:
		return r->len == 32;
	case 2:
		return r->len == 64;
	}
	return false;
}

/*
 * RFC 7671 §9 as OpenSSL applies it by default (SHA2-512 over SHA2-256):
 * a SHA2-256 record is ignored when a usable SHA2-512 record has the same
 * usage and selector.
 */
static bool
guard_shadowed(const struct tls_tlsa *recs, size_t n, size_t i)
{
	size_t j;

	if (recs[i].mtype != 1)
		return false;
	for (j = 0; j < n; j++)
		if (recs[j].mtype == 2 && recs[j].usage == recs[i].usage &&
		    recs[j].selector == recs[i].selector &&
		    guard_usable(&recs[j]))
			return true;
	return false;
}

/* Does x match r by its selector and matching type? -1: cannot encode. */
static int
guard_cert(X509 *x, const struct tls_tlsa *r)
{
	const char *errstr = NULL;
	uint8_t *d;
	size_t len;
	int m;

	if ((d = tls_tlsa_data_cert(x, r->selector, r->mtype, &len, &errstr)) ==
	    NULL)
		return -1;
	m = len == r->len && memcmp(d, r->data, len) == 0;
	free(d);
	return m;
}

/*
 * A DANE-TA bare key (2 1 0) whose certificate the server does not send
 * matches when it signed the top certificate of the chain, as OpenSSL
 * accepts it.
 */
static bool
guard_ta_key(STACK_OF(X509) *chain, const struct tls_tlsa *r)
{
	X509 *top = sk_X509_value(chain, sk_X509_num(chain) - 1);
	const unsigned char *p = r->data;
	EVP_PKEY *key;
	bool ok;

	if (r->usage != 2 || r->selector != 1 || r->mtype != 0)
		return false;
	if ((key = d2i_PUBKEY(NULL, &p, (long)r->len)) == NULL) {
		ERR_clear_error();
		return false;
	}
	ok = p == r->data + r->len && X509_verify(top, key) == 1;
	EVP_PKEY_free(key);
	ERR_clear_error();
	return ok;
}

/* One usable record against the chain: 1, 0, or -1. */
static int
guard_rec(STACK_OF(X509) *chain, const struct tls_tlsa *r)
{
	int depth, num = sk_X509_num(chain), m;

	if (r->usage == 3)
		return guard_cert(sk_X509_value(chain, 0), r);
	/* DANE-TA: a certificate above the leaf (RFC 7672 §3.1.2). */
	for (depth = 1; depth < num; depth++)
		if ((m = guard_cert(sk_X509_value(chain, depth), r)) != 0)
			return m;
	return guard_ta_key(chain, r) ? 1 : 0;
}

static int
guard_matches(STACK_OF(X509) *chain, const struct tls_tlsa *recs, size_t n)
{
	size_t i;
	int m;

	for (i = 0; i < n; i++) {
		if (!guard_usable(&recs[i]) || guard_shadowed(recs, n, i))
			continue;
		if ((m = guard_rec(chain, &recs[i])) != 0)
			return m;
	}
	return 0;
}

/* "_25._tcp.mx.example.com." from owner or the leaf's first DNS name. */
static char *
guard_owner(STACK_OF(X509) *chain, const char *owner)
{
	const struct tls_cert_facts *f;
	struct tls_chain *c;
	char *o;
	size_t n;

	if (owner != NULL)
		o = xstrdup(owner);
	else {
		c = tls_chain_from_certs(chain);
		f = tls_chain_cert(c, 0);
		o = xasprintf("_25._tcp.%s",
		    f->sans[0] != NULL ? f->sans[0] : "MX-HOST-NAME");
		tls_chain_free(c);
	}
	str_lower(o);
	n = strlen(o);
	if (n > 0 && o[n - 1] == '.')
		o[n - 1] = '\0';
	return o;
}

/*
 * The certificate a record of this usage is about: the leaf for DANE-EE;
 * for DANE-TA the top-most certificate of the chain when it is a CA other
 * than the leaf (as `danerelay tlsa --usage 2` picks it), else NULL.
 */
static X509 *
guard_subject(STACK_OF(X509) *chain, int usage)
{
	int n = sk_X509_num(chain);
	X509 *ta;

	if (usage == 3)
		return sk_X509_value(chain, 0);
	if (n < 2)
		return NULL;
	ta = sk_X509_value(chain, n - 1);
	return (X509_get_extension_flags(ta) & EXFLAG_CA) != 0 ? ta : NULL;
}

/* Append the record u s m of this chain; 0, or -1 when it cannot be made. */
static int
guard_record(struct buf *b, STACK_OF(X509) *chain, const char *owner, int u,
    int s, int m)
{
	const char *errstr = NULL;
	X509 *x = guard_subject(chain, u);
	uint8_t *d;
	size_t len;
	char *hex;

	if (x == NULL ||
	    (d = tls_tlsa_data_cert(x, s, m, &len, &errstr)) == NULL)
		return -1;
	hex = str_hex(d, len);
	buf_printf(b, "%s. IN TLSA %d %d %d %s\n", owner, u, s, m, hex);
	free(hex);
	free(d);
	return 0;
}

/* The records to publish (see tls_guard.h); new string. */
static char *
guard_suggest(STACK_OF(X509) *chain, const struct tls_tlsa *recs, size_t n,
    const char *owner)
{
	bool seen[2][2][3] = { { { false } } };
	char *o = guard_owner(chain, owner);
	const struct tls_tlsa *r;
	struct buf b;
	size_t i;

	buf_init(&b, SUGGEST_MAX);
	for (i = 0; i < n; i++) {
		r = &recs[i];
		if (!guard_usable(r) ||
		    seen[r->usage - 2][r->selector][r->mtype])
			continue;
		seen[r->usage - 2][r->selector][r->mtype] = true;
		guard_record(&b, chain, o, r->usage, r->selector, r->mtype);
	}
	/* RFC 7672 §3.1.1: "3 1 1" is what SMTP servers SHOULD publish. */
	if (b.len == 0)
		guard_record(&b, chain, o, 3, 1, 1);
	free(o);
	return buf_steal(&b);
}

int
tls_guard_match(STACK_OF(X509) *chain, const struct tls_tlsa *recs, size_t n,
    const char *owner, char **suggest)
{
	int m;

	if (suggest != NULL)
		*suggest = NULL;
	if (chain == NULL || sk_X509_num(chain) < 1)
		return -1;
	if ((m = guard_matches(chain, recs, n)) == 0 && suggest != NULL)
		*suggest = guard_suggest(chain, recs, n, owner);
	return m;
}

int
tls_guard_match_file(const char *path, const struct tls_tlsa *recs, size_t n,
    const char *owner, char **suggest, const char **errstr)
{
	STACK_OF(X509) *sk;
	int m;

	if (suggest != NULL)
		*suggest = NULL;
	if ((sk = tls_load_certs(path, errstr)) == NULL)
		return -1;
	m = tls_guard_match(sk, recs, n, owner, suggest);
	sk_X509_pop_free(sk, X509_free);
	return m;
}
