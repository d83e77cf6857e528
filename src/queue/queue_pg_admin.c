/*
 * queue_pg_admin: the operator's actions on the queue in PostgreSQL
 * ([queue] store = postgres): retry, delete, bounce, hold, release and
 * flush, with the same semantics and trace events as queue_admin.c
 * (queue.h), from any node: the message may have been accepted by
 * another node, and another node may be attempting it right now. (The
 * retention purge and the retry after a DNS outage are the delivery
 * path's, queue_pg_rcpt.c.)
 *
 * Each action is one statement: an UPDATE of the recipients whose new
 * rows feed the INSERT of their events (a data-modifying WITH), so the
 * change and its trace commit together, and PostgreSQL re-checks the
 * WHERE clause on a row another node changed meanwhile.
 *
 * Leases (queue_pg_due.c claims due recipients for [queue] lease
 * seconds, by the database's clock): hold and delete never touch one,
 * so an attempt under way on another node finishes, as on SQLite: a
 * deferral keeps the held or deleted status, a delivery is recorded.
 * Retry, flush, release and bounce make a recipient due now and
 * clear a lease only when it has expired; a live one belongs to an
 * attempt whose outcome sets the next retry itself (on SQLite, too, the
 * attempt in flight decides), and making it due under a live lease
 * would invite a second node to send it again.
 */
#include "queue/queue_pg_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/str.h"
#include "core/xmalloc.h"

/* Recipients a flush changes per statement (as queue_admin.c). */
#define QUEUE_PG_FLUSH_CHUNK     1000
#define QUEUE_PG_FLUSH_CHUNK_STR "1000"

/*
 * Due now ($2) unless a live lease says an attempt is under way; an
 * expired lease is cleared with it. Leases are by the database's clock
 * (QUEUE_PG_NOW). Every right-hand side of a SET sees the old row, so
 * the three agree.
 */
#define QUEUE_PG_LEASED "lease_until > " QUEUE_PG_NOW
#define QUEUE_PG_DUE_NOW                                                  \
	"next_attempt = CASE WHEN " QUEUE_PG_LEASED " THEN next_attempt " \
	"ELSE $2 END, lease_node = CASE WHEN " QUEUE_PG_LEASED " THEN "   \
	"lease_node END, lease_until = CASE WHEN " QUEUE_PG_LEASED        \
	" THEN lease_until ELSE 0 END"

/*
 * The event of each changed row t: $2 now, $3 node, $4 by, $5 uid; the
 * same fields as queue_admin.c's.
 */
#define QUEUE_PG_EVENTS(type)                                               \
	"INSERT INTO dr_events (node, msgid, addr, at, type, fields) "      \
	"SELECT $3::text, msgid, addr, $2::bigint, '" type "', "            \
	"json_build_object('rcpt', id, 'by', $4::text, 'uid', $5::bigint) " \
	"FROM t ORDER BY id"

/* %s: the UPDATE, then the event type. */
#define QUEUE_PG_ACT_SQL \
	"WITH t AS (%s RETURNING id, msgid, addr) " QUEUE_PG_EVENTS("%s")

enum queue_pg_act {
	QUEUE_PG_RETRY,
	QUEUE_PG_DELETE,
	QUEUE_PG_BOUNCE,
	QUEUE_PG_HOLD,
	QUEUE_PG_RELEASE,
};

/* $1 the message id or recipient row id, $2 now; WHERE follows. */
static const struct {
	const char *set;  /* UPDATE dr_recipients SET ... */
	const char *from; /* the recipients it acts on */
	const char *event;
} queue_pg_acts[] = {
	[QUEUE_PG_RETRY] = { QUEUE_PG_DUE_NOW, "status = 0", "retry" },
	[QUEUE_PG_DELETE] = { "status = 3", QUEUE_SQL_PRESENT, "deleted" },
	/* A held recipient to bounce is released to the daemon, which
	 * returns it to the sender without an attempt. */
	[QUEUE_PG_BOUNCE] = { "status = 0, bounce_requested = 1, " QUEUE_PG_DUE_NOW,
	    QUEUE_SQL_PRESENT, "bounce-requested" },
	[QUEUE_PG_HOLD] = { "status = 4", "status = 0", "held" },
	[QUEUE_PG_RELEASE] = { "status = 0, " QUEUE_PG_DUE_NOW, "status = 4",
	    "released" },
};

