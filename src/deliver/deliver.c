/*
 * deliver: the scheduler. A timer (and deliver_wake) scans the queue for
 * due recipients, files each under its destination domain, and starts jobs
 * within the destination's concurrency limit, which starts small and grows
 * with success (slow start). A destination whose connections keep failing
 * is left alone for a while (dead-destination cache): its recipients are
 * deferred with the last reason instead of hammering it.
 */
#include <event2/event.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "deliver/deliver_int.h"
#include "tls/tls_gate.h"

#define DELIVER_SCAN_BATCH     500
#define DELIVER_SCAN_PAGE      500
#define DELIVER_SHUTDOWN_GRACE 10 /* seconds */
#define DELIVER_JOB_MAX_RCPTS  1000
/*
 * Recipients waiting in memory for a connection at most: a queue of any
 * size is read in slices, so memory follows the concurrency, not the
 * queue (docs/PERFORMANCE.md). Below half of it the queue is read again.
 */
#define DELIVER_PENDING_MAX 1000
/* Messages a job takes at once; it takes more over the same connection
 * when they are done (each outcome handed over as its reply came). */
#define DELIVER_JOB_TAKE 50
/*
 * Another connection to a destination only for a backlog its running
 * jobs will not soon take: a job that goes idle takes what is pending at
 * once, over its open connection (no lookup, no handshake).
 */
#define DELIVER_BACKLOG_PER_JOB 50

/*
 * A TLS handshake slot (tls/tls_gate.h) counts for at most this long: a
 * handshake takes milliseconds of CPU and a round trip or two, so only a
 * stalling peer gets near it, and then it no longer holds others back.
 */
#define DELIVER_TLS_SLOT_MS 5000

/* --- the set of recipient ids in flight (open addressing, id > 0) --- */

static size_t
deliver_slot(const struct deliver *d, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 32) & (d->inflight_cap - 1);
}

static bool
deliver_inflight_has(const struct deliver *d, int64_t id)
{
	size_t i;

	if (d->inflight_cap == 0)
		return false;
	for (i = deliver_slot(d, id); d->inflight[i] != 0;
	     i = (i + 1) & (d->inflight_cap - 1))
		if (d->inflight[i] == id)
			return true;
	return false;
}

static void
deliver_inflight_put(struct deliver *d, int64_t id)
{
	size_t i, old = d->inflight_cap;
	int64_t *tab = d->inflight;

	if ((d->inflight_n + 1) * 2 > d->inflight_cap) {
		d->inflight_cap = old == 0 ? 1024 : old * 2;
		d->inflight = xcalloc(d->inflight_cap, sizeof(int64_t));
		d->inflight_n = 0;
		for (i = 0; i < old; i++)
			if (tab[i] > 0)
				deliver_inflight_put(d, tab[i]);
		free(tab);
	}
	for (i = deliver_slot(d, id); d->inflight[i] > 0;
	     i = (i + 1) & (d->inflight_cap - 1))
		;
	d->inflight[i] = id;
	d->inflight_n++;
}

void
deliver_inflight_del(struct deliver *d, int64_t id)
{
	size_t i, j;
	int64_t moved;

	if (d->inflight_cap == 0)
		return;
	for (i = deliver_slot(d, id); d->inflight[i] != 0;
	     i = (i + 1) & (d->inflight_cap - 1)) {
		if (d->inflight[i] != id)
			continue;
		/* Re-insert the rest of the cluster (no tombstones). */
		d->inflight[i] = 0;
		d->inflight_n--;
		for (j = (i + 1) & (d->inflight_cap - 1); d->inflight[j] != 0;
		     j = (j + 1) & (d->inflight_cap - 1)) {
			moved = d->inflight[j];
			d->inflight[j] = 0;
			d->inflight_n--;
			deliver_inflight_put(d, moved);
		}
		return;
	}
}

/* --- destinations --- */

