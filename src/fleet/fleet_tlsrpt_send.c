/*
 * fleet_tlsrpt_send: the TLS-RPT send run's book in the fleet database
 * (RFC 8460 §4: one report per reporting organisation, policy domain and
 * day, with the sessions of the whole organisation).
 *
 * Every node runs the daily send (or `tlsrpt send`); the database makes
 * sure each report is built once and each destination tried by one node
 * at a time:
 *
 *  - claim: a (day, domain) row of dr_tlsrpt_reports is taken with an
 *    upsert that succeeds only while the row is open and its lease has
 *    run out, so of nodes starting together exactly one gets it;
 *  - prepare: the built report's outbox rows (one per rua, carrying the
 *    gzipped report and its report-id) are inserted in the transaction
 *    that moves the claim from open to prepared; a node that lost its
 *    claim (lease over, another node took it) rolls back, so a report is
 *    never built twice with two ids;
 *  - due: pending outbox rows are claimed with FOR UPDATE SKIP LOCKED
 *    and a lease, tried, and marked done, pending or failed; the report
 *    is done in the transaction that ends its last pending row.
 *
 * A node killed in the middle leaves its claims to lapse; another node's
 * run picks them up. The one window for a duplicate is between a
 * destination accepting the report and the row being marked (as RFC 5321
 * §6.1 for mail). Leases are counted by the database's clock, so the
 * nodes' clocks need not agree.
 */
#include "fleet/fleet.h"
#include "fleet/fleet_tlsrpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "pg/pg.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_send.h"

#define FB_DB_NOW "extract(epoch from clock_timestamp())::bigint"

struct fleet_tlsrpt_book {
	struct tlsrpt_send_book b;
	struct pg *p;
	struct tlsrpt_store *own;
	time_t lease;
	char lease_s[PG_INT_LEN];
};

static const char fb_domains_sql[] =
    "SELECT DISTINCT p.domain FROM dr_tlsrpt_policies p WHERE p.day = $1 "
    "AND NOT EXISTS (SELECT 1 FROM dr_tlsrpt_reports r WHERE r.day = "
    "p.day AND r.domain = p.domain AND r.state <> 0) ORDER BY p.domain";

/* Claimed when free, or open with its lease over. */
static const char fb_claim_sql[] =
    "INSERT INTO dr_tlsrpt_reports AS r (day, domain, state, node, "
    "lease_until, at) VALUES ($1, $2, 0, $3, " FB_DB_NOW " + $4, " FB_DB_NOW
    ") ON CONFLICT (day, domain) DO UPDATE SET node = EXCLUDED.node, "
    "lease_until = EXCLUDED.lease_until, at = EXCLUDED.at WHERE r.state = "
    "0 AND r.lease_until < " FB_DB_NOW " RETURNING 1";

static const char fb_state_sql[] =
    "SELECT state FROM dr_tlsrpt_reports WHERE day = $1 AND domain = $2";

static const char fb_release_sql[] =
    "UPDATE dr_tlsrpt_reports SET lease_until = 0 WHERE day = $1 AND "
    "domain = $2 AND node = $3 AND state = 0";

/* The claim still ours and open: the one moment a report is prepared. */
static const char fb_prepared_sql[] =
    "UPDATE dr_tlsrpt_reports SET state = $4, report_id = $5, lease_until "
    "= 0, at = " FB_DB_NOW " WHERE day = $1 AND domain = $2 AND node = $3 "
    "AND state = 0 RETURNING 1";

static const char fb_outbox_add_sql[] =
    "INSERT INTO dr_tlsrpt_outbox (day, domain, uri, report_id, gz, state) "
    "VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT DO NOTHING";

static const char fb_due_sql[] =
    "UPDATE dr_tlsrpt_outbox o SET lease_node = $1, lease_until = " FB_DB_NOW
    " + $2 FROM (SELECT day, domain, uri FROM dr_tlsrpt_outbox WHERE state "
    "= 0 AND next_attempt <= $3 AND lease_until < " FB_DB_NOW " ORDER BY "
    "next_attempt, day, domain, uri LIMIT $4 FOR UPDATE SKIP LOCKED) d "
    "WHERE o.day = d.day AND o.domain = d.domain AND o.uri = d.uri "
    "RETURNING o.day, o.domain, o.uri, o.report_id, o.gz, o.state, "
    "o.attempts, o.first_attempt, o.note";

/* A pending row only stays ours to change while it is pending; done is
 * written whatever happened meanwhile (the destination has it). */
