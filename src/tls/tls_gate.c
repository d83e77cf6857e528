/*
 * tls_gate: a counting gate for TLS handshakes with a FIFO of waiters and
 * a time limit per slot (see tls_gate.h).
 */
#include "tls/tls_gate.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/xmalloc.h"

enum gate_state { GATE_QUEUED, GATE_HELD, GATE_EXPIRED };

struct tls_gate_slot {
	struct tls_gate *g;
	enum gate_state state;
	uint64_t granted_ms; /* GATE_HELD: when, on the monotonic clock */
	tls_gate_cb *cb;
	void *arg;
	TAILQ_ENTRY(tls_gate_slot) entry; /* queued or held list */
};
TAILQ_HEAD(gate_list, tls_gate_slot);

struct tls_gate {
	unsigned max, hold_ms, busy;
	struct gate_list queued; /* oldest first */
	struct gate_list held;   /* by grant time, oldest first */
	struct event *wake;      /* grants to the queued, from the loop */
	struct event *expiry;    /* the oldest held slot stops counting */
};

static uint64_t
gate_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The expiry timer follows the oldest held slot. */
static void
gate_arm_expiry(struct tls_gate *g)
{
	struct tls_gate_slot *s = TAILQ_FIRST(&g->held);
	uint64_t now, end;
	struct timeval tv;

	if (s == NULL) {
		evtimer_del(g->expiry);
		return;
	}
	now = gate_now_ms();
	end = s->granted_ms + g->hold_ms;
	end = end > now ? end - now : 0;
	tv.tv_sec = (time_t)(end / 1000);
	tv.tv_usec = (suseconds_t)(end % 1000 * 1000);
	evtimer_add(g->expiry, &tv);
}

static void
gate_grant(struct tls_gate *g, struct tls_gate_slot *s)
{
	s->state = GATE_HELD;
	s->granted_ms = gate_now_ms();
	TAILQ_INSERT_TAIL(&g->held, s, entry);
	g->busy++;
	if (TAILQ_FIRST(&g->held) == s)
		gate_arm_expiry(g);
}

/* A slot stopped counting: someone queued may go. */
static void
gate_freed_one(struct tls_gate *g)
{
	g->busy--;
	if (!TAILQ_EMPTY(&g->queued))
		event_active(g->wake, EV_TIMEOUT, 0);
}

static void
gate_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tls_gate *g = arg;
	struct tls_gate_slot *s;

	while (g->busy < g->max && (s = TAILQ_FIRST(&g->queued)) != NULL) {
		TAILQ_REMOVE(&g->queued, s, entry);
		gate_grant(g, s);
		s->cb(s->arg); /* may leave this or other slots */
	}
}

static void
gate_expiry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tls_gate *g = arg;
	struct tls_gate_slot *s;
	uint64_t now = gate_now_ms();

	while ((s = TAILQ_FIRST(&g->held)) != NULL &&
	    s->granted_ms + g->hold_ms <= now) {
		TAILQ_REMOVE(&g->held, s, entry);
		s->state = GATE_EXPIRED;
		log_debug("TLS handshake slot held for over %u ms: released",
		    g->hold_ms);
		gate_freed_one(g);
	}
	gate_arm_expiry(g);
}

struct tls_gate *
tls_gate_new(struct event_base *base, unsigned max, unsigned hold_ms)
{
	struct tls_gate *g = xcalloc(1, sizeof(*g));

	ASSERT(max >= 1);
	g->max = max;
	g->hold_ms = hold_ms;
	TAILQ_INIT(&g->queued);
	TAILQ_INIT(&g->held);
	g->wake = event_new(base, -1, 0, gate_wake_cb, g);
	g->expiry = evtimer_new(base, gate_expiry_cb, g);
	if (g->wake == NULL || g->expiry == NULL)
		panic("tls_gate_new: out of memory");
	return g;
}

void
tls_gate_free(struct tls_gate *g)
{
	struct tls_gate_slot *s;

	if (g == NULL)
		return;
	/* Slots still out (sessions cut short at exit) just free themselves. */
	while ((s = TAILQ_FIRST(&g->queued)) != NULL) {
		TAILQ_REMOVE(&g->queued, s, entry);
		s->state = GATE_EXPIRED;
	}
	while ((s = TAILQ_FIRST(&g->held)) != NULL) {
		TAILQ_REMOVE(&g->held, s, entry);
		s->state = GATE_EXPIRED;
	}
	event_free(g->wake);
	event_free(g->expiry);
	free(g);
}

struct tls_gate_slot *
tls_gate_enter(struct tls_gate *g, tls_gate_cb *cb, void *arg)
{
	struct tls_gate_slot *s = xcalloc(1, sizeof(*s));

	s->g = g;
	s->cb = cb;
	s->arg = arg;
	/* First come, first served: nobody overtakes the queue. */
	if (g->busy < g->max && TAILQ_EMPTY(&g->queued)) {
		gate_grant(g, s);
		return s;
	}
	s->state = GATE_QUEUED;
	TAILQ_INSERT_TAIL(&g->queued, s, entry);
	return s;
}

bool
tls_gate_granted(const struct tls_gate_slot *s)
{
	return s->state != GATE_QUEUED;
}

void
tls_gate_leave(struct tls_gate_slot *s)
{
	struct tls_gate *g;
	bool first;

	if (s == NULL)
		return;
	g = s->g;
	switch (s->state) {
	case GATE_QUEUED:
		TAILQ_REMOVE(&g->queued, s, entry);
		break;
	case GATE_HELD:
		first = TAILQ_FIRST(&g->held) == s;
		TAILQ_REMOVE(&g->held, s, entry);
		if (first)
			gate_arm_expiry(g);
		gate_freed_one(g);
		break;
	case GATE_EXPIRED:
		break;
	}
	free(s);
}

unsigned
tls_gate_busy(const struct tls_gate *g)
{
	return g->busy;
}

unsigned
tls_gate_queued(const struct tls_gate *g)
{
	const struct tls_gate_slot *s;
	unsigned n = 0;

	TAILQ_FOREACH (s, &g->queued, entry)
		n++;
	return n;
}
