/*
 * tlsrpt: the TLS-RPT store and the RFC 8460 §4.4 report built from it.
 *
 * Sessions are folded into counters at record time (an upsert on the
 * identifying fields), so recording is one short transaction and the
 * report is a plain read. Absent optional fields are stored as '' rather
 * than NULL because SQLite's UNIQUE treats every NULL as distinct, which
 * would defeat the aggregation. Policy strings and MX patterns are kept
 * as a compact JSON array: one text column that compares exactly and
 * decodes back without loss.
 */
#include "tlsrpt/tlsrpt.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_int.h"

#define TLSRPT_SCHEMA_VERSION 1
#define TLSRPT_APP_ID         0x44525452 /* "DRTR" in the database header */
#define TLSRPT_BUSY_MS        5000
#define TLSRPT_MEMORY         ":memory:"

enum tlsrpt_st {
	ST_POLICY_UPSERT,
	ST_FAILURE_UPSERT,
	ST_DOMAINS,
	ST_POLICIES,
	ST_FAILURES,
	ST_MARK_SENT,
	ST_SENT,
	ST_COUNT
};

struct tlsrpt_store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *st[ST_COUNT];
	char err[512];
};

static const char tlsrpt_schema_sql[] =
    "CREATE TABLE policies ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " day TEXT NOT NULL,"
    " domain TEXT NOT NULL,"
    " type INTEGER NOT NULL,"
    " strings TEXT NOT NULL," /* JSON array */
    " mx TEXT NOT NULL,"      /* JSON array */
    " successes INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (day, domain, type, strings, mx));"
    "CREATE TABLE failures ("
    " policy INTEGER NOT NULL REFERENCES policies(id),"
    " result_type TEXT NOT NULL,"
    " sending_mta_ip TEXT NOT NULL,"
    " mx_hostname TEXT NOT NULL,"
    " mx_helo TEXT NOT NULL,"
    " receiving_ip TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " count INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (policy, result_type, sending_mta_ip, mx_hostname, mx_helo,"
    "  receiving_ip, reason));"
    "CREATE TABLE sent ("
    " day TEXT NOT NULL,"
    " domain TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (day, domain));";

static const char *const tlsrpt_st_sql[ST_COUNT] = {
	[ST_POLICY_UPSERT] = "INSERT INTO policies (day, domain, type, "
	                     "strings, mx, successes, failures) VALUES "
	                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT "
	                     "(day, domain, type, strings, mx) DO UPDATE "
	                     "SET successes = successes + ?6, "
	                     "failures = failures + ?7 RETURNING id",
	[ST_FAILURE_UPSERT] = "INSERT INTO failures (policy, result_type, "
	                      "sending_mta_ip, mx_hostname, mx_helo, "
	                      "receiving_ip, reason, count) VALUES "
	                      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, 1) ON CONFLICT "
	                      "(policy, result_type, sending_mta_ip, "
	                      "mx_hostname, mx_helo, receiving_ip, reason) "
	                      "DO UPDATE SET count = count + 1",
	[ST_DOMAINS] = "SELECT DISTINCT domain FROM policies WHERE day = ?1 "
	               "ORDER BY domain",
	[ST_POLICIES] = "SELECT id, type, strings, mx, successes, failures "
	                "FROM policies WHERE day = ?1 AND domain = ?2 "
	                "ORDER BY id",
	[ST_FAILURES] = "SELECT result_type, sending_mta_ip, mx_hostname, "
	                "mx_helo, receiving_ip, reason, count FROM failures "
	                "WHERE policy = ?1 ORDER BY count DESC, result_type, "
	                "mx_hostname, receiving_ip, sending_mta_ip, mx_helo, "
	                "reason",
	[ST_MARK_SENT] = "INSERT OR IGNORE INTO sent (day, domain, at) "
	                 "VALUES (?1, ?2, ?3)",
	[ST_SENT] = "SELECT 1 FROM sent WHERE day = ?1 AND domain = ?2",
};

