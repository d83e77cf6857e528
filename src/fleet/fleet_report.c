/*
 * fleet_report: queue_report() over every node's attempt events in
 * PostgreSQL (fleet.h). The queries are those of queue_report.c, word
 * for word in PostgreSQL's dialect (fleet_sql.h says where the two
 * differ and how they are kept equal); the documents are built by the
 * same code (queue_report_json.c), so a fleet's report of one node's
 * events is that node's report.
 */
#include "fleet/fleet_report_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "fleet/fleet.h"
#include "fleet/fleet_sql.h"
#include "pg/pg.h"

PGresult *
fleet_report_query(
    struct pg *p, const char *sql, const struct queue_report_period *per)
{
	char v[5][PG_INT_LEN];
	const char *args[5];

	args[0] = pg_itoa((long long)per->since, v[0]);
	args[1] = pg_itoa((long long)per->until, v[1]);
	args[2] = pg_itoa((long long)queue_report_start(per), v[2]);
	args[3] = pg_itoa((long long)per->step, v[3]);
	args[4] = pg_itoa(QUEUE_REPORT_MAX_ROWS + 1, v[4]);
	return pg_query(p, sql, 5, args);
}

json_t *
fleet_report_row(
    const PGresult *r, int i, int first, const struct queue_report_col *cols)
{
	json_t *o = json_object();
	int col;

	for (col = first; cols->key != NULL; cols++, col++)
		json_object_set_new(o, cols->key,
		    queue_report_value(
		        cols->kind, pg_text(r, i, col), pg_int(r, i, col)));
	return o;
}

json_t *
fleet_report_period_json(
    struct pg *p, const struct queue_report_period *per, bool buckets)
{
	PGresult *r = pg_query(p, "SELECT min(at) FROM dr_events", 0, NULL);
	json_t *o;

	if (r == NULL)
		return NULL;
	o = queue_report_period_new(
	    per, pg_text(r, 0, 0) != NULL, (time_t)pg_int(r, 0, 0), buckets);
	PQclear(r);
	return o;
}

/* --- tables of domains with their errors (blocked, would block) --- */

/* The nodes of a group's attempts, as a JSON array text. */
#define FLEET_NODES                                                     \
	"array_to_json(array_agg(DISTINCT node COLLATE \"C\" ORDER BY " \
	"node COLLATE \"C\"))::text"

/* A domain row, with the nodes whose attempts it counts (column 6). */
static json_t *
fleet_report_domain(const PGresult *r, int i)
{
	json_t *row = fleet_report_row(r, i, 0, queue_report_domain_cols);
	const char *nodes = pg_text(r, i, 6);
	json_t *a = nodes != NULL ? json_loads(nodes, 0, NULL) : NULL;

	if (!json_is_array(a)) {
		json_decref(a);
		a = json_array();
	}
	json_object_set_new(row, "nodes", a);
	return row;
}

json_t *
fleet_report_domains(struct pg *p, const struct queue_report_period *per,
    const char *where, const char *sec, const char *errcols,
    fleet_report_error_fn *errfn, bool *truncated)
{
	struct queue_report_table t;
	PGresult *g = NULL, *e = NULL;
	char *gsql, *esql;
	json_t *err, *counts;
	int i, rc = -1;

	gsql = xasprintf(FLEET_PARAMS
	    "SELECT " FLEET_RCPT_DOMAIN " AS d, (%s) COLLATE \"C\" AS s, "
	    "count(DISTINCT msgid), count(DISTINCT msgid || ' ' || addr), "
	    "count(*), max(at), " FLEET_NODES " " FLEET_ATTEMPTS
	    " AND %s GROUP BY d, s ORDER BY 3 DESC, 6 DESC, d NULLS FIRST, "
	    "s NULLS FIRST LIMIT $5",
	    sec, where);
	/* Errors newest first within each domain (the console's order). */
	esql = xasprintf(FLEET_PARAMS
	    "SELECT " FLEET_RCPT_DOMAIN " AS d, (%s) COLLATE \"C\" AS s, %s, "
	    "count(*), max(at) " FLEET_ATTEMPTS
	    " AND %s GROUP BY d, s, 3, 4, 5 ORDER BY d NULLS FIRST, "
	    "s NULLS FIRST, 7 DESC, 6 DESC, 3 NULLS FIRST, 4 NULLS FIRST, "
	    "5 NULLS FIRST",
	    sec, errcols, where);
	queue_report_table_init(&t);
	if ((g = fleet_report_query(p, gsql, per)) != NULL &&
	    (e = fleet_report_query(p, esql, per)) != NULL) {
		for (i = 0; i < PQntuples(g); i++)
			if (!queue_report_table_row(
			        &t, fleet_report_domain(g, i)))
				break;
		for (i = 0; i < PQntuples(e); i++) {
			err = errfn(e, i);
			counts =
			    fleet_report_row(e, i, 5, queue_report_count_cols);
			json_object_update(err, counts);
			json_decref(counts);
			queue_report_table_error(
			    &t, pg_text(e, i, 0), pg_text(e, i, 1), err);
		}
		rc = 0;
	}
	PQclear(g);
	PQclear(e);
	free(gsql);
	free(esql);
	*truncated = t.cut;
	if (rc == -1) {
		json_decref(queue_report_table_rows(&t));
		return NULL;
	}
	return queue_report_table_rows(&t);
}