static size_t
deliver_dest_hash(const struct deliver *d, const char *domain, bool report)
{
	uint64_t h = report ? 0x84222325cbf29ce4ULL : 0xcbf29ce484222325ULL;

	for (; *domain != '\0'; domain++)
		h = (h ^ (uint8_t)*domain) * 0x100000001b3ULL;
	return (size_t)(h ^ (h >> 29)) & (d->dtab_cap - 1);
}

/* Grow the table when it is more than half full: O(1) lookups for any
 * number of destinations. */
static void
deliver_dtab_grow(struct deliver *d)
{
	struct ddest *dest;
	size_t i;

	if (d->dtab_cap != 0 && (d->ndests + 1) * 2 <= d->dtab_cap)
		return;
	free(d->dtab);
	d->dtab_cap = d->dtab_cap == 0 ? 256 : d->dtab_cap * 2;
	d->dtab = xcalloc(d->dtab_cap, sizeof(*d->dtab));
	TAILQ_FOREACH (dest, &d->dests, entry) {
		i = deliver_dest_hash(d, dest->domain, dest->report);
		dest->hnext = d->dtab[i];
		d->dtab[i] = dest;
	}
}

static struct ddest *
deliver_dest_get(struct deliver *d, const char *domain, bool report)
{
	struct ddest *dest;
	size_t i;

	if (d->dtab_cap > 0)
		for (dest = d->dtab[deliver_dest_hash(d, domain, report)];
		     dest != NULL; dest = dest->hnext)
			if (dest->report == report &&
			    strcmp(dest->domain, domain) == 0)
				return dest;
	deliver_dtab_grow(d);
	dest = xcalloc(1, sizeof(*dest));
	dest->domain = xstrdup(domain);
	dest->report = report;
	dest->limit = d->cfg.initial_concurrency;
	TAILQ_INIT(&dest->pending);
	TAILQ_INIT(&dest->idle);
	TAILQ_INSERT_TAIL(&d->dests, dest, entry);
	i = deliver_dest_hash(d, domain, report);
	dest->hnext = d->dtab[i];
	d->dtab[i] = dest;
	d->ndests++;
	return dest;
}

static void
deliver_dest_free(struct deliver *d, struct ddest *dest)
{
	struct ddest **pp;
	struct drcpt *r;

	while ((r = TAILQ_FIRST(&dest->pending)) != NULL) {
		TAILQ_REMOVE(&dest->pending, r, entry);
		d->npending--;
		deliver_inflight_del(d, r->id);
		drcpt_free(r);
	}
	for (pp = &d->dtab[deliver_dest_hash(d, dest->domain, dest->report)];
	     *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == dest) {
			*pp = dest->hnext;
			break;
		}
	d->ndests--;
	TAILQ_REMOVE(&d->dests, dest, entry);
	free(dest->domain);
	free(dest);
}

void
drcpt_free(struct drcpt *r)
{
	if (r == NULL)
		return;
	free(r->addr);
	free(r->orcpt);
	free(r->remote);
	free(r->o);
	free(r);
}

/* Where a scan page ended, and how many new recipients it found. */
struct deliver_page {
	struct deliver *d;
	time_t last_next;
	int64_t last_id;
	size_t added;
};

static void
deliver_scan_one(const struct queue_rcpt *qr, void *arg)
{
	struct deliver_page *pg = arg;
	struct deliver *d = pg->d;
	struct ddest *dest;
	struct drcpt *r;

	pg->last_next = qr->next_attempt;
	pg->last_id = qr->id;
	if (deliver_inflight_has(d, qr->id))
		return;
	pg->added++;
	r = xcalloc(1, sizeof(*r));
	r->id = qr->id;
	memcpy(r->msgid, qr->msgid, QUEUE_ID_LEN);
	r->addr = xstrdup(qr->addr);
	r->orcpt = qr->orcpt != NULL ? xstrdup(qr->orcpt) : NULL;
	r->notify = qr->notify;
	r->queued_at = qr->queued_at;
	r->attempts = qr->attempts;
	r->delay_warned = qr->delay_warned;
	r->bounce_now = qr->bounce_requested;
	r->report = qr->kind == QUEUE_KIND_REPORT;
	dest = deliver_dest_get(d, qr->domain, qr->kind == QUEUE_KIND_REPORT);
	TAILQ_INSERT_TAIL(&dest->pending, r, entry);
	dest->npending++;
	d->npending++;
	deliver_inflight_put(d, r->id);
}

