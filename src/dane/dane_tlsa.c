/*
 * dane_tlsa: usability of TLSA records for SMTP (RFC 6698 §4.1,
 * RFC 7672 §3.1, RFC 7671 §9).
 */
#include "dane/dane_tlsa.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "core/str.h"
#include "core/xmalloc.h"
#include "dns/dns.h"

struct dane_tlsa_rec {
	struct tls_tlsa rec; /* data points into the copy below */
	uint8_t *data;
	const char *why; /* NULL = usable */
};

struct dane_tlsa {
	struct dane_tlsa_rec *recs;
	size_t n;
	struct tls_tlsa *usable;
	size_t nusable;
};

static bool
dane_digest_enabled(char **digests, uint8_t mtype)
{
	const char *want = mtype == 1 ? "sha256" : "sha512";
	size_t i;

	for (i = 0; digests != NULL && digests[i] != NULL; i++)
		if (strcmp(digests[i], want) == 0)
			return true;
	return false;
}

/* Full(0) data must be what the selector says it is. */
static bool
dane_full_wellformed(uint8_t selector, const uint8_t *p, size_t len)
{
	const unsigned char *cp = p;
	X509 *x;
	EVP_PKEY *k;

	if (selector == 0) {
		x = d2i_X509(NULL, &cp, (long)len);
		X509_free(x);
		return x != NULL && cp == p + len;
	}
	k = d2i_PUBKEY(NULL, &cp, (long)len);
	EVP_PKEY_free(k);
	return k != NULL && cp == p + len;
}

/* NULL if the record is usable for SMTP, else why not. */
static const char *
dane_tlsa_check(const struct tls_tlsa *r, char **digests)
{
	switch (r->usage) {
	case 0:
		return "PKIX-TA(0) is not used by SMTP (RFC 7672 §3.1.3)";
	case 1:
		return "PKIX-EE(1) is not used by SMTP (RFC 7672 §3.1.3)";
	case 2:
	case 3:
		break;
	default:
		return "unknown certificate usage (RFC 6698 §4.1)";
	}
	if (r->selector > 1)
		return "unknown selector (RFC 6698 §4.1)";
	switch (r->mtype) {
	case 0:
		if (!dane_full_wellformed(r->selector, r->data, r->len))
			return r->selector == 0 ? "malformed: Full(0) data is "
			                          "not a DER certificate" :
			                          "malformed: Full(0) data "
			                          "is not a DER public key";
		return NULL;
	case 1:
		if (r->len != 32)
			return "malformed: SHA2-256 data is not 32 bytes";
		break;
	case 2:
		if (r->len != 64)
			return "malformed: SHA2-512 data is not 64 bytes";
		break;
	default:
		return "unknown matching type (RFC 6698 §4.1)";
	}
	if (!dane_digest_enabled(digests, r->mtype))
		return "digest disabled by [dane] digests";
	return NULL;
}

struct dane_tlsa *
dane_tlsa_new(const struct dns_answer *a, char **digests)
{
	struct dane_tlsa *t = xcalloc(1, sizeof(*t));
	size_t i, n = dns_answer_count(a);
	const uint8_t *data;
	size_t len;

	t->recs = xcalloc(n, sizeof(*t->recs));
	t->usable = xcalloc(n, sizeof(*t->usable));
	for (i = 0; i < n; i++) {
		struct dane_tlsa_rec *r = &t->recs[t->n];

		if (dns_answer_tlsa(a, i, &r->rec.usage, &r->rec.selector,
		        &r->rec.mtype, &data, &len) == -1) {
			/* Too short to hold the three fields: still a record.
			 */
			r->rec.usage = 255;
			len = 0;
			data = NULL;
			r->why = "malformed: TLSA rdata shorter than 3 bytes";
		}
		/* One spare byte so that empty data still has an address. */
		r->data = xmalloc(len + 1);
		if (len > 0)
			memcpy(r->data, data, len);
		r->rec.data = r->data;
		r->rec.len = len;
		if (r->why == NULL)
			r->why = dane_tlsa_check(&r->rec, digests);
		if (r->why == NULL)
			t->usable[t->nusable++] = r->rec;
		t->n++;
	}
	return t;
}

void
dane_tlsa_free(struct dane_tlsa *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		free(t->recs[i].data);
	free(t->recs);
	free(t->usable);
	free(t);
}

size_t
dane_tlsa_count(const struct dane_tlsa *t)
{
	return t->n;
}

size_t
dane_tlsa_usable_count(const struct dane_tlsa *t)
{
	return t->nusable;
}

const struct tls_tlsa *
dane_tlsa_rec(const struct dane_tlsa *t, size_t i)
{
	ASSERT(i < t->n);
	return &t->recs[i].rec;
}

bool
dane_tlsa_usable(const struct dane_tlsa *t, size_t i)
{
	ASSERT(i < t->n);
	return t->recs[i].why == NULL;
}

const char *
dane_tlsa_why(const struct dane_tlsa *t, size_t i)
{
	ASSERT(i < t->n);
	return t->recs[i].why;
}

char *
dane_tlsa_str(const struct dane_tlsa *t, size_t i)
{
	const struct tls_tlsa *r = dane_tlsa_rec(t, i);
	char *hex = str_hex(r->data, r->len), *s;

	s = xasprintf("%u %u %u %s", r->usage, r->selector, r->mtype, hex);
	free(hex);
	return s;
}

const struct tls_tlsa *
dane_tlsa_usable_recs(const struct dane_tlsa *t, size_t *n)
{
	*n = t->nusable;
	return t->usable;
}

const char *
dane_usage_str(uint8_t usage)
{
	static const char *const names[] = { "PKIX-TA", "PKIX-EE", "DANE-TA",
		"DANE-EE" };

	return usage < 4 ? names[usage] : usage == 255 ? "PrivCert" : "unknown";
}

const char *
dane_selector_str(uint8_t selector)
{
	return selector == 0 ? "Cert" :
	    selector == 1    ? "SPKI" :
	    selector == 255  ? "PrivSel" :
	                       "unknown";
}

const char *
dane_mtype_str(uint8_t mtype)
{
	return mtype == 0 ? "Full" :
	    mtype == 1    ? "SHA2-256" :
	    mtype == 2    ? "SHA2-512" :
	    mtype == 255  ? "PrivMatch" :
	                    "unknown";
}