/* --- the three parts of the report --- */

static json_t *
fleet_report_blocked_error(const PGresult *r, int i)
{
	return fleet_report_row(r, i, 2, queue_report_blocked_cols);
}

static json_t *
fleet_report_blocked(
    struct pg *p, const struct queue_report_period *per, bool *cut)
{
	return fleet_report_domains(p, per, FLEET_BLOCKED, FLEET_SECURITY,
	    FLEET_F("status") ", " FLEET_F("result_type") ", " FLEET_F("text"),
	    fleet_report_blocked_error, cut);
}

/* Sent: recipients delivered, per bucket and security class. */
static json_t *
fleet_report_sent(struct pg *p, const struct queue_report_period *per)
{
	json_t *o;
	PGresult *r;
	int i;

	r = fleet_report_query(p,
	    FLEET_PARAMS "SELECT (at - $3) / $4 AS b, " FLEET_SECURITY
	                 " AS s, count(*) " FLEET_ATTEMPTS
	                 " AND " FLEET_DELIVERED " GROUP BY b, s",
	    per);
	if (r == NULL)
		return NULL;
	o = queue_report_sent_new(per);
	for (i = 0; i < PQntuples(r); i++)
		queue_report_sent_add(o, pg_int(r, i, 0), pg_text(r, i, 1),
		    (json_int_t)pg_int(r, i, 2));
	PQclear(r);
	return o;
}

/* No TLS: delivered in plaintext, or failed for want of STARTTLS
 * (RPT_NOTLS): at, domain, msgid, plain. */
#define FLEET_NOTLS                                                          \
	"(SELECT at, " FLEET_RCPT_DOMAIN                                     \
	" AS d, msgid, 1 AS plain " FLEET_ATTEMPTS " AND " FLEET_PLAIN       \
	" AND " FLEET_DELIVERED " UNION ALL SELECT at, " FLEET_RCPT_DOMAIN   \
	" AS d, msgid, "                                                     \
	"0 AS plain " FLEET_ATTEMPTS " AND " FLEET_FAILED " AND " FLEET_F_RT \
	" = 'starttls-not-supported') AS nt"

static int
fleet_report_notls_series(
    struct pg *p, const struct queue_report_period *per, json_t *o)
{
	json_t *doms, *msgs;
	PGresult *r;
	int i;

	doms = queue_report_zeros(queue_report_nbuckets(per));
	msgs = queue_report_zeros(queue_report_nbuckets(per));
	json_object_set_new(o, "domains", doms);
	json_object_set_new(o, "messages", msgs);
	r = fleet_report_query(p,
	    FLEET_PARAMS "SELECT (at - $3) / $4 AS b, count(DISTINCT d), "
	                 "count(DISTINCT msgid) FROM " FLEET_NOTLS
	                 " GROUP BY b",
	    per);
	if (r == NULL)
		return -1;
	for (i = 0; i < PQntuples(r); i++) {
		queue_report_bucket_add(
		    doms, pg_int(r, i, 0), (json_int_t)pg_int(r, i, 1));
		queue_report_bucket_add(
		    msgs, pg_int(r, i, 0), (json_int_t)pg_int(r, i, 2));
	}
	PQclear(r);
	return 0;
}

