/*
 * deliver_hold: outcomes that could not be written. A delivery is only
 * finished when its outcome is in the queue; until then its recipient is
 * still due there. If the write fails (the disk is full, the file cannot
 * be written) and we went on, the next scan would send the message again,
 * and again: RFC 5321 §6.1 allows a duplicate only for the window between
 * the final dot and the record of its reply. So the outcomes are kept in
 * memory (their recipients stay "in flight", never picked up again), the
 * scheduler starts nothing new, and a timer tries the write again with
 * backoff; once it succeeds, the kept outcomes are written first, in
 * order, and delivery resumes.
 *
 * To keep that window short, a message is handed over here as soon as
 * its transaction ends, not when its job ends (like Postfix, which
 * crosses off each recipient once its reply came); the messages settled
 * by all jobs share one transaction (group commit, one fsync).
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "deliver/deliver_int.h"

#define HOLD_PROBE_FIRST 2  /* seconds */
#define HOLD_PROBE_MAX   30 /* seconds */
/*
 * Group commit across jobs: an outcome is handed over as soon as its
 * transaction ends (RFC 5321 §6.1: a crash before it is written sends
 * the message again), and one transaction writes up to HOLD_BATCH_MAX
 * settled messages, or what came within HOLD_BATCH_MS of the first.
 */
#define HOLD_BATCH_MAX 64
#define HOLD_BATCH_MS  10

/* One settled message with the facts of its attempt (batches mix jobs). */
struct dsettled {
	struct dmsg m;
	struct dfacts facts;
	bool has_facts;
};

/* One batch of settled messages whose outcomes wait to be written. */
struct dheld {
	struct dsettled *ents;
	size_t n;
	TAILQ_ENTRY(dheld) entry;
};

static size_t
hold_count(const struct dsettled *e, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += e[i].m.n;
	return c;
}

/* Decide and write every outcome of e in one transaction. 0 or -1. */
static int
hold_write(struct deliver *d, struct dsettled *e, size_t n)
{
	const struct dfacts *f;
	size_t i, k;

	if (queue_batch_begin(d->cfg.queue) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		f = e[i].has_facts ? &e[i].facts : NULL;
		for (k = 0; k < e[i].m.n; k++)
			deliver_decide(d, &e[i].m, e[i].m.rcpts[k], f);
		deliver_decide_message(d, &e[i].m, f);
	}
	return queue_batch_end(d->cfg.queue);
}

/* The outcomes are written (or given up): free e and its recipients. */
static void
hold_release(struct deliver *d, struct dsettled *e, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < e[i].m.n; k++) {
			deliver_inflight_del(d, e[i].m.rcpts[k]->id);
			drcpt_free(e[i].m.rcpts[k]);
		}
		free(e[i].m.rcpts);
		queue_msg_free(e[i].m.msg);
	}
	free(e);
}

static void
hold_keep(struct deliver *d, struct dsettled *e, size_t n)
{
	struct dheld *h = xcalloc(1, sizeof(*h));

	h->ents = e;
	h->n = n;
	TAILQ_INSERT_TAIL(&d->held, h, entry);
	d->nheld += hold_count(e, n);
}

static void
hold_arm(struct deliver *d)
{
	struct timeval tv = { d->probe_s, 0 };

	evtimer_add(d->probe, &tv);
	d->probe_s =
	    d->probe_s * 2 > HOLD_PROBE_MAX ? HOLD_PROBE_MAX : d->probe_s * 2;
}

/* Write what is kept, oldest first; true when nothing is left. */
static bool
hold_flush(struct deliver *d)
{
	struct dheld *h;

	while ((h = TAILQ_FIRST(&d->held)) != NULL) {
		if (hold_write(d, h->ents, h->n) == -1)
			return false;
		TAILQ_REMOVE(&d->held, h, entry);
		d->nheld -= hold_count(h->ents, h->n);
		hold_release(d, h->ents, h->n);
		free(h);
	}
	return true;
}

static void
hold_probe(evutil_socket_t fd, short ev, void *arg)
{
	struct deliver *d = arg;
	size_t n = d->nheld;

	if (!hold_flush(d)) {
		hold_arm(d);
		return;
	}
	d->paused = false;
	log_info("queue: writable again; %zu delivery outcomes recorded; "
	         "delivery resumed",
	    n);
	deliver_wake(d);
}

static void
hold_pause(struct deliver *d)
{
	log_warnx("queue: cannot record outcome: %s; delivery paused until "
	          "the queue can be written (%zu outcomes kept in memory)",
	    queue_error(d->cfg.queue), d->nheld);
	d->paused = true;
	d->probe_s = HOLD_PROBE_FIRST;
	if (d->probe == NULL)
		d->probe = evtimer_new(d->cfg.base, hold_probe, d);
	hold_arm(d);
}

/* Write the pending batch now, or keep it until the queue can be. */
static void
hold_commit(struct deliver *d)
{
	struct dsettled *e = d->batch;
	size_t n = d->nbatch;

	if (n == 0)
		return;
	d->batch = NULL;
	d->nbatch = 0;
	evtimer_del(d->batch_ev);
	/* Paused: the probe writes in order; no write before it. */
	if (!d->paused && hold_write(d, e, n) == 0) {
		hold_release(d, e, n);
		return;
	}
	hold_keep(d, e, n);
	if (!d->paused)
		hold_pause(d);
}

static void
hold_batch_due(evutil_socket_t fd, short ev, void *arg)
{
	hold_commit(arg);
}

void
deliver_outcome(struct deliver *d, struct dmsg *m, const struct dfacts *f)
{
	struct timeval tv = { 0, HOLD_BATCH_MS * 1000 };
	struct dsettled *e;

	if (d->batch == NULL)
		d->batch = xcalloc(HOLD_BATCH_MAX, sizeof(*d->batch));
	e = &d->batch[d->nbatch++];
	e->m = *m;
	memset(m, 0, sizeof(*m)); /* deliver_hold's now */
	if (f != NULL) {
		e->facts = *f;
		e->has_facts = true;
	}
	if (d->nbatch == HOLD_BATCH_MAX) {
		hold_commit(d);
		return;
	}
	if (d->nbatch > 1)
		return;
	if (d->batch_ev == NULL)
		d->batch_ev = evtimer_new(d->cfg.base, hold_batch_due, d);
	evtimer_add(d->batch_ev, &tv);
}

void
deliver_outcomes(
    struct deliver *d, struct dmsg *msgs, size_t nmsg, const struct dfacts *f)
{
	size_t i;

	for (i = 0; i < nmsg; i++)
		if (msgs[i].n > 0) /* the others were handed over already */
			deliver_outcome(d, &msgs[i], f);
	free(msgs);
}

void
deliver_hold_free(struct deliver *d)
{
	struct dheld *h;

	hold_commit(d); /* nothing settled is left unwritten at a stop */
	if (d->nheld > 0 && !hold_flush(d))
		log_warnx("queue: %zu delivery outcomes could not be recorded "
		          "(%s); their recipients will be attempted again at "
		          "the next start (RFC 5321 §6.1)",
		    d->nheld, queue_error(d->cfg.queue));
	while ((h = TAILQ_FIRST(&d->held)) != NULL) {
		TAILQ_REMOVE(&d->held, h, entry);
		hold_release(d, h->ents, h->n);
		free(h);
	}
	d->nheld = 0;
	if (d->probe != NULL)
		event_free(d->probe);
	d->probe = NULL;
	if (d->batch_ev != NULL)
		event_free(d->batch_ev);
	d->batch_ev = NULL;
}
