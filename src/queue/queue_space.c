/*
 * queue_space: the queue and the room it has. New mail is refused before
 * the filesystem is full (the server asks queue_space_low()), and the
 * space of messages that left is given back (queue_compact()): SQLite
 * keeps freed pages in the file unless it is in auto_vacuum mode, and a
 * WAL keeps the size its largest transaction gave it.
 */
#include "queue/queue_int.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "core/log.h"

#define QUEUE_WAL_KEEP 4194304 /* as PRAGMA journal_size_limit */

static int
queue_space_pragma(struct queue *q, const char *sql, sqlite3_int64 *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, sql);
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		queue_fail(q, sql);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

void
queue_space_setup(struct queue *q)
{
	sqlite3_int64 mode = 0;

	if (queue_space_pragma(q, "PRAGMA auto_vacuum", &mode) == -1 ||
	    mode == 2)
		return;
	/*
	 * A queue made by an older danerelay: the mode of an existing file
	 * only changes with a VACUUM, which rewrites it once (it needs the
	 * file's size again in free space, and time with a large queue).
	 */
	log_info("queue %s: converting to incremental vacuum (once)", q->path);
	if (sqlite3_exec(q->db, "PRAGMA auto_vacuum = INCREMENTAL; VACUUM",
	        NULL, NULL, NULL) != SQLITE_OK) {
		queue_fail(q, "vacuum");
		log_warnx("queue: %s; freed space stays in the file until the "
		          "conversion succeeds at a later start",
		    q->err);
	}
}

bool
queue_space_low(struct queue *q, uint64_t need)
{
	struct statvfs sv;

	/* store = postgres: the database's disk is its DBA's to watch
	 * (docs/FLEET.md); a full one fails the COMMIT: 451, not 250. */
	if (q->pg != NULL)
		return false;
	/* Measured every time: a cached figure let mail in for a second
	 * after the disk had filled (tests/chaos/chaos_disk_full.py). */
	if (statvfs(q->dir, &sv) == -1)
		return false;
	return (uint64_t)sv.f_bavail * sv.f_frsize < need;
}

/* Whether the WAL file is larger than it should stay. */
static bool
queue_wal_large(const struct queue *q)
{
	char path[4096];
	struct stat sb;

	snprintf(path, sizeof(path), "%s-wal", q->path);
	return stat(path, &sb) == 0 && sb.st_size > QUEUE_WAL_KEEP;
}

/* One round: give free pages back, then empty the WAL. */
static int
queue_compact_round(struct queue *q, bool *again)
{
	sqlite3_int64 freelist = 0;
	bool vacuumed = false;
	int rc;

	*again = false;
	if (queue_space_pragma(q, "PRAGMA freelist_count", &freelist) == -1)
		return -1;
	if (freelist > 0) {
		if (sqlite3_exec(q->db, "PRAGMA incremental_vacuum", NULL, NULL,
		        NULL) != SQLITE_OK)
			return queue_fail(q, "incremental vacuum");
		vacuumed = true;
	}
	if (!vacuumed && !queue_wal_large(q))
		return 0;
	/* Never wait for a reader (a `queue` command) on the event loop. */
	sqlite3_busy_timeout(q->db, 0);
	rc = sqlite3_wal_checkpoint_v2(
	    q->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_busy_timeout(q->db, QUEUE_BUSY_MS);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return queue_fail(q, "checkpoint");
	/* The vacuum's own pages went through the WAL: once more empties
	 * it, or frees what the checkpoint made visible. */
	*again = vacuumed && rc == SQLITE_OK;
	return 0;
}

int
queue_compact(struct queue *q)
{
	bool again = true;
	int round;

	/* PostgreSQL's autovacuum gives the space back (docs/FLEET.md). */
	if (q->pg != NULL || q->batch > 0)
		return 0;
	for (round = 0; round < 2 && again; round++)
		if (queue_compact_round(q, &again) == -1)
			return -1;
	return 0;
}
