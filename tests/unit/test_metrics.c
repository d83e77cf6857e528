/*
 * test_metrics: the metrics registry and its Prometheus text exposition
 * (src/metrics/): counts per label, the five security classes always
 * present, {security,status} pairs (canonical codes, "other" for what is
 * not a code or does not fit the bounded table), label escaping, the
 * latency histogram's cumulative buckets, gauges, a full buffer, exact
 * totals under concurrent updates and renders (the atomics), and that
 * `promtool check metrics` (Prometheus's own linter) accepts the output.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "metrics/metrics.h"
#include "metrics/metrics_int.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define PROMTOOL "/usr/bin/promtool"

/* The rendered exposition (new; caller frees), or NULL. */
static char *
render(const struct metrics_queue *q)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	if (metrics_render(&b, q) == -1) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/*
 * The value of the sample whose name and labels are exactly series
 * ("x_total{security=\"dane\"}"), or -1 when there is no such line.
 */
static long long
sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;
	char *end;
	long long v;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			v = strtoll(p + n + 1, &end, 10);
			return end != p + n + 1 ? v : -1;
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return -1;
}

static void
deliveries_all_classes(void)
{
	static const char *const sec[] = { "dane", "dane_trusted", "sts", "tls",
		"plaintext" };
	char series[128], *t;
	size_t i;

	metrics_reset();
	t = render(NULL);
	T_CHECK(t != NULL);
	for (i = 0; t != NULL && i < NELEM(sec); i++) {
		snprintf(series, sizeof(series),
		    "danerelay_deliveries_total{security=\"%s\"}", sec[i]);
		T_CHECK(sample(t, series) == 0);
	}
	T_CHECK(t != NULL &&
	    strstr(t, "# TYPE danerelay_deliveries_total counter\n") != NULL);
	T_CHECK(t != NULL &&
	    strstr(t, "# HELP danerelay_deliveries_total ") != NULL);
	free(t);
}

static void
deliveries_counted(void)
{
	char *t;

	metrics_reset();
	metrics_delivered("dane", 2);
	metrics_delivered("dane", 3);
	metrics_delivered("dane_trusted", 1);
	metrics_delivered("sts", 1);
	metrics_delivered("plaintext", 1);
	metrics_delivered("bogus", 1); /* not a class: not counted */
	metrics_delivered(NULL, 1);
	t = render(NULL);
	T_CHECK(
	    sample(t, "danerelay_deliveries_total{security=\"dane\"}") == 2);
	T_CHECK(
	    sample(t,
	        "danerelay_deliveries_total{security=\"dane_trusted\"}") == 1);
	T_CHECK(sample(t, "danerelay_deliveries_total{security=\"sts\"}") == 1);
	T_CHECK(sample(t, "danerelay_deliveries_total{security=\"tls\"}") == 0);
	T_CHECK(sample(t,
	            "danerelay_deliveries_total{security=\"plaintext\"}") == 1);
	T_CHECK(strstr(t, "bogus") == NULL);
	T_CHECK(sample(t, "danerelay_delivery_latency_seconds_count") == 5);
	free(t);
}

struct pair_case {
	const char *security, *status;
	const char *series; /* NULL: not counted at all */
};

static const struct pair_case pair_cases[] = {
	{ "dane", "4.7.323",
	    "danerelay_blocked_total{security=\"dane\",status=\"4.7.323\"}" },
	{ "sts", "4.7.5",
	    "danerelay_blocked_total{security=\"sts\",status=\"4.7.5\"}" },
	{ "dane", "5.7.324",
	    "danerelay_blocked_total{security=\"dane\",status=\"5.7.324\"}" },
	/* canonical: no leading zero survives */
	{ "dane", "4.07.0321", NULL },
	{ "dane", "4.7.1000", NULL },
	{ "dane", "3.7.1", NULL },
	{ "dane", "4.7.", NULL },
	{ "dane", "4.7.3\n\"x", NULL },
	{ "dane", NULL, NULL },
	{ "nonsense", "4.7.323", NULL },
};

