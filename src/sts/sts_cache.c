/*
 * sts_cache: the policy cache in SQLite (the table is in docs/MTA-STS.md).
 *
 * Like the queue, the file carries an application id ("DRST") and a schema
 * version, so a queue or a foreign database given as the cache path is
 * refused instead of being written into. Unlike the queue, a lost last
 * write costs only a refetch, so the WAL is not synced on every commit.
 */
#include "sts/sts_cache.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/xmalloc.h"

#define STS_CACHE_APP_ID  0x44525354 /* "DRST" */
#define STS_CACHE_VERSION 1
#define STS_CACHE_BUSY_MS 5000
/* Another node's clock may run this far ahead of ours. */
#define STS_CACHE_SKEW 300

enum sts_cache_st {
	STS_CACHE_GET,
	STS_CACHE_PUT,
	STS_CACHE_DELETE,
	STS_CACHE_PURGE,
	STS_CACHE_EXPIRING,
	STS_CACHE_SINCE,
	STS_CACHE_MERGE,
	STS_CACHE_ANY,
	STS_CACHE_ST_COUNT
};

struct sts_cache {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *st[STS_CACHE_ST_COUNT];
	char err[512];
};

static const char sts_cache_schema[] =
    "CREATE TABLE policies ("
    " domain TEXT PRIMARY KEY NOT NULL,"
    " id TEXT NOT NULL,"
    " policy TEXT NOT NULL,"
    " fetched_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL);"
    "CREATE INDEX policies_expires ON policies(expires_at);";

static const char *const sts_cache_sql[STS_CACHE_ST_COUNT] = {
	[STS_CACHE_GET] = "SELECT id, policy, fetched_at, expires_at "
	                  "FROM policies WHERE domain = ?",
	[STS_CACHE_PUT] = "INSERT OR REPLACE INTO policies (domain, id, "
	                  "policy, fetched_at, expires_at) VALUES (?,?,?,?,?)",
	[STS_CACHE_DELETE] = "DELETE FROM policies WHERE domain = ?",
	[STS_CACHE_PURGE] = "DELETE FROM policies WHERE expires_at < ?",
	[STS_CACHE_EXPIRING] = "SELECT domain FROM policies WHERE "
	                       "expires_at >= ?1 AND expires_at <= ?2 "
	                       "ORDER BY expires_at LIMIT ?3",
	[STS_CACHE_SINCE] = "SELECT id, policy, fetched_at, expires_at, domain "
	                    "FROM policies WHERE fetched_at >= ? "
	                    "ORDER BY fetched_at",
	/* §5.1: the newest fetch of a domain's policy is the cached one. */
	[STS_CACHE_MERGE] = "INSERT INTO policies (domain, id, policy, "
	                    "fetched_at, expires_at) VALUES (?1,?2,?3,?4,?5) "
	                    "ON CONFLICT (domain) DO UPDATE SET "
	                    "id = excluded.id, policy = excluded.policy, "
	                    "fetched_at = excluded.fetched_at, "
	                    "expires_at = excluded.expires_at "
	                    "WHERE excluded.fetched_at > policies.fetched_at",
	[STS_CACHE_ANY] = "SELECT 1 FROM policies LIMIT 1",
};

