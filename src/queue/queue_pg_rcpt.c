/*
 * queue_pg_rcpt: recipients and messages in PostgreSQL ([queue] store =
 * postgres): the row readers, the outcomes of attempts (each clears this
 * node's lease on its recipient), a message and its body, the body's
 * garbage collection, the retention purge.
 */
#include "queue/queue_pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* Column col of row i as a new string, "" for NULL unless keep_null. */
static char *
queue_pg_dup(const PGresult *res, int i, int col, bool keep_null)
{
	const char *s = pg_text(res, i, col);

	if (s == NULL)
		return keep_null ? NULL : xstrdup("");
	return xstrdup(s);
}

void
queue_pg_rcpt_read(const PGresult *res, int i, struct queue_rcpt_row *row)
{
	struct queue_rcpt *r = &row->r;
	const char *msgid = pg_text(res, i, 1);

	memset(row, 0, sizeof(*row));
	r->id = (int64_t)pg_int(res, i, 0);
	snprintf(r->msgid, sizeof(r->msgid), "%s", msgid != NULL ? msgid : "");
	r->addr = row->own[0] = queue_pg_dup(res, i, 2, false);
	r->domain = row->own[1] = queue_pg_dup(res, i, 3, false);
	r->orcpt = row->own[2] = queue_pg_dup(res, i, 4, true);
	r->notify = (unsigned)pg_int(res, i, 5);
	r->status = (enum queue_rcpt_status)pg_int(res, i, 6);
	r->attempts = (int)pg_int(res, i, 7);
	r->queued_at = (time_t)pg_int(res, i, 8);
	r->next_attempt = (time_t)pg_int(res, i, 9);
	r->last_attempt = (time_t)pg_int(res, i, 10);
	r->last_status = row->own[3] = queue_pg_dup(res, i, 11, false);
	r->last_result_type = row->own[4] = queue_pg_dup(res, i, 12, false);
	r->last_text = row->own[5] = queue_pg_dup(res, i, 13, false);
	r->last_mta = row->own[6] = queue_pg_dup(res, i, 14, false);
	r->delay_warned = pg_int(res, i, 15) != 0;
	r->bounce_requested = pg_int(res, i, 16) != 0;
	r->kind = (enum queue_kind)pg_int(res, i, 17);
	if (PQnfields(res) > 18)
		r->sender = row->own[7] = queue_pg_dup(res, i, 18, false);
}

int
queue_pg_rcpt_each(struct queue *q, PGresult *res, queue_rcpt_cb *cb, void *arg)
{
	struct queue_rcpt_row row;
	int i, n;

	(void)q;
	if (res == NULL)
		return -1;
	/* The result is in our memory: cb may write to the queue. */
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		queue_pg_rcpt_read(res, i, &row);
		cb(&row.r, arg);
		queue_rcpt_row_clear(&row);
	}
	PQclear(res);
	return n;
}

/* When an update matched nothing: fine if the row exists, else -1. */
static int
queue_pg_rcpt_missing(struct queue *q, int64_t rcpt)
{
	struct queue_pg_args a = { 0 };
	PGresult *res;
	int n;

	queue_pg_arg_int(&a, (long long)rcpt);
	res = queue_pg_run(q, "recipient status",
	    "SELECT status FROM dr_recipients WHERE id = $1", &a);
	queue_pg_args_clear(&a);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	if (n > 0)
		return 0;
	return queue_failx(q, "no recipient %lld", (long long)rcpt);
}

/*
 * The attempt's result on the row, this node's lease cleared: $1 rcpt,
 * $2 status or next attempt, $3 now, $4..$7 the attempt, $8 this node.
 * A lease another node holds (ours lapsed while the database was away)
 * stays: its attempt goes on.
 */
#define QUEUE_PG_ATTEMPT_SET                                              \
	"attempts = attempts + 1, last_attempt = $3, last_status = $4, "  \
	"last_result_type = $5, last_text = $6, last_mta = $7, "          \
	"lease_node = CASE WHEN lease_node = $8 THEN NULL ELSE "          \
	"lease_node END, lease_until = CASE WHEN lease_node = $8 THEN 0 " \
	"ELSE lease_until END "

