/*
 * tlsrpt_sent: the reports we send (RFC 8460 §4), day by day, as one JSON
 * document for the console's /tlsrpt page: per policy domain its session
 * counts per policy, whether the day's report is done, and the delivery
 * state of the report to each rua destination (the outbox). Built only
 * through the store interfaces of tlsrpt.h (tlsrpt_store_domains,
 * tlsrpt_report_build, tlsrpt_store_sent, tlsrpt_outbox_list), the same
 * ones `danerelay tlsrpt list` uses.
 */
#ifndef DR_TLSRPT_SENT_H
#define DR_TLSRPT_SENT_H

#include <jansson.h>
#include <time.h>

struct tlsrpt_store;

/*
 * The ndays UTC days up to the day of now, newest first:
 *   [{"day", "domains": [{"domain", "successful", "failed",
 *     "policies": [{"policy-type", "successful", "failed"}],
 *     "done" (the day's report was handled), "destinations": [{"uri",
 *     "state" ("sent", "pending", "failed"), "attempts",
 *     "first-attempt" (time_t, 0 = not tried), "note" (the last error
 *     or where it went), "report-id"}]}]}]
 * Returns new (caller decrefs), or NULL on a database error.
 */
json_t *tlsrpt_sent_days(struct tlsrpt_store *s, time_t now, int ndays);

#endif
