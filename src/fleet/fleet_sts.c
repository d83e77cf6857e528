/*
 * fleet_sts: the fleet's one MTA-STS policy cache (RFC 8461 §5: a policy
 * any node has seen protects every node). Runs on the copying thread
 * (fleet_sync), with its own connection to the node's SQLite cache, never
 * on the delivery loop; the engine (sts/sts.c) reads the cache file at
 * every lookup, so a policy taken here is used by the next delivery.
 *
 *   push: local rows fetched at or after dr_nodes.sts_mark go into
 *         dr_sts_policies, where the newest fetch of each domain wins;
 *   pull: rows of dr_sts_policies stored since dr_nodes.sts_pulled (by
 *         the database's own clock, so one clock orders them) go into the
 *         local cache, where again the newest fetch wins (sts_cache_merge,
 *         which also checks each row as a policy).
 *
 * Sharing is safe because every row was stored by a node right after an
 * HTTPS fetch with PKIX validation of mta-sts.DOMAIN (§3.3) and a parse
 * (§3.2): a node never stores an unauthenticated policy, so a policy
 * another node fetched is as good as our own (docs/FLEET.md).
 */
#include "fleet/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "pg/pg.h"
#include "sts/sts_cache.h"

/*
 * A push transaction commits a little after the clock_timestamp() its
 * rows got; a pull re-reads this many seconds before its mark so that
 * such a row is not passed over. Re-reading is harmless (newest wins).
 */
#define FLEET_STS_OVERLAP 300
/* How long after its fetched_at a fetch may reach the cache file. */
#define FLEET_STS_LAG 10
/* Expired rows stay in the database this long (a node's clock may lag). */
#define FLEET_STS_GRACE 86400

/* dr_nodes.sts_mark and sts_pulled of this node. 0 or -1. */
static int
fleet_sts_marks(struct pg *p, long long *mark, long long *pulled)
{
	const char *args[1] = { pg_node(p) };
	PGresult *r = pg_query(p,
	    "SELECT sts_mark, sts_pulled FROM dr_nodes WHERE node = $1", 1,
	    args);

	if (r == NULL)
		return -1;
	*mark = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
	*pulled = PQntuples(r) > 0 ? pg_int(r, 0, 1) : 0;
	PQclear(r);
	return 0;
}

static int
fleet_sts_set_mark(struct pg *p, const char *column, long long v)
{
	char sql[256], n[PG_INT_LEN];
	const char *args[2] = { pg_node(p), pg_itoa(v, n) };

	snprintf(sql, sizeof(sql),
	    "INSERT INTO dr_nodes (node, %s) VALUES ($1, $2) "
	    "ON CONFLICT (node) DO UPDATE SET %s = EXCLUDED.%s",
	    column, column, column);
	return pg_exec(p, sql, 2, args);
}

/* One row into dr_sts_policies, unless the database has a newer fetch. */
static int
fleet_sts_upsert(struct pg *p, const struct sts_cache_row *r)
{
	char f[PG_INT_LEN], e[PG_INT_LEN];
	/* stored_at: the database's clock, the one the pulls go by. */
	const char *args[6] = { r->domain, r->e.id, r->e.policy,
		pg_itoa((long long)r->e.fetched_at, f),
		pg_itoa((long long)r->e.expires_at, e), pg_node(p) };

	return pg_exec(p,
	    "INSERT INTO dr_sts_policies (domain, id, policy, fetched_at, "
	    "expires_at, node, stored_at) VALUES ($1, $2, $3, $4, $5, $6, "
	    "(extract(epoch from clock_timestamp()))::bigint) "
	    "ON CONFLICT (domain) DO UPDATE SET id = EXCLUDED.id, "
	    "policy = EXCLUDED.policy, fetched_at = EXCLUDED.fetched_at, "
	    "expires_at = EXCLUDED.expires_at, node = EXCLUDED.node, "
	    "stored_at = EXCLUDED.stored_at "
	    "WHERE EXCLUDED.fetched_at > dr_sts_policies.fetched_at",
	    6, args);
}

