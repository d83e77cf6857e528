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
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "deliver/deliver_int.h"

#define HOLD_PROBE_FIRST 2  /* seconds */
#define HOLD_PROBE_MAX   30 /* seconds */

/* One settled batch of messages whose outcomes wait to be written. */
struct dheld {
	struct dmsg *msgs;
	size_t nmsg;
	struct dfacts facts;
	bool has_facts;
	TAILQ_ENTRY(dheld) entry;
};

static size_t
hold_count(const struct dmsg *msgs, size_t nmsg)
{
	size_t i, n = 0;

	for (i = 0; i < nmsg; i++)
		n += msgs[i].n;
	return n;
}

/* Decide and write every outcome of msgs in one transaction. 0 or -1. */
static int
hold_write(
    struct deliver *d, struct dmsg *msgs, size_t nmsg, const struct dfacts *f)
{
	size_t i, k;

	if (queue_batch_begin(d->cfg.queue) == -1)
		return -1;
	for (i = 0; i < nmsg; i++) {
		for (k = 0; k < msgs[i].n; k++)
			deliver_decide(d, &msgs[i], msgs[i].rcpts[k], f);
		deliver_decide_message(d, &msgs[i], f);
	}
	return queue_batch_end(d->cfg.queue);
}

/* The outcomes are written (or given up): free msgs and its recipients. */
static void
hold_release(struct deliver *d, struct dmsg *msgs, size_t nmsg)
{
	size_t i, k;

	for (i = 0; i < nmsg; i++) {
		for (k = 0; k < msgs[i].n; k++) {
			deliver_inflight_del(d, msgs[i].rcpts[k]->id);
			drcpt_free(msgs[i].rcpts[k]);
		}
		free(msgs[i].rcpts);
		queue_msg_free(msgs[i].msg);
	}
	free(msgs);
}

static void
hold_keep(
    struct deliver *d, struct dmsg *msgs, size_t nmsg, const struct dfacts *f)
{
	struct dheld *h = xcalloc(1, sizeof(*h));

	h->msgs = msgs;
	h->nmsg = nmsg;
	if (f != NULL) {
		h->facts = *f;
		h->has_facts = true;
	}
	TAILQ_INSERT_TAIL(&d->held, h, entry);
	d->nheld += hold_count(msgs, nmsg);
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
		if (hold_write(d, h->msgs, h->nmsg,
		        h->has_facts ? &h->facts : NULL) == -1)
			return false;
		TAILQ_REMOVE(&d->held, h, entry);
		d->nheld -= hold_count(h->msgs, h->nmsg);
		hold_release(d, h->msgs, h->nmsg);
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

void
deliver_outcomes(
    struct deliver *d, struct dmsg *msgs, size_t nmsg, const struct dfacts *f)
{
	/* Paused: the probe writes in order; no write before it. */
	if (!d->paused && hold_write(d, msgs, nmsg, f) == 0) {
		hold_release(d, msgs, nmsg);
		return;
	}
	hold_keep(d, msgs, nmsg, f);
	if (!d->paused)
		hold_pause(d);
}

void
deliver_hold_free(struct deliver *d)
{
	struct dheld *h;

	if (d->nheld > 0 && !hold_flush(d))
		log_warnx("queue: %zu delivery outcomes could not be recorded "
		          "(%s); their recipients will be attempted again at "
		          "the next start (RFC 5321 §6.1)",
		    d->nheld, queue_error(d->cfg.queue));
	while ((h = TAILQ_FIRST(&d->held)) != NULL) {
		TAILQ_REMOVE(&d->held, h, entry);
		hold_release(d, h->msgs, h->nmsg);
		free(h);
	}
	d->nheld = 0;
	if (d->probe != NULL)
		event_free(d->probe);
	d->probe = NULL;
}
