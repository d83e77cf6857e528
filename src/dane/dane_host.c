/*
 * dane_host: address and TLSA resolution of one SMTP server, and the
 * handshake policy that follows from it (RFC 7672 §2.2.2, §2.2.3, §3).
 */
#include "dane/dane_host.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509_vfy.h>

#include "core/str.h"
#include "core/xmalloc.h"
#include "dane/dane_tlsa.h"
#include "dns/dns.h"
#include "tls/tls_client.h"

#define DANE_HOST_MAX_ADDRS 16

struct dane_host_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
	} u;
	socklen_t len;
	char str[INET6_ADDRSTRLEN];
};

struct dane_host {
	char *name;
	uint16_t port;
	enum dane_via via;
	char *nexthop;
	char *nexthop_expanded;
	bool nexthop_secure;
	char **digests;

	enum dane_level level;
	struct outcome outcome;

	struct dns_answer *a, *aaaa, *cname;
	/* One family's lookup failed, the other's addresses are used. */
	bool addr_partial;
	struct outcome addr_warning;
	/* As many as there are, up to DANE_HOST_MAX_ADDRS: a host lives as
	 * long as its connection, thousands at once (docs/PERFORMANCE.md). */
	struct dane_host_addr *addrs;
	size_t naddr;
	bool addr_secure;
	char *expanded;

	char *cand[2]; /* candidate TLSA base domains */
	struct dns_answer *tlsa_ans[2];
	size_t ncand, ntried;
	const char *tlsa_skipped;

	char *base; /* the TLSA base domain, if any */
	struct dane_tlsa *tlsa;
	char **refnames;
};

struct dane_host_lookup {
	struct event *literal_ev; /* address-literal hosts */
	struct dns_resolver *r;
	struct dane_host *h;
	struct dns_query *qa, *qaaaa, *q;
	int pending;
	dane_host_cb *cb;
	void *arg;
};

static void dane_host_tlsa_next(struct dane_host_lookup *l);

static void
dane_refnames_add(struct dane_host *h, size_t *n, const char *name)
{
	size_t i;

	if (name == NULL)
		return;
	for (i = 0; i < *n; i++)
		if (strcmp(h->refnames[i], name) == 0)
			return;
	h->refnames = xreallocarray(h->refnames, *n + 2, sizeof(char *));
	h->refnames[(*n)++] = xstrdup(name);
	h->refnames[*n] = NULL;
}

/*
 * RFC 7672 §3.2.2: the TLSA base domain always; with a secure MX RRset also
 * the next-hop domain and its CNAME expansion; without MX records, the
 * original next-hop domain when the base is its expansion; with an insecure
 * MX RRset or a configured route, the base domain alone.
 */
static void
dane_host_make_refnames(struct dane_host *h)
{
	size_t n = 0;

	h->refnames = xcalloc(1, sizeof(char *));
	if (h->base == NULL)
		return;
	dane_refnames_add(h, &n, h->base);
	switch (h->via) {
	case DANE_VIA_MX_SECURE:
		dane_refnames_add(h, &n, h->nexthop);
		dane_refnames_add(h, &n, h->nexthop_expanded);
		break;
	case DANE_VIA_IMPLICIT:
		if (strcmp(h->base, h->name) != 0)
			dane_refnames_add(h, &n, h->nexthop);
		break;
	case DANE_VIA_MX_INSECURE:
	case DANE_VIA_ROUTE:
		break;
	}
}

static void
dane_host_finish(struct dane_host_lookup *l)
{
	struct dane_host *h = l->h;
	dane_host_cb *cb = l->cb;
	void *arg = l->arg;

	dane_host_make_refnames(h);
	if (l->literal_ev != NULL)
		event_free(l->literal_ev);
	free(l);
	cb(h, arg);
}

static void
dane_host_fail(struct dane_host_lookup *l)
{
	l->h->level = DANE_LEVEL_UNUSABLE;
	dane_host_finish(l);
}

static void
dane_host_collect(
    struct dane_host *h, const struct dns_answer *a, uint16_t port)
{
	size_t i, n = dns_answer_count(a);

