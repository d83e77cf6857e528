/*
 * metrics: the relay's counters and gauges, for /metrics (Prometheus text
 * exposition format 0.0.4) and the console's overview.
 *
 * One process-wide registry. Every update is a C11 atomic operation, so the
 * delivery loop (which updates) never waits for the console thread (which
 * reads and renders). Counters start at 0 when the process starts, as
 * Prometheus expects (rate() handles restarts). Names and labels follow
 * the Prometheus conventions; the list is in docs/CONSOLE.md.
 *
 * CONTRACT (issue 11): the signatures below are shared by deliver/,
 * server/, relay/, tlsrpt/ and console/; change them only with all users.
 */
#ifndef DR_METRICS_H
#define DR_METRICS_H

#include <stdbool.h>
#include <stdint.h>

struct buf;

/*
 * One recipient delivered; security is "dane", "dane_trusted", "sts",
 * "tls" or "plaintext" (deliver_security()); seconds from acceptance to
 * delivery (the latency histogram).
 */
void metrics_delivered(const char *security, double seconds);

/*
 * One recipient deferred or bounced because a DANE or MTA-STS requirement
 * failed (security "dane" or "sts"; status "4.7.323", ...), or, in log-only
 * mode, one that would have been (metrics_would_block).
 */
void metrics_blocked(const char *security, const char *status);
void metrics_would_block(const char *security, const char *status);

/* One TLS-RPT report handed over or given up; result "sent", "failed".
 * metrics_tlsrpt_reports() counts n at once (a run's totals). */
void metrics_tlsrpt_report(const char *result);
void metrics_tlsrpt_reports(const char *result, unsigned n);

/* Inbound SMTP sessions open now: +1 when one opens, -1 when it closes. */
void metrics_inbound_session(int delta);

/* The resolver's DNSSEC self-test state (relay/relay_dns.c). */
void metrics_dnssec_selftest(bool ok);
bool metrics_dnssec_selftest_ok(void);

/* Inbound sessions open now (for the console's overview). */
int64_t metrics_inbound_sessions(void);

/*
 * The fleet's copying thread (fleet/fleet_sync.c), after each pass:
 * whether the database took it (danerelay_fleet_db_up), and how many
 * local trace events wait to be copied (danerelay_fleet_backlog_events).
 * Rendered only once set: a node without [fleet] shows neither.
 */
void metrics_fleet(bool db_up, uint64_t backlog);

/* At the daemon's start: its start time (danerelay_start_time_seconds). */
void metrics_init(void);

/* Gauges the renderer cannot know itself: filled by the caller at scrape
 * time from the queue store (queue_count_states()). */
struct metrics_queue {
	uint64_t active;   /* queued, due now or being attempted */
	uint64_t deferred; /* queued, waiting for a later retry */
	uint64_t held;     /* put on hold by the operator */
};

/* Append the whole exposition to out. Returns 0 or -1 (out full). */
int metrics_render(struct buf *out, const struct metrics_queue *q);

/* Forget everything (tests). */
void metrics_reset(void);

#endif
