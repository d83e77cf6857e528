/*
 * metrics_render: the registry in the Prometheus text exposition format,
 * version 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/):
 * for each metric a "# HELP" and a "# TYPE" line, then one sample per
 * line, label values escaped (\\, \", \n). Names follow the Prometheus
 * conventions: a "danerelay_" prefix, base units (seconds), counters
 * ending in "_total". Every fixed label value (the five security classes,
 * the queue states, the TLS-RPT results) is always present, 0 included,
 * so a query for a class that never happened is 0, not "no data".
 *
 * Runs on the console's thread, reading atomics the delivery loop writes:
 * each value is read once, and the histogram's cumulative buckets and
 * count are computed from one snapshot so they always agree.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "metrics/metrics.h"
#include "metrics/metrics_int.h"
#include "metrics/metrics_version.h"

int
metrics_label_value(struct buf *out, const char *v)
{
	int rc = 0;

	for (; *v != '\0' && rc == 0; v++) {
		if (*v == '\\')
			rc = buf_adds(out, "\\\\");
		else if (*v == '"')
			rc = buf_adds(out, "\\\"");
		else if (*v == '\n')
			rc = buf_adds(out, "\\n");
		else
			rc = buf_addc(out, *v);
	}
	return rc;
}

static int
render_head(
    struct buf *out, const char *name, const char *type, const char *help)
{
	return buf_printf(
	    out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value"} n */
static int
render_labelled(struct buf *out, const char *name, const char *label,
    const char *value, uint64_t n)
{
	if (buf_printf(out, "%s{%s=\"", name, label) == -1 ||
	    metrics_label_value(out, value) == -1)
		return -1;
	return buf_printf(out, "\"} %" PRIu64 "\n", n);
}

/* One counter with one label whose values are fixed: every value shown. */
struct render_set {
	const char *name, *help, *label;
	const char *const *values;
	_Atomic uint64_t *n;
	unsigned count;
};

static int
render_set(struct buf *out, const struct render_set *c)
{
	unsigned i;
	int rc;

	rc = render_head(out, c->name, "counter", c->help);
	for (i = 0; i < c->count && rc == 0; i++)
		rc = render_labelled(out, c->name, c->label, c->values[i],
		    atomic_load_explicit(&c->n[i], memory_order_relaxed));
	return rc;
}

static int
render_deliveries(struct buf *out)
{
	const struct render_set c = { "danerelay_deliveries_total",
		"Recipients delivered, by the security the delivery had: dane, "
		"dane_trusted (DANE over an insecure MX RRset), sts, tls "
		"(unauthenticated), plaintext.",
		"security", metrics_security, metrics_reg.delivered,
		METRICS_NSEC };

	return render_set(out, &c);
}

static int
render_cmp_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
render_pair(struct buf *out, const char *name, const char *sec,
    const char *status, uint64_t n)
{
	if (buf_printf(out, "%s{security=\"", name) == -1 ||
	    metrics_label_value(out, sec) == -1 ||
	    buf_adds(out, "\",status=\"") == -1 ||
	    metrics_label_value(out, status) == -1)
		return -1;
	return buf_printf(out, "\"} %" PRIu64 "\n", n);
}

/* The pairs of t in key order (stable output), then the "other" rows. */
static int
render_pairs(struct buf *out, const char *name, struct metrics_pairs *t)
{
	uint64_t keys[METRICS_PAIRS][2], n;
	char status[METRICS_STATUS_LEN];
	unsigned i, k = 0, sec;
	int rc = 0;

	for (i = 0; i < METRICS_PAIRS; i++) {
		keys[k][0] =
		    atomic_load_explicit(&t->key[i], memory_order_acquire);
		keys[k][1] = i;
		if (keys[k][0] != 0)
			k++;
	}
	qsort(keys, k, sizeof(keys[0]), render_cmp_key);
	for (i = 0; i < k && rc == 0; i++) {
		metrics_key_split(keys[i][0], &sec, status);
		rc = render_pair(out, name, metrics_security[sec], status,
		    atomic_load_explicit(
		        &t->n[keys[i][1]], memory_order_relaxed));
	}
	for (i = 0; i < METRICS_NSEC && rc == 0; i++)
		if ((n = atomic_load_explicit(
		         &t->other[i], memory_order_relaxed)) > 0)
			rc = render_pair(
			    out, name, metrics_security[i], "other", n);
	return rc;
}

static int
render_blocks(struct buf *out)
{
	if (render_head(out, "danerelay_blocked_total", "counter",
	        "Recipient attempts deferred or bounced because a DANE or "
	        "MTA-STS requirement failed, by security (dane, sts) and "
	        "enhanced status code (4.7.323, ...).") == -1 ||
	    render_pairs(
	        out, "danerelay_blocked_total", &metrics_reg.blocked) == -1)
		return -1;
	if (render_head(out, "danerelay_would_block_total", "counter",
	        "Log-only mode: recipient attempts that enforcement would "
	        "have blocked, by security and enhanced status code.") == -1)
		return -1;
	return render_pairs(
	    out, "danerelay_would_block_total", &metrics_reg.would);
}

