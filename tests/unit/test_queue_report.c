/*
 * test_queue_report: the transit security report and the log-only impact
 * (src/queue/queue_report*.c) on a hand-made queue: attempt events with
 * chosen times and fields are written straight into the events table, so
 * every count, bucket, share and order below is exact. Events without the
 * "security" field (written before it existed) get their class from "tls"
 * and "policy".
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "queue/queue.h"
#include "queue/queue_report.h"
#include "queue/queue_report_json.h"
#include "t.h"

/* 2023-11-14T22:00:00Z: a whole hour, so buckets start at T0 + k hours. */
#define T0 ((time_t)1699999200)
#define H  3600

struct fixture {
	char *root, *dir;
	struct queue *q;
	sqlite3 *db; /* a second connection, to write events as we like */
	struct queue_report_period p;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
fx_open(struct fixture *f)
{
	char tmpl[] = "/tmp/dr-test-report.XXXXXX", *err = NULL, *path;

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	f->root = xstrdup(tmpl);
	f->dir = xasprintf("%s/q", tmpl);
	if ((f->q = queue_open(f->dir, &err)) == NULL) {
		printf("queue_open: %s\n", err);
		exit(2);
	}
	path = xasprintf("%s/queue.db", f->dir);
	if (sqlite3_open(path, &f->db) != SQLITE_OK)
		exit(2);
	sqlite3_busy_timeout(f->db, 5000);
	free(path);
	f->p.name = "test";
	f->p.since = T0;
	f->p.until = T0 + 24 * H;
	f->p.step = H;
}

static void
fx_close(struct fixture *f)
{
	sqlite3_close(f->db);
	queue_close(f->q);
	nftw(f->root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f->root);
	free(f->dir);
}

/* One event, as deliver_decide writes it, at a chosen time. */
static void
ev(struct fixture *f, const char *msgid, const char *addr, time_t at,
    const char *type, const char *fields)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(f->db,
	        "INSERT INTO events (msgid, addr, at, type, fields) "
	        "VALUES (?, ?, ?, ?, ?)",
	        -1, &st, NULL) != SQLITE_OK)
		exit(2);
	sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)at);
	sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, fields, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		printf("insert: %s\n", sqlite3_errmsg(f->db));
		exit(2);
	}
	sqlite3_finalize(st);
}

/* An attempt and the verdict event that follows it. */
static void
attempt(struct fixture *f, const char *msgid, const char *addr, time_t at,
    const char *fields)
{
	json_t *o = json_loads(fields, 0, NULL);
	const char *status = json_string_value(json_object_get(o, "status"));

	if (o == NULL || status == NULL) {
		printf("bad fixture fields: %s\n", fields);
		exit(2);
	}
	ev(f, msgid, addr, at, "attempt", fields);
	ev(f, msgid, addr, at,
	    status[0] == '2'     ? "delivered" :
	        status[0] == '5' ? "bounced" :
	                           "deferred",
	    "{\"status\":\"x\"}");
	json_decref(o);
}

#define DANE_323                                                             \
	"{\"status\":\"4.7.323\",\"result_type\":\"tlsa-invalid\",\"text\":" \
	"\"no TLSA record matches\",\"security\":\"dane\",\"mx\":"           \
	"\"mx.dane.example\",\"tls\":\"encrypted\",\"policy\":\"dane\"}"
#define DANE_324                                                               \
	"{\"status\":\"4.7.324\",\"result_type\":\"dnssec-invalid\",\"text\":" \
	"\"TLSA lookup bogus\",\"security\":\"dane\",\"mx\":"                  \
	"\"mx.dane.example\",\"tls\":\"none\",\"policy\":\"dane\"}"
#define OK(sec, tls)                                                    \
	"{\"status\":\"2.0.0\",\"text\":\"250 ok\",\"security\":\"" sec \
	"\",\"mx\":\"mx\",\"tls\":\"" tls "\"}"

