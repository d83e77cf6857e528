/*
 * pg: one libpq connection with bounded waits, reconnects at a limited
 * rate, and the schema made sure of on each new connection (pg.h).
 */
#include "pg/pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/xmalloc.h"

struct pg {
	char *conninfo;
	char node[PG_NODE_MAX + 1];
	PGconn *conn;
	time_t last_try; /* of the last connect; 0 = never */
	bool broken;     /* the last statement lost the connection */
	char err[512];
	/* The statements prepared on this connection (pg_query_prepared),
	 * by address; statement i is named "dr_i". Emptied on connect. */
	const char *prepared[PG_PREPARED_MAX];
	int nprepared;
};

/* libpq prints NOTICEs ("relation exists, skipping") to stderr. */
static void
pg_notice_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void
pg_seterr(struct pg *p, const char *what, const char *detail)
{
	size_t n;

	snprintf(p->err, sizeof(p->err), "%s%s%s", what,
	    detail != NULL && *detail != '\0' ? ": " : "",
	    detail != NULL ? detail : "");
	/* libpq's messages end in a newline, some hold several lines. */
	for (n = 0; p->err[n] != '\0'; n++)
		if (p->err[n] == '\n' || p->err[n] == '\r')
			p->err[n] = ' ';
	while (n > 0 && p->err[n - 1] == ' ')
		p->err[--n] = '\0';
}

void
pg_fail(struct pg *p, const char *msg)
{
	pg_seterr(p, msg, NULL);
}

struct pg *
pg_new(const char *conninfo, const char *node)
{
	struct pg *p = xcalloc(1, sizeof(*p));

	p->conninfo = xstrdup(conninfo);
	snprintf(p->node, sizeof(p->node), "%s", node);
	return p;
}

struct pg *
pg_open(const char *conninfo, const char *node, char **errstr)
{
	struct pg *p = pg_new(conninfo, node);

	if (pg_ready(p) == -1) {
		*errstr = xasprintf("[fleet] postgres: %s", p->err);
		pg_close(p);
		return NULL;
	}
	return p;
}

void
pg_close(struct pg *p)
{
	if (p == NULL)
		return;
	if (p->conn != NULL)
		PQfinish(p->conn);
	free(p->conninfo);
	free(p);
}

const char *
pg_node(const struct pg *p)
{
	return p->node;
}

const char *
pg_error(const struct pg *p)
{
	return p->err;
}

bool
pg_broken(const struct pg *p)
{
	return p->broken || p->conn == NULL;
}

PGconn *
pg_conn(struct pg *p)
{
	return p->conn;
}

/*
 * Our defaults come before the operator's string (dbname, expanded), so
 * that the string may override them: libpq lets later values win.
 */
static int
pg_connect(struct pg *p)
{
	char ct[16];
	const char *const keys[] = { "connect_timeout", "application_name",
		"keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "tcp_user_timeout", "dbname", NULL };
	const char *vals[9];
	char opt[64];

	snprintf(ct, sizeof(ct), "%d", PG_CONNECT_TIMEOUT_S);
	vals[0] = ct;
	vals[1] = "danerelay";
	vals[2] = "1";
	vals[3] = "10";
	vals[4] = "5";
	vals[5] = "3";
	vals[6] = "15000";
	vals[7] = p->conninfo;
	vals[8] = NULL;
	p->conn = PQconnectdbParams(keys, vals, 1);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		pg_seterr(p, "cannot connect",
		    p->conn != NULL ? PQerrorMessage(p->conn) :
		                      "out of memory");
		if (p->conn != NULL)
			PQfinish(p->conn);
		p->conn = NULL;
		return -1;
	}
	PQsetNoticeProcessor(p->conn, pg_notice_quiet, NULL);
	p->broken = false;
	p->nprepared = 0; /* a new session knows none of them */
	snprintf(opt, sizeof(opt), "SET statement_timeout = '%ds'",
	    PG_STATEMENT_TIMEOUT_S);
	if (pg_exec(p, opt, 0, NULL) == -1 ||
	    pg_exec(p, "SET client_min_messages = warning", 0, NULL) == -1 ||
	    pg_schema_ensure(p) == -1) {
		PQfinish(p->conn);
		p->conn = NULL;
		return -1;
	}
	return 0;
}