const char *
tlsrpt_policy_type_str(enum tlsrpt_policy_type t)
{
	switch (t) {
	case TLSRPT_TLSA:
		return "tlsa";
	case TLSRPT_STS:
		return "sts";
	case TLSRPT_NO_POLICY:
		return "no-policy-found";
	}
	return "no-policy-found";
}

static int tlsrpt_failx(struct tlsrpt_store *s, const char *fmt, ...)
    DR_PRINTF(2, 3);

static int
tlsrpt_failx(struct tlsrpt_store *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* A database error: what we were doing and what SQLite says. */
static int
tlsrpt_fail(struct tlsrpt_store *s, const char *what)
{
	return tlsrpt_failx(
	    s, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

sqlite3 *
tlsrpt_store_db(struct tlsrpt_store *s)
{
	return s->db;
}

int
tlsrpt_store_fail(struct tlsrpt_store *s, const char *what)
{
	return tlsrpt_fail(s, what);
}

const char *
tlsrpt_store_error(const struct tlsrpt_store *s)
{
	return s->err;
}

int
tlsrpt_day(time_t t, char out[TLSRPT_DAY_LEN])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1 ||
	    tm.tm_year + 1900 > 9999)
		return -1;
	if (strftime(out, TLSRPT_DAY_LEN, "%Y-%m-%d", &tm) != 10)
		return -1;
	return 0;
}

/* Read n decimal digits at p. */
static int
tlsrpt_digits(const char *p, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Whether day is a real calendar day written "YYYY-MM-DD". */
static bool
tlsrpt_day_valid(const char *day)
{
	struct tm tm;
	char again[TLSRPT_DAY_LEN];
	int y, m, d;

	if (day == NULL || strlen(day) != 10 || day[4] != '-' || day[7] != '-')
		return false;
	y = tlsrpt_digits(day, 4);
	m = tlsrpt_digits(day + 5, 2);
	d = tlsrpt_digits(day + 8, 2);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > 31)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	/* 2026-02-30 normalizes to another day and is refused. */
	return tlsrpt_day(timegm(&tm), again) == 0 && strcmp(again, day) == 0;
}

time_t
tlsrpt_day_start(const char *day)
{
	struct tm tm;

	if (!tlsrpt_day_valid(day))
		return (time_t)-1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = tlsrpt_digits(day, 4) - 1900;
	tm.tm_mon = tlsrpt_digits(day + 5, 2) - 1;
	tm.tm_mday = tlsrpt_digits(day + 8, 2);
	return timegm(&tm);
}

/* The policy domain as stored: lower case, no trailing dot. */
static char *
tlsrpt_domain_norm(const char *domain)
{
	char *d = xstrdup(domain);
	size_t i, len = strlen(d);

	if (len > 1 && d[len - 1] == '.')
		d[len - 1] = '\0';
	for (i = 0; d[i] != '\0'; i++)
		d[i] = (char)tolower((unsigned char)d[i]);
	return d;
}

/* Run one statement that yields one integer (or none: *out untouched). */
static int
tlsrpt_int(struct tlsrpt_store *s, const char *sql, sqlite3_int64 *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return tlsrpt_fail(s, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		tlsrpt_fail(s, sql);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
tlsrpt_wal(struct tlsrpt_store *s)
{
	sqlite3_int64 unused = 0;
	sqlite3_stmt *st;
	const unsigned char *mode = NULL;
	int ok;

	if (sqlite3_prepare_v2(
	        s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return tlsrpt_fail(s, "journal_mode");
	if (sqlite3_step(st) == SQLITE_ROW)
		mode = sqlite3_column_text(st, 0);
	ok = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	sqlite3_finalize(st);
	if (!ok)
		return tlsrpt_failx(
		    s, "%s: cannot switch to WAL mode", s->path);
	/* Counters lost in a crash are only statistics: NORMAL is enough. */
	if (tlsrpt_int(s, "PRAGMA cache_size = -128", &unused) == -1)
		return -1; /* counters: a small page cache is enough */
	return tlsrpt_int(s, "PRAGMA synchronous = NORMAL", &unused);
}

static int
tlsrpt_check(struct tlsrpt_store *s, sqlite3_int64 version, sqlite3_int64 id)
{
	if (id != TLSRPT_APP_ID)
		return tlsrpt_failx(s,
		    "%s: a SQLite database of another program "
		    "(application id %lld), not a danerelay TLS-RPT store",
		    s->path, (long long)id);
	if (version > TLSRPT_SCHEMA_VERSION)
		return tlsrpt_failx(s,
		    "%s: TLS-RPT store schema version %lld is newer than "
		    "this danerelay supports (%d)",
		    s->path, (long long)version, TLSRPT_SCHEMA_VERSION);
	return 0;
}

/* An empty database gets the schema; another process may race us. */
static int
tlsrpt_create(struct tlsrpt_store *s)
{
	sqlite3_int64 version = 0, ntables = 0;
	char pragmas[128];

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return tlsrpt_fail(s, "begin");
	if (tlsrpt_int(s, "PRAGMA user_version", &version) == -1 ||
	    tlsrpt_int(s, "SELECT count(*) FROM sqlite_master", &ntables) == -1)
		goto fail;
	if (version == 0 && ntables > 0) {
		tlsrpt_failx(s,
		    "%s: a SQLite database of another program, not a "
		    "danerelay TLS-RPT store",
		    s->path);
		goto fail;
	}
	snprintf(pragmas, sizeof(pragmas),
	    "PRAGMA application_id = %d; PRAGMA user_version = %d;",
	    TLSRPT_APP_ID, TLSRPT_SCHEMA_VERSION);
	if (version == 0 &&
	    (sqlite3_exec(s->db, tlsrpt_schema_sql, NULL, NULL, NULL) !=
	            SQLITE_OK ||
	        sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)) {
		tlsrpt_fail(s, "create schema");
		goto fail;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		tlsrpt_fail(s, "commit schema");
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
tlsrpt_init(struct tlsrpt_store *s)
{
	sqlite3_int64 version = 0, id = 0;
	size_t i;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, TLSRPT_BUSY_MS);
	if (tlsrpt_int(s, "PRAGMA user_version", &version) == -1 ||
	    tlsrpt_int(s, "PRAGMA application_id", &id) == -1)
		return tlsrpt_failx(s,
		    "%s: not a danerelay TLS-RPT store, or damaged: %s",
		    s->path, sqlite3_errmsg(s->db));
	if (version != 0 && tlsrpt_check(s, version, id) == -1)
		return -1;
	/* A store in memory has no journal to switch to WAL. */
	if ((strcmp(s->path, TLSRPT_MEMORY) != 0 && tlsrpt_wal(s) == -1) ||
	    (version == 0 && tlsrpt_create(s) == -1))
		return -1;
	if (tlsrpt_int(s, "PRAGMA user_version", &version) == -1 ||
	    tlsrpt_int(s, "PRAGMA application_id", &id) == -1 ||
	    tlsrpt_check(s, version, id) == -1)
		return -1;
	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, tlsrpt_st_sql[i], -1,
		        SQLITE_PREPARE_PERSISTENT, &s->st[i],
		        NULL) != SQLITE_OK)
			return tlsrpt_fail(s, "damaged TLS-RPT store schema");
	}
	return tlsrpt_outbox_init(s);
}

struct tlsrpt_store *
tlsrpt_store_open(const char *path, char **errstr)
{
	struct tlsrpt_store *s = xcalloc(1, sizeof(*s));
	int fd;

	s->path = xstrdup(path);
	/*
	 * Create it private before SQLite does (with the umask's mode). Only
	 * when missing: a close() of the file would drop the POSIX locks of
	 * every other connection of this process to it (the relay's, when
	 * the console opens its own).
	 */
	fd = access(path, F_OK) == 0 || strcmp(path, TLSRPT_MEMORY) == 0 ?
	    -2 :
	    open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		tlsrpt_store_close(s);
		return NULL;
	}
	if (fd >= 0)
		close(fd);
	if (sqlite3_open_v2(path, &s->db,
	        SQLITE_OPEN_READWRITE |
	            (fd == -2 && strcmp(path, TLSRPT_MEMORY) == 0 ?
	                    SQLITE_OPEN_CREATE :
	                    0),
	        NULL) != SQLITE_OK) {
		tlsrpt_fail(s, "open");
		goto fail;
	}
	if (tlsrpt_init(s) == -1)
		goto fail;
	return s;
fail:
	*errstr = xstrdup(s->err);
	tlsrpt_store_close(s);
	return NULL;
}

void
tlsrpt_store_close(struct tlsrpt_store *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

/* n strings as a compact JSON array; NULL on a NULL or non-UTF-8 entry. */
static char *
tlsrpt_strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	char *out = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		json_t *e = v[i] != NULL ? json_string(v[i]) : NULL;

		if (e == NULL || json_array_append_new(a, e) == -1)
			goto done;
	}
	out = json_dumps(a, JSON_COMPACT);
done:
	json_decref(a);
	return out;
}

/* Bind an optional text: absent is ''. */
static int
tlsrpt_bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v != NULL ? v : "", -1, SQLITE_STATIC);
}

