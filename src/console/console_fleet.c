/*
 * console_fleet: the fleet's database or this node's queue, for the
 * console's reading pages (console_fleet.h).
 */
#include "console/console_fleet.h"

#include <stdio.h>

#include "console/console_core.h"
#include "console/console_int.h"
#include "fleet/fleet.h"
#include "fleet/fleet_read.h"
#include "pg/pg.h"
#include "queue/queue.h"
#include "queue/queue_report.h"
#include "queue/queue_trace.h"
#include "fleet/fleet_tlsrpt.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_sent.h"

bool
console_fleet_used(const struct console_req *r)
{
	return r->fleet_used;
}

void
console_fleet_banner(struct console_req *r)
{
	if (!r->fleet_down || r->fleet_banner || !r->began)
		return;
	r->fleet_banner = true;
	console_printf(r,
	    "<p class=\"error\" id=\"fleet-unreachable\"><strong>Fleet "
	    "database unreachable: this node only.</strong> What follows "
	    "is this node's own trace, not the fleet's (");
	console_text(r, pg_error(r->con->fleet));
	console_printf(r, ").</p>\n");
}

/*
 * After a read of the fleet's database failed: 1 to ask once more (the
 * console's connection was found broken, e.g. by a restart of the
 * database since the last page: pg_ready opens a new one), 0 to read the
 * node's queue instead (the database is away and the node has a queue of
 * its own), -1 to fail with *err.
 */
static int
console_fleet_next(struct console_req *r, int *tries, const char **err)
{
	struct console *con = r->con;

	if (pg_broken(con->fleet) && (*tries)++ == 0)
		return 1;
	if (!pg_broken(con->fleet) || fleet_read_pg_only(con->conf)) {
		snprintf(con->fleet_err, sizeof(con->fleet_err), "%s%s",
		    pg_broken(con->fleet) ? "fleet database unreachable: " : "",
		    pg_error(con->fleet));
		*err = con->fleet_err;
		return -1;
	}
	if (!con->fleet_was_down)
		log_warnx("console: " FLEET_READ_LOCAL_ONLY ": %s",
		    pg_error(con->fleet));
	con->fleet_was_down = true;
	r->fleet_down = true;
	console_fleet_banner(r);
	return 0;
}

/* A fleet read that worked. */
static void
console_fleet_ok(struct console_req *r)
{
	if (r->con->fleet_was_down)
		log_info("console: the fleet database answers again");
	r->con->fleet_was_down = false;
	r->fleet_used = true;
}

json_t *
console_fleet_trace(
    struct console_req *r, const struct queue_trace_filter *f, const char **err)
{
	struct queue *q = console_queue(r);
	int tries = 0, next = 0;
	json_t *tr;

	while (r->con->fleet != NULL) {
		if ((tr = fleet_trace(r->con->fleet, f)) != NULL) {
			console_fleet_ok(r);
			return tr;
		}
		if ((next = console_fleet_next(r, &tries, err)) <= 0)
			break;
	}
	if (next == -1)
		return NULL;
	if ((tr = queue_trace(q, f)) == NULL)
		*err = queue_error(q);
	return tr;
}

json_t *
console_fleet_report(struct console_req *r, const struct queue_report_period *p,
    bool impact, const char **err)
{
	struct queue *q = console_queue(r);
	int tries = 0, next = 0;
	json_t *out;

	while (r->con->fleet != NULL) {
		out = impact ? fleet_report_impact(r->con->fleet, p) :
		               fleet_report(r->con->fleet, p);
		if (out != NULL) {
			console_fleet_ok(r);
			return out;
		}
		if ((next = console_fleet_next(r, &tries, err)) <= 0)
			break;
	}
	if (next == -1)
		return NULL;
	out = impact ? queue_report_impact(q, p) : queue_report(q, p);
	if (out == NULL)
		*err = queue_error(q);
	return out;
}

/* The fleet's days as a store in memory (fleet_tlsrpt_snapshot). */
static json_t *
console_fleet_tlsrpt_pg(struct console_req *r, time_t now, int ndays)
{
	char from[TLSRPT_DAY_LEN], to[TLSRPT_DAY_LEN];
	struct tlsrpt_store *m;
	json_t *days;

	if (tlsrpt_day(now - (time_t)(ndays - 1) * 86400, from) == -1 ||
	    tlsrpt_day(now, to) == -1)
		return NULL;
	if ((m = fleet_tlsrpt_snapshot(r->con->fleet, from, to, NULL)) == NULL)
		return NULL;
	days = tlsrpt_sent_days(m, now, ndays);
	tlsrpt_store_close(m);
	return days;
}

json_t *
console_fleet_tlsrpt_days(struct console_req *r, struct tlsrpt_store *s,
    time_t now, int ndays, const char **err)
{
	int tries = 0, next = 0;
	json_t *days;

	while (r->con->fleet != NULL) {
		if ((days = console_fleet_tlsrpt_pg(r, now, ndays)) != NULL) {
			console_fleet_ok(r);
			return days;
		}
		if ((next = console_fleet_next(r, &tries, err)) <= 0)
			break;
	}
	if (next == -1)
		return NULL;
	*err = "the TLS-RPT store could not be read";
	if (s == NULL)
		return NULL;
	return tlsrpt_sent_days(s, now, ndays);
}

int
console_fleet_outcomes(
    struct console_req *r, time_t since, struct queue_outcomes *o)
{
	int tries = 0, next = 0;
	const char *err;

	while (r->con->fleet != NULL) {
		if (fleet_count_outcomes(r->con->fleet, since, o) == 0) {
			console_fleet_ok(r);
			return 0;
		}
		if ((next = console_fleet_next(r, &tries, &err)) <= 0)
			break;
	}
	if (next == -1)
		return -1;
	return queue_count_outcomes(console_queue(r), since, o);
}