static int
fleet_report_notls_table(
    struct pg *p, const struct queue_report_period *per, json_t *o)
{
	json_t *table = json_array();
	PGresult *r;
	int i;

	json_object_set_new(o, "table", table);
	r = fleet_report_query(p,
	    FLEET_PARAMS "SELECT d, count(DISTINCT msgid), sum(plain), "
	                 "sum(1 - plain), max(at), count(*) OVER () "
	                 "FROM " FLEET_NOTLS
	                 " GROUP BY d ORDER BY 5 DESC, d NULLS FIRST LIMIT $5",
	    per);
	if (r == NULL)
		return -1;
	/* count(*) OVER (): the domains before the limit. */
	json_object_set_new(
	    o, "total", json_integer(PQntuples(r) > 0 ? pg_int(r, 0, 5) : 0));
	for (i = 0; i < PQntuples(r); i++) {
		if (json_array_size(table) == QUEUE_REPORT_MAX_ROWS) {
			json_object_set_new(o, "truncated", json_true());
			break;
		}
		json_array_append_new(
		    table, fleet_report_row(r, i, 0, queue_report_notls_cols));
	}
	PQclear(r);
	return 0;
}

static json_t *
fleet_report_notls(struct pg *p, const struct queue_report_period *per)
{
	json_t *o = json_object();

	if (fleet_report_notls_series(p, per, o) == -1 ||
	    fleet_report_notls_table(p, per, o) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
fleet_report_parts(
    struct pg *p, const struct queue_report_period *per, json_t *out)
{
	bool cut = false;

	if (queue_report_put(
	        out, "period", fleet_report_period_json(p, per, true)) == -1 ||
	    queue_report_put(
	        out, "blocked", fleet_report_blocked(p, per, &cut)) == -1 ||
	    queue_report_put(out, "sent", fleet_report_sent(p, per)) == -1 ||
	    queue_report_put(out, "no_tls", fleet_report_notls(p, per)) == -1)
		return -1;
	queue_report_cut(out, "blocked_truncated", cut);
	return 0;
}

json_t *
fleet_report_run(struct pg *p, const struct queue_report_period *per,
    fleet_report_parts_fn *fn)
{
	json_t *out = json_object();

	/* One snapshot: every part sees the same events of every node. */
	if (pg_ready(p) == -1 ||
	    pg_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
	        NULL) == -1) {
		json_decref(out);
		return NULL;
	}
	if (fn(p, per, out) == -1) {
		pg_rollback(p);
		json_decref(out);
		return NULL;
	}
	pg_rollback(p); /* read only: nothing to commit */
	return out;
}

json_t *
fleet_report(struct pg *p, const struct queue_report_period *per)
{
	return fleet_report_run(p, per, fleet_report_parts);
}

/* The overview's last hour, by the report's definitions
 * (queue_count_outcomes). */
int
fleet_count_outcomes(struct pg *p, time_t since, struct queue_outcomes *c)
{
	char v[PG_INT_LEN];
	const char *args[1];
	PGresult *r;

	memset(c, 0, sizeof(*c));
	if (pg_ready(p) == -1)
		return -1;
	args[0] = pg_itoa((long long)since, v);
	r = pg_query(p,
	    "SELECT count(DISTINCT CASE WHEN " FLEET_DELIVERED
	    " THEN msgid || ' ' || addr END), "
	    "count(DISTINCT CASE WHEN " FLEET_BLOCKED
	    " THEN msgid || ' ' || addr END) "
	    "FROM dr_events WHERE type = 'attempt' AND at >= $1::bigint",
	    1, args);
	if (r == NULL)
		return -1;
	c->delivered = (uint64_t)pg_int(r, 0, 0);
	c->blocked = (uint64_t)pg_int(r, 0, 1);
	PQclear(r);
	return 0;
}