/*
 * The data set, by domain (times from T0; period [T0, T0 + 24h)):
 *  dane.example   m1 a,b 4.7.323 at 100; m1 a again at 4000 (4.7.323);
 *                 m2 C@Dane.Example 4.7.324 at 5000       -> blocked dane
 *  sts.example    m3 4.7.5 certificate-expired at 7300   -> blocked sts
 *  old.example    m4 5.7.323, no "security" (old event)   -> blocked dane
 *  fail.example   m5 4.4.1, no result type                -> not blocked
 *  sent           m6 dane at 10 (bucket 0), m6 dane x2 + tls at 2h+5
 *                 (bucket 2), plain.example plaintext at 5h (bucket 5),
 *                 sts at 23h+1 (bucket 23); old events without
 *                 "security": verified+mta-sts (sts), trusted
 *                 (dane_trusted), none (plaintext) at 3h (bucket 3)
 *  notls.example  m7 4.7.321 starttls-not-supported at 6h
 *  log.example    m8, m9 delivered (tls) with would_fail tlsa-invalid;
 *  logsts.example m10 delivered with would_fail validation-failure
 *  outside        attempts at T0 - 1 and T0 + 24h: not counted
 */
static void
fx_fill(struct fixture *f)
{
	attempt(f, "m1", "a@dane.example", T0 + 100, DANE_323);
	attempt(f, "m1", "b@dane.example", T0 + 100, DANE_323);
	attempt(f, "m1", "a@dane.example", T0 + 4000, DANE_323);
	attempt(f, "m2", "C@Dane.Example", T0 + 5000, DANE_324);
	attempt(f, "m3", "x@sts.example", T0 + 7300,
	    "{\"status\":\"4.7.5\",\"result_type\":\"certificate-expired\","
	    "\"text\":\"certificate expired\",\"security\":\"sts\",\"mx\":"
	    "\"mx.sts.example\",\"tls\":\"encrypted\",\"policy\":"
	    "\"mta-sts\"}");
	attempt(f, "m4", "o@old.example", T0 + 8000,
	    "{\"status\":\"5.7.323\",\"result_type\":\"tlsa-invalid\","
	    "\"text\":\"old\",\"mx\":\"mx.old.example\",\"tls\":"
	    "\"encrypted\",\"policy\":\"dane\"}");
	attempt(f, "m5", "f@fail.example", T0 + 9000,
	    "{\"status\":\"4.4.1\",\"text\":\"connection refused\","
	    "\"security\":\"plaintext\",\"mx\":\"mx.fail.example\","
	    "\"tls\":\"none\"}");
	attempt(f, "m6", "d1@ok.example", T0 + 10, OK("dane", "verified"));
	attempt(
	    f, "m6", "d2@ok.example", T0 + 2 * H + 5, OK("dane", "verified"));
	attempt(
	    f, "m6", "d3@ok.example", T0 + 2 * H + 5, OK("dane", "verified"));
	attempt(
	    f, "m6", "t@ok.example", T0 + 2 * H + 5, OK("tls", "encrypted"));
	attempt(
	    f, "m6", "p@plain.example", T0 + 5 * H, OK("plaintext", "none"));
	attempt(
	    f, "m6", "s@ok.example", T0 + 23 * H + 1, OK("sts", "verified"));
	attempt(f, "m11", "os@ok.example", T0 + 3 * H,
	    "{\"status\":\"2.0.0\",\"mx\":\"mx\",\"tls\":\"verified\","
	    "\"policy\":\"mta-sts\"}");
	attempt(f, "m11", "ot@ok.example", T0 + 3 * H,
	    "{\"status\":\"2.0.0\",\"mx\":\"mx\",\"tls\":\"trusted\","
	    "\"policy\":\"dane\"}");
	attempt(f, "m11", "op@oldplain.example", T0 + 3 * H,
	    "{\"status\":\"2.0.0\",\"mx\":\"mx\",\"tls\":\"none\"}");
	attempt(f, "m7", "n@notls.example", T0 + 6 * H,
	    "{\"status\":\"4.7.321\",\"result_type\":\"starttls-not-"
	    "supported\",\"text\":\"no STARTTLS\",\"security\":\"dane\","
	    "\"mx\":\"mx.notls.example\",\"tls\":\"none\",\"policy\":"
	    "\"dane\"}");
	attempt(f, "m8", "l1@log.example", T0 + 7 * H,
	    "{\"status\":\"2.0.0\",\"security\":\"tls\",\"mx\":\"mx\","
	    "\"tls\":\"encrypted\",\"policy\":\"dane\",\"would_fail\":"
	    "\"tlsa-invalid (4.7.323)\",\"would_fail_text\":\"no match\"}");
	attempt(f, "m9", "l2@log.example", T0 + 8 * H,
	    "{\"status\":\"2.0.0\",\"security\":\"tls\",\"mx\":\"mx\","
	    "\"tls\":\"encrypted\",\"policy\":\"dane\",\"would_fail\":"
	    "\"tlsa-invalid (4.7.323)\",\"would_fail_text\":\"no match\"}");
	attempt(f, "m10", "l3@logsts.example", T0 + 9 * H,
	    "{\"status\":\"2.0.0\",\"security\":\"tls\",\"mx\":\"mx\","
	    "\"tls\":\"encrypted\",\"policy\":\"mta-sts\",\"would_fail\":"
	    "\"validation-failure (4.7.5)\",\"would_fail_text\":\"mx not "
	    "in policy\"}");
	attempt(f, "m0", "early@dane.example", T0 - 1, DANE_323);
	attempt(f, "m0", "late@dane.example", T0 + 24 * H, DANE_323);
	attempt(
	    f, "m0", "late@ok.example", T0 + 24 * H, OK("dane", "verified"));
	ev(f, "m1", NULL, T0 + 50, "received", "{\"kind\":\"mail\"}");
}