static const char fb_update_sql[] =
    "UPDATE dr_tlsrpt_outbox SET state = $4, note = $5, attempts = "
    "attempts + 1, first_attempt = CASE first_attempt WHEN 0 THEN $6 ELSE "
    "first_attempt END, next_attempt = $7, lease_node = NULL, lease_until "
    "= 0 WHERE day = $1 AND domain = $2 AND uri = $3 AND (state = 0 OR $4 "
    "= 1)";

static const char fb_report_done_sql[] =
    "UPDATE dr_tlsrpt_reports SET state = " FT_DONE_S ", at = " FB_DB_NOW
    " WHERE day = $1 AND domain = $2 AND state = 1 AND NOT EXISTS (SELECT "
    "1 FROM dr_tlsrpt_outbox WHERE day = $1 AND domain = $2 AND state = 0)";

static char **
fb_domains(void *ctx, const char *day, size_t *n)
{
	struct fleet_tlsrpt_book *fb = ctx;
	const char *args[1] = { day };
	PGresult *r;
	char **v;
	int i;

	/* This node's own counts go in first, fresh. */
	if (fleet_tlsrpt_push(fb->p, fb->own) == -1)
		return NULL;
	if ((r = pg_query(fb->p, fb_domains_sql, 1, args)) == NULL)
		return NULL;
	*n = (size_t)PQntuples(r);
	v = xcalloc(*n + 1, sizeof(*v));
	for (i = 0; i < PQntuples(r); i++)
		v[i] = xstrdup(pg_text(r, i, 0));
	PQclear(r);
	return v;
}

static int
fb_claim(void *ctx, const char *day, const char *domain, time_t now)
{
	struct fleet_tlsrpt_book *fb = ctx;
	const char *args[4] = { day, domain, pg_node(fb->p), fb->lease_s };
	PGresult *r;
	int got;

	(void)now; /* the database's clock counts leases */
	if (pg_ready(fb->p) == -1 ||
	    (r = pg_query(fb->p, fb_claim_sql, 4, args)) == NULL)
		return -1;
	got = PQntuples(r) > 0;
	PQclear(r);
	if (got)
		return 1;
	if ((r = pg_query(fb->p, fb_state_sql, 2, args)) == NULL)
		return -1;
	/* Still open: another node's lease runs. */
	got = PQntuples(r) > 0 && pg_int(r, 0, 0) == FT_OPEN ? 2 : 0;
	PQclear(r);
	return got;
}

static void
fb_release(void *ctx, const char *day, const char *domain)
{
	struct fleet_tlsrpt_book *fb = ctx;
	const char *args[3] = { day, domain, pg_node(fb->p) };

	if (pg_exec(fb->p, fb_release_sql, 3, args) == -1)
		log_warnx("TLS-RPT: %s", pg_error(fb->p));
}

static char *
fb_build(void *ctx, const char *domain, const char *day, const char *org,
    const char *contact, const char *report_id)
{
	struct fleet_tlsrpt_book *fb = ctx;
	struct tlsrpt_store *m;
	char *json;

	if ((m = fleet_tlsrpt_snapshot(fb->p, day, day, domain)) == NULL)
		return NULL;
	json = tlsrpt_report_build(m, domain, day, org, contact, report_id);
	if (json == NULL)
		pg_fail(fb->p, tlsrpt_store_error(m));
	tlsrpt_store_close(m);
	return json;
}

static int
fb_outbox_add(
    struct fleet_tlsrpt_book *fb, const struct tlsrpt_out *o, const char *uri)
{
	const char *args[5] = { o->day, o->domain, uri, o->report_id,
		(const char *)o->gz };
	int lengths[5] = { 0, 0, 0, 0, (int)o->gzlen };
	int formats[5] = { 0, 0, 0, 0, 1 };
	PGresult *r;

	r = pg_query_bin(fb->p, fb_outbox_add_sql, 5, args, lengths, formats);
	if (r == NULL)
		return -1;
	PQclear(r);
	return 0;
}

static int
fb_prepare_tx(struct fleet_tlsrpt_book *fb, const struct tlsrpt_out *o,
    const char *const *uris, size_t n)
{
	const char *args[5] = { o->day, o->domain, pg_node(fb->p),
		n > 0 ? "1" : FT_NO_POLICY_S, n > 0 ? o->report_id : NULL };
	PGresult *r;
	bool ours;
	size_t i;

	if ((r = pg_query(fb->p, fb_prepared_sql, 5, args)) == NULL)
		return -1;
	ours = PQntuples(r) > 0;
	PQclear(r);
	if (!ours) {
		pg_fail(
		    fb->p, "the claim on the report lapsed to another node");
		return -1;
	}
	for (i = 0; i < n; i++)
		if (fb_outbox_add(fb, o, uris[i]) == -1)
			return -1;
	return 0;
}

