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
	json_t *period, *totals, *would, *domains;
	bool cut = false;

	if ((period = fleet_report_period_json(p, per, false)) == NULL)
		return -1;
	json_object_set_new(out, "period", period);
	if ((totals = fleet_report_count(p, per, NULL)) == NULL)
		return -1;
	json_object_set_new(out, "totals", totals);
	if ((would = fleet_report_count(p, per, FLEET_WOULD_BLOCK)) == NULL)
		return -1;
	json_object_set_new(out, "would_block", would);
	queue_report_shares(would, totals);
	domains = fleet_report_domains(p, per, FLEET_WOULD_BLOCK,
	    FLEET_WOULD_SECURITY,
	    FLEET_F("would_fail") ", " FLEET_F("would_fail_text") ", NULL",
	    fleet_report_would_error, &cut);
	if (domains == NULL)
		return -1;
	json_object_set_new(out, "domains", domains);
	if (cut)
		json_object_set_new(out, "domains_truncated", json_true());
	return 0;
}

json_t *
fleet_report_impact(struct pg *p, const struct queue_report_period *per)
{
	return fleet_report_run(p, per, fleet_report_impact_parts);
}