/*
 * Take up to max pending recipients of at most max_msgs messages, keeping
 * each message's together (they are adjacent: the queue is read in id
 * order). O(taken).
 */
static size_t
deliver_take(struct deliver *d, struct ddest *dest, struct drcpt **out,
    size_t max, unsigned max_msgs)
{
	struct drcpt *r;
	size_t n = 0;
	unsigned msgs = 0;
	bool same;

	while ((r = TAILQ_FIRST(&dest->pending)) != NULL && n < max) {
		same = n > 0 && strcmp(out[n - 1]->msgid, r->msgid) == 0;
		if (!same && msgs == max_msgs)
			break;
		msgs += same ? 0 : 1;
		TAILQ_REMOVE(&dest->pending, r, entry);
		dest->npending--;
		d->npending--;
		out[n++] = r;
	}
	return n;
}

/*
 * Nothing to do for dest, and nothing to remember: a destination with
 * recent connection failures is kept, or the dead-destination cache would
 * forget it between two messages.
 */
static bool
deliver_dest_idle(const struct deliver *d, const struct ddest *dest)
{
	time_t now = time(NULL);

	return dest->npending == 0 && dest->active == 0 &&
	    now >= dest->dead_until &&
	    (dest->fails == 0 || now - dest->last_fail >= d->cfg.dead_time);
}

/* How many messages a (new, or idle: j) job takes now. */
static unsigned
deliver_job_take(const struct deliver *d, const struct job *j)
{
	unsigned room =
	    j != NULL ? deliver_job_room(j) : d->cfg.max_msgs_per_conn;

	return room < DELIVER_JOB_TAKE ? room : DELIVER_JOB_TAKE;
}

/* What a running job will take by itself when it is free again. */
static size_t
deliver_backlog(const struct deliver *d)
{
	/* A connection carries max_msgs_per_conn messages: after its
	 * current one, a job takes at most that many less one. */
	return d->cfg.max_msgs_per_conn - 1 < DELIVER_BACKLOG_PER_JOB ?
	    d->cfg.max_msgs_per_conn - 1 :
	    DELIVER_BACKLOG_PER_JOB;
}

void
deliver_dest_kick(struct deliver *d, struct ddest *dest)
{
	struct drcpt **batch;
	struct job *j;
	size_t n;

	while (!d->stopping && !d->paused && dest->npending > 0) {
		/* An open connection first: no lookup, no handshake. */
		if ((j = deliver_job_idle_take(dest)) == NULL &&
		    (dest->active >= dest->limit ||
		        (dest->active > 0 &&
		            dest->npending <=
		                dest->active * deliver_backlog(d))))
			break;
		batch = xcalloc(DELIVER_JOB_MAX_RCPTS, sizeof(*batch));
		n = deliver_take(d, dest, batch, DELIVER_JOB_MAX_RCPTS,
		    deliver_job_take(d, j));
		if (j != NULL)
			deliver_job_resume(j, batch, n);
		else {
			dest->active++;
			d->jobs++;
			/* A dead destination gets a job too: it defers at
			 * once. */
			deliver_job_start(d, dest, batch, n);
		}
		free(batch);
	}
	/* The waiting ones are taken: read the next slice of the queue. */
	if (d->more_due && d->npending < DELIVER_PENDING_MAX / 2) {
		d->more_due = false;
		d->slice = true;
		deliver_wake(d);
	}
	if (deliver_dest_idle(d, dest))
		deliver_dest_free(d, dest);
}

