/*
 * fleet_events: a node's local trace copied into dr_events and
 * dr_messages (fleet_events.h, docs/FLEET.md "Trace and reports").
 *
 * One batch is one PostgreSQL transaction: the node's dr_nodes row is
 * locked first (so a `danerelay fleet sync` running beside the daemon's
 * thread waits instead of copying the same rows), then the envelopes, the
 * events and the new mark go in together. SQLite hands out event ids in
 * commit order (one writer at a time), so "every id after the mark" never
 * skips a row that commits later.
 *
 * The rows go as multi-row INSERTs with parameters: one round trip per
 * table and batch, no quoting of our own.
 */
#include "fleet/fleet_events.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "pg/pg.h"

#define FLEET_EVENTS_BUSY_MS 5000
#define FLEET_EVENTS_SQL_MAX (1u << 20) /* a batch's INSERT text */
#define FLEET_MSG_COLS       13         /* dr_messages without node, body */
#define FLEET_EVENT_COLS     6          /* dr_events without node */

struct fleet_events {
	char *path;
	sqlite3 *db;
	sqlite3_stmt *st_events;
	sqlite3_stmt *st_msgs;
	sqlite3_stmt *st_max;
	long long mark;
};

/* Parameters of one statement: node first ($1), then the rows'. */
struct fleet_params {
	char **v;
	size_t n, cap;
};

static const char fleet_events_sql[] =
    "SELECT id, msgid, addr, at, type, fields FROM events "
    "WHERE id > ?1 ORDER BY id LIMIT ?2";
static const char fleet_msgs_sql[] =
    "SELECT id, kind, sender, envid, ret, body_8bit, smtputf8, client, "
    "helo, auth_user, message_id, received_at, size FROM messages "
    "WHERE id IN (SELECT msgid FROM events WHERE id > ?1 AND id <= ?2)";

/* The length of the valid UTF-8 sequence at s, or 0 (RFC 3629 §4). */
static size_t
fleet_utf8_seq(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		lo = s[0] == 0xe0 ? 0xa0 : 0x80; /* no overlong form */
		hi = s[0] == 0xed ? 0x9f : 0xbf; /* no surrogate */
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 :
		                                                           0;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		lo = s[0] == 0xf0 ? 0x90 : 0x80;
		hi = s[0] == 0xf4 ? 0x8f : 0xbf; /* up to U+10FFFF */
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
		        (s[3] & 0xc0) == 0x80 ?
		    4 :
		    0;
	}
	return 0;
}

/*
 * s as valid UTF-8, each invalid octet replaced by U+FFFD: PostgreSQL
 * refuses invalid text in a UTF8 database, and a refused row would stop
 * every copy after it. Returns new; NULL for NULL.
 */
static char *
fleet_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	struct buf b;
	size_t n;

	if (s == NULL)
		return NULL;
	buf_init(&b, strlen(s) * 3 + 1);
	for (; *p != '\0'; p += n) {
		if ((n = fleet_utf8_seq(p)) == 0) {
			buf_adds(&b, "\xef\xbf\xbd");
			n = 1;
		} else
			buf_add(&b, p, n);
	}
	return b.len > 0 ? buf_steal(&b) : (buf_free(&b), xstrdup(""));
}

char *
fleet_events_fields(const char *text)
{
	json_t *o, *raw;
	json_error_t err;
	char *out, *clean;

	if (text == NULL)
		return NULL;
	/* Written again by jansson: what it parsed, PostgreSQL parses. */
	o = json_loads(text, 0, &err);
	if (o != NULL && json_is_object(o)) {
		out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (out != NULL)
			return out;
	} else
		json_decref(o);
	clean = fleet_utf8(text);
	raw = json_pack("{s:s}", "fields_raw", clean);
	free(clean);
	out = raw != NULL ? json_dumps(raw, JSON_COMPACT) : NULL;
	json_decref(raw);
	return out != NULL ? out : xstrdup("{\"fields_raw\":\"\"}");
}

