/*
 * queue_admin: what the operator does through `danerelay queue` while the
 * relay runs: list, retry, delete, bounce, and the retention purge. Each
 * action is one short write transaction that logs an event per recipient,
 * so `trace` shows who changed what; the daemon sees the change on its
 * next queue_due() scan.
 */
#include "queue/queue_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/str.h"
#include "core/xmalloc.h"

enum queue_admin_action {
	QUEUE_ADMIN_RETRY,
	QUEUE_ADMIN_DELETE,
	QUEUE_ADMIN_BOUNCE,
};

static const struct {
	const char *sql; /* ?1 recipient row id, ?2 now (if used) */
	const char *event;
} queue_admin_ops[] = {
	[QUEUE_ADMIN_RETRY] = { "UPDATE recipients SET next_attempt = ?2 "
	                        "WHERE id = ?1 AND status = 0",
	    "retry" },
	[QUEUE_ADMIN_DELETE] = { "UPDATE recipients SET status = 3 "
	                         "WHERE id = ?1 AND status = 0",
	    "deleted" },
	[QUEUE_ADMIN_BOUNCE] = { "UPDATE recipients SET bounce_requested = 1, "
	                         "next_attempt = ?2 WHERE id = ?1 AND "
	                         "status = 0",
	    "bounce-requested" },
};

struct queue_admin_target {
	int64_t id;
	char *addr;
};

static bool
queue_is_hexid(const char *s)
{
	return strlen(s) == QUEUE_ID_LEN - 1 &&
	    strspn(s, "0123456789abcdefABCDEF") == QUEUE_ID_LEN - 1;
}

/* 1 if sql (one ? parameter bound to key or num) returns a row. */
static int
queue_exists(struct queue *q, const char *sql, const char *key, int64_t num)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "lookup");
	if (key != NULL)
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, num);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : queue_fail(q, "lookup");
}

int
queue_resolve(
    struct queue *q, const char *key, char msgid[QUEUE_ID_LEN], int64_t *rcpt)
{
	uint64_t n;
	int rc;

	if (queue_is_hexid(key)) {
		snprintf(msgid, QUEUE_ID_LEN, "%s", key);
		str_lower(msgid);
		rc = queue_exists(
		    q, "SELECT 1 FROM messages WHERE id = ?", msgid, 0);
		if (rc != 0)
			return rc;
	}
	/* A 16-digit number that is no message may still be a row id. */
	if (str_to_uint(key, 1, INT64_MAX, &n) == -1)
		return 0;
	*rcpt = (int64_t)n;
	rc = queue_exists(
	    q, "SELECT 1 FROM recipients WHERE id = ?", NULL, *rcpt);
	return rc == 1 ? 2 : rc;
}

