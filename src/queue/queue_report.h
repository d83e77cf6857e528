/*
 * queue_report: the transit security report and the log-only impact
 * analysis, computed from the "attempt" events of the queue's event log
 * (one per recipient and delivery attempt, written by deliver_decide with
 * status, result_type, security, tls, policy, would_fail, ...).
 *
 * The `report` command and the console's /report and /impact pages ask
 * these two functions and nothing else, so the queries exist once (and a
 * second store backend answers them in its own file). docs/CONSOLE.md
 * defines every number; docs/QUEUE.md lists the indexes they use.
 *
 * Security classes (deliver_security()): "dane" (TLSA authenticated the
 * server, MX RRset secure), "dane_trusted" (TLSA authenticated it, MX
 * RRset insecure: RFC 7672 section 2.2.1), "sts" (RFC 8461 policy, PKIX
 * verified), "tls" (encrypted, not authenticated), "plaintext". Events
 * written before the "security" field existed get the class derived from
 * their "tls" and "policy" fields by the same rules.
 */
#ifndef DR_QUEUE_REPORT_H
#define DR_QUEUE_REPORT_H

#include <jansson.h>
#include <time.h>

struct queue;

/*
 * How long the relay keeps the events of finished messages (relay.c purges
 * a message once it has had no event for that long): the longest period a
 * report covers in full.
 */
#define QUEUE_REPORT_MAX_DAYS 30

/* Rows listed at most in a table (domains), errors at most per domain. */
#define QUEUE_REPORT_MAX_ROWS   1000
#define QUEUE_REPORT_MAX_ERRORS 20

struct queue_report_period {
	const char *name; /* "1d", ... for the output; may be NULL */
	time_t since;     /* first second covered */
	time_t until;     /* end, exclusive */
	time_t step;      /* time-series bucket length (> 0) */
};

/*
 * A named period ending at now: "1h" (buckets of 2 minutes), "1d"
 * (1 hour), "7d" (4 hours), "30d" (1 day), the steps of console_period().
 * Returns 0 with *p filled (name static), or -1 for another name.
 */
int queue_report_period(
    const char *name, time_t now, struct queue_report_period *p);

/*
 * The transit security report for p, as JSON:
 *   period: {name, since, until, step, data_since (oldest event kept, or
 *     null), buckets: [start of each bucket, ISO 8601]}
 *   blocked: [{domain, security ("dane"|"sts"), messages, recipients,
 *     attempts, last, errors: [{status, result_type, text, count, last}]
 *     newest first}], most messages first;
 *   sent: {series: {dane: [count per bucket], dane_trusted, sts, tls,
 *     plaintext}, totals: {dane: n, ...}, total}: recipients delivered;
 *   no_tls: {domains: [per bucket], messages: [per bucket], table:
 *     [{domain, messages, plaintext, failed, last}] newest first, total}.
 * Tables longer than QUEUE_REPORT_MAX_ROWS are cut (then
 * "blocked_truncated": true, no_tls "truncated": true; no_tls "total"
 * counts every domain).
 * Returns new (json_decref), or NULL (queue_error()).
 */
json_t *queue_report(struct queue *q, const struct queue_report_period *p);

/*
 * The log-only impact for p: what enforcement would have blocked (attempts
 * with would_fail), as JSON:
 *   period: as above (without buckets);
 *   totals: {domains, messages, recipients}: all attempted in the period;
 *   would_block: {domains, messages, recipients, domains_percent,
 *     messages_percent};
 *   domains: [{domain, security, messages, recipients, attempts, last,
 *     failures: [{result_type, status, text, count, last}] newest first}].
 * Returns new (json_decref), or NULL (queue_error()).
 */
json_t *queue_report_impact(
    struct queue *q, const struct queue_report_period *p);

#endif