static void
blocked_pairs(void)
{
	size_t i;
	char *t;

	metrics_reset();
	for (i = 0; i < NELEM(pair_cases); i++)
		metrics_blocked(pair_cases[i].security, pair_cases[i].status);
	metrics_blocked("dane", "4.7.323");
	t = render(NULL);
	T_CHECK(sample(t, pair_cases[0].series) == 2);
	T_CHECK(sample(t, pair_cases[1].series) == 1);
	T_CHECK(sample(t, pair_cases[2].series) == 1);
	/* 4.07.0321 has a 4-digit detail: not a code, so "other" like the
	 * five after it; "nonsense" is not a class and counts nowhere. */
	T_CHECK(sample(t,
	            "danerelay_blocked_total{security=\"dane\","
	            "status=\"other\"}") == 6);
	T_CHECK(strstr(t, "nonsense") == NULL);
	T_CHECK(strstr(t, "\"x") == NULL);
	/* the same code in another counter is another series */
	T_CHECK(strstr(t, "danerelay_would_block_total{") == NULL);
	T_CHECK(
	    strstr(t, "# TYPE danerelay_would_block_total counter\n") != NULL);
	free(t);
}

static void
would_block_pairs(void)
{
	char *t;

	metrics_reset();
	metrics_would_block("dane", "4.7.323");
	metrics_would_block("dane", "4.7.323");
	metrics_would_block("sts", "4.7.5");
	metrics_would_block("plaintext", "4.7.321");
	t = render(NULL);
	T_CHECK(sample(t,
	            "danerelay_would_block_total{security=\"dane\","
	            "status=\"4.7.323\"}") == 2);
	T_CHECK(sample(t,
	            "danerelay_would_block_total{security=\"sts\","
	            "status=\"4.7.5\"}") == 1);
	T_CHECK(sample(t,
	            "danerelay_would_block_total{security=\"plaintext\","
	            "status=\"4.7.321\"}") == 1);
	T_CHECK(strstr(t, "danerelay_blocked_total{") == NULL);
	free(t);
}

/* More distinct pairs than the table holds: the rest is "other". */
static void
pairs_bounded(void)
{
	char status[16], series[128], *t;
	unsigned i, listed = 0;
	const char *p;

	metrics_reset();
	for (i = 0; i < METRICS_PAIRS + 10; i++) {
		snprintf(status, sizeof(status), "4.7.%u", i);
		metrics_blocked("dane", status);
		metrics_blocked("dane", status);
	}
	t = render(NULL);
	for (p = t; (p = strstr(p, "\ndanerelay_blocked_total{")) != NULL; p++)
		listed++;
	T_CHECK(listed == METRICS_PAIRS + 1); /* + the "other" row */
	snprintf(series, sizeof(series),
	    "danerelay_blocked_total{security=\"dane\",status=\"4.7.%u\"}",
	    METRICS_PAIRS - 1);
	T_CHECK(sample(t, series) == 2);
	T_CHECK(sample(t,
	            "danerelay_blocked_total{security=\"dane\","
	            "status=\"other\"}") == 20);
	/* sorted by code: 4.7.2 comes before 4.7.10 */
	T_CHECK(strstr(t, "status=\"4.7.2\"") < strstr(t, "status=\"4.7.10\""));
	free(t);
}

struct esc_case {
	const char *in, *out;
};

static const struct esc_case esc_cases[] = {
	{ "plain", "plain" },
	{ "a\"b", "a\\\"b" },
	{ "a\\b", "a\\\\b" },
	{ "line\nbreak", "line\\nbreak" },
	{ "\\\"\n", "\\\\\\\"\\n" },
	{ "", "" },
};

static void
label_escaping(void)
{
	struct buf b;
	size_t i;

	for (i = 0; i < NELEM(esc_cases); i++) {
		buf_init(&b, 256);
		T_CHECK(metrics_label_value(&b, esc_cases[i].in) == 0);
		T_STREQ(buf_cstr(&b), esc_cases[i].out);
		buf_free(&b);
	}
	buf_init(&b, 3);
	T_CHECK(metrics_label_value(&b, "abc\"") == -1);
	buf_free(&b);
}

struct hist_case {
	const char *le;
	long long n; /* cumulative */
};

