/*
 * console_report: the pieces /report and /impact share (console_report.h):
 * the period chooser, labels and times as the pages write them, the list
 * of distinct errors, and the JSON answer.
 */
#include "console/console_report.h"

#include <string.h>

#include "console/console_fleet.h"
#include "queue/queue.h"
#include "queue/queue_report.h"

json_t *
console_report_get(struct console_req *r, bool impact)
{
	struct queue_report_period p;
	const char *format = console_arg(r, "format");
	time_t now = time(NULL);
	const char *err = NULL;
	json_t *out;

	p.name = console_period(r, now, &p.since, &p.step);
	p.until = now + 1; /* this second too */
	if (p.step <= 0)
		p.step = 3600;
	if ((out = console_fleet_report(r, &p, impact, &err)) == NULL) {
		console_fail(r, 500, err);
		return NULL;
	}
	if (format != NULL && strcmp(format, "json") == 0) {
		console_json(r, out);
		json_decref(out);
		return NULL;
	}
	return out;
}

const char *
console_report_time(const char *iso, char buf[CONSOLE_TIME_LEN])
{
	char *t;

	snprintf(buf, CONSOLE_TIME_LEN, "%s", iso != NULL ? iso : "");
	if ((t = strchr(buf, 'T')) != NULL)
		*t = ' ';
	return buf;
}

void
console_report_header(
    struct console_req *r, const char *path, const json_t *out)
{
	static const struct {
		const char *name, *label;
	} periods[] = {
		{ "1h", "Last hour" },
		{ "1d", "Last day" },
		{ "7d", "Last 7 days" },
		{ "30d", "Last 30 days" },
	};
	const json_t *p = json_object_get(out, "period");
	const char *cur = json_string_value(json_object_get(p, "name"));
	char t[CONSOLE_TIME_LEN];
	size_t i;

	console_printf(r, "<nav class=\"periods\">Period:");
	for (i = 0; i < sizeof(periods) / sizeof(periods[0]); i++)
		console_printf(r,
		    " <a href=\"%s?period=%s\" id=\"period-%s\"%s>%s</a>", path,
		    periods[i].name, periods[i].name,
		    cur != NULL && strcmp(cur, periods[i].name) == 0 ?
		        " class=\"current\" aria-current=\"page\"" :
		        "",
		    periods[i].label);
	console_printf(r, "</nav><p class=\"covered\">From ");
	console_text(r,
	    console_report_time(
	        json_string_value(json_object_get(p, "since")), t));
	console_printf(r, " to ");
	console_text(r,
	    console_report_time(
	        json_string_value(json_object_get(p, "until")), t));
	console_printf(r, ".");
	/* A young queue (or a shorter history) covers less: say so. */
	if (json_is_string(json_object_get(p, "data_since"))) {
		console_printf(r, " The queue holds events since ");
		console_text(r,
		    console_report_time(
		        json_string_value(json_object_get(p, "data_since")),
		        t));
		console_printf(r, ".");
	}
	console_printf(r, "</p>");
}

json_t *
console_report_labels(const json_t *out)
{
	const json_t *p = json_object_get(out, "period"), *b;
	json_int_t step = json_integer_value(json_object_get(p, "step"));
	json_t *labels = json_array();
	const char *iso;
	char buf[16];
	size_t i;

	json_array_foreach(json_object_get(p, "buckets"), i, b)
	{
		/* 2026-12-07T14:00:00Z: 14:00, 12-07 14:00 or 12-07. */
		iso = json_string_value(b);
		if (iso == NULL || strlen(iso) < 16)
			snprintf(buf, sizeof(buf), "?");
		else if (step < 3600 ||
		    (step == 3600 &&
		        json_array_size(json_object_get(p, "buckets")) <= 25))
			snprintf(buf, sizeof(buf), "%.5s", iso + 11);
		else if (step < 86400)
			snprintf(
			    buf, sizeof(buf), "%.5s %.5s", iso + 5, iso + 11);
		else
			snprintf(buf, sizeof(buf), "%.5s", iso + 5);
		json_array_append_new(labels, json_string(buf));
	}
	return labels;
}

