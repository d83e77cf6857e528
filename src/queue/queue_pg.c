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
	queue_pg_held_free(q->held);
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
	if (q->batch > 0 && queue_pg_held_flush(q) == -1)
		return NULL;
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
	if (q->batch > 0 && queue_pg_held_flush(q) == -1)
		return NULL;
	r = pg_query_bin(q->pg, sql, a->n, a->v, a->len, a->fmt);
	if (r == NULL)
		queue_pg_fail(q, what);
	return r;
}

PGresult *
queue_pg_prep(struct queue *q, const char *what, const char *sql,
    const struct queue_pg_args *a, bool flush)
{
	PGresult *r;

	if (q->batch > 0 && q->batch_err != 0)
		return NULL;
	if (flush && q->batch > 0 && queue_pg_held_flush(q) == -1)
		return NULL;
	r = pg_query_prepared(q->pg, sql, a->n, a->v, a->len, a->fmt);
	if (r == NULL)
		queue_pg_fail(q, what);
	return r;
}

long long
queue_pg_prep_change(struct queue *q, const char *what, const char *sql,
    const struct queue_pg_args *a, bool flush)
{
	PGresult *r = queue_pg_prep(q, what, sql, a, flush);
	long long n;

	if (r == NULL)
		return -1;
	n = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return n;
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
	int failed;

	if (q->batch == 0 || q->batch-- > 1)
		return 0;
	/* What the batch holds goes in before its COMMIT, inside it (the
	 * flush runs only while a batch is open: open it for that). */
	q->batch = 1;
	queue_pg_held_flush(q); /* a failure sets batch_err */
	q->batch = 0;
	failed = q->batch_err;
	q->batch_err = 0;
	if (failed == 0 && queue_pg_commit(q, "commit batch") == 0) {
		queue_pg_claims_settle(q, true);
		return 0;
	}
	pg_rollback(q->pg);
	queue_pg_held_drop(q);
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
	n = queue_pg_prep_change(q, "insert event",
	    "INSERT INTO dr_events (node, msgid, addr, at, type, fields) "
	    "VALUES ($1, $2, $3, $4, $5, $6::json)",
	    &a, true);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : 0;
}

/*
 * queue_add in one statement, so one round trip and one commit: the
 * message, its "received" event, its recipients and their "queued"
 * events (the fields as SQLite's queue_add_rcpt writes them). A taken id
 * inserts nothing at all (ON CONFLICT: the others select from m), no
 * error: the caller tries another. The rows get their ids in the order of
 * before (message event first, then the recipients in order); the
 * statement's result is how many messages went in, 1 or 0.
 *
 * $1 id, $2 node, $3..$12 the envelope, $13 now, $14 size, $15 body,
 * $16 the received event's fields, $17..$20 the recipients' addr,
 * domain, orcpt and notify as arrays.
 */
static const char queue_pg_add_sql[] =
    "WITH m AS (INSERT INTO dr_messages (id, node, kind, sender, envid, "
    "ret, body_8bit, smtputf8, client, helo, auth_user, message_id, "
    "received_at, size, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
    "$10, $11, $12, $13, $14, $15) ON CONFLICT (id) DO NOTHING "
    "RETURNING id), "
    "r AS (INSERT INTO dr_recipients (msgid, addr, domain, orcpt, notify, "
    "queued_at, next_attempt) SELECT m.id, x.addr, x.domain, x.orcpt, "
    "x.notify, $13, $13 FROM m, unnest($17::text[], $18::text[], "
    "$19::text[], $20::integer[]) WITH ORDINALITY AS x(addr, domain, "
    "orcpt, notify, i) ORDER BY x.i RETURNING id, addr, orcpt, notify), "
    "e AS (INSERT INTO dr_events (node, msgid, addr, at, type, fields) "
    "SELECT $2, $1, v.addr, $13, v.type, v.fields FROM (SELECT 0 AS k, "
    "0::bigint AS rid, NULL::text AS addr, 'received'::text AS type, "
    "$16::json AS fields FROM m UNION ALL SELECT 1, r.id, r.addr, "
    "'queued', json_strip_nulls(json_build_object('rcpt', r.id, "
    "'orcpt', r.orcpt, 'notify', NULLIF(r.notify, 0))) FROM r) v "
    "ORDER BY v.k, v.rid) "
    "SELECT count(*) FROM m";

