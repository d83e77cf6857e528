/*
 * dns_resolver: libunbound on the process's libevent loop.
 *
 * The context is made with ub_ctx_create_event(), so libunbound registers
 * its sockets and timers on our event_base and reports through
 * ub_resolve_event() callbacks; no thread, no pipe.
 *
 * Each dns_query is our own record with one libevent timer. The timer is
 * first the query's deadline; when libunbound answers, the answer is
 * stored and the timer is re-armed to fire at once. The caller's callback
 * therefore always runs from that timer at the top of the loop: never from
 * inside dns_query(), never nested inside libunbound (so a callback may
 * start queries, cancel others or free the whole resolver).
 *
 * libunbound keeps a pointer to our record while the query is pending in
 * it (ub_pending). ub_cancel() on an event context only marks its query
 * cancelled: the resolution goes on and the callback is suppressed when it
 * finishes, also when ub_ctx_delete() tears down unfinished queries. So
 * after ub_cancel() succeeds our record may be freed at once; that is how
 * a deadline, dns_query_cancel() and dns_resolver_free() drop a late answer.
 */
#include "dns/dns.h"

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unbound-event.h>
#include <unbound.h>

#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dns/dns_answer.h"
#include "dns/dns_name.h"
#include "dns/dns_setup.h"

#define DEFAULT_TIMEOUT_MS 30000
#define CLASS_IN           1

struct dns_query {
	TAILQ_ENTRY(dns_query) entry;
	struct dns_resolver *r;
	char *name; /* normalized */
	uint16_t type;
	dns_cb *cb;
	void *arg;
	struct event *timer;       /* deadline, then delivery */
	struct dns_answer *answer; /* set once known */
	int async_id;
	bool ub_pending;      /* libunbound holds a pointer to us */
	struct timespec sent; /* CLOCK_MONOTONIC, when libunbound got it */
};

struct dns_resolver {
	struct event_base *base;
	struct ub_ctx *ctx;
	unsigned timeout_ms;
	/* what the context was made from, for dns_resolver_reset() */
	char *trust_anchor_file;
	char **root_servers;
	char **forwarders;
	TAILQ_HEAD(, dns_query) queries;
};

static const struct timeval now_tv = { 0, 0 };

/* Drop q: tell libunbound to forget it, then free our record. */
static void
query_release(struct dns_query *q)
{
	struct dns_resolver *r = q->r;

	/*
	 * Success means libunbound will never call back for this id;
	 * UB_NOID means it already has (or never held q). Either way q may
	 * go. Other codes exist only for forked (non-event) contexts.
	 */
	if (q->ub_pending)
		(void)ub_cancel(r->ctx, q->async_id);
	TAILQ_REMOVE(&r->queries, q, entry);
	event_free(q->timer);
	dns_answer_free(q->answer);
	free(q->name);
	free(q);
}

static void
query_trace(const struct dns_query *q, const struct dns_answer *a)
{
	if (!log_trace_on(LOG_CAT_DNS))
		return;
	log_trace(LOG_CAT_DNS,
	    "dns: %s/%s status=%s sec=%s rcode=%d "
	    "count=%zu ttl=%u%s%s",
	    q->name, dns_type_str(q->type),
	    dns_status_str(dns_answer_status(a)),
	    dns_sec_str(dns_answer_sec(a)), dns_answer_rcode(a),
	    dns_answer_count(a), (unsigned)dns_answer_ttl(a),
	    dns_answer_error(a) != NULL ? " error=" : "",
	    dns_answer_error(a) != NULL ? dns_answer_error(a) : "");
}

/* The query's timer: deliver the stored answer, or report the deadline. */
static void
query_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_answer *a = q->answer;
	dns_cb *cb = q->cb;
	void *cbarg = q->arg;
	char *text;

	if (a == NULL) {
		text = xasprintf("no answer within %u ms", q->r->timeout_ms);
		a = dns_answer_new_error(
		    q->name, q->type, DNS_ERR_TIMEOUT, text);
		free(text);
	}
	q->answer = NULL;
	query_trace(q, a);
	/* q is gone before the callback, which may free the resolver. */
	query_release(q);
	cb(a, cbarg);
}

/* Deliver a from the top of the loop, replacing any deadline. */
static void
query_answer(struct dns_query *q, struct dns_answer *a)
{
	dns_answer_free(q->answer);
	q->answer = a;
	evtimer_add(q->timer, &now_tv);
}

/*
 * libunbound's callback (unbound-event.h). It may run inside
 * ub_resolve_event() itself (local data, cached answers), so it only
 * stores the answer.
 */
static void
query_ub_cb(void *arg, int rcode, void *pkt, int len, int sec, char *why_bogus,
    int was_ratelimited)
{
	struct dns_query *q = arg;
	struct dns_answer *a;
	struct timespec now;
	long ms;
	char *text;

	q->ub_pending = false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long)(now.tv_sec - q->sent.tv_sec) * 1000 +
	    (now.tv_nsec - q->sent.tv_nsec) / 1000000;
	if (dns_answer_servfail_timeout(rcode, sec, ms)) {
		text = xasprintf("timeout: no DNS server answered within "
		                 "%ld.%ld s (libunbound gave up and reports "
		                 "SERVFAIL)",
		    ms / 1000, (ms % 1000) / 100);
		a = dns_answer_new_error(
		    q->name, q->type, DNS_ERR_TIMEOUT, text);
		free(text);
	} else
		a = dns_answer_new_unbound(
		    q->name, q->type, rcode, pkt, len, sec, why_bogus);
	query_answer(q, a);
}

