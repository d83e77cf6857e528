/*
 * relay_tlsrpt_fleet: the daily TLS-RPT run of a fleet node ([fleet]
 * postgres), on a thread of its own. The run claims reports and
 * destinations in the fleet's database (fleet_tlsrpt_send.c), and libpq
 * waits synchronously: on the delivery loop a slow database would stall
 * every session and delivery, so the run gets its own event loop,
 * resolver, HTTPS client and connections to the queue, the TLS-RPT store
 * and PostgreSQL, all made from the boot configuration (the identity of
 * the reports follows SIGHUP only on a node alone; a fleet node takes a
 * new one at restart). A report mail it queues wakes the delivery loop
 * through a pipe.
 */
#ifndef DR_RELAY_TLSRPT_FLEET_H
#define DR_RELAY_TLSRPT_FLEET_H

struct conf;
struct event_base;
struct relay_tlsrpt_fleet;

/*
 * Start the thread (c: the boot configuration, borrowed for the
 * thread's life; on_queued runs on main, the delivery loop's base).
 * Returns new, or NULL with *errstr (new string).
 */
struct relay_tlsrpt_fleet *relay_tlsrpt_fleet_start(const struct conf *c,
    const char *hostname, struct event_base *main, void (*on_queued)(void *arg),
    void *arg, char **errstr);

/* Stop the run (what is in flight is dropped: its claims lapse), join
 * the thread, free everything. NULL is fine. */
void relay_tlsrpt_fleet_stop(struct relay_tlsrpt_fleet *f);

#endif
