/*
 * test_tlsrpt_store: the sending side of TLS-RPT. Sessions of every
 * policy type, successes and failures, two days and two domains are
 * folded into counters; the RFC 8460 §4.4 report built from them is
 * checked field by field, read back through tlsrpt_parse (which must
 * find nothing to tolerate), and its gzip form inflated again. Also:
 * day boundaries, domain normalisation, refused sessions, sent marks,
 * refusal of foreign and newer databases, and a volume run that must not
 * grow the store.
 *
 * Fixture mode: with DANERELAY_TEST_TLSRPT_DIR set, the program only
 * records the same mix into DIR/tlsrpt.db and writes every report as
 * DIR/DAY_DOMAIN.json and DIR/DAY_DOMAIN.json.gz, printing "report PATH"
 * per JSON file; tests/integration/test_tlsrpt_schema.sh validates them.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_sent.h"
#include "tlsrpt/tlsrpt_parse.h"
#include "t.h"
#include "t_sqlite.h"

static char tmpdir[] = "/tmp/test_tlsrpt_store.XXXXXX";

static time_t
at(int y, int mon, int d, int h, int min, int sec)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = min;
	tm.tm_sec = sec;
	return timegm(&tm);
}

static const char *const tlsa_rrs[] = {
	"3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
	"3 1 1 9B3DCB4F1D1C3A0F0D8C9B3E4A7E1F6C2B8D9A0E1F2C3B4A5D6E7F8091A2B3C4",
};
static const char *const sts_lines[] = { "version: STSv1", "mode: enforce",
	"mx: *.mail.example.net", "max_age: 86400" };
static const char *const sts_mx[] = { "*.mail.example.net" };

/* A session template: the policies the tests use. */
static struct tlsrpt_session
sess(const char *domain, enum tlsrpt_policy_type type, time_t when)
{
	struct tlsrpt_session t;

	memset(&t, 0, sizeof(t));
	t.when = when;
	t.policy_domain = domain;
	t.type = type;
	t.success = true;
	t.sending_mta_ip = "192.0.2.10";
	if (type == TLSRPT_TLSA) {
		t.policy_strings = tlsa_rrs;
		t.npolicy_strings = 2;
	} else if (type == TLSRPT_STS) {
		t.policy_strings = sts_lines;
		t.npolicy_strings = 4;
		t.mx_hosts = sts_mx;
		t.nmx_hosts = 1;
	}
	return t;
}

static int
fail(struct tlsrpt_session *t, const char *rt, const char *mx, const char *ip,
    const char *reason)
{
	t->success = false;
	t->result_type = rt;
	t->receiving_mx_hostname = mx;
	t->receiving_ip = ip;
	t->failure_reason_code = reason;
	return 0;
}

/* Record n copies of t; -1 on the first error. */
static int
rec(struct tlsrpt_store *s, const struct tlsrpt_session *t, int n)
{
	while (n-- > 0) {
		if (tlsrpt_store_record(s, t) == -1)
			return -1;
	}
	return 0;
}

/*
 * The mix. 2026-03-01:
 *   example.com tlsa: 5 ok; 3 validation-failure mx1; 2
 *     starttls-not-supported mx2; 1 tlsa-invalid mx1 (helo mx1-helo)
 *   example.com no-policy-found: 1 ok
 *   example.net sts: 4 ok; 2 sts-webpki-invalid mx1 (reason code)
 *   example.net no-policy-found: 3 ok; 1 starttls-not-supported
 * 2026-03-02 (from 00:00:00Z): example.com tlsa: 2 ok, 1
 *   certificate-expired.
 */
static int
record_mix(struct tlsrpt_store *s)
{
	time_t d1 = at(2026, 3, 1, 10, 0, 0),
	       d1end = at(2026, 3, 1, 23, 59, 59);
	time_t d2 = at(2026, 3, 2, 0, 0, 0);
	struct tlsrpt_session t;
	int rc = 0;

	t = sess("example.com", TLSRPT_TLSA, d1);
	rc |= rec(s, &t, 4);
	t.policy_domain = "Example.COM."; /* the same domain */
	t.when = d1end;
	rc |= rec(s, &t, 1);
	fail(&t, "validation-failure", "mx1.example.com", "192.0.2.25", NULL);
	rc |= rec(s, &t, 3);
	fail(&t, "starttls-not-supported", "mx2.example.com", "192.0.2.26",
	    NULL);
	rc |= rec(s, &t, 2);
	fail(&t, "tlsa-invalid", "mx1.example.com", "192.0.2.25", NULL);
	t.receiving_mx_helo = "mx1-helo.example.com";
	rc |= rec(s, &t, 1);
	t = sess("example.com", TLSRPT_NO_POLICY, d1);
	rc |= rec(s, &t, 1);

	t = sess("example.net", TLSRPT_STS, d1);
	rc |= rec(s, &t, 4);
	fail(&t, "sts-webpki-invalid", "mx1.mail.example.net", "198.51.100.7",
	    "X509_V_ERR_CERT_HAS_EXPIRED");
	t.sending_mta_ip = "2001:db8::10";
	rc |= rec(s, &t, 2);
	t = sess("example.net", TLSRPT_NO_POLICY, d1);
	rc |= rec(s, &t, 3);
	fail(&t, "starttls-not-supported", "mx.example.net", NULL, NULL);
	rc |= rec(s, &t, 1);

	t = sess("example.com", TLSRPT_TLSA, d2);
	rc |= rec(s, &t, 2);
	fail(&t, "certificate-expired", "mx1.example.com", "192.0.2.25", NULL);
	rc |= rec(s, &t, 1);
	return rc;
}