/* Run st to its end; its first column of the first row into *id. */
static int
tlsrpt_run(sqlite3_stmt *st, sqlite3_int64 *id)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (id != NULL)
			*id = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
tlsrpt_strcmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;

	if (*x == NULL || *y == NULL)
		return *x == NULL ? (*y == NULL ? 0 : -1) : 1;
	return strcmp(*x, *y);
}

/*
 * The policy strings as stored. A TLSA RRset comes in any order (DNS
 * keeps no order within an RRset): sorted, so that one RRset is one
 * policy of the report, also when nodes of a fleet saw it in different
 * orders. STS policy lines keep the policy's own order.
 */
static char *
tlsrpt_policy_strings(const struct tlsrpt_session *t)
{
	const char **v;
	char *out;

	if (t->type != TLSRPT_TLSA || t->npolicy_strings < 2)
		return tlsrpt_strv_json(t->policy_strings, t->npolicy_strings);
	v = xreallocarray(NULL, t->npolicy_strings, sizeof(*v));
	memcpy(v, t->policy_strings, t->npolicy_strings * sizeof(*v));
	qsort(v, t->npolicy_strings, sizeof(*v), tlsrpt_strcmp);
	out = tlsrpt_strv_json(v, t->npolicy_strings);
	free(v);
	return out;
}

