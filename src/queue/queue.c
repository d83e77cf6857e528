/*
 * queue: opening the store, the helpers every queue file uses, and the one
 * write that the SMTP server waits on: queue_add(), whose COMMIT (an fsync
 * of the WAL with synchronous=FULL) is what a 250 reply promises.
 */
#include "queue/queue_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/qid.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "queue/queue_pg_int.h"

static struct queue *queue_open_mode(
    const char *dir, bool create, char **errstr);

/*
 * The system's reason too, where SQLite keeps it; its SQLITE_FULL ("database
 * or disk is full") keeps none, and means a write got ENOSPC (or EDQUOT).
 */
static const char *
queue_fail_why(struct queue *q)
{
	int sys = sqlite3_system_errno(q->db);

	if (sys != 0)
		return strerror(sys);
	if ((q->errcode & 0xff) == SQLITE_FULL)
		return "ENOSPC: no space left on the queue's filesystem";
	return NULL;
}

int
queue_fail(struct queue *q, const char *what)
{
	const char *why;

	if (q->batch > 0 && q->batch_err != 0)
		return -1; /* keep the first error: it is the cause */
	q->errcode = sqlite3_extended_errcode(q->db);
	why = queue_fail_why(q);
	snprintf(q->err, sizeof(q->err), "%s: %s: %s%s%s%s", q->path, what,
	    sqlite3_errmsg(q->db), why != NULL ? " (" : "",
	    why != NULL ? why : "", why != NULL ? ")" : "");
	if (q->batch > 0 && (q->errcode & 0xff) != SQLITE_CONSTRAINT)
		q->batch_err = q->errcode;
	return -1;
}

int
queue_failx(struct queue *q, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
queue_error(const struct queue *q)
{
	return q->err;
}

sqlite3_stmt *
queue_stmt(struct queue *q, enum queue_st which)
{
	sqlite3_stmt *st = q->st[which];

	/* A statement left mid-step would pin an old WAL snapshot. */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int
queue_run(struct queue *q, sqlite3_stmt *st, const char *what)
{
	int rc;

	if (q->batch > 0 && q->batch_err != 0)
		return -1; /* the batch is lost: write nothing outside it */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		queue_fail(q, what);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

/*
 * Inside a batch (queue_batch_begin), a transaction is a savepoint of the
 * batch's transaction: it commits or rolls back on its own, and reaches
 * the disk with the batch.
 */
int
queue_tx_begin(struct queue *q)
{
	if (q->batch > 0 && q->batch_err != 0)
		return -1;
	if (q->batch > 0)
		return sqlite3_exec(q->db, "SAVEPOINT tx", NULL, NULL, NULL) ==
		        SQLITE_OK ?
		    0 :
		    queue_fail(q, "savepoint");
	return queue_run(q, queue_stmt(q, QUEUE_ST_BEGIN), "begin");
}

int
queue_tx_commit(struct queue *q)
{
	if (q->batch > 0) {
		if (sqlite3_exec(q->db, "RELEASE tx", NULL, NULL, NULL) ==
		    SQLITE_OK)
			return 0;
		queue_fail(q, "release savepoint");
		queue_tx_rollback(q);
		return -1;
	}
	if (queue_run(q, queue_stmt(q, QUEUE_ST_COMMIT), "commit") == -1) {
		queue_tx_rollback(q);
		return -1;
	}
	return 0;
}

void
queue_tx_rollback(struct queue *q)
{
	if (q->batch > 0) {
		sqlite3_exec(
		    q->db, "ROLLBACK TO tx; RELEASE tx", NULL, NULL, NULL);
		return;
	}
	/* Keep the first error: it says why we roll back. */
	if (sqlite3_get_autocommit(q->db) == 0)
		sqlite3_step(queue_stmt(q, QUEUE_ST_ROLLBACK));
	sqlite3_reset(q->st[QUEUE_ST_ROLLBACK]);
}

int
queue_batch_begin(struct queue *q)
{
	if (q->pg != NULL)
		return queue_pg_batch_begin(q);
	if (q->batch++ > 0)
		return 0;
	q->batch_err = 0;
	if (queue_run(q, queue_stmt(q, QUEUE_ST_BEGIN), "begin batch") == 0)
		return 0;
	q->batch = 0;
	return -1;
}

int
queue_batch_end(struct queue *q)
{
	int failed = q->batch_err;

	if (q->pg != NULL)
		return queue_pg_batch_end(q);
	if (q->batch == 0 || --q->batch > 0)
		return 0;
	q->batch_err = 0;
	if (failed == 0 &&
	    queue_run(q, queue_stmt(q, QUEUE_ST_COMMIT), "commit batch") == 0)
		return 0;
	if (sqlite3_get_autocommit(q->db) == 0)
		sqlite3_step(queue_stmt(q, QUEUE_ST_ROLLBACK));
	sqlite3_reset(q->st[QUEUE_ST_ROLLBACK]);
	return -1;
}

char *
queue_col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *s;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	s = sqlite3_column_text(st, col);
	return xstrdup(s != NULL ? (const char *)s : "");
}

json_t *
queue_json_str(const char *s)
{
	json_t *j = json_string(s);
	char *copy, *p;

	if (j != NULL)
		return j;
	/* Remote replies need not be UTF-8; keep what can be kept. */
	copy = xstrdup(s);
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void
queue_json_set_str(json_t *o, const char *key, const char *s)
{
	if (s != NULL && *s != '\0')
		json_object_set_new(o, key, queue_json_str(s));
}

const char *
queue_time_iso(time_t t, char buf[QUEUE_TIME_LEN])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, QUEUE_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, QUEUE_TIME_LEN, "%lld", (long long)t);
	return buf;
}

const char *
queue_time_ago(time_t secs, char buf[QUEUE_AGO_LEN])
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, QUEUE_AGO_LEN, "%llds", (long long)secs);
	else if (secs < 7200)
		snprintf(buf, QUEUE_AGO_LEN, "%lldm", (long long)secs / 60);
	else if (secs < 2 * 86400)
		snprintf(buf, QUEUE_AGO_LEN, "%lldh", (long long)secs / 3600);
	else
		snprintf(buf, QUEUE_AGO_LEN, "%lldd", (long long)secs / 86400);
	return buf;
}