	for (i = 0; i < n && h->naddr < DANE_HOST_MAX_ADDRS; i++) {
		struct sockaddr_storage ss;
		struct dane_host_addr *x;
		socklen_t len;

		if (dns_answer_addr(a, i, &ss, &len) == -1 ||
		    len > sizeof(x->u))
			continue;
		h->addrs =
		    xreallocarray(h->addrs, h->naddr + 1, sizeof(*h->addrs));
		x = &h->addrs[h->naddr];
		memset(x, 0, sizeof(*x));
		memcpy(&x->u, &ss, len);
		x->len = len;
		if (ss.ss_family == AF_INET)
			x->u.sin.sin_port = htons(port);
		else
			x->u.sin6.sin6_port = htons(port);
		dns_answer_addr_str(a, i, x->str, sizeof(x->str));
		h->naddr++;
	}
}

/* A secure RRset with at least one address: usable without its sibling. */
static bool
dane_host_family_ok(const struct dns_answer *a)
{
	return dns_answer_status(a) == DNS_OK &&
	    dns_answer_sec(a) == DNS_SEC_SECURE && dns_answer_count(a) > 0;
}

int
dane_host_addr_families(const struct dns_answer *a,
    const struct dns_answer *aaaa, const struct dns_answer **bad)
{
	bool a_ok = dns_answer_status(a) == DNS_OK;
	bool aaaa_ok = dns_answer_status(aaaa) == DNS_OK;
	const struct dns_answer *good = NULL;

	*bad = NULL;
	if (a_ok && aaaa_ok)
		return 0;
	if (a_ok != aaaa_ok) {
		*bad = a_ok ? aaaa : a;
		good = a_ok ? a : aaaa;
	} else if (dns_answer_status(a) == DNS_ERR_BOGUS ||
	    dns_answer_status(aaaa) != DNS_ERR_BOGUS)
		*bad = a; /* a validation failure is named first */
	else
		*bad = aaaa;
	return good != NULL && dane_host_family_ok(good) ? 1 : -1;
}

/* dane_host_addr_families() for h; the failure goes to h->outcome or,
 * when the other family is used, to h->addr_warning. */
static int
dane_host_addr_errors(struct dane_host *h, const struct dns_answer **skip)
{
	const struct dns_answer *bad;
	int rc = dane_host_addr_families(h->a, h->aaaa, &bad);

	*skip = NULL;
	if (rc == 0)
		return 0;
	dane_outcome_dns(rc == 1 ? &h->addr_warning : &h->outcome, bad);
	if (rc == 1)
		*skip = bad;
	return rc;
}

static void
dane_host_tlsa_candidates(struct dane_host *h, bool expanded_too)
{
	if (expanded_too && strcmp(h->expanded, h->name) != 0)
		h->cand[h->ncand++] = xstrdup(h->expanded);
	h->cand[h->ncand++] = xstrdup(h->name);
}

static void
dane_host_cname_done(struct dns_answer *a, void *arg)
{
	struct dane_host_lookup *l = arg;
	struct dane_host *h = l->h;

	l->q = NULL;
	h->cname = a;
	if (dns_answer_status(a) != DNS_OK) {
		dane_outcome_dns(&h->outcome, a);
		dane_host_fail(l);
		return;
	}
	/*
	 * §2.2.2 "Insecure CNAME": insecure addresses behind a secure first
	 * CNAME still get a TLSA search at the original name.
	 */
	if (dns_answer_sec(a) != DNS_SEC_SECURE) {
		h->tlsa_skipped = "the CNAME and the address records are "
		                  "insecure (RFC 7672 §2.2.2)";
		h->level = DANE_LEVEL_OPPORTUNISTIC;
		dane_host_finish(l);
		return;
	}
	dane_host_tlsa_candidates(h, false);
	dane_host_tlsa_next(l);
}

