/*
 * queue_schema: the tables, their versioning and the prepared statements.
 *
 * The database header carries an application id ("DRLY") and a schema
 * version (user_version). A file that is not SQLite, a SQLite file of
 * another program, or a queue written by a newer danerelay is refused at
 * open with a clear message instead of being "repaired"; an older queue
 * is migrated, one numbered step after another, in one transaction.
 * docs/QUEUE.md documents the tables.
 */
#include "queue/queue_int.h"

#include <stdio.h>
#include <string.h>

static const char queue_schema_sql[] =
    "CREATE TABLE messages ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " kind INTEGER NOT NULL,"
    " sender TEXT NOT NULL,"
    " envid TEXT,"
    " ret INTEGER NOT NULL,"
    " body_8bit INTEGER NOT NULL,"
    " smtputf8 INTEGER NOT NULL,"
    " client TEXT NOT NULL,"
    " helo TEXT,"
    " auth_user TEXT,"
    " message_id TEXT,"
    " received_at INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " body BLOB);" /* last: reading the envelope never touches it */
    "CREATE INDEX messages_message_id ON messages(message_id);"
    "CREATE TABLE recipients ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " msgid TEXT NOT NULL,"
    " addr TEXT NOT NULL,"
    " domain TEXT NOT NULL,"
    " orcpt TEXT,"
    " notify INTEGER NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " queued_at INTEGER NOT NULL,"
    " next_attempt INTEGER NOT NULL,"
    " last_attempt INTEGER NOT NULL DEFAULT 0,"
    " last_status TEXT NOT NULL DEFAULT '',"
    " last_result_type TEXT NOT NULL DEFAULT '',"
    " last_text TEXT NOT NULL DEFAULT '',"
    " last_mta TEXT NOT NULL DEFAULT '',"
    " delay_warned INTEGER NOT NULL DEFAULT 0,"
    " bounce_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX recipients_due ON recipients(status, next_attempt);"
    "CREATE INDEX recipients_msgid ON recipients(msgid);"
    "CREATE INDEX recipients_domain ON recipients(domain);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " msgid TEXT NOT NULL,"
    " addr TEXT,"
    " at INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " fields TEXT);"
    "CREATE INDEX events_msgid ON events(msgid);"
    "CREATE INDEX events_addr ON events(addr COLLATE NOCASE);"
    "CREATE INDEX events_at ON events(at);";

static const char *const queue_st_sql[QUEUE_ST_COUNT] = {
	[QUEUE_ST_BEGIN] = "BEGIN IMMEDIATE",
	[QUEUE_ST_COMMIT] = "COMMIT",
	[QUEUE_ST_ROLLBACK] = "ROLLBACK",
	[QUEUE_ST_MSG_INSERT] = "INSERT INTO messages (id, kind, sender, "
	                        "envid, ret, body_8bit, smtputf8, client, "
	                        "helo, auth_user, message_id, received_at, "
	                        "size, body) VALUES "
	                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[QUEUE_ST_RCPT_INSERT] = "INSERT INTO recipients (msgid, addr, "
	                         "domain, orcpt, notify, queued_at, "
	                         "next_attempt) VALUES (?,?,?,?,?,?,?)",
	[QUEUE_ST_EVENT_INSERT] = "INSERT INTO events (msgid, addr, at, "
	                          "type, fields) VALUES (?,?,?,?,?)",
	[QUEUE_ST_DUE] = "SELECT " QUEUE_RCPT_COLS " FROM recipients "
	                 "WHERE status = 0 AND next_attempt <= ?1 "
	                 "ORDER BY next_attempt, id LIMIT ?2",
	[QUEUE_ST_DUE_AFTER] = "SELECT " QUEUE_RCPT_COLS " FROM recipients "
	                       "WHERE status = 0 AND next_attempt <= ?1 AND "
	                       "(next_attempt > ?2 OR (next_attempt = ?2 AND "
	                       "id > ?3)) ORDER BY next_attempt, id LIMIT ?4",
	[QUEUE_ST_NEXT_DUE] = "SELECT min(next_attempt) FROM recipients "
	                      "WHERE status = 0",
	[QUEUE_ST_MSG_GET] = "SELECT id, kind, sender, envid, ret, "
	                     "body_8bit, smtputf8, client, helo, auth_user, "
	                     "message_id, received_at, size, body "
	                     "FROM messages WHERE id = ?",
	[QUEUE_ST_RCPT_FINAL] = "UPDATE recipients SET status = ?2, "
	                        "attempts = attempts + 1, last_attempt = ?3, "
	                        "last_status = ?4, last_result_type = ?5, "
	                        "last_text = ?6, last_mta = ?7 WHERE id = ?1",
	[QUEUE_ST_RCPT_DEFER] = "UPDATE recipients SET next_attempt = ?2, "
	                        "attempts = attempts + 1, last_attempt = ?3, "
	                        "last_status = ?4, last_result_type = ?5, "
	                        "last_text = ?6, last_mta = ?7 "
	                        "WHERE id = ?1 AND " QUEUE_SQL_PRESENT,
	[QUEUE_ST_RCPT_STATUS] = "SELECT status FROM recipients WHERE id = ?",
	[QUEUE_ST_RCPT_WARNED] = "UPDATE recipients SET delay_warned = 1 "
	                         "WHERE id = ?",
	[QUEUE_ST_RCPT_BOUNCE_REQ] = "SELECT bounce_requested FROM "
	                             "recipients WHERE id = ?",
	[QUEUE_ST_MSG_GC] = "UPDATE messages SET body = NULL WHERE id = ?1 "
	                    "AND body IS NOT NULL AND NOT EXISTS (SELECT 1 "
	                    "FROM recipients WHERE msgid = ?1 AND "
	                    "" QUEUE_SQL_PRESENT ")",
};

