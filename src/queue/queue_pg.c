/*
 * queue_pg: the queue in the fleet's PostgreSQL database ([queue] store =
 * postgres; queue.h queue_open_pg, docs/FLEET.md). This file: opening,
 * errors, transactions and batches, the trace events, and queue_add(),
 * whose COMMIT is what a 250 promises: with synchronous_commit on (the
 * default; the DBA's to keep) PostgreSQL returns from COMMIT once the WAL
 * is flushed, and with a synchronous standby once a replica has it too.
 *
 * Claims and leases are queue_pg_due.c, outcomes queue_pg_rcpt.c, the
 * operator's actions queue_pg_admin.c.
 */
#include "queue/queue_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qid.h"
#include "core/str.h"
#include "core/xmalloc.h"

struct queue *
queue_open_pg(
    const char *conninfo, const char *node, time_t lease, char **errstr)
{
	struct queue *q;
	struct pg *p;

	*errstr = NULL;
	if ((p = pg_open(conninfo, node, errstr)) == NULL)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->pg = p;
	q->lease = lease > 0 ? lease : 600;
	q->path = xasprintf("postgres (node %s)", pg_node(p));
	return q;
}

void
queue_pg_close(struct queue *q)
{
	queue_pg_claims_release(q);
	queue_pg_claims_free(q->claims);
	pg_close(q->pg);
	free(q->dir);
	free(q->path);
	free(q);
}

int
queue_pg_fail(struct queue *q, const char *what)
{
	if (q->batch > 0 && q->batch_err != 0)
		return -1; /* keep the first error: it is the cause */
	snprintf(q->err, sizeof(q->err), "postgres queue: %s: %s", what,
	    pg_error(q->pg));
	if (q->batch > 0)
		q->batch_err = 1;
	return -1;
}

int
queue_pg_ready(struct queue *q)
{
	if (q->batch > 0) {
		if (q->batch_err != 0)
			return -1;
		if (pg_broken(q->pg))
			return queue_pg_fail(q, "connection lost");
		return 0;
	}
	if (pg_ready(q->pg) == -1) {
		snprintf(q->err, sizeof(q->err), "postgres queue: %s",
		    pg_error(q->pg));
		return -1;
	}
	return 0;
}

bool
queue_pg_available(struct queue *q)
{
	if (!pg_broken(q->pg))
		return true;
	/* pg_ready() limits the reconnects to one per PG_RETRY_S. */
	return queue_pg_ready(q) == 0;
}

PGresult *
queue_pg_query(struct queue *q, const char *what, const char *sql, int n,
    const char *const *values)
{
	PGresult *r;

	if (q->batch > 0 && q->batch_err != 0)
		return NULL; /* the batch is lost: nothing outside it */
	if ((r = pg_query(q->pg, sql, n, values)) == NULL)
		queue_pg_fail(q, what);
	return r;
}

int
queue_pg_exec(struct queue *q, const char *what, const char *sql, int n,
    const char *const *values)
{
	return queue_pg_exec_n(q, what, sql, n, values, NULL);
}