static void
dane_host_addr_done(struct dane_host_lookup *l)
{
	struct dane_host *h = l->h;
	const struct dns_answer *first, *skip = NULL;
	int rc;

	if ((rc = dane_host_addr_errors(h, &skip)) == -1) {
		dane_host_fail(l);
		return;
	}
	h->addr_partial = rc == 1;
	if (skip != h->a)
		dane_host_collect(h, h->a, h->port);
	if (skip != h->aaaa)
		dane_host_collect(h, h->aaaa, h->port);
	if (h->naddr == 0) {
		outcome_set(&h->outcome, OUTCOME_TEMP, "4.4.4", RT_NONE,
		    "%s has no address records (%s)", h->name,
		    dns_answer_nxdomain(h->a) ? "NXDOMAIN" : "no A or AAAA");
		dane_host_fail(l);
		return;
	}
	first = skip != h->a && dns_answer_count(h->a) > 0 ? h->a : h->aaaa;
	h->expanded = xstrdup(dns_answer_canonname(first));
	/* With one family skipped, the one in use is secure (checked). */
	h->addr_secure =
	    (skip == h->a || dns_answer_sec(h->a) == DNS_SEC_SECURE) &&
	    (skip == h->aaaa || dns_answer_sec(h->aaaa) == DNS_SEC_SECURE);
	if (h->addr_secure) {
		dane_host_tlsa_candidates(h, true);
		dane_host_tlsa_next(l);
	} else if (dns_answer_cname_count(first) > 0) {
		/* §2.1.3: learn whether the first CNAME itself is secure. */
		l->q = dns_query(
		    l->r, h->name, DNS_TYPE_CNAME, dane_host_cname_done, l);
	} else {
		/* §2.2.2: no TLSA query for insecure address records. */
		h->tlsa_skipped = "the address records are insecure "
		                  "(RFC 7672 §2.2.2)";
		h->level = DANE_LEVEL_OPPORTUNISTIC;
		dane_host_finish(l);
	}
}

static void
dane_host_a_done(struct dns_answer *a, void *arg)
{
	struct dane_host_lookup *l = arg;

	if (dns_answer_qtype(a) == DNS_TYPE_A) {
		l->h->a = a;
		l->qa = NULL;
	} else {
		l->h->aaaa = a;
		l->qaaaa = NULL;
	}
	if (--l->pending == 0)
		dane_host_addr_done(l);
}

static void
dane_host_tlsa_done(struct dns_answer *a, void *arg)
{
	struct dane_host_lookup *l = arg;
	struct dane_host *h = l->h;
	size_t i = h->ntried++;

	l->q = NULL;
	h->tlsa_ans[i] = a;
	if (dns_answer_status(a) != DNS_OK) {
		dane_outcome_tlsa_lookup(&h->outcome, a);
		dane_host_fail(l);
		return;
	}
	/* §2.2.3: insecure or absent TLSA -> the next candidate. */
	if (dns_answer_sec(a) != DNS_SEC_SECURE || dns_answer_count(a) == 0) {
		dane_host_tlsa_next(l);
		return;
	}
	h->base = xstrdup(h->cand[i]);
	h->tlsa = dane_tlsa_new(a, h->digests);
	/* §2.2: usable records -> authenticate; only unusable -> encrypt. */
	h->level = dane_tlsa_usable_count(h->tlsa) > 0 ? DANE_LEVEL_AUTH :
	                                                 DANE_LEVEL_ENCRYPT;
	dane_host_finish(l);
}

static void
dane_host_tlsa_next(struct dane_host_lookup *l)
{
	struct dane_host *h = l->h;
	char *qname;

	if (h->ntried == h->ncand) {
		h->level = DANE_LEVEL_OPPORTUNISTIC;
		dane_host_finish(l);
		return;
	}
	qname = xasprintf("_%u._tcp.%s", h->port, h->cand[h->ntried]);
	l->q = dns_query(l->r, qname, DNS_TYPE_TLSA, dane_host_tlsa_done, l);
	free(qname);
}

/*
 * A host given as an address literal ("192.0.2.1", "::1"): no DNS, and
 * RFC 7672 §2.2: "When the original next-hop destination is an address
 * literal, rather than a DNS domain, DANE TLS does not apply."
 */