static int
queue_pg_rcpt_write(struct queue *q, const char *what, const char *sql,
    int64_t rcpt, long long v, const struct queue_attempt *a)
{
	struct queue_pg_args args = { 0 };
	long long n;

	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_arg_int(&args, (long long)rcpt);
	queue_pg_arg_int(&args, v);
	queue_pg_arg_int(&args, (long long)time(NULL));
	queue_pg_arg_str(&args, a->status != NULL ? a->status : "");
	queue_pg_arg_str(&args, a->result_type != NULL ? a->result_type : "");
	queue_pg_arg_str(&args, a->text != NULL ? a->text : "");
	queue_pg_arg_str(&args, a->mta != NULL ? a->mta : "");
	queue_pg_arg_str(&args, pg_node(q->pg));
	/* Prepared (sql is one of two literals): parsed once. */
	n = queue_pg_prep_change(q, what, sql, &args, false);
	queue_pg_args_clear(&args);
	if (n == -1)
		return -1;
	queue_pg_claim_drop(q, rcpt);
	return n > 0 ? 0 : queue_pg_rcpt_missing(q, rcpt);
}

int
queue_pg_rcpt_final(struct queue *q, int64_t rcpt, enum queue_rcpt_status s,
    const struct queue_attempt *a)
{
	return queue_pg_rcpt_write(q, queue_rcpt_status_str(s),
	    "UPDATE dr_recipients SET status = $2, " QUEUE_PG_ATTEMPT_SET
	    "WHERE id = $1",
	    rcpt, (long long)s, a);
}

int
queue_pg_rcpt_deferred(struct queue *q, int64_t rcpt, time_t next_attempt,
    const struct queue_attempt *a)
{
	return queue_pg_rcpt_write(q, "deferred",
	    "UPDATE dr_recipients SET next_attempt = $2, " QUEUE_PG_ATTEMPT_SET
	    "WHERE id = $1 AND status IN (0, 4)",
	    rcpt, (long long)next_attempt, a);
}

int
queue_pg_rcpt_set_warned(struct queue *q, int64_t rcpt)
{
	struct queue_pg_args a = { 0 };
	long long n;

	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_arg_int(&a, (long long)rcpt);
	n = queue_pg_change(q, "set delay_warned",
	    "UPDATE dr_recipients SET delay_warned = 1 WHERE id = $1", &a);
	queue_pg_args_clear(&a);
	if (n == 0)
		return queue_failx(q, "no recipient %lld", (long long)rcpt);
	return n == -1 ? -1 : 0;
}

bool
queue_pg_rcpt_bounce_requested(struct queue *q, int64_t rcpt)
{
	struct queue_pg_args a = { 0 };
	PGresult *res;
	bool yes = false;

	if (queue_pg_ready(q) == -1)
		return false;
	queue_pg_arg_int(&a, (long long)rcpt);
	res = queue_pg_run(q, "bounce requested",
	    "SELECT bounce_requested FROM dr_recipients WHERE id = $1", &a);
	queue_pg_args_clear(&a);
	if (res != NULL && PQntuples(res) > 0)
		yes = pg_int(res, 0, 0) != 0;
	PQclear(res);
	return yes;
}

/* --- messages --- */

static const char *
queue_pg_msg_text(const PGresult *res, int col, struct queue_msg_box *b,
    size_t slot, bool keep_null)
{
	return b->own[slot] = queue_pg_dup(res, 0, col, keep_null);
}

/* The body column (bytea as text: "\x" and hex); NULL = dropped. */
static void
queue_pg_msg_body(const PGresult *res, int col, struct queue_msg_box *b)
{
	unsigned char *raw;
	size_t n = 0;

	if (PQgetisnull(res, 0, col))
		return;
	raw =
	    PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, col), &n);
	if (raw == NULL)
		return;
	/* One spare byte so that an empty body is still non-NULL. */
	b->data = xmalloc(n + 1);
	if (n > 0)
		memcpy(b->data, raw, n);
	PQfreemem(raw);
	b->m.data = b->data;
	b->m.len = n;
}