/*
 * What the relay records for a delivery attempt whose MTA-STS policy could
 * not be fetched (deliver_job.c job_tlsrpt_discovery, RFC 8461 §6): a
 * failed session under policy-type sts without policy strings, no MX, the
 * fetch's reason; the session that follows under no-policy-found. On
 * 2026-03-01 for example.org: 2 sts-policy-fetch-error "HTTP 404", 1
 * sts-webpki-invalid, 3 no-policy-found successes.
 */
static int
record_fetch_failures(struct tlsrpt_store *s)
{
	struct tlsrpt_session t;
	int rc = 0;

	t = sess("example.org", TLSRPT_STS, at(2026, 3, 1, 8, 0, 0));
	t.policy_strings = NULL;
	t.npolicy_strings = 0;
	t.mx_hosts = NULL;
	t.nmx_hosts = 0;
	t.sending_mta_ip = NULL;
	fail(&t, "sts-policy-fetch-error", NULL, NULL, "HTTP 404");
	rc |= rec(s, &t, 2);
	fail(&t, "sts-webpki-invalid", NULL, NULL,
	    "certificate not trusted: self-signed certificate");
	rc |= rec(s, &t, 1);
	t = sess("example.org", TLSRPT_NO_POLICY, at(2026, 3, 1, 8, 0, 1));
	rc |= rec(s, &t, 3);
	return rc;
}

static struct tlsrpt_store *
open_fresh(const char *name)
{
	char *path = xasprintf("%s/%s", tmpdir, name), *err = NULL;
	struct tlsrpt_store *s;

	unlink(path);
	s = tlsrpt_store_open(path, &err);
	if (s == NULL)
		printf("# open %s: %s\n", path, err);
	free(err);
	free(path);
	return s;
}

/* The console opens the store beside the relay's connection: that must
 * not drop the relay's locks (an open() and close() of the file would). */
static void
test_second_connection_keeps_locks(void)
{
	char *path = xasprintf("%s/locks.db", tmpdir), *err = NULL;
	struct tlsrpt_store *relay = open_fresh("locks.db"), *console;

	T_CHECK(relay != NULL && !t_sqlite_read_lock_free(path));
	console = tlsrpt_store_open(path, &err);
	T_CHECK(console != NULL);
	free(err);
	T_CHECK(!t_sqlite_read_lock_free(path));
	tlsrpt_store_close(console);
	tlsrpt_store_close(relay);
	T_CHECK(t_sqlite_read_lock_free(path)); /* the probe itself works */
	free(path);
}

static json_t *
build_json(struct tlsrpt_store *s, const char *domain, const char *day)
{
	char *text = tlsrpt_report_build(
	    s, domain, day, "Example Org", "tlsrpt@example.org", "rid-1");
	json_t *j = text != NULL ? json_loads(text, 0, NULL) : NULL;

	free(text);
	return j;
}

