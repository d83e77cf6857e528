/*
 * queue_pg_due: which node attempts which recipient ([queue] store =
 * postgres, docs/FLEET.md "The queue").
 *
 * queue_due() claims what it returns: one UPDATE sets lease_node to this
 * node and lease_until to now + [queue] lease on the first due rows that
 * nobody holds, picked with FOR UPDATE SKIP LOCKED, so two nodes scanning
 * at once never get the same recipient and never wait for each other.
 * While this node has a recipient (pending or in an attempt) it renews
 * the lease (queue_lease_renew, from the scheduler's tick); its outcome
 * clears the lease (queue_pg_rcpt.c). A node that dies renews nothing:
 * after at most one lease its recipients are due for the others. A
 * duplicate is then possible only for an attempt whose final dot was
 * sent and whose outcome was not written: RFC 5321 section 6.1's window.
 */
#include "queue/queue_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"

/* The recipients this connection claimed whose outcome is not written. */
struct queue_pg_claims {
	int64_t *ids;
	size_t n, cap;
	/* outcomes written inside the open batch: they leave at its commit */
	int64_t *gone;
	size_t ngone, capgone;
	time_t renewed; /* last renewal */
	bool started;   /* the claims of a previous run were released */
};

static struct queue_pg_claims *
queue_pg_claims(struct queue *q)
{
	if (q->claims == NULL)
		q->claims = xcalloc(1, sizeof(*q->claims));
	return q->claims;
}

void
queue_pg_claims_free(struct queue_pg_claims *c)
{
	if (c == NULL)
		return;
	free(c->ids);
	free(c->gone);
	free(c);
}

static void
queue_pg_ids_add(int64_t **ids, size_t *n, size_t *cap, int64_t id)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 64 : *cap * 2;
		*ids = xreallocarray(*ids, *cap, sizeof(**ids));
	}
	(*ids)[(*n)++] = id;
}

/* Remove id (order does not matter); a linear walk over what a node has
 * in memory at most (the scheduler's pending and in-flight recipients). */
static void
queue_pg_claims_del(struct queue_pg_claims *c, int64_t id)
{
	size_t i;

	for (i = c->n; i-- > 0;)
		if (c->ids[i] == id) {
			c->ids[i] = c->ids[--c->n];
			return;
		}
}

static bool
queue_pg_claims_has(const struct queue_pg_claims *c, int64_t id)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->ids[i] == id)
			return true;
	return false;
}

void
queue_pg_claim_drop(struct queue *q, int64_t rcpt)
{
	struct queue_pg_claims *c = queue_pg_claims(q);

	if (q->batch > 0)
		queue_pg_ids_add(&c->gone, &c->ngone, &c->capgone, rcpt);
	else
		queue_pg_claims_del(c, rcpt);
}

void
queue_pg_claims_settle(struct queue *q, bool committed)
{
	struct queue_pg_claims *c = queue_pg_claims(q);
	size_t i;

	/* Rolled back: the rows still carry our lease; keep renewing it
	 * while the scheduler keeps the outcomes (deliver_hold.c). */
	for (i = 0; committed && i < c->ngone; i++)
		queue_pg_claims_del(c, c->gone[i]);
	c->ngone = 0;
}

/* The claims as a PostgreSQL array literal "{1,2,3}" (new string). */
static char *
queue_pg_claims_array(const struct queue_pg_claims *c)
{
	size_t i, cap = c->n * 21 + 3, len = 0;
	char *s = xmalloc(cap);

	s[len++] = '{';
	for (i = 0; i < c->n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%lld",
		    i > 0 ? "," : "", (long long)c->ids[i]);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

/*
 * Claim and return up to max due recipients after (after_next, after_id)
 * in (next_attempt, id) order: due = queued, next_attempt <= now, and no
 * live lease (a lapsed one is a dead node's: take it over).
 */
static const char queue_pg_claim_sql[] =
    "WITH c AS (UPDATE dr_recipients u SET lease_node = $1, "
    "lease_until = " QUEUE_PG_NOW " + $3 WHERE u.id IN (SELECT id FROM "
    "dr_recipients WHERE status = 0 AND next_attempt <= $2 AND "
    "lease_until < " QUEUE_PG_NOW " AND "
    "(next_attempt, id) > ($4, $5) ORDER BY next_attempt, id LIMIT $6 "
    "FOR UPDATE SKIP LOCKED) RETURNING u.*) "
    "SELECT " QUEUE_PG_RCPT_COLS " FROM c r ORDER BY r.next_attempt, r.id";

/* The rows of res are claimed now: renew them from here on. */
static void
queue_pg_claims_take(struct queue *q, const PGresult *res)
{
	struct queue_pg_claims *c = queue_pg_claims(q);
	int64_t id;
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		id = (int64_t)pg_int(res, i, 0);
		if (!queue_pg_claims_has(c, id)) /* a lapsed claim of ours */
			queue_pg_ids_add(&c->ids, &c->n, &c->cap, id);
	}
}