static void
histogram_cumulative(void)
{
	static const double lat[] = { 0, 1, 1.5, 5, 59, 61, 3600, 90000, -3 };
	static const struct hist_case want[] = { { "1", 3 }, { "5", 5 },
		{ "15", 5 }, { "60", 6 }, { "300", 7 }, { "900", 7 },
		{ "3600", 8 }, { "14400", 8 }, { "86400", 8 }, { "+Inf", 9 } };
	char series[128], *t;
	size_t i;

	metrics_reset();
	for (i = 0; i < NELEM(lat); i++)
		metrics_delivered("tls", lat[i]);
	t = render(NULL);
	for (i = 0; i < NELEM(want); i++) {
		snprintf(series, sizeof(series),
		    "danerelay_delivery_latency_seconds_bucket{le=\"%s\"}",
		    want[i].le);
		if (sample(t, series) != want[i].n)
			T_FAIL(series);
	}
	T_CHECK(sample(t, "danerelay_delivery_latency_seconds_count") == 9);
	/* 0+1+1.5+5+59+61+3600+90000+0 */
	T_CHECK(strstr(t,
	            "\ndanerelay_delivery_latency_seconds_sum "
	            "93727.500\n") != NULL);
	T_CHECK(strstr(t,
	            "# TYPE danerelay_delivery_latency_seconds "
	            "histogram\n") != NULL);
	free(t);
}

static void
gauges(void)
{
	struct metrics_queue q = { 3, 7, 2 };
	char *t;

	metrics_reset();
	metrics_inbound_session(+1);
	metrics_inbound_session(+1);
	metrics_inbound_session(+1);
	metrics_inbound_session(-1);
	metrics_dnssec_selftest(true);
	metrics_tlsrpt_report("sent");
	metrics_tlsrpt_reports("sent", 2);
	metrics_tlsrpt_report("failed");
	metrics_tlsrpt_report("unknown");
	t = render(&q);
	T_CHECK(sample(t, "danerelay_queue_messages{state=\"active\"}") == 3);
	T_CHECK(sample(t, "danerelay_queue_messages{state=\"deferred\"}") == 7);
	T_CHECK(sample(t, "danerelay_queue_messages{state=\"held\"}") == 2);
	T_CHECK(sample(t, "danerelay_inbound_sessions") == 2);
	T_CHECK(metrics_inbound_sessions() == 2);
	T_CHECK(sample(t, "danerelay_dnssec_selftest_ok") == 1);
	T_CHECK(metrics_dnssec_selftest_ok());
	T_CHECK(
	    sample(t, "danerelay_tlsrpt_reports_total{result=\"sent\"}") == 3);
	T_CHECK(sample(t,
	            "danerelay_tlsrpt_reports_total{result=\"failed\"}") == 1);
	T_CHECK(strstr(t, "unknown") == NULL);
	T_CHECK(strstr(t, "danerelay_build_info{version=\"") != NULL);
	/* not started as a daemon: no start time */
	T_CHECK(strstr(t, "danerelay_start_time_seconds") == NULL);
	free(t);
	metrics_init();
	t = render(&q);
	T_CHECK(sample(t, "danerelay_start_time_seconds") > 1700000000);
	free(t);
	metrics_reset();
	t = render(NULL); /* no queue given: zeros */
	T_CHECK(sample(t, "danerelay_queue_messages{state=\"held\"}") == 0);
	T_CHECK(sample(t, "danerelay_dnssec_selftest_ok") == 0);
	free(t);
}

static void
buffer_full(void)
{
	struct buf b;
	size_t cap;

	metrics_reset();
	metrics_blocked("dane", "4.7.323");
	buf_init(&b, 1 << 20);
	T_CHECK(metrics_render(&b, NULL) == 0);
	cap = b.len;
	buf_free(&b);
	buf_init(&b, cap - 1);
	T_CHECK(metrics_render(&b, NULL) == -1);
	buf_free(&b);
	buf_init(&b, cap);
	T_CHECK(metrics_render(&b, NULL) == 0);
	buf_free(&b);
}

#define HAMMER_THREADS 4
#define HAMMER_N       20000

static void *
hammer(void *arg)
{
	char status[16];
	unsigned i, id = *(unsigned *)arg;

	for (i = 0; i < HAMMER_N; i++) {
		metrics_delivered(i % 2 ? "dane" : "sts", (double)(i % 100));
		snprintf(status, sizeof(status), "4.7.%u", (i + id) % 80);
		metrics_blocked("dane", status);
		metrics_inbound_session(+1);
		metrics_inbound_session(-1);
	}
	return NULL;
}