void
deliver_dest_ok(struct deliver *d, struct ddest *dest)
{
	/* Slow start: each good connection (or chunk over one) adds one. */
	dest->fails = 0;
	if (dest->limit < d->cfg.concurrency)
		dest->limit++;
}

/* A connection to dest failed: dead_after of them in a row make it dead. */
static void
deliver_dest_failed(struct deliver *d, struct ddest *dest)
{
	dest->last_fail = time(NULL);
	if (++dest->fails < d->cfg.dead_after)
		return;
	dest->dead_until = dest->last_fail + d->cfg.dead_time;
	dest->limit = d->cfg.initial_concurrency;
}

void
deliver_job_finished(
    struct deliver *d, struct ddest *dest, bool connected, bool counts)
{
	dest->active--;
	d->jobs--;
	if (connected)
		deliver_dest_ok(d, dest);
	else if (counts)
		deliver_dest_failed(d, dest);
	deliver_dest_kick(d, dest);
	if (d->stopping && d->jobs == 0 && d->stopped != NULL) {
		void (*cb)(void *) = d->stopped;

		d->stopped = NULL;
		cb(d->stopped_arg);
	}
}

/*
 * A scan or a renewal of our leases failed, or worked: said once per
 * outage, not once a second (store = postgres: the database is away; the
 * next tick tries again, pg reconnects at its own rate).
 */
static void
deliver_queue_ok(struct deliver *d, bool ok)
{
	if (!ok && !d->queue_down)
		log_warnx("queue unavailable: %s; no new attempts until it is "
		          "back",
		    queue_error(d->cfg.queue));
	else if (ok && d->queue_down)
		log_info("queue available again; delivery goes on");
	d->queue_down = !ok;
}

static void
deliver_scan(struct deliver *d)
{
	struct deliver_page pg = { d, INT64_MIN, INT64_MIN, 0 };
	struct ddest *dest, *next;
	time_t now = time(NULL);
	int n;

	if (d->slice) { /* the next slice of a large queue */
		pg.last_next = d->cursor_next;
		pg.last_id = d->cursor_id;
		d->slice = false;
	}

	/* Until the resolver's self-test answers, nothing is tried. */
	if (d->stopping || d->cfg.hold || d->paused ||
	    d->dns == DELIVER_DNS_UNKNOWN)
		return;
	/*
	 * Recipients in flight stay due in the queue until their outcome is
	 * written; page past them (O(in flight + new)) instead of rereading
	 * the same first rows forever.
	 */
	do {
		n = queue_due_after(d->cfg.queue, now, pg.last_next, pg.last_id,
		    DELIVER_SCAN_PAGE, deliver_scan_one, &pg);
		deliver_queue_ok(d, n != -1);
	} while (n == DELIVER_SCAN_PAGE && pg.added < DELIVER_SCAN_BATCH &&
	    d->npending < DELIVER_PENDING_MAX);
	/*
	 * Stopped early: more may be due than we took. The next slice goes
	 * on from here (what lies before is in flight), so reading a large
	 * queue costs O(its size), not O(size x in flight); the periodic
	 * tick starts from the beginning again (retries now due).
	 */
	d->more_due = n == DELIVER_SCAN_PAGE;
	d->cursor_next = pg.last_next;
	d->cursor_id = pg.last_id;
	for (dest = TAILQ_FIRST(&d->dests); dest != NULL; dest = next) {
		next = TAILQ_NEXT(dest, entry);
		deliver_dest_kick(d, dest);
	}
}

static void
deliver_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct deliver *d = arg;
	struct timeval tv;

	d->woken = false;
	/*
	 * store = postgres: keep the claims on what is pending or in flight
	 * (also while paused or stopping: those attempts still run), so that
	 * no other node takes them (queue_pg_due.c).
	 */
	if (queue_lease_renew(d->cfg.queue, time(NULL)) == -1)
		deliver_queue_ok(d, false);
	deliver_scan(d);
