/*
 * queue_rcpt: recipients, the unit the scheduler works on. queue_due()
 * walks the (status, next_attempt) index, so a scan costs O(log n + max)
 * however large the queue. The state changes record the attempt's result
 * on the row; the trace events about it are the caller's (queue_event).
 */
#include "queue/queue_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "queue/queue_pg_int.h"

/* Text column col into row (owned), "" for NULL unless keep_null. */
static const char *
queue_rcpt_text(sqlite3_stmt *st, int col, struct queue_rcpt_row *row,
    size_t slot, bool keep_null)
{
	char *s = queue_col_dup(st, col);

	if (s == NULL && !keep_null)
		s = xstrdup("");
	row->own[slot] = s;
	return s;
}

void
queue_rcpt_read(sqlite3_stmt *st, struct queue_rcpt_row *row)
{
	struct queue_rcpt *r = &row->r;
	const unsigned char *msgid = sqlite3_column_text(st, 1);

	memset(row, 0, sizeof(*row));
	r->id = sqlite3_column_int64(st, 0);
	snprintf(r->msgid, sizeof(r->msgid), "%s",
	    msgid != NULL ? (const char *)msgid : "");
	r->addr = queue_rcpt_text(st, 2, row, 0, false);
	r->domain = queue_rcpt_text(st, 3, row, 1, false);
	r->orcpt = queue_rcpt_text(st, 4, row, 2, true);
	r->notify = (unsigned)sqlite3_column_int(st, 5);
	r->status = (enum queue_rcpt_status)sqlite3_column_int(st, 6);
	r->attempts = sqlite3_column_int(st, 7);
	r->queued_at = (time_t)sqlite3_column_int64(st, 8);
	r->next_attempt = (time_t)sqlite3_column_int64(st, 9);
	r->last_attempt = (time_t)sqlite3_column_int64(st, 10);
	r->last_status = queue_rcpt_text(st, 11, row, 3, false);
	r->last_result_type = queue_rcpt_text(st, 12, row, 4, false);
	r->last_text = queue_rcpt_text(st, 13, row, 5, false);
	r->last_mta = queue_rcpt_text(st, 14, row, 6, false);
	r->delay_warned = sqlite3_column_int(st, 15) != 0;
	r->bounce_requested = sqlite3_column_int(st, 16) != 0;
	r->kind = (enum queue_kind)sqlite3_column_int(st, 17);
	if (sqlite3_column_count(st) > 18)
		r->sender = queue_rcpt_text(st, 18, row, 7, false);
}

void
queue_rcpt_row_clear(struct queue_rcpt_row *row)
{
	size_t i;

	for (i = 0; i < sizeof(row->own) / sizeof(row->own[0]); i++)
		free(row->own[i]);
	memset(row, 0, sizeof(*row));
}

static void
queue_rcpt_rows_free(struct queue_rcpt_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		queue_rcpt_row_clear(&rows[i]);
	free(rows);
}

int
queue_rcpt_each(
    struct queue *q, sqlite3_stmt *st, size_t max, queue_rcpt_cb *cb, void *arg)
{
	struct queue_rcpt_row *rows = NULL;
	size_t n = 0, cap = 0, i;
	int rc = SQLITE_DONE;

	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			rows = xreallocarray(rows, cap, sizeof(*rows));
		}
		queue_rcpt_read(st, &rows[n++]);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		queue_fail(q, "read recipients");
		sqlite3_reset(st);
		queue_rcpt_rows_free(rows, n);
		return -1;
	}
	/* Reset before the callbacks: they may write to the queue. */
	sqlite3_reset(st);
	for (i = 0; i < n; i++)
		cb(&rows[i].r, arg);
	queue_rcpt_rows_free(rows, n);
	return (int)n;
}

int
queue_due(struct queue *q, time_t now, size_t max, queue_rcpt_cb *cb, void *arg)
{
	sqlite3_stmt *st;

	if (q->pg != NULL)
		return queue_pg_due_after(
		    q, now, INT64_MIN, INT64_MIN, max, cb, arg);
	st = queue_stmt(q, QUEUE_ST_DUE);
	if (max == 0)
		return 0;
	if (max > 1000000)
		max = 1000000;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return queue_rcpt_each(q, st, max, cb, arg);
}

int
queue_due_after(struct queue *q, time_t now, time_t after_next,
    int64_t after_id, size_t max, queue_rcpt_cb *cb, void *arg)
{
	sqlite3_stmt *st;

	if (q->pg != NULL)
		return queue_pg_due_after(
		    q, now, after_next, after_id, max, cb, arg);
	st = queue_stmt(q, QUEUE_ST_DUE_AFTER);
	if (max == 0)
		return 0;
	if (max > 1000000)
		max = 1000000;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)after_next);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)after_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
	return queue_rcpt_each(q, st, max, cb, arg);
}

