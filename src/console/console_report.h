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

/* The period of the request's "period" argument (console_period()),
 * ending now. */
void console_report_period(
    struct console_req *r, struct queue_report_period *p);

/* Whether the request asked for the JSON (?format=json): the same object
 * as `danerelay report --json`. */
bool console_report_wants_json(struct console_req *r);

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