static int
tlsrpt_record_policy(struct tlsrpt_store *s, const struct tlsrpt_session *t,
    const char *day, const char *domain, sqlite3_int64 *id)
{
	sqlite3_stmt *st = s->st[ST_POLICY_UPSERT];
	char *strings, *mx;
	int rc = -1;

	strings = tlsrpt_policy_strings(t);
	mx = tlsrpt_strv_json(t->mx_hosts, t->nmx_hosts);
	if (strings == NULL || mx == NULL) {
		tlsrpt_failx(s, "policy string or mx host NULL or not UTF-8");
		goto done;
	}
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)t->type);
	sqlite3_bind_text(st, 4, strings, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, mx, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, t->success ? 1 : 0);
	sqlite3_bind_int(st, 7, t->success ? 0 : 1);
	rc = tlsrpt_run(st, id);
	if (rc == -1)
		tlsrpt_fail(s, "record policy");
done:
	free(strings);
	free(mx);
	return rc;
}

static int
tlsrpt_record_failure(struct tlsrpt_store *s, const struct tlsrpt_session *t,
    sqlite3_int64 policy)
{
	sqlite3_stmt *st = s->st[ST_FAILURE_UPSERT];

	sqlite3_bind_int64(st, 1, policy);
	sqlite3_bind_text(st, 2, t->result_type, -1, SQLITE_STATIC);
	tlsrpt_bind_opt(st, 3, t->sending_mta_ip);
	tlsrpt_bind_opt(st, 4, t->receiving_mx_hostname);
	tlsrpt_bind_opt(st, 5, t->receiving_mx_helo);
	tlsrpt_bind_opt(st, 6, t->receiving_ip);
	tlsrpt_bind_opt(st, 7, t->failure_reason_code);
	if (tlsrpt_run(st, NULL) == -1)
		return tlsrpt_fail(s, "record failure");
	return 0;
}

