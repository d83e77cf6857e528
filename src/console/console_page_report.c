/*
 * console_page_report: /report, the transit security report (after the
 * Exchange admin center's "Outbound messages in Transit Security"): for
 * the chosen period, the messages blocked by a DANE or MTA-STS requirement
 * (domain, requirement, counts, the distinct errors with their codes and
 * RFC 8460 result types, newest first), the recipients sent per security
 * class as a stacked chart, and the domains that had no TLS as a chart and
 * a table. The numbers come from queue_report(), the function behind
 * `danerelay report`; ?format=json answers with its JSON. docs/CONSOLE.md
 * says what each number means.
 */
#include <string.h>

#include "console/console_int.h"
#include "console/console_report.h"
#include "queue/queue_report.h"

/* The security classes, in the chart's order, with their names. */
static const struct {
	const char *cls, *label, *color;
} report_classes[] = {
	{ "dane", "DANE-verified", "#1e7d45" },
	{ "dane_trusted", "DANE-trusted (insecure MX)", "#16a2b8" },
	{ "sts", "MTA-STS", "#1b6ac9" },
	{ "tls", "Opportunistic TLS", "#d98a00" },
	{ "plaintext", "No TLS", "#b3261e" },
};
#define REPORT_NCLASS (sizeof(report_classes) / sizeof(report_classes[0]))

static void
report_blocked(struct console_req *r, const json_t *out)
{
	const json_t *rows = json_object_get(out, "blocked");

	console_printf(r,
	    "<h2>Messages blocked</h2><p>Deferred or returned "
	    "because a DANE or MTA-STS requirement failed.</p>");
	if (json_array_size(rows) == 0) {
		console_printf(
		    r, "<p class=\"empty\">None in this period.</p>");
		return;
	}
	console_report_domains(r, "blocked", rows, "Errors (newest first)",
	    false, json_is_true(json_object_get(out, "blocked_truncated")));
}

/* The sent chart: one stacked bar per bucket, one dataset per class. */
static void
report_sent(struct console_req *r, const json_t *out, const json_t *labels)
{
	const json_t *sent = json_object_get(out, "sent");
	json_t *spec, *sets;
	size_t i;

	console_printf(r,
	    "<h2>Messages sent, by security</h2><p>Recipients delivered: "
	    "<strong id=\"sent-total\">%lld</strong>.</p>",
	    (long long)json_integer_value(json_object_get(sent, "total")));
	sets = json_array();
	for (i = 0; i < REPORT_NCLASS; i++)
		json_array_append_new(sets,
		    json_pack("{s:s, s:s, s:O}", "label",
		        report_classes[i].label, "color",
		        report_classes[i].color, "data",
		        json_object_get(json_object_get(sent, "series"),
		            report_classes[i].cls)));
	spec = json_pack("{s:s, s:O, s:o, s:b}", "type", "bar", "labels",
	    labels, "datasets", sets, "stacked", 1);
	console_chart(r, "chart-sent", spec);
	json_decref(spec);
	console_printf(r, "<table id=\"sent\"><thead><tr>");
	for (i = 0; i < REPORT_NCLASS; i++) {
		console_printf(r, "<th>");
		console_text(r, report_classes[i].label);
		console_printf(r, "</th>");
	}
	console_printf(r, "</tr></thead><tbody><tr>");
	for (i = 0; i < REPORT_NCLASS; i++)
		console_printf(r,
		    "<td class=\"num\" data-class=\"%s\">%lld</td>",
		    report_classes[i].cls,
		    (long long)json_integer_value(
		        json_object_get(json_object_get(sent, "totals"),
		            report_classes[i].cls)));
	console_printf(r, "</tr></tbody></table>");
}

static void
report_notls_row(struct console_req *r, const json_t *d)
{
	const char *domain = json_string_value(json_object_get(d, "domain"));
	char t[CONSOLE_TIME_LEN];

	console_printf(r, "<tr><td class=\"domain\">");
	console_link(r, domain, "/trace", "domain", domain, NULL);
	console_printf(r,
	    "</td><td class=\"num\">%lld</td><td class=\"num\">%lld</td>"
	    "<td class=\"num\">%lld</td><td>",
	    (long long)json_integer_value(json_object_get(d, "messages")),
	    (long long)json_integer_value(json_object_get(d, "plaintext")),
	    (long long)json_integer_value(json_object_get(d, "failed")));
	console_text(r,
	    console_report_time(
	        json_string_value(json_object_get(d, "last")), t));
	console_printf(r, "</td></tr>");
}

