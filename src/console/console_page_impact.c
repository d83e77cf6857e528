/*
 * console_page_impact: /impact, the log-only analysis, the page to read
 * before switching [policy] mode to enforce: the recipient domains and
 * messages that enforcement would have blocked in the period (attempts
 * whose trace event has would_fail), as counts and as a share of all the
 * domains and messages attempted, and each such domain with its failure
 * and a link to the analyzer (/check). The numbers come from
 * queue_report_impact(), the function behind `danerelay report --impact`;
 * ?format=json answers with its JSON. docs/CONSOLE.md says what each
 * number means.
 */
#include "console/console_int.h"
#include "console/console_report.h"
#include "queue/queue_report.h"

/* A share as people read it (0.00023 %, 12.5 %, 100 %) and its counts. */
static void
impact_share(struct console_req *r, const char *label, const json_t *out,
    const char *key)
{
	const json_t *w = json_object_get(out, "would_block");
	char id[32], pkey[32], pct[64], note[96];

	snprintf(id, sizeof(id), "share-%s", key);
	snprintf(pkey, sizeof(pkey), "%s_percent", key);
	snprintf(pct, sizeof(pct), "%.3g %%",
	    json_real_value(json_object_get(w, pkey)));
	snprintf(note, sizeof(note), "%lld of %lld would have been blocked",
	    (long long)json_integer_value(json_object_get(w, key)),
	    (long long)json_integer_value(
	        json_object_get(json_object_get(out, "totals"), key)));
	console_report_card(r, id, label, pct, note);
}

static void
impact_summary(struct console_req *r, const json_t *out)
{
	const json_t *w = json_object_get(out, "would_block");
	const json_t *tot = json_object_get(out, "totals");
	char v[32], note[64];

	console_printf(r,
	    "<p>In log-only mode ([policy] mode = log-only, or a domain's "
	    "mode) the relay delivers what DANE or MTA-STS would have "
	    "stopped and records the failure with the attempt. These are "
	    "the recipient domains and messages of the period that "
	    "enforcement would have deferred, against all those attempted. "
	    "A domain whose MTA-STS policy is in testing mode is listed too: "
	    "its failures are recorded the same way.</p>"
	    "<div class=\"cards\">");
	impact_share(r, "Recipient domains", out, "domains");
	impact_share(r, "Messages", out, "messages");
	snprintf(v, sizeof(v), "%lld",
	    (long long)json_integer_value(json_object_get(w, "recipients")));
	snprintf(note, sizeof(note), "of %lld attempted",
	    (long long)json_integer_value(json_object_get(tot, "recipients")));
	console_report_card(r, "would-recipients", "Recipients", v, note);
	console_printf(r, "</div>");
}

static void
impact_table(struct console_req *r, const json_t *out)
{
	const json_t *rows = json_object_get(out, "domains");

	console_printf(r, "<h2>Domains that would be blocked</h2>");
	if (json_array_size(rows) == 0) {
		console_printf(r,
		    "<p class=\"empty\">None: no attempt in this "
		    "period recorded a failure that enforcement "
		    "would have turned into a deferral.</p>");
		return;
	}
	console_report_domains(r, "impact", rows, "Failure (newest first)",
	    true, json_is_true(json_object_get(out, "domains_truncated")));
}

/* The route table's entry point (console_route.c). */
void console_page_impact(struct console_req *r);

void
console_page_impact(struct console_req *r)
{
	json_t *out;

	if ((out = console_report_get(r, true)) == NULL)
		return;
	console_begin(r, "Enforcement impact", false);
	console_report_header(r, "/impact", out);
	impact_summary(r, out);
	impact_table(r, out);
	json_decref(out);
	console_end(r);
}
