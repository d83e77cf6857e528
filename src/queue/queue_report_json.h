/*
 * queue_report_json: the documents of the transit security report and
 * the log-only impact (queue_report.h), built from plain values. Both
 * stores answer through these: queue_report*.c from SQLite rows,
 * fleet_report*.c from PostgreSQL rows, so that a node's report and the
 * fleet's have one shape, one set of bucket rules and one cut, and only
 * the SQL differs.
 */
#ifndef DR_QUEUE_REPORT_JSON_H
#define DR_QUEUE_REPORT_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "queue/queue_report.h"

/* Set key to v (taken) in o; -1 when v is NULL (a part that failed). */
int queue_report_put(json_t *o, const char *key, json_t *v);

/* key = true in o when cut (a table longer than QUEUE_REPORT_MAX_ROWS). */
void queue_report_cut(json_t *o, const char *key, bool cut);

/* The first bucket's start: since rounded down to the step (UTC). */
time_t queue_report_start(const struct queue_report_period *p);

/* How many buckets p has. */
size_t queue_report_nbuckets(const struct queue_report_period *p);

/* t as ISO 8601 UTC. Returns new. */
json_t *queue_report_time(time_t t);

/*
 * The period object: name, since, until, step, data_since (the oldest
 * event kept, or null when has_data is false), and with buckets the
 * start of each bucket. Returns new.
 */
json_t *queue_report_period_new(const struct queue_report_period *p,
    bool has_data, time_t data_since, bool buckets);

/* How a column becomes a member of a row object. */
struct queue_report_col {
	const char *key; /* NULL ends a list */
	char kind;       /* 's' text (or null), 'i' integer, 't' time */
};

/* The columns of a domain row: domain, security, messages, recipients,
 * attempts, last; of an error's counts: count, last; of a no-TLS row:
 * domain, messages, plaintext, failed, last; of the blocked errors:
 * status, result_type, text; of the impact's counts: domains, messages,
 * recipients. */
extern const struct queue_report_col queue_report_domain_cols[];
extern const struct queue_report_col queue_report_count_cols[];
extern const struct queue_report_col queue_report_notls_cols[];
extern const struct queue_report_col queue_report_blocked_cols[];
extern const struct queue_report_col queue_report_counts_cols[];

/* The value of a column of kind: text s (NULL: null), or the integer n
 * ('i') or time n ('t'). Returns new. */
json_t *queue_report_value(char kind, const char *s, long long n);

/*
 * A table of domains (blocked, would block) being filled: rows in the
 * order given, at most QUEUE_REPORT_MAX_ROWS (then cut), each with at most
 * QUEUE_REPORT_MAX_ERRORS errors in the order given.
 */
struct queue_report_table {
	json_t *rows;
	json_t *byk; /* "domain\tsecurity" -> row (borrowed rows) */
	bool cut;
};

void queue_report_table_init(struct queue_report_table *t);

/* Add a domain row (takes row; it has "domain" and "security"). false,
 * with cut set and row freed, when the table is full. */
bool queue_report_table_row(struct queue_report_table *t, json_t *row);

/* Add error e (takes it) to the row of domain d and security s (NULL:
 * ""); dropped when there is no such row or it has its errors. */
void queue_report_table_error(
    struct queue_report_table *t, const char *d, const char *s, json_t *e);

/* The rows (new); the table is emptied. */
json_t *queue_report_table_rows(struct queue_report_table *t);

/* The security classes of "sent", in their order. */
extern const char *const queue_report_classes[];
#define QUEUE_REPORT_NCLASS 5

/* sent: {series: {class: [0 per bucket]}, totals: {class: 0}, total: 0}.
 * Returns new. */
json_t *queue_report_sent_new(const struct queue_report_period *p);

/* Count n recipients delivered with security cls in bucket b (a class
 * that is not ours, from a damaged row, is ignored). */
void queue_report_sent_add(
    json_t *sent, long long b, const char *cls, json_int_t n);

/* An array of n zeros (new); add n to its element i (out of range:
 * ignored). */
json_t *queue_report_zeros(size_t n);
void queue_report_bucket_add(json_t *a, long long i, json_int_t n);

/*
 * A would-block failure from would_fail ("TYPE (STATUS)", deliver_decide.c)
 * and would_fail_text: {result_type (or null), status, text}. Returns new.
 */
json_t *queue_report_would_error(const char *wf, const char *text);

/* would_block's domains_percent and messages_percent from totals. */
void queue_report_shares(json_t *would, const json_t *totals);

#endif
