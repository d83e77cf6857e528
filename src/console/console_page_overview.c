/*
 * console_page_overview: "/", the state of the relay at a glance: the
 * queue by state, deliveries and blocks in the last hour, the resolver's
 * DNSSEC self-test, the inbound TLSA guard, the TLS-RPT outbox.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "console/console.h"
#include "console/console_fleet.h"
#include "console/console_int.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "tlsrpt/tlsrpt.h"

void console_page_overview(struct console_req *r);

static void
overview_card(struct console_req *r, const char *label, const char *cls,
    const char *value, const char *note)
{
	console_printf(r, "<div class=\"card\"><div class=\"label\">");
	console_text(r, label);
	console_printf(r, "</div><div class=\"value %s\">", cls);
	console_text(r, value);
	console_printf(r, "</div><div class=\"note\">");
	console_text(r, note);
	console_printf(r, "</div></div>\n");
}

static void
overview_count(struct console_req *r, const char *id, const char *label,
    int64_t n, const char *note)
{
	console_printf(
	    r, "<div class=\"card\" id=\"%s\"><div class=\"label\">", id);
	console_text(r, label);
	if (n < 0)
		console_printf(r, "</div><div class=\"value bad\">?");
	else
		console_printf(
		    r, "</div><div class=\"value\">%lld", (long long)n);
	console_printf(r, "</div><div class=\"note\">");
	console_text(r, note);
	console_printf(r, "</div></div>\n");
}

static void
overview_queue(struct console_req *r, time_t now)
{
	struct queue_counts c;
	bool ok = queue_count_states(console_queue(r), now, &c) == 0;

	console_printf(r, "<h2>Queue</h2><div class=\"cards\">\n");
	overview_count(r, "queue-active", "Active", ok ? (int64_t)c.active : -1,
	    "recipients due now or in delivery");
	overview_count(r, "queue-deferred", "Deferred",
	    ok ? (int64_t)c.deferred : -1, "recipients waiting for a retry");
	overview_count(r, "queue-held", "Held", ok ? (int64_t)c.held : -1,
	    "recipients on hold");
	console_printf(r, "</div>\n");
}

static void
overview_hour(struct console_req *r, time_t now)
{
	struct queue_outcomes o;
	bool ok = console_fleet_outcomes(r, now - 3600, &o) == 0;

	console_printf(r, "<h2>Last hour%s</h2><div class=\"cards\">\n",
	    console_fleet_used(r) ? ", every node" : "");
	overview_count(r, "hour-delivered", "Delivered",
	    ok ? (int64_t)o.delivered : -1, "recipients");
	overview_count(r, "hour-blocked", "Blocked",
	    ok ? (int64_t)o.blocked : -1,
	    "recipients deferred or bounced by DANE or MTA-STS");
	console_printf(r, "</div><p>");
	console_link(r, "Transit security report", "/report", "period", "1h",
	    (const char *)NULL);
	console_printf(r, "</p>\n");
}

/* Today's and yesterday's reports (those of a day go out after it). */
struct overview_outbox {
	int pending, done, failed;
};

static void
overview_outbox_cb(const struct tlsrpt_out *o, void *arg)
{
	struct overview_outbox *b = arg;

	if (o->state == TLSRPT_OUT_PENDING)
		b->pending++;
	else if (o->state == TLSRPT_OUT_DONE)
		b->done++;
	else
		b->failed++;
}

static void
overview_tlsrpt(struct console_req *r, time_t now)
{
	struct tlsrpt_store *s = console_tlsrpt(r);
	struct overview_outbox b = { 0, 0, 0 };
	char day[16], note[96];
	struct tm tm;
	time_t t;
	int i, rc = 0;

	if (s == NULL) {
		overview_card(r, "TLS-RPT outbox", "muted", "off",
		    "[tlsrpt] enabled = no");
		return;
	}
	for (i = 0; i < 2 && rc != -1; i++) {
		t = now - i * 86400;
		gmtime_r(&t, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		rc = tlsrpt_outbox_list(s, day, overview_outbox_cb, &b);
	}
	snprintf(note, sizeof(note), "%d sent, %d failed (today and yesterday)",
	    b.done, b.failed);
	if (rc == -1) {
		overview_card(
		    r, "TLS-RPT outbox", "bad", "?", tlsrpt_store_error(s));
		return;
	}
	console_printf(r,
	    "<div class=\"card\" id=\"tlsrpt-outbox\"><div "
	    "class=\"label\">TLS-RPT outbox</div><div class=\"value%s\">%d "
	    "pending</div><div class=\"note\">",
	    b.failed > 0 ? " warn" : "", b.pending);
	console_text(r, note);
	console_printf(r, "</div></div>\n");
}

static void
overview_health(struct console_req *r, time_t now)
{
	bool dnssec = metrics_dnssec_selftest_ok();
	enum console_guard g = console_guard_get();

	console_printf(r, "<h2>Health</h2><div class=\"cards\">\n");
	console_printf(r, "<div class=\"card\" id=\"dnssec\">");
	console_printf(r,
	    "<div class=\"label\">DNSSEC self-test</div><div "
	    "class=\"value %s\">%s</div><div class=\"note\">%s</div></div>\n",
	    dnssec ? "ok" : "bad", dnssec ? "validating" : "failing",
	    dnssec ? "the resolver validates the root" :
	             "deliveries are deferred 4.4.3 until it validates");
	console_printf(r, "<div class=\"card\" id=\"tlsa-guard\">");
	console_printf(r,
	    "<div class=\"label\">Inbound TLSA guard</div><div "
	    "class=\"value %s\">%s</div><div class=\"note\">",
	    g == CONSOLE_GUARD_MATCH   ? "ok" :
	        g == CONSOLE_GUARD_OFF ? "warn" :
	                                 "muted",
	    g == CONSOLE_GUARD_MATCH   ? "matching" :
	        g == CONSOLE_GUARD_OFF ? "off" :
	                                 "idle");
	console_text(r, console_guard_str(g));
	console_printf(r, "</div></div>\n");
	overview_tlsrpt(r, now);
	console_printf(r, "</div>\n");
}

void
console_page_overview(struct console_req *r)
{
	time_t now = time(NULL);

	console_begin(r, "Overview", false);
	overview_queue(r, now);
	overview_hour(r, now);
	overview_health(r, now);
	console_end(r);
}
