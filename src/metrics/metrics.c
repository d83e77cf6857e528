/*
 * metrics: a minimal registry so that the console core builds and serves
 * /metrics (the metrics helper replaces this file with the full one).
 */
#include "metrics/metrics.h"

#include <stdatomic.h>

#include "core/buf.h"

static atomic_uint_fast64_t metrics_delivered_n, metrics_blocked_n,
    metrics_would_block_n;
static atomic_bool metrics_dnssec_ok;

void
metrics_delivered(const char *security, double seconds)
{
	atomic_fetch_add(&metrics_delivered_n, 1);
}

void
metrics_blocked(const char *security, const char *status)
{
	atomic_fetch_add(&metrics_blocked_n, 1);
}

void
metrics_would_block(const char *security, const char *status)
{
	atomic_fetch_add(&metrics_would_block_n, 1);
}

void
metrics_tlsrpt_report(const char *result)
{
}

void
metrics_inbound_session(int delta)
{
}

void
metrics_dnssec_selftest(bool ok)
{
	atomic_store(&metrics_dnssec_ok, ok);
}

bool
metrics_dnssec_selftest_ok(void)
{
	return atomic_load(&metrics_dnssec_ok);
}

int
metrics_render(struct buf *out, const struct metrics_queue *q)
{
	int rc = 0;

	rc |= buf_printf(out,
	    "# TYPE danerelay_queue_messages gauge\n"
	    "danerelay_queue_messages{state=\"active\"} %llu\n"
	    "danerelay_queue_messages{state=\"deferred\"} %llu\n"
	    "danerelay_queue_messages{state=\"held\"} %llu\n",
	    (unsigned long long)q->active, (unsigned long long)q->deferred,
	    (unsigned long long)q->held);
	rc |= buf_printf(out,
	    "# TYPE danerelay_dnssec_selftest_ok gauge\n"
	    "danerelay_dnssec_selftest_ok %d\n",
	    metrics_dnssec_selftest_ok() ? 1 : 0);
	return rc == 0 ? 0 : -1;
}

void
metrics_reset(void)
{
	atomic_store(&metrics_delivered_n, 0);
	atomic_store(&metrics_blocked_n, 0);
	atomic_store(&metrics_would_block_n, 0);
	atomic_store(&metrics_dnssec_ok, false);
}