static json_int_t
jint(const json_t *o, const char *path1, const char *path2)
{
	const json_t *v = json_object_get(o, path1);

	if (path2 != NULL)
		v = json_object_get(v, path2);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *
jstr(const json_t *o, const char *k1, const char *k2)
{
	const json_t *v = json_object_get(o, k1);

	if (k2 != NULL)
		v = json_object_get(v, k2);
	return json_string_value(v);
}

static void
test_open_refuse(void)
{
	struct tlsrpt_store *s = open_fresh("a.db");
	char *path = xasprintf("%s/a.db", tmpdir), *err = NULL;
	sqlite3 *db;
	struct stat sb;

	T_CHECK(s != NULL);
	T_CHECK(stat(path, &sb) == 0 && (sb.st_mode & 077) == 0);
	tlsrpt_store_close(s);
	s = tlsrpt_store_open(path, &err);
	T_CHECK(s != NULL);
	tlsrpt_store_close(s);
	T_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	T_CHECK(sqlite3_exec(db, "PRAGMA user_version = 9", NULL, NULL, NULL) ==
	    SQLITE_OK);
	sqlite3_close(db);
	T_CHECK(tlsrpt_store_open(path, &err) == NULL);
	T_CHECK(err != NULL && strstr(err, "newer") != NULL);
	free(err);
	err = NULL;
	free(path);

	path = xasprintf("%s/other.db", tmpdir);
	T_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	T_CHECK(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL) ==
	    SQLITE_OK);
	sqlite3_close(db);
	T_CHECK(tlsrpt_store_open(path, &err) == NULL);
	T_CHECK(err != NULL && strstr(err, "another program") != NULL);
	free(err);
	err = NULL;
	free(path);

	path = xasprintf("%s/garbage.db", tmpdir);
	{
		FILE *fp = fopen(path, "w");
		int i;

		for (i = 0; i < 512; i++)
			fputs("not a database at all ", fp);
		fclose(fp);
	}
	T_CHECK(tlsrpt_store_open(path, &err) == NULL);
	T_CHECK(err != NULL && strstr(err, "not a danerelay") != NULL);
	free(err);
	free(path);
}

static void
test_domains(void)
{
	struct tlsrpt_store *s = open_fresh("d.db");
	char **v;
	size_t n = 99;

	T_CHECK(s != NULL && record_mix(s) == 0);
	v = tlsrpt_store_domains(s, "2026-03-01", &n);
	T_CHECK(v != NULL && n == 2);
	if (v != NULL && n == 2) {
		T_STREQ(v[0], "example.com");
		T_STREQ(v[1], "example.net");
		T_CHECK(v[2] == NULL);
	}
	tlsrpt_strv_free(v);
	v = tlsrpt_store_domains(s, "2026-03-02", &n);
	T_CHECK(v != NULL && n == 1 && strcmp(v[0], "example.com") == 0);
	tlsrpt_strv_free(v);
	v = tlsrpt_store_domains(s, "2026-02-28", &n);
	T_CHECK(v != NULL && n == 0 && v[0] == NULL);
	tlsrpt_strv_free(v);
	T_CHECK(tlsrpt_store_domains(s, "2026-02-30", &n) == NULL);
	T_CHECK(tlsrpt_store_domains(s, "2026-3-01", &n) == NULL);
	T_CHECK(tlsrpt_store_domains(s, "2026-03-01x", &n) == NULL);
	tlsrpt_store_close(s);
}

/* Check the example.com report of day 1. */
static void
check_com_day1(const json_t *j)
{
	const json_t *pol = json_object_get(j, "policies"), *p0, *fd, *p1;

	T_STREQ(jstr(j, "organization-name", NULL), "Example Org");
	T_STREQ(jstr(j, "contact-info", NULL), "tlsrpt@example.org");
	T_STREQ(jstr(j, "report-id", NULL), "rid-1");
	T_STREQ(
	    jstr(j, "date-range", "start-datetime"), "2026-03-01T00:00:00Z");
	T_STREQ(jstr(j, "date-range", "end-datetime"), "2026-03-01T23:59:59Z");
	T_CHECK(json_array_size(pol) == 2);
	p0 = json_array_get(pol, 0);
	p1 = json_array_get(pol, 1);
	T_STREQ(jstr(p0, "policy", "policy-type"), "tlsa");
	T_STREQ(jstr(p0, "policy", "policy-domain"), "example.com");
	T_CHECK(json_array_size(json_object_get(
	            json_object_get(p0, "policy"), "policy-string")) == 2);
	T_CHECK(
	    json_object_get(json_object_get(p0, "policy"), "mx-host") == NULL);
	T_CHECK(jint(p0, "summary", "total-successful-session-count") == 5);
	T_CHECK(jint(p0, "summary", "total-failure-session-count") == 6);
	fd = json_object_get(p0, "failure-details");
	T_CHECK(json_array_size(fd) == 3);
	T_STREQ(jstr(json_array_get(fd, 0), "result-type", NULL),
	    "validation-failure");
	T_CHECK(jint(json_array_get(fd, 0), "failed-session-count", NULL) == 3);
	T_STREQ(
	    jstr(json_array_get(fd, 0), "receiving-ip", NULL), "192.0.2.25");
	T_STREQ(
	    jstr(json_array_get(fd, 0), "sending-mta-ip", NULL), "192.0.2.10");
	T_CHECK(json_object_get(json_array_get(fd, 0), "receiving-mx-helo") ==
	    NULL);
	T_STREQ(jstr(json_array_get(fd, 1), "result-type", NULL),
	    "starttls-not-supported");
	T_CHECK(jint(json_array_get(fd, 1), "failed-session-count", NULL) == 2);
	T_STREQ(jstr(json_array_get(fd, 2), "receiving-mx-helo", NULL),
	    "mx1-helo.example.com");
	T_STREQ(jstr(p1, "policy", "policy-type"), "no-policy-found");
	T_CHECK(json_object_get(
	            json_object_get(p1, "policy"), "policy-string") == NULL);
	T_CHECK(jint(p1, "summary", "total-successful-session-count") == 1);
	T_CHECK(jint(p1, "summary", "total-failure-session-count") == 0);
	T_CHECK(json_array_size(json_object_get(p1, "failure-details")) == 0);
}