static json_int_t
jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *
jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The row of array a whose member key is value, or NULL. */
static json_t *
row_of(const json_t *a, const char *key, const char *value)
{
	json_t *r;
	size_t i;

	json_array_foreach(a, i, r)
	{
		if (jstr(r, key) != NULL && strcmp(jstr(r, key), value) == 0)
			return r;
	}
	return NULL;
}

static json_t *
report_of(struct fixture *f)
{
	json_t *r = queue_report(f->q, &f->p);

	if (r == NULL)
		printf("queue_report: %s\n", queue_error(f->q));
	return r;
}

static void
blocked_counts_and_errors(void)
{
	struct fixture f;
	json_t *r, *b, *d, *e;

	fx_open(&f);
	fx_fill(&f);
	r = report_of(&f);
	T_CHECK(r != NULL);
	b = json_object_get(r, "blocked");
	T_CHECK(json_array_size(b) == 4);
	/* Most messages first: dane.example (2) before the others (1). */
	d = json_array_get(b, 0);
	T_STREQ(jstr(d, "domain"), "dane.example");
	T_STREQ(jstr(d, "security"), "dane");
	T_CHECK(jint(d, "messages") == 2);
	T_CHECK(jint(d, "recipients") == 3); /* a, b, C (case folded) */
	T_CHECK(jint(d, "attempts") == 4);
	T_STREQ(jstr(d, "last"), "2023-11-14T23:23:20Z");
	/* Distinct errors, newest first. */
	T_CHECK(json_array_size(json_object_get(d, "errors")) == 2);
	e = json_array_get(json_object_get(d, "errors"), 0);
	T_STREQ(jstr(e, "status"), "4.7.324");
	T_STREQ(jstr(e, "result_type"), "dnssec-invalid");
	T_STREQ(jstr(e, "text"), "TLSA lookup bogus");
	T_CHECK(jint(e, "count") == 1);
	e = json_array_get(json_object_get(d, "errors"), 1);
	T_STREQ(jstr(e, "status"), "4.7.323");
	T_STREQ(jstr(e, "result_type"), "tlsa-invalid");
	T_CHECK(jint(e, "count") == 3);
	T_STREQ(jstr(e, "last"), "2023-11-14T23:06:40Z");
	d = row_of(b, "domain", "sts.example");
	T_CHECK(d != NULL);
	T_STREQ(jstr(d, "security"), "sts");
	T_CHECK(jint(d, "messages") == 1);
	e = json_array_get(json_object_get(d, "errors"), 0);
	T_STREQ(jstr(e, "status"), "4.7.5");
	T_STREQ(jstr(e, "result_type"), "certificate-expired");
	/* DANE required TLS and the server offered no STARTTLS. */
	d = row_of(b, "domain", "notls.example");
	T_CHECK(d != NULL);
	e = json_array_get(json_object_get(d, "errors"), 0);
	T_STREQ(jstr(e, "status"), "4.7.321");
	T_STREQ(jstr(e, "result_type"), "starttls-not-supported");
	/* Not blocked: a failure without a result type. */
	T_CHECK(row_of(b, "domain", "fail.example") == NULL);
	json_decref(r);
	fx_close(&f);
}

