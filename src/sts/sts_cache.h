/*
 * sts_cache: the persistent MTA-STS policy cache (RFC 8461 §5.1), one
 * SQLite row per policy domain: the TXT id the policy was fetched for, the
 * policy body as served, when it was fetched and when it expires
 * (fetched_at + max_age). Private to the sts module; docs/MTA-STS.md
 * describes the table.
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

/* The last database error, for messages (borrowed). */
const char *sts_cache_error(const struct sts_cache *c);

#endif