/*
 * The migrations: queue_migrations[v] takes a queue of version v to
 * v + 1. All steps and the new version commit together, by whichever
 * process opens the older queue first (the others wait for its lock and
 * find the work done).
 */
static const char *const queue_migrations[QUEUE_SCHEMA_VERSION] = {
	/*
	 * 1 -> 2: recipients.status 4 = held. The tables stay: the due index
	 * (status, next_attempt) skips held rows as it skips finished ones.
	 * The version moves all the same, so that an older danerelay refuses
	 * the queue: it would take a held message for a finished one and
	 * drop its body.
	 */
	[1] = "",
};

/* Run a one-value PRAGMA (or query) and return its integer result. */
static int
queue_schema_int(struct queue *q, const char *sql, sqlite3_int64 *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		queue_fail(q, sql);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int
queue_schema_wal(struct queue *q)
{
	sqlite3_stmt *st;
	const unsigned char *mode = NULL;
	int ok;

	if (sqlite3_prepare_v2(
	        q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return queue_fail(q, "journal_mode");
	if (sqlite3_step(st) == SQLITE_ROW)
		mode = sqlite3_column_text(st, 0);
	ok = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	if (!ok)
		queue_fail(q, "cannot switch to WAL mode");
	sqlite3_finalize(st);
	if (!ok)
		return -1;
	/* Every commit fsyncs the WAL: the promise behind a 250. */
	if (sqlite3_exec(q->db, "PRAGMA synchronous = FULL", NULL, NULL,
	        NULL) != SQLITE_OK)
		return queue_fail(q, "synchronous");
	/*
	 * The hot pages are the due index and the rows in flight; bodies are
	 * read once. 256 KiB of page cache instead of SQLite's 2 MiB default
	 * (docs/PERFORMANCE.md: memory).
	 */
	if (sqlite3_exec(q->db, "PRAGMA cache_size = -256", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return queue_fail(q, "cache_size");
	/* A WAL grown by a large message shrinks back after checkpoints. */
	if (sqlite3_exec(q->db, "PRAGMA journal_size_limit = 4194304", NULL,
	        NULL, NULL) != SQLITE_OK)
		return queue_fail(q, "journal_size_limit");
	return 0;
}

/* An empty database gets the schema; another process may race us. */
static int
queue_schema_create(struct queue *q)
{
	sqlite3_int64 version = 0, ntables = 0;
	char pragmas[128];

	if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return queue_fail(q, "begin");
	if (queue_schema_int(q, "PRAGMA user_version", &version) == -1 ||
	    queue_schema_int(
	        q, "SELECT count(*) FROM sqlite_master", &ntables) == -1)
		goto fail;
	if (version == 0 && ntables > 0) {
		queue_failx(q,
		    "%s: a SQLite database of another program, "
		    "not a danerelay queue",
		    q->path);
		goto fail;
	}
	snprintf(pragmas, sizeof(pragmas),
	    "PRAGMA application_id = %d; PRAGMA user_version = %d;",
	    QUEUE_APP_ID, QUEUE_SCHEMA_VERSION);
	if (version == 0 &&
	    (sqlite3_exec(q->db, queue_schema_sql, NULL, NULL, NULL) !=
	            SQLITE_OK ||
	        sqlite3_exec(q->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)) {
		queue_fail(q, "create schema");
		goto fail;
	}
	if (sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		queue_fail(q, "commit schema");
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Bring a queue of an older schema version up to this one. */
static int
queue_schema_migrate(struct queue *q)
{
	sqlite3_int64 from = 0, v;
	char pragma[64];

	if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return queue_fail(q, "begin migration");
	if (queue_schema_int(q, "PRAGMA user_version", &from) == -1)
		goto fail;
	for (v = from; v >= 1 && v < QUEUE_SCHEMA_VERSION; v++)
		if (sqlite3_exec(q->db, queue_migrations[v], NULL, NULL,
		        NULL) != SQLITE_OK) {
			queue_fail(q, "migrate schema");
			goto fail;
		}
	snprintf(
	    pragma, sizeof(pragma), "PRAGMA user_version = %lld", (long long)v);
	if (sqlite3_exec(q->db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		queue_fail(q, "commit migration");
		goto fail;
	}
	if (from != v)
		log_info("queue %s: schema upgraded from version %lld to %lld",
		    q->path, (long long)from, (long long)v);
	return 0;
fail:
	sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Says what is wrong with a file that SQLite cannot read. */
static int
queue_schema_unreadable(struct queue *q)
{
	int code = sqlite3_errcode(q->db);

	if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
		return queue_failx(q,
		    "%s: not a danerelay queue, or damaged: "
		    "%s",
		    q->path, sqlite3_errmsg(q->db));
	return -1;
}

static int
queue_schema_check(struct queue *q, sqlite3_int64 version, sqlite3_int64 appid)
{
	if (appid != QUEUE_APP_ID)
		return queue_failx(q,
		    "%s: a SQLite database of another "
		    "program (application id %lld), not a danerelay queue",
		    q->path, (long long)appid);
	if (version > QUEUE_SCHEMA_VERSION)
		return queue_failx(q,
		    "%s: queue schema version %lld is newer "
		    "than this danerelay supports (%d); run the newer "
		    "danerelay",
		    q->path, (long long)version, QUEUE_SCHEMA_VERSION);
	return 0;
}

int
queue_schema_init(struct queue *q)
{
	sqlite3_int64 version = 0, appid = 0;

	sqlite3_extended_result_codes(q->db, 1);
	/* The commands and the daemon share the file: wait, don't fail. */
	sqlite3_busy_timeout(q->db, QUEUE_BUSY_MS);
	if (queue_schema_int(q, "PRAGMA user_version", &version) == -1 ||
	    queue_schema_int(q, "PRAGMA application_id", &appid) == -1) {
		queue_schema_unreadable(q);
		return -1;
	}
	if (version != 0 && queue_schema_check(q, version, appid) == -1)
		return -1;
	/*
	 * Only a file without tables can take auto_vacuum without a VACUUM,
	 * and WAL mode writes the first page: set it before (queue_space.c).
	 */
	if (version == 0 &&
	    sqlite3_exec(q->db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL,
	        NULL) != SQLITE_OK)
		return queue_fail(q, "auto_vacuum");
	if (queue_schema_wal(q) == -1)
		return -1;
	if (version == 0 && queue_schema_create(q) == -1)
		return -1;
	/* Read again: another process may have created it meanwhile. */
	if (queue_schema_int(q, "PRAGMA user_version", &version) == -1)
		return -1;
	if (version >= 1 && version < QUEUE_SCHEMA_VERSION &&
	    queue_schema_migrate(q) == -1)
		return -1;
	if (queue_schema_int(q, "PRAGMA user_version", &version) == -1 ||
	    queue_schema_int(q, "PRAGMA application_id", &appid) == -1)
		return -1;
	return queue_schema_check(q, version, appid);
}

int
queue_schema_prepare(struct queue *q)
{
	size_t i;

	for (i = 0; i < QUEUE_ST_COUNT; i++) {
		if (sqlite3_prepare_v3(q->db, queue_st_sql[i], -1,
		        SQLITE_PREPARE_PERSISTENT, &q->st[i],
		        NULL) != SQLITE_OK)
			return queue_failx(q, "%s: damaged queue schema: %s",
			    q->path, sqlite3_errmsg(q->db));
	}
	return 0;
}
