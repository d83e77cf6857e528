/*
 * queue_pg_int: what the PostgreSQL files of the queue module share
 * ([queue] store = postgres; queue_pg*.c, docs/FLEET.md). Every public
 * function of queue.h starts with
 *
 *     if (q->pg != NULL)
 *             return queue_pg_<name>(...);
 *
 * and the queue_pg_<name> below answers from the fleet's database: the
 * delivery path in queue_pg.c, queue_pg_due.c and queue_pg_rcpt.c, the
 * operator's path in queue_pg_admin.c.
 *
 * Errors: the helpers copy pg_error() into q->err (queue_error), so
 * callers report them as with SQLite. Inside a batch (queue_batch_begin)
 * PostgreSQL aborts the whole transaction at the first failing
 * statement: q->batch_err is set, every later statement of the batch
 * fails at once and queue_batch_end() rolls back and returns -1.
 */
#ifndef DR_QUEUE_PG_INT_H
#define DR_QUEUE_PG_INT_H

#include "core/buf.h"
#include "queue/queue_int.h"

/*
 * The columns every recipient query selects, in queue_pg_rcpt_read()
 * order (as QUEUE_RCPT_COLS): the recipients table must be named r
 * ("FROM dr_recipients r"). A query may add the message's sender as one
 * more column (queue_list_filter).
 */
#define QUEUE_PG_RCPT_COLS                                               \
	"r.id, r.msgid, r.addr, r.domain, r.orcpt, r.notify, r.status, " \
	"r.attempts, r.queued_at, r.next_attempt, r.last_attempt, "      \
	"r.last_status, r.last_result_type, r.last_text, r.last_mta, "   \
	"r.delay_warned, r.bounce_requested, (SELECT m.kind FROM "       \
	"dr_messages m WHERE m.id = r.msgid)"

/*
 * Now by the database's clock, in Unix seconds: leases are measured by
 * it, so that the nodes' clocks need not agree for one node's claim to
 * lapse when the others think it does.
 */
#define QUEUE_PG_NOW "extract(epoch FROM statement_timestamp())::bigint"

/* Still in the queue: queued or held (as QUEUE_SQL_PRESENT). */
#define QUEUE_PG_SQL_PRESENT "r.status IN (0, 4)"

/* --- queue_pg_args.c: the parameters of one statement --- */

#define QUEUE_PG_ARGS_MAX 24

/*
 * Values for $1..$n, in order: text (always valid UTF-8: the database's
 * encoding refuses anything else, and remote replies or a client's HELO
 * need not be; bad bytes become '?'), integers, or binary (bytea). Owns
 * its copies until queue_pg_args_clear.
 */
struct queue_pg_args {
	int n;
	const char *v[QUEUE_PG_ARGS_MAX];
	int len[QUEUE_PG_ARGS_MAX];
	int fmt[QUEUE_PG_ARGS_MAX];
	char *own[QUEUE_PG_ARGS_MAX];
	char num[QUEUE_PG_ARGS_MAX][PG_INT_LEN];
};

void queue_pg_arg_str(struct queue_pg_args *a, const char *s); /* NULL ok */
void queue_pg_arg_int(struct queue_pg_args *a, long long v);
void queue_pg_arg_bin(struct queue_pg_args *a, const void *data, size_t len);
/* Take s (new string, or NULL for SQL NULL) as the next text value. */
void queue_pg_arg_own(struct queue_pg_args *a, char *s);
void queue_pg_args_clear(struct queue_pg_args *a);

/* s if it is valid UTF-8, else a copy with each bad byte as '?' (then
 * *copy is set to it for the caller to free). */
const char *queue_pg_utf8(const char *s, char **copy);

/*
 * Append s (made valid UTF-8 as above; NULL is SQL NULL) as the next
 * element of the array literal being built in b: "{" is the caller's,
 * as is the closing "}" (queue_pg_arg_array). For the statements that
 * write many rows at once from unnest($n::text[]).
 */
