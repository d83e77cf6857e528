/*
 * queue_int.h: what the files of the queue module share and nobody else
 * sees: the body of struct queue, the cache of prepared statements for the
 * hot paths, error and transaction helpers, and the recipient row reader.
 */
#ifndef DR_QUEUE_INT_H
#define DR_QUEUE_INT_H

#include <jansson.h>
#include <sqlite3.h>

#include "core/log.h"
#include "pg/pg.h"
#include "queue/queue.h"

/* 2: recipients.status 4 = held (queue_schema.c: the migrations). */
#define QUEUE_SCHEMA_VERSION 2
#define QUEUE_APP_ID         0x44524c59 /* "DRLY" in the database header */
#define QUEUE_BUSY_MS        5000
#define QUEUE_DB_NAME        "queue.db"
#define QUEUE_FIELDS_MAX     65536 /* cap on one event's fields JSON */

/* Statements prepared once at open and reused (the daemon's hot paths). */
enum queue_st {
	QUEUE_ST_BEGIN,
	QUEUE_ST_COMMIT,
	QUEUE_ST_ROLLBACK,
	QUEUE_ST_MSG_INSERT,
	QUEUE_ST_RCPT_INSERT,
	QUEUE_ST_EVENT_INSERT,
	QUEUE_ST_DUE,
	QUEUE_ST_DUE_AFTER,
	QUEUE_ST_NEXT_DUE,
	QUEUE_ST_MSG_GET,
	QUEUE_ST_RCPT_FINAL,
	QUEUE_ST_RCPT_DEFER,
	QUEUE_ST_RCPT_STATUS,
	QUEUE_ST_RCPT_WARNED,
	QUEUE_ST_RCPT_BOUNCE_REQ,
	QUEUE_ST_MSG_GC,
	QUEUE_ST_COUNT
};

struct queue {
	sqlite3 *db;
	char *dir;  /* the queue directory (statvfs) */
	char *path; /* of the database file, for messages */
	sqlite3_stmt *st[QUEUE_ST_COUNT];
	char err[512];
	int errcode; /* extended SQLite code of the last failure */
	int batch;   /* queue_batch_begin depth: inner transactions are
	              * savepoints of the batch's one transaction */
	/*
	 * The first failure inside a batch other than a constraint: SQLite
	 * may have rolled the whole transaction back already (SQLITE_FULL
	 * does), so every later write of the batch fails at once instead of
	 * running in autocommit mode, and queue_batch_end() reports it.
	 */
	int batch_err;
	char actor[64]; /* "by" of the operator's events; "" = "operator" */
	/*
	 * [queue] store = postgres (queue_pg*.c): the fleet's database. When
	 * set, db is NULL and every public function of queue.h answers from
	 * PostgreSQL; lease is how long a claim on a due recipient lasts.
	 */
	struct pg *pg;
	time_t lease;
	struct queue_pg_claims *claims; /* what queue_due claimed: renewed
	                                 * until its outcome (queue_pg_due.c) */
	struct queue_pg_held *held;     /* writes a batch holds back
	                                 * (queue_pg_held.c) */
};

/* The columns every recipient query selects, in queue_rcpt_read() order. */
#define QUEUE_RCPT_COLS                                              \
	"id, msgid, addr, domain, orcpt, notify, status, attempts, " \
	"queued_at, next_attempt, last_attempt, last_status, "       \
	"last_result_type, last_text, last_mta, delay_warned, "      \
	"bounce_requested, (SELECT kind FROM messages m WHERE "      \
	"m.id = recipients.msgid)"

/* Still in the queue: queued or held (its message keeps its body). */
#define QUEUE_SQL_PRESENT "status IN (0, 4)"

/*
 * queue_space.c: with the daemon's queue (create mode), make the file able
 * to shrink (auto_vacuum = INCREMENTAL, converting an older queue once
 * with VACUUM). Failure only costs the shrinking: logged, never fatal.
 */
void queue_space_setup(struct queue *q);

/*
 * queue_report.c: with the daemon's queue (create mode), make the report's
 * indexes if missing. Failure only costs speed: logged, never fatal.
 */
void queue_report_setup(struct queue *q);

/* Create or check the schema of a freshly opened database. 0 or -1. */
int queue_schema_init(struct queue *q);

/* Prepare the cached statements. 0, or -1 (damaged or foreign schema). */
int queue_schema_prepare(struct queue *q);

/* The cached statement which, reset and with bindings cleared. */
sqlite3_stmt *queue_stmt(struct queue *q, enum queue_st which);

/* Record the SQLite error of q->db while doing what; returns -1. */
int queue_fail(struct queue *q, const char *what);

/* Record an error of our own; returns -1. */
int queue_failx(struct queue *q, const char *fmt, ...) DR_PRINTF(2, 3);

/* Step st to SQLITE_DONE and reset it. 0, or -1 via queue_fail(what). */
int queue_run(struct queue *q, sqlite3_stmt *st, const char *what);

/*
 * BEGIN IMMEDIATE (take the write lock now, waiting up to the busy
 * timeout, so that no read-to-write upgrade can fail half way), COMMIT,
 * ROLLBACK. Commit returns only after the WAL is synced.
 */
int queue_tx_begin(struct queue *q);
int queue_tx_commit(struct queue *q);
void queue_tx_rollback(struct queue *q);

/*
 * Append an event inside the caller's transaction; fields (borrowed) is a
 * JSON object or NULL. 0 or -1.
 */
int queue_event_add(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields);

/* The part after the last '@' of addr, lowercased (new string). */
char *queue_addr_domain(const char *addr);

/* The fields of a message's "received" event (new object). */
json_t *queue_received_fields(const struct queue_msg_in *m);

/* A JSON string for s even if it is not UTF-8 (bad bytes become '?'). */
json_t *queue_json_str(const char *s);

/* Set key to string s in o unless s is NULL or empty. */
void queue_json_set_str(json_t *o, const char *key, const char *s);

/* A message read from a row (SQLite or PostgreSQL): the public struct
 * first, so queue_msg_free can find the owned parts. */
struct queue_msg_box {
	struct queue_msg m;
	char *own[8];
	uint8_t *data;
};

/* A recipient read from a row, owning its strings. */
struct queue_rcpt_row {
	struct queue_rcpt r;
	char *own[8];
};

/* Fill row from the current row of st (columns QUEUE_RCPT_COLS, and the
 * message's sender after them if st has one more column). */
void queue_rcpt_read(sqlite3_stmt *st, struct queue_rcpt_row *row);
void queue_rcpt_row_clear(struct queue_rcpt_row *row);

/*
 * Step st (bound by the caller) for up to max rows, reset it, then call cb
 * on each row. Collecting first means cb may write to the queue. Returns
 * the number of rows or -1.
 */
int queue_rcpt_each(struct queue *q, sqlite3_stmt *st, size_t max,
    queue_rcpt_cb *cb, void *arg);

/* A new copy of column col, or NULL for SQL NULL. */
char *queue_col_dup(sqlite3_stmt *st, int col);

/* Whether s has the form of a queue id (16 hex digits, any case). */
bool queue_is_hexid(const char *s);

/*
 * Resolve an operator's argument: a queue id (16 hex digits) that exists,
 * else a recipient row id. Returns 1 with msgid filled, 2 with *rcpt set,
 * 0 when nothing matches, -1 on error.
 */
int queue_resolve(
    struct queue *q, const char *key, char msgid[QUEUE_ID_LEN], int64_t *rcpt);

#endif