static void
check_net_day1(const json_t *j)
{
	const json_t *pol = json_object_get(j, "policies"), *p0, *p1, *f;

	T_CHECK(json_array_size(pol) == 2);
	p0 = json_array_get(pol, 0);
	p1 = json_array_get(pol, 1);
	T_STREQ(jstr(p0, "policy", "policy-type"), "sts");
	T_STREQ(
	    json_string_value(json_array_get(
	        json_object_get(json_object_get(p0, "policy"), "mx-host"), 0)),
	    "*.mail.example.net");
	T_STREQ(
	    json_string_value(json_array_get(
	        json_object_get(json_object_get(p0, "policy"), "policy-string"),
	        1)),
	    "mode: enforce");
	T_CHECK(jint(p0, "summary", "total-successful-session-count") == 4);
	T_CHECK(jint(p0, "summary", "total-failure-session-count") == 2);
	f = json_array_get(json_object_get(p0, "failure-details"), 0);
	T_STREQ(jstr(f, "result-type", NULL), "sts-webpki-invalid");
	T_STREQ(jstr(f, "sending-mta-ip", NULL), "2001:db8::10");
	T_STREQ(jstr(f, "failure-reason-code", NULL),
	    "X509_V_ERR_CERT_HAS_EXPIRED");
	T_CHECK(jint(f, "failed-session-count", NULL) == 2);
	T_STREQ(jstr(p1, "policy", "policy-type"), "no-policy-found");
	T_CHECK(jint(p1, "summary", "total-successful-session-count") == 3);
	T_CHECK(jint(p1, "summary", "total-failure-session-count") == 1);
	f = json_array_get(json_object_get(p1, "failure-details"), 0);
	T_CHECK(json_object_get(f, "receiving-ip") == NULL);
	T_STREQ(jstr(f, "receiving-mx-hostname", NULL), "mx.example.net");
}

static void
test_report(void)
{
	struct tlsrpt_store *s = open_fresh("r.db");
	json_t *j;

	T_CHECK(s != NULL && record_mix(s) == 0);
	j = build_json(s, "example.com", "2026-03-01");
	T_CHECK(j != NULL);
	if (j != NULL)
		check_com_day1(j);
	json_decref(j);
	j = build_json(s, "EXAMPLE.net.", "2026-03-01");
	T_CHECK(j != NULL);
	if (j != NULL)
		check_net_day1(j);
	json_decref(j);
	j = build_json(s, "example.com", "2026-03-02");
	T_CHECK(j != NULL);
	T_CHECK(jint(json_array_get(json_object_get(j, "policies"), 0),
	            "summary", "total-successful-session-count") == 2);
	T_STREQ(
	    jstr(j, "date-range", "start-datetime"), "2026-03-02T00:00:00Z");
	json_decref(j);
	T_CHECK(build_json(s, "example.net", "2026-03-02") == NULL);
	T_CHECK(strstr(tlsrpt_store_error(s), "no TLS-RPT data") != NULL);
	T_CHECK(build_json(s, "example.com", "yesterday") == NULL);
	T_CHECK(tlsrpt_report_build(
	            s, "example.com", "2026-03-01", NULL, "c", "r") == NULL);
	tlsrpt_store_close(s);
}

struct rows_ctx {
	struct tlsrpt_store *to;
	int policies, failures;
};

static int
copy_row(const struct tlsrpt_row *r, void *arg)
{
	struct rows_ctx *c = arg;

	if (r->result_type == NULL)
		c->policies++;
	else
		c->failures++;
	return tlsrpt_store_add_row(c->to, r);
}

/* Every count of the policies of report a, times k, is b's. */
static bool
counts_times(json_t *a, json_t *b, int k)
{
	json_t *pa = json_object_get(a, "policies");
	json_t *pb = json_object_get(b, "policies");
	size_t i;

	if (json_array_size(pa) == 0 ||
	    json_array_size(pa) != json_array_size(pb))
		return false;
	for (i = 0; i < json_array_size(pa); i++) {
		json_t *x = json_array_get(pa, i), *y = json_array_get(pb, i);
		json_t *fx = json_object_get(x, "failure-details");
		json_t *fy = json_object_get(y, "failure-details");
		size_t j;

		if (!json_equal(json_object_get(x, "policy"),
		        json_object_get(y, "policy")) ||
		    jint(x, "summary", "total-successful-session-count") * k !=
		        jint(y, "summary", "total-successful-session-count") ||
		    jint(x, "summary", "total-failure-session-count") * k !=
		        jint(y, "summary", "total-failure-session-count") ||
		    json_array_size(fx) != json_array_size(fy))
			return false;
		for (j = 0; j < json_array_size(fx); j++)
			if (json_integer_value(
			        json_object_get(json_array_get(fx, j),
			            "failed-session-count")) *
			        k !=
			    json_integer_value(json_object_get(
			        json_array_get(fy, j), "failed-session-count")))
				return false;
	}
	return true;
}