/* Fail q with text (takes ownership). */
static void
query_fail(struct dns_query *q, enum dns_status st, char *text)
{
	query_answer(q, dns_answer_new_error(q->name, q->type, st, text));
	free(text);
}

struct dns_query *
dns_query(struct dns_resolver *r, const char *name, uint16_t type, dns_cb *cb,
    void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	struct timeval tv;
	const char *err;
	int rc;

	q->r = r;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	q->timer = evtimer_new(r->base, query_timer_cb, q);
	ASSERT(q->timer != NULL);
	TAILQ_INSERT_TAIL(&r->queries, q, entry);
	if ((err = dns_name_check(name)) != NULL) {
		q->name = xstrdup(name != NULL ? name : "");
		query_fail(
		    q, DNS_ERR_OTHER, xasprintf("bad query name: %s", err));
		return q;
	}
	q->name = dns_name_normalize(name);
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
	evtimer_add(q->timer, &tv);
	log_trace(LOG_CAT_DNS, "dns: query %s/%s", q->name, dns_type_str(type));
	q->ub_pending = true;
	clock_gettime(CLOCK_MONOTONIC, &q->sent);
	rc = ub_resolve_event(
	    r->ctx, q->name, type, CLASS_IN, q, query_ub_cb, &q->async_id);
	if (rc != 0) {
		q->ub_pending = false;
		query_fail(q, DNS_ERR_OTHER,
		    xasprintf("resolver error: %s", ub_strerror(rc)));
	}
	return q;
}

void
dns_query_cancel(struct dns_query *q)
{
	if (q != NULL)
		query_release(q);
}

/*
 * Finalize the context now, so that a bad trust anchor file fails
 * dns_resolver_new() instead of the first query. libunbound logs the
 * reason rather than returning it, so its log is caught for the message.
 */
static int
resolver_finalize(struct ub_ctx *ctx, char **errstr)
{
	char *log = NULL, *e, *nl;
	size_t loglen = 0;
	FILE *f = open_memstream(&log, &loglen);
	int rc;

	if (f != NULL)
		ub_ctx_debugout(ctx, f);
	/* Removing a zone that does not exist finalizes and does nothing. */
	rc = ub_ctx_zone_remove(ctx, "finalize.danerelay.invalid.");
	ub_ctx_debugout(ctx, stderr);
	if (f != NULL)
		fclose(f);
	if (rc != 0) {
		e = log != NULL ? strstr(log, "error: ") : NULL;
		if (e != NULL && (nl = strchr(e, '\n')) != NULL)
			*nl = '\0';
		*errstr = xasprintf("cannot start the resolver: %s%s%s",
		    ub_strerror(rc), e != NULL ? ": " : "",
		    e != NULL ? e + strlen("error: ") : "");
	}
	free(log);
	return rc != 0 ? -1 : 0;
}

/* A fresh, finalized context for opt, or NULL with *errstr. */
static struct ub_ctx *
resolver_ctx_new(
    struct event_base *base, const struct dns_options *opt, char **errstr)
{
	struct ub_ctx *ctx;

	if ((ctx = ub_ctx_create_event(base)) == NULL) {
		*errstr = xstrdup("cannot create the libunbound context");
		return NULL;
	}
	if (dns_setup_apply(ctx, opt, errstr) == -1 ||
	    resolver_finalize(ctx, errstr) == -1 ||
	    dns_setup_finish(ctx, opt, errstr) == -1) {
		ub_ctx_delete(ctx);
		return NULL;
	}
	return ctx;
}

struct dns_resolver *
dns_resolver_new(
    struct event_base *base, const struct dns_options *opt, char **errstr)
{
	struct dns_resolver *r;
	struct ub_ctx *ctx;

	if ((ctx = resolver_ctx_new(base, opt, errstr)) == NULL)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->ctx = ctx;
	r->timeout_ms =
	    opt->timeout_ms != 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
	r->trust_anchor_file = opt->trust_anchor_file != NULL ?
	    xstrdup(opt->trust_anchor_file) :
	    NULL;
	r->root_servers = str_vec_dup(opt->root_servers);
	r->forwarders = str_vec_dup(opt->forwarders);
	TAILQ_INIT(&r->queries);
	return r;
}

int
dns_resolver_reset(struct dns_resolver *r, char **errstr)
{
	struct dns_options o = { 0 };
	struct dns_query *q, *next;
	struct ub_ctx *ctx;

	o.trust_anchor_file = r->trust_anchor_file;
	o.root_servers = r->root_servers;
	o.forwarders = r->forwarders;
	o.timeout_ms = r->timeout_ms;
	if ((ctx = resolver_ctx_new(r->base, &o, errstr)) == NULL)
		return -1;
	/* Queries of the old context end now, as errors, from the loop. */
	for (q = TAILQ_FIRST(&r->queries); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (!q->ub_pending)
			continue; /* answered, waiting for its timer */
		(void)ub_cancel(r->ctx, q->async_id);
		q->ub_pending = false;
		query_fail(q, DNS_ERR_TIMEOUT,
		    xstrdup("the resolver was restarted before an answer"));
	}
	ub_ctx_delete(r->ctx);
	r->ctx = ctx;
	return 0;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	struct dns_query *q;

	if (r == NULL)
		return;
	/* Cancel first: ub_ctx_delete() would call back for the rest. */
	while ((q = TAILQ_FIRST(&r->queries)) != NULL)
		query_release(q);
	ub_ctx_delete(r->ctx);
	free(r->trust_anchor_file);
	str_vec_free(r->root_servers);
	str_vec_free(r->forwarders);
	free(r);
}

struct event_base *
dns_resolver_base(const struct dns_resolver *r)
{
	return r->base;
}