/* An event written before "security" existed counts by its tls/policy. */
static void
old_events_without_security(void)
{
	struct fixture f;
	json_t *r, *d, *tot;

	fx_open(&f);
	fx_fill(&f);
	r = report_of(&f);
	T_CHECK(r != NULL);
	d = row_of(json_object_get(r, "blocked"), "domain", "old.example");
	T_CHECK(d != NULL);
	T_STREQ(jstr(d, "security"), "dane");
	T_STREQ(jstr(json_array_get(json_object_get(d, "errors"), 0), "status"),
	    "5.7.323");
	tot = json_object_get(json_object_get(r, "sent"), "totals");
	/* 1 + 2 (new) ; sts: 1 new + 1 old; dane_trusted: 1 old; plaintext:
	 * 1 new + 1 old; tls: 1 + 3 log-only deliveries. */
	T_CHECK(jint(tot, "dane") == 3);
	T_CHECK(jint(tot, "sts") == 2);
	T_CHECK(jint(tot, "dane_trusted") == 1);
	T_CHECK(jint(tot, "plaintext") == 2);
	T_CHECK(jint(tot, "tls") == 4);
	T_CHECK(jint(json_object_get(r, "sent"), "total") == 12);
	json_decref(r);
	fx_close(&f);
}

static json_int_t
at(const json_t *series, const char *cls, size_t bucket)
{
	return json_integer_value(
	    json_array_get(json_object_get(series, cls), bucket));
}

static void
sent_buckets(void)
{
	struct fixture f;
	json_t *r, *s, *buckets;

	fx_open(&f);
	fx_fill(&f);
	r = report_of(&f);
	T_CHECK(r != NULL);
	buckets = json_object_get(json_object_get(r, "period"), "buckets");
	T_CHECK(json_array_size(buckets) == 24);
	T_STREQ(json_string_value(json_array_get(buckets, 0)),
	    "2023-11-14T22:00:00Z");
	T_STREQ(json_string_value(json_array_get(buckets, 23)),
	    "2023-11-15T21:00:00Z");
	s = json_object_get(json_object_get(r, "sent"), "series");
	T_CHECK(json_array_size(json_object_get(s, "dane")) == 24);
	T_CHECK(at(s, "dane", 0) == 1);
	T_CHECK(at(s, "dane", 1) == 0);
	T_CHECK(at(s, "dane", 2) == 2);
	T_CHECK(at(s, "tls", 2) == 1);
	T_CHECK(at(s, "sts", 3) == 1);
	T_CHECK(at(s, "dane_trusted", 3) == 1);
	T_CHECK(at(s, "plaintext", 3) == 1);
	T_CHECK(at(s, "plaintext", 5) == 1);
	T_CHECK(at(s, "tls", 7) == 1);
	T_CHECK(at(s, "sts", 23) == 1);
	/* The delivery at T0 + 24h is outside the period. */
	T_CHECK(at(s, "dane", 23) == 0);
	json_decref(r);
	fx_close(&f);
}