struct queue_msg *
queue_pg_msg_load(struct queue *q, const char *msgid)
{
	struct queue_pg_args a = { 0 };
	struct queue_msg_box *b;
	struct queue_msg *m;
	PGresult *res;

	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1)
		return NULL;
	queue_pg_arg_str(&a, msgid);
	res = queue_pg_prep(q, "read message",
	    "SELECT id, kind, sender, envid, ret, body_8bit, smtputf8, "
	    "client, helo, auth_user, message_id, received_at, size, body "
	    "FROM dr_messages WHERE id = $1",
	    &a, true);
	queue_pg_args_clear(&a);
	if (res == NULL || PQntuples(res) == 0) {
		PQclear(res);
		return NULL;
	}
	b = xcalloc(1, sizeof(*b));
	m = &b->m;
	snprintf(m->id, sizeof(m->id), "%s", PQgetvalue(res, 0, 0));
	m->kind = (enum queue_kind)pg_int(res, 0, 1);
	m->sender = queue_pg_msg_text(res, 2, b, 0, false);
	m->envid = queue_pg_msg_text(res, 3, b, 1, true);
	m->ret = (enum queue_ret)pg_int(res, 0, 4);
	m->body_8bit = pg_int(res, 0, 5) != 0;
	m->smtputf8 = pg_int(res, 0, 6) != 0;
	m->client = queue_pg_msg_text(res, 7, b, 2, false);
	m->helo = queue_pg_msg_text(res, 8, b, 3, true);
	m->auth_user = queue_pg_msg_text(res, 9, b, 4, true);
	m->message_id = queue_pg_msg_text(res, 10, b, 5, true);
	m->received_at = (time_t)pg_int(res, 0, 11);
	m->size = (size_t)pg_int(res, 0, 12);
	queue_pg_msg_body(res, 13, b);
	PQclear(res);
	return m;
}

int
queue_pg_msg_gc(struct queue *q, const char *msgid)
{
	struct queue_pg_args a = { 0 };
	long long n;

	if (queue_pg_ready(q) == -1)
		return -1;
	/* In a batch: with the batch's others (queue_pg_held.c). */
	if (q->batch > 0)
		return queue_pg_held_gc(q, msgid);
	queue_pg_arg_str(&a, msgid);
	n = queue_pg_prep_change(q, "drop body",
	    "UPDATE dr_messages SET body = NULL WHERE id = $1 AND body IS "
	    "NOT NULL AND NOT EXISTS (SELECT 1 FROM dr_recipients r WHERE "
	    "r.msgid = $1 AND " QUEUE_PG_SQL_PRESENT ")",
	    &a, true);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : 0;
}

/* Messages a purge removes per statement: each stays short. */
#define QUEUE_PG_PURGE_CHUNK 2000

int
queue_pg_purge(struct queue *q, time_t before)
{
	struct queue_pg_args a = { 0 };
	long long n, total = 0;

	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_arg_int(&a, (long long)before);
	queue_pg_arg_int(&a, QUEUE_PG_PURGE_CHUNK);
	/* Every node purges: SKIP LOCKED leaves one's rows to the other. */
	do {
		n = queue_pg_change(q, "purge",
		    "WITH p AS (SELECT id FROM dr_messages m WHERE body IS NULL "
		    "AND received_at < $1 AND NOT EXISTS (SELECT 1 FROM "
		    "dr_recipients r WHERE r.msgid = m.id AND "
		    "" QUEUE_PG_SQL_PRESENT ") AND NOT EXISTS (SELECT 1 FROM "
		    "dr_events e WHERE e.msgid = m.id AND e.at >= $1) LIMIT $2 "
		    "FOR UPDATE SKIP LOCKED), "
		    "e AS (DELETE FROM dr_events WHERE msgid IN (SELECT id "
		    "FROM p)), "
		    "r AS (DELETE FROM dr_recipients WHERE msgid IN (SELECT id "
		    "FROM p)) "
		    "DELETE FROM dr_messages WHERE id IN (SELECT id FROM p)",
		    &a);
		if (n > 0)
			total += n;
	} while (n == QUEUE_PG_PURGE_CHUNK);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : (int)total;
}

int
queue_pg_retry_since(struct queue *q, time_t since, time_t now)
{
	struct queue_pg_args a = { 0 };
	long long n;

	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_arg_int(&a, (long long)since);
	queue_pg_arg_int(&a, (long long)now);
	n = queue_pg_change(q, "retry since",
	    "UPDATE dr_recipients SET next_attempt = $2 WHERE status = 0 "
	    "AND last_attempt >= $1 AND next_attempt > $2",
	    &a);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : (int)n;
}