static int
sts_cache_fail(struct sts_cache *c, const char *what)
{
	snprintf(c->err, sizeof(c->err), "%s: %s: %s", c->path, what,
	    c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
	return -1;
}

/* One integer from a PRAGMA or query. */
static int
sts_cache_int(struct sts_cache *c, const char *sql, sqlite3_int64 *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sts_cache_fail(c, "not a danerelay MTA-STS cache");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sts_cache_fail(c, "not a danerelay MTA-STS cache");
	return 0;
}

static int
sts_cache_exec(struct sts_cache *c, const char *sql, const char *what)
{
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sts_cache_fail(c, what);
	return 0;
}

/* An empty database gets the schema, inside one transaction. */
static int
sts_cache_create(struct sts_cache *c)
{
	sqlite3_int64 version = 0, ntables = 0;
	char pragmas[128];

	if (sts_cache_exec(c, "BEGIN IMMEDIATE", "begin") == -1)
		return -1;
	if (sts_cache_int(c, "PRAGMA user_version", &version) == -1 ||
	    sts_cache_int(c, "SELECT count(*) FROM sqlite_master", &ntables) ==
	        -1)
		goto fail;
	if (version == 0 && ntables > 0) {
		snprintf(c->err, sizeof(c->err),
		    "%s: a SQLite database of another program, not a "
		    "danerelay MTA-STS cache",
		    c->path);
		goto fail;
	}
	snprintf(pragmas, sizeof(pragmas),
	    "PRAGMA application_id = %d; PRAGMA user_version = %d;",
	    STS_CACHE_APP_ID, STS_CACHE_VERSION);
	if (version == 0 &&
	    (sts_cache_exec(c, sts_cache_schema, "create schema") == -1 ||
	        sts_cache_exec(c, pragmas, "create schema") == -1))
		goto fail;
	if (sts_cache_exec(c, "COMMIT", "commit schema") == -1)
		goto fail;
	return 0;
fail:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
sts_cache_check(struct sts_cache *c)
{
	sqlite3_int64 version = 0, appid = 0;

	if (sts_cache_int(c, "PRAGMA user_version", &version) == -1 ||
	    sts_cache_int(c, "PRAGMA application_id", &appid) == -1)
		return -1;
	if (appid != STS_CACHE_APP_ID) {
		snprintf(c->err, sizeof(c->err),
		    "%s: a SQLite database of another program (application "
		    "id %lld), not a danerelay MTA-STS cache",
		    c->path, (long long)appid);
		return -1;
	}
	if (version > STS_CACHE_VERSION) {
		snprintf(c->err, sizeof(c->err),
		    "%s: cache schema version %lld is newer than this "
		    "danerelay supports (%d)",
		    c->path, (long long)version, STS_CACHE_VERSION);
		return -1;
	}
	return 0;
}

static int
sts_cache_init(struct sts_cache *c)
{
	sqlite3_int64 version = 0;
	bool mem = strcmp(c->path, ":memory:") == 0;

	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, STS_CACHE_BUSY_MS);
	/* A few rows per domain: a small page cache is enough. */
	sqlite3_exec(c->db, "PRAGMA cache_size = -128", NULL, NULL, NULL);
	if (sts_cache_int(c, "PRAGMA user_version", &version) == -1)
		return -1;
	if (version != 0 && sts_cache_check(c) == -1)
		return -1;
	if (!mem &&
	    (sts_cache_exec(c, "PRAGMA journal_mode = WAL", "WAL") == -1 ||
	        sts_cache_exec(
	            c, "PRAGMA synchronous = NORMAL", "synchronous") == -1))
		return -1;
	if (version == 0 && sts_cache_create(c) == -1)
		return -1;
	return sts_cache_check(c);
}

static int
sts_cache_prepare(struct sts_cache *c)
{
	size_t i;

	for (i = 0; i < STS_CACHE_ST_COUNT; i++)
		if (sqlite3_prepare_v3(c->db, sts_cache_sql[i], -1,
		        SQLITE_PREPARE_PERSISTENT, &c->st[i],
		        NULL) != SQLITE_OK)
			return sts_cache_fail(c, "damaged cache schema");
	return 0;
}

struct sts_cache *
sts_cache_open(const char *path, char **errstr)
{
	struct sts_cache *c = xcalloc(1, sizeof(*c));
	int flags =
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

	c->path = xstrdup(path);
	if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK)
		sts_cache_fail(c, "cannot open");
	else if (sts_cache_init(c) == 0 && sts_cache_prepare(c) == 0)
		return c;
	*errstr = xstrdup(c->err);
	sts_cache_close(c);
	return NULL;
}