void queue_pg_arg_elem(struct buf *b, const char *s);
/* Close the literal (an empty b becomes "{}"); returns its text. */
const char *queue_pg_arg_array(struct buf *b);

/* --- queue_pg.c: connection, errors, transactions, events --- */

/*
 * queue_pg_run as a prepared statement (pg_query_prepared: sql must be
 * a literal or a static array). flush: the writes a batch holds back go
 * first (queue_pg_held.c), as before every statement of queue_pg_run;
 * false only for the statements of an outcome, which neither read nor
 * write what is held (the events, the bodies).
 */
PGresult *queue_pg_prep(struct queue *q, const char *what, const char *sql,
    const struct queue_pg_args *a, bool flush);
/* queue_pg_prep for a statement without rows: -1, or the rows changed. */
long long queue_pg_prep_change(struct queue *q, const char *what,
    const char *sql, const struct queue_pg_args *a, bool flush);

/*
 * The connection, usable now: reconnects (pg_ready, at most every
 * PG_RETRY_S) outside a batch; inside one a lost connection fails the
 * batch. 0, or -1 with q->err set.
 */
int queue_pg_ready(struct queue *q);

/* Copy pg_error() (after what) into q->err, mark a batch lost; -1. */
int queue_pg_fail(struct queue *q, const char *what);

/*
 * pg_query / pg_exec with the batch rule above and the error copied:
 * what names the statement in the error. Never connect: call
 * queue_pg_ready() first (every public function does).
 */
PGresult *queue_pg_query(struct queue *q, const char *what, const char *sql,
    int n, const char *const *values);
int queue_pg_exec(struct queue *q, const char *what, const char *sql, int n,
    const char *const *values);
/* queue_pg_exec, and the number of rows it changed in *changed. */
int queue_pg_exec_n(struct queue *q, const char *what, const char *sql, int n,
    const char *const *values, long long *changed);
/* The same with a's values (not cleared). */
PGresult *queue_pg_run(struct queue *q, const char *what, const char *sql,
    const struct queue_pg_args *a);
/* queue_pg_run for a statement without rows: -1, or the rows changed. */
long long queue_pg_change(struct queue *q, const char *what, const char *sql,
    const struct queue_pg_args *a);

/*
 * A short transaction: BEGIN/COMMIT, or a savepoint inside a batch
 * (which commits with the batch). Rollback keeps the first error.
 */
int queue_pg_tx_begin(struct queue *q);
int queue_pg_tx_commit(struct queue *q);
void queue_pg_tx_rollback(struct queue *q);

/*
 * Append an event to dr_events (node = this node, local_id NULL) inside
 * the caller's transaction; fields (borrowed) is a JSON object or NULL.
 * 0 or -1.
 */
int queue_pg_event_add(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields);

/* --- queue_pg_held.c: the writes of a batch, each kind at once --- */

/*
 * Inside a batch (queue_batch_begin) queue_event() and queue_msg_gc() do
 * not run their statement: the event or the message is held, and the
 * batch's events go in with one INSERT from arrays, its body drops with
 * one UPDATE, before the batch commits or before any other statement
 * but the outcomes' own (queue_pg_run; queue_pg_prep with flush), so
 * the rows come out as before (queue_pg_held.c says why), with two
 * statements instead of three per recipient. A failure of either fails
 * the batch, as the failure of one event or drop did.
 */
int queue_pg_held_event(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields);
int queue_pg_held_gc(struct queue *q, const char *msgid);
/* Write what is held (nothing: 0). 0, or -1 with the batch failed. */
int queue_pg_held_flush(struct queue *q);
/* The batch rolled back: forget what is held. */
void queue_pg_held_drop(struct queue *q);
void queue_pg_held_free(struct queue_pg_held *h);

/* --- queue_pg_rcpt.c: reading recipient rows --- */

