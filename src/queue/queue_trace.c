/*
 * queue_trace: select messages by queue id / Message-ID, sender,
 * recipient, domain and time, and turn their event rows into JSON or
 * text. The selection is built from fixed SQL fragments (user text is
 * only ever bound), so every filter but the sender uses its index:
 * messages(message_id), events(addr), recipients(domain), events(at).
 * The console's /trace asks through here too (no second query).
 */
#include "queue/queue_trace.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "queue/queue_int.h"

const char *
queue_trace_parse_since(const char *s, time_t *secs)
{
	uint64_t v;

	if (str_parse_duration(s, &v) == -1 || v == 0)
		return "expected a duration such as 90, 30m, 1h, 2d or 1w";
	*secs = (time_t)v;
	return NULL;
}

/* "YYYY-MM-DD[THH:MM[:SS]][Z]" (T or space) as UTC; -1 if not that. */
static time_t
queue_trace_parse_utc(const char *s, bool *date_only)
{
	static const char *const fmts[] = { "%Y-%m-%dT%H:%M:%S",
		"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
		"%Y-%m-%d" };
	const char *end;
	struct tm tm, asked;
	size_t i, len = strlen(s);
	time_t t;

	if (len > 0 && (s[len - 1] == 'Z' || s[len - 1] == 'z'))
		len--;
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		if (end == NULL || (size_t)(end - s) != len)
			continue;
		asked = tm;
		t = timegm(&tm); /* normalises tm */
		/* 2026-02-30 would become another day: refused. */
		if (tm.tm_mday != asked.tm_mday || tm.tm_mon != asked.tm_mon ||
		    tm.tm_hour != asked.tm_hour)
			return -1;
		*date_only = i == 4;
		return t;
	}
	return -1;
}

const char *
queue_trace_parse_when(const char *s, time_t now, bool end_of_day, time_t *t)
{
	bool date_only = false;
	time_t secs;

	if (s[0] >= '0' && s[0] <= '9' && strlen(s) >= 10 && s[4] == '-') {
		if ((*t = queue_trace_parse_utc(s, &date_only)) == -1)
			return "expected a UTC time such as 2026-12-07, "
			       "2026-12-07T10:00 or 2026-12-07T10:00:00Z";
		if (date_only && end_of_day)
			*t += 86399;
		return NULL;
	}
	if (queue_trace_parse_since(s, &secs) != NULL)
		return "expected a duration such as 90, 30m, 1h, 2d or 1w, "
		       "or a UTC time such as 2026-12-07T10:00";
	*t = now - secs;
	return NULL;
}

json_t *
queue_trace_event(
    int64_t at, const char *type, const char *addr, const char *fields_text)
{
	json_t *ev = json_object(), *fields = NULL;
	char iso[QUEUE_TIME_LEN];

	json_object_set_new(ev, "at", json_string(queue_time_iso(at, iso)));
	json_object_set_new(ev, "type", queue_json_str(type));
	json_object_set_new(
	    ev, "recipient", addr != NULL ? queue_json_str(addr) : json_null());
	if (fields_text == NULL)
		return ev;
	fields = json_loads(fields_text, 0, NULL);
	if (json_is_object(fields))
		/* The three keys above stay what they are. */
		json_object_update_missing(ev, fields);
	else
		json_object_set_new(
		    ev, "fields_raw", queue_json_str(fields_text));
	json_decref(fields);
	return ev;
}

/* The domain of addr equals d (case-insensitive). */
static bool
queue_trace_domain_is(const char *addr, const char *d)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && str_eq_ci(at + 1, d);
}

bool
queue_trace_shows(const struct queue_trace_filter *f, const char *addr)
{
	if (addr == NULL)
		return true;
	if (f->recipient != NULL && !str_eq_ci(addr, f->recipient))
		return false;
	if (f->domain != NULL && !queue_trace_domain_is(addr, f->domain))
		return false;
	return true;
}

static int
queue_trace_events(struct queue *q, sqlite3_stmt *st, const char *msgid,
    const struct queue_trace_filter *f, json_t *events)
{
	const char *addr, *type, *fields;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, msgid, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		addr = (const char *)sqlite3_column_text(st, 1);
		type = (const char *)sqlite3_column_text(st, 3);
		fields = (const char *)sqlite3_column_text(st, 4);
		if (!queue_trace_shows(f, addr))
			continue;
		json_array_append_new(events,
		    queue_trace_event(sqlite3_column_int64(st, 2),
		        type != NULL ? type : "", addr, fields));
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : queue_fail(q, "read events");
}