int
queue_pg_exec_n(struct queue *q, const char *what, const char *sql, int n,
    const char *const *values, long long *changed)
{
	PGresult *r = queue_pg_query(q, what, sql, n, values);

	if (r == NULL)
		return -1;
	if (changed != NULL)
		*changed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

PGresult *
queue_pg_run(struct queue *q, const char *what, const char *sql,
    const struct queue_pg_args *a)
{
	PGresult *r;

	if (q->batch > 0 && q->batch_err != 0)
		return NULL;
	r = pg_query_bin(q->pg, sql, a->n, a->v, a->len, a->fmt);
	if (r == NULL)
		queue_pg_fail(q, what);
	return r;
}

long long
queue_pg_change(struct queue *q, const char *what, const char *sql,
    const struct queue_pg_args *a)
{
	PGresult *r = queue_pg_run(q, what, sql, a);
	long long n;

	if (r == NULL)
		return -1;
	n = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return n;
}

/*
 * COMMIT of a transaction that failed answers "ROLLBACK", not an error:
 * only "COMMIT" is a commit.
 */
static int
queue_pg_commit(struct queue *q, const char *what)
{
	PGresult *r = queue_pg_query(q, what, "COMMIT", 0, NULL);
	bool ok;

	if (r == NULL)
		return -1;
	ok = strcmp(PQcmdStatus(r), "COMMIT") == 0;
	PQclear(r);
	if (!ok) {
		snprintf(q->err, sizeof(q->err),
		    "postgres queue: %s: rolled back", what);
		return -1;
	}
	return 0;
}

int
queue_pg_tx_begin(struct queue *q)
{
	if (queue_pg_ready(q) == -1)
		return -1;
	return queue_pg_exec(
	    q, "begin", q->batch > 0 ? "SAVEPOINT tx" : "BEGIN", 0, NULL);
}

int
queue_pg_tx_commit(struct queue *q)
{
	if (q->batch > 0)
		return queue_pg_exec(
		    q, "release savepoint", "RELEASE SAVEPOINT tx", 0, NULL);
	if (queue_pg_commit(q, "commit") == -1) {
		pg_rollback(q->pg);
		return -1;
	}
	return 0;
}

void
queue_pg_tx_rollback(struct queue *q)
{
	char keep[sizeof(q->err)];

	if (q->batch == 0) {
		pg_rollback(q->pg); /* keeps pg's error */
		return;
	}
	if (q->batch_err != 0)
		return; /* the batch is lost anyway */
	memcpy(keep, q->err, sizeof(keep));
	queue_pg_exec(q, "rollback to savepoint",
	    "ROLLBACK TO SAVEPOINT tx; RELEASE SAVEPOINT tx", 0, NULL);
	memcpy(q->err, keep, sizeof(keep));
}

int
queue_pg_batch_begin(struct queue *q)
{
	if (q->batch > 0) {
		q->batch++;
		return 0;
	}
	if (queue_pg_ready(q) == -1)
		return -1;
	q->batch_err = 0;
	if (queue_pg_exec(q, "begin batch", "BEGIN", 0, NULL) == -1)
		return -1;
	q->batch = 1;
	return 0;
}

int
queue_pg_batch_end(struct queue *q)
{
	int failed = q->batch_err;

	if (q->batch == 0 || --q->batch > 0)
		return 0;
	q->batch_err = 0;
	if (failed == 0 && queue_pg_commit(q, "commit batch") == 0) {
		queue_pg_claims_settle(q, true);
		return 0;
	}
	pg_rollback(q->pg);
	queue_pg_claims_settle(q, false);
	return -1;
}

int
queue_pg_event_add(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields)
{
	struct queue_pg_args a = { 0 };
	long long n;

	queue_pg_arg_str(&a, pg_node(q->pg));
	queue_pg_arg_str(&a, msgid);
	queue_pg_arg_str(&a, addr);
	queue_pg_arg_int(&a, (long long)time(NULL));
	queue_pg_arg_str(&a, type);
	queue_pg_arg_own(&a,
	    fields != NULL && json_object_size(fields) > 0 ?
	        json_dumps(fields, JSON_COMPACT) :
	        NULL);
	n = queue_pg_change(q, "insert event",
	    "INSERT INTO dr_events (node, msgid, addr, at, type, fields) "
	    "VALUES ($1, $2, $3, $4, $5, $6::json)",
	    &a);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : 0;
}

/* The message row; 1 if it went in, 0 if id is taken, -1 on error. */
static int
queue_pg_add_msg(
    struct queue *q, const struct queue_msg_in *m, const char *id, time_t now)
{
	struct queue_pg_args a = { 0 };
	long long n;

	queue_pg_arg_str(&a, id);
	queue_pg_arg_str(&a, pg_node(q->pg));
	queue_pg_arg_int(&a, (long long)m->kind);
	queue_pg_arg_str(&a, m->sender != NULL ? m->sender : "");
	queue_pg_arg_str(&a, m->envid);
	queue_pg_arg_int(&a, (long long)m->ret);
	queue_pg_arg_int(&a, m->body_8bit);
	queue_pg_arg_int(&a, m->smtputf8);
	queue_pg_arg_str(&a, m->client != NULL ? m->client : "");
	queue_pg_arg_str(&a, m->helo);
	queue_pg_arg_str(&a, m->auth_user);
	queue_pg_arg_str(&a, m->message_id);
	queue_pg_arg_int(&a, (long long)now);
	queue_pg_arg_int(&a, (long long)m->len);
	queue_pg_arg_bin(&a, m->data, m->len);
	/* A taken id is no error: the transaction goes on with another. */
	n = queue_pg_change(q, "insert message",
	    "INSERT INTO dr_messages (id, node, kind, sender, envid, ret, "
	    "body_8bit, smtputf8, client, helo, auth_user, message_id, "
	    "received_at, size, body) VALUES ($1, $2, $3, $4, $5, $6, $7, "
	    "$8, $9, $10, $11, $12, $13, $14, $15) "
	    "ON CONFLICT (id) DO NOTHING",
	    &a);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : n > 0 ? 1 : 0;
}

/* The part after the last '@', lowercased (new string). */
static char *
queue_pg_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	char *d = xstrdup(at != NULL ? at + 1 : "");

	str_lower(d);
	return d;
}