/* Fill row from row i of res (columns QUEUE_PG_RCPT_COLS, then the
 * message's sender if res has one more column). */
void queue_pg_rcpt_read(const PGresult *res, int i, struct queue_rcpt_row *row);

/*
 * Call cb on every row of res (read first: cb may write to the queue),
 * then PQclear(res). res NULL: -1 (the query failed). Returns the number
 * of rows.
 */
int queue_pg_rcpt_each(
    struct queue *q, PGresult *res, queue_rcpt_cb *cb, void *arg);

/* --- the public functions, answered from PostgreSQL --- */

/* queue_pg.c */
int queue_pg_batch_begin(struct queue *q);
int queue_pg_batch_end(struct queue *q);
void queue_pg_close(struct queue *q);
int queue_pg_add(struct queue *q, const struct queue_msg_in *m,
    char id[QUEUE_ID_LEN], char **errstr);
int queue_pg_event(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields);
bool queue_pg_available(struct queue *q);

/* queue_pg_due.c: claims and their leases */
void queue_pg_claims_free(struct queue_pg_claims *c);
/* At close: give back the claims on recipients never attempted. */
void queue_pg_claims_release(struct queue *q);
/* A batch ended: its outcomes' claims leave (committed) or stay. */
void queue_pg_claims_settle(struct queue *q, bool committed);
/* rcpt's outcome is written: no more renewals of its claim. */
void queue_pg_claim_drop(struct queue *q, int64_t rcpt);
int queue_pg_due_after(struct queue *q, time_t now, time_t after_next,
    int64_t after_id, size_t max, queue_rcpt_cb *cb, void *arg);
time_t queue_pg_next_due(struct queue *q);
int queue_pg_lease_renew(struct queue *q, time_t now);

/* queue_pg_rcpt.c: outcomes, messages */
int queue_pg_rcpt_final(struct queue *q, int64_t rcpt, enum queue_rcpt_status s,
    const struct queue_attempt *a);
int queue_pg_rcpt_deferred(struct queue *q, int64_t rcpt, time_t next_attempt,
    const struct queue_attempt *a);
int queue_pg_rcpt_set_warned(struct queue *q, int64_t rcpt);
bool queue_pg_rcpt_bounce_requested(struct queue *q, int64_t rcpt);
struct queue_msg *queue_pg_msg_load(struct queue *q, const char *msgid);
int queue_pg_msg_gc(struct queue *q, const char *msgid);
int queue_pg_purge(struct queue *q, time_t before);
int queue_pg_retry_since(struct queue *q, time_t since, time_t now);

/* queue_pg_admin.c and queue_pg_list.c (helper E2, pgadmin): the
 * operator's path */
/*
 * An operator's argument (queue_resolve): a queue id with recipients in
 * dr_recipients (1, msgid filled), else a recipient row id (2, *rcpt
 * and its message's msgid filled); 0 when nothing matches, -1.
 */
int queue_pg_resolve(
    struct queue *q, const char *key, char msgid[QUEUE_ID_LEN], int64_t *rcpt);
struct queue_msg *queue_pg_msg_find(struct queue *q, const char *key);
int queue_pg_msg_rcpts(
    struct queue *q, const char *msgid, queue_rcpt_cb *cb, void *arg);
int queue_pg_list_filter(struct queue *q, const struct queue_filter *f,
    queue_rcpt_cb *cb, void *arg);
int queue_pg_retry(struct queue *q, const char *msgid_or_rcpt_id);
int queue_pg_delete(struct queue *q, const char *msgid_or_rcpt_id);
int queue_pg_hold(struct queue *q, const char *msgid_or_rcpt_id);
int queue_pg_release(struct queue *q, const char *msgid_or_rcpt_id);
int queue_pg_bounce(struct queue *q, const char *msgid_or_rcpt_id);
int queue_pg_flush(struct queue *q, const char *domain);
int queue_pg_count_states(struct queue *q, time_t now, struct queue_counts *c);

#endif
