/*
 * sts_cache: the persistent MTA-STS policy cache (RFC 8461 §5.1), one
 * SQLite row per policy domain: the TXT id the policy was fetched for, the
 * policy body as served, when it was fetched and when it expires
 * (fetched_at + max_age). Private to the sts module, and to
 * fleet/fleet_sts.c, which copies rows between it and the fleet's
 * database on a thread of its own (a connection of its own; WAL and the
 * busy timeout make that safe). docs/MTA-STS.md describes the table.
 */
#ifndef DR_STS_CACHE_H
#define DR_STS_CACHE_H

#include <stddef.h>
#include <time.h>

#include "sts/sts.h"

struct sts_cache;

/* One row. policy is new (sts_cache_entry_clear frees it). */
struct sts_cache_entry {
	char id[STS_ID_MAX + 1];
	char *policy;
	size_t len;
	time_t fetched_at;
	time_t expires_at;
};

/*
 * Open or create the cache at path (":memory:" for one that is not kept).
 * Returns new (sts_cache_close), or NULL with *errstr (new string): the
 * file is not SQLite, belongs to another program or to a newer danerelay.
 */
struct sts_cache *sts_cache_open(const char *path, char **errstr);
void sts_cache_close(struct sts_cache *c); /* NULL is fine */

/* The row of domain: 1 found (e filled), 0 none, -1 database error. */
int sts_cache_get(
    struct sts_cache *c, const char *domain, struct sts_cache_entry *e);
void sts_cache_entry_clear(struct sts_cache_entry *e);

/*
 * Insert or replace the row of domain: the policy body (len octets) fetched
 * at fetched_at for the TXT id. 0, or -1 (database error).
 */
int sts_cache_put(struct sts_cache *c, const char *domain, const char *id,
    const char *policy, size_t len, time_t fetched_at, time_t expires_at);

/* Remove the row of domain. 0 or -1. */
int sts_cache_delete(struct sts_cache *c, const char *domain);

/* Remove every row that expired before now. 0 or -1. */
int sts_cache_purge(struct sts_cache *c, time_t now);

/*
 * Domains whose policy is still valid at now but expires by before, soonest
 * first, at most max: a NULL-terminated vector of new strings
 * (str_vec_free), or NULL on a database error.
 */
char **sts_cache_expiring(
    struct sts_cache *c, time_t now, time_t before, size_t max);

/*
 * A row with its domain, for copying rows between this cache and the
 * fleet's (docs/FLEET.md, "MTA-STS cache").
 */
struct sts_cache_row {
	char *domain;
	struct sts_cache_entry e;
};

/*
 * Rows fetched at or after since, oldest fetch first, leaving out those
 * sts_cache_merge would refuse at now (damaged, expired): a vector of *n
 * new rows (sts_cache_rows_free), or NULL on a database error.
 */
struct sts_cache_row *sts_cache_since(
    struct sts_cache *c, time_t since, time_t now, size_t *n);
void sts_cache_rows_free(struct sts_cache_row *rows, size_t n); /* NULL ok */

/* Whether the cache has no row: 1, 0, or -1 (database error). */
int sts_cache_empty(struct sts_cache *c);

/*
 * Take rows another node fetched, in one transaction. A row is taken when
 * it is a cache row as ours are (a lowercase domain, a §3.1 id, a policy
 * that parses (§3.2), not expired at now, not fetched more than five
 * minutes in now's future; expires_at cut to fetched_at + max_age) and
 * the domain has no row or one of an older fetch: §5.1, the newest fetch
 * of a domain's policy is its cached policy, whoever fetched it. Returns
 * how many rows were taken, or -1 (database error: none).
 */
int sts_cache_merge(struct sts_cache *c, const struct sts_cache_row *rows,
    size_t n, time_t now);

/* The last database error, for messages (borrowed). */
const char *sts_cache_error(const struct sts_cache *c);

#endif