/* The message of recipient row key (a number), into msgid and *rcpt. */
static int
queue_pg_resolve_rcpt(
    struct queue *q, const char *key, char msgid[QUEUE_ID_LEN], int64_t *rcpt)
{
	struct queue_pg_args a = { 0 };
	PGresult *r;
	uint64_t n;
	int found;

	if (str_to_uint(key, 1, INT64_MAX, &n) == -1)
		return 0;
	*rcpt = (int64_t)n;
	queue_pg_arg_int(&a, (long long)n);
	r = queue_pg_run(
	    q, "lookup", "SELECT msgid FROM dr_recipients WHERE id = $1", &a);
	queue_pg_args_clear(&a);
	if (r == NULL)
		return -1;
	if ((found = PQntuples(r) > 0))
		snprintf(msgid, QUEUE_ID_LEN, "%s", pg_text(r, 0, 0));
	PQclear(r);
	return found ? 2 : 0;
}

/*
 * A message of the queue: one with recipients (with a node-local queue,
 * dr_messages also holds the envelopes of other nodes' messages for the
 * trace; those are no queue's to act on).
 */
int
queue_pg_resolve(
    struct queue *q, const char *key, char msgid[QUEUE_ID_LEN], int64_t *rcpt)
{
	struct queue_pg_args a = { 0 };
	PGresult *r;
	int found;

	if (queue_is_hexid(key)) {
		snprintf(msgid, QUEUE_ID_LEN, "%s", key);
		str_lower(msgid);
		queue_pg_arg_str(&a, msgid);
		r = queue_pg_run(q, "lookup",
		    "SELECT 1 FROM dr_recipients WHERE msgid = $1 LIMIT 1", &a);
		queue_pg_args_clear(&a);
		if (r == NULL)
			return -1;
		found = PQntuples(r) > 0;
		PQclear(r);
		if (found)
			return 1;
	}
	/* A 16-digit number that is no message may still be a row id. */
	return queue_pg_resolve_rcpt(q, key, msgid, rcpt);
}

/* $2..$5 of every action: now, this node, who, the user id. */
static void
queue_pg_act_args(struct queue *q, struct queue_pg_args *a, time_t now)
{
	queue_pg_arg_int(a, (long long)now);
	queue_pg_arg_str(a, pg_node(q->pg));
	queue_pg_arg_str(a, q->actor[0] != '\0' ? q->actor : "operator");
	queue_pg_arg_int(a, (long long)getuid());
}

/* act on what kind (1 message, 2 recipient row rcpt) names; rows or -1. */
static int
queue_pg_act_apply(struct queue *q, enum queue_pg_act act, int kind,
    int64_t rcpt, const char *msgid)
{
	struct queue_pg_args a = { 0 };
	char upd[1024], sql[2048];
	long long n;

	snprintf(upd, sizeof(upd),
	    "UPDATE dr_recipients SET %s WHERE %s = $1 AND %s",
	    queue_pg_acts[act].set, kind == 1 ? "msgid" : "id",
	    queue_pg_acts[act].from);
	snprintf(
	    sql, sizeof(sql), QUEUE_PG_ACT_SQL, upd, queue_pg_acts[act].event);
	if (kind == 1)
		queue_pg_arg_str(&a, msgid);
	else
		queue_pg_arg_int(&a, (long long)rcpt);
	queue_pg_act_args(q, &a, time(NULL));
	n = queue_pg_change(q, queue_pg_acts[act].event, sql, &a);
	queue_pg_args_clear(&a);
	/* A delete names one message: its body goes when nothing is left. */
	if (n > 0 && act == QUEUE_PG_DELETE && queue_pg_msg_gc(q, msgid) == -1)
		return -1;
	return (int)n;
}

