/*
 * console_page_tlsrpt: /tlsrpt, the TLS reports (RFC 8460) we sent and
 * those we received.
 *
 * Sent: per UTC day and policy domain the session counts per policy and
 * the delivery state of the report to each rua destination (sent, pending,
 * failed, with the last note), from the console's own connection to the
 * TLS-RPT store through tlsrpt_sent_days() (with [fleet] postgres the
 * fleet's sums and outbox, console_fleet_tlsrpt_days). Received: the
 * directory or maildir of [tlsrpt] received, added up per sender, policy
 * and day by tlsrpt_inbox_scan() (the code of `danerelay tlsrpt
 * received`), with the
 * reports whose totals disagree with their failure details flagged.
 *
 * GET arguments: days (1-31, default 7), dir (a directory under the
 * configured one; anything that does not resolve inside it, through ".."
 * or a symbolic link, is refused: the browser never picks what the relay
 * reads).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "console/console_core.h"
#include "console/console_fleet.h"
#include "console/console_int.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_inbox.h"
#include "tlsrpt/tlsrpt_sent.h"

#define TP_DAYS_DEFAULT 7
#define TP_DAYS_MAX     31

static const char *
tp_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static long long
tp_int(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* ---- sent ------------------------------------------------------------------
 */

static int
tp_days(struct console_req *r)
{
	const char *a = console_arg(r, "days");
	uint64_t n;

	if (a == NULL || str_to_uint(a, 1, TP_DAYS_MAX, &n) == -1)
		return TP_DAYS_DEFAULT;
	return (int)n;
}

/* "tlsa 5 ok / 1 failed; no-policy-found 1 ok / 0 failed" */
static void
tp_policies(struct console_req *r, const json_t *dom)
{
	const json_t *p;
	size_t i;

	json_array_foreach(json_object_get(dom, "policies"), i, p)
	{
		console_printf(r, "%s<span class=\"tp-pol\">", i ? "<br>" : "");
		console_text(r, tp_str(p, "policy-type"));
		console_printf(r, ": %lld successful, %lld failed</span>",
		    tp_int(p, "successful"), tp_int(p, "failed"));
	}
}

/* What a domain without destinations is waiting for. */
static const char *
tp_no_destination(const json_t *dom, bool today)
{
	if (json_is_true(json_object_get(dom, "done")))
		return "no report wanted (no usable _smtp._tls record)";
	if (today)
		return "the day is not over";
	return "waiting for the daily run";
}

/* <td class="cls">text</td>, the text escaped; cls one of ours or NULL. */
static void
tp_td(struct console_req *r, const char *cls, const char *text)
{
	if (cls != NULL)
		console_printf(r, "<td class=\"%s\">", cls);
	else
		console_printf(r, "<td>");
	console_text(r, text);
	console_printf(r, "</td>");
}

static void
tp_dest_cells(struct console_req *r, const json_t *d)
{
	char t[CONSOLE_TIME_LEN];
	const char *st = tp_str(d, "state");

	tp_td(r, "tp-uri", tp_str(d, "uri"));
	console_printf(r, "<td class=\"tp-state tp-%s %s\">",
	    strcmp(st, "sent") == 0        ? "sent" :
	        strcmp(st, "failed") == 0  ? "failed" :
	        strcmp(st, "pending") == 0 ? "pending" :
	                                     "other",
	    strcmp(st, "sent") == 0       ? "ok" :
	        strcmp(st, "failed") == 0 ? "bad" :
	                                    "warn");
	console_text(r, st);
	console_printf(
	    r, "</td><td class=\"num\">%lld</td><td>", tp_int(d, "attempts"));
	if (tp_int(d, "first-attempt") > 0)
		console_text(
		    r, console_time((time_t)tp_int(d, "first-attempt"), t));
	console_printf(r, "</td>");
	tp_td(r, "tp-note", tp_str(d, "note"));
}

/* One domain of one day: a row per destination (at least one row). */
static void
tp_sent_domain(
    struct console_req *r, const char *day, const json_t *dom, bool today)
{
	const json_t *dests = json_object_get(dom, "destinations"), *d;
	size_t i, n = json_array_size(dests);