static void
no_tls_series_and_table(void)
{
	struct fixture f;
	json_t *r, *nt, *d;

	fx_open(&f);
	fx_fill(&f);
	r = report_of(&f);
	T_CHECK(r != NULL);
	nt = json_object_get(r, "no_tls");
	/* plain.example (5h), oldplain.example (3h), notls.example (6h). */
	T_CHECK(jint(nt, "total") == 3);
	T_CHECK(json_array_size(json_object_get(nt, "table")) == 3);
	d = json_array_get(json_object_get(nt, "table"), 0); /* newest */
	T_STREQ(jstr(d, "domain"), "notls.example");
	T_CHECK(jint(d, "messages") == 1);
	T_CHECK(jint(d, "failed") == 1);
	T_CHECK(jint(d, "plaintext") == 0);
	d = json_array_get(json_object_get(nt, "table"), 1);
	T_STREQ(jstr(d, "domain"), "plain.example");
	T_CHECK(jint(d, "plaintext") == 1);
	T_STREQ(jstr(d, "last"), "2023-11-15T03:00:00Z");
	T_CHECK(json_integer_value(
	            json_array_get(json_object_get(nt, "domains"), 3)) == 1);
	T_CHECK(json_integer_value(
	            json_array_get(json_object_get(nt, "domains"), 5)) == 1);
	T_CHECK(json_integer_value(
	            json_array_get(json_object_get(nt, "messages"), 6)) == 1);
	T_CHECK(json_integer_value(
	            json_array_get(json_object_get(nt, "domains"), 4)) == 0);
	/* fail.example failed without TLS but not for lack of STARTTLS. */
	T_CHECK(row_of(json_object_get(nt, "table"), "domain",
	            "fail.example") == NULL);
	json_decref(r);
	fx_close(&f);
}

static void
impact_counts_and_shares(void)
{
	struct fixture f;
	json_t *r, *t, *w, *d, *e;

	fx_open(&f);
	fx_fill(&f);
	r = queue_report_impact(f.q, &f.p);
	T_CHECK(r != NULL);
	t = json_object_get(r, "totals");
	/* dane sts old fail ok plain oldplain notls log logsts: 10 domains;
	 * m1..m11 less m0: 11 messages; recipients: a b C x o f d1 d2 d3 t p
	 * s os ot op n l1 l2 l3 = 19. */
	T_CHECK(jint(t, "domains") == 10);
	T_CHECK(jint(t, "messages") == 11);
	T_CHECK(jint(t, "recipients") == 19);
	w = json_object_get(r, "would_block");
	T_CHECK(jint(w, "domains") == 2);
	T_CHECK(jint(w, "messages") == 3);
	T_CHECK(jint(w, "recipients") == 3);
	T_CHECK(fabs(json_real_value(json_object_get(w, "domains_percent")) -
	            20.0) < 1e-9);
	T_CHECK(fabs(json_real_value(json_object_get(w, "messages_percent")) -
	            300.0 / 11.0) < 1e-9);
	d = json_array_get(json_object_get(r, "domains"), 0);
	T_STREQ(jstr(d, "domain"), "log.example");
	T_STREQ(jstr(d, "security"), "dane");
	T_CHECK(jint(d, "messages") == 2);
	e = json_array_get(json_object_get(d, "errors"), 0);
	T_STREQ(jstr(e, "result_type"), "tlsa-invalid");
	T_STREQ(jstr(e, "status"), "4.7.323");
	T_STREQ(jstr(e, "text"), "no match");
	T_CHECK(jint(e, "count") == 2);
	d = json_array_get(json_object_get(r, "domains"), 1);
	T_STREQ(jstr(d, "domain"), "logsts.example");
	T_STREQ(jstr(d, "security"), "sts");
	e = json_array_get(json_object_get(d, "errors"), 0);
	T_STREQ(jstr(e, "result_type"), "validation-failure");
	T_STREQ(jstr(e, "status"), "4.7.5");
	json_decref(r);
	fx_close(&f);
}

