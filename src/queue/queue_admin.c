/*
 * queue_admin: what the operator does through `danerelay queue` or the
 * console while the relay runs: retry, delete, bounce, hold, release,
 * flush, and the retention purge. Each action is one short write
 * transaction (a flush, one per 1000 recipients) that logs an event per
 * recipient, so `trace` shows who changed what; the daemon sees the
 * change on its next queue_due() scan (once a second).
 */
#include "queue/queue_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/str.h"
#include "core/xmalloc.h"
#include "queue/queue_pg_int.h"

enum queue_admin_action {
	QUEUE_ADMIN_RETRY,
	QUEUE_ADMIN_DELETE,
	QUEUE_ADMIN_BOUNCE,
	QUEUE_ADMIN_HOLD,
	QUEUE_ADMIN_RELEASE,
	QUEUE_ADMIN_FLUSH,
};

/* Recipients a flush changes per transaction (queue_flush). */
#define QUEUE_FLUSH_CHUNK 1000

static const struct {
	const char *from; /* the recipients of a message it acts on */
	const char *sql;  /* ?1 recipient row id, ?2 now (if used) */
	const char *event;
} queue_admin_ops[] = {
	[QUEUE_ADMIN_RETRY] = { "status = 0",
	    "UPDATE recipients SET next_attempt = ?2 "
	    "WHERE id = ?1 AND status = 0",
	    "retry" },
	[QUEUE_ADMIN_DELETE] = { QUEUE_SQL_PRESENT,
	    "UPDATE recipients SET status = 3 "
	    "WHERE id = ?1 AND " QUEUE_SQL_PRESENT,
	    "deleted" },
	/* A held recipient to bounce is released to the daemon, which
	 * returns it to the sender without an attempt. */
	[QUEUE_ADMIN_BOUNCE] = { QUEUE_SQL_PRESENT,
	    "UPDATE recipients SET status = 0, bounce_requested = 1, "
	    "next_attempt = ?2 WHERE id = ?1 AND " QUEUE_SQL_PRESENT,
	    "bounce-requested" },
	[QUEUE_ADMIN_HOLD] = { "status = 0",
	    "UPDATE recipients SET status = 4 WHERE id = ?1 AND status = 0",
	    "held" },
	[QUEUE_ADMIN_RELEASE] = { "status = 4",
	    "UPDATE recipients SET status = 0, next_attempt = ?2 "
	    "WHERE id = ?1 AND status = 4",
	    "released" },
	/* queue_flush() selects its own recipients. */
	[QUEUE_ADMIN_FLUSH] = { NULL,
	    "UPDATE recipients SET next_attempt = ?2 "
	    "WHERE id = ?1 AND status = 0",
	    "flushed" },
};

struct queue_admin_target {
	int64_t id;
	char *addr;
	char msgid[QUEUE_ID_LEN];
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

static void
queue_admin_targets_free(struct queue_admin_target *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(t[i].addr);
	free(t);
}

/* Step st (id, addr, msgid rows) into *out (new array of *n); 0 or -1. */
static int
queue_admin_collect(struct queue *q, sqlite3_stmt *st,
    struct queue_admin_target **out, size_t *n)
{
	struct queue_admin_target *t;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		t = &(*out)[(*n)++];
		t->id = sqlite3_column_int64(st, 0);
		t->addr = queue_col_dup(st, 1);
		snprintf(t->msgid, sizeof(t->msgid), "%s",
		    (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : queue_fail(q, "select recipients");
}

/* The recipients of act that key names; 1 (*n of them), 0 or -1. */
static int
queue_admin_targets(struct queue *q, const char *key,
    enum queue_admin_action act, struct queue_admin_target **out, size_t *n)
{
	char msgid[QUEUE_ID_LEN], sql[256];
	sqlite3_stmt *st;
	int64_t rcpt = 0;
	int kind;

	*out = NULL;
	*n = 0;
	if ((kind = queue_resolve(q, key, msgid, &rcpt)) <= 0)
		return kind;
	snprintf(sql, sizeof(sql),
	    kind == 1 ? "SELECT id, addr, msgid FROM recipients "
	                "WHERE msgid = ?1 AND %s ORDER BY id" :
	                "SELECT id, addr, msgid FROM recipients "
	                "WHERE id = ?1 AND %s",
	    queue_admin_ops[act].from);
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "select recipients");
	if (kind == 1)
		sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, rcpt);
	return queue_admin_collect(q, st, out, n) == 0 ? 1 : -1;
}

static int
queue_admin_one(struct queue *q, sqlite3_stmt *st,
    const struct queue_admin_target *t, enum queue_admin_action act, time_t now)
{
	json_t *f;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, t->id);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	if (queue_run(q, st, queue_admin_ops[act].event) == -1)
		return -1;
	f = json_object();
	json_object_set_new(f, "rcpt", json_integer(t->id));
	json_object_set_new(f, "by",
	    queue_json_str(q->actor[0] != '\0' ? q->actor : "operator"));
	json_object_set_new(f, "uid", json_integer((json_int_t)getuid()));
	rc = queue_event_add(
	    q, t->msgid, t->addr, queue_admin_ops[act].event, f);
	json_decref(f);
	return rc;
}