int
pg_ready(struct pg *p)
{
	time_t now = time(NULL);

	if (p->conn != NULL && !p->broken && PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	if (p->conn != NULL) {
		PQfinish(p->conn);
		p->conn = NULL;
	}
	if (p->last_try != 0 && now - p->last_try < PG_RETRY_S &&
	    now >= p->last_try) {
		if (p->err[0] == '\0')
			pg_seterr(p, "database unreachable", NULL);
		return -1;
	}
	p->last_try = now;
	return pg_connect(p);
}

/* A statement's result: r if it succeeded, else NULL with the error. */
static PGresult *
pg_result(struct pg *p, PGresult *r)
{
	ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	pg_seterr(p, "database",
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(p->conn));
	if (PQstatus(p->conn) != CONNECTION_OK)
		p->broken = true;
	PQclear(r);
	return NULL;
}

PGresult *
pg_query_bin(struct pg *p, const char *sql, int n, const char *const *values,
    const int *lengths, const int *formats)
{
	PGresult *r;

	if (p->conn == NULL) {
		pg_seterr(p, "not connected", NULL);
		p->broken = true;
		return NULL;
	}
	/* Without parameters, the simple protocol: it runs several
	 * statements in one string (the schema), the extended one does not. */
	r = n == 0 ?
	    PQexec(p->conn, sql) :
	    PQexecParams(p->conn, sql, n, NULL, values, lengths, formats, 0);
	return pg_result(p, r);
}

/* The index of sql among the prepared statements: prepares it when new;
 * -1 when it cannot be (the error is set, or the table is full: -2). */
static int
pg_prepare(struct pg *p, const char *sql, int n)
{
	PGresult *r;
	char name[16];
	int i;

	for (i = 0; i < p->nprepared; i++)
		if (p->prepared[i] == sql)
			return i;
	if (p->nprepared == PG_PREPARED_MAX)
		return -2;
	snprintf(name, sizeof(name), "dr_%d", p->nprepared);
	r = pg_result(p, PQprepare(p->conn, name, sql, n, NULL));
	if (r == NULL)
		return -1;
	PQclear(r);
	p->prepared[p->nprepared] = sql;
	return p->nprepared++;
}

PGresult *
pg_query_prepared(struct pg *p, const char *sql, int n,
    const char *const *values, const int *lengths, const int *formats)
{
	PGresult *r;
	char name[16];
	int i;

	if (p->conn == NULL) {
		pg_seterr(p, "not connected", NULL);
		p->broken = true;
		return NULL;
	}
	if ((i = pg_prepare(p, sql, n)) == -1)
		return NULL;
	if (i == -2)
		return pg_query_bin(p, sql, n, values, lengths, formats);
	snprintf(name, sizeof(name), "dr_%d", i);
	r = PQexecPrepared(p->conn, name, n, values, lengths, formats, 0);
	return pg_result(p, r);
}

PGresult *
pg_query(struct pg *p, const char *sql, int n, const char *const *values)
{
	return pg_query_bin(p, sql, n, values, NULL, NULL);
}

int
pg_exec(struct pg *p, const char *sql, int n, const char *const *values)
{
	PGresult *r = pg_query(p, sql, n, values);

	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

int
pg_begin(struct pg *p)
{
	return pg_exec(p, "BEGIN", 0, NULL);
}

int
pg_commit(struct pg *p)
{
	return pg_exec(p, "COMMIT", 0, NULL);
}

void
pg_rollback(struct pg *p)
{
	char keep[sizeof(p->err)];
	PGresult *r;

	if (p->conn == NULL || p->broken)
		return;
	memcpy(keep, p->err, sizeof(keep));
	r = PQexec(p->conn, "ROLLBACK");
	PQclear(r);
	if (PQstatus(p->conn) != CONNECTION_OK)
		p->broken = true;
	memcpy(p->err, keep, sizeof(keep));
}

const char *
pg_text(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return NULL;
	return PQgetvalue(r, row, col);
}

long long
pg_int(const PGresult *r, int row, int col)
{
	const char *s = pg_text(r, row, col);

	return s != NULL ? strtoll(s, NULL, 10) : 0;
}

const char *
pg_itoa(long long n, char buf[PG_INT_LEN])
{
	snprintf(buf, PG_INT_LEN, "%lld", n);
	return buf;
}

char *
pg_default_node(const char *configured)
{
	char host[256];

	if (configured != NULL && *configured != '\0')
		return xstrdup(configured);
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		return xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	host[PG_NODE_MAX] = '\0';
	return xstrdup(host);
}
