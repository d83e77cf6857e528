/*
 * metrics: the registry's updates (metrics.h). The delivery loop, the SMTP
 * server and the TLS-RPT sender call these on the main thread; the console
 * renders from its own thread. Each update is one or two relaxed atomic
 * additions (a counter needs no ordering with anything else), so the
 * delivery loop never waits; the only compare-and-swap claims a new
 * {security,status} pair, at most METRICS_PAIRS times per counter.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"
#include "metrics/metrics_int.h"

struct metrics_reg metrics_reg;

const char *const metrics_security[METRICS_NSEC] = { "dane", "dane_trusted",
	"sts", "tls", "plaintext" };
const char *const metrics_tlsrpt_result[METRICS_NTLSRPT] = { "sent", "failed" };
/* Mail waits minutes to days, not milliseconds: a second up to a day. */
const unsigned metrics_bound[METRICS_NBOUND] = { 1, 5, 15, 60, 300, 900, 3600,
	14400, 86400 };

static int
metrics_index(const char *s, const char *const *names, unsigned n)
{
	unsigned i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* One to three digits (RFC 3463 subject and detail); advances *p. */
static int
metrics_digits(const char **p, unsigned *v)
{
	unsigned n = 0;

	*v = 0;
	while (**p >= '0' && **p <= '9' && n < 3) {
		*v = *v * 10 + (unsigned)(**p - '0');
		(*p)++;
		n++;
	}
	return n == 0 ? -1 : 0;
}

/*
 * RFC 3463 §2: class "." subject "." detail, class 2, 4 or 5, subject and
 * detail 1-3 digits. Packed with the security index into a nonzero key;
 * 0 when status is not such a code.
 */
static uint64_t
metrics_key(unsigned sec, const char *status)
{
	const char *p = status;
	unsigned cls, subj, detail;

	if (p == NULL || (*p != '2' && *p != '4' && *p != '5'))
		return 0;
	cls = (unsigned)(*p++ - '0');
	if (*p++ != '.' || metrics_digits(&p, &subj) == -1 || *p++ != '.' ||
	    metrics_digits(&p, &detail) == -1 || *p != '\0')
		return 0;
	return (uint64_t)(sec + 1) << 32 | (uint64_t)cls << 24 |
	    (uint64_t)subj << 12 | detail;
}

void
metrics_key_split(uint64_t key, unsigned *sec, char status[METRICS_STATUS_LEN])
{
	*sec = (unsigned)(key >> 32) - 1;
	snprintf(status, METRICS_STATUS_LEN, "%u.%u.%u",
	    (unsigned)(key >> 24 & 0xf), (unsigned)(key >> 12 & 0xfff),
	    (unsigned)(key & 0xfff));
}

static void
metrics_pair_add(
    struct metrics_pairs *t, const char *security, const char *status)
{
	int sec = metrics_index(security, metrics_security, METRICS_NSEC);
	uint64_t key, seen;
	unsigned i;

	if (sec < 0)
		return; /* not a security class: a caller's bug, not a label */
	if ((key = metrics_key((unsigned)sec, status)) != 0) {
		for (i = 0; i < METRICS_PAIRS; i++) {
			seen = atomic_load_explicit(
			    &t->key[i], memory_order_acquire);
			if (seen == 0 &&
			    atomic_compare_exchange_strong_explicit(&t->key[i],
			        &seen, key, memory_order_acq_rel,
			        memory_order_acquire))
				seen = key;
			if (seen == key) {
				atomic_fetch_add_explicit(
				    &t->n[i], 1, memory_order_relaxed);
				return;
			}
		}
	}
	/* Full, or not a status code: bounded, never a new series. */
	atomic_fetch_add_explicit(&t->other[sec], 1, memory_order_relaxed);
}

void
metrics_delivered(const char *security, double seconds)
{
	int sec = metrics_index(security, metrics_security, METRICS_NSEC);
	unsigned i;

	if (sec < 0)
		return;
	if (!(seconds > 0)) /* a clock stepped back, or NaN */
		seconds = 0;
	for (i = 0; i < METRICS_NBOUND && seconds > metrics_bound[i]; i++)
		;
	atomic_fetch_add_explicit(
	    &metrics_reg.delivered[sec], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &metrics_reg.bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_reg.sum_ms,
	    (uint64_t)(seconds * 1000.0 + 0.5), memory_order_relaxed);
}

void
metrics_blocked(const char *security, const char *status)
{
	metrics_pair_add(&metrics_reg.blocked, security, status);
}

void
metrics_would_block(const char *security, const char *status)
{
	metrics_pair_add(&metrics_reg.would, security, status);
}

void
metrics_tlsrpt_reports(const char *result, unsigned n)
{
	int k = metrics_index(result, metrics_tlsrpt_result, METRICS_NTLSRPT);

	if (k >= 0 && n > 0)
		atomic_fetch_add_explicit(
		    &metrics_reg.tlsrpt[k], n, memory_order_relaxed);
}

void
metrics_tlsrpt_report(const char *result)
{
	metrics_tlsrpt_reports(result, 1);
}

void
metrics_inbound_session(int delta)
{
	atomic_fetch_add_explicit(
	    &metrics_reg.inbound, delta, memory_order_relaxed);
}

int64_t
metrics_inbound_sessions(void)
{
	return atomic_load_explicit(&metrics_reg.inbound, memory_order_relaxed);
}

void
metrics_dnssec_selftest(bool ok)
{
	atomic_store_explicit(
	    &metrics_reg.selftest_ok, ok ? 1 : 0, memory_order_relaxed);
}

bool
metrics_dnssec_selftest_ok(void)
{
	return atomic_load_explicit(
	           &metrics_reg.selftest_ok, memory_order_relaxed) != 0;
}

void
metrics_fleet(bool db_up, uint64_t backlog)
{
	atomic_store_explicit(
	    &metrics_reg.fleet_backlog, backlog, memory_order_relaxed);
	atomic_store_explicit(
	    &metrics_reg.fleet, db_up ? 2 : 1, memory_order_relaxed);
}

void
metrics_init(void)
{
	atomic_store_explicit(
	    &metrics_reg.start, (int64_t)time(NULL), memory_order_relaxed);
}

static void
metrics_pairs_reset(struct metrics_pairs *t)
{
	unsigned i;

	for (i = 0; i < METRICS_PAIRS; i++) {
		atomic_store(&t->key[i], 0);
		atomic_store(&t->n[i], 0);
	}
	for (i = 0; i < METRICS_NSEC; i++)
		atomic_store(&t->other[i], 0);
}

void
metrics_reset(void)
{
	unsigned i;

	for (i = 0; i < METRICS_NSEC; i++)
		atomic_store(&metrics_reg.delivered[i], 0);
	for (i = 0; i <= METRICS_NBOUND; i++)
		atomic_store(&metrics_reg.bucket[i], 0);
	atomic_store(&metrics_reg.sum_ms, 0);
	metrics_pairs_reset(&metrics_reg.blocked);
	metrics_pairs_reset(&metrics_reg.would);
	for (i = 0; i < METRICS_NTLSRPT; i++)
		atomic_store(&metrics_reg.tlsrpt[i], 0);
	atomic_store(&metrics_reg.inbound, 0);
	atomic_store(&metrics_reg.selftest_ok, 0);
	atomic_store(&metrics_reg.start, 0);
	atomic_store(&metrics_reg.fleet, 0);
	atomic_store(&metrics_reg.fleet_backlog, 0);
}