/* The message's parameters $1..$15 and the received event's $16. */
static void
queue_pg_add_args(struct queue *q, struct queue_pg_args *a,
    const struct queue_msg_in *m, const char *id, time_t now)
{
	json_t *f = queue_received_fields(m);

	queue_pg_arg_str(a, id);
	queue_pg_arg_str(a, pg_node(q->pg));
	queue_pg_arg_int(a, (long long)m->kind);
	queue_pg_arg_str(a, m->sender != NULL ? m->sender : "");
	queue_pg_arg_str(a, m->envid);
	queue_pg_arg_int(a, (long long)m->ret);
	queue_pg_arg_int(a, m->body_8bit);
	queue_pg_arg_int(a, m->smtputf8);
	queue_pg_arg_str(a, m->client != NULL ? m->client : "");
	queue_pg_arg_str(a, m->helo);
	queue_pg_arg_str(a, m->auth_user);
	queue_pg_arg_str(a, m->message_id);
	queue_pg_arg_int(a, (long long)now);
	queue_pg_arg_int(a, (long long)m->len);
	queue_pg_arg_bin(a, m->data, m->len);
	queue_pg_arg_own(
	    a, json_object_size(f) > 0 ? json_dumps(f, JSON_COMPACT) : NULL);
	json_decref(f);
}

/* The recipients as the arrays $17..$20 (in b[4], the caller's). */
static void
queue_pg_add_rcpts(
    struct queue_pg_args *a, const struct queue_msg_in *m, struct buf b[4])
{
	const struct queue_rcpt_in *r;
	char num[PG_INT_LEN], *domain;
	size_t i, k;

	for (i = 0; i < m->nrcpt; i++) {
		r = &m->rcpts[i];
		domain = queue_addr_domain(r->addr);
		queue_pg_arg_elem(&b[0], r->addr);
		queue_pg_arg_elem(&b[1], domain);
		queue_pg_arg_elem(&b[2],
		    r->orcpt != NULL && *r->orcpt != '\0' ? r->orcpt : NULL);
		queue_pg_arg_elem(&b[3], pg_itoa((long long)r->notify, num));
		free(domain);
	}
	for (k = 0; k < 4; k++)
		a->v[a->n++] = queue_pg_arg_array(&b[k]);
}

int
queue_pg_event(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields)
{
	if (queue_pg_ready(q) == -1)
		return -1;
	/* In a batch: written with the batch's others (queue_pg_held.c). */
	if (q->batch > 0)
		return queue_pg_held_event(q, msgid, addr, type, fields);
	return queue_pg_event_add(q, msgid, addr, type, fields);
}

/* One try at storing m under id: 1 stored, 0 id taken, -1 error. */
static int
queue_pg_add_once(struct queue *q, const struct queue_msg_in *m, const char *id)
{
	struct queue_pg_args a = { 0 };
	struct buf b[4];
	PGresult *res;
	size_t k;
	int rc;

	if (queue_pg_ready(q) == -1)
		return -1;
	for (k = 0; k < 4; k++)
		buf_init(&b[k], (size_t)1 << 30);
	queue_pg_add_args(q, &a, m, id, time(NULL));
	queue_pg_add_rcpts(&a, m, b);
	/* One statement: atomic, and outside a batch committed (the WAL
	 * flushed) when it returns; inside one it commits with the batch.
	 * What the batch holds goes first: the ids keep their order. */
	res = queue_pg_prep(q, "insert message", queue_pg_add_sql, &a, true);
	rc = res == NULL ? -1 : pg_int(res, 0, 0) > 0 ? 1 : 0;
	PQclear(res);
	queue_pg_args_clear(&a);
	for (k = 0; k < 4; k++)
		buf_free(&b[k]);
	return rc;
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