/* The message-selecting query for f; parameters as queue_trace_bind. */
static char *
queue_trace_sql(const struct queue_trace_filter *f)
{
	struct buf b;

	buf_init(&b, 4096);
	buf_adds(&b,
	    "SELECT id, message_id, sender, kind, received_at, size "
	    "FROM messages WHERE 1");
	if (f->message_id != NULL)
		buf_adds(&b,
		    " AND (id = ?1 OR message_id = ?2 OR "
		    "message_id = ?3)");
	if (f->recipient != NULL)
		buf_adds(&b,
		    " AND id IN (SELECT msgid FROM events WHERE "
		    "addr = ?4 COLLATE NOCASE)");
	if (f->domain != NULL)
		buf_adds(&b,
		    " AND id IN (SELECT msgid FROM recipients WHERE "
		    "domain = ?5)");
	if (f->sender != NULL)
		buf_adds(&b, " AND sender = ?7 COLLATE NOCASE");
	if (f->since != 0 || f->until != 0) {
		/* One event in the window, not one after and one before. */
		buf_adds(&b, " AND id IN (SELECT msgid FROM events WHERE 1");
		if (f->since != 0)
			buf_adds(&b, " AND at >= ?6");
		if (f->until != 0)
			buf_adds(&b, " AND at <= ?8");
		buf_adds(&b, ")");
	}
	/* A limit keeps the newest; queue_trace_collect restores the order. */
	if (f->limit != 0)
		buf_adds(&b, " ORDER BY received_at DESC, rowid DESC LIMIT ?9");
	else
		buf_adds(&b, " ORDER BY received_at, rowid");
	return buf_steal(&b);
}

static void
queue_trace_bind(sqlite3_stmt *st, const struct queue_trace_filter *f)
{
	char *lower;

	if (f->message_id != NULL) {
		lower = xstrdup(f->message_id);
		str_lower(lower);
		sqlite3_bind_text(st, 1, lower, -1, SQLITE_TRANSIENT);
		free(lower);
		sqlite3_bind_text(st, 2, f->message_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(
		    st, 3, xasprintf("<%s>", f->message_id), -1, free);
	}
	if (f->recipient != NULL)
		sqlite3_bind_text(st, 4, f->recipient, -1, SQLITE_STATIC);
	if (f->domain != NULL) {
		lower = xstrdup(f->domain);
		str_lower(lower);
		sqlite3_bind_text(st, 5, lower, -1, free);
	}
	if (f->since != 0)
		sqlite3_bind_int64(st, 6, (sqlite3_int64)f->since);
	if (f->sender != NULL)
		/* SMTP writes the null reverse-path "<>"; stored as "". */
		sqlite3_bind_text(st, 7,
		    strcmp(f->sender, "<>") == 0 ? "" : f->sender, -1,
		    SQLITE_STATIC);
	if (f->until != 0)
		sqlite3_bind_int64(st, 8, (sqlite3_int64)f->until);
	if (f->limit != 0)
		sqlite3_bind_int64(st, 9,
		    f->limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)f->limit);
}

json_t *
queue_trace_message_new(const char *id, const char *message_id,
    const char *sender, int kind, time_t received_at, int64_t size)
{
	json_t *m = json_object();
	char iso[QUEUE_TIME_LEN];

	json_object_set_new(m, "id", queue_json_str(id != NULL ? id : ""));
	json_object_set_new(m, "message_id",
	    message_id != NULL ? queue_json_str(message_id) : json_null());
	json_object_set_new(
	    m, "sender", queue_json_str(sender != NULL ? sender : ""));
	json_object_set_new(
	    m, "kind", json_string(queue_kind_str((enum queue_kind)kind)));
	json_object_set_new(
	    m, "received_at", json_string(queue_time_iso(received_at, iso)));
	json_object_set_new(m, "size", json_integer((json_int_t)size));
	return m;
}

static json_t *
queue_trace_message(sqlite3_stmt *st)
{
	return queue_trace_message_new((const char *)sqlite3_column_text(st, 0),
	    (const char *)sqlite3_column_text(st, 1),
	    (const char *)sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
	    (time_t)sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5));
}

static int
queue_trace_collect(struct queue *q, sqlite3_stmt *msgs, sqlite3_stmt *evs,
    const struct queue_trace_filter *f, json_t *out)
{
	json_t *m, *events;
	int rc;

	while ((rc = sqlite3_step(msgs)) == SQLITE_ROW) {
		m = queue_trace_message(msgs);
		events = json_array();
		json_object_set_new(m, "events", events);
		/* Newest first from a limited query: oldest first out. */
		if (f->limit != 0)
			json_array_insert_new(out, 0, m);
		else
			json_array_append_new(out, m);
		if (queue_trace_events(q, evs,
		        (const char *)sqlite3_column_text(msgs, 0), f,
		        events) == -1)
			return -1;
	}
	return rc == SQLITE_DONE ? 0 : queue_fail(q, "read messages");
}