time_t
queue_next_due(struct queue *q)
{
	sqlite3_stmt *st;
	time_t t = 0;

	if (q->pg != NULL)
		return queue_pg_next_due(q);
	st = queue_stmt(q, QUEUE_ST_NEXT_DUE);
	if (sqlite3_step(st) == SQLITE_ROW)
		t = (time_t)sqlite3_column_int64(st, 0);
	else
		queue_fail(q, "next due");
	sqlite3_reset(st);
	return t;
}

/* Bind the common part of the final and defer updates. */
static void
queue_rcpt_bind_attempt(
    sqlite3_stmt *st, int64_t rcpt, const struct queue_attempt *a)
{
	sqlite3_bind_int64(st, 1, rcpt);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(
	    st, 4, a->status != NULL ? a->status : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->result_type != NULL ? a->result_type : "",
	    -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 6, a->text != NULL ? a->text : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(
	    st, 7, a->mta != NULL ? a->mta : "", -1, SQLITE_STATIC);
}

/* When an update matched nothing: fine if the row exists, else -1. */
static int
queue_rcpt_missing(struct queue *q, int64_t rcpt)
{
	sqlite3_stmt *st = queue_stmt(q, QUEUE_ST_RCPT_STATUS);
	int rc;

	sqlite3_bind_int64(st, 1, rcpt);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return queue_failx(q, "no recipient %lld", (long long)rcpt);
	return queue_fail(q, "recipient status");
}

/* One UPDATE is its own transaction: one fsync per result. */
static int
queue_rcpt_change(
    struct queue *q, sqlite3_stmt *st, int64_t rcpt, const char *what)
{
	if (queue_run(q, st, what) == -1)
		return -1;
	return sqlite3_changes(q->db) > 0 ? 0 : queue_rcpt_missing(q, rcpt);
}

static int
queue_rcpt_final(struct queue *q, int64_t rcpt, enum queue_rcpt_status s,
    const struct queue_attempt *a)
{
	sqlite3_stmt *st;

	if (q->pg != NULL)
		return queue_pg_rcpt_final(q, rcpt, s, a);
	st = queue_stmt(q, QUEUE_ST_RCPT_FINAL);
	queue_rcpt_bind_attempt(st, rcpt, a);
	sqlite3_bind_int(st, 2, (int)s);
	return queue_rcpt_change(q, st, rcpt, queue_rcpt_status_str(s));
}

int
queue_rcpt_delivered(
    struct queue *q, int64_t rcpt, const struct queue_attempt *a)
{
	return queue_rcpt_final(q, rcpt, QUEUE_RCPT_DELIVERED, a);
}

int
queue_rcpt_bounced(struct queue *q, int64_t rcpt, const struct queue_attempt *a)
{
	return queue_rcpt_final(q, rcpt, QUEUE_RCPT_BOUNCED, a);
}

int
queue_rcpt_deferred(struct queue *q, int64_t rcpt, time_t next_attempt,
    const struct queue_attempt *a)
{
	sqlite3_stmt *st;

	if (q->pg != NULL)
		return queue_pg_rcpt_deferred(q, rcpt, next_attempt, a);
	st = queue_stmt(q, QUEUE_ST_RCPT_DEFER);
	queue_rcpt_bind_attempt(st, rcpt, a);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)next_attempt);
	return queue_rcpt_change(q, st, rcpt, "deferred");
}

int
queue_rcpt_set_warned(struct queue *q, int64_t rcpt)
{
	sqlite3_stmt *st;

	if (q->pg != NULL)
		return queue_pg_rcpt_set_warned(q, rcpt);
	st = queue_stmt(q, QUEUE_ST_RCPT_WARNED);
	sqlite3_bind_int64(st, 1, rcpt);
	if (queue_run(q, st, "set delay_warned") == -1)
		return -1;
	if (sqlite3_changes(q->db) == 0)
		return queue_failx(q, "no recipient %lld", (long long)rcpt);
	return 0;
}

bool
queue_rcpt_bounce_requested(struct queue *q, int64_t rcpt)
{
	sqlite3_stmt *st;
	bool yes = false;

	if (q->pg != NULL)
		return queue_pg_rcpt_bounce_requested(q, rcpt);
	st = queue_stmt(q, QUEUE_ST_RCPT_BOUNCE_REQ);
	sqlite3_bind_int64(st, 1, rcpt);
	if (sqlite3_step(st) == SQLITE_ROW)
		yes = sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	return yes;
}