/* The fleet's way (src/fleet/fleet_tlsrpt.c): rows out of a node's store,
 * added twice into a store in memory as if two nodes had the same counts;
 * the report of the sum has every count doubled. */
static void
test_rows_sum(void)
{
	struct tlsrpt_store *s = open_fresh("rows.db"), *m;
	struct rows_ctx c = { NULL, 0, 0 };
	char *err = NULL;
	json_t *a, *b;

	T_CHECK(s != NULL && record_mix(s) == 0);
	m = tlsrpt_store_open(":memory:", &err);
	T_CHECK(m != NULL && access(":memory:", F_OK) == -1);
	c.to = m;
	T_CHECK(tlsrpt_store_rows(s, "", copy_row, &c) == 0);
	T_CHECK(tlsrpt_store_rows(s, "", copy_row, &c) == 0);
	T_CHECK(c.policies > 0 && c.failures > 0);
	a = build_json(s, "example.com", "2026-03-01");
	b = build_json(m, "example.com", "2026-03-01");
	T_CHECK(counts_times(a, b, 2));
	json_decref(a);
	json_decref(b);
	a = build_json(s, "example.net", "2026-03-01");
	b = build_json(m, "example.net", "2026-03-01");
	T_CHECK(counts_times(a, b, 2));
	json_decref(a);
	json_decref(b);
	/* since: only the days from it */
	c.policies = c.failures = 0;
	c.to = NULL;
	tlsrpt_store_close(m);
	m = tlsrpt_store_open(":memory:", &err);
	c.to = m;
	T_CHECK(tlsrpt_store_rows(s, "2026-03-02", copy_row, &c) == 0);
	T_CHECK(c.policies == 1 && c.failures == 1);
	T_CHECK(build_json(m, "example.com", "2026-03-01") == NULL);
	tlsrpt_store_close(m);
	tlsrpt_store_close(s);
	free(err);
}

/* One TLSA RRset seen in two orders (DNS keeps none) is one policy. */
static void
test_tlsa_order(void)
{
	static const char *const swapped[] = { tlsa_rrs[1], tlsa_rrs[0] };
	struct tlsrpt_store *s = open_fresh("order.db");
	struct tlsrpt_session t =
	    sess("example.org", TLSRPT_TLSA, at(2026, 3, 1, 10, 0, 0));
	json_t *j;

	T_CHECK(s != NULL && rec(s, &t, 2) == 0);
	t.policy_strings = swapped;
	T_CHECK(rec(s, &t, 3) == 0);
	j = build_json(s, "example.org", "2026-03-01");
	T_CHECK(json_array_size(json_object_get(j, "policies")) == 1);
	T_CHECK(jint(json_array_get(json_object_get(j, "policies"), 0),
	            "summary", "total-successful-session-count") == 5);
	json_decref(j);
	tlsrpt_store_close(s);
}

/* A policy fetch failure: its own sts entry, the sessions beside it. */
static void
test_fetch_failure(void)
{
	struct tlsrpt_store *s = open_fresh("ff.db");
	const json_t *p0, *p1, *fd, *f;
	json_t *j;

	T_CHECK(s != NULL && record_fetch_failures(s) == 0);
	j = build_json(s, "example.org", "2026-03-01");
	T_CHECK(
	    j != NULL && json_array_size(json_object_get(j, "policies")) == 2);
	p0 = json_array_get(json_object_get(j, "policies"), 0);
	p1 = json_array_get(json_object_get(j, "policies"), 1);
	T_STREQ(jstr(p0, "policy", "policy-type"), "sts");
	T_STREQ(jstr(p0, "policy", "policy-domain"), "example.org");
	T_CHECK(json_array_size(json_object_get(
	            json_object_get(p0, "policy"), "policy-string")) == 0);
	T_CHECK(
	    json_object_get(json_object_get(p0, "policy"), "mx-host") == NULL);
	T_CHECK(jint(p0, "summary", "total-successful-session-count") == 0);
	T_CHECK(jint(p0, "summary", "total-failure-session-count") == 3);
	fd = json_object_get(p0, "failure-details");
	T_CHECK(json_array_size(fd) == 2);
	f = json_array_get(fd, 0);
	T_STREQ(jstr(f, "result-type", NULL), "sts-policy-fetch-error");
	T_CHECK(jint(f, "failed-session-count", NULL) == 2);
	T_STREQ(jstr(f, "failure-reason-code", NULL), "HTTP 404");
	T_CHECK(json_object_get(f, "receiving-mx-hostname") == NULL &&
	    json_object_get(f, "receiving-ip") == NULL &&
	    json_object_get(f, "sending-mta-ip") == NULL);
	T_STREQ(jstr(json_array_get(fd, 1), "result-type", NULL),
	    "sts-webpki-invalid");
	T_STREQ(jstr(p1, "policy", "policy-type"), "no-policy-found");
	T_CHECK(jint(p1, "summary", "total-successful-session-count") == 3);
	json_decref(j);
	tlsrpt_store_close(s);
}