/* Writers on several threads, a renderer meanwhile: no count is lost. */
static void
concurrent_exact(void)
{
	pthread_t th[HAMMER_THREADS];
	unsigned ids[HAMMER_THREADS], i;
	long long total = 0, v;
	const char *p;
	char *t;

	metrics_reset();
	for (i = 0; i < HAMMER_THREADS; i++) {
		ids[i] = i;
		T_CHECK(pthread_create(&th[i], NULL, hammer, &ids[i]) == 0);
	}
	for (i = 0; i < 20; i++) /* renders race with the writers */
		free(render(NULL));
	for (i = 0; i < HAMMER_THREADS; i++)
		pthread_join(th[i], NULL);
	t = render(NULL);
	T_CHECK(sample(t, "danerelay_deliveries_total{security=\"dane\"}") ==
	    HAMMER_THREADS * HAMMER_N / 2);
	T_CHECK(sample(t, "danerelay_delivery_latency_seconds_count") ==
	    HAMMER_THREADS * HAMMER_N);
	T_CHECK(sample(t, "danerelay_inbound_sessions") == 0);
	for (p = t; (p = strstr(p, "\ndanerelay_blocked_total{")) != NULL;
	     p++) {
		v = strtoll(strchr(p, '}') + 2, NULL, 10);
		total += v;
	}
	T_CHECK(total == HAMMER_THREADS * HAMMER_N);
	T_CHECK(sample(t,
	            "danerelay_blocked_total{security=\"dane\","
	            "status=\"other\"}") ==
	    HAMMER_THREADS * HAMMER_N / 80 * (80 - METRICS_PAIRS));
	free(t);
}

/* Prometheus's own linter on a busy exposition. */
/* The fleet's gauges: absent on a node without [fleet], then as set. */
static void
fleet_gauges(void)
{
	char *t;

	metrics_reset();
	t = render(NULL);
	T_CHECK(strstr(t, "danerelay_fleet") == NULL);
	free(t);
	metrics_fleet(false, 1234);
	t = render(NULL);
	T_CHECK(sample(t, "danerelay_fleet_db_up") == 0);
	T_CHECK(sample(t, "danerelay_fleet_backlog_events") == 1234);
	T_CHECK(strstr(t, "# TYPE danerelay_fleet_db_up gauge\n") != NULL);
	free(t);
	metrics_fleet(true, 0);
	t = render(NULL);
	T_CHECK(sample(t, "danerelay_fleet_db_up") == 1);
	T_CHECK(sample(t, "danerelay_fleet_backlog_events") == 0);
	free(t);
}

static void
promtool_accepts(void)
{
	char path[] = "/tmp/dr-test-metrics-XXXXXX", cmd[256];
	struct metrics_queue q = { 1, 2, 0 };
	FILE *f;
	char *t;
	int fd, rc;

	if (access(PROMTOOL, X_OK) != 0) {
		T_FAIL(PROMTOOL " is missing (scripts/deps installs it)");
		return;
	}
	metrics_reset();
	metrics_init();
	metrics_delivered("dane", 12);
	metrics_delivered("plaintext", 4000);
	metrics_blocked("dane", "4.7.323");
	metrics_blocked("sts", "4.7.5");
	metrics_blocked("sts", "garbage");
	metrics_would_block("dane", "4.7.324");
	metrics_tlsrpt_report("sent");
	metrics_dnssec_selftest(true);
	metrics_fleet(true, 17);
	t = render(&q);
	if ((fd = mkstemp(path)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		T_FAIL("cannot write a temporary file");
		free(t);
		return;
	}
	fputs(t, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s", path);
	rc = system(cmd);
	if (rc != 0) {
		printf("%s", t);
		T_FAIL("promtool check metrics refused the output (above)");
	}
	unlink(path);
	free(t);
}

int
main(void)
{
	T_RUN(deliveries_all_classes);
	T_RUN(deliveries_counted);
	T_RUN(blocked_pairs);
	T_RUN(would_block_pairs);
	T_RUN(pairs_bounded);
	T_RUN(label_escaping);
	T_RUN(histogram_cumulative);
	T_RUN(gauges);
	T_RUN(buffer_full);
	T_RUN(concurrent_exact);
	T_RUN(fleet_gauges);
	T_RUN(promtool_accepts);
	T_EXIT();
}