void
sts_cache_close(struct sts_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < STS_CACHE_ST_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

static sqlite3_stmt *
sts_cache_stmt(struct sts_cache *c, enum sts_cache_st which)
{
	sqlite3_stmt *st = c->st[which];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Copy a row; a row that does not fit our types is treated as absent. */
static int
sts_cache_row(sqlite3_stmt *st, struct sts_cache_entry *e)
{
	const unsigned char *id = sqlite3_column_text(st, 0);
	const unsigned char *pol = sqlite3_column_text(st, 1);
	int idlen = sqlite3_column_bytes(st, 0);

	if (id == NULL || pol == NULL || idlen <= 0 || idlen > STS_ID_MAX)
		return 0;
	memcpy(e->id, id, (size_t)idlen);
	e->id[idlen] = '\0';
	e->len = (size_t)sqlite3_column_bytes(st, 1);
	e->policy = xmemdup(pol, e->len + 1);
	e->fetched_at = (time_t)sqlite3_column_int64(st, 2);
	e->expires_at = (time_t)sqlite3_column_int64(st, 3);
	return 1;
}

int
sts_cache_get(
    struct sts_cache *c, const char *domain, struct sts_cache_entry *e)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_GET);
	int rc, found = 0;

	memset(e, 0, sizeof(*e));
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		found = sts_cache_row(st, e);
	else if (rc != SQLITE_DONE)
		found = sts_cache_fail(c, "read");
	sqlite3_reset(st);
	return found;
}

void
sts_cache_entry_clear(struct sts_cache_entry *e)
{
	free(e->policy);
	memset(e, 0, sizeof(*e));
}

static int
sts_cache_run(struct sts_cache *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sts_cache_fail(c, what);
}

int
sts_cache_put(struct sts_cache *c, const char *domain, const char *id,
    const char *policy, size_t len, time_t fetched_at, time_t expires_at)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_PUT);

	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, policy, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)fetched_at);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)expires_at);
	return sts_cache_run(c, st, "write");
}

int
sts_cache_delete(struct sts_cache *c, const char *domain)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_DELETE);

	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	return sts_cache_run(c, st, "delete");
}

int
sts_cache_purge(struct sts_cache *c, time_t now)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_PURGE);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	return sts_cache_run(c, st, "purge");
}

char **
sts_cache_expiring(struct sts_cache *c, time_t now, time_t before, size_t max)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_EXPIRING);
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	int rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)before);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *d = sqlite3_column_text(st, 0);

		if (d == NULL)
			continue;
		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = xstrdup((const char *)d);
		v[n] = NULL;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		sts_cache_fail(c, "read");
		str_vec_free(v);
		return NULL;
	}
	return v;
}

/* ------------------------------------------------------------------ */
/* Copying rows to and from the fleet's shared cache (docs/FLEET.md). */

static bool sts_cache_row_usable(
    const struct sts_cache_row *r, time_t now, time_t *expires_at);

struct sts_cache_row *
sts_cache_since(struct sts_cache *c, time_t since, time_t now, size_t *n)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_SINCE);
	struct sts_cache_row *v = xcalloc(1, sizeof(*v));
	const unsigned char *d;
	time_t until;
	int rc;

	*n = 0;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, *n + 1, sizeof(*v));
		memset(&v[*n], 0, sizeof(v[*n]));
		if ((d = sqlite3_column_text(st, 4)) == NULL ||
		    sts_cache_row(st, &v[*n].e) == 0)
			continue;
		v[*n].domain = xstrdup((const char *)d);
		/* Damaged (the engine drops it on use) or expired: not shared,
		 * and a row the database refuses would stop every copy. */
		if (sts_cache_row_usable(&v[*n], now, &until))
			(*n)++;
		else {
			free(v[*n].domain);
			sts_cache_entry_clear(&v[*n].e);
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		sts_cache_fail(c, "read");
		sts_cache_rows_free(v, *n);
		return NULL;
	}
	return v;
}

void
sts_cache_rows_free(struct sts_cache_row *rows, size_t n)
{
	size_t i;

	if (rows == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(rows[i].domain);
		sts_cache_entry_clear(&rows[i].e);
	}
	free(rows);
}

int
sts_cache_empty(struct sts_cache *c)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_ANY);
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? 1 : sts_cache_fail(c, "read");
}

/* A domain as the engine keys it: lowercase LDH labels, no final dot. */
static bool
sts_cache_domain_ok(const char *d)
{
	size_t n = strlen(d), i;

	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!((d[i] >= 'a' && d[i] <= 'z') ||
		        (d[i] >= '0' && d[i] <= '9') || d[i] == '-' ||
		        (d[i] == '.' && d[i + 1] != '.')))
			return false;
	return true;
}