static void
fleet_params_add(struct fleet_params *pa, char *v /* taken */)
{
	if (pa->n == pa->cap) {
		pa->cap = pa->cap == 0 ? 256 : pa->cap * 2;
		pa->v = xreallocarray(pa->v, pa->cap, sizeof(*pa->v));
	}
	pa->v[pa->n++] = v;
}

static void
fleet_params_clear(struct fleet_params *pa)
{
	size_t i;

	for (i = 0; i < pa->n; i++)
		free(pa->v[i]);
	free(pa->v);
	memset(pa, 0, sizeof(*pa));
}

/* Column i of st as a parameter (text, valid UTF-8, NULL for NULL). */
static char *
fleet_col(sqlite3_stmt *st, int i)
{
	return fleet_utf8((const char *)sqlite3_column_text(st, i));
}

static char *
fleet_col_int(sqlite3_stmt *st, int i)
{
	char n[PG_INT_LEN];

	return xstrdup(pg_itoa(sqlite3_column_int64(st, i), n));
}

/* "INSERT ... VALUES ($1,$2..),($1,$k..)": rows of cols after node. */
static char *
fleet_insert_sql(const char *head, size_t rows, size_t cols,
    const char *const *cast, const char *tail)
{
	struct buf b;
	size_t r, c, k = 2;

	buf_init(&b, FLEET_EVENTS_SQL_MAX);
	buf_adds(&b, head);
	for (r = 0; r < rows; r++) {
		buf_adds(&b, r == 0 ? " VALUES ($1" : ",($1");
		for (c = 0; c < cols; c++)
			buf_printf(&b, ",$%zu%s", k++, cast[c]);
		buf_addc(&b, ')');
	}
	buf_adds(&b, tail);
	return buf_steal(&b);
}

static void
fleet_local_fail(struct fleet_events *e, struct pg *p, const char *what)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "local queue %s: %s: %s", e->path, what,
	    sqlite3_errmsg(e->db));
	pg_fail(p, msg);
}

/* The events after from, at most FLEET_EVENTS_BATCH, into pa; *last. */
static int
fleet_read_events(struct fleet_events *e, struct pg *p, long long from,
    struct fleet_params *pa, size_t *rows, long long *last)
{
	int rc;

	sqlite3_bind_int64(e->st_events, 1, from);
	sqlite3_bind_int64(e->st_events, 2, FLEET_EVENTS_BATCH);
	*rows = 0;
	while ((rc = sqlite3_step(e->st_events)) == SQLITE_ROW) {
		*last = sqlite3_column_int64(e->st_events, 0);
		fleet_params_add(pa, fleet_col_int(e->st_events, 0));
		fleet_params_add(pa, fleet_col(e->st_events, 1));
		fleet_params_add(pa, fleet_col(e->st_events, 2));
		fleet_params_add(pa, fleet_col_int(e->st_events, 3));
		fleet_params_add(pa, fleet_col(e->st_events, 4));
		fleet_params_add(pa,
		    fleet_events_fields(
		        (const char *)sqlite3_column_text(e->st_events, 5)));
		(*rows)++;
	}
	sqlite3_reset(e->st_events);
	if (rc != SQLITE_DONE) {
		fleet_local_fail(e, p, "reading events");
		return -1;
	}
	return 0;
}

/* The envelopes of the messages that events (from, to] name. */
static int
fleet_read_msgs(struct fleet_events *e, struct pg *p, long long from,
    long long to, struct fleet_params *pa, size_t *rows)
{
	static const int ints[FLEET_MSG_COLS] = { 0, 1, 0, 0, 1, 1, 1, 0, 0, 0,
		0, 1, 1 };
	int rc, i;

	sqlite3_bind_int64(e->st_msgs, 1, from);
	sqlite3_bind_int64(e->st_msgs, 2, to);
	*rows = 0;
	while ((rc = sqlite3_step(e->st_msgs)) == SQLITE_ROW) {
		for (i = 0; i < FLEET_MSG_COLS; i++)
			fleet_params_add(pa,
			    ints[i] ? fleet_col_int(e->st_msgs, i) :
			              fleet_col(e->st_msgs, i));
		(*rows)++;
	}
	sqlite3_reset(e->st_msgs);
	if (rc != SQLITE_DONE) {
		fleet_local_fail(e, p, "reading messages");
		return -1;
	}
	return 0;
}

