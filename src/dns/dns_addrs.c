/*
 * dns_addrs: two queries, one callback when the second answer is in.
 */
#include "dns/dns_addrs.h"

#include <stdlib.h>

#include "core/xmalloc.h"
#include "dns/dns.h"

struct dns_addrs_lookup {
	struct dns_query *a_q, *aaaa_q;
	char **addrs;
	size_t n, max;
	char *error;
	dns_addrs_cb *cb;
	void *arg;
};

static void
dns_addrs_free(struct dns_addrs_lookup *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->addrs[i]);
	free(l->addrs);
	free(l->error);
	free(l);
}

static void
dns_addrs_take(struct dns_addrs_lookup *l, struct dns_answer *a)
{
	struct dns_addrs_result r;
	char buf[64];
	size_t i;

	if (dns_answer_status(a) != DNS_OK && l->error == NULL)
		l->error = xstrdup(
		    dns_answer_error(a) != NULL ? dns_answer_error(a) : "?");
	for (i = 0; dns_answer_status(a) == DNS_OK && i < dns_answer_count(a) &&
	     l->n < l->max;
	     i++)
		if (dns_answer_addr_str(a, i, buf, sizeof(buf)) == 0)
			l->addrs[l->n++] = xstrdup(buf);
	dns_answer_free(a);
	if (l->a_q != NULL || l->aaaa_q != NULL)
		return;
	r.addrs = l->addrs;
	r.n = l->n;
	r.error = l->error;
	l->cb(&r, l->arg);
	dns_addrs_free(l);
}

static void
dns_addrs_a(struct dns_answer *a, void *arg)
{
	struct dns_addrs_lookup *l = arg;

	l->a_q = NULL;
	dns_addrs_take(l, a);
}

static void
dns_addrs_aaaa(struct dns_answer *a, void *arg)
{
	struct dns_addrs_lookup *l = arg;

	l->aaaa_q = NULL;
	dns_addrs_take(l, a);
}

struct dns_addrs_lookup *
dns_addrs(struct dns_resolver *r, const char *host, size_t max,
    dns_addrs_cb *cb, void *arg)
{
	struct dns_addrs_lookup *l = xcalloc(1, sizeof(*l));

	l->addrs = xcalloc(max > 0 ? max : 1, sizeof(char *));
	l->max = max;
	l->cb = cb;
	l->arg = arg;
	l->a_q = dns_query(r, host, DNS_TYPE_A, dns_addrs_a, l);
	l->aaaa_q = dns_query(r, host, DNS_TYPE_AAAA, dns_addrs_aaaa, l);
	return l;
}

void
dns_addrs_cancel(struct dns_addrs_lookup *l)
{
	if (l == NULL)
		return;
	dns_query_cancel(l->a_q);
	dns_query_cancel(l->aaaa_q);
	dns_addrs_free(l);
}
