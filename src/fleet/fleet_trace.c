/*
 * fleet_trace: queue_trace() over every node of the fleet (dr_messages,
 * dr_events in PostgreSQL), the same JSON with the node that accepted
 * each message and the node that wrote each event (fleet.h).
 *
 * The filters mean what they mean in queue_trace.c, in PostgreSQL's SQL:
 * SQLite's COLLATE NOCASE folds ASCII only, so a case-insensitive match
 * is lower() (which the dr_events(lower(addr)) index serves) and the
 * ASCII fold (FLEET_ASCII_LOWER) together; the domain filter reads the
 * events' addresses (every recipient has a "queued" event) or, with
 * store = postgres, dr_recipients. One statement selects the messages
 * and joins their events, so the whole answer is one snapshot.
 */
#include "fleet/fleet.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "fleet/fleet_sql.h"
#include "pg/pg.h"

#define FLEET_TRACE_PARAMS 8

/* The statement under construction and its parameters. */
struct fleet_trace_q {
	struct buf sql;
	const char *val[FLEET_TRACE_PARAMS];
	char *own[FLEET_TRACE_PARAMS];
	int n;
};

/* Bind v as the next parameter; returns its number (for "$n"). v is
 * borrowed; own (the same string or NULL) is freed with the query. */
static int
fleet_trace_bind(struct fleet_trace_q *q, const char *v, char *own)
{
	q->val[q->n] = v;
	q->own[q->n] = own;
	return ++q->n;
}

/* fleet_trace_bind of a new string. */
static int
fleet_trace_own(struct fleet_trace_q *q, char *v)
{
	return fleet_trace_bind(q, v, v);
}

static char *
fleet_trace_lower(const char *s)
{
	char *l = xstrdup(s);

	str_lower(l);
	return l;
}

/* The queue id (lowercase) or the Message-ID with or without <>. */
static void
fleet_trace_where_id(struct fleet_trace_q *q, const char *id)
{
	int a = fleet_trace_own(q, fleet_trace_lower(id));
	int b = fleet_trace_bind(q, id, NULL);
	int c = fleet_trace_own(q, xasprintf("<%s>", id));

	buf_printf(&q->sql,
	    " AND (m.id = $%d::text OR m.message_id = $%d::text OR "
	    "m.message_id = $%d::text)",
	    a, b, c);
}

/* lower() finds the rows by the index, the ASCII fold is NOCASE. */
static void
fleet_trace_where_rcpt(struct fleet_trace_q *q, const char *rcpt)
{
	int k = fleet_trace_bind(q, rcpt, NULL);

	buf_printf(&q->sql,
	    " AND m.id IN (SELECT msgid FROM dr_events WHERE lower(addr) = "
	    "lower($%d::text) AND " FLEET_ASCII_LOWER(
	        "addr") " = " FLEET_ASCII_LOWER("$%d::text") ")",
	    k, k);
}

static void
fleet_trace_where_domain(struct fleet_trace_q *q, const char *domain)
{
	int k = fleet_trace_own(q, fleet_trace_lower(domain));

	buf_printf(&q->sql,
	    " AND (m.id IN (SELECT msgid FROM dr_recipients WHERE domain = "
	    "$%d::text) OR m.id IN (SELECT msgid FROM dr_events WHERE "
	    "addr IS NOT NULL AND " FLEET_DOMAIN("addr") " = $%d::text))",
	    k, k);
}

static void
fleet_trace_where_sender(struct fleet_trace_q *q, const char *sender)
{
	/* SMTP writes the null reverse-path "<>"; stored as "". */
	int k =
	    fleet_trace_bind(q, strcmp(sender, "<>") == 0 ? "" : sender, NULL);

	buf_printf(&q->sql,
	    " AND " FLEET_ASCII_LOWER("m.sender") " = " FLEET_ASCII_LOWER(
	        "$%d::text"),
	    k);
}

/* An event in the window, not one after and one before. */
static void
fleet_trace_where_time(
    struct fleet_trace_q *q, const struct queue_trace_filter *f)
{
	char n[PG_INT_LEN];

	buf_adds(
	    &q->sql, " AND m.id IN (SELECT msgid FROM dr_events WHERE true");
	if (f->since != 0)
		buf_printf(&q->sql, " AND at >= $%d::bigint",
		    fleet_trace_own(q, xstrdup(pg_itoa(f->since, n))));
	if (f->until != 0)
		buf_printf(&q->sql, " AND at <= $%d::bigint",
		    fleet_trace_own(q, xstrdup(pg_itoa(f->until, n))));
	buf_adds(&q->sql, ")");
}