/* now: one value for the whole action (a flush selects by it). */
static int
queue_admin_apply(struct queue *q, const struct queue_admin_target *t, size_t n,
    enum queue_admin_action act, time_t now)
{
	sqlite3_stmt *st;
	size_t i;
	int rc = 0;

	if (sqlite3_prepare_v2(
	        q->db, queue_admin_ops[act].sql, -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, queue_admin_ops[act].event);
	for (i = 0; i < n && rc == 0; i++)
		rc = queue_admin_one(q, st, &t[i], act, now);
	sqlite3_finalize(st);
	/* A delete names one message: its body goes when nothing is left. */
	if (rc == 0 && act == QUEUE_ADMIN_DELETE && n > 0)
		rc = queue_msg_gc(q, t[0].msgid);
	return rc;
}

static int
queue_admin(struct queue *q, const char *key, enum queue_admin_action act)
{
	struct queue_admin_target *t;
	size_t n;
	int rc;

	q->err[0] = '\0';
	if (queue_tx_begin(q) == -1)
		return -1;
	rc = queue_admin_targets(q, key, act, &t, &n);
	if (rc > 0)
		rc = queue_admin_apply(q, t, n, act, time(NULL));
	queue_admin_targets_free(t, n);
	if (rc == -1) {
		queue_tx_rollback(q);
		return -1;
	}
	return queue_tx_commit(q) == 0 ? (int)n : -1;
}

void
queue_set_actor(struct queue *q, const char *who)
{
	snprintf(q->actor, sizeof(q->actor), "%s", who != NULL ? who : "");
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
queue_hold(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_admin(q, msgid_or_rcpt_id, QUEUE_ADMIN_HOLD);
}

int
queue_release(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_admin(q, msgid_or_rcpt_id, QUEUE_ADMIN_RELEASE);
}

/*
 * Which recipients a flush takes. Every domain: the due index from now
 * on; those it makes due leave that range, so each chunk starts afresh.
 * One domain: its index, in row id order after the last chunk (+status
 * keeps SQLite from taking the due index of every domain instead).
 */
static const char queue_flush_all_sql[] =
    "SELECT id, addr, msgid FROM recipients WHERE status = 0 AND "
    "next_attempt > ?2 LIMIT ?3";
static const char queue_flush_domain_sql[] =
    "SELECT id, addr, msgid FROM recipients WHERE domain = ?1 AND "
    "+status = 0 AND next_attempt > ?2 AND id > ?4 ORDER BY id LIMIT ?3";

/* One transaction of a flush: up to QUEUE_FLUSH_CHUNK recipients made
 * due; *last: the highest row id done. Returns how many, or -1. */
static int
queue_flush_chunk(
    struct queue *q, const char *domain, time_t now, int64_t *last)
{
	struct queue_admin_target *t = NULL;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc = -1;

	if (queue_tx_begin(q) == -1)
		return -1;
	if (sqlite3_prepare_v2(q->db,
	        domain != NULL ? queue_flush_domain_sql : queue_flush_all_sql,
	        -1, &st, NULL) != SQLITE_OK)
		queue_fail(q, "flush");
	else {
		if (domain != NULL) {
			sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 4, *last);
		}
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
		sqlite3_bind_int(st, 3, QUEUE_FLUSH_CHUNK);
		rc = queue_admin_collect(q, st, &t, &n);
	}
	if (rc == 0)
		rc = queue_admin_apply(q, t, n, QUEUE_ADMIN_FLUSH, now);
	if (rc == 0 && n > 0)
		*last = t[n - 1].id;
	queue_admin_targets_free(t, n);
	if (rc == -1) {
		queue_tx_rollback(q);
		return -1;
	}
	return queue_tx_commit(q) == 0 ? (int)n : -1;
}

int
queue_flush(struct queue *q, const char *domain)
{
	char *d = domain != NULL ? xstrdup(domain) : NULL;
	time_t now = time(NULL);
	int64_t last = 0;
	int n, total = 0;

	q->err[0] = '\0';
	if (d != NULL)
		str_lower(d);
	do {
		if ((n = queue_flush_chunk(q, d, now, &last)) > 0)
			total += n;
	} while (n == QUEUE_FLUSH_CHUNK);
	free(d);
	return n == -1 ? -1 : total;
}

int
queue_retry_since(struct queue *q, time_t since, time_t now)
{
	sqlite3_stmt *st;
	int rc;

	if (q->pg != NULL) /* the delivery path's: queue_pg_rcpt.c */
		return queue_pg_retry_since(q, since, now);
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
	        "r." QUEUE_SQL_PRESENT ") AND NOT EXISTS (SELECT 1 FROM "
	        "events e "
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

	if (q->pg != NULL) /* the delivery path's: queue_pg_rcpt.c */
		return queue_pg_purge(q, before);
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
