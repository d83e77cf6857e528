/*
 * tlsrpt_outbox: which report went to which rua destination, and what is
 * still to be tried. One row per (day, policy domain, URI) with the
 * gzipped report itself, so a retry sends exactly the report (and
 * report-id) of the first attempt even after a restart.
 *
 * Volume is a handful of rows per domain and day, so statements are
 * prepared per call.
 */
#include "tlsrpt/tlsrpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_int.h"

#define OUT_COLS                                             \
	"day, domain, uri, report_id, gz, state, attempts, " \
	"first_attempt, note"

static const char outbox_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS outbox ("
    " day TEXT NOT NULL,"
    " domain TEXT NOT NULL,"
    " uri TEXT NOT NULL,"
    " report_id TEXT NOT NULL,"
    " gz BLOB NOT NULL,"
    " state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " first_attempt INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL DEFAULT 0,"
    " note TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (day, domain, uri));"
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt);";

const char *
tlsrpt_out_state_str(enum tlsrpt_out_state st)
{
	switch (st) {
	case TLSRPT_OUT_PENDING:
		return "pending";
	case TLSRPT_OUT_DONE:
		return "done";
	case TLSRPT_OUT_FAILED:
		return "failed";
	}
	return "pending";
}

int
tlsrpt_outbox_init(struct tlsrpt_store *s)
{
	if (sqlite3_exec(tlsrpt_store_db(s), outbox_schema_sql, NULL, NULL,
	        NULL) != SQLITE_OK)
		return tlsrpt_store_fail(s, "create outbox");
	return 0;
}

static sqlite3_stmt *
outbox_prepare(struct tlsrpt_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(tlsrpt_store_db(s), sql, -1, &st, NULL) !=
	    SQLITE_OK) {
		tlsrpt_store_fail(s, sql);
		return NULL;
	}
	return st;
}

/* Step a write statement to its end and finalize it. 0 or -1. */
static int
outbox_exec(struct tlsrpt_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : tlsrpt_store_fail(s, what);
}

int
tlsrpt_outbox_add(struct tlsrpt_store *s, const struct tlsrpt_out *o)
{
	sqlite3_stmt *st = outbox_prepare(s,
	    "INSERT OR IGNORE INTO outbox (day, domain, uri, report_id, gz, "
	    "state, note, attempts, first_attempt) VALUES (?1, ?2, ?3, ?4, "
	    "?5, ?6, ?7, ?8, ?9)");

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, o->day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, o->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, o->uri, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, o->report_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, o->gz, (int)o->gzlen, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, (int)o->state);
	sqlite3_bind_text(
	    st, 7, o->note != NULL ? o->note : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, o->attempts);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)o->first_attempt);
	return outbox_exec(s, st, "outbox add");
}

int
tlsrpt_outbox_update(struct tlsrpt_store *s, const char *day,
    const char *domain, const char *uri, enum tlsrpt_out_state state,
    const char *note, time_t now, time_t next_attempt)
{
	sqlite3_stmt *st = outbox_prepare(s,
	    "UPDATE outbox SET state = ?4, note = ?5, attempts = attempts + 1,"
	    " first_attempt = CASE first_attempt WHEN 0 THEN ?6 ELSE "
	    "first_attempt END, next_attempt = ?7 WHERE day = ?1 AND "
	    "domain = ?2 AND uri = ?3");

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, uri, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)state);
	sqlite3_bind_text(st, 5, note != NULL ? note : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)next_attempt);
	return outbox_exec(s, st, "outbox update");
}

static const char *
outbox_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

/* Rows of st (columns OUT_COLS) to cb, up to max; finalizes st. */
static int
outbox_rows(struct tlsrpt_store *s, sqlite3_stmt *st, size_t max,
    tlsrpt_out_cb *cb, void *arg)
{
	struct tlsrpt_out o;
	size_t n = 0;
	int rc;

	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&o, 0, sizeof(o));
		snprintf(o.day, sizeof(o.day), "%s", outbox_text(st, 0));
		o.domain = outbox_text(st, 1);
		o.uri = outbox_text(st, 2);
		o.report_id = outbox_text(st, 3);
		o.gz = sqlite3_column_blob(st, 4);
		o.gzlen = (size_t)sqlite3_column_bytes(st, 4);
		o.state = (enum tlsrpt_out_state)sqlite3_column_int(st, 5);
		o.attempts = sqlite3_column_int(st, 6);
		o.first_attempt = (time_t)sqlite3_column_int64(st, 7);
		o.note = outbox_text(st, 8);
		cb(&o, arg);
		n++;
	}
	if (n < max && rc != SQLITE_DONE) {
		sqlite3_finalize(st);
		return tlsrpt_store_fail(s, "outbox read");
	}
	sqlite3_finalize(st);
	return (int)n;
}

int
tlsrpt_outbox_due(struct tlsrpt_store *s, time_t now, size_t max,
    tlsrpt_out_cb *cb, void *arg)
{
	sqlite3_stmt *st = outbox_prepare(s,
	    "SELECT " OUT_COLS " FROM outbox WHERE state = 0 AND "
	    "next_attempt <= ?1 ORDER BY next_attempt, day, domain, uri");

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	return outbox_rows(s, st, max, cb, arg);
}

int
tlsrpt_outbox_list(
    struct tlsrpt_store *s, const char *day, tlsrpt_out_cb *cb, void *arg)
{
	sqlite3_stmt *st = outbox_prepare(s,
	    "SELECT " OUT_COLS " FROM outbox WHERE day = ?1 "
	    "ORDER BY domain, uri");

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	return outbox_rows(s, st, (size_t)-1, cb, arg);
}

int
tlsrpt_outbox_count(
    struct tlsrpt_store *s, const char *day, const char *domain, int *pending)
{
	sqlite3_stmt *st = outbox_prepare(s,
	    "SELECT count(*), coalesce(sum(state = 0), 0) FROM outbox "
	    "WHERE day = ?1 AND domain = ?2");
	int total = -1;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		total = sqlite3_column_int(st, 0);
		*pending = sqlite3_column_int(st, 1);
	} else
		tlsrpt_store_fail(s, "outbox count");
	sqlite3_finalize(st);
	return total;
}
