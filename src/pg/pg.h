/*
 * pg: the connection to the fleet's shared PostgreSQL database ([fleet]
 * postgres, docs/FLEET.md), with libpq. One struct pg per thread: libpq
 * connections are not shared between threads.
 *
 * Every wait is bounded: connecting gives up after PG_CONNECT_TIMEOUT_S,
 * a statement after PG_STATEMENT_TIMEOUT_S (statement_timeout), and a
 * peer that vanishes is noticed by TCP keepalives and tcp_user_timeout.
 * A connection that broke is reopened by the next pg_ready(), at most
 * once per PG_RETRY_S, so a database that is away costs one refused
 * connect every few seconds, not one per statement.
 *
 * At the first connection pg makes sure the schema exists
 * (pg_schema.c: all tables of all fleet features, versioned in
 * dr_meta) and registers the node in dr_nodes.
 */
#ifndef DR_PG_H
#define DR_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <libpq-fe.h>

#define PG_CONNECT_TIMEOUT_S   5
#define PG_STATEMENT_TIMEOUT_S 30
#define PG_RETRY_S             2
#define PG_NODE_MAX            63 /* conf_keys.c check_node */

struct pg;

/*
 * A handle for conninfo (a libpq connection string or URI) as node. It
 * does not connect yet: pg_ready() does. Returns new (pg_close).
 */
struct pg *pg_new(const char *conninfo, const char *node);

/*
 * pg_new() and pg_ready(): for the commands, which need the database now.
 * Returns new, or NULL with *errstr (new string).
 */
struct pg *pg_open(const char *conninfo, const char *node, char **errstr);

void pg_close(struct pg *p); /* NULL is fine */

/* The node name given to pg_new (borrowed). */
const char *pg_node(const struct pg *p);

/* The last error as one line (borrowed); "" when none. */
const char *pg_error(const struct pg *p);

/*
 * Whether the connection is up, with the schema in place: 0, or -1
 * (pg_error). Connects or reconnects when needed, but not more often
 * than every PG_RETRY_S seconds (-1 at once in between).
 */
int pg_ready(struct pg *p);

/* Set the error text (for a caller's own failures). */
void pg_fail(struct pg *p, const char *msg);

/* Whether the last statement failed because the connection is gone. */
bool pg_broken(const struct pg *p);

/*
 * Run sql with n text parameters ($1..$n; a NULL value is SQL NULL).
 * Returns the result (PQclear) when its status is PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK, else NULL with pg_error set. Never connects: call
 * pg_ready() first.
 */
PGresult *pg_query(
    struct pg *p, const char *sql, int n, const char *const *values);

/* pg_query with lengths and formats (1: binary, for bytea). */
PGresult *pg_query_bin(struct pg *p, const char *sql, int n,
    const char *const *values, const int *lengths, const int *formats);

/*
 * pg_query_bin as a prepared statement: the server parses and plans sql
 * once per connection (PQprepare on first use, again after a reconnect),
 * then each call only binds and executes it (PQexecPrepared). sql must
 * be a string that lives as long as p and never changes (a literal or a
 * static array): it is known by its address. At most PG_PREPARED_MAX
 * statements per connection; beyond that, sql runs unprepared.
 */
#define PG_PREPARED_MAX 32
PGresult *pg_query_prepared(struct pg *p, const char *sql, int n,
    const char *const *values, const int *lengths, const int *formats);

/* pg_query for a statement whose rows are not wanted: 0 or -1. */
int pg_exec(struct pg *p, const char *sql, int n, const char *const *values);

/* BEGIN, COMMIT, ROLLBACK: 0 or -1. pg_rollback is quiet and keeps the
 * error of the failure that made the caller roll back. */
int pg_begin(struct pg *p);
int pg_commit(struct pg *p);
void pg_rollback(struct pg *p);

/* The raw connection for what the helpers above do not cover (COPY). */
PGconn *pg_conn(struct pg *p);

/*
 * Value helpers for a result row: the text of column col (NULL for SQL
 * NULL), and as a 64-bit integer (0 for NULL or garbage).
 */
const char *pg_text(const PGresult *r, int row, int col);
long long pg_int(const PGresult *r, int row, int col);

/* n as decimal text in buf (for a parameter); returns buf. */
#define PG_INT_LEN 24
const char *pg_itoa(long long n, char buf[PG_INT_LEN]);

/*
 * The schema (pg_schema.c): create the tables when missing, refuse a
 * database written by a newer danerelay. Run by pg_ready() on each new
 * connection. 0 or -1.
 */
int pg_schema_ensure(struct pg *p);

/* The node name a relay uses: [fleet] node, else the host name, cut at
 * PG_NODE_MAX. Returns new. */
char *pg_default_node(const char *configured);

#endif