/* The rows, the new mark and the purge of long expired rows, at once. */
static int
fleet_sts_push_rows(struct pg *p, const struct sts_cache_row *rows, size_t n,
    long long mark, time_t now)
{
	char old[PG_INT_LEN];
	const char *args[1] = { pg_itoa(
	    (long long)now - FLEET_STS_GRACE, old) };
	size_t i;

	if (pg_begin(p) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (fleet_sts_upsert(p, &rows[i]) == -1)
			goto fail;
	if (fleet_sts_set_mark(p, "sts_mark", mark) == -1 ||
	    pg_exec(p, "DELETE FROM dr_sts_policies WHERE expires_at < $1", 1,
	        args) == -1)
		goto fail;
	return pg_commit(p);
fail:
	pg_rollback(p);
	return -1;
}

/*
 * Our rows fetched at or after the mark. The next mark is one past the
 * newest fetch pushed, but never within FLEET_STS_LAG of our clock: a
 * fetch is written a moment after its fetched_at was taken (the loop may
 * wait on the cache's lock), and a row from a node whose clock runs
 * ahead must not hide our next fetch. Rows pushed twice change nothing.
 */
static int
fleet_sts_push(struct pg *p, struct sts_cache *c, long long mark)
{
	time_t now = time(NULL);
	struct sts_cache_row *rows;
	long long next = 0;
	size_t n, i;
	int rc;

	if ((rows = sts_cache_since(c, (time_t)mark, now, &n)) == NULL) {
		pg_fail(p, sts_cache_error(c));
		return -1;
	}
	for (i = 0; i < n; i++)
		if (rows[i].e.fetched_at + 1 > next)
			next = rows[i].e.fetched_at + 1;
	if (next > (long long)now - FLEET_STS_LAG)
		next = (long long)now - FLEET_STS_LAG;
	if (next < mark)
		next = mark;
	rc = n == 0 ? 0 : fleet_sts_push_rows(p, rows, n, next, now);
	sts_cache_rows_free(rows, n);
	return rc;
}

/* A result row of the pull as a cache row (new strings). An id that
 * does not fit is left empty: sts_cache_merge refuses the row. */
static void
fleet_sts_row(const PGresult *r, int i, struct sts_cache_row *row)
{
	const char *d = pg_text(r, i, 0), *id = pg_text(r, i, 1),
	           *pol = pg_text(r, i, 2);

	memset(row, 0, sizeof(*row));
	row->domain = xstrdup(d != NULL ? d : "");
	if (id != NULL && strlen(id) <= STS_ID_MAX)
		memcpy(row->e.id, id, strlen(id) + 1);
	row->e.policy = xstrdup(pol != NULL ? pol : "");
	row->e.len = strlen(row->e.policy);
	row->e.fetched_at = (time_t)pg_int(r, i, 3);
	row->e.expires_at = (time_t)pg_int(r, i, 4);
}

/* The rows stored since the mark and not expired, into the local cache. */
static int
fleet_sts_pull(struct pg *p, struct sts_cache *c, long long pulled)
{
	time_t now = time(NULL);
	char since[PG_INT_LEN], at[PG_INT_LEN];
	const char *args[2] = { pg_itoa(pulled - FLEET_STS_OVERLAP, since),
		pg_itoa((long long)now, at) };
	struct sts_cache_row *rows;
	PGresult *r;
	long long next = pulled;
	int i, n, taken;

	r = pg_query(p,
	    "SELECT domain, id, policy, fetched_at, expires_at, stored_at "
	    "FROM dr_sts_policies WHERE stored_at >= $1 AND expires_at >= $2",
	    2, args);
	if (r == NULL)
		return -1;
	n = PQntuples(r);
	rows = xcalloc((size_t)n + 1, sizeof(*rows));
	for (i = 0; i < n; i++) {
		fleet_sts_row(r, i, &rows[i]);
		if (pg_int(r, i, 5) > next)
			next = pg_int(r, i, 5);
	}
	PQclear(r);
	taken = sts_cache_merge(c, rows, (size_t)n, now);
	sts_cache_rows_free(rows, (size_t)n);
	if (taken == -1) {
		pg_fail(p, sts_cache_error(c));
		return -1;
	}
	if (taken > 0)
		log_info("fleet: %d MTA-STS %s taken from the fleet's cache",
		    taken, taken == 1 ? "policy" : "policies");
	return next != pulled ? fleet_sts_set_mark(p, "sts_pulled", next) : 0;
}

int
fleet_sts_sync(struct pg *p, const char *sts_path)
{
	struct sts_cache *c;
	long long mark, pulled;
	char *err = NULL, msg[600];
	int rc;

	/* No cache yet: serve makes it at start, with its owner and modes
	 * (relay_local.c); `fleet sync` does not make one as root. */
	if (access(sts_path, F_OK) == -1)
		return 0;
	if (pg_ready(p) == -1 || fleet_sts_marks(p, &mark, &pulled) == -1)
		return -1;
	if ((c = sts_cache_open(sts_path, &err)) == NULL) {
		snprintf(msg, sizeof(msg), "MTA-STS cache: %s", err);
		pg_fail(p, msg);
		free(err);
		return -1;
	}
	/* A cache file made anew (removed by hand) takes every row again. */
	if ((rc = sts_cache_empty(c)) == -1)
		pg_fail(p, sts_cache_error(c));
	else if (fleet_sts_push(p, c, mark) == -1 ||
	    fleet_sts_pull(p, c, rc == 1 ? 0 : pulled) == -1)
		rc = -1;
	else
		rc = 0;
	sts_cache_close(c);
	return rc;
}