/* An empty queue: zeros everywhere, no division by zero. */
static void
impact_empty(void)
{
	struct fixture f;
	json_t *r, *w;

	fx_open(&f);
	r = queue_report_impact(f.q, &f.p);
	T_CHECK(r != NULL);
	w = json_object_get(r, "would_block");
	T_CHECK(jint(w, "domains") == 0);
	T_CHECK(json_real_value(json_object_get(w, "domains_percent")) == 0.0);
	T_CHECK(json_is_null(
	    json_object_get(json_object_get(r, "period"), "data_since")));
	json_decref(r);
	r = report_of(&f);
	T_CHECK(r != NULL);
	T_CHECK(json_array_size(json_object_get(r, "blocked")) == 0);
	T_CHECK(jint(json_object_get(r, "sent"), "total") == 0);
	json_decref(r);
	fx_close(&f);
}

/* A failure whose would_fail has no result type: "TEXT (STATUS)". */
static void
impact_failure_without_type(void)
{
	struct fixture f;
	json_t *r, *e;

	fx_open(&f);
	attempt(&f, "m1", "a@x.example", T0 + 5,
	    "{\"status\":\"2.0.0\",\"tls\":\"none\",\"mx\":\"mx\","
	    "\"would_fail\":\"no usable (TLSA) records (4.7.323)\"}");
	r = queue_report_impact(f.q, &f.p);
	T_CHECK(r != NULL);
	e = json_array_get(
	    json_object_get(
	        json_array_get(json_object_get(r, "domains"), 0), "errors"),
	    0);
	T_CHECK(json_is_null(json_object_get(e, "result_type")));
	T_STREQ(jstr(e, "status"), "4.7.323");
	json_decref(r);
	fx_close(&f);
}

/*
 * A would_fail that the domain's MTA-STS policy in testing mode only
 * reports (sts_mode = testing): enforcing here would not block it either,
 * so /impact does not count it; the same failure under an enforce policy
 * does count (RFC 8461 section 5).
 */
static void
impact_sts_testing_not_counted(void)
{
	struct fixture f;
	json_t *r, *w, *d;

	fx_open(&f);
	attempt(&f, "m1", "a@testing.example", T0 + 5,
	    "{\"status\":\"2.0.0\",\"tls\":\"encrypted\",\"mx\":\"mx\","
	    "\"policy\":\"mta-sts\",\"would_fail\":\"validation-failure "
	    "(4.7.5)\",\"would_fail_text\":\"mx not in policy\","
	    "\"sts_mode\":\"testing\"}");
	attempt(&f, "m2", "b@enforce.example", T0 + 6,
	    "{\"status\":\"2.0.0\",\"tls\":\"encrypted\",\"mx\":\"mx\","
	    "\"policy\":\"mta-sts\",\"would_fail\":\"validation-failure "
	    "(4.7.5)\",\"would_fail_text\":\"mx not in policy\"}");
	r = queue_report_impact(f.q, &f.p);
	T_CHECK(r != NULL);
	w = json_object_get(r, "would_block");
	T_CHECK(jint(w, "domains") == 1);
	T_CHECK(jint(w, "messages") == 1);
	d = json_object_get(r, "domains");
	T_CHECK(json_array_size(d) == 1);
	T_STREQ(jstr(json_array_get(d, 0), "domain"), "enforce.example");
	json_decref(r);
	fx_close(&f);
}