static int
tlsrpt_session_valid(struct tlsrpt_store *s, const struct tlsrpt_session *t)
{
	if (t->policy_domain == NULL || t->policy_domain[0] == '\0')
		return tlsrpt_failx(s, "session without policy domain");
	if (t->type != TLSRPT_TLSA && t->type != TLSRPT_STS &&
	    t->type != TLSRPT_NO_POLICY)
		return tlsrpt_failx(s, "bad policy type %d", (int)t->type);
	if (!t->success &&
	    (t->result_type == NULL || t->result_type[0] == '\0'))
		return tlsrpt_failx(s, "failed session without result type");
	if ((t->npolicy_strings > 0 && t->policy_strings == NULL) ||
	    (t->nmx_hosts > 0 && t->mx_hosts == NULL))
		return tlsrpt_failx(s, "policy strings or mx hosts missing");
	return 0;
}

int
tlsrpt_store_record(struct tlsrpt_store *s, const struct tlsrpt_session *t)
{
	char day[TLSRPT_DAY_LEN], *domain;
	sqlite3_int64 policy = 0;
	int rc = -1;

	s->err[0] = '\0';
	if (tlsrpt_session_valid(s, t) == -1)
		return -1;
	if (tlsrpt_day(t->when, day) == -1)
		return tlsrpt_failx(s, "session time out of range");
	domain = tlsrpt_domain_norm(t->policy_domain);
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		tlsrpt_fail(s, "begin");
		goto done;
	}
	if (tlsrpt_record_policy(s, t, day, domain, &policy) == -1 ||
	    (!t->success && tlsrpt_record_failure(s, t, policy) == -1)) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto done;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		tlsrpt_fail(s, "commit");
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto done;
	}
	rc = 0;
done:
	free(domain);
	return rc;
}

void
tlsrpt_strv_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

char **
tlsrpt_store_domains(struct tlsrpt_store *s, const char *day, size_t *n)
{
	sqlite3_stmt *st = s->st[ST_DOMAINS];
	char **v = xcalloc(1, sizeof(*v));
	int rc;

	*n = 0;
	if (!tlsrpt_day_valid(day)) {
		tlsrpt_failx(s, "bad day \"%s\", expected YYYY-MM-DD",
		    day != NULL ? day : "(null)");
		free(v);
		return NULL;
	}
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, *n + 2, sizeof(*v));
		v[*n] = xstrdup((const char *)sqlite3_column_text(st, 0));
		v[++*n] = NULL;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		tlsrpt_fail(s, "list domains");
		tlsrpt_strv_free(v);
		*n = 0;
		return NULL;
	}
	return v;
}

/* Set key to the optional text column i of st when it is not ''. */
static void
tlsrpt_set_opt(json_t *o, const char *key, sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	if (v != NULL && v[0] != '\0')
		json_object_set_new(o, key, json_string(v));
}

