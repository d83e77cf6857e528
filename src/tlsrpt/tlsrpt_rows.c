/*
 * tlsrpt_rows: the store's counters row by row, out (tlsrpt_store_rows:
 * what a fleet node copies to the shared database) and in
 * (tlsrpt_store_add_row: the fleet's sums, loaded into a store in memory
 * so that the one report builder of tlsrpt.c writes the fleet's report).
 * Both run a few times a minute at most, so statements are prepared per
 * call.
 */
#include "tlsrpt/tlsrpt.h"

#include <stdio.h>
#include <string.h>

#include "tlsrpt/tlsrpt_int.h"

static const char rows_policies_sql[] =
    "SELECT day, domain, type, strings, mx, successes, failures "
    "FROM policies WHERE day >= ?1 ORDER BY day, domain, id";

static const char rows_failures_sql[] =
    "SELECT p.day, p.domain, p.type, p.strings, p.mx, f.result_type, "
    "f.sending_mta_ip, f.mx_hostname, f.mx_helo, f.receiving_ip, "
    "f.reason, f.count FROM failures f JOIN policies p ON p.id = f.policy "
    "WHERE p.day >= ?1 ORDER BY p.day, p.domain, p.id";

static const char *
rows_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? (const char *)t : "";
}

/* The key columns 0..4 (day, domain, type, strings, mx) into r. */
static void
rows_key(sqlite3_stmt *st, struct tlsrpt_row *r)
{
	memset(r, 0, sizeof(*r));
	r->day = rows_text(st, 0);
	r->domain = rows_text(st, 1);
	r->type = (enum tlsrpt_policy_type)sqlite3_column_int(st, 2);
	r->strings = rows_text(st, 3);
	r->mx = rows_text(st, 4);
}

/* One SELECT of since's rows to cb; failures: the failure columns. */
static int
rows_run(struct tlsrpt_store *s, const char *sql, bool failures,
    const char *since, tlsrpt_row_cb *cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	struct tlsrpt_row r;
	int rc;

	if (sqlite3_prepare_v2(tlsrpt_store_db(s), sql, -1, &st, NULL) !=
	    SQLITE_OK)
		return tlsrpt_store_fail(s, "read counters");
	sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows_key(st, &r);
		if (failures) {
			r.result_type = rows_text(st, 5);
			r.sending_mta_ip = rows_text(st, 6);
			r.mx_hostname = rows_text(st, 7);
			r.mx_helo = rows_text(st, 8);
			r.receiving_ip = rows_text(st, 9);
			r.reason = rows_text(st, 10);
			r.count = sqlite3_column_int64(st, 11);
		} else {
			r.successes = sqlite3_column_int64(st, 5);
			r.failures = sqlite3_column_int64(st, 6);
		}
		if (cb(&r, arg) == -1)
			break;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return -1; /* cb stopped */
	return rc == SQLITE_DONE ? 0 : tlsrpt_store_fail(s, "read counters");
}

int
tlsrpt_store_rows(
    struct tlsrpt_store *s, const char *since, tlsrpt_row_cb *cb, void *arg)
{
	sqlite3 *db = tlsrpt_store_db(s);
	int rc;

	/* One read transaction: the failure rows agree with the policies'
	 * failure counts even while the relay records. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return tlsrpt_store_fail(s, "begin");
	rc = rows_run(s, rows_policies_sql, false, since, cb, arg);
	if (rc == 0)
		rc = rows_run(s, rows_failures_sql, true, since, cb, arg);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

/* Run st (bound) to its end and finalize it. */
static int
rows_exec(struct tlsrpt_store *s, sqlite3_stmt *st, const char *what)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : tlsrpt_store_fail(s, what);
}

static sqlite3_stmt *
rows_prepare(
    struct tlsrpt_store *s, const char *sql, const struct tlsrpt_row *r)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(tlsrpt_store_db(s), sql, -1, &st, NULL) !=
	    SQLITE_OK) {
		tlsrpt_store_fail(s, "add counters");
		return NULL;
	}
	sqlite3_bind_text(st, 1, r->day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)r->type);
	sqlite3_bind_text(st, 4, r->strings, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->mx, -1, SQLITE_STATIC);
	return st;
}

int
tlsrpt_store_add_row(struct tlsrpt_store *s, const struct tlsrpt_row *r)
{
	sqlite3_stmt *st;

	if (r->result_type == NULL) {
		st = rows_prepare(s,
		    "INSERT INTO policies (day, domain, type, strings, mx, "
		    "successes, failures) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
		    "ON CONFLICT (day, domain, type, strings, mx) DO UPDATE "
		    "SET successes = successes + ?6, failures = failures + ?7",
		    r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 6, r->successes);
		sqlite3_bind_int64(st, 7, r->failures);
		return rows_exec(s, st, "add policy counters");
	}
	st = rows_prepare(s,
	    "INSERT INTO failures (policy, result_type, sending_mta_ip, "
	    "mx_hostname, mx_helo, receiving_ip, reason, count) SELECT id, "
	    "?6, ?7, ?8, ?9, ?10, ?11, ?12 FROM policies WHERE day = ?1 AND "
	    "domain = ?2 AND type = ?3 AND strings = ?4 AND mx = ?5 "
	    "ON CONFLICT (policy, result_type, sending_mta_ip, mx_hostname, "
	    "mx_helo, receiving_ip, reason) DO UPDATE SET count = count + ?12",
	    r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 6, r->result_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->sending_mta_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, r->mx_hostname, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, r->mx_helo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, r->receiving_ip, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, r->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 12, r->count);
	return rows_exec(s, st, "add failure counters");
}
