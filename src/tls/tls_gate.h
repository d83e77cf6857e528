/*
 * tls_gate: how many outbound TLS handshakes run at once.
 *
 * A client waiting in its handshake holds OpenSSL's handshake buffer and
 * record buffers, about 46 KiB, against some 15 KiB once the session is
 * up. When thousands of sessions reach STARTTLS together (a queue
 * released at once, slow receivers all answering in step) the one event
 * loop can only complete them one by one, and the rest wait with those
 * buffers held: the peak of memory per session (docs/PERFORMANCE.md).
 * The gate lets at most `max` handshakes start; the others wait their
 * turn, first come first served, before their ClientHello.
 *
 * A slot is held until the handshake ends, but never longer than
 * hold_ms: a peer that stalls its handshake costs its own memory but
 * cannot keep other destinations from starting theirs (no starvation
 * by slow or hostile servers).
 */
#ifndef DR_TLS_GATE_H
#define DR_TLS_GATE_H

#include <stdbool.h>

struct event_base;
struct tls_gate;
struct tls_gate_slot;

/* Runs once, from the top of the loop, when a queued slot is granted. */
typedef void tls_gate_cb(void *arg);

/* max >= 1 handshakes at once; each counts for at most hold_ms. */
struct tls_gate *tls_gate_new(
    struct event_base *base, unsigned max, unsigned hold_ms);

/* Slots not yet left stay valid for tls_gate_leave only (which frees
 * them); queued ones are never granted. NULL is fine. */
void tls_gate_free(struct tls_gate *g);

/*
 * Ask for a slot. Returns a new slot (tls_gate_leave), granted at once
 * when tls_gate_granted() says so (cb is then never called), else queued:
 * cb(arg) runs when it is granted.
 */
struct tls_gate_slot *tls_gate_enter(
    struct tls_gate *g, tls_gate_cb *cb, void *arg);

bool tls_gate_granted(const struct tls_gate_slot *s);

/* Handshake over, or given up: free s, granted or still queued (its cb
 * will not run). NULL is fine. */
void tls_gate_leave(struct tls_gate_slot *s);

/* Slots counted now (granted, neither left nor past hold_ms); queued
 * (counted by a walk: for tests and diagnostics). */
unsigned tls_gate_busy(const struct tls_gate *g);
unsigned tls_gate_queued(const struct tls_gate *g);

#endif
