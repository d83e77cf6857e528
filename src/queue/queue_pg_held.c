/*
 * queue_pg_held: the writes a batch of outcomes holds back ([queue] store
 * = postgres, queue_pg_int.h): its trace events and its body drops
 * (queue_msg_gc), each kind written with one statement. A batch of 64
 * messages writes two events per recipient (the attempt and its verdict)
 * and one body drop per message: two statements instead of some 190.
 *
 * The events are the same rows, with ids in the order of the calls, and
 * commit with the batch as before; nothing reads them before. A body drop
 * done later than its call drops the same bodies: within a batch
 * recipients only leave the queue, and a message's last drop of the
 * batch comes after the last outcome of its recipients in it, so at the
 * end "no recipient left" holds exactly when it held at that last call.
 */
#include "queue/queue_pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* Past this many octets in one column, what is held is written at once:
 * one statement stays a few MiB at most. */
#define QUEUE_PG_HELD_FLUSH (4u << 20)
#define QUEUE_PG_HELD_CAP   (64u << 20)

/* The columns of the held events, and the messages whose body may go,
 * as array literals being built. */
struct queue_pg_held {
	struct buf msgid, addr, at, type, fields;
	size_t nevents;
	struct buf gc;
	size_t ngc;
};

/*
 * The ids come from the sequence in the order of the rows, which is the
 * order of the arrays (ORDER BY their ordinality): the order of the calls.
 */
static const char queue_pg_held_events_sql[] =
    "INSERT INTO dr_events (node, msgid, addr, at, type, fields) "
    "SELECT $1, x.msgid, x.addr, x.at, x.type, x.fields::json FROM "
    "unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) "
    "WITH ORDINALITY AS x(msgid, addr, at, type, fields, i) ORDER BY x.i";

/* queue_pg_msg_gc's statement for many messages. */
static const char queue_pg_held_gc_sql[] =
    "UPDATE dr_messages m SET body = NULL WHERE m.id = ANY($1::text[]) "
    "AND m.body IS NOT NULL AND NOT EXISTS (SELECT 1 FROM dr_recipients r "
    "WHERE r.msgid = m.id AND " QUEUE_PG_SQL_PRESENT ")";

static struct queue_pg_held *
queue_pg_held_get(struct queue *q)
{
	struct queue_pg_held *h = q->held;

	if (h == NULL) {
		h = q->held = xcalloc(1, sizeof(*h));
		buf_init(&h->msgid, QUEUE_PG_HELD_CAP);
		buf_init(&h->addr, QUEUE_PG_HELD_CAP);
		buf_init(&h->at, QUEUE_PG_HELD_CAP);
		buf_init(&h->type, QUEUE_PG_HELD_CAP);
		buf_init(&h->fields, QUEUE_PG_HELD_CAP);
		buf_init(&h->gc, QUEUE_PG_HELD_CAP);
	}
	return h;
}

static void
queue_pg_held_reset(struct queue_pg_held *h)
{
	buf_reset(&h->msgid);
	buf_reset(&h->addr);
	buf_reset(&h->at);
	buf_reset(&h->type);
	buf_reset(&h->fields);
	buf_reset(&h->gc);
	h->nevents = 0;
	h->ngc = 0;
}

static bool
queue_pg_held_full(const struct queue_pg_held *h)
{
	return h->fields.len > QUEUE_PG_HELD_FLUSH ||
	    h->addr.len > QUEUE_PG_HELD_FLUSH ||
	    h->gc.len > QUEUE_PG_HELD_FLUSH;
}

int
queue_pg_held_event(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields)
{
	struct queue_pg_held *h = queue_pg_held_get(q);
	char *f = NULL, at[PG_INT_LEN];

	if (fields != NULL && json_object_size(fields) > 0)
		f = json_dumps(fields, JSON_COMPACT);
	queue_pg_arg_elem(&h->msgid, msgid);
	queue_pg_arg_elem(&h->addr, addr);
	queue_pg_arg_elem(&h->at, pg_itoa((long long)time(NULL), at));
	queue_pg_arg_elem(&h->type, type);
	queue_pg_arg_elem(&h->fields, f);
	free(f);
	h->nevents++;
	return queue_pg_held_full(h) ? queue_pg_held_flush(q) : 0;
}

int
queue_pg_held_gc(struct queue *q, const char *msgid)
{
	struct queue_pg_held *h = queue_pg_held_get(q);

	queue_pg_arg_elem(&h->gc, msgid);
	h->ngc++;
	return queue_pg_held_full(h) ? queue_pg_held_flush(q) : 0;
}

/* The held events with one INSERT. 0 or -1. */
static int
queue_pg_held_events(struct queue *q, struct queue_pg_held *h)
{
	struct queue_pg_args a = { 0 };
	long long n;

	queue_pg_arg_str(&a, pg_node(q->pg));
	/* Valid UTF-8 already (queue_pg_arg_elem): taken as they are. */
	a.v[a.n++] = queue_pg_arg_array(&h->msgid);
	a.v[a.n++] = queue_pg_arg_array(&h->addr);
	a.v[a.n++] = queue_pg_arg_array(&h->at);
	a.v[a.n++] = queue_pg_arg_array(&h->type);
	a.v[a.n++] = queue_pg_arg_array(&h->fields);
	n = queue_pg_prep_change(
	    q, "insert events", queue_pg_held_events_sql, &a, false);
	queue_pg_args_clear(&a);
	return n == -1 ? -1 : 0;
}

/* The held body drops with one UPDATE. 0 or -1. */
static int
queue_pg_held_bodies(struct queue *q, struct queue_pg_held *h)
{
	struct queue_pg_args a = { 0 };
	long long n;

	a.v[a.n++] = queue_pg_arg_array(&h->gc);
	n = queue_pg_prep_change(
	    q, "drop bodies", queue_pg_held_gc_sql, &a, false);
	return n == -1 ? -1 : 0;
}

int
queue_pg_held_flush(struct queue *q)
{
	struct queue_pg_held *h = q->held;
	size_t nevents, ngc;
	int rc = 0;

	if (h == NULL || (h->nevents == 0 && h->ngc == 0))
		return 0;
	/* Counted as written first: the statements below do not come back
	 * here (queue_pg_prep without flush), and a failure fails the batch,
	 * which drops them anyway. */
	nevents = h->nevents;
	ngc = h->ngc;
	h->nevents = h->ngc = 0;
	if (nevents > 0)
		rc = queue_pg_held_events(q, h);
	if (rc == 0 && ngc > 0)
		rc = queue_pg_held_bodies(q, h);
	queue_pg_held_reset(h);
	return rc;
}

void
queue_pg_held_drop(struct queue *q)
{
	if (q->held != NULL)
		queue_pg_held_reset(q->held);
}

void
queue_pg_held_free(struct queue_pg_held *h)
{
	if (h == NULL)
		return;
	buf_free(&h->msgid);
	buf_free(&h->addr);
	buf_free(&h->at);
	buf_free(&h->type);
	buf_free(&h->fields);
	buf_free(&h->gc);
	free(h);
}