const char *
queue_rcpt_status_str(enum queue_rcpt_status s)
{
	switch (s) {
	case QUEUE_RCPT_QUEUED:
		return "queued";
	case QUEUE_RCPT_DELIVERED:
		return "delivered";
	case QUEUE_RCPT_BOUNCED:
		return "bounced";
	case QUEUE_RCPT_DELETED:
		return "deleted";
	case QUEUE_RCPT_HELD:
		return "held";
	}
	return "unknown";
}

const char *
queue_kind_str(enum queue_kind k)
{
	switch (k) {
	case QUEUE_KIND_MAIL:
		return "mail";
	case QUEUE_KIND_DSN:
		return "dsn";
	case QUEUE_KIND_REPORT:
		return "report";
	}
	return "unknown";
}

const char *
queue_ret_str(enum queue_ret r)
{
	switch (r) {
	case QUEUE_RET_UNSET:
		return "unset";
	case QUEUE_RET_FULL:
		return "full";
	case QUEUE_RET_HDRS:
		return "hdrs";
	}
	return "unknown";
}

/* The directory holds the mail of others: private, created if missing. */
static int
queue_mkdir(const char *dir, char **errstr)
{
	struct stat sb;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		*errstr =
		    xasprintf("queue directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		*errstr = xasprintf("queue directory %s: not a directory", dir);
		return -1;
	}
	return 0;
}

/*
 * SQLite takes a file shorter than its header for an empty database and
 * would write a queue over it; anything that is not SQLite is refused.
 *
 * Read through SQLite's own handle of the file, never an fopen/fclose of
 * our own: closing any descriptor of a file drops every POSIX lock the
 * process holds on it (fcntl(2)), so a second connection opened in the
 * daemon (the console's) would silently drop the daemon's locks; a
 * command closing the queue then takes itself for the last user, deletes
 * the WAL, and the daemon's commits go to a deleted file.
 */
static int
queue_check_magic(struct queue *q)
{
	static const char magic[16] = "SQLite format 3";
	sqlite3_file *fp = NULL;
	char head[16] = { 0 };
	struct stat sb;

	/* stat(2) opens nothing; SQLite itself counts one byte as empty. */
	if (stat(q->path, &sb) == -1 || sb.st_size == 0)
		return 0; /* SQLite creates it or says why not */
	if (sqlite3_file_control(
	        q->db, "main", SQLITE_FCNTL_FILE_POINTER, &fp) != SQLITE_OK ||
	    fp == NULL || fp->pMethods == NULL)
		return 0; /* SQLite will say what is wrong */
	/* A short read fills the rest with zeros: no magic. */
	if (fp->pMethods->xRead(fp, head, (int)sizeof(head), 0) == SQLITE_OK &&
	    memcmp(head, magic, sizeof(head)) == 0)
		return 0;
	return queue_failx(q,
	    "%s: not a danerelay queue, or damaged: not a SQLite database",
	    q->path);
}

/*
 * Queued mail is private from the first byte, whatever the umask: the
 * database is created 0600 before SQLite opens it, and SQLite gives its
 * -wal and -shm files the mode of the database.
 */
