/*
 * console_report: what the /report and /impact pages share: the period
 * (from the "period" argument), the period chooser, the time-series
 * labels, times and error lists as the pages show them, and ?format=json.
 * Private to src/console/.
 */
#ifndef DR_CONSOLE_REPORT_H
#define DR_CONSOLE_REPORT_H

#include <stdbool.h>

#include <jansson.h>

#include "console/console_int.h"

struct queue_report_period;

/*
 * The report (impact: the log-only analysis) for the request's period
 * ("period" argument, console_period(), ending now), of the fleet or of
 * this node (console_fleet.h). Returns it (new) for the page to show,
 * or NULL when the request is answered already: with the JSON itself
 * (?format=json: the object of `danerelay report --json`) or with an
 * error.
 */
json_t *console_report_get(struct console_req *r, bool impact);

/*
 * The table of domains of the report (rows: [{domain, security, messages,
 * recipients, errors}]) with the id given, errors under the column title
 * errtitle, and a link to the analyzer on each row when analyze; a note
 * when the store cut the list (truncated).
 */
void console_report_domains(struct console_req *r, const char *id,
    const json_t *rows, const char *errtitle, bool analyze, bool truncated);

/* The period chooser (links to path?period=...; the current one marked)
 * and what the report covers, from out's "period". */
void console_report_header(
    struct console_req *r, const char *path, const json_t *out);

/* The time-series labels for out's period.buckets ("14:00", "12-07
 * 06:00" or "12-07" by the step). Returns new. */
json_t *console_report_labels(const json_t *out);

/* An ISO 8601 time of the report as the console writes times. */
const char *console_report_time(const char *iso, char buf[CONSOLE_TIME_LEN]);

/* A list of distinct errors [{status, result_type, text, count, last}]. */
void console_report_errors(struct console_req *r, const json_t *errors);

/* A figure in the console's card style: label, value, note (texts). */
void console_report_card(struct console_req *r, const char *id,
    const char *label, const char *value, const char *note);

/* "DANE" or "MTA-STS" for a security type "dane" / "sts". */
const char *console_report_requirement(const char *security);

#endif
