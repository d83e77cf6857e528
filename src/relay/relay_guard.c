/*
 * relay_guard: our certificate against our own TLSA records.
 */
#include "relay/relay_guard.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "dane/dane_tlsa.h"
#include "dns/dns.h"
#include "tls/tls_cert.h"
#include "tls/tls_guard.h"

struct guard_wait {
	struct dns_answer *a;
	bool done;
};

static void
relay_guard_cb(struct dns_answer *a, void *arg)
{
	struct guard_wait *w = arg;

	w->a = a;
	w->done = true;
}

static struct dns_answer *
relay_guard_lookup(
    struct event_base *base, struct dns_resolver *r, const char *qname)
{
	struct guard_wait w = { NULL, false };

	dns_query(r, qname, DNS_TYPE_TLSA, relay_guard_cb, &w);
	while (!w.done)
		event_base_loop(base, EVLOOP_ONCE);
	return w.a;
}

static void
relay_guard_oneline(char *s)
{
	size_t n;

	if (s == NULL)
		return;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	for (; *s != '\0'; s++)
		if (*s == '\n')
			*s = ';';
}

int
relay_guard_judge(const struct dns_answer *a, const char *qname,
    STACK_OF(X509) *chain, char **digests, struct buf *msg)
{
	const struct tls_tlsa *recs;
	struct dane_tlsa *t = NULL;
	char *suggest = NULL;
	int rc = 0;
	size_t n;

	if (dns_answer_status(a) != DNS_OK) {
		buf_printf(msg,
		    "%s: TLSA lookup failed (%s); certificate not "
		    "checked. ",
		    qname, dns_status_str(dns_answer_status(a)));
	} else if (dns_answer_sec(a) != DNS_SEC_SECURE ||
	    dns_answer_count(a) == 0) {
		buf_printf(msg,
		    "%s: no secure TLSA records; nothing to "
		    "check. ",
		    qname);
	} else {
		t = dane_tlsa_new(a, digests);
		recs = dane_tlsa_usable_recs(t, &n);
		if (n == 0) {
			buf_printf(msg, "%s: no usable TLSA record. ", qname);
		} else if (tls_guard_match(chain, recs, n, qname, &suggest) ==
		    1) {
			buf_printf(msg,
			    "%s: the certificate matches the "
			    "published TLSA records. ",
			    qname);
			rc = 1;
		} else {
			/* One line in the log: records separated by "; ". */
			relay_guard_oneline(suggest);
			buf_printf(msg,
			    "the certificate matches none of the "
			    "%zu TLSA records at %s; serving it would make "
			    "every DANE sender refuse this server. Publish "
			    "first: %s (then wait for the TTL and reload). ",
			    n, qname, suggest != NULL ? suggest : "?");
			rc = -1;
		}
	}
	free(suggest);
	dane_tlsa_free(t);
	return rc;
}

/* One port: 1 = matches, 0 = nothing to match, -1 = mismatch. */
static int
relay_guard_port(struct event_base *base, struct dns_resolver *r,
    const char *qname, STACK_OF(X509) *chain, char **digests, struct buf *msg)
{
	struct dns_answer *a = relay_guard_lookup(base, r, qname);
	int rc = relay_guard_judge(a, qname, chain, digests, msg);

	dns_answer_free(a);
	return rc;
}

int
relay_guard_check(struct event_base *base, struct dns_resolver *r,
    const char *hostname, const uint16_t *ports, size_t nports,
    const char *cert_file, char **digests, char **msg)
{
	STACK_OF(X509) *chain;
	const char *err;
	struct buf b;
	char qname[300];
	size_t i;
	int rc = 0, one;

	*msg = NULL;
	buf_init(&b, 16384);
	if ((chain = tls_load_certs(cert_file, &err)) == NULL) {
		*msg = xasprintf("%s: %s", cert_file, err);
		buf_free(&b);
		return -1;
	}
	for (i = 0; i < nports; i++) {
		snprintf(
		    qname, sizeof(qname), "_%u._tcp.%s", ports[i], hostname);
		one = relay_guard_port(base, r, qname, chain, digests, &b);
		if (one < 0 || (one > 0 && rc == 0))
			rc = one;
	}
	sk_X509_pop_free(chain, X509_free);
	*msg = b.len > 0 ? buf_steal(&b) : NULL;
	buf_free(&b);
	return rc;
}