static void
report_notls(struct console_req *r, const json_t *out, const json_t *labels)
{
	const json_t *nt = json_object_get(out, "no_tls"), *d;
	json_t *spec;
	size_t i;

	console_printf(r,
	    "<h2>Domains not supporting TLS</h2><p>Delivered without "
	    "encryption, or not delivered because TLS was required and the "
	    "server offered no STARTTLS: <strong id=\"notls-total\">%lld"
	    "</strong> domains.</p>",
	    (long long)json_integer_value(json_object_get(nt, "total")));
	spec = json_pack("{s:s, s:O, s:[{s:s, s:O}, {s:s, s:O}], s:b}", "type",
	    "line", "labels", labels, "datasets", "label", "Domains", "data",
	    json_object_get(nt, "domains"), "label", "Messages", "data",
	    json_object_get(nt, "messages"), "stacked", 0);
	console_chart(r, "chart-notls", spec);
	json_decref(spec);
	if (json_array_size(json_object_get(nt, "table")) == 0)
		return;
	console_printf(r,
	    "<table id=\"notls\" class=\"sortable\"><thead><tr>"
	    "<th>Recipient domain</th><th>Messages</th><th>Sent in "
	    "plaintext</th><th>Failed (no STARTTLS)</th><th>Last seen</th>"
	    "</tr></thead><tbody>");
	json_array_foreach(json_object_get(nt, "table"), i, d)
	    report_notls_row(r, d);
	console_printf(r, "</tbody></table>");
}

/* The period at a glance: delivered (and how much authenticated), blocked,
 * no TLS. */
static void
report_cards(struct console_req *r, const json_t *out)
{
	const json_t *sent = json_object_get(out, "sent"), *d;
	const json_t *tot = json_object_get(sent, "totals");
	json_int_t all = json_integer_value(json_object_get(sent, "total"));
	json_int_t auth = 0, msgs = 0;
	char v[32], note[96];
	size_t i;

	for (i = 0; i < 3; i++) /* dane, dane_trusted, sts */
		auth += json_integer_value(
		    json_object_get(tot, report_classes[i].cls));
	json_array_foreach(json_object_get(out, "blocked"), i, d) msgs +=
	    json_integer_value(json_object_get(d, "messages"));
	console_printf(r, "<div class=\"cards\">");
	snprintf(v, sizeof(v), "%lld", (long long)all);
	snprintf(note, sizeof(note), "%.3g %% authenticated (DANE or MTA-STS)",
	    all > 0 ? 100.0 * (double)auth / (double)all : 0.0);
	console_report_card(r, "card-sent", "Recipients delivered", v, note);
	snprintf(v, sizeof(v), "%zu",
	    json_array_size(json_object_get(out, "blocked")));
	snprintf(note, sizeof(note), "%lld messages deferred or returned",
	    (long long)msgs);
	console_report_card(r, "card-blocked", "Domains blocked", v, note);
	snprintf(v, sizeof(v), "%lld",
	    (long long)json_integer_value(
	        json_object_get(json_object_get(out, "no_tls"), "total")));
	console_report_card(r, "card-notls", "Domains without TLS", v,
	    "plaintext, or no STARTTLS where TLS was required");
	console_printf(r, "</div>");
}

/* The route table's entry point (console_route.c). */
void console_page_report(struct console_req *r);

void
console_page_report(struct console_req *r)
{
	json_t *out, *labels;

	if ((out = console_report_get(r, false)) == NULL)
		return;
	console_begin(r, "Transit security", true);
	console_report_header(r, "/report", out);
	labels = console_report_labels(out);
	report_cards(r, out);
	report_sent(r, out, labels);
	report_blocked(r, out);
	report_notls(r, out, labels);
	json_decref(labels);
	json_decref(out);
	console_end(r);
}
