/*
 * queue_report_impact: the log-only analysis. In log-only mode an attempt
 * that DANE or MTA-STS would have stopped is made anyway and its trace
 * event carries would_fail ("TYPE (STATUS)") and would_fail_text; this
 * counts those domains and messages against all the period's attempts, so
 * that an administrator sees what switching [policy] mode to enforce would
 * block before doing it (docs/CONSOLE.md, /impact).
 */
#include "queue/queue_report_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

/* The requirement that would have blocked: MTA-STS when its policy
 * governed the host, else DANE (deliver_job.c sets "policy"). */
#define RPT_WOULD_SECURITY \
	"CASE WHEN " RPT_F("policy") " = 'mta-sts' THEN 'sts' ELSE 'dane' END"

/* The columns 2 and 3 of a would-block row: would_fail and its text. */
static json_t *
queue_report_would_error_row(sqlite3_stmt *st)
{
	return queue_report_would_error(
	    (const char *)sqlite3_column_text(st, 2),
	    (const char *)sqlite3_column_text(st, 3));
}

/* Distinct domains, messages and recipients of the attempts (and where). */
static json_t *
queue_report_count(
    struct queue *q, const struct queue_report_period *p, const char *where)
{
	sqlite3_stmt *st;
	json_t *o = NULL;
	char *sql;
	int rc;

	sql = xasprintf("SELECT count(DISTINCT " RPT_DOMAIN "), "
	                "count(DISTINCT msgid), count(DISTINCT msgid || ' ' || "
	                "addr) " RPT_ATTEMPTS "%s%s",
	    where != NULL ? " AND " : "", where != NULL ? where : "");
	st = queue_report_prepare(q, sql, p);
	free(sql);
	if (st == NULL)
		return NULL;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		o = queue_report_row(st, 0, queue_report_counts_cols);
	else
		queue_fail(q, "report"); /* before finalize: keep its text */
	sqlite3_finalize(st);
	return o;
}

static int
queue_report_impact_parts(
    struct queue *q, const struct queue_report_period *p, json_t *out)
{
	bool cut = false;

	if (queue_report_put(
	        out, "period", queue_report_period_json(q, p, false)) == -1 ||
	    queue_report_put(out, "totals", queue_report_count(q, p, NULL)) ==
	        -1 ||
	    queue_report_put(out, "would_block",
	        queue_report_count(q, p, RPT_WOULD_BLOCK)) == -1)
		return -1;
	queue_report_shares(json_object_get(out, "would_block"),
	    json_object_get(out, "totals"));
	if (queue_report_put(out, "domains",
	        queue_report_domains(q, p, RPT_WOULD_BLOCK, RPT_WOULD_SECURITY,
	            RPT_F("would_fail") ", " RPT_F("would_fail_text") ", NULL",
	            queue_report_would_error_row, &cut)) == -1)
		return -1;
	queue_report_cut(out, "domains_truncated", cut);
	return 0;
}

json_t *
queue_report_impact(struct queue *q, const struct queue_report_period *p)
{
	return queue_report_run(q, p, queue_report_impact_parts);
}