/* The failure-details array of one policy row, or NULL on error. */
static json_t *
tlsrpt_failure_details(struct tlsrpt_store *s, sqlite3_int64 policy)
{
	sqlite3_stmt *st = s->st[ST_FAILURES];
	json_t *a = json_array(), *o;
	int rc;

	sqlite3_bind_int64(st, 1, policy);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		o = json_object();
		tlsrpt_set_opt(o, "result-type", st, 0);
		tlsrpt_set_opt(o, "sending-mta-ip", st, 1);
		tlsrpt_set_opt(o, "receiving-mx-hostname", st, 2);
		tlsrpt_set_opt(o, "receiving-mx-helo", st, 3);
		tlsrpt_set_opt(o, "receiving-ip", st, 4);
		json_object_set_new(o, "failed-session-count",
		    json_integer(sqlite3_column_int64(st, 6)));
		tlsrpt_set_opt(o, "failure-reason-code", st, 5);
		json_array_append_new(a, o);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		tlsrpt_fail(s, "read failure details");
		json_decref(a);
		return NULL;
	}
	return a;
}

/* Column i of st (a JSON array we wrote) decoded; NULL when damaged. */
static json_t *
tlsrpt_column_array(sqlite3_stmt *st, int i)
{
	const char *text = (const char *)sqlite3_column_text(st, i);
	json_t *a = text != NULL ? json_loads(text, 0, NULL) : NULL;

	if (a != NULL && !json_is_array(a)) {
		json_decref(a);
		a = NULL;
	}
	return a;
}

/* The "policy" object of the current row of the policies statement. */
static json_t *
tlsrpt_policy_json(sqlite3_stmt *st, const char *domain)
{
	json_t *p = json_object(), *strings, *mx;
	int type = sqlite3_column_int(st, 1);

	strings = tlsrpt_column_array(st, 2);
	mx = tlsrpt_column_array(st, 3);
	if (strings == NULL || mx == NULL) {
		json_decref(strings);
		json_decref(mx);
		json_decref(p);
		return NULL;
	}
	json_object_set_new(p, "policy-type",
	    json_string(tlsrpt_policy_type_str((enum tlsrpt_policy_type)type)));
	/* §4.4: both are arrays. no-policy-found has no policy string and
	 * only STS has MX patterns: left out rather than sent as []. */
	if (type != TLSRPT_NO_POLICY || json_array_size(strings) > 0)
		json_object_set(p, "policy-string", strings);
	json_object_set_new(p, "policy-domain", json_string(domain));
	if (json_array_size(mx) > 0)
		json_object_set(p, "mx-host", mx);
	json_decref(strings);
	json_decref(mx);
	return p;
}

/* One entry of "policies" from the current row; NULL on error. */
static json_t *
tlsrpt_policy_entry(
    struct tlsrpt_store *s, sqlite3_stmt *st, const char *domain)
{
	json_t *e, *p, *sum, *fd;

	if ((p = tlsrpt_policy_json(st, domain)) == NULL) {
		tlsrpt_failx(s, "%s: damaged policy row", s->path);
		return NULL;
	}
	if ((fd = tlsrpt_failure_details(s, sqlite3_column_int64(st, 0))) ==
	    NULL) {
		json_decref(p);
		return NULL;
	}
	sum = json_object();
	json_object_set_new(sum, "total-successful-session-count",
	    json_integer(sqlite3_column_int64(st, 4)));
	json_object_set_new(sum, "total-failure-session-count",
	    json_integer(sqlite3_column_int64(st, 5)));
	e = json_object();
	json_object_set_new(e, "policy", p);
	json_object_set_new(e, "summary", sum);
	json_object_set_new(e, "failure-details", fd);
	return e;
}

/* The "policies" array for domain on day; NULL on error or no data. */
static json_t *
tlsrpt_policies(struct tlsrpt_store *s, const char *domain, const char *day)
{
	sqlite3_stmt *st = s->st[ST_POLICIES];
	json_t *a = json_array(), *e;
	int rc;

	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((e = tlsrpt_policy_entry(s, st, domain)) == NULL)
			break;
		json_array_append_new(a, e);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		tlsrpt_fail(s, "read policies");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE || json_array_size(a) == 0) {
		if (rc == SQLITE_DONE)
			tlsrpt_failx(
			    s, "no TLS-RPT data for %s on %s", domain, day);
		json_decref(a);
		return NULL;
	}
	return a;
}

