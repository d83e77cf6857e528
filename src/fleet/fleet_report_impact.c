/*
 * fleet_report_impact: queue_report_impact() over every node (fleet.h):
 * what enforcement would have blocked, from the attempts of log-only
 * mode with would_fail, against all the period's attempts. The rules and
 * the document are queue_report_impact.c's.
 */
#include "fleet/fleet_report_int.h"

#include <stdlib.h>

#include "core/xmalloc.h"
#include "fleet/fleet.h"
#include "fleet/fleet_sql.h"
#include "pg/pg.h"

/* The requirement that would have blocked (RPT_WOULD_SECURITY). */
#define FLEET_WOULD_SECURITY                                           \
	"CASE WHEN " FLEET_F("policy") " = 'mta-sts' THEN 'sts' ELSE " \
	                               "'dane' END"

/* would_fail, its text, and no third column. */
#define FLEET_WOULD_ERRCOLS                                       \
	"(fields->>'would_fail'), (fields->>'would_fail_text'), " \
	"NULL"

static json_t *
fleet_report_would_error(const PGresult *r, int i)
{
	return queue_report_would_error(pg_text(r, i, 2), pg_text(r, i, 3));
}

/* Distinct domains, messages and recipients of the attempts (and where). */
static json_t *
fleet_report_count(
    struct pg *p, const struct queue_report_period *per, const char *where)
{
	PGresult *r;
	json_t *o;
	char *sql;

	sql = xasprintf(FLEET_PARAMS
	    "SELECT count(DISTINCT " FLEET_RCPT_DOMAIN "), "
	    "count(DISTINCT msgid), count(DISTINCT msgid || ' ' || addr) " FLEET_ATTEMPTS
	    "%s%s",
	    where != NULL ? " AND " : "", where != NULL ? where : "");
	r = fleet_report_query(p, sql, per);
	free(sql);
	if (r == NULL)
		return NULL;
	o = fleet_report_row(r, 0, 0, queue_report_counts_cols);
	PQclear(r);
	return o;
}

static int
fleet_report_impact_parts(
    struct pg *p, const struct queue_report_period *per, json_t *out)
{
	bool cut = false;

	if (queue_report_put(
	        out, "period", fleet_report_period_json(p, per, false)) == -1 ||
	    queue_report_put(out, "totals", fleet_report_count(p, per, NULL)) ==
	        -1 ||
	    queue_report_put(out, "would_block",
	        fleet_report_count(p, per, FLEET_WOULD_BLOCK)) == -1)
		return -1;
	queue_report_shares(json_object_get(out, "would_block"),
	    json_object_get(out, "totals"));
	if (queue_report_put(out, "domains",
	        fleet_report_domains(p, per, FLEET_WOULD_BLOCK,
	            FLEET_WOULD_SECURITY, FLEET_WOULD_ERRCOLS,
	            fleet_report_would_error, &cut)) == -1)
		return -1;
	queue_report_cut(out, "domains_truncated", cut);
	return 0;
}

json_t *
fleet_report_impact(struct pg *p, const struct queue_report_period *per)
{
	return fleet_report_run(p, per, fleet_report_impact_parts);
}