	for (i = 0; i < (n > 0 ? n : 1); i++) {
		console_printf(r, "<tr class=\"tp-sent-row\" data-domain=\"");
		console_text(r, tp_str(dom, "domain"));
		console_printf(r, "\" data-day=\"");
		console_text(r, day);
		console_printf(r, "\">");
		if (i == 0) {
			console_printf(r, "<td rowspan=\"%zu\">", n ? n : 1);
			console_text(r, day);
			console_printf(
			    r, "</td><td rowspan=\"%zu\">", n ? n : 1);
			console_text(r, tp_str(dom, "domain"));
			console_printf(
			    r, "</td><td rowspan=\"%zu\">", n ? n : 1);
			tp_policies(r, dom);
			console_printf(r, "</td>");
		}
		if (n == 0) {
			console_printf(r,
			    "<td colspan=\"5\" class=\"tp-state tp-none muted\">");
			console_text(r, tp_no_destination(dom, today));
			console_printf(r, "</td>");
		} else {
			d = json_array_get(dests, i);
			tp_dest_cells(r, d);
		}
		console_printf(r, "</tr>\n");
	}
}

static void
tp_sent(struct console_req *r, time_t now)
{
	struct tlsrpt_store *s = console_tlsrpt(r);
	const json_t *day, *dom;
	const char *err = NULL;
	json_t *days;
	size_t i, j, rows = 0;
	int ndays = tp_days(r);

	console_printf(r,
	    "<h2 id=\"sent\">Reports we sent</h2>\n<p>The last %d UTC days: "
	    "per policy domain the sessions we counted under each policy "
	    "and where the day's report went (RFC 8460 §4, §5).</p>\n",
	    ndays);
	if (s == NULL && r->con->fleet == NULL) {
		console_printf(r,
		    "<p class=\"tp-empty notice\">No TLS-RPT store: recording is "
		    "off (<code>[tlsrpt] enabled = no</code>) or the store "
		    "could not be opened.</p>\n");
		return;
	}
	/* With [fleet] postgres: the fleet's reports (console_fleet.c). */
	if ((days = console_fleet_tlsrpt_days(r, s, now, ndays, &err)) ==
	    NULL) {
		console_printf(r, "<p class=\"tp-error error\">");
		console_text(r, err);
		console_printf(r, ".</p>\n");
		return;
	}
	console_printf(r,
	    "<table id=\"tp-sent\"><thead><tr><th>Day</th><th>Policy "
	    "domain</th><th>Sessions per policy</th><th>Destination "
	    "(rua)</th><th>Status</th><th class=\"num\">Attempts</th><th>First "
	    "attempt</th><th>Last note</th></tr></thead><tbody>\n");
	json_array_foreach(days, i, day)
	{
		json_array_foreach(json_object_get(day, "domains"), j, dom)
		{
			tp_sent_domain(r, tp_str(day, "day"), dom, i == 0);
			rows++;
		}
	}
	if (rows == 0)
		console_printf(r,
		    "<tr><td colspan=\"8\" class=\"tp-empty notice\">No sessions "
		    "recorded in these days.</td></tr>\n");
	console_printf(r, "</tbody></table>\n");
	json_decref(days);
}

/* ---- received --------------------------------------------------------------
 */

/*
 * The directory to read: the configured one, or the dir argument when it
 * resolves (realpath: "..", symbolic links) to it or below it. New string,
 * or NULL with *why set (static text).
 */
static char *
tp_dir(struct console_req *r, const char *base, const char **why)
{
	const char *arg = console_arg(r, "dir");
	char rb[PATH_MAX], ra[PATH_MAX], *want;
	size_t n;

	if (realpath(base, rb) == NULL) {
		*why = "the configured directory cannot be opened";
		return NULL;
	}
	if (arg == NULL || *arg == '\0')
		return xstrdup(rb);
	want = arg[0] == '/' ? xstrdup(arg) : xasprintf("%s/%s", rb, arg);
	/* One answer for "missing" and "elsewhere": the page does not tell
	 * which paths exist outside the configured directory. */
	*why = "not a directory under [tlsrpt] received";
	n = strlen(rb);
	if (realpath(want, ra) == NULL || strncmp(ra, rb, n) != 0 ||
	    (ra[n] != '\0' && ra[n] != '/' && strcmp(rb, "/") != 0)) {
		free(want);
		return NULL;
	}
	free(want);
	return xstrdup(ra);
}