static int
fb_prepare(
    void *ctx, const struct tlsrpt_out *o, const char *const *uris, size_t n)
{
	struct fleet_tlsrpt_book *fb = ctx;

	if (pg_begin(fb->p) == -1)
		return -1;
	if (fb_prepare_tx(fb, o, uris, n) == -1) {
		pg_rollback(fb->p);
		return -1;
	}
	return pg_commit(fb->p);
}

/* One claimed row to cb; its report decoded from bytea. */
static void
fb_due_row(const PGresult *r, int i, tlsrpt_out_cb *cb, void *arg)
{
	struct tlsrpt_out o;
	unsigned char *gz;
	size_t gzlen = 0;

	gz =
	    PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 4), &gzlen);
	if (gz == NULL)
		panic("PQunescapeBytea: out of memory");
	memset(&o, 0, sizeof(o));
	snprintf(o.day, sizeof(o.day), "%s", pg_text(r, i, 0));
	o.domain = pg_text(r, i, 1);
	o.uri = pg_text(r, i, 2);
	o.report_id = pg_text(r, i, 3);
	o.gz = gz;
	o.gzlen = gzlen;
	o.state = (enum tlsrpt_out_state)pg_int(r, i, 5);
	o.attempts = (int)pg_int(r, i, 6);
	o.first_attempt = (time_t)pg_int(r, i, 7);
	o.note = pg_text(r, i, 8);
	cb(&o, arg);
	PQfreemem(gz);
}

static int
fb_due(void *ctx, time_t now, size_t max, tlsrpt_out_cb *cb, void *arg)
{
	struct fleet_tlsrpt_book *fb = ctx;
	char now_s[PG_INT_LEN], max_s[PG_INT_LEN];
	const char *args[4] = { pg_node(fb->p), fb->lease_s,
		pg_itoa((long long)now, now_s),
		pg_itoa((long long)max, max_s) };
	PGresult *r;
	int i, n;

	if (pg_ready(fb->p) == -1 ||
	    (r = pg_query(fb->p, fb_due_sql, 4, args)) == NULL)
		return -1;
	n = PQntuples(r);
	for (i = 0; i < n; i++)
		fb_due_row(r, i, cb, arg);
	PQclear(r);
	return n;
}

static int
fb_update(void *ctx, const char *day, const char *domain, const char *uri,
    enum tlsrpt_out_state state, const char *note, time_t now,
    time_t next_attempt)
{
	struct fleet_tlsrpt_book *fb = ctx;
	char st[PG_INT_LEN], now_s[PG_INT_LEN], next_s[PG_INT_LEN];
	const char *args[7] = { day, domain, uri, pg_itoa((long long)state, st),
		note != NULL ? note : "", pg_itoa((long long)now, now_s),
		pg_itoa((long long)next_attempt, next_s) };

	if (pg_ready(fb->p) == -1 || pg_begin(fb->p) == -1)
		return -1;
	if (pg_exec(fb->p, fb_update_sql, 7, args) == -1 ||
	    pg_exec(fb->p, fb_report_done_sql, 2, args) == -1) {
		pg_rollback(fb->p);
		return -1;
	}
	return pg_commit(fb->p);
}

static const char *
fb_error(void *ctx)
{
	struct fleet_tlsrpt_book *fb = ctx;

	return pg_error(fb->p);
}

struct fleet_tlsrpt_book *
fleet_tlsrpt_book_new(struct pg *p, struct tlsrpt_store *own, time_t lease)
{
	struct fleet_tlsrpt_book *fb = xcalloc(1, sizeof(*fb));

	fb->p = p;
	fb->own = own;
	fb->lease = lease;
	pg_itoa((long long)lease, fb->lease_s);
	fb->b.ctx = fb;
	fb->b.domains = fb_domains;
	fb->b.claim = fb_claim;
	fb->b.release = fb_release;
	fb->b.build = fb_build;
	fb->b.prepare = fb_prepare;
	fb->b.due = fb_due;
	fb->b.update = fb_update;
	fb->b.error = fb_error;
	return fb;
}

const struct tlsrpt_send_book *
fleet_tlsrpt_book(struct fleet_tlsrpt_book *b)
{
	return &b->b;
}

void
fleet_tlsrpt_book_free(struct fleet_tlsrpt_book *b)
{
	free(b);
}