/* The queued recipients that key names; *n of them, new array. */
static int
queue_admin_targets(struct queue *q, const char *key, char *msgid,
    struct queue_admin_target **out, size_t *n)
{
	sqlite3_stmt *st;
	int64_t rcpt = 0;
	int rc, kind;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if ((kind = queue_resolve(q, key, msgid, &rcpt)) <= 0)
		return kind;
	if (sqlite3_prepare_v2(q->db,
	        kind == 1 ? "SELECT id, addr, msgid FROM recipients "
	                    "WHERE msgid = ? AND status = 0 ORDER BY id" :
	                    "SELECT id, addr, msgid FROM recipients "
	                    "WHERE id = ? AND status = 0",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "select recipients");
	if (kind == 1)
		sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, rcpt);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		(*out)[*n].id = sqlite3_column_int64(st, 0);
		(*out)[(*n)++].addr = queue_col_dup(st, 1);
		snprintf(msgid, QUEUE_ID_LEN, "%s",
		    (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 1 : queue_fail(q, "select recipients");
}

static int
queue_admin_one(struct queue *q, sqlite3_stmt *st, const char *msgid,
    const struct queue_admin_target *t, enum queue_admin_action act)
{
	json_t *f;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, t->id);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (queue_run(q, st, queue_admin_ops[act].event) == -1)
		return -1;
	f = json_object();
	json_object_set_new(f, "rcpt", json_integer(t->id));
	json_object_set_new(f, "by", json_string("operator"));
	json_object_set_new(f, "uid", json_integer((json_int_t)getuid()));
	rc = queue_event_add(q, msgid, t->addr, queue_admin_ops[act].event, f);
	json_decref(f);
	return rc;
}

static int
queue_admin_apply(struct queue *q, const struct queue_admin_target *t, size_t n,
    const char *msgid, enum queue_admin_action act)
{
	sqlite3_stmt *st;
	size_t i;
	int rc = 0;

	if (sqlite3_prepare_v2(
	        q->db, queue_admin_ops[act].sql, -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, queue_admin_ops[act].event);
	for (i = 0; i < n && rc == 0; i++)
		rc = queue_admin_one(q, st, msgid, &t[i], act);
	sqlite3_finalize(st);
	if (rc == 0 && act == QUEUE_ADMIN_DELETE && n > 0)
		rc = queue_msg_gc(q, msgid);
	return rc;
}

static int
queue_admin(struct queue *q, const char *key, enum queue_admin_action act)
{
	struct queue_admin_target *t;
	char msgid[QUEUE_ID_LEN] = "";
	size_t n, i;
	int rc;

	q->err[0] = '\0';
	if (queue_tx_begin(q) == -1)
		return -1;
	rc = queue_admin_targets(q, key, msgid, &t, &n);
	if (rc > 0)
		rc = queue_admin_apply(q, t, n, msgid, act);
	for (i = 0; i < n; i++)
		free(t[i].addr);
	free(t);
	if (rc == -1) {
		queue_tx_rollback(q);
		return -1;
	}
	return queue_tx_commit(q) == 0 ? (int)n : -1;
}

int
queue_retry(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_admin(q, msgid_or_rcpt_id, QUEUE_ADMIN_RETRY);
}

int
queue_delete(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_admin(q, msgid_or_rcpt_id, QUEUE_ADMIN_DELETE);
}

int
queue_bounce(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_admin(q, msgid_or_rcpt_id, QUEUE_ADMIN_BOUNCE);
}

int
queue_retry_since(struct queue *q, time_t since, time_t now)
{
	sqlite3_stmt *st;
	int rc;

	q->err[0] = '\0';
	if (sqlite3_prepare_v2(q->db,
	        "UPDATE recipients SET next_attempt = ?2 WHERE status = 0 "
	        "AND last_attempt >= ?1 AND next_attempt > ?2",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "retry since");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	rc = queue_run(q, st, "retry since");
	sqlite3_finalize(st);
	return rc == -1 ? -1 : sqlite3_changes(q->db);
}

int
queue_list(struct queue *q, queue_rcpt_cb *cb, void *arg)
{
	sqlite3_stmt *st;
	int n;

	if (sqlite3_prepare_v2(q->db,
	        "SELECT " QUEUE_RCPT_COLS " FROM recipients "
	        "WHERE status = 0 ORDER BY id",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "list");
	n = queue_rcpt_each(q, st, SIZE_MAX, cb, arg);
	sqlite3_finalize(st);
	return n;
}

static const char queue_purge_sql[] =
    "DELETE FROM events WHERE msgid IN (SELECT id FROM purge_ids);"
    "DELETE FROM recipients WHERE msgid IN (SELECT id FROM purge_ids);"
    "DELETE FROM messages WHERE id IN (SELECT id FROM purge_ids);"
    "DELETE FROM purge_ids;";

/* Collect the finished, quiet messages into temp.purge_ids. */
static int
queue_purge_select(struct queue *q, time_t before)
{
	sqlite3_stmt *st;

	if (sqlite3_exec(q->db,
	        "CREATE TEMP TABLE IF NOT EXISTS purge_ids "
	        "(id TEXT PRIMARY KEY); DELETE FROM purge_ids;",
	        NULL, NULL, NULL) != SQLITE_OK)
		return queue_fail(q, "purge");
	if (sqlite3_prepare_v2(q->db,
	        "INSERT INTO purge_ids SELECT id FROM messages m "
	        "WHERE body IS NULL AND received_at < ?1 AND NOT EXISTS "
	        "(SELECT 1 FROM recipients r WHERE r.msgid = m.id AND "
	        "r.status = 0) AND NOT EXISTS (SELECT 1 FROM events e "
	        "WHERE e.msgid = m.id AND e.at >= ?1)",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "purge");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)before);
	if (queue_run(q, st, "purge") == -1) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return sqlite3_changes(q->db);
}

int
queue_purge(struct queue *q, time_t before)
{
	int n;

	if (queue_tx_begin(q) == -1)
		return -1;
	n = queue_purge_select(q, before);
	if (n > 0 &&
	    sqlite3_exec(q->db, queue_purge_sql, NULL, NULL, NULL) != SQLITE_OK)
		n = queue_fail(q, "purge");
	if (n == -1) {
		queue_tx_rollback(q);
		return -1;
	}
	return queue_tx_commit(q) == 0 ? n : -1;
}

int
queue_count_states(struct queue *q, time_t now, struct queue_counts *c)
{
	sqlite3_stmt *st;
	int rc;

	memset(c, 0, sizeof(*c));
	if (sqlite3_prepare_v2(q->db,
	        "SELECT next_attempt <= ?1, count(*) FROM recipients "
	        "WHERE status = 0 GROUP BY 1",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "count");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);

		if (sqlite3_column_int(st, 0))
			c->active = n;
		else
			c->deferred = n;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : queue_fail(q, "count");
}

int
queue_count_outcomes(struct queue *q, time_t since, struct queue_outcomes *c)
{
	sqlite3_stmt *st;
	int rc;

	memset(c, 0, sizeof(*c));
	/* The security is in the attempt event before the outcome. */
	if (sqlite3_prepare_v2(q->db,
	        "SELECT e.type = 'delivered', "
	        "count(DISTINCT e.msgid || ' ' || e.addr) FROM events e "
	        "WHERE e.at >= ?1 AND (e.type = 'delivered' OR "
	        "(e.type IN ('deferred', 'bounced') AND "
	        "CASE WHEN json_valid(e.fields) THEN "
	        "json_extract(e.fields, '$.result_type') IS NOT NULL END "
	        "AND EXISTS (SELECT 1 FROM events a WHERE a.msgid = e.msgid "
	        "AND a.addr = e.addr AND a.type = 'attempt' AND a.at <= e.at "
	        "AND CASE WHEN json_valid(a.fields) THEN "
	        "json_extract(a.fields, '$.security') IN ('dane', 'sts') "
	        "END))) GROUP BY 1",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "count outcomes");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);

		if (sqlite3_column_int(st, 0))
			c->delivered = n;
		else
			c->blocked = n;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : queue_fail(q, "count outcomes");
}