static int
render_queue(struct buf *out, const struct metrics_queue *q)
{
	const char *name = "danerelay_queue_messages";
	struct metrics_queue none = { 0, 0, 0 };

	if (q == NULL)
		q = &none;
	if (render_head(out, name, "gauge",
	        "Recipients in the queue, by state: active (due now or being "
	        "attempted), deferred (waiting for a retry), held (on hold "
	        "by the operator).") == -1 ||
	    render_labelled(out, name, "state", "active", q->active) == -1 ||
	    render_labelled(out, name, "state", "deferred", q->deferred) == -1)
		return -1;
	return render_labelled(out, name, "state", "held", q->held);
}

static int
render_latency(struct buf *out)
{
	const char *name = "danerelay_delivery_latency_seconds";
	uint64_t b[METRICS_NBOUND + 1], cum = 0;
	uint64_t ms =
	    atomic_load_explicit(&metrics_reg.sum_ms, memory_order_relaxed);
	unsigned i;
	int rc;

	for (i = 0; i <= METRICS_NBOUND; i++)
		b[i] = atomic_load_explicit(
		    &metrics_reg.bucket[i], memory_order_relaxed);
	rc = render_head(out, name, "histogram",
	    "Seconds from acceptance to delivery, per recipient delivered.");
	for (i = 0; i < METRICS_NBOUND && rc == 0; i++) {
		cum += b[i];
		rc = buf_printf(out, "%s_bucket{le=\"%u\"} %" PRIu64 "\n", name,
		    metrics_bound[i], cum);
	}
	cum += b[METRICS_NBOUND];
	if (rc == 0)
		rc = buf_printf(out,
		    "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n"
		    "%s_sum %" PRIu64 ".%03" PRIu64 "\n"
		    "%s_count %" PRIu64 "\n",
		    name, cum, name, ms / 1000, ms % 1000, name, cum);
	return rc;
}

static int
render_tlsrpt(struct buf *out)
{
	const struct render_set c = { "danerelay_tlsrpt_reports_total",
		"TLS-RPT reports (RFC 8460) per destination: sent (mail queued "
		"or HTTPS POST accepted) or failed (given up).",
		"result", metrics_tlsrpt_result, metrics_reg.tlsrpt,
		METRICS_NTLSRPT };

	return render_set(out, &c);
}

static int
render_gauges(struct buf *out)
{
	int64_t start =
	    atomic_load_explicit(&metrics_reg.start, memory_order_relaxed);

	if (render_head(out, "danerelay_dnssec_selftest_ok", "gauge",
	        "1 when the resolver's DNSSEC validation self-test passes "
	        "(deliveries run), else 0.") == -1 ||
	    buf_printf(out, "danerelay_dnssec_selftest_ok %d\n",
	        metrics_dnssec_selftest_ok() ? 1 : 0) == -1 ||
	    render_head(out, "danerelay_inbound_sessions", "gauge",
	        "Inbound SMTP sessions open now.") == -1 ||
	    buf_printf(out, "danerelay_inbound_sessions %" PRId64 "\n",
	        metrics_inbound_sessions()) == -1 ||
	    render_head(out, "danerelay_build_info", "gauge",
	        "Always 1; the version of danerelay is a label.") == -1 ||
	    render_labelled(out, "danerelay_build_info", "version",
	        METRICS_VERSION, 1) == -1)
		return -1;
	if (start == 0)
		return 0; /* not a daemon (tests): no start time to tell */
	if (render_head(out, "danerelay_start_time_seconds", "gauge",
	        "When the relay started, seconds since the Unix epoch.") == -1)
		return -1;
	return buf_printf(
	    out, "danerelay_start_time_seconds %" PRId64 "\n", start);
}

/* The fleet's copying thread, when there is one (metrics_fleet). */
static int
render_fleet(struct buf *out)
{
	int fleet =
	    atomic_load_explicit(&metrics_reg.fleet, memory_order_relaxed);

	if (fleet == 0)
		return 0;
	if (render_head(out, "danerelay_fleet_db_up", "gauge",
	        "1 when the last copy to the fleet's PostgreSQL database "
	        "succeeded, else 0.") == -1 ||
	    buf_printf(out, "danerelay_fleet_db_up %d\n", fleet == 2) == -1 ||
	    render_head(out, "danerelay_fleet_backlog_events", "gauge",
	        "Trace events of this node's queue not yet copied to the "
	        "fleet database.") == -1)
		return -1;
	return buf_printf(out, "danerelay_fleet_backlog_events %" PRIu64 "\n",
	    atomic_load_explicit(
	        &metrics_reg.fleet_backlog, memory_order_relaxed));
}

int
metrics_render(struct buf *out, const struct metrics_queue *q)
{
	if (render_deliveries(out) == -1 || render_blocks(out) == -1 ||
	    render_latency(out) == -1 || render_queue(out, q) == -1 ||
	    render_tlsrpt(out) == -1 || render_gauges(out) == -1 ||
	    render_fleet(out) == -1)
		return -1;
	return 0;
}
