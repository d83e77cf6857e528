/*
 * dane_mx: MX resolution of a next-hop domain.
 */
#include "dane/dane_mx.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "dane/dane_outcome.h"
#include "dns/dns.h"

struct dane_mx_host {
	char *name;
	uint16_t pref;
};

struct dane_mx {
	char *domain;
	char *expanded;
	enum dane_mx_kind kind;
	bool secure;
	struct outcome outcome;
	struct dns_answer *answer;
	struct dane_mx_host *hosts;
	size_t n;
};

struct dane_mx_lookup {
	struct dns_query *q;
	char *domain;
	dane_mx_cb *cb;
	void *arg;
};

/* Insertion sort: stable, so equal preferences keep their DNS order. */
static void
dane_mx_sort(struct dane_mx_host *h, size_t n)
{
	struct dane_mx_host t;
	size_t i, j;

	for (i = 1; i < n; i++) {
		t = h[i];
		for (j = i; j > 0 && h[j - 1].pref > t.pref; j--)
			h[j] = h[j - 1];
		h[j] = t;
	}
}

static void
dane_mx_add(struct dane_mx *mx, const char *name, uint16_t pref)
{
	mx->hosts = xreallocarray(mx->hosts, mx->n + 1, sizeof(*mx->hosts));
	mx->hosts[mx->n].name = xstrdup(name);
	mx->hosts[mx->n].pref = pref;
	mx->n++;
}

/* Fill hosts from a non-empty MX RRset; detect the null MX. */
static void
dane_mx_from_records(struct dane_mx *mx, const struct dns_answer *a)
{
	size_t i, n = dns_answer_count(a);
	const char *host;
	uint16_t pref;

	for (i = 0; i < n; i++) {
		if (dns_answer_mx(a, i, &pref, &host) == -1)
			continue;
		/* RFC 7505 §3: "." is no host; skip it among real ones. */
		if (strcmp(host, ".") != 0)
			dane_mx_add(mx, host, pref);
	}
	if (mx->n == 0) {
		mx->kind = DANE_MX_NULL;
		outcome_set(&mx->outcome, OUTCOME_PERM, "5.1.10", RT_NONE,
		    "%s publishes a null MX: it accepts no mail (RFC 7505)",
		    mx->domain);
		return;
	}
	dane_mx_sort(mx->hosts, mx->n);
	mx->kind = DANE_MX_LIST;
}

static void
dane_mx_classify(struct dane_mx *mx, const struct dns_answer *a)
{
	if (dns_answer_status(a) != DNS_OK) {
		mx->kind = DANE_MX_ERROR;
		dane_outcome_dns(&mx->outcome, a);
		return;
	}
	mx->secure = dns_answer_sec(a) == DNS_SEC_SECURE;
	mx->expanded = xstrdup(dns_answer_canonname(a));
	if (dns_answer_nxdomain(a)) {
		mx->kind = DANE_MX_NXDOMAIN;
		outcome_set(&mx->outcome, OUTCOME_PERM, "5.1.2", RT_NONE,
		    "the domain %s does not exist (NXDOMAIN)", mx->domain);
		return;
	}
	if (dns_answer_count(a) == 0) {
		/* RFC 5321 §5.1: no MX, the domain is its own implicit MX. */
		mx->kind = DANE_MX_IMPLICIT;
		dane_mx_add(mx, mx->domain, 0);
		return;
	}
	dane_mx_from_records(mx, a);
}

static void
dane_mx_done(struct dns_answer *a, void *arg)
{
	struct dane_mx_lookup *l = arg;
	struct dane_mx *mx = xcalloc(1, sizeof(*mx));
	dane_mx_cb *cb = l->cb;
	void *cbarg = l->arg;

	mx->domain = l->domain;
	mx->answer = a;
	outcome_ok(&mx->outcome);
	dane_mx_classify(mx, a);
	if (mx->expanded == NULL)
		mx->expanded = xstrdup(mx->domain);
	free(l);
	cb(mx, cbarg);
}

struct dane_mx_lookup *
dane_mx_resolve(
    struct dns_resolver *r, const char *domain, dane_mx_cb *cb, void *arg)
{
	struct dane_mx_lookup *l = xcalloc(1, sizeof(*l));

	l->domain = xstrdup(domain);
	l->cb = cb;
	l->arg = arg;
	l->q = dns_query(r, domain, DNS_TYPE_MX, dane_mx_done, l);
	return l;
}

void
dane_mx_cancel(struct dane_mx_lookup *l)
{
	if (l == NULL)
		return;
	dns_query_cancel(l->q);
	free(l->domain);
	free(l);
}

void
dane_mx_free(struct dane_mx *mx)
{
	size_t i;

	if (mx == NULL)
		return;
	for (i = 0; i < mx->n; i++)
		free(mx->hosts[i].name);
	free(mx->hosts);
	dns_answer_free(mx->answer);
	free(mx->domain);
	free(mx->expanded);
	free(mx);
}

enum dane_mx_kind
dane_mx_kind(const struct dane_mx *mx)
{
	return mx->kind;
}

const char *
dane_mx_kind_str(enum dane_mx_kind kind)
{
	switch (kind) {
	case DANE_MX_LIST:
		return "mx";
	case DANE_MX_IMPLICIT:
		return "implicit-mx";
	case DANE_MX_NULL:
		return "null-mx";
	case DANE_MX_NXDOMAIN:
		return "nxdomain";
	case DANE_MX_ERROR:
		return "error";
	}
	return "?";
}

const char *
dane_mx_domain(const struct dane_mx *mx)
{
	return mx->domain;
}

const char *
dane_mx_expanded(const struct dane_mx *mx)
{
	return mx->expanded;
}

bool
dane_mx_secure(const struct dane_mx *mx)
{
	return mx->secure;
}

const struct outcome *
dane_mx_outcome(const struct dane_mx *mx)
{
	return &mx->outcome;
}

const struct dns_answer *
dane_mx_answer(const struct dane_mx *mx)
{
	return mx->answer;
}

size_t
dane_mx_count(const struct dane_mx *mx)
{
	return mx->n;
}

const char *
dane_mx_host(const struct dane_mx *mx, size_t i)
{
	ASSERT(i < mx->n);
	return mx->hosts[i].name;
}

uint16_t
dane_mx_pref(const struct dane_mx *mx, size_t i)
{
	ASSERT(i < mx->n);
	return mx->hosts[i].pref;
}
