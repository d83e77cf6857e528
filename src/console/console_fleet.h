/*
 * console_fleet: where the console's trace, reports and overview counts
 * come from. With [fleet] postgres, the fleet's database (every node's
 * events, each attempt with its node: fleet_trace, fleet_report) through
 * the console's own handle (struct pg: libpq connections are not shared
 * between threads); when it cannot be reached, this node's queue, with a
 * banner on the page ("Fleet database unreachable: this node only"). With
 * [queue] store = postgres there is no queue of the node's own: then the
 * failure is the answer. Private to src/console/.
 */
#ifndef DR_CONSOLE_FLEET_H
#define DR_CONSOLE_FLEET_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

struct console_req;
struct queue_outcomes;
struct queue_report_period;
struct queue_trace_filter;
struct tlsrpt_store;

/* The trace for f (queue_trace's JSON; "node" on messages and events
 * when from the fleet). NULL with *err (borrowed) on failure. */
json_t *console_fleet_trace(struct console_req *r,
    const struct queue_trace_filter *f, const char **err);

/* The report (impact: the log-only analysis) for p. NULL with *err. */
json_t *console_fleet_report(struct console_req *r,
    const struct queue_report_period *p, bool impact, const char **err);

/* Delivered and blocked recipients since since. 0 or -1. */
int console_fleet_outcomes(
    struct console_req *r, time_t since, struct queue_outcomes *o);

/* The sent TLS reports of the ndays days up to now (tlsrpt_sent_days):
 * the fleet's sums and outbox, or the node's own store s (may be NULL).
 * NULL with *err. */
json_t *console_fleet_tlsrpt_days(struct console_req *r, struct tlsrpt_store *s,
    time_t now, int ndays, const char **err);

/* Whether the last answer came from the fleet's database. */
bool console_fleet_used(const struct console_req *r);

/* The banner, once per page, if a read of this request fell back to the
 * node's queue (console_begin calls it too). */
void console_fleet_banner(struct console_req *r);

#endif
