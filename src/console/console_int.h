/*
 * console_int: what a page of the console sees (private to src/console/).
 *
 * CONTRACT (issue 11): the core (console.c, console_http.c, console_auth.c,
 * console_html.c) implements these; each page is one file
 * console_page_<name>.c with one or two handlers listed in the route table
 * (console_route.c). A handler reads its arguments, asks the stores, and
 * writes HTML through the helpers below; it never writes a byte of text
 * that is not escaped (console_text*), except literal markup of its own.
 *
 * Everything here runs on the console thread. The stores are the console's
 * own connections (opened at start, closed at stop).
 */
#ifndef DR_CONSOLE_INT_H
#define DR_CONSOLE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "core/log.h"

struct conf;
struct console_req;
struct queue;
struct tlsrpt_store;
struct event_base;

typedef void console_page_fn(struct console_req *r);

/*
 * One row of the route table (console_route.c): an exact path ("/report")
 * or a prefix ending in '/' ("/trace/" serves /trace/ID, the rest given by
 * console_rest()). get answers GET and HEAD; post, if any, answers POST,
 * which the core lets through only with a valid session (when logins are
 * required) and a valid CSRF token (always), so a post handler never
 * checks either. nav: the title in the navigation bar, or NULL for a page
 * that is not listed there.
 */
struct console_page {
	const char *path;
	const char *nav;
	console_page_fn *get;
	console_page_fn *post;
};
extern const struct console_page console_pages[]; /* ends with a NULL path */

/* --- the request --- */

/* A query-string (GET) or form (POST, application/x-www-form-urlencoded)
 * argument, decoded; NULL if absent. Borrowed for the request. */
const char *console_arg(struct console_req *r, const char *name);

/* Every value of a repeated argument (checkboxes "id=1&id=2"); *n set.
 * Borrowed array of borrowed strings. */
const char *const *console_args(
    struct console_req *r, const char *name, size_t *n);

/* What follows a prefix route's path ("/trace/ABC" -> "ABC"), decoded. */
const char *console_rest(struct console_req *r);

/* The logged-in user, or "" when no login is required (loopback). */
const char *console_user(struct console_req *r);

/* --- what the console owns (borrowed for the request) --- */
const struct conf *console_conf(struct console_req *r);
struct queue *console_queue(struct console_req *r);
struct tlsrpt_store *console_tlsrpt(struct console_req *r); /* or NULL */
struct event_base *console_base(struct console_req *r);

/* --- the answer --- */

/* The page layout up to the content: <head>, stylesheet, navigation (the
 * current page marked), <h1>title</h1>. charts: load Chart.js and the
 * console's chart script (see console_chart()). */
void console_begin(struct console_req *r, const char *title, bool charts);

/* Literal markup of the page's own (no data in fmt's arguments unless
 * they are numbers). */
void console_printf(struct console_req *r, const char *fmt, ...)
    DR_PRINTF(2, 3);

/* Text from data: HTML-escaped (& < > " '). */
void console_text(struct console_req *r, const char *s);
void console_textf(struct console_req *r, const char *fmt, ...) DR_PRINTF(2, 3);

/* A link whose query values are URL-encoded: href = path + "?" + pairs
 * (NULL-terminated list of name, value); text escaped. */
void console_link(
    struct console_req *r, const char *text, const char *path, ...);

/*
 * A chart: <canvas> plus the data as an inert
 * <script type="application/json"> that the console's script turns into a
 * Chart.js chart. spec: {"type": "line"|"bar", "labels": [...],
 * "datasets": [{"label": ..., "data": [...]}], "stacked": bool}.
 * Borrowed. The page must have begun with charts = true.
 */
void console_chart(struct console_req *r, const char *id, const json_t *spec);

/* <input type="hidden" name="csrf" value="..."> for a form of this
 * session (every form that POSTs must include it). */
void console_csrf_input(struct console_req *r);

/* Close the layout and send 200. May be called later, from a callback on
 * console_base() (a page that waits, e.g. /check); the request stays valid
 * until then. */
void console_end(struct console_req *r);

/* Instead of a page: a JSON body (200), a redirect (303, after a POST),
 * or an error page with code (400, 403, 404, 405, 500) and a text. */
void console_json(struct console_req *r, const json_t *body);
void console_redirect(struct console_req *r, const char *location);
void console_fail(struct console_req *r, int code, const char *text);

/* --- small shared helpers --- */

/* The period argument "period" of /report and /impact: "1h", "1d", "7d",
 * "30d" (default "1d"); *since = now - length, *bucket = a time-series
 * step that gives some 24-60 points. Returns the canonical name. */
const char *console_period(
    struct console_req *r, time_t now, time_t *since, time_t *bucket);

/* t as "2026-12-07 10:42:05Z" (UTC). */
#define CONSOLE_TIME_LEN 24
const char *console_time(time_t t, char buf[CONSOLE_TIME_LEN]);

#endif