/*
 * The messages (newest limit of them when limited) with their events.
 * SQLite orders ties of received_at by rowid, the order the node stored
 * them in; here the first event's id stands for it (a message and its
 * "received" event are stored in one transaction).
 */
static void
fleet_trace_sql(struct fleet_trace_q *q, const struct queue_trace_filter *f)
{
	char n[PG_INT_LEN];

	buf_adds(&q->sql,
	    "WITH m AS (SELECT m.id, m.message_id, m.sender, m.kind, "
	    "m.received_at, m.size, m.node, (SELECT min(x.id) FROM dr_events x "
	    "WHERE x.msgid = m.id) AS ord FROM dr_messages m WHERE true");
	if (f->message_id != NULL)
		fleet_trace_where_id(q, f->message_id);
	if (f->recipient != NULL)
		fleet_trace_where_rcpt(q, f->recipient);
	if (f->domain != NULL)
		fleet_trace_where_domain(q, f->domain);
	if (f->sender != NULL)
		fleet_trace_where_sender(q, f->sender);
	if (f->since != 0 || f->until != 0)
		fleet_trace_where_time(q, f);
	if (f->limit != 0) {
		pg_itoa(
		    f->limit > INT64_MAX ? INT64_MAX : (long long)f->limit, n);
		buf_printf(&q->sql,
		    " ORDER BY received_at DESC, ord DESC NULLS LAST, "
		    "id COLLATE \"C\" DESC LIMIT $%d::bigint",
		    fleet_trace_own(q, xstrdup(n)));
	}
	buf_adds(&q->sql,
	    ") SELECT m.id, m.message_id, m.sender, m.kind, m.received_at, "
	    "m.size, m.node, e.addr, e.at, e.type, e.fields::text, e.node, "
	    "e.id FROM m LEFT JOIN dr_events e ON "
	    "e.msgid = m.id ORDER BY m.received_at, m.ord NULLS FIRST, "
	    "m.id COLLATE \"C\", e.id");
}

/* The message object of row i, with its node. */
static json_t *
fleet_trace_message(const PGresult *r, int i)
{
	json_t *m = queue_trace_message_new(pg_text(r, i, 0), pg_text(r, i, 1),
	    pg_text(r, i, 2), (int)pg_int(r, i, 3), (time_t)pg_int(r, i, 4),
	    pg_int(r, i, 5));
	const char *node = pg_text(r, i, 6);

	json_object_set_new(m, "node", json_string(node != NULL ? node : ""));
	json_object_set_new(m, "events", json_array());
	return m;
}

static void
fleet_trace_event(const PGresult *r, int i, const struct queue_trace_filter *f,
    json_t *events)
{
	const char *addr = pg_text(r, i, 7), *type = pg_text(r, i, 9);
	const char *node = pg_text(r, i, 11);
	json_t *ev;

	if (pg_text(r, i, 12) == NULL || !queue_trace_shows(f, addr))
		return; /* no event (LEFT JOIN), or filtered out */
	ev = queue_trace_event(
	    pg_int(r, i, 8), type != NULL ? type : "", addr, pg_text(r, i, 10));
	json_object_set_new(ev, "node", json_string(node != NULL ? node : ""));
	json_array_append_new(events, ev);
}

static json_t *
fleet_trace_collect(const PGresult *r, const struct queue_trace_filter *f)
{
	json_t *out = json_array(), *m = NULL;
	const char *id, *last = NULL;
	int i;

	for (i = 0; i < PQntuples(r); i++) {
		id = pg_text(r, i, 0);
		if (last == NULL || strcmp(id, last) != 0) {
			m = fleet_trace_message(r, i);
			json_array_append_new(out, m);
			last = id;
		}
		fleet_trace_event(r, i, f, json_object_get(m, "events"));
	}
	return out;
}

json_t *
fleet_trace(struct pg *p, const struct queue_trace_filter *f)
{
	struct fleet_trace_q q = { 0 };
	json_t *out = NULL;
	PGresult *r;
	int i;

	if (pg_ready(p) == -1)
		return NULL;
	buf_init(&q.sql, 16384);
	fleet_trace_sql(&q, f);
	r = pg_query(p, buf_cstr(&q.sql), q.n, q.val);
	if (r != NULL)
		out = fleet_trace_collect(r, f);
	PQclear(r);
	for (i = 0; i < q.n; i++)
		free(q.own[i]);
	buf_free(&q.sql);
	return out;
}
