/*
 * queue_pg_list: what is in the queue in PostgreSQL ([queue] store =
 * postgres), for `danerelay queue list|show`, the console's /queue and
 * /metrics on any node: a message and its recipients, the recipients
 * still queued or held (all, or those matching a filter, a page at a
 * time), and how many there are by state, over the whole fleet.
 *
 * The list says which node is attempting a recipient right now (its
 * lease has not expired: queue_rcpt.lease_node), and counts it active,
 * as SQLite counts an attempt in flight (its next_attempt is past).
 *
 * A filter's SQL is put together from fixed pieces, one per condition
 * given, each value a numbered parameter, never written into the text.
 */
#include "queue/queue_pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* After QUEUE_PG_RCPT_COLS: the sender, then the node of a live lease
 * (by the database's clock, as leases are). */
#define QUEUE_PG_LIST_LEASED "r.lease_until > " QUEUE_PG_NOW
#define QUEUE_PG_LIST_COLS                                                    \
	QUEUE_PG_RCPT_COLS ", (SELECT m.sender FROM dr_messages m WHERE "     \
	                   "m.id = r.msgid), CASE WHEN " QUEUE_PG_LIST_LEASED \
	                   " THEN r.lease_node END"
#define QUEUE_PG_LIST_LEASE_COL 19

/* A query being put together, with its parameters. */
struct queue_pg_list_q {
	char sql[2048];
	struct queue_pg_args a;
};

/* "$?": now, by the node's clock (next_attempt is the node's). */
static const char *const queue_pg_state_sql[] = {
	[QUEUE_STATE_ANY] = " AND " QUEUE_PG_SQL_PRESENT,
	/* An attempt under way is active, never deferred. */
	[QUEUE_STATE_ACTIVE] = " AND r.status = 0 AND (r.next_attempt <= $? "
	                       "OR " QUEUE_PG_LIST_LEASED ")",
	[QUEUE_STATE_DEFERRED] = " AND r.status = 0 AND r.next_attempt > $? "
	                         "AND NOT " QUEUE_PG_LIST_LEASED,
	[QUEUE_STATE_HELD] = " AND r.status = 4",
};

/* Append piece to the query, each "$?" in it standing for the last
 * parameter added. */
static void
queue_pg_list_add(struct queue_pg_list_q *lq, const char *piece)
{
	size_t len = strlen(lq->sql);
	const char *p;

	for (p = piece; *p != '\0' && len + 4 < sizeof(lq->sql); p++) {
		if (p[0] == '$' && p[1] == '?') {
			len += (size_t)snprintf(lq->sql + len,
			    sizeof(lq->sql) - len, "$%d", lq->a.n);
			p++;
		} else
			lq->sql[len++] = *p;
	}
	lq->sql[len] = '\0';
}

/* Append piece with "$?" for the new text parameter value. */
static void
queue_pg_list_str(
    struct queue_pg_list_q *lq, const char *piece, const char *value)
{
	queue_pg_arg_str(&lq->a, value);
	queue_pg_list_add(lq, piece);
}

static bool
queue_pg_given(const char *s)
{
	return s != NULL && *s != '\0';
}

/* The query for f (lq->a to be cleared). */
static void
queue_pg_list_sql(struct queue_pg_list_q *lq, const struct queue_filter *f)
{
	size_t state = (size_t)f->state;

	if (state >= sizeof(queue_pg_state_sql) / sizeof(*queue_pg_state_sql))
		state = QUEUE_STATE_ANY;
	memset(lq, 0, sizeof(*lq));
	queue_pg_arg_int(&lq->a, (long long)f->after);
	queue_pg_list_add(lq,
	    "SELECT " QUEUE_PG_LIST_COLS " FROM dr_recipients r WHERE "
	    "r.id > $?");
	if (queue_pg_given(f->domain))
		queue_pg_list_str(lq, " AND r.domain = lower($?)", f->domain);
	/* Every parameter must be used: PostgreSQL infers their types. */
	if (state == QUEUE_STATE_ACTIVE || state == QUEUE_STATE_DEFERRED)
		queue_pg_arg_int(
		    &lq->a, (long long)(f->now != 0 ? f->now : time(NULL)));
	queue_pg_list_add(lq, queue_pg_state_sql[state]);
	if (queue_pg_given(f->recipient))
		queue_pg_list_str(lq,
		    " AND strpos(lower(r.addr), lower($?)) > 0", f->recipient);
	if (queue_pg_given(f->sender))
		queue_pg_list_str(lq,
		    " AND EXISTS (SELECT 1 FROM dr_messages m WHERE m.id = "
		    "r.msgid AND strpos(lower(m.sender), lower($?)) > 0)",
		    f->sender);
	if (queue_pg_given(f->address))
		queue_pg_list_str(lq,
		    " AND (strpos(lower(r.addr), lower($?)) > 0 OR EXISTS "
		    "(SELECT 1 FROM dr_messages m WHERE m.id = r.msgid AND "
		    "strpos(lower(m.sender), lower($?)) > 0))",
		    f->address);
	queue_pg_list_add(lq, " ORDER BY r.id");
	if (f->limit > 0 && f->limit < INT64_MAX) {
		queue_pg_arg_int(&lq->a, (long long)f->limit);
		queue_pg_list_add(lq, " LIMIT $?");
	}
}

/*
 * queue_pg_rcpt_each with the lease column: every row read first (cb
 * may write to the queue), lease_node borrowed from res, which is
 * cleared after the last cb.
 */
static int
queue_pg_list_each(PGresult *res, queue_rcpt_cb *cb, void *arg)
{
	struct queue_rcpt_row *rows;
	int i, n;

	if (res == NULL)
		return -1;
	n = PQntuples(res);
	rows = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
	for (i = 0; i < n; i++) {
		queue_pg_rcpt_read(res, i, &rows[i]);
		rows[i].r.lease_node = pg_text(res, i, QUEUE_PG_LIST_LEASE_COL);
	}
	for (i = 0; i < n; i++)
		cb(&rows[i].r, arg);
	for (i = 0; i < n; i++)
		queue_rcpt_row_clear(&rows[i]);
	free(rows);
	PQclear(res);
	return n;
}

int
queue_pg_list_filter(
    struct queue *q, const struct queue_filter *f, queue_rcpt_cb *cb, void *arg)
{
	static const struct queue_filter all = { 0 };
	struct queue_pg_list_q lq;
	PGresult *res;

	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_list_sql(&lq, f != NULL ? f : &all);
	res = queue_pg_run(q, "list", lq.sql, &lq.a);
	queue_pg_args_clear(&lq.a);
	return queue_pg_list_each(res, cb, arg);
}

int
queue_pg_msg_rcpts(
    struct queue *q, const char *msgid, queue_rcpt_cb *cb, void *arg)
{
	struct queue_pg_args a = { 0 };
	PGresult *res;

	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_arg_str(&a, msgid);
	res = queue_pg_run(q, "message recipients",
	    "SELECT " QUEUE_PG_LIST_COLS " FROM dr_recipients r WHERE "
	    "r.msgid = $1 ORDER BY r.id",
	    &a);
	queue_pg_args_clear(&a);
	return queue_pg_list_each(res, cb, arg);
}

struct queue_msg *
queue_pg_msg_find(struct queue *q, const char *key)
{
	char msgid[QUEUE_ID_LEN];
	int64_t rcpt;

	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1 ||
	    queue_pg_resolve(q, key, msgid, &rcpt) <= 0)
		return NULL;
	return queue_pg_msg_load(q, msgid);
}

/* By status, and whether due now ($1) or being attempted. */
static const char queue_pg_count_sql[] =
    "SELECT r.status, r.next_attempt <= $1 OR " QUEUE_PG_LIST_LEASED
    " AS active, count(*) FROM dr_recipients r WHERE " QUEUE_PG_SQL_PRESENT
    " GROUP BY 1, 2";

int
queue_pg_count_states(struct queue *q, time_t now, struct queue_counts *c)
{
	struct queue_pg_args a = { 0 };
	PGresult *r;
	int i;

	memset(c, 0, sizeof(*c));
	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_arg_int(&a, (long long)now);
	r = queue_pg_run(q, "count", queue_pg_count_sql, &a);
	queue_pg_args_clear(&a);
	if (r == NULL)
		return -1;
	for (i = 0; i < PQntuples(r); i++) {
		uint64_t n = (uint64_t)pg_int(r, i, 2);

		if (pg_int(r, i, 0) == QUEUE_RCPT_HELD)
			c->held += n;
		else if (strcmp(pg_text(r, i, 1), "t") == 0)
			c->active += n;
		else
			c->deferred += n;
	}
	PQclear(r);
	return 0;
}