/* A recipient and its "queued" event, in one statement. */
static int
queue_pg_add_rcpt(
    struct queue *q, const char *id, const struct queue_rcpt_in *r, time_t now)
{
	struct queue_pg_args a = { 0 };
	long long n;

	queue_pg_arg_str(&a, id);
	queue_pg_arg_str(&a, r->addr);
	queue_pg_arg_own(&a, queue_pg_domain(r->addr));
	queue_pg_arg_str(
	    &a, r->orcpt != NULL && *r->orcpt != '\0' ? r->orcpt : NULL);
	queue_pg_arg_int(&a, (long long)r->notify);
	queue_pg_arg_int(&a, (long long)now);
	queue_pg_arg_str(&a, pg_node(q->pg));
	/* The event's fields as SQLite's queue_add_rcpt writes them. */
	n = queue_pg_change(q, "insert recipient",
	    "WITH r AS (INSERT INTO dr_recipients (msgid, addr, domain, "
	    "orcpt, notify, queued_at, next_attempt) VALUES ($1, $2, $3, "
	    "$4::text, $5::integer, $6, $6) RETURNING id) "
	    "INSERT INTO dr_events (node, msgid, addr, at, type, fields) "
	    "SELECT $7, $1, $2, $6, 'queued', json_strip_nulls("
	    "json_build_object('rcpt', r.id, 'orcpt', $4::text, 'notify', "
	    "NULLIF($5::integer, 0))) FROM r",
	    &a);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : 0;
}

static int
queue_pg_add_received(
    struct queue *q, const struct queue_msg_in *m, const char *id)
{
	json_t *f = json_object();
	int rc;

	json_object_set_new(f, "kind", json_string(queue_kind_str(m->kind)));
	json_object_set_new(
	    f, "sender", queue_json_str(m->sender != NULL ? m->sender : ""));
	queue_json_set_str(f, "client", m->client);
	queue_json_set_str(f, "helo", m->helo);
	queue_json_set_str(f, "auth_user", m->auth_user);
	json_object_set_new(f, "size", json_integer((json_int_t)m->len));
	queue_json_set_str(f, "message_id", m->message_id);
	queue_json_set_str(f, "envid", m->envid);
	json_object_set_new(
	    f, "recipients", json_integer((json_int_t)m->nrcpt));
	rc = queue_pg_event_add(q, id, NULL, "received", f);
	json_decref(f);
	return rc;
}

int
queue_pg_event(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields)
{
	if (queue_pg_ready(q) == -1)
		return -1;
	return queue_pg_event_add(q, msgid, addr, type, fields);
}

/* One try at storing m under id: 1 stored, 0 id taken, -1 error. */
static int
queue_pg_add_once(struct queue *q, const struct queue_msg_in *m, const char *id)
{
	time_t now = time(NULL);
	size_t i;
	int rc;

	if (queue_pg_tx_begin(q) == -1)
		return -1;
	rc = queue_pg_add_msg(q, m, id, now);
	if (rc == 1 && queue_pg_add_received(q, m, id) == -1)
		rc = -1;
	for (i = 0; rc == 1 && i < m->nrcpt; i++)
		if (queue_pg_add_rcpt(q, id, &m->rcpts[i], now) == -1)
			rc = -1;
	if (rc != 1) {
		queue_pg_tx_rollback(q);
		return rc;
	}
	return queue_pg_tx_commit(q) == 0 ? 1 : -1;
}

int
queue_pg_add(struct queue *q, const struct queue_msg_in *m,
    char id[QUEUE_ID_LEN], char **errstr)
{
	int tries, rc = 0;

	*errstr = NULL;
	if (m->nrcpt == 0 || (m->len > 0 && m->data == NULL)) {
		*errstr = xstrdup("queue_add: no recipients or no data");
		return -1;
	}
	q->err[0] = '\0';
	/* As queue_add: the caller's well-formed id first, then random. */
	for (tries = 0; tries < 3 && rc == 0; tries++) {
		if (tries > 0 ||
		    strnlen(id, QUEUE_ID_LEN) != QUEUE_ID_LEN - 1 ||
		    strspn(id, "0123456789abcdef") != QUEUE_ID_LEN - 1)
			qid_make(time(NULL), id);
		rc = queue_pg_add_once(q, m, id);
	}
	if (rc == 1)
		return 0;
	*errstr =
	    xstrdup(q->err[0] != '\0' ? q->err : "postgres queue: no free id");
	return -1;
}
