/*
 * fleet_tlsrpt: the node's TLS-RPT counters in the fleet database, and
 * the fleet's sums back out of it (docs/FLEET.md, "TLS-RPT").
 *
 * Push: every counter row of the days from the node's mark on
 * (dr_nodes.tlsrpt_mark) is written as the node's ABSOLUTE value (SET
 * successes = EXCLUDED.successes), so a push repeated, or cut off and
 * redone, counts nothing twice. The mark moves, in the push's own
 * transaction, to the day of one hour before the push began: sessions
 * are recorded under the day they happened, at most a delivery attempt
 * later, so older days cannot change any more. A database away for days
 * leaves the mark where it was, and the next push copies all of them.
 * Each table is written with one statement (json_to_recordset), and only
 * rows whose values changed are touched.
 *
 * Snapshot: the summed counters of every node, the days' report states
 * and outboxes, loaded into a TLS-RPT store in memory, so the one report
 * builder (tlsrpt_report_build), `tlsrpt list` and the console's
 * tlsrpt_sent read the fleet as they read one node.
 */
#include "fleet/fleet.h"
#include "fleet/fleet_tlsrpt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "pg/pg.h"
#include "tlsrpt/tlsrpt.h"

#define FT_MARGIN 3600 /* a session is recorded within an hour */

static const char ft_push_policies_sql[] =
    "INSERT INTO dr_tlsrpt_policies AS t (node, day, domain, type, "
    "strings, mx, successes, failures) SELECT $1, r.day, r.domain, r.type, "
    "r.strings, r.mx, r.successes, r.failures FROM json_to_recordset($2) "
    "AS r(day text, domain text, type integer, strings text, mx text, "
    "successes bigint, failures bigint) ON CONFLICT (node, day, domain, "
    "type, strings, mx) DO UPDATE SET successes = EXCLUDED.successes, "
    "failures = EXCLUDED.failures WHERE (t.successes, t.failures) IS "
    "DISTINCT FROM (EXCLUDED.successes, EXCLUDED.failures)";

static const char ft_push_failures_sql[] =
    "INSERT INTO dr_tlsrpt_failures AS t (node, day, domain, type, "
    "strings, mx, result_type, sending_mta_ip, mx_hostname, mx_helo, "
    "receiving_ip, reason, count) SELECT $1, r.day, r.domain, r.type, "
    "r.strings, r.mx, r.result_type, r.sending_mta_ip, r.mx_hostname, "
    "r.mx_helo, r.receiving_ip, r.reason, r.count FROM "
    "json_to_recordset($2) AS r(day text, domain text, type integer, "
    "strings text, mx text, result_type text, sending_mta_ip text, "
    "mx_hostname text, mx_helo text, receiving_ip text, reason text, "
    "count bigint) ON CONFLICT (node, day, domain, type, strings, mx, "
    "result_type, sending_mta_ip, mx_hostname, mx_helo, receiving_ip, "
    "reason) DO UPDATE SET count = EXCLUDED.count WHERE t.count <> "
    "EXCLUDED.count";

struct ft_push {
	json_t *policies;
	json_t *failures;
};

static int
ft_push_row(const struct tlsrpt_row *r, void *arg)
{
	struct ft_push *x = arg;
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "day", r->day,
	    "domain", r->domain, "type", (int)r->type, "strings", r->strings,
	    "mx", r->mx);

	if (o == NULL)
		return -1; /* not UTF-8: the store never writes that */
	if (r->result_type == NULL) {
		json_object_set_new(o, "successes", json_integer(r->successes));
		json_object_set_new(o, "failures", json_integer(r->failures));
		json_array_append_new(x->policies, o);
		return 0;
	}
	json_object_set_new(o, "result_type", json_string(r->result_type));
	json_object_set_new(
	    o, "sending_mta_ip", json_string(r->sending_mta_ip));
	json_object_set_new(o, "mx_hostname", json_string(r->mx_hostname));
	json_object_set_new(o, "mx_helo", json_string(r->mx_helo));
	json_object_set_new(o, "receiving_ip", json_string(r->receiving_ip));
	json_object_set_new(o, "reason", json_string(r->reason));
	json_object_set_new(o, "count", json_integer(r->count));
	json_array_append_new(x->failures, o);
	return 0;
}