/* More blocked domains than a table lists: cut and said so. */
static void
blocked_truncated(void)
{
	struct fixture f;
	json_t *r;
	char addr[64];
	int i;

	fx_open(&f);
	sqlite3_exec(f.db, "BEGIN", NULL, NULL, NULL);
	for (i = 0; i < QUEUE_REPORT_MAX_ROWS + 5; i++) {
		snprintf(addr, sizeof(addr), "a@d%d.example", i);
		ev(&f, "m", addr, T0 + i, "attempt", DANE_323);
	}
	sqlite3_exec(f.db, "COMMIT", NULL, NULL, NULL);
	r = report_of(&f);
	T_CHECK(r != NULL);
	T_CHECK(json_array_size(json_object_get(r, "blocked")) ==
	    QUEUE_REPORT_MAX_ROWS);
	T_CHECK(json_is_true(json_object_get(r, "blocked_truncated")));
	json_decref(r);
	fx_close(&f);
}

/* A damaged row (details that are not JSON) is written and skipped: it
 * neither fails the event's INSERT (the indexes) nor the report. */
static void
damaged_row_ignored(void)
{
	struct fixture f;
	json_t *r;

	fx_open(&f);
	ev(&f, "m1", "a@x.example", T0 + 5, "attempt", "{not json");
	attempt(&f, "m2", "b@x.example", T0 + 6, DANE_323);
	r = report_of(&f);
	T_CHECK(r != NULL);
	T_CHECK(json_array_size(json_object_get(r, "blocked")) == 1);
	json_decref(r);
	r = queue_report_impact(f.q, &f.p);
	T_CHECK(r != NULL);
	T_CHECK(jint(json_object_get(r, "totals"), "messages") == 2);
	json_decref(r);
	fx_close(&f);
}

static void
periods(void)
{
	struct queue_report_period p;

	T_CHECK(queue_report_period("1h", 100000, &p) == 0);
	T_CHECK(p.since == 100000 - 3600 && p.step == 120);
	T_CHECK(queue_report_period("1d", 100000, &p) == 0);
	T_CHECK(p.step == 3600 && p.until == 100001);
	T_CHECK(queue_report_period("7d", 1000000, &p) == 0);
	T_CHECK(p.since == 1000000 - 7 * 86400 && p.step == 4 * 3600);
	T_CHECK(queue_report_period("30d", 3000000, &p) == 0);
	T_CHECK(p.since == 3000000 - 30 * 86400 && p.step == 86400);
	T_STREQ(p.name, "30d");
	T_CHECK(queue_report_period("2d", 0, &p) == -1);
	T_CHECK(queue_report_period("", 0, &p) == -1);
}

/* --- queue_report_json: the documents both stores build --- */

/* would_fail as deliver_decide.c writes it, and what the table shows. */
static void
json_would_error(void)
{
	static const struct {
		const char *wf, *type, *status;
	} cases[] = {
		{ "tlsa-invalid (4.7.323)", "tlsa-invalid", "4.7.323" },
		{ "no usable TLSA (4.7.5)", NULL, "4.7.5" }, /* a text */
		{ "a (b) (4.7.5)", NULL, "4.7.5" },          /* last () */
		{ "tlsa-invalid", NULL, "tlsa-invalid" },    /* no status */
		{ "(4.7.5)", NULL, "(4.7.5)" },              /* no type */
		{ "x(4.7.5)", NULL, "x(4.7.5)" },            /* no space */
		{ "", NULL, "" },
	};
	size_t i;
	json_t *o;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = queue_report_would_error(cases[i].wf, "why");
		T_STREQ(json_string_value(json_object_get(o, "status")),
		    cases[i].status);
		if (cases[i].type == NULL)
			T_CHECK(
			    json_is_null(json_object_get(o, "result_type")));
		else
			T_STREQ(json_string_value(
			            json_object_get(o, "result_type")),
			    cases[i].type);
		T_STREQ(json_string_value(json_object_get(o, "text")), "why");
		json_decref(o);
	}
	o = queue_report_would_error(NULL, NULL);
	T_CHECK(json_is_null(json_object_get(o, "text")));
	json_decref(o);
}

static json_t *
json_row(const char *domain, const char *sec)
{
	return json_pack("{s:s, s:s}", "domain", domain, "security", sec);
}