static bool
dane_host_literal(struct dane_host *h)
{
	struct dane_host_addr x;

	memset(&x, 0, sizeof(x));
	if (inet_pton(AF_INET, h->name, &x.u.sin.sin_addr) == 1) {
		x.u.sin.sin_family = AF_INET;
		x.u.sin.sin_port = htons(h->port);
		x.len = sizeof(x.u.sin);
	} else if (inet_pton(AF_INET6, h->name, &x.u.sin6.sin6_addr) == 1) {
		x.u.sin6.sin6_family = AF_INET6;
		x.u.sin6.sin6_port = htons(h->port);
		x.len = sizeof(x.u.sin6);
	} else {
		return false;
	}
	snprintf(x.str, sizeof(x.str), "%s", h->name);
	h->addrs = xmalloc(sizeof(*h->addrs));
	h->addrs[0] = x;
	h->naddr = 1;
	h->tlsa_skipped = "an address literal: DANE does not apply (RFC 7672 "
	                  "§2.2)";
	h->level = DANE_LEVEL_OPPORTUNISTIC;
	return true;
}

static void
dane_host_literal_done(evutil_socket_t fd, short ev, void *arg)
{
	dane_host_finish(arg);
}

struct dane_host_lookup *
dane_host_resolve(struct dns_resolver *r, const struct dane_host_params *p,
    dane_host_cb *cb, void *arg)
{
	struct dane_host_lookup *l = xcalloc(1, sizeof(*l));
	struct dane_host *h = xcalloc(1, sizeof(*h));

	h->name = xstrdup(p->host);
	str_lower(h->name);
	h->port = p->port;
	h->via = p->via;
	h->nexthop = p->nexthop != NULL ? xstrdup(p->nexthop) : NULL;
	h->nexthop_expanded =
	    p->nexthop_expanded != NULL ? xstrdup(p->nexthop_expanded) : NULL;
	h->nexthop_secure = p->nexthop_secure;
	h->digests = str_vec_dup(p->digests);
	outcome_ok(&h->outcome);
	l->r = r;
	l->h = h;
	l->cb = cb;
	l->arg = arg;
	if (dane_host_literal(h)) {
		/* Finish from the loop, never from inside this call. */
		l->literal_ev = evtimer_new(
		    dns_resolver_base(r), dane_host_literal_done, l);
		event_active(l->literal_ev, EV_TIMEOUT, 0);
		return l;
	}
	l->pending = 2;
	/* §2.2.2: address records first, TLSA only after them. */
	l->qa = dns_query(r, h->name, DNS_TYPE_A, dane_host_a_done, l);
	l->qaaaa = dns_query(r, h->name, DNS_TYPE_AAAA, dane_host_a_done, l);
	return l;
}

void
dane_host_cancel(struct dane_host_lookup *l)
{
	if (l == NULL)
		return;
	if (l->qa != NULL)
		dns_query_cancel(l->qa);
	if (l->qaaaa != NULL)
		dns_query_cancel(l->qaaaa);
	if (l->q != NULL)
		dns_query_cancel(l->q);
	if (l->literal_ev != NULL)
		event_free(l->literal_ev);
	dane_host_free(l->h);
	free(l);
}

void
dane_host_free(struct dane_host *h)
{
	size_t i;

	if (h == NULL)
		return;
	dns_answer_free(h->a);
	dns_answer_free(h->aaaa);
	dns_answer_free(h->cname);
	for (i = 0; i < 2; i++) {
		free(h->cand[i]);
		dns_answer_free(h->tlsa_ans[i]);
	}
	dane_tlsa_free(h->tlsa);
	free(h->addrs);
	str_vec_free(h->refnames);
	str_vec_free(h->digests);
	free(h->base);
	free(h->expanded);
	free(h->nexthop);
	free(h->nexthop_expanded);
	free(h->name);
	free(h);
}

const char *
dane_host_name(const struct dane_host *h)
{
	return h->name;
}

