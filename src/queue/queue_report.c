/*
 * queue_report: the transit security report (what was blocked, what was
 * sent under which security, which domains had no TLS) from the attempt
 * events of a period, in SQL with SQLite's JSON functions, over partial
 * indexes so that only the attempts of the period are read, and only the
 * failed ones for the blocked table (docs/QUEUE.md: the report indexes;
 * docs/CONSOLE.md: what each number means).
 */
#include "queue/queue_report_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"

/*
 * The partial indexes of the report: all attempts by time (covering the
 * impact's totals: SQLite 3.40 wants the type in the index for that), and
 * the few that failed with an RFC 8460 result type, that would have failed
 * (log-only) and that went without TLS. The relay creates them at start,
 * once; a queue without them (a command run before the relay was
 * upgraded) still answers, only slower. Adding an index changes nothing
 * an older danerelay reads or writes, so the schema version stays.
 */
static const char queue_report_index_sql[] =
    "CREATE INDEX IF NOT EXISTS events_report_attempt ON events(at, msgid, "
    "addr, type) WHERE type = 'attempt';"
    "CREATE INDEX IF NOT EXISTS events_report_failed ON events(at) "
    "WHERE type = 'attempt' AND " RPT_FAILED ";"
    "CREATE INDEX IF NOT EXISTS events_report_would ON events(at) "
    "WHERE type = 'attempt' AND " RPT_WOULD ";"
    "CREATE INDEX IF NOT EXISTS events_report_plain ON events(at) "
    "WHERE type = 'attempt' AND " RPT_PLAIN ";";

void
queue_report_setup(struct queue *q)
{
	if (sqlite3_exec(q->db, queue_report_index_sql, NULL, NULL, NULL) !=
	    SQLITE_OK)
		log_warnx("%s: cannot create the report's indexes (reports "
		          "will be slower): %s",
		    q->path, sqlite3_errmsg(q->db));
}

int
queue_report_period(const char *name, time_t now, struct queue_report_period *p)
{
	static const struct {
		const char *name;
		time_t len, step;
	} periods[] = {
		{ "1h", 3600, 120 },
		{ "1d", 86400, 3600 },
		{ "7d", 7 * 86400, 4 * 3600 },
		{ "30d", QUEUE_REPORT_MAX_DAYS * 86400, 86400 },
	};
	size_t i;

	for (i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
		if (strcmp(name, periods[i].name) != 0)
			continue;
		p->name = periods[i].name;
		p->since = now - periods[i].len;
		p->until = now + 1; /* this second too */
		p->step = periods[i].step;
		return 0;
	}
	return -1;
}

json_t *
queue_report_row(
    sqlite3_stmt *st, int first, const struct queue_report_col *cols)
{
	json_t *o = json_object();
	int col;

	for (col = first; cols->key != NULL; cols++, col++)
		json_object_set_new(o, cols->key,
		    queue_report_value(cols->kind,
		        (const char *)sqlite3_column_text(st, col),
		        sqlite3_column_int64(st, col)));
	return o;
}

sqlite3_stmt *
queue_report_prepare(
    struct queue *q, const char *sql, const struct queue_report_period *p)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		queue_fail(q, "report");
		return NULL;
	}
	/* A statement may leave some out: SQLITE_RANGE is no error here. */
	sqlite3_bind_int64(st, 1, (sqlite3_int64)p->since);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)p->until);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)queue_report_start(p));
	sqlite3_bind_int64(st, 4, (sqlite3_int64)p->step);
	sqlite3_bind_int(st, 5, QUEUE_REPORT_MAX_ROWS + 1);
	return st;
}

/* Finalize st after its last step gave rc: 0, or -1 (queue_fail) unless
 * it ended well. */
static int
queue_report_done(struct queue *q, sqlite3_stmt *st, int rc)
{
	if (rc != SQLITE_DONE)
		queue_fail(q, "report"); /* before finalize: keep its text */
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

json_t *
queue_report_period_json(
    struct queue *q, const struct queue_report_period *p, bool buckets)
{
	sqlite3_stmt *st;
	bool has = false;
	time_t first = 0;
	int rc;

	/* What the queue still holds: a young queue covers less. */
	st = queue_report_prepare(q, "SELECT min(at) FROM events", p);
	if (st == NULL)
		return NULL;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL) {
		has = true;
		first = (time_t)sqlite3_column_int64(st, 0);
	}
	if (queue_report_done(q, st, rc == SQLITE_ROW ? SQLITE_DONE : rc) == -1)
		return NULL;
	return queue_report_period_new(p, has, first, buckets);
}

/* --- tables of domains with their errors (blocked, would block) --- */

