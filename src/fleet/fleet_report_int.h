/*
 * fleet_report_int.h: what the fleet's report (fleet_report.c) and its
 * log-only impact (fleet_report_impact.c) share. Private to src/fleet/.
 */
#ifndef DR_FLEET_REPORT_INT_H
#define DR_FLEET_REPORT_INT_H

#include <stdbool.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "queue/queue_report.h"
#include "queue/queue_report_json.h"

struct pg;

/*
 * Run sql (which starts with FLEET_PARAMS) with the period's five
 * parameters. Returns the result (PQclear) or NULL (pg_error).
 */
PGresult *fleet_report_query(
    struct pg *p, const char *sql, const struct queue_report_period *per);

/* An object with one member per entry of cols from the columns first,
 * first + 1, ... of row i. Returns new. */
json_t *fleet_report_row(
    const PGresult *r, int i, int first, const struct queue_report_col *cols);

/* The period object (queue_report_period_new) with data_since from every
 * node's events. NULL on error. */
json_t *fleet_report_period_json(
    struct pg *p, const struct queue_report_period *per, bool buckets);

/* Turns columns 2, 3 and 4 of an error row into its JSON object. */
typedef json_t *fleet_report_error_fn(const PGresult *r, int i);

/* queue_report_domains() over the fleet. NULL on error. */
json_t *fleet_report_domains(struct pg *p,
    const struct queue_report_period *per, const char *where, const char *sec,
    const char *errcols, fleet_report_error_fn *errfn, bool *truncated);

/* Fill out with the parts of a report; 0 or -1. */
typedef int fleet_report_parts_fn(
    struct pg *p, const struct queue_report_period *per, json_t *out);

/* fn in one read-only snapshot of the database. Returns new or NULL. */
json_t *fleet_report_run(struct pg *p, const struct queue_report_period *per,
    fleet_report_parts_fn *fn);

#endif