enum dane_level
dane_host_level(const struct dane_host *h)
{
	return h->level;
}

const struct outcome *
dane_host_outcome(const struct dane_host *h)
{
	return &h->outcome;
}

size_t
dane_host_addr_count(const struct dane_host *h)
{
	return h->naddr;
}

const struct sockaddr *
dane_host_addr(const struct dane_host *h, size_t i, socklen_t *len)
{
	ASSERT(i < h->naddr);
	*len = h->addrs[i].len;
	return &h->addrs[i].u.sa;
}

const char *
dane_host_addr_str(const struct dane_host *h, size_t i)
{
	ASSERT(i < h->naddr);
	return h->addrs[i].str;
}

bool
dane_host_addr_secure(const struct dane_host *h)
{
	return h->addr_secure;
}

const struct outcome *
dane_host_addr_warning(const struct dane_host *h)
{
	return h->addr_partial ? &h->addr_warning : NULL;
}

const char *
dane_host_expanded(const struct dane_host *h)
{
	return h->expanded != NULL ? h->expanded : h->name;
}

const struct dns_answer *
dane_host_answer_a(const struct dane_host *h)
{
	return h->a;
}

const struct dns_answer *
dane_host_answer_aaaa(const struct dane_host *h)
{
	return h->aaaa;
}

const struct dns_answer *
dane_host_answer_cname(const struct dane_host *h)
{
	return h->cname;
}

size_t
dane_host_tlsa_tried(const struct dane_host *h)
{
	return h->ncand;
}

const char *
dane_host_tlsa_candidate(const struct dane_host *h, size_t i)
{
	ASSERT(i < h->ncand);
	return h->cand[i];
}

const struct dns_answer *
dane_host_tlsa_answer(const struct dane_host *h, size_t i)
{
	ASSERT(i < h->ncand);
	return h->tlsa_ans[i];
}

const char *
dane_host_tlsa_skipped(const struct dane_host *h)
{
	return h->tlsa_skipped;
}

const char *
dane_host_base(const struct dane_host *h)
{
	return h->base;
}

const struct dane_tlsa *
dane_host_tlsa(const struct dane_host *h)
{
	return h->tlsa;
}

char **
dane_host_refnames(const struct dane_host *h)
{
	return h->refnames;
}

bool
dane_host_verified_path(const struct dane_host *h)
{
	switch (h->via) {
	case DANE_VIA_MX_SECURE:
	case DANE_VIA_ROUTE:
		return true;
	case DANE_VIA_IMPLICIT:
		return h->nexthop_secure;
	case DANE_VIA_MX_INSECURE:
		return false;
	}
	return false;
}

SSL *
dane_host_ssl_new(const struct dane_host *h, SSL_CTX *ctx, const char **errstr)
{
	const struct tls_tlsa *recs;
	SSL *ssl;
	size_t n;

	*errstr = NULL;
	if ((ssl = SSL_new(ctx)) == NULL) {
		*errstr = "SSL_new failed";
		return NULL;
	}
	if (h->level != DANE_LEVEL_AUTH) {
		tls_plain_setup(ssl, h->name);
		return ssl;
	}
	recs = dane_tlsa_usable_recs(h->tlsa, &n);
	/* refnames[0] is the base domain; the others are extra names. */
	if (tls_dane_setup(ssl, h->base, h->refnames + 1, recs, n, errstr) <=
	    0) {
		if (*errstr == NULL)
			*errstr =
			    "OpenSSL found none of the TLSA records usable";
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

bool
dane_host_verify(const struct dane_host *h, SSL *ssl, struct outcome *o)
{
	uint8_t u, s, m;
	long err;

	outcome_ok(o);
	if (h->level != DANE_LEVEL_AUTH)
		return true;
	err = tls_verify_result(ssl);
	/* RFC 7672 §3.2: with usable TLSA, authentication MUST succeed. */
	if (err == X509_V_OK && tls_dane_matched(ssl, &u, &s, &m) >= 0)
		return true;
	dane_outcome_verify(o, err, h->name);
	return false;
}