/* The report read by our own receiving side: nothing to tolerate. */
static void
test_report_parses(void)
{
	struct tlsrpt_store *s = open_fresh("p.db");
	char *text, *err = NULL;
	struct tlsrpt_report *r = NULL;
	uint8_t *gz;
	size_t len = 0;

	T_CHECK(s != NULL && record_mix(s) == 0);
	/* example.net has a failure without receiving-ip, which the reader
	 * rightly warns about: the only warning allowed there. */
	text = tlsrpt_report_build(
	    s, "example.net", "2026-03-01", "Org", "a@example.org", "id");
	r = text ? tlsrpt_parse((const uint8_t *)text, strlen(text), &err) :
	           NULL;
	T_CHECK(r != NULL && tlsrpt_report_nwarnings(r) == 1 &&
	    strstr(tlsrpt_report_warning(r, 0), "receiving-ip") != NULL);
	tlsrpt_report_free(r);
	r = NULL;
	free(text);
	text = tlsrpt_report_build(
	    s, "example.com", "2026-03-01", "Org", "a@example.org", "id");
	T_CHECK(text != NULL);
	if (text != NULL)
		r = tlsrpt_parse((const uint8_t *)text, strlen(text), &err);
	T_CHECK(r != NULL);
	if (r != NULL) {
		T_CHECK(tlsrpt_report_nwarnings(r) == 0);
		if (tlsrpt_report_nwarnings(r) > 0)
			printf("# %s\n", tlsrpt_report_warning(r, 0));
		T_STREQ(json_string_value(
		            json_object_get(tlsrpt_report_json(r), "format")),
		    "json");
	}
	tlsrpt_report_free(r);
	r = NULL;
	free(err);
	err = NULL;
	gz = text != NULL ? tlsrpt_gzip(text, &len) : NULL;
	if (gz != NULL)
		r = tlsrpt_parse(gz, len, &err);
	T_CHECK(r != NULL && tlsrpt_report_nwarnings(r) == 0);
	if (r != NULL)
		T_STREQ(json_string_value(
		            json_object_get(tlsrpt_report_json(r), "format")),
		    "gzip");
	tlsrpt_report_free(r);
	free(err);
	free(gz);
	free(text);
	tlsrpt_store_close(s);
}

static void
test_gzip(void)
{
	const char *in = "{\"organization-name\":\"x\",\"policies\":[]}";
	uint8_t *gz, out[256];
	size_t len = 0;
	z_stream z;

	gz = tlsrpt_gzip(in, &len);
	T_CHECK(len > 18 && gz[0] == 0x1f && gz[1] == 0x8b && gz[2] == 8);
	memset(&z, 0, sizeof(z));
	T_CHECK(inflateInit2(&z, 16 + 15) == Z_OK);
	z.next_in = gz;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = sizeof(out);
	T_CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
	T_CHECK(z.total_out == strlen(in) && memcmp(out, in, strlen(in)) == 0);
	inflateEnd(&z);
	free(gz);
	gz = tlsrpt_gzip("", &len);
	T_CHECK(gz != NULL && len >= 20);
	free(gz);
}

static void
test_refused_sessions(void)
{
	struct tlsrpt_store *s = open_fresh("x.db");
	struct tlsrpt_session t = sess("example.org", TLSRPT_TLSA, 1000000);
	const char *bad[] = { "ok", NULL };
	size_t n = 0;
	char **v;

	t.policy_domain = NULL;
	T_CHECK(tlsrpt_store_record(s, &t) == -1);
	T_CHECK(strstr(tlsrpt_store_error(s), "policy domain") != NULL);
	t.policy_domain = "example.org";
	t.success = false;
	T_CHECK(tlsrpt_store_record(s, &t) == -1);
	T_CHECK(strstr(tlsrpt_store_error(s), "result type") != NULL);
	t.success = true;
	t.policy_strings = bad;
	t.npolicy_strings = 2;
	T_CHECK(tlsrpt_store_record(s, &t) == -1);
	t.policy_strings = NULL;
	t.npolicy_strings = 0;
	T_CHECK(tlsrpt_store_record(s, &t) == 0);
	v = tlsrpt_store_domains(s, "1970-01-12", &n);
	T_CHECK(v != NULL && n == 1);
	tlsrpt_strv_free(v);
	tlsrpt_store_close(s);
}