static void
tp_failures(struct console_req *r, const json_t *failures)
{
	const char *rt;
	json_t *n;
	bool first = true;

	json_object_foreach((json_t *)(uintptr_t)failures, rt, n)
	{
		console_printf(
		    r, "%s<span class=\"tp-rt\">", first ? "" : "<br>");
		console_text(r, rt);
		console_printf(
		    r, ": %lld</span>", (long long)json_integer_value(n));
		first = false;
	}
}

static void
tp_row(struct console_req *r, const json_t *row, bool first_of_sender)
{
	bool flag = tp_int(row, "inconsistent") > 0;

	console_printf(
	    r, "<tr class=\"tp-recv%s\">", flag ? " tp-inconsistent" : "");
	tp_td(r, "tp-sender", first_of_sender ? tp_str(row, "sender") : "");
	tp_td(r, NULL, tp_str(row, "day"));
	tp_td(r, "tp-type", tp_str(row, "policy-type"));
	tp_td(r, "tp-domain", tp_str(row, "policy-domain"));
	console_printf(r,
	    "<td class=\"num\">%lld</td><td class=\"num tp-ok\">%lld"
	    "</td><td class=\"num tp-failed\">%lld</td><td>",
	    tp_int(row, "reports"), tp_int(row, "successful"),
	    tp_int(row, "failed"));
	tp_failures(r, json_object_get(row, "failures"));
	console_printf(r, "</td><td class=\"tp-flag bad\">");
	if (flag)
		console_printf(r,
		    "<strong>inconsistent</strong> (%lld report%s)",
		    tp_int(row, "inconsistent"),
		    tp_int(row, "inconsistent") == 1 ? "" : "s");
	console_printf(r, "</td></tr>\n");
}

static void
tp_rows(struct console_req *r, const json_t *doc)
{
	const json_t *row;
	const char *last = NULL;
	size_t i;

	console_printf(r,
	    "<h3>Per sender and policy</h3>\n<p>An <code>sts</code> and a "
	    "<code>tlsa</code> policy of one domain are shown apart and "
	    "never added up: a sender may list the same sessions under each "
	    "(RFC 8460 §4).</p>\n<table id=\"tp-recv\"><thead><tr>"
	    "<th>Sender</th><th>Day</th><th>Policy</th><th>Policy "
	    "domain</th><th class=\"num\">Reports</th><th class=\"num\">"
	    "Successful</th><th class=\"num\">Failed</th>"
	    "<th>Failures by result type</th><th>Flag</th></tr></thead>"
	    "<tbody>\n");
	json_array_foreach(json_object_get(doc, "rows"), i, row)
	{
		tp_row(r, row,
		    last == NULL || strcmp(last, tp_str(row, "sender")) != 0);
		last = tp_str(row, "sender");
	}
	if (json_array_size(json_object_get(doc, "rows")) == 0)
		console_printf(r,
		    "<tr><td colspan=\"9\" class=\"tp-empty notice\">"
		    "No reports in this directory.</td></tr>\n");
	console_printf(r, "</tbody></table>\n");
}

static void
tp_flagged(struct console_req *r, const json_t *doc)
{
	const json_t *f;
	size_t i;

	if (json_array_size(json_object_get(doc, "inconsistent")) == 0)
		return;
	console_printf(r,
	    "<h3>Inconsistent reports</h3>\n<p class=\"tp-warning error\">These "
	    "reports give a policy a total-failure-session-count that is "
	    "not the sum of its failure-details' failed-session-count "
	    "(RFC 8460 §4.4): their failure counts cannot both be "
	    "right.</p>\n<table id=\"tp-flagged\"><thead><tr><th>File</th>"
	    "<th>Sender</th><th>Report-id</th><th>Day</th><th>Policy</th>"
	    "<th class=\"num\">Total failed</th><th class=\"num\">Failure "
	    "details add up to</th></tr>"
	    "</thead><tbody>\n");
	json_array_foreach(json_object_get(doc, "inconsistent"), i, f)
	{
		console_printf(r, "<tr class=\"tp-inconsistent\">");
		tp_td(r, NULL, tp_str(f, "file"));
		tp_td(r, NULL, tp_str(f, "sender"));
		tp_td(r, NULL, tp_str(f, "report-id"));
		tp_td(r, NULL, tp_str(f, "day"));
		console_printf(r, "<td>");
		console_textf(r, "%s %s", tp_str(f, "policy-type"),
		    tp_str(f, "policy-domain"));
		console_printf(r,
		    "</td><td class=\"num\">%lld</td><td class=\"num\">%lld"
		    "</td></tr>\n",
		    tp_int(f, "failed"), tp_int(f, "failure-details-sessions"));
	}
	console_printf(r, "</tbody></table>\n");
}

