/*
 * queue_report_int.h: the SQL fragments and helpers that the report
 * (queue_report.c) and the impact analysis (queue_report_impact.c) share.
 * Private to src/queue/.
 *
 * Every query reads the "attempt" events of one period through the
 * partial indexes made by queue_report_setup(); a WHERE clause uses a
 * partial index only when it contains the index's own condition, written
 * the same way, hence the fragments below.
 */
#ifndef DR_QUEUE_REPORT_INT_H
#define DR_QUEUE_REPORT_INT_H

#include <stdbool.h>

#include "queue/queue_int.h"
#include "queue/queue_report.h"
#include "queue/queue_report_json.h"

/*
 * One field of an event's JSON details; NULL when the details are not JSON
 * (a damaged row): json_extract() would raise an error, which would fail a
 * whole report, and in an index expression the INSERT of the event, that
 * is the delivery's write.
 */
#define RPT_F(key)                                                           \
	"json_extract(CASE WHEN json_valid(fields) THEN fields END, '$." key \
	"')"

/* The attempts of the period: ?1 since, ?2 until. */
#define RPT_ATTEMPTS \
	"FROM events WHERE type = 'attempt' AND at >= ?1 AND at < ?2"

/* The partial indexes' conditions (queue_report_setup()). */
#define RPT_FAILED RPT_F("result_type") " IS NOT NULL"
#define RPT_WOULD  RPT_F("would_fail") " IS NOT NULL"
/* What enforcing would block: not what the domain's own MTA-STS policy in
 * testing mode only reports (RFC 8461 section 5; deliver_decide.c writes
 * sts_mode = "testing" then). RPT_WOULD stays its first term, so the
 * partial index on RPT_WOULD serves it. */
#define RPT_WOULD_BLOCK RPT_WOULD " AND " RPT_F("sts_mode") " IS NOT 'testing'"
#define RPT_PLAIN       RPT_F("tls") " = 'none'"

#define RPT_DELIVERED "substr(" RPT_F("status") ", 1, 2) = '2.'"

/* The recipient domain: what follows the last '@', lowercase. */
#define RPT_DOMAIN \
	"lower(replace(addr, rtrim(addr, replace(addr, '@', '')), ''))"

/*
 * The security class: the event's "security", or for an event written
 * before that field existed, the same rules as deliver_security() applied
 * to its "tls", "policy" and "result_type" (NULL: no connection, no TLS
 * failure; not about security).
 */
#define RPT_SECURITY                                                                                                                                                           \
	"coalesce(" RPT_F(                                                                                                                                                     \
	    "security") ", CASE "                                                                                                                                              \
	                "WHEN " RPT_DELIVERED " THEN CASE coalesce(" RPT_F(                                                                                                    \
	                    "tls") ", 'none') "                                                                                                                                \
	                           "WHEN 'trusted' THEN 'dane_trusted' "                                                                                                       \
	                           "WHEN 'verified' THEN CASE WHEN " RPT_F(                                                                                                    \
	                               "policy") " = 'mta-sts' "                                                                                                               \
	                                         "THEN 'sts' ELSE 'dane' END "                                                                                                 \
	                                         "WHEN 'none' THEN 'plaintext' ELSE 'tls' END "                                                                                \
	                                         "WHEN " RPT_F(                                                                                                                \
	                                             "policy") " = 'mta-sts' THEN 'sts' "                                                                                      \
	                                                       "WHEN " RPT_F(                                                                                                  \
	                                                           "policy") " = 'dane' THEN 'dane' "                                                                          \
	                                                                     "WHEN " RPT_F(                                                                                    \
	                                                                         "result_type") " LIKE 'sts-%' THEN 'sts' "                                                    \
	                                                                                        "WHEN " RPT_F(                                                                 \
	                                                                                            "result_type") " IS NOT NULL THEN 'dane' "                                 \
	                                                                                                           "WHEN " RPT_F(                                              \
	                                                                                                               "mx") " IS NULL THEN NULL "                             \
	                                                                                                                     "WHEN coalesce(" RPT_F(                           \
	                                                                                                                         "tls") ", 'none') = 'none' THEN 'plaintext' " \
	                                                                                                                                "ELSE 'tls' END)"

/*
 * A statement over the attempts of p, bound: ?1 since, ?2 until, ?3 start
 * of the first bucket, ?4 step, ?5 row limit (QUEUE_REPORT_MAX_ROWS + 1,
 * to tell a cut table). Returns new (sqlite3_finalize) or NULL
 * (queue_fail).
 */
sqlite3_stmt *queue_report_prepare(
    struct queue *q, const char *sql, const struct queue_report_period *p);

/* The period object (with the buckets' starts if buckets). NULL on error. */
json_t *queue_report_period_json(
    struct queue *q, const struct queue_report_period *p, bool buckets);

/* Turns columns 2, 3 and 4 of an error row into its JSON object. */
typedef json_t *queue_report_error_fn(sqlite3_stmt *st);

/*
 * A table of domains: the attempts of p that match where (an SQL
 * condition), grouped by domain and by sec (an SQL expression for the
 * security type), each with its distinct errors (the columns errcols,
 * three SQL expressions, made into JSON by errfn), newest first. Sets
 * *truncated when there were more than QUEUE_REPORT_MAX_ROWS rows.
 * Returns new, or NULL (queue_error()).
 */
json_t *queue_report_domains(struct queue *q,
    const struct queue_report_period *p, const char *where, const char *sec,
    const char *errcols, queue_report_error_fn *errfn, bool *truncated);

/* An object with one member per entry of cols, read from the columns
 * first, first + 1, ... of st's current row. Returns new. */
json_t *queue_report_row(
    sqlite3_stmt *st, int first, const struct queue_report_col *cols);

/* Fill out with the parts of a report; 0 or -1 (queue_fail). */
typedef int queue_report_parts_fn(
    struct queue *q, const struct queue_report_period *p, json_t *out);

/* fn inside one read transaction (every part sees the same events).
 * Returns new, or NULL (queue_error()). */
json_t *queue_report_run(struct queue *q, const struct queue_report_period *p,
    queue_report_parts_fn *fn);

#endif