static int
queue_report_domain_rows(
    struct queue *q, sqlite3_stmt *st, struct queue_report_table *t)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (!queue_report_table_row(
		        t, queue_report_row(st, 0, queue_report_domain_cols))) {
			rc = SQLITE_DONE;
			break;
		}
	return queue_report_done(q, st, rc);
}

static int
queue_report_error_rows(struct queue *q, sqlite3_stmt *st,
    struct queue_report_table *t, queue_report_error_fn *errfn)
{
	json_t *e, *counts;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		e = errfn(st);
		counts = queue_report_row(st, 5, queue_report_count_cols);
		json_object_update(e, counts);
		json_decref(counts);
		queue_report_table_error(t,
		    (const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1), e);
	}
	return queue_report_done(q, st, rc);
}

json_t *
queue_report_domains(struct queue *q, const struct queue_report_period *p,
    const char *where, const char *sec, const char *errcols,
    queue_report_error_fn *errfn, bool *truncated)
{
	struct queue_report_table t;
	char *gsql, *esql;
	sqlite3_stmt *g, *e = NULL;
	json_t *rows;
	int rc = -1;

	gsql = xasprintf("SELECT " RPT_DOMAIN " AS d, %s AS s, "
	                 "count(DISTINCT msgid), count(DISTINCT msgid || ' ' "
	                 "|| addr), count(*), max(at) " RPT_ATTEMPTS
	                 " AND %s GROUP BY d, s ORDER BY 3 DESC, 6 DESC, d, s "
	                 "LIMIT ?5",
	    sec, where);
	/* Errors newest first within each domain (the console's order). */
	esql =
	    xasprintf("SELECT " RPT_DOMAIN " AS d, %s AS s, %s, count(*), "
	              "max(at) " RPT_ATTEMPTS
	              " AND %s GROUP BY d, s, 3, 4, 5 ORDER BY d, s, 7 DESC, "
	              "6 DESC",
	        sec, errcols, where);
	queue_report_table_init(&t);
	if ((g = queue_report_prepare(q, gsql, p)) != NULL &&
	    queue_report_domain_rows(q, g, &t) == 0 &&
	    (e = queue_report_prepare(q, esql, p)) != NULL)
		rc = queue_report_error_rows(q, e, &t, errfn);
	free(gsql);
	free(esql);
	*truncated = t.cut;
	rows = queue_report_table_rows(&t);
	if (rc == -1) {
		json_decref(rows);
		return NULL;
	}
	return rows;
}

/* --- the three parts of the report --- */

static json_t *
queue_report_blocked_error(sqlite3_stmt *st)
{
	return queue_report_row(st, 2, queue_report_blocked_cols);
}

/* The one definition of blocked, for /report and the overview. */
#define RPT_BLOCKED                                               \
	RPT_FAILED " AND NOT " RPT_DELIVERED " AND " RPT_SECURITY \
	           " IN ('dane', 'sts')"

/*
 * Blocked: an attempt that did not deliver because a DANE or MTA-STS
 * requirement failed: it carries an RFC 8460 result type (RFC 8460 section
 * 4.3; docs/VERDICTS.md), and deliver_security() names the requirement.
 */
static json_t *
queue_report_blocked(
    struct queue *q, const struct queue_report_period *p, bool *cut)
{
	return queue_report_domains(q, p, RPT_BLOCKED, RPT_SECURITY,
	    RPT_F("status") ", " RPT_F("result_type") ", " RPT_F("text"),
	    queue_report_blocked_error, cut);
}