int
queue_pg_due_after(struct queue *q, time_t now, time_t after_next,
    int64_t after_id, size_t max, queue_rcpt_cb *cb, void *arg)
{
	struct queue_pg_args a = { 0 };
	PGresult *res;

	if (max == 0)
		return 0;
	if (max > 1000000)
		max = 1000000;
	if (queue_pg_ready(q) == -1)
		return -1;
	queue_pg_arg_str(&a, pg_node(q->pg));
	queue_pg_arg_int(&a, (long long)now);
	queue_pg_arg_int(&a, (long long)q->lease);
	queue_pg_arg_int(&a, (long long)after_next);
	queue_pg_arg_int(&a, (long long)after_id);
	queue_pg_arg_int(&a, (long long)max);
	res = queue_pg_run(q, "claim due recipients", queue_pg_claim_sql, &a);
	queue_pg_args_clear(&a);
	if (res != NULL)
		queue_pg_claims_take(q, res);
	return queue_pg_rcpt_each(q, res, cb, arg);
}

time_t
queue_pg_next_due(struct queue *q)
{
	char now[PG_INT_LEN];
	const char *v[1] = { pg_itoa((long long)time(NULL), now) };
	PGresult *res;
	time_t t = 0;

	if (queue_pg_ready(q) == -1)
		return 0;
	/* A claimed recipient is due for the others when its lease ends
	 * (by the database's clock: moved to ours). */
	res = queue_pg_query(q, "next due",
	    "SELECT min(GREATEST(next_attempt, lease_until - " QUEUE_PG_NOW
	    " + $1::bigint)) FROM dr_recipients WHERE status = 0",
	    1, v);
	if (res != NULL && PQntuples(res) > 0)
		t = (time_t)pg_int(res, 0, 0);
	PQclear(res);
	return t;
}

/*
 * The first renewal of the daemon: this node's claims that this process
 * does not hold were left by a previous run of the node (killed): give
 * them back at once instead of after their lease. Node names are unique
 * in a fleet (docs/FLEET.md), so no other live process holds them.
 */
static int
queue_pg_claims_release_old(struct queue *q, const char *ids)
{
	const char *v[2] = { pg_node(q->pg), ids };
	long long n = 0;

	if (queue_pg_exec_n(q, "release old claims",
	        "UPDATE dr_recipients SET lease_node = NULL, lease_until = 0 "
	        "WHERE lease_node = $1 AND lease_until > 0 AND "
	        "NOT (id = ANY($2::bigint[]))",
	        2, v, &n) == -1)
		return -1;
	if (n > 0)
		log_info("queue: %lld recipients claimed by an earlier run of "
		         "node %s released to the fleet",
		    n, pg_node(q->pg));
	return 0;
}

int
queue_pg_lease_renew(struct queue *q, time_t now)
{
	struct queue_pg_claims *c = queue_pg_claims(q);
	char lease[PG_INT_LEN], *ids;
	const char *v[3];
	int rc = 0;

	/* A third of the lease: two renewals may fail before it lapses. */
	if (c->started &&
	    (c->n == 0 ||
	        (now - c->renewed < q->lease / 3 && now >= c->renewed)))
		return 0;
	if (queue_pg_ready(q) == -1)
		return -1;
	ids = queue_pg_claims_array(c);
	if (!c->started) {
		rc = queue_pg_claims_release_old(q, ids);
		c->started = rc == 0;
	}
	if (rc == 0 && c->n > 0) {
		v[0] = pg_itoa((long long)q->lease, lease);
		v[1] = ids;
		v[2] = pg_node(q->pg);
		rc = queue_pg_exec(q, "renew leases",
		    "UPDATE dr_recipients SET lease_until = " QUEUE_PG_NOW
		    " + $1::bigint WHERE id = ANY($2::bigint[]) AND "
		    "lease_node = $3 AND status IN (0, 4)",
		    3, v);
	}
	if (rc == 0)
		c->renewed = now;
	free(ids);
	return rc;
}

void
queue_pg_claims_release(struct queue *q)
{
	struct queue_pg_claims *c = q->claims;
	const char *v[2];
	char *ids;

	/* Only recipients never attempted are left at a stop: their jobs
	 * ended and wrote their outcomes (deliver_shutdown). */
	if (c == NULL || c->n == 0 || q->batch > 0 || pg_broken(q->pg))
		return;
	ids = queue_pg_claims_array(c);
	v[0] = ids;
	v[1] = pg_node(q->pg);
	if (queue_pg_exec(q, "release claims",
	        "UPDATE dr_recipients SET lease_node = NULL, lease_until = 0 "
	        "WHERE id = ANY($1::bigint[]) AND lease_node = $2",
	        2, v) == 0)
		c->n = 0;
	free(ids);
}