static void
tp_skipped(struct console_req *r, const json_t *doc)
{
	const json_t *s;
	size_t i;

	if (tp_int(doc, "nskipped") == 0)
		return;
	console_printf(r,
	    "<details id=\"tp-skipped\"><summary>%lld file%s not "
	    "counted</summary><ul>\n",
	    tp_int(doc, "nskipped"), tp_int(doc, "nskipped") == 1 ? "" : "s");
	json_array_foreach(json_object_get(doc, "skipped"), i, s)
	{
		console_printf(r, "<li><code>");
		console_text(r, tp_str(s, "file"));
		console_printf(r, "</code>: ");
		console_text(r, tp_str(s, "reason"));
		console_printf(r, "</li>\n");
	}
	console_printf(r, "</ul></details>\n");
}

/* The directory form (GET: it only reads). */
static void
tp_form(struct console_req *r, const char *base, const char *dir)
{
	console_printf(r,
	    "<form class=\"filters\" method=\"get\" "
	    "action=\"/tlsrpt\">"
	    "<label>Directory under <code>");
	console_text(r, base);
	console_printf(r, "</code>: <input name=\"dir\" value=\"");
	console_text(r, dir);
	console_printf(
	    r, "\"></label> <button type=\"submit\">Show</button></form>\n");
}

static void
tp_received(struct console_req *r)
{
	const char *base = conf_str(console_conf(r), CONF_TLSRPT_RECEIVED);
	const char *why = NULL;
	struct tlsrpt_inbox *b;
	const json_t *doc;
	char *dir, *err = NULL;

	console_printf(r, "<h2 id=\"received\">Reports we received</h2>\n");
	if (base == NULL) {
		console_printf(r,
		    "<p class=\"tp-empty notice\">Set <code>[tlsrpt] received</code> "
		    "to the directory or maildir where the reports for your "
		    "<code>rua=mailto:</code> address are delivered "
		    "(docs/TLSRPT.md).</p>\n");
		return;
	}
	if ((dir = tp_dir(r, base, &why)) == NULL) {
		console_printf(r, "<p class=\"tp-error error\">");
		console_textf(r, "%s: %s",
		    console_arg(r, "dir") != NULL ? console_arg(r, "dir") :
		                                    base,
		    why);
		console_printf(r, "</p>\n");
		tp_form(r, base, "");
		return;
	}
	tp_form(r, base,
	    console_arg(r, "dir") != NULL ? console_arg(r, "dir") : "");
	if ((b = tlsrpt_inbox_scan(dir, &err)) == NULL) {
		console_printf(r, "<p class=\"tp-error error\">");
		console_text(r, err);
		console_printf(r, "</p>\n");
		free(err);
		free(dir);
		return;
	}
	doc = tlsrpt_inbox_json(b);
	console_printf(r, "<p id=\"tp-scan\">");
	console_text(r, dir);
	console_printf(r,
	    "%s: %lld files, %lld reports, %lld not counted%s</p>\n",
	    json_is_true(json_object_get(doc, "maildir")) ? " (maildir)" : "",
	    tp_int(doc, "files"), tp_int(doc, "reports"),
	    tp_int(doc, "nskipped"),
	    json_is_true(json_object_get(doc, "truncated")) ?
	        " (the scan stopped at its cap: more files were not read)" :
	        "");
	tp_flagged(r, doc);
	tp_rows(r, doc);
	tp_skipped(r, doc);
	tlsrpt_inbox_free(b);
	free(dir);
}

void console_page_tlsrpt(struct console_req *r);

void
console_page_tlsrpt(struct console_req *r)
{
	console_begin(r, "TLS reports", false);
	tp_sent(r, time(NULL));
	tp_received(r);
	console_end(r);
}