static void
test_sent(void)
{
	struct tlsrpt_store *s = open_fresh("s.db");
	char *path = xasprintf("%s/s.db", tmpdir), *err = NULL;

	T_CHECK(!tlsrpt_store_sent(s, "example.com", "2026-03-01"));
	T_CHECK(tlsrpt_store_mark_sent(s, "example.com", "2026-03-01") == 0);
	T_CHECK(tlsrpt_store_mark_sent(s, "Example.com.", "2026-03-01") == 0);
	T_CHECK(tlsrpt_store_sent(s, "example.com", "2026-03-01"));
	T_CHECK(!tlsrpt_store_sent(s, "example.com", "2026-03-02"));
	T_CHECK(!tlsrpt_store_sent(s, "example.net", "2026-03-01"));
	T_CHECK(tlsrpt_store_mark_sent(s, "example.com", "bad") == -1);
	tlsrpt_store_close(s);
	s = tlsrpt_store_open(path, &err);
	T_CHECK(s != NULL && tlsrpt_store_sent(s, "EXAMPLE.COM", "2026-03-01"));
	tlsrpt_store_close(s);
	free(err);
	free(path);
}

/* tlsrpt_sent_days: the console's view of sent reports, per domain and
 * day, counts per policy, and each destination's state and last note. */
static void
test_sent_days(void)
{
	struct tlsrpt_store *s = open_fresh("sd.db");
	struct tlsrpt_out o;
	json_t *days, *d1, *com, *net, *dst;

	if (s == NULL || record_mix(s) != 0) {
		T_FAIL("store");
		tlsrpt_store_close(s);
		return;
	}
	memset(&o, 0, sizeof(o));
	memcpy(o.day, "2026-03-01", TLSRPT_DAY_LEN);
	o.domain = "example.com";
	o.uri = "mailto:tlsrpt@example.com";
	o.report_id = "20260301.example.com.x@reporter.test";
	o.gz = (const uint8_t *)"x";
	o.gzlen = 1;
	o.note = "";
	T_CHECK(tlsrpt_outbox_add(s, &o) == 0);
	o.uri = "https://reports.example.com/tlsrpt";
	T_CHECK(tlsrpt_outbox_add(s, &o) == 0);
	T_CHECK(tlsrpt_outbox_update(s, "2026-03-01", "example.com",
	            "mailto:tlsrpt@example.com", TLSRPT_OUT_DONE,
	            "queued as 4F2A1C", at(2026, 3, 2, 1, 0, 0), 0) == 0);
	T_CHECK(tlsrpt_outbox_update(s, "2026-03-01", "example.com",
	            "https://reports.example.com/tlsrpt", TLSRPT_OUT_PENDING,
	            "HTTP 404", at(2026, 3, 2, 1, 0, 0),
	            at(2026, 3, 2, 2, 0, 0)) == 0);
	T_CHECK(tlsrpt_store_mark_sent(s, "example.com", "2026-03-01") == 0);
	days = tlsrpt_sent_days(s, at(2026, 3, 2, 12, 0, 0), 3);
	T_CHECK(json_array_size(days) == 3);
	T_STREQ(jstr(json_array_get(days, 0), "day", NULL), "2026-03-02");
	d1 = json_object_get(json_array_get(days, 1), "domains");
	T_CHECK(json_array_size(d1) == 2);
	com = json_array_get(d1, 0);
	net = json_array_get(d1, 1);
	T_STREQ(jstr(com, "domain", NULL), "example.com");
	T_CHECK(jint(com, "successful", NULL) == 6);
	T_CHECK(jint(com, "failed", NULL) == 6);
	T_CHECK(json_is_true(json_object_get(com, "done")));
	T_CHECK(json_array_size(json_object_get(com, "destinations")) == 2);
	dst = json_array_get(json_object_get(com, "destinations"), 0);
	T_STREQ(jstr(dst, "uri", NULL), "https://reports.example.com/tlsrpt");
	T_STREQ(jstr(dst, "state", NULL), "pending");
	T_STREQ(jstr(dst, "note", NULL), "HTTP 404");
	dst = json_array_get(json_object_get(com, "destinations"), 1);
	T_STREQ(jstr(dst, "state", NULL), "sent");
	T_CHECK(jint(dst, "attempts", NULL) == 1);
	T_STREQ(jstr(net, "domain", NULL), "example.net");
	T_STREQ(jstr(json_array_get(json_object_get(net, "policies"), 0),
	            "policy-type", NULL),
	    "sts");
	T_CHECK(!json_is_true(json_object_get(net, "done")));
	if (t_failed_now)
		json_dumpf(days, stdout, JSON_INDENT(1));
	json_decref(days);
	tlsrpt_store_close(s);
}