void
console_report_card(struct console_req *r, const char *id, const char *label,
    const char *value, const char *note)
{
	console_printf(r, "<div class=\"card\" id=\"");
	console_text(r, id);
	console_printf(r, "\"><div class=\"label\">");
	console_text(r, label);
	console_printf(r, "</div><div class=\"value\">");
	console_text(r, value);
	console_printf(r, "</div><div class=\"note\">");
	console_text(r, note);
	console_printf(r, "</div></div>");
}

const char *
console_report_requirement(const char *security)
{
	if (security != NULL && strcmp(security, "sts") == 0)
		return "MTA-STS";
	return "DANE";
}

/* A member's string, or "" (or dflt) when it is null or absent. */
static const char *
console_report_str(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : dflt;
}

static void
console_report_error(struct console_req *r, const json_t *e)
{
	char t[CONSOLE_TIME_LEN];

	console_printf(r, "<li><code class=\"status\">");
	console_text(r, console_report_str(e, "status", "-"));
	console_printf(r, "</code> <code class=\"rt\">");
	console_text(r, console_report_str(e, "result_type", "-"));
	console_printf(r, "</code> <span class=\"text\">");
	console_text(r, console_report_str(e, "text", ""));
	console_printf(r,
	    "</span> <span class=\"count\">&times;%lld</span>, "
	    "last ",
	    (long long)json_integer_value(json_object_get(e, "count")));
	console_text(
	    r, console_report_time(console_report_str(e, "last", ""), t));
	console_printf(r, "</li>");
}

void
console_report_errors(struct console_req *r, const json_t *errors)
{
	const json_t *e;
	size_t i;

	console_printf(r, "<ul class=\"errors\">");
	json_array_foreach(errors, i, e) console_report_error(r, e);
	console_printf(r, "</ul>");
}

/* Over the fleet: the nodes whose attempts a row counts. */
static void
console_report_nodes(struct console_req *r, const json_t *nodes)
{
	const json_t *n;
	size_t i;

	console_printf(r, "</td><td class=\"nodes\">");
	json_array_foreach(nodes, i, n)
	{
		if (i > 0)
			console_printf(r, ", ");
		console_text(r, json_is_string(n) ? json_string_value(n) : "?");
	}
}

static void
console_report_domain_row(struct console_req *r, const json_t *d, bool analyze)
{
	const char *domain = console_report_str(d, "domain", "");

	console_printf(r, "<tr><td class=\"domain\">");
	console_link(r, domain, "/trace", "domain", domain, NULL);
	console_printf(r, "</td><td>");
	console_text(r,
	    console_report_requirement(console_report_str(d, "security", "")));
	console_printf(r,
	    "</td><td class=\"num messages\">%lld</td>"
	    "<td class=\"num\">%lld</td><td>",
	    (long long)json_integer_value(json_object_get(d, "messages")),
	    (long long)json_integer_value(json_object_get(d, "recipients")));
	console_report_errors(r, json_object_get(d, "errors"));
	if (analyze) {
		console_printf(r, "</td><td class=\"analyze\">");
		console_link(r, "Analyze", "/check", "domain", domain, NULL);
	}
	if (console_fleet_used(r))
		console_report_nodes(r, json_object_get(d, "nodes"));
	console_printf(r, "</td></tr>");
}

void
console_report_domains(struct console_req *r, const char *id,
    const json_t *rows, const char *errtitle, bool analyze, bool truncated)
{
	const json_t *d;
	size_t i;

	console_printf(r, "<table id=\"");
	console_text(r, id);
	console_printf(r,
	    "\" class=\"sortable\"><thead><tr><th>Recipient domain</th>"
	    "<th>Security</th><th>Messages</th><th>Recipients</th><th>");
	console_text(r, errtitle);
	console_printf(r, "</th>%s%s</tr></thead><tbody>",
	    analyze ? "<th>Analyzer</th>" : "",
	    console_fleet_used(r) ? "<th>Nodes</th>" : "");
	json_array_foreach(rows, i, d)
	{
		console_report_domain_row(r, d, analyze);
	}
	console_printf(r, "</tbody></table>");
	if (truncated)
		console_printf(r,
		    "<p>Only the first %d domains are listed.</p>",
		    QUEUE_REPORT_MAX_ROWS);
}