static int
queue_create_private(const char *path, char **errstr)
{
	int fd;

	/* An existing queue is left alone: no descriptor of ours to close
	 * (see queue_check_magic). */
	if (access(path, F_OK) == 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd == -1) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

struct queue *
queue_open(const char *dir, char **errstr)
{
	return queue_open_mode(dir, true, errstr);
}

struct queue *
queue_open_existing(const char *dir, char **errstr)
{
	return queue_open_mode(dir, false, errstr);
}

static struct queue *
queue_open_mode(const char *dir, bool create, char **errstr)
{
	struct queue *q;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

	*errstr = NULL;
	if (create && queue_mkdir(dir, errstr) == -1)
		return NULL;
	q = xcalloc(1, sizeof(*q));
	q->dir = xstrdup(dir);
	q->path = xasprintf("%s/%s", dir, QUEUE_DB_NAME);
	if (create && queue_create_private(q->path, errstr) == -1) {
		queue_close(q);
		return NULL;
	}
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	else if (access(q->path, F_OK) == -1) {
		*errstr = xasprintf("%s: %s (the relay creates the queue when "
		                    "it first starts)",
		    q->path, strerror(errno));
		queue_close(q);
		return NULL;
	}
	if (sqlite3_open_v2(q->path, &q->db, flags, NULL) != SQLITE_OK ||
	    queue_check_magic(q) == -1 || queue_schema_init(q) == -1 ||
	    queue_schema_prepare(q) == -1) {
		if (q->err[0] == '\0')
			queue_fail(q, "open");
		*errstr = xstrdup(q->err);
		queue_close(q);
		return NULL;
	}
	if (create) {
		queue_space_setup(q);
		queue_report_setup(q);
	}
	return q;
}

void
queue_close(struct queue *q)
{
	size_t i;

	if (q == NULL)
		return;
	if (q->pg != NULL) {
		queue_pg_close(q);
		return;
	}
	for (i = 0; i < QUEUE_ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	/* The last connection to close checkpoints the WAL into the DB. */
	sqlite3_close(q->db);
	free(q->dir);
	free(q->path);
	free(q);
}

static void
queue_bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, col);
	else
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

static int
queue_add_msg(
    struct queue *q, const struct queue_msg_in *m, const char *id, time_t now)
{
	sqlite3_stmt *st = queue_stmt(q, QUEUE_ST_MSG_INSERT);
	static const uint8_t empty[1];

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)m->kind);
	queue_bind_text(st, 3, m->sender != NULL ? m->sender : "");
	queue_bind_text(st, 4, m->envid);
	sqlite3_bind_int(st, 5, (int)m->ret);
	sqlite3_bind_int(st, 6, m->body_8bit);
	sqlite3_bind_int(st, 7, m->smtputf8);
	queue_bind_text(st, 8, m->client != NULL ? m->client : "");
	queue_bind_text(st, 9, m->helo);
	queue_bind_text(st, 10, m->auth_user);
	queue_bind_text(st, 11, m->message_id);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)m->len);
	/* An empty message is an empty blob, never NULL (= body dropped). */
	sqlite3_bind_blob64(st, 14, m->len > 0 ? m->data : empty,
	    (sqlite3_uint64)m->len, SQLITE_STATIC);
	return queue_run(q, st, "insert message");
}

/* The part after the last '@', lowercased (new string). */
static char *
queue_addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	char *d = xstrdup(at != NULL ? at + 1 : "");

	str_lower(d);
	return d;
}

static int
queue_add_rcpt(
    struct queue *q, const char *id, const struct queue_rcpt_in *r, time_t now)
{
	sqlite3_stmt *st = queue_stmt(q, QUEUE_ST_RCPT_INSERT);
	char *domain = queue_addr_domain(r->addr);
	json_t *fields;
	int rc;

	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->addr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, domain, -1, SQLITE_STATIC);
	queue_bind_text(st, 4, r->orcpt);
	sqlite3_bind_int(st, 5, (int)r->notify);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)now);
	rc = queue_run(q, st, "insert recipient");
	free(domain);
	if (rc == -1)
		return -1;
	fields = json_object();
	json_object_set_new(
	    fields, "rcpt", json_integer(sqlite3_last_insert_rowid(q->db)));
	queue_json_set_str(fields, "orcpt", r->orcpt);
	if (r->notify != 0)
		json_object_set_new(
		    fields, "notify", json_integer((json_int_t)r->notify));
	rc = queue_event_add(q, id, r->addr, "queued", fields);
	json_decref(fields);
	return rc;
}

static int
queue_add_received(
    struct queue *q, const struct queue_msg_in *m, const char *id)
{
	json_t *f = json_object();
	int rc;