/* One table's rows (a JSON array) as the node's. 0 or -1. */
static int
ft_push_table(struct pg *p, const char *sql, json_t *rows)
{
	const char *args[2];
	char *text;
	int rc;

	if (json_array_size(rows) == 0)
		return 0;
	text = json_dumps(rows, JSON_COMPACT);
	args[0] = pg_node(p);
	args[1] = text;
	rc = pg_exec(p, sql, 2, args);
	free(text);
	return rc;
}

/* The node's mark, "" when it has none. 0 or -1. */
static int
ft_mark(struct pg *p, char mark[TLSRPT_DAY_LEN])
{
	const char *args[1] = { pg_node(p) };
	PGresult *r;

	/* FOR UPDATE: two pushes of one node (the relay's thread, `tlsrpt
	 * send`) take turns instead of moving the mark past each other. */
	r = pg_query(p,
	    "SELECT tlsrpt_mark FROM dr_nodes WHERE node = $1 FOR UPDATE", 1,
	    args);
	if (r == NULL)
		return -1;
	mark[0] = '\0';
	if (PQntuples(r) > 0 && pg_text(r, 0, 0) != NULL)
		snprintf(mark, TLSRPT_DAY_LEN, "%s", pg_text(r, 0, 0));
	PQclear(r);
	return 0;
}

static int
ft_push_tx(struct pg *p, struct tlsrpt_store *s, struct ft_push *x)
{
	char mark[TLSRPT_DAY_LEN], next[TLSRPT_DAY_LEN];
	const char *args[2];

	if (tlsrpt_day(time(NULL) - FT_MARGIN, next) == -1) {
		pg_fail(p, "TLS-RPT push: the clock is out of range");
		return -1;
	}
	if (ft_mark(p, mark) == -1)
		return -1;
	if (tlsrpt_store_rows(s, mark, ft_push_row, x) == -1) {
		pg_fail(p,
		    tlsrpt_store_error(s)[0] != '\0' ?
		        tlsrpt_store_error(s) :
		        "TLS-RPT push: a counter row is not UTF-8");
		return -1;
	}
	if (ft_push_table(p, ft_push_policies_sql, x->policies) == -1 ||
	    ft_push_table(p, ft_push_failures_sql, x->failures) == -1)
		return -1;
	args[0] = pg_node(p);
	args[1] = next;
	return pg_exec(
	    p, "UPDATE dr_nodes SET tlsrpt_mark = $2 WHERE node = $1", 2, args);
}

int
fleet_tlsrpt_push(struct pg *p, struct tlsrpt_store *s)
{
	struct ft_push x;
	int rc = -1;

	if (pg_ready(p) == -1)
		return -1;
	x.policies = json_array();
	x.failures = json_array();
	if (pg_begin(p) == 0) {
		if (ft_push_tx(p, s, &x) == 0)
			rc = pg_commit(p);
		else
			pg_rollback(p);
	}
	json_decref(x.policies);
	json_decref(x.failures);
	return rc;
}

/* --- the snapshot --- */

/* $1..$3: first day, last day, domain or NULL (every domain). */
static const char ft_sum_policies_sql[] =
    "SELECT day, domain, type, strings, mx, sum(successes), sum(failures) "
    "FROM dr_tlsrpt_policies WHERE day BETWEEN $1 AND $2 AND ($3::text IS "
    "NULL OR domain = $3) GROUP BY day, domain, type, strings, mx ORDER BY "
    "day, domain, type, strings, mx";

static const char ft_sum_failures_sql[] =
    "SELECT day, domain, type, strings, mx, result_type, sending_mta_ip, "
    "mx_hostname, mx_helo, receiving_ip, reason, sum(count) FROM "
    "dr_tlsrpt_failures WHERE day BETWEEN $1 AND $2 AND ($3::text IS NULL "
    "OR domain = $3) GROUP BY day, domain, type, strings, mx, result_type, "
    "sending_mta_ip, mx_hostname, mx_helo, receiving_ip, reason";

static const char ft_done_sql[] =
    "SELECT day, domain FROM dr_tlsrpt_reports WHERE day BETWEEN $1 AND "
    "$2 AND ($3::text IS NULL OR domain = $3) AND state IN (" FT_NO_POLICY_S
    ", " FT_DONE_S ")";

static const char ft_outbox_sql[] =
    "SELECT day, domain, uri, report_id, state, attempts, first_attempt, "
    "note FROM dr_tlsrpt_outbox WHERE day BETWEEN $1 AND $2 AND ($3::text "
    "IS NULL OR domain = $3) ORDER BY day, domain, uri";