/* Sent: recipients delivered, per bucket and security class. */
static json_t *
queue_report_sent(struct queue *q, const struct queue_report_period *p)
{
	json_t *o = queue_report_sent_new(p);
	sqlite3_stmt *st;
	int rc;

	st = queue_report_prepare(q,
	    "SELECT (at - ?3) / ?4 AS b, " RPT_SECURITY
	    " AS s, count(*) " RPT_ATTEMPTS " AND " RPT_DELIVERED
	    " GROUP BY b, s",
	    p);
	if (st == NULL) {
		json_decref(o);
		return NULL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		queue_report_sent_add(o, sqlite3_column_int64(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    (json_int_t)sqlite3_column_int64(st, 2));
	if (queue_report_done(q, st, rc) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * No TLS: recipients delivered in plaintext (the server offered no
 * STARTTLS, or TLS failed where nothing required it) and attempts that
 * failed because TLS was required and not offered (starttls-not-supported,
 * RFC 8460 section 4.3.1), one row each: at, domain, msgid, plain.
 */
#define RPT_NOTLS                                                          \
	"(SELECT at, " RPT_DOMAIN " AS d, msgid, 1 AS plain " RPT_ATTEMPTS \
	" AND " RPT_PLAIN " AND " RPT_DELIVERED                            \
	" UNION ALL SELECT at, " RPT_DOMAIN                                \
	" AS d, msgid, 0 AS plain " RPT_ATTEMPTS " AND " RPT_FAILED        \
	" AND " RPT_F("result_type") " = 'starttls-not-supported')"

static int
queue_report_notls_series(
    struct queue *q, const struct queue_report_period *p, json_t *o)
{
	json_t *doms, *msgs;
	sqlite3_stmt *st;
	int rc;

	doms = queue_report_zeros(queue_report_nbuckets(p));
	msgs = queue_report_zeros(queue_report_nbuckets(p));
	json_object_set_new(o, "domains", doms);
	json_object_set_new(o, "messages", msgs);
	st = queue_report_prepare(q,
	    "SELECT (at - ?3) / ?4 AS b, count(DISTINCT d), "
	    "count(DISTINCT msgid) FROM " RPT_NOTLS " GROUP BY b",
	    p);
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		queue_report_bucket_add(doms, sqlite3_column_int64(st, 0),
		    (json_int_t)sqlite3_column_int64(st, 1));
		queue_report_bucket_add(msgs, sqlite3_column_int64(st, 0),
		    (json_int_t)sqlite3_column_int64(st, 2));
	}
	return queue_report_done(q, st, rc);
}

static int
queue_report_notls_table(
    struct queue *q, const struct queue_report_period *p, json_t *o)
{
	json_t *table = json_array();
	sqlite3_stmt *st;
	int rc;

	json_object_set_new(o, "table", table);
	st = queue_report_prepare(q,
	    "SELECT d, count(DISTINCT msgid), sum(plain), sum(1 - plain), "
	    "max(at), count(*) OVER () FROM " RPT_NOTLS
	    " GROUP BY d ORDER BY 5 DESC, d LIMIT ?5",
	    p);
	if (st == NULL)
		return -1;
	json_object_set_new(o, "total", json_integer(0));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* count(*) OVER (): the domains before the limit. */
		json_object_set_new(
		    o, "total", json_integer(sqlite3_column_int64(st, 5)));
		if (json_array_size(table) == QUEUE_REPORT_MAX_ROWS) {
			json_object_set_new(o, "truncated", json_true());
			rc = SQLITE_DONE;
			break;
		}
		json_array_append_new(
		    table, queue_report_row(st, 0, queue_report_notls_cols));
	}
	return queue_report_done(q, st, rc);
}

static json_t *
queue_report_notls(struct queue *q, const struct queue_report_period *p)
{
	json_t *o = json_object();

	if (queue_report_notls_series(q, p, o) == -1 ||
	    queue_report_notls_table(q, p, o) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
queue_report_parts(
    struct queue *q, const struct queue_report_period *p, json_t *out)
{
	bool cut = false;

	if (queue_report_put(
	        out, "period", queue_report_period_json(q, p, true)) == -1 ||
	    queue_report_put(
	        out, "blocked", queue_report_blocked(q, p, &cut)) == -1 ||
	    queue_report_put(out, "sent", queue_report_sent(q, p)) == -1 ||
	    queue_report_put(out, "no_tls", queue_report_notls(q, p)) == -1)
		return -1;
	queue_report_cut(out, "blocked_truncated", cut);
	return 0;
}

json_t *
queue_report_run(struct queue *q, const struct queue_report_period *p,
    queue_report_parts_fn *fn)
{
	json_t *out = json_object();
	int rc = -1;

	q->err[0] = '\0';
	/* One read transaction: every part sees the same events. */
	if (sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		queue_fail(q, "report");
	else
		rc = fn(q, p, out);
	if (sqlite3_get_autocommit(q->db) == 0)
		sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	if (rc == -1) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *
queue_report(struct queue *q, const struct queue_report_period *p)
{
	return queue_report_run(q, p, queue_report_parts);
}

/* The overview's last hour: recipients delivered and blocked (each once),
 * by the report's own definitions. */
int
queue_count_outcomes(struct queue *q, time_t since, struct queue_outcomes *c)
{
	sqlite3_stmt *st;
	int rc;

	memset(c, 0, sizeof(*c));
	if (sqlite3_prepare_v2(q->db,
	        "SELECT count(DISTINCT CASE WHEN " RPT_DELIVERED
	        " THEN msgid || ' ' || addr END), "
	        "count(DISTINCT CASE WHEN " RPT_BLOCKED
	        " THEN msgid || ' ' || addr END) "
	        "FROM events WHERE type = 'attempt' AND at >= ?1",
	        -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "count outcomes");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		c->delivered = (uint64_t)sqlite3_column_int64(st, 0);
		c->blocked = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : queue_fail(q, "count outcomes");
}