/* RFC 3339 times covering the UTC day, as in the RFC 8460 example. */
static json_t *
tlsrpt_date_range(const char *day)
{
	json_t *r = json_object();
	char *start = xasprintf("%sT00:00:00Z", day);
	char *end = xasprintf("%sT23:59:59Z", day);

	json_object_set_new(r, "start-datetime", json_string(start));
	json_object_set_new(r, "end-datetime", json_string(end));
	free(start);
	free(end);
	return r;
}

/* A JSON string of v, or NULL when v is NULL or not UTF-8. */
static json_t *
tlsrpt_jstr(const char *v)
{
	return v != NULL ? json_string(v) : NULL;
}

char *
tlsrpt_report_build(struct tlsrpt_store *s, const char *domain, const char *day,
    const char *organization, const char *contact, const char *report_id)
{
	json_t *doc, *org, *ci, *rid, *policies = NULL;
	char *d, *out = NULL;

	s->err[0] = '\0';
	if (domain == NULL || !tlsrpt_day_valid(day)) {
		tlsrpt_failx(s, "bad domain or day");
		return NULL;
	}
	org = tlsrpt_jstr(organization);
	ci = tlsrpt_jstr(contact);
	rid = tlsrpt_jstr(report_id);
	d = tlsrpt_domain_norm(domain);
	if (org == NULL || ci == NULL || rid == NULL)
		tlsrpt_failx(s,
		    "organization, contact or report id missing "
		    "or not UTF-8");
	else
		policies = tlsrpt_policies(s, d, day);
	if (policies != NULL) {
		doc = json_object();
		json_object_set(doc, "organization-name", org);
		json_object_set_new(doc, "date-range", tlsrpt_date_range(day));
		json_object_set(doc, "contact-info", ci);
		json_object_set(doc, "report-id", rid);
		json_object_set_new(doc, "policies", policies);
		out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(doc);
	}
	json_decref(org);
	json_decref(ci);
	json_decref(rid);
	free(d);
	return out;
}

uint8_t *
tlsrpt_gzip(const char *json, size_t *len)
{
	z_stream z;
	size_t inlen = strlen(json), cap;
	uint8_t *out;

	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip header and trailer, not zlib or raw. */
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		panic("deflateInit2 failed");
	/* deflateBound counts a zlib wrapper; gzip's is 12 octets larger. */
	cap = deflateBound(&z, (uLong)inlen) + 32;
	out = xmalloc(cap);
	z.next_in = (Bytef *)(uintptr_t)json;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		panic("deflate did not finish within deflateBound");
	*len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Bind day and domain (normalized) to st; -1 on a bad day. */
static int
tlsrpt_bind_key(struct tlsrpt_store *s, sqlite3_stmt *st, const char *domain,
    const char *day, char **d)
{
	if (domain == NULL || !tlsrpt_day_valid(day))
		return tlsrpt_failx(s, "bad domain or day");
	*d = tlsrpt_domain_norm(domain);
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, *d, -1, SQLITE_STATIC);
	return 0;
}

int
tlsrpt_store_mark_sent(
    struct tlsrpt_store *s, const char *domain, const char *day)
{
	sqlite3_stmt *st = s->st[ST_MARK_SENT];
	char *d = NULL;
	int rc;

	if (tlsrpt_bind_key(s, st, domain, day, &d) == -1)
		return -1;
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	rc = tlsrpt_run(st, NULL);
	if (rc == -1)
		tlsrpt_fail(s, "mark sent");
	free(d);
	return rc;
}

bool
tlsrpt_store_sent(struct tlsrpt_store *s, const char *domain, const char *day)
{
	sqlite3_stmt *st = s->st[ST_SENT];
	char *d = NULL;
	bool sent;

	if (tlsrpt_bind_key(s, st, domain, day, &d) == -1)
		return false;
	sent = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	free(d);
	return sent;
}