static int
queue_pg_act(struct queue *q, const char *key, enum queue_pg_act act)
{
	char msgid[QUEUE_ID_LEN];
	int64_t rcpt = 0;
	int kind, n;

	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1 || queue_pg_tx_begin(q) == -1)
		return -1;
	kind = queue_pg_resolve(q, key, msgid, &rcpt);
	n = kind > 0 ? queue_pg_act_apply(q, act, kind, rcpt, msgid) : kind;
	if (n == -1) {
		queue_pg_tx_rollback(q);
		return -1;
	}
	return queue_pg_tx_commit(q) == 0 ? n : -1;
}

int
queue_pg_retry(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_pg_act(q, msgid_or_rcpt_id, QUEUE_PG_RETRY);
}

int
queue_pg_delete(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_pg_act(q, msgid_or_rcpt_id, QUEUE_PG_DELETE);
}

int
queue_pg_bounce(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_pg_act(q, msgid_or_rcpt_id, QUEUE_PG_BOUNCE);
}

int
queue_pg_hold(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_pg_act(q, msgid_or_rcpt_id, QUEUE_PG_HOLD);
}

int
queue_pg_release(struct queue *q, const char *msgid_or_rcpt_id)
{
	return queue_pg_act(q, msgid_or_rcpt_id, QUEUE_PG_RELEASE);
}

/*
 * A chunk of a flush: deferred recipients (not due, no live lease: one
 * under way is active, not deferred) after row $1 in row id order, of
 * domain $6 if given. The condition is repeated in the UPDATE so that a
 * row another node claimed meanwhile is re-checked, and skipped.
 */
#define QUEUE_PG_FLUSH_WHERE                                        \
	"status = 0 AND next_attempt > $2 AND NOT " QUEUE_PG_LEASED \
	" AND ($6::text IS NULL OR domain = $6)"
#define QUEUE_PG_FLUSH_EVENTS QUEUE_PG_EVENTS("flushed")
static const char queue_pg_flush_sql[] =
    "WITH t AS (UPDATE dr_recipients SET next_attempt = $2, lease_node = "
    "NULL, lease_until = 0 WHERE id IN (SELECT id FROM dr_recipients "
    "WHERE id > $1::bigint AND " QUEUE_PG_FLUSH_WHERE " ORDER BY id "
    "LIMIT " QUEUE_PG_FLUSH_CHUNK_STR ") AND " QUEUE_PG_FLUSH_WHERE
    " RETURNING id, msgid, addr), e AS (" QUEUE_PG_FLUSH_EVENTS ") "
    "SELECT count(*), coalesce(max(id), 0) FROM t";

/* One statement of a flush; *last: the highest row id done. n or -1. */
static int
queue_pg_flush_chunk(
    struct queue *q, const char *domain, time_t now, long long *last)
{
	struct queue_pg_args a = { 0 };
	PGresult *r;
	int n;

	queue_pg_arg_int(&a, *last);
	queue_pg_act_args(q, &a, now);
	queue_pg_arg_str(&a, domain);
	r = queue_pg_run(q, "flush", queue_pg_flush_sql, &a);
	queue_pg_args_clear(&a);
	if (r == NULL)
		return -1;
	n = (int)pg_int(r, 0, 0);
	if (n > 0)
		*last = pg_int(r, 0, 1);
	PQclear(r);
	return n;
}

int
queue_pg_flush(struct queue *q, const char *domain)
{
	char *d = domain != NULL ? xstrdup(domain) : NULL;
	time_t now = time(NULL);
	long long last = 0;
	int n, total = 0;

	q->err[0] = '\0';
	if (queue_pg_ready(q) == -1) {
		free(d);
		return -1;
	}
	if (d != NULL)
		str_lower(d);
	/* Each chunk commits by itself: the nodes' claims never wait long. */
	do {
		if ((n = queue_pg_flush_chunk(q, d, now, &last)) > 0)
			total += n;
	} while (n == QUEUE_PG_FLUSH_CHUNK);
	free(d);
	return n == -1 ? -1 : total;
}