static void
ft_key(const PGresult *r, int i, struct tlsrpt_row *row)
{
	memset(row, 0, sizeof(*row));
	row->day = pg_text(r, i, 0);
	row->domain = pg_text(r, i, 1);
	row->type = (enum tlsrpt_policy_type)pg_int(r, i, 2);
	row->strings = pg_text(r, i, 3);
	row->mx = pg_text(r, i, 4);
}

static int
ft_load_counters(struct pg *p, struct tlsrpt_store *m, const char *const *args,
    bool failures)
{
	struct tlsrpt_row row;
	PGresult *r;
	int i, rc = 0;

	r = pg_query(
	    p, failures ? ft_sum_failures_sql : ft_sum_policies_sql, 3, args);
	if (r == NULL)
		return -1;
	for (i = 0; rc == 0 && i < PQntuples(r); i++) {
		ft_key(r, i, &row);
		if (failures) {
			row.result_type = pg_text(r, i, 5);
			row.sending_mta_ip = pg_text(r, i, 6);
			row.mx_hostname = pg_text(r, i, 7);
			row.mx_helo = pg_text(r, i, 8);
			row.receiving_ip = pg_text(r, i, 9);
			row.reason = pg_text(r, i, 10);
			row.count = pg_int(r, i, 11);
		} else {
			row.successes = pg_int(r, i, 5);
			row.failures = pg_int(r, i, 6);
		}
		if ((rc = tlsrpt_store_add_row(m, &row)) == -1)
			pg_fail(p, tlsrpt_store_error(m));
	}
	PQclear(r);
	return rc;
}

static int
ft_load_done(struct pg *p, struct tlsrpt_store *m, const char *const *args)
{
	PGresult *r = pg_query(p, ft_done_sql, 3, args);
	int i, rc = 0;

	if (r == NULL)
		return -1;
	for (i = 0; rc == 0 && i < PQntuples(r); i++)
		if ((rc = tlsrpt_store_mark_sent(
		         m, pg_text(r, i, 1), pg_text(r, i, 0))) == -1)
			pg_fail(p, tlsrpt_store_error(m));
	PQclear(r);
	return rc;
}

/* The outbox rows, without their reports (not shown anywhere). */
static int
ft_load_outbox(struct pg *p, struct tlsrpt_store *m, const char *const *args)
{
	PGresult *r = pg_query(p, ft_outbox_sql, 3, args);
	struct tlsrpt_out o;
	int i, rc = 0;

	if (r == NULL)
		return -1;
	for (i = 0; rc == 0 && i < PQntuples(r); i++) {
		memset(&o, 0, sizeof(o));
		snprintf(o.day, sizeof(o.day), "%s", pg_text(r, i, 0));
		o.domain = pg_text(r, i, 1);
		o.uri = pg_text(r, i, 2);
		o.report_id = pg_text(r, i, 3);
		o.gz = (const uint8_t *)"";
		o.state = (enum tlsrpt_out_state)pg_int(r, i, 4);
		o.attempts = (int)pg_int(r, i, 5);
		o.first_attempt = (time_t)pg_int(r, i, 6);
		o.note = pg_text(r, i, 7);
		if ((rc = tlsrpt_outbox_add(m, &o)) == -1)
			pg_fail(p, tlsrpt_store_error(m));
	}
	PQclear(r);
	return rc;
}

struct tlsrpt_store *
fleet_tlsrpt_snapshot(
    struct pg *p, const char *from, const char *to, const char *domain)
{
	const char *args[3] = { from, to, domain };
	struct tlsrpt_store *m;
	char *err = NULL;
	int rc = -1;

	if ((m = tlsrpt_store_open(":memory:", &err)) == NULL) {
		pg_fail(p, err);
		free(err);
		return NULL;
	}
	if (pg_ready(p) == -1)
		goto out;
	/* One snapshot of the database for the four reads. */
	if (pg_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
	        NULL) == -1)
		goto out;
	if (ft_load_counters(p, m, args, false) == 0 &&
	    ft_load_counters(p, m, args, true) == 0 &&
	    ft_load_done(p, m, args) == 0 && ft_load_outbox(p, m, args) == 0)
		rc = 0;
	pg_rollback(p);
out:
	if (rc == -1) {
		tlsrpt_store_close(m);
		return NULL;
	}
	return m;
}