/* §3.1: id = 1*32(ALPHA / DIGIT); the row's id is NUL-terminated. */
static bool
sts_cache_id_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') ||
		        (id[i] >= 'A' && id[i] <= 'Z') ||
		        (id[i] >= '0' && id[i] <= '9')))
			return false;
	return i > 0;
}

/*
 * Whether another node's row may be taken, and until when. The rows come
 * from our own nodes, each stored after its HTTPS fetch and parse, but
 * the database is a second copy: what we apply is checked like a fetch
 * (§3.2 parse), and a row cannot live longer than its own max_age.
 */
static bool
sts_cache_row_usable(
    const struct sts_cache_row *r, time_t now, time_t *expires_at)
{
	struct sts_policy *p;
	const char *err;
	time_t end;

	if (!sts_cache_domain_ok(r->domain) || !sts_cache_id_ok(r->e.id) ||
	    r->e.fetched_at > now + STS_CACHE_SKEW ||
	    strlen(r->e.policy) != r->e.len ||
	    (p = sts_policy_parse(r->e.policy, r->e.len, &err)) == NULL)
		return false;
	end = r->e.fetched_at + sts_policy_max_age(p);
	sts_policy_free(p);
	*expires_at = r->e.expires_at < end ? r->e.expires_at : end;
	return *expires_at >= now;
}

static int
sts_cache_merge_one(
    struct sts_cache *c, const struct sts_cache_row *r, time_t expires_at)
{
	sqlite3_stmt *st = sts_cache_stmt(c, STS_CACHE_MERGE);

	sqlite3_bind_text(st, 1, r->domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->e.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->e.policy, (int)r->e.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->e.fetched_at);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)expires_at);
	if (sts_cache_run(c, st, "write") == -1)
		return -1;
	return sqlite3_changes(c->db) > 0 ? 1 : 0;
}

/* Whether the row is newer than ours (read only: no lock taken). 1, 0,
 * -1. The upsert checks again under the lock. */
static int
sts_cache_newer(struct sts_cache *c, const struct sts_cache_row *r)
{
	struct sts_cache_entry e;
	int rc = sts_cache_get(c, r->domain, &e);

	if (rc == 1)
		rc = r->e.fetched_at > e.fetched_at ? 1 : 0;
	else if (rc == 0)
		rc = 1;
	sts_cache_entry_clear(&e);
	return rc;
}

/*
 * Most rows of a pass are ours already: pick the others without a lock.
 * until[i] is the expiry to store for rows[i], or 0 to leave it. 0 or -1.
 */
static int
sts_cache_merge_pick(struct sts_cache *c, const struct sts_cache_row *rows,
    size_t n, time_t now, time_t *until, size_t *want)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (!sts_cache_row_usable(&rows[i], now, &until[i])) {
			until[i] = 0;
			continue;
		}
		if ((rc = sts_cache_newer(c, &rows[i])) == -1)
			return -1;
		if (rc == 0)
			until[i] = 0;
		else
			(*want)++;
	}
	return 0;
}

/* One short write transaction: the delivery loop's writes wait for it
 * (busy timeout), its reads do not (WAL). Rows taken, or -1. */
static int
sts_cache_merge_write(struct sts_cache *c, const struct sts_cache_row *rows,
    size_t n, const time_t *until)
{
	size_t i;
	int taken = 0, rc;

	if (sts_cache_exec(c, "BEGIN IMMEDIATE", "begin") == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (until[i] == 0)
			continue;
		if ((rc = sts_cache_merge_one(c, &rows[i], until[i])) == -1)
			goto fail;
		taken += rc;
	}
	if (sts_cache_exec(c, "COMMIT", "commit") == 0)
		return taken;
fail:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
sts_cache_merge(
    struct sts_cache *c, const struct sts_cache_row *rows, size_t n, time_t now)
{
	time_t *until = xcalloc(n + 1, sizeof(*until));
	size_t want = 0;
	int rc = sts_cache_merge_pick(c, rows, n, now, until, &want);

	if (rc == 0 && want > 0)
		rc = sts_cache_merge_write(c, rows, n, until);
	free(until);
	return rc;
}

const char *
sts_cache_error(const struct sts_cache *c)
{
	return c->err;
}
