/*
 * relay_dns: the resolver's state for the daemon (relay_dns.h).
 *
 * Mail is never delivered without DNSSEC validation (RFC 7672 §2.1.1): a
 * resolver that answers but cannot validate keeps deliveries deferred just
 * like one that does not answer. While the self-test fails, each retry
 * starts from a fresh libunbound context (dns_resolver_reset), because
 * libunbound marks servers that stopped answering as down and would wait
 * minutes before it asks them again.
 */
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "deliver/deliver.h"
#include "dns/dns.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "relay/relay_dns.h"

/* Deferrals this long before an outage was noticed are retried with it. */
#define RELAY_DNS_MARGIN 60

struct relay_dns {
	struct event_base *base;
	struct dns_resolver *res;
	struct deliver *d;
	struct queue *q;
	struct event *timer;
	struct dns_query *query; /* self-test in flight, or NULL */
	enum deliver_dns state;
	time_t down_since; /* when deferrals for DNS began */
	time_t trouble_at; /* first lookup failure reported since OK, or 0 */
	time_t last_test;
	char why[512]; /* last failure, to log changes only */
};

static void relay_dns_test(struct relay_dns *rd);

int
relay_dns_explain(const struct dns_answer *a, char *out, size_t outlen)
{
	const char *err = dns_selftest_explain(a);
	enum dns_status st = dns_answer_status(a);

	if (err == NULL)
		return 1;
	if (st == DNS_ERR_TIMEOUT)
		snprintf(out, outlen,
		    "resolver unreachable (timeout): no DNS server answered "
		    "the root DNSKEY query");
	else if (st == DNS_ERR_SERVFAIL)
		snprintf(out, outlen,
		    "resolver failing (SERVFAIL): the root DNSKEY lookup was "
		    "answered SERVFAIL; the trust anchor cannot be primed");
	else
		snprintf(out, outlen, "DNSSEC validation fails: %s", err);
	return 0;
}

static void
relay_dns_passed(struct relay_dns *rd)
{
	time_t now = time(NULL);
	int n;

	if (rd->state == DELIVER_DNS_DOWN) {
		n = queue_retry_since(rd->q, rd->down_since, now);
		log_info("dns: DNSSEC validation self-test passed; deliveries "
		         "resume (%d recipients deferred during the outage "
		         "are due now)",
		    n);
	} else if (rd->state == DELIVER_DNS_UNKNOWN)
		log_info("dns: DNSSEC validation self-test passed");
	rd->state = DELIVER_DNS_OK;
	metrics_dnssec_selftest(true);
	rd->why[0] = '\0';
	rd->trouble_at = 0;
	deliver_set_dns(rd->d, DELIVER_DNS_OK, NULL);
}

static void
relay_dns_failed(struct relay_dns *rd, const char *why)
{
	struct timeval tv = { RELAY_DNS_RETRY, 0 };
	char reason[700];
	time_t now = time(NULL);

	if (rd->state != DELIVER_DNS_DOWN)
		rd->down_since = rd->trouble_at != 0 ?
		    rd->trouble_at - RELAY_DNS_MARGIN :
		    now;
	if (rd->state != DELIVER_DNS_DOWN || strcmp(rd->why, why) != 0)
		log_warnx("dns: %s; deliveries deferred; retrying self-test "
		          "every %ds",
		    why, RELAY_DNS_RETRY);
	snprintf(rd->why, sizeof(rd->why), "%s", why);
	rd->state = DELIVER_DNS_DOWN;
	metrics_dnssec_selftest(false);
	snprintf(reason, sizeof(reason),
	    "DNS unusable: %s (deferred until the resolver's DNSSEC "
	    "validation self-test passes)",
	    why);
	deliver_set_dns(rd->d, DELIVER_DNS_DOWN, reason);
	evtimer_add(rd->timer, &tv);
}

static void
relay_dns_answer(struct dns_answer *a, void *arg)
{
	struct relay_dns *rd = arg;
	char why[512];

	rd->query = NULL;
	if (relay_dns_explain(a, why, sizeof(why)))
		relay_dns_passed(rd);
	else
		relay_dns_failed(rd, why);
	dns_answer_free(a);
}

/* Forget that the servers were down: ask them afresh. */
static void
relay_dns_reset(struct relay_dns *rd)
{
	char *err = NULL;

	if (dns_resolver_reset(rd->res, &err) == 0)
		return;
	log_warnx("dns: %s", err != NULL ? err : "cannot reset the resolver");
	free(err);
}

static void
relay_dns_test(struct relay_dns *rd)
{
	if (rd->query != NULL)
		return;
	if (rd->state == DELIVER_DNS_DOWN)
		relay_dns_reset(rd);
	rd->last_test = time(NULL);
	rd->query = dns_selftest(rd->res, relay_dns_answer, rd);
}

static void
relay_dns_timer(evutil_socket_t fd, short ev, void *arg)
{
	relay_dns_test(arg);
}

struct relay_dns *
relay_dns_new(struct event_base *base, struct dns_resolver *res,
    struct deliver *d, struct queue *q)
{
	struct relay_dns *rd = xcalloc(1, sizeof(*rd));

	rd->base = base;
	rd->res = res;
	rd->d = d;
	rd->q = q;
	rd->state = DELIVER_DNS_UNKNOWN;
	rd->timer = evtimer_new(base, relay_dns_timer, rd);
	deliver_set_dns(d, DELIVER_DNS_UNKNOWN, NULL);
	relay_dns_test(rd);
	return rd;
}

void
relay_dns_trouble(struct relay_dns *rd)
{
	time_t now = time(NULL);

	if (rd->state != DELIVER_DNS_OK || rd->query != NULL ||
	    now - rd->last_test < RELAY_DNS_RETRY)
		return;
	if (rd->trouble_at == 0)
		rd->trouble_at = now;
	relay_dns_test(rd);
}

void
relay_dns_free(struct relay_dns *rd)
{
	if (rd == NULL)
		return;
	dns_query_cancel(rd->query);
	event_free(rd->timer);
	free(rd);
}
