/*
 * queue_msg: reading a message back (envelope and body, byte-exact) and
 * dropping its body once nobody needs it. The envelope row stays so that
 * `queue show` and `trace` can still tell the story; queue_purge() in
 * queue_admin.c removes it later.
 */
#include "queue/queue_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "queue/queue_pg_int.h"

static const char *
queue_msg_text(sqlite3_stmt *st, int col, struct queue_msg_box *b, size_t slot,
    bool keep_null)
{
	char *s = queue_col_dup(st, col);

	if (s == NULL && !keep_null)
		s = xstrdup("");
	b->own[slot] = s;
	return s;
}

/* Copy the body column: NULL means dropped, a zero-length blob is empty. */
static void
queue_msg_body(sqlite3_stmt *st, int col, struct queue_msg_box *b)
{
	const void *p;
	size_t n;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return;
	p = sqlite3_column_blob(st, col);
	n = (size_t)sqlite3_column_bytes(st, col);
	/* One spare byte so that an empty body is still non-NULL. */
	b->data = xmalloc(n + 1);
	if (n > 0)
		memcpy(b->data, p, n);
	b->m.data = b->data;
	b->m.len = n;
}

static struct queue_msg *
queue_msg_read(sqlite3_stmt *st)
{
	struct queue_msg_box *b = xcalloc(1, sizeof(*b));
	struct queue_msg *m = &b->m;
	const unsigned char *id = sqlite3_column_text(st, 0);

	snprintf(
	    m->id, sizeof(m->id), "%s", id != NULL ? (const char *)id : "");
	m->kind = (enum queue_kind)sqlite3_column_int(st, 1);
	m->sender = queue_msg_text(st, 2, b, 0, false);
	m->envid = queue_msg_text(st, 3, b, 1, true);
	m->ret = (enum queue_ret)sqlite3_column_int(st, 4);
	m->body_8bit = sqlite3_column_int(st, 5) != 0;
	m->smtputf8 = sqlite3_column_int(st, 6) != 0;
	m->client = queue_msg_text(st, 7, b, 2, false);
	m->helo = queue_msg_text(st, 8, b, 3, true);
	m->auth_user = queue_msg_text(st, 9, b, 4, true);
	m->message_id = queue_msg_text(st, 10, b, 5, true);
	m->received_at = (time_t)sqlite3_column_int64(st, 11);
	m->size = (size_t)sqlite3_column_int64(st, 12);
	queue_msg_body(st, 13, b);
	return m;
}

/* The message row of msgid, with or without a body; NULL if none. */
static struct queue_msg *
queue_msg_load(struct queue *q, const char *msgid)
{
	sqlite3_stmt *st = queue_stmt(q, QUEUE_ST_MSG_GET);
	struct queue_msg *m = NULL;
	int rc;

	q->err[0] = '\0';
	sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		m = queue_msg_read(st);
	else if (rc != SQLITE_DONE)
		queue_fail(q, "read message");
	sqlite3_reset(st);
	return m;
}

struct queue_msg *
queue_msg_get(struct queue *q, const char *msgid)
{
	struct queue_msg *m = q->pg != NULL ? queue_pg_msg_load(q, msgid) :
	                                      queue_msg_load(q, msgid);

	if (m != NULL && m->data == NULL) {
		queue_msg_free(m);
		return NULL;
	}
	return m;
}

struct queue_msg *
queue_msg_find(struct queue *q, const char *key)
{
	char msgid[QUEUE_ID_LEN];
	int64_t rcpt;
	sqlite3_stmt *st;
	int rc;

	q->err[0] = '\0';
	rc = queue_resolve(q, key, msgid, &rcpt);
	if (rc == 2) {
		if (sqlite3_prepare_v2(q->db,
		        "SELECT msgid FROM recipients WHERE id = ?", -1, &st,
		        NULL) != SQLITE_OK) {
			queue_fail(q, "find recipient");
			return NULL;
		}
		sqlite3_bind_int64(st, 1, rcpt);
		rc = sqlite3_step(st) == SQLITE_ROW ? 1 : 0;
		if (rc == 1)
			snprintf(msgid, sizeof(msgid), "%s",
			    (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	return rc == 1 ? queue_msg_load(q, msgid) : NULL;
}

void
queue_msg_free(struct queue_msg *m)
{
	struct queue_msg_box *b = (struct queue_msg_box *)(void *)m;
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < sizeof(b->own) / sizeof(b->own[0]); i++)
		free(b->own[i]);
	free(b->data);
	free(b);
}

void
queue_msg_drop_body(struct queue_msg *m)
{
	struct queue_msg_box *b = (struct queue_msg_box *)(void *)m;

	free(b->data);
	b->data = NULL;
	m->data = NULL;
	m->len = 0;
}

int
queue_msg_gc(struct queue *q, const char *msgid)
{
	sqlite3_stmt *st;

	if (q->pg != NULL)
		return queue_pg_msg_gc(q, msgid);
	st = queue_stmt(q, QUEUE_ST_MSG_GC);
	sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	return queue_run(q, st, "drop body");
}

int
queue_msg_rcpts(
    struct queue *q, const char *msgid, queue_rcpt_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	int n;

	if (sqlite3_prepare_v2(q->db,
	        "SELECT " QUEUE_RCPT_COLS " FROM recipients WHERE msgid = ? "
	        "ORDER BY id",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "message recipients");
	sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	n = queue_rcpt_each(q, st, SIZE_MAX, cb, arg);
	sqlite3_finalize(st);
	return n;
}