/* Run sql (taken) with the parameters; *affected: rows inserted. */
static int
fleet_insert(
    struct pg *p, char *sql, struct fleet_params *pa, long long *affected)
{
	PGresult *r;

	r = pg_query(p, sql, (int)pa->n, (const char *const *)pa->v);
	free(sql);
	if (r == NULL)
		return -1;
	if (affected != NULL)
		*affected = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

static int
fleet_insert_msgs(
    struct fleet_events *e, struct pg *p, long long from, long long to)
{
	static const char *const cast[FLEET_MSG_COLS] = { "", "::int", "", "",
		"::int", "::int", "::int", "", "", "", "", "::bigint",
		"::bigint" };
	struct fleet_params pa = { 0 };
	size_t rows;
	int rc = -1;

	fleet_params_add(&pa, xstrdup(pg_node(p)));
	if (fleet_read_msgs(e, p, from, to, &pa, &rows) == 0)
		rc = rows == 0 ?
		    0 :
		    fleet_insert(p,
		        fleet_insert_sql("INSERT INTO dr_messages "
		                         "(node, id, kind, sender, "
		                         "envid, ret, body_8bit, "
		                         "smtputf8, client, helo, "
		                         "auth_user, message_id, "
		                         "received_at, size)",
		            rows, FLEET_MSG_COLS, cast,
		            " ON CONFLICT (id) DO NOTHING"),
		        &pa, NULL);
	fleet_params_clear(&pa);
	return rc;
}

/* Lock this node's row and read its mark (the row is made if missing). */
static int
fleet_lock_mark(struct pg *p, long long *mark)
{
	const char *args[1] = { pg_node(p) };
	PGresult *r;

	if (pg_exec(p,
	        "INSERT INTO dr_nodes (node) VALUES ($1) "
	        "ON CONFLICT (node) DO NOTHING",
	        1, args) == -1)
		return -1;
	r = pg_query(p,
	    "SELECT events_mark FROM dr_nodes WHERE node = $1 FOR UPDATE", 1,
	    args);
	if (r == NULL)
		return -1;
	*mark = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

static int
fleet_set_mark(struct pg *p, long long mark)
{
	char m[PG_INT_LEN], now[PG_INT_LEN];
	const char *args[3] = { pg_node(p), pg_itoa(mark, m),
		pg_itoa((long long)time(NULL), now) };

	return pg_exec(p,
	    "UPDATE dr_nodes SET events_mark = greatest(events_mark, $2), "
	    "seen_at = $3 WHERE node = $1",
	    3, args);
}

/* One batch in one transaction: 1 copied, 0 nothing left, -1 failed. */
static int
fleet_batch(
    struct fleet_events *e, struct pg *p, long long *copied, size_t *rows)
{
	static const char *const cast[FLEET_EVENT_COLS] = { "::bigint", "", "",
		"::bigint", "", "::json" };
	struct fleet_params pa = { 0 };
	long long mark = 0, last = 0, n = 0;

	*rows = 0;
	if (pg_begin(p) == -1)
		return -1;
	fleet_params_add(&pa, xstrdup(pg_node(p)));
	if (fleet_lock_mark(p, &mark) == -1 ||
	    fleet_read_events(e, p, mark, &pa, rows, &last) == -1)
		goto fail;
	e->mark = mark;
	if (*rows == 0) {
		fleet_params_clear(&pa);
		pg_rollback(p);
		return 0;
	}
	if (fleet_insert_msgs(e, p, mark, last) == -1 ||
	    fleet_insert(p,
	        fleet_insert_sql("INSERT INTO dr_events (node, local_id, "
	                         "msgid, addr, at, type, fields)",
	            *rows, FLEET_EVENT_COLS, cast,
	            " ON CONFLICT (node, local_id) DO NOTHING"),
	        &pa, &n) == -1 ||
	    fleet_set_mark(p, last) == -1 || pg_commit(p) == -1)
		goto fail;
	fleet_params_clear(&pa);
	e->mark = last;
	*copied += n;
	return 1;
fail:
	fleet_params_clear(&pa);
	pg_rollback(p);
	return -1;
}

int
fleet_events_push(
    struct fleet_events *e, struct pg *p, time_t until, long long *copied)
{
	size_t rows;
	int rc;

	*copied = 0;
	do {
		if ((rc = fleet_batch(e, p, copied, &rows)) == -1)
			return -1;
		if (rc == 0 || rows < FLEET_EVENTS_BATCH)
			return 0;
	} while (until == 0 || time(NULL) < until);
	return 1;
}

long long
fleet_events_purge(struct pg *p, time_t before)
{
	char b[PG_INT_LEN], n[PG_INT_LEN];
	const char *args[3] = { pg_itoa((long long)before, b),
		pg_itoa(FLEET_PURGE_CHUNK, n), pg_node(p) };
	long long total = 0, got;
	PGresult *r;

	do {
		/* The messages this node copied; SKIP LOCKED: a store =
		 * postgres node purging at the same time takes others. */
		r = pg_query(p,
		    "WITH p AS (SELECT id FROM dr_messages m WHERE node = $3 "
		    "AND body IS NULL AND received_at < $1 AND NOT EXISTS "
		    "(SELECT 1 FROM dr_recipients r WHERE r.msgid = m.id) AND "
		    "NOT EXISTS (SELECT 1 FROM dr_events e WHERE e.msgid = m.id "
		    "AND e.at >= $1) LIMIT $2 FOR UPDATE SKIP LOCKED), "
		    "e AS (DELETE FROM dr_events WHERE msgid IN (SELECT id FROM "
		    "p)) DELETE FROM dr_messages WHERE id IN (SELECT id FROM p)",
		    3, args);
		if (r == NULL)
			return -1;
		got = strtoll(PQcmdTuples(r), NULL, 10);
		PQclear(r);
		total += got;
	} while (got == FLEET_PURGE_CHUNK);
	return total;
}

long long
fleet_events_local_max(struct fleet_events *e)
{
	long long max = -1;

	if (sqlite3_step(e->st_max) == SQLITE_ROW)
		max = sqlite3_column_int64(e->st_max, 0);
	sqlite3_reset(e->st_max);
	return max;
}

long long
fleet_events_mark(const struct fleet_events *e)
{
	return e->mark;
}

struct fleet_events *
fleet_events_open(const char *dir, char **errstr)
{
	struct fleet_events *e = xcalloc(1, sizeof(*e));

	e->path = xasprintf("%s/queue.db", dir);
	if (sqlite3_open_v2(e->path, &e->db, SQLITE_OPEN_READONLY, NULL) !=
	        SQLITE_OK ||
	    sqlite3_busy_timeout(e->db, FLEET_EVENTS_BUSY_MS) != SQLITE_OK ||
	    sqlite3_prepare_v2(e->db, fleet_events_sql, -1, &e->st_events,
	        NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(e->db, fleet_msgs_sql, -1, &e->st_msgs, NULL) !=
	        SQLITE_OK ||
	    sqlite3_prepare_v2(e->db, "SELECT coalesce(max(id), 0) FROM events",
	        -1, &e->st_max, NULL) != SQLITE_OK) {
		*errstr = xasprintf("%s: %s", e->path,
		    e->db != NULL ? sqlite3_errmsg(e->db) : "out of memory");
		fleet_events_close(e);
		return NULL;
	}
	return e;
}

void
fleet_events_close(struct fleet_events *e)
{
	if (e == NULL)
		return;
	sqlite3_finalize(e->st_events);
	sqlite3_finalize(e->st_msgs);
	sqlite3_finalize(e->st_max);
	sqlite3_close(e->db);
	free(e->path);
	free(e);
}