/* At most QUEUE_REPORT_MAX_ROWS rows (then cut), QUEUE_REPORT_MAX_ERRORS
 * errors per row, errors routed by domain and security. */
static void
json_table_limits(void)
{
	struct queue_report_table t;
	char d[32];
	json_t *rows;
	int i;

	queue_report_table_init(&t);
	for (i = 0; i < QUEUE_REPORT_MAX_ROWS; i++) {
		snprintf(d, sizeof(d), "d%d.example", i);
		T_CHECK(queue_report_table_row(&t, json_row(d, "dane")));
	}
	T_CHECK(!t.cut);
	T_CHECK(!queue_report_table_row(&t, json_row("more.example", "dane")));
	T_CHECK(t.cut);
	for (i = 0; i < QUEUE_REPORT_MAX_ERRORS + 5; i++)
		queue_report_table_error(
		    &t, "d0.example", "dane", json_pack("{s:i}", "n", i));
	queue_report_table_error(&t, "d0.example", "sts", json_object());
	queue_report_table_error(&t, "more.example", "dane", json_object());
	queue_report_table_error(&t, NULL, NULL, json_object());
	rows = queue_report_table_rows(&t);
	T_CHECK(json_array_size(rows) == QUEUE_REPORT_MAX_ROWS);
	T_CHECK(json_array_size(json_object_get(json_array_get(rows, 0),
	            "errors")) == QUEUE_REPORT_MAX_ERRORS);
	T_CHECK(json_integer_value(json_object_get(
	            json_array_get(
	                json_object_get(json_array_get(rows, 0), "errors"), 0),
	            "n")) == 0);
	T_CHECK(json_array_size(
	            json_object_get(json_array_get(rows, 1), "errors")) == 0);
	json_decref(rows);
}

/* Buckets of a period, and counts outside them or of no class. */
static void
json_sent_buckets(void)
{
	struct queue_report_period p = { "x", 1000, 1000 + 3600, 600 };
	json_t *sent = queue_report_sent_new(&p), *per;

	/* since 1000 rounds down to 600: 600..4599 is 7 buckets. */
	T_CHECK(queue_report_start(&p) == 600);
	T_CHECK(queue_report_nbuckets(&p) == 7);
	per = queue_report_period_new(&p, false, 0, true);
	T_CHECK(json_array_size(json_object_get(per, "buckets")) == 7);
	T_CHECK(json_is_null(json_object_get(per, "data_since")));
	json_decref(per);
	queue_report_sent_add(sent, 0, "dane", 2);
	queue_report_sent_add(sent, 6, "sts", 1);
	queue_report_sent_add(sent, 7, "tls", 4);   /* past the last: total */
	queue_report_sent_add(sent, -1, "tls", 1);  /* before the first */
	queue_report_sent_add(sent, 1, "bogus", 9); /* a damaged row */
	queue_report_sent_add(sent, 1, NULL, 9);
	T_CHECK(json_integer_value(json_object_get(sent, "total")) == 8);
	T_CHECK(json_integer_value(json_array_get(
	            json_object_get(json_object_get(sent, "series"), "dane"),
	            0)) == 2);
	T_CHECK(json_integer_value(json_object_get(
	            json_object_get(sent, "totals"), "tls")) == 5);
	json_decref(sent);
}

int
main(void)
{
	T_RUN(periods);
	T_RUN(blocked_counts_and_errors);
	T_RUN(old_events_without_security);
	T_RUN(sent_buckets);
	T_RUN(no_tls_series_and_table);
	T_RUN(impact_counts_and_shares);
	T_RUN(impact_empty);
	T_RUN(impact_failure_without_type);
	T_RUN(impact_sts_testing_not_counted);
	T_RUN(blocked_truncated);
	T_RUN(damaged_row_ignored);
	T_RUN(json_would_error);
	T_RUN(json_table_limits);
	T_RUN(json_sent_buckets);
	T_EXIT();
}
