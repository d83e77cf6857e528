/*
 * fleet: N danerelay nodes acting as one relay over a shared PostgreSQL
 * database ([fleet] postgres, [fleet] node; docs/FLEET.md). The
 * connection itself is src/pg/; this layer sits above the stores (queue/,
 * tlsrpt/, sts/) and holds what the fleet shares:
 *
 *  - fleet_sync: a node with a local queue (store = sqlite) copies its new
 *    trace events (with their messages' envelopes), its TLS-RPT counters
 *    and its MTA-STS policies to the database, and takes the policies the
 *    other nodes learned, on a thread of its own, so the delivery loop
 *    never waits for PostgreSQL. While the database is away nothing is
 *    lost (the local stores are the source) and nothing is counted twice
 *    when it returns (each copy is idempotent: events by (node, local
 *    id), counters as the node's absolute values).
 *  - fleet_trace, fleet_report, fleet_report_impact: `trace`, `report`
 *    and the console's /trace, /report, /impact over every node's events,
 *    each attempt with its node.
 *  - fleet_tlsrpt: one report per policy domain and day with the summed
 *    counters of all nodes, claimed in the database by one node.
 */
#ifndef DR_FLEET_H
#define DR_FLEET_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "queue/queue.h"
#include "queue/queue_report.h"
#include "queue/queue_trace.h"

struct pg;
struct tlsrpt_store;

/* --- fleet_sync.c (with fleet_events.c, fleet_sts.c) --- */

struct fleet_sync_config {
	const char *conninfo;    /* [fleet] postgres */
	const char *node;        /* [fleet] node (pg_default_node) */
	const char *queue_dir;   /* local queue to copy events from; NULL
	                          * with store = postgres (events go there
	                          * directly) */
	const char *tlsrpt_path; /* TLS-RPT store, or NULL (disabled) */
	const char *sts_path;    /* MTA-STS cache, or NULL (disabled) */
	unsigned interval_ms;    /* [fleet] sync_interval */
};

struct fleet_sync;

/*
 * Start the copying thread. It connects by itself (the database may be
 * down at start). Every interval_ms one pass, on the thread's own
 * connections: the new local events (fleet_events.h), then
 * fleet_tlsrpt_push() with the thread's own tlsrpt_store_open() of
 * tlsrpt_path, then fleet_sts_sync(); each is called with p connected
 * (pg_ready) and no transaction open, and a -1 ends the pass (tried
 * again next interval). An outage is logged once: "fleet: database
 * unreachable: ..." and "fleet: database back, N events copied".
 * Returns new.
 */
struct fleet_sync *fleet_sync_start(const struct fleet_sync_config *c);

/* One last copy (bounded by the pg timeouts), then stop and join. NULL is
 * fine. */
void fleet_sync_stop(struct fleet_sync *s);

/*
 * One copy pass on the calling thread: for `danerelay fleet sync` and
 * tests. 0, or -1 with *errstr (new string).
 */
int fleet_sync_once(const struct fleet_sync_config *c, char **errstr);

/*
 * The copy the configuration c asks for (fleet_conf.c): [fleet] postgres,
 * node and sync_interval; the queue in [queue] directory unless store =
 * postgres; the TLS-RPT store and the MTA-STS cache beside it when
 * [tlsrpt] and [mta_sts] are enabled, at the paths serve opens. The
 * strings point into c and into *names. -1 when [fleet] postgres is not
 * set (no fleet), else 0.
 */
struct conf;
struct fleet_sync_names {
	char node[64]; /* PG_NODE_MAX + 1 */
	char tlsrpt[4096];
	char sts[4096];
};
int fleet_sync_config_of(const struct conf *c, struct fleet_sync_config *fc,
    struct fleet_sync_names *names);

/* --- fleet_sts.c --- */

/*
 * The fleet's one MTA-STS cache (RFC 8461 section 5.1): copy the
 * policies of the local cache at sts_path that changed since the node's
 * dr_nodes.sts_mark into dr_sts_policies, and take into the local cache
 * the policies other nodes learned. Idempotent. 0, or -1 (pg_error).
 */
int fleet_sts_sync(struct pg *p, const char *sts_path);

/* --- fleet_tlsrpt.c --- */

/*
 * Copy the node's TLS-RPT counters (every day that may have changed since
 * the last copy) into dr_tlsrpt_policies / dr_tlsrpt_failures as absolute
 * values. Idempotent. 0, or -1 (pg_error / tlsrpt_store_error).
 */
int fleet_tlsrpt_push(struct pg *p, struct tlsrpt_store *s);

/* --- fleet_trace.c, fleet_report.c --- */

/*
 * queue_trace() over every node (dr_messages, dr_events): the same JSON,
 * plus "node" on each message (that accepted it) and on each event.
 * NULL on error (pg_error).
 */
json_t *fleet_trace(struct pg *p, const struct queue_trace_filter *f);

/* queue_report() and queue_report_impact() over every node: the same
 * JSON; attempts carry their node where listed. NULL on error. */
json_t *fleet_report(struct pg *p, const struct queue_report_period *per);
json_t *fleet_report_impact(
    struct pg *p, const struct queue_report_period *per);

/* queue_count_outcomes() over every node. 0 or -1. */
int fleet_count_outcomes(
    struct pg *p, time_t since, struct queue_outcomes *c);

#endif