static sqlite3_int64
count_rows(const char *path, const char *table)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *sql = xasprintf("SELECT count(*) FROM %s", table);
	sqlite3_int64 n = -1;

	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	free(sql);
	return n;
}

/* 5,000 sessions in one day: the store keeps a handful of rows. */
static void
test_volume(void)
{
	struct tlsrpt_store *s = open_fresh("v.db");
	char *path = xasprintf("%s/v.db", tmpdir);
	time_t d = at(2026, 4, 1, 0, 0, 0);
	struct tlsrpt_session t;
	json_t *j;
	int i, rc = 0;

	for (i = 0; i < 5000; i++) {
		t = sess(i % 2 ? "example.com" : "example.net",
		    i % 3 ? TLSRPT_TLSA : TLSRPT_STS, d + i * 17);
		if (i % 5 == 0)
			fail(&t, i % 10 ? "validation-failure" : "tlsa-invalid",
			    "mx1.example.com", "192.0.2.25", NULL);
		rc |= tlsrpt_store_record(s, &t);
	}
	T_CHECK(rc == 0);
	T_CHECK(count_rows(path, "policies") == 4);
	T_CHECK(count_rows(path, "failures") <= 8);
	j = build_json(s, "example.com", "2026-04-01");
	{
		json_int_t ok = 0, bad = 0;
		size_t k;
		const json_t *p;

		json_array_foreach(json_object_get(j, "policies"), k, p)
		{
			ok += jint(
			    p, "summary", "total-successful-session-count");
			bad +=
			    jint(p, "summary", "total-failure-session-count");
		}
		T_CHECK(ok + bad == 2500);
	}
	json_decref(j);
	tlsrpt_store_close(s);
	free(path);
}

static int
write_file(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");
	int rc;

	if (fp == NULL)
		return -1;
	rc = fwrite(p, 1, n, fp) == n ? 0 : -1;
	return fclose(fp) == 0 ? rc : -1;
}

/* Write every report of the mix, JSON and gzip, into dir. */
static int
fixture(const char *dir)
{
	static const char *const days[] = { "2026-03-01", "2026-03-02" };
	char *path = xasprintf("%s/tlsrpt.db", dir), *err = NULL, **v;
	struct tlsrpt_store *s = tlsrpt_store_open(path, &err);
	size_t d, i, n, len;
	int rc = 0;

	free(path);
	if (s == NULL || record_mix(s) == -1 ||
	    record_fetch_failures(s) == -1) {
		fprintf(
		    stderr, "fixture: %s\n", s ? tlsrpt_store_error(s) : err);
		return 1;
	}
	for (d = 0; d < 2; d++) {
		if ((v = tlsrpt_store_domains(s, days[d], &n)) == NULL)
			return 1;
		for (i = 0; i < n; i++) {
			char *id = xasprintf("%s_%s", days[d], v[i]);
			char *json = tlsrpt_report_build(s, v[i], days[d],
			    "danerelay test", "postmaster@example.org", id);
			uint8_t *gz = json ? tlsrpt_gzip(json, &len) : NULL;
			char *pj = xasprintf("%s/%s.json", dir, id);
			char *pz = xasprintf("%s/%s.json.gz", dir, id);

			if (json == NULL ||
			    write_file(pj, json, strlen(json)) ||
			    write_file(pz, gz, len))
				rc = 1;
			printf("report %s\n", pj);
			free(id);
			free(json);
			free(gz);
			free(pj);
			free(pz);
		}
		tlsrpt_strv_free(v);
	}
	tlsrpt_store_close(s);
	return rc;
}

int
main(void)
{
	const char *fixdir = getenv("DANERELAY_TEST_TLSRPT_DIR");

	if (fixdir != NULL)
		return fixture(fixdir);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	T_RUN(test_open_refuse);
	T_RUN(test_second_connection_keeps_locks);
	T_RUN(test_domains);
	T_RUN(test_report);
	T_RUN(test_rows_sum);
	T_RUN(test_tlsa_order);
	T_RUN(test_fetch_failure);
	T_RUN(test_report_parses);
	T_RUN(test_gzip);
	T_RUN(test_refused_sessions);
	T_RUN(test_sent);
	T_RUN(test_sent_days);
	T_RUN(test_volume);
	{
		char *cmd = xasprintf("rm -rf '%s'", tmpdir);

		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmpdir);
		free(cmd);
	}
	T_EXIT();
}
