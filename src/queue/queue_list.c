/*
 * queue_list: what is in the queue, for `danerelay queue list`, the
 * console's /queue page and /metrics: the recipients still queued or held,
 * all of them or those matching a filter (domain, sender, recipient,
 * state) a page at a time, and how many there are by state.
 *
 * A filter's SQL is put together from fixed pieces, one per condition
 * given, so that SQLite can use the index that fits (a domain walks
 * recipients(domain), whose entries are in row id order already); every
 * value is bound, never written into the text.
 */
#include "queue/queue_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "queue/queue_pg_int.h"

/* The sender of each row's message, after QUEUE_RCPT_COLS. */
#define QUEUE_LIST_COLS                                           \
	QUEUE_RCPT_COLS ", (SELECT sender FROM messages m WHERE " \
	                "m.id = recipients.msgid)"

/* Bound parameters of the filter query. */
enum {
	QUEUE_LIST_P_AFTER = 1,
	QUEUE_LIST_P_DOMAIN,
	QUEUE_LIST_P_NOW,
	QUEUE_LIST_P_RCPT,
	QUEUE_LIST_P_SENDER,
	QUEUE_LIST_P_ADDRESS,
	QUEUE_LIST_P_LIMIT,
};

static const char *const queue_state_sql[] = {
	[QUEUE_STATE_ANY] = (" AND " QUEUE_SQL_PRESENT),
	[QUEUE_STATE_ACTIVE] = " AND status = 0 AND next_attempt <= ?3",
	[QUEUE_STATE_DEFERRED] = " AND status = 0 AND next_attempt > ?3",
	[QUEUE_STATE_HELD] = " AND status = 4",
};

static const char *const queue_state_names[] = {
	[QUEUE_STATE_ANY] = "any",
	[QUEUE_STATE_ACTIVE] = "active",
	[QUEUE_STATE_DEFERRED] = "deferred",
	[QUEUE_STATE_HELD] = "held",
};

const char *
queue_state_str(enum queue_state s)
{
	if ((size_t)s < sizeof(queue_state_names) / sizeof(*queue_state_names))
		return queue_state_names[s];
	return "unknown";
}

int
queue_state_parse(const char *s, enum queue_state *out)
{
	size_t i;

	if (*s == '\0') {
		*out = QUEUE_STATE_ANY;
		return 0;
	}
	for (i = 0; i < sizeof(queue_state_names) / sizeof(*queue_state_names);
	     i++)
		if (strcmp(s, queue_state_names[i]) == 0) {
			*out = (enum queue_state)i;
			return 0;
		}
	return -1;
}

static bool
queue_given(const char *s)
{
	return s != NULL && *s != '\0';
}

/* Append piece to sql (room for every piece at once: never cut). */
static void
queue_list_add(char *sql, size_t size, const char *piece)
{
	size_t len = strlen(sql);

	snprintf(sql + len, size - len, "%s", piece);
}

/* The query for f, in sql. */
static void
queue_list_sql(char *sql, size_t size, const struct queue_filter *f)
{
	size_t state = (size_t)f->state;

	if (state >= sizeof(queue_state_sql) / sizeof(*queue_state_sql))
		state = QUEUE_STATE_ANY;
	snprintf(sql, size, "%s",
	    "SELECT " QUEUE_LIST_COLS " FROM recipients WHERE id > ?1");
	if (queue_given(f->domain))
		queue_list_add(sql, size, " AND domain = lower(?2)");
	queue_list_add(sql, size, queue_state_sql[state]);
	if (queue_given(f->recipient))
		queue_list_add(
		    sql, size, " AND instr(lower(addr), lower(?4)) > 0");
	if (queue_given(f->sender))
		queue_list_add(sql, size,
		    " AND EXISTS (SELECT 1 FROM messages m WHERE m.id = "
		    "recipients.msgid AND instr(lower(m.sender), lower(?5)) > 0)");
	if (queue_given(f->address))
		queue_list_add(sql, size,
		    " AND (instr(lower(addr), lower(?6)) > 0 OR EXISTS (SELECT "
		    "1 FROM messages m WHERE m.id = recipients.msgid AND "
		    "instr(lower(m.sender), lower(?6)) > 0))");
	queue_list_add(sql, size, " ORDER BY id LIMIT ?7");
}

static void
queue_list_bind_str(sqlite3_stmt *st, int param, const char *s)
{
	if (queue_given(s))
		sqlite3_bind_text(st, param, s, -1, SQLITE_STATIC);
}

static void
queue_list_bind(sqlite3_stmt *st, const struct queue_filter *f)
{
	sqlite3_bind_int64(st, QUEUE_LIST_P_AFTER, f->after);
	queue_list_bind_str(st, QUEUE_LIST_P_DOMAIN, f->domain);
	if (f->state == QUEUE_STATE_ACTIVE || f->state == QUEUE_STATE_DEFERRED)
		sqlite3_bind_int64(st, QUEUE_LIST_P_NOW,
		    (sqlite3_int64)(f->now != 0 ? f->now : time(NULL)));
	queue_list_bind_str(st, QUEUE_LIST_P_RCPT, f->recipient);
	queue_list_bind_str(st, QUEUE_LIST_P_SENDER, f->sender);
	queue_list_bind_str(st, QUEUE_LIST_P_ADDRESS, f->address);
	/* SQLite: a negative limit is none. */
	sqlite3_bind_int64(st, QUEUE_LIST_P_LIMIT,
	    f->limit > 0 && f->limit < INT64_MAX ? (sqlite3_int64)f->limit :
	                                           -1);
}

int
queue_list_filter(
    struct queue *q, const struct queue_filter *f, queue_rcpt_cb *cb, void *arg)
{
	static const struct queue_filter all = { 0 };
	sqlite3_stmt *st;
	char sql[1024];
	int n;

	if (q->pg != NULL)
		return queue_pg_list_filter(q, f, cb, arg);
	if (f == NULL)
		f = &all;
	queue_list_sql(sql, sizeof(sql), f);
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "list");
	queue_list_bind(st, f);
	n = queue_rcpt_each(q, st, f->limit > 0 ? f->limit : SIZE_MAX, cb, arg);
	sqlite3_finalize(st);
	return n;
}

int
queue_list(struct queue *q, queue_rcpt_cb *cb, void *arg)
{
	return queue_list_filter(q, NULL, cb, arg);
}

int
queue_count_states(struct queue *q, time_t now, struct queue_counts *c)
{
	sqlite3_stmt *st;
	int rc;

	if (q->pg != NULL)
		return queue_pg_count_states(q, now, c);
	memset(c, 0, sizeof(*c));
	if (sqlite3_prepare_v2(q->db,
	        "SELECT status, next_attempt <= ?1, count(*) FROM recipients "
	        "WHERE " QUEUE_SQL_PRESENT " GROUP BY 1, 2",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "count");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 2);

		if (sqlite3_column_int(st, 0) == QUEUE_RCPT_HELD)
			c->held += n;
		else if (sqlite3_column_int(st, 1))
			c->active = n;
		else
			c->deferred = n;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : queue_fail(q, "count");
}