json_t *
queue_trace(struct queue *q, const struct queue_trace_filter *f)
{
	sqlite3_stmt *msgs = NULL, *evs = NULL;
	char *sql = queue_trace_sql(f);
	json_t *out = json_array();
	int rc = -1;

	q->err[0] = '\0';
	/* One read transaction: a consistent snapshot of all messages. */
	if (sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		queue_fail(q, "trace");
	else if (sqlite3_prepare_v2(q->db, sql, -1, &msgs, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db,
	        "SELECT id, addr, at, type, fields FROM events "
	        "WHERE msgid = ? ORDER BY id",
	        -1, &evs, NULL) != SQLITE_OK)
		queue_fail(q, "trace");
	else {
		queue_trace_bind(msgs, f);
		rc = queue_trace_collect(q, msgs, evs, f, out);
	}
	sqlite3_finalize(msgs);
	sqlite3_finalize(evs);
	if (sqlite3_get_autocommit(q->db) == 0)
		sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	free(sql);
	if (rc == -1) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Printable as is: no quoting needed for a key or a value. */
static bool
queue_trace_bare(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0')
		return false;
	for (; *p != '\0'; p++) {
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    *p == 0x7f)
			return false;
		/* C1 controls (U+0080..U+009F) confuse terminals too. */
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return false;
	}
	return true;
}

static void
queue_trace_quoted(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putc('"', fp);
	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", fp);
		else if (*p == '\r')
			fputs("\\r", fp);
		else if (*p == '\t')
			fputs("\\t", fp);
		else if (*p < ' ' || *p == 0x7f)
			fprintf(fp, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			fprintf(fp, "\\u%04x", *++p);
		else
			putc(*p, fp);
	}
	putc('"', fp);
}

static void
queue_trace_text(FILE *fp, const char *s)
{
	if (queue_trace_bare(s))
		fputs(s, fp);
	else
		queue_trace_quoted(fp, s);
}

void
queue_trace_print_value(FILE *fp, const json_t *v)
{
	char *dump;

	if (v == NULL) {
		fputs("null", fp);
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		queue_trace_text(fp, json_string_value(v));
		break;
	case JSON_INTEGER:
		fprintf(fp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(fp, "%g", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("true", fp);
		break;
	case JSON_FALSE:
		fputs("false", fp);
		break;
	case JSON_NULL:
		fputs("null", fp);
		break;
	default:
		/* Objects and arrays: compact JSON, quoted if it needs it. */
		dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		queue_trace_text(fp, dump != NULL ? dump : "?");
		free(dump);
		break;
	}
}

static void
queue_trace_print_event(FILE *fp, json_t *ev)
{
	const char *key;
	json_t *v;

	fputs("  ", fp);
	queue_trace_print_value(fp, json_object_get(ev, "at"));
	putc(' ', fp);
	queue_trace_print_value(fp, json_object_get(ev, "type"));
	v = json_object_get(ev, "recipient");
	if (json_is_string(v)) {
		putc(' ', fp);
		queue_trace_print_value(fp, v);
	}
	json_object_foreach(ev, key, v)
	{
		if (strcmp(key, "at") == 0 || strcmp(key, "type") == 0 ||
		    strcmp(key, "recipient") == 0)
			continue;
		putc(' ', fp);
		queue_trace_text(fp, key);
		putc('=', fp);
		queue_trace_print_value(fp, v);
	}
	putc('\n', fp);
}

static void
queue_trace_print_message(FILE *fp, const json_t *m)
{
	const json_t *v;
	size_t i;

	fputs("message ", fp);
	queue_trace_print_value(fp, json_object_get(m, "id"));
	/* The reverse-path as SMTP writes it: <> is the null sender. */
	fputs(" from=<", fp);
	v = json_object_get(m, "sender");
	if (json_string_length(v) > 0)
		queue_trace_print_value(fp, v);
	putc('>', fp);
	v = json_object_get(m, "message_id");
	if (json_is_string(v)) {
		fputs(" message_id=", fp);
		queue_trace_print_value(fp, v);
	}
	/* Over the fleet: the node that accepted it. */
	v = json_object_get(m, "node");
	if (json_is_string(v)) {
		fputs(" node=", fp);
		queue_trace_print_value(fp, v);
	}
	putc('\n', fp);
	v = json_object_get(m, "events");
	for (i = 0; i < json_array_size(v); i++)
		if (json_is_object(json_array_get(v, i)))
			queue_trace_print_event(fp, json_array_get(v, i));
}

void
queue_trace_print(FILE *fp, const json_t *trace)
{
	size_t i;

	for (i = 0; i < json_array_size(trace); i++) {
		if (i > 0)
			putc('\n', fp);
		queue_trace_print_message(fp, json_array_get(trace, i));
	}
}