#ifdef __GLIBC__
	/*
	 * Give the pages freed by finished attempts back to the system once
	 * a second: a relay's memory follows its load instead of keeping its
	 * highest mark (docs/PERFORMANCE.md, memory).
	 */
	malloc_trim(0);
#endif
	/* A wake during the scan (the next slice is due) keeps its "now". */
	tv.tv_sec = d->woken ? 0 : d->cfg.scan_interval_ms / 1000;
	tv.tv_usec =
	    d->woken ? 0 : (suseconds_t)(d->cfg.scan_interval_ms % 1000) * 1000;
	evtimer_add(d->timer, &tv);
}

struct deliver *
deliver_new(const struct deliver_config *cfg)
{
	struct deliver *d = xcalloc(1, sizeof(*d));
	struct timeval now = { 0, 0 };

	d->cfg = *cfg;
	if (d->cfg.scan_interval_ms == 0)
		d->cfg.scan_interval_ms = 1000;
	if (d->cfg.initial_concurrency == 0)
		d->cfg.initial_concurrency = 1;
	if (d->cfg.max_msgs_per_conn == 0)
		d->cfg.max_msgs_per_conn = 100;
	d->policy = cfg->policy;
	TAILQ_INIT(&d->dests);
	TAILQ_INIT(&d->joblist);
	TAILQ_INIT(&d->held);
	d->timer = evtimer_new(cfg->base, deliver_tick, d);
	evtimer_add(d->timer, &now);
	d->gate = tls_gate_new(cfg->base,
	    cfg->tls_handshakes > 0 ? cfg->tls_handshakes : 128,
	    DELIVER_TLS_SLOT_MS);
	return d;
}

void
deliver_wake(struct deliver *d)
{
	struct timeval now = { 0, 0 };

	/* Coalesce: many messages queued in one loop turn, one scan. */
	d->woken = true;
	evtimer_add(d->timer, &now);
}

void
deliver_set_policy(struct deliver *d, const struct policy *p)
{
	d->policy = p;
}

void
deliver_set_hold(struct deliver *d, bool hold)
{
	d->cfg.hold = hold;
	if (!hold)
		deliver_wake(d);
}

void
deliver_set_dns(struct deliver *d, enum deliver_dns st, const char *why)
{
	d->dns = st;
	snprintf(d->dns_why, sizeof(d->dns_why), "%s",
	    why != NULL ? why : "DNS is unusable");
	if (st == DELIVER_DNS_OK)
		deliver_wake(d);
}

/* The grace period is over: end the attempts still running. */
static void
deliver_grace_over(evutil_socket_t fd, short ev, void *arg)
{
	struct deliver *d = arg;
	struct job *j, *next;

	log_info("delivery: %u attempts still running at shutdown; deferring "
	         "them",
	    d->jobs);
	for (j = TAILQ_FIRST(&d->joblist); j != NULL; j = next) {
		next = deliver_job_next(j);
		deliver_job_abort(j);
	}
}

void
deliver_shutdown(struct deliver *d, void (*done)(void *arg), void *arg)
{
	struct timeval tv = { DELIVER_SHUTDOWN_GRACE, 0 };

	d->stopping = true;
	evtimer_del(d->timer);
	if (d->jobs == 0) {
		done(arg);
		return;
	}
	d->stopped = done;
	d->stopped_arg = arg;
	/* Attempts in progress get a moment to finish, not their timeouts. */
	d->grace = evtimer_new(d->cfg.base, deliver_grace_over, d);
	evtimer_add(d->grace, &tv);
}

void
deliver_free(struct deliver *d)
{
	struct ddest *dest;

	if (d == NULL)
		return;
	deliver_hold_free(d);
	while ((dest = TAILQ_FIRST(&d->dests)) != NULL)
		deliver_dest_free(d, dest);
	event_free(d->timer);
	if (d->grace != NULL)
		event_free(d->grace);
	tls_gate_free(d->gate);
	free(d->inflight);
	free(d->dtab);
	free(d);
}