	json_object_set_new(f, "kind", json_string(queue_kind_str(m->kind)));
	json_object_set_new(
	    f, "sender", queue_json_str(m->sender != NULL ? m->sender : ""));
	queue_json_set_str(f, "client", m->client);
	queue_json_set_str(f, "helo", m->helo);
	queue_json_set_str(f, "auth_user", m->auth_user);
	json_object_set_new(f, "size", json_integer((json_int_t)m->len));
	queue_json_set_str(f, "message_id", m->message_id);
	queue_json_set_str(f, "envid", m->envid);
	json_object_set_new(
	    f, "recipients", json_integer((json_int_t)m->nrcpt));
	rc = queue_event_add(q, id, NULL, "received", f);
	json_decref(f);
	return rc;
}

static int
queue_add_tx(struct queue *q, const struct queue_msg_in *m, const char *id)
{
	time_t now = time(NULL);
	size_t i;

	if (queue_add_msg(q, m, id, now) == -1 ||
	    queue_add_received(q, m, id) == -1)
		return -1;
	for (i = 0; i < m->nrcpt; i++)
		if (queue_add_rcpt(q, id, &m->rcpts[i], now) == -1)
			return -1;
	return 0;
}

/* One attempt at storing m under id: everything or nothing. */
static int
queue_add_once(struct queue *q, const struct queue_msg_in *m, const char *id)
{
	if (queue_tx_begin(q) == -1)
		return -1;
	if (queue_add_tx(q, m, id) == -1) {
		queue_tx_rollback(q);
		return -1;
	}
	return queue_tx_commit(q);
}

int
queue_add(struct queue *q, const struct queue_msg_in *m, char id[QUEUE_ID_LEN],
    char **errstr)
{
	int tries;

	if (q->pg != NULL)
		return queue_pg_add(q, m, id, errstr);
	*errstr = NULL;
	if (m->nrcpt == 0 || (m->len > 0 && m->data == NULL)) {
		*errstr = xstrdup("queue_add: no recipients or no data");
		return -1;
	}
	/*
	 * The server names the id in its Received header before the commit:
	 * use a well-formed id given by the caller first. A collision (ids of
	 * two processes in the same second, core/qid.h) is rare; just draw
	 * again.
	 */
	for (tries = 0; tries < 3; tries++) {
		if (tries == 0 &&
		    strnlen(id, QUEUE_ID_LEN) == QUEUE_ID_LEN - 1 &&
		    strspn(id, "0123456789abcdef") == QUEUE_ID_LEN - 1) {
			/* keep it */
		} else
			qid_make(time(NULL), id);
		q->errcode = SQLITE_OK;
		if (queue_add_once(q, m, id) == 0)
			return 0;
		if (q->errcode != SQLITE_CONSTRAINT_PRIMARYKEY)
			break;
	}
	*errstr = xstrdup(q->err);
	return -1;
}

int
queue_event_add(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields)
{
	sqlite3_stmt *st = queue_stmt(q, QUEUE_ST_EVENT_INSERT);
	char *text = NULL;
	int rc;

	if (fields != NULL && json_object_size(fields) > 0)
		text = json_dumps(fields, JSON_COMPACT);
	sqlite3_bind_text(st, 1, msgid, -1, SQLITE_STATIC);
	queue_bind_text(st, 2, addr);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 4, type, -1, SQLITE_STATIC);
	queue_bind_text(st, 5, text);
	rc = queue_run(q, st, "insert event");
	free(text);
	return rc;
}

/* An event type is one lowercase word, so the printers need no quoting. */
static bool
queue_event_type_ok(const char *type)
{
	size_t n = strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789-_");

	return n > 0 && n <= 32 && type[n] == '\0';
}

int
queue_event_json(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields)
{
	if (!queue_event_type_ok(type))
		return queue_failx(q, "event type '%s' is not one word", type);
	if (q->pg != NULL)
		return queue_pg_event(q, msgid, addr, type, fields);
	return queue_event_add(q, msgid, addr, type, fields);
}

int
queue_event(struct queue *q, const char *msgid, const char *addr,
    const char *type, const char *fields)
{
	json_t *obj = NULL;
	json_error_t jerr;
	int rc;

	if (!queue_event_type_ok(type))
		return queue_failx(q, "event type '%s' is not one word", type);
	if (fields != NULL) {
		if (strlen(fields) > QUEUE_FIELDS_MAX)
			return queue_failx(
			    q, "event fields over %d bytes", QUEUE_FIELDS_MAX);
		obj = json_loads(fields, JSON_REJECT_DUPLICATES, &jerr);
		if (obj == NULL || !json_is_object(obj)) {
			json_decref(obj);
			return queue_failx(q,
			    "event fields are not a JSON object: %s",
			    obj == NULL ? jerr.text : "wrong type");
		}
	}
	rc = q->pg != NULL ? queue_pg_event(q, msgid, addr, type, obj) :
	                     queue_event_add(q, msgid, addr, type, obj);
	json_decref(obj);
	return rc;
}
