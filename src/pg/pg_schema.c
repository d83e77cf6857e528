/*
 * pg_schema: the tables of the fleet database, all features at once
 * (docs/FLEET.md describes each). dr_meta holds the schema version; a
 * database written by a newer danerelay is refused, an empty one gets
 * every table, under a transaction-level advisory lock so that nodes
 * starting together do not race.
 *
 * Times are Unix seconds (bigint), as in the SQLite stores, so that the
 * same numbers come out of both; days are "YYYY-MM-DD" text as in the
 * TLS-RPT store.
 */
#include "pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_SCHEMA_VERSION 1
#define PG_SCHEMA_LOCK    "4470893011" /* pg_advisory_xact_lock key */

static const char pg_schema_sql[] =
    /* The nodes, and how far each one's local stores were copied. */
    "CREATE TABLE dr_nodes ("
    " node text PRIMARY KEY,"
    " seen_at bigint NOT NULL DEFAULT 0,"
    " events_mark bigint NOT NULL DEFAULT 0," /* local events.id copied */
    " sts_mark bigint NOT NULL DEFAULT 0,"    /* local fetched_at copied */
    " sts_pulled bigint NOT NULL DEFAULT 0,"  /* dr_sts_policies.stored_at
                                               * taken into the local cache */
    " tlsrpt_mark text NOT NULL DEFAULT '');" /* TLS-RPT: days from */
    /* The queue: messages and recipients ([queue] store = postgres);
     * with a local queue, the envelopes of its messages (body NULL), for
     * the trace. */
    "CREATE TABLE dr_messages ("
    " id text PRIMARY KEY,"
    " node text NOT NULL," /* that accepted it */
    " kind integer NOT NULL,"
    " sender text NOT NULL,"
    " envid text,"
    " ret integer NOT NULL,"
    " body_8bit integer NOT NULL,"
    " smtputf8 integer NOT NULL,"
    " client text NOT NULL,"
    " helo text,"
    " auth_user text,"
    " message_id text,"
    " received_at bigint NOT NULL,"
    " size bigint NOT NULL,"
    " body bytea);"
    "CREATE INDEX dr_messages_message_id ON dr_messages(message_id);"
    "CREATE INDEX dr_messages_received ON dr_messages(received_at);"
    "CREATE TABLE dr_recipients ("
    " id bigserial PRIMARY KEY,"
    " msgid text NOT NULL,"
    " addr text NOT NULL,"
    " domain text NOT NULL,"
    " orcpt text,"
    " notify integer NOT NULL,"
    " status integer NOT NULL DEFAULT 0,"
    " attempts integer NOT NULL DEFAULT 0,"
    " queued_at bigint NOT NULL,"
    " next_attempt bigint NOT NULL,"
    " last_attempt bigint NOT NULL DEFAULT 0,"
    " last_status text NOT NULL DEFAULT '',"
    " last_result_type text NOT NULL DEFAULT '',"
    " last_text text NOT NULL DEFAULT '',"
    " last_mta text NOT NULL DEFAULT '',"
    " delay_warned integer NOT NULL DEFAULT 0,"
    " bounce_requested integer NOT NULL DEFAULT 0,"
    " lease_node text,"                        /* who is attempting it */
    " lease_until bigint NOT NULL DEFAULT 0);" /* claim ends */
    "CREATE INDEX dr_recipients_due ON dr_recipients(status, next_attempt);"
    "CREATE INDEX dr_recipients_msgid ON dr_recipients(msgid);"
    "CREATE INDEX dr_recipients_domain ON dr_recipients(domain);"
    /* The trace: every event of every node. local_id is the event's id
     * in the node's own queue (NULL when written here directly). */
    "CREATE TABLE dr_events ("
    " id bigserial PRIMARY KEY,"
    " node text NOT NULL,"
    " local_id bigint,"
    " msgid text NOT NULL,"
    " addr text,"
    " at bigint NOT NULL,"
    " type text NOT NULL,"
    " fields json);"
    "CREATE UNIQUE INDEX dr_events_local ON dr_events(node, local_id);"
    "CREATE INDEX dr_events_msgid ON dr_events(msgid);"
    "CREATE INDEX dr_events_addr ON dr_events(lower(addr));"
    "CREATE INDEX dr_events_at ON dr_events(at);"
    "CREATE INDEX dr_events_attempt ON dr_events(at) "
    "WHERE type = 'attempt';"
    /* The trace's domain filter: the expression of FLEET_DOMAIN("addr")
     * (fleet/fleet_sql.h), written the same way so the planner uses it. */
    "CREATE INDEX dr_events_domain ON dr_events ((translate(substring(addr "
    "from '[^@]*$'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', "
    "'abcdefghijklmnopqrstuvwxyz'))) WHERE addr IS NOT NULL;"
    /* TLS-RPT: each node's counters, absolute (a copy is idempotent);
     * a report sums the nodes. */
    "CREATE TABLE dr_tlsrpt_policies ("
    " node text NOT NULL,"
    " day text NOT NULL,"
    " domain text NOT NULL,"
    " type integer NOT NULL,"
    " strings text NOT NULL,"
    " mx text NOT NULL,"
    " successes bigint NOT NULL DEFAULT 0,"
    " failures bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY (node, day, domain, type, strings, mx));"
    "CREATE INDEX dr_tlsrpt_policies_day ON dr_tlsrpt_policies(day, "
    "domain);"
    "CREATE TABLE dr_tlsrpt_failures ("
    " node text NOT NULL,"
    " day text NOT NULL,"
    " domain text NOT NULL,"
    " type integer NOT NULL,"
    " strings text NOT NULL,"
    " mx text NOT NULL,"
    " result_type text NOT NULL,"
    " sending_mta_ip text NOT NULL,"
    " mx_hostname text NOT NULL,"
    " mx_helo text NOT NULL,"
    " receiving_ip text NOT NULL,"
    " reason text NOT NULL,"
    " count bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY (node, day, domain, type, strings, mx, result_type,"
    "  sending_mta_ip, mx_hostname, mx_helo, receiving_ip, reason));"
    /* TLS-RPT sending: one row per (day, domain) report, claimed by one
     * node with a lease; one outbox row per destination. */
    "CREATE INDEX dr_tlsrpt_failures_day ON dr_tlsrpt_failures(day, "
    "domain);"
    "CREATE TABLE dr_tlsrpt_reports ("
    " day text NOT NULL,"
    " domain text NOT NULL,"
    " state integer NOT NULL DEFAULT 0,"
    " node text,"
    " lease_until bigint NOT NULL DEFAULT 0,"
    " report_id text,"
    " at bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain));"
    "CREATE TABLE dr_tlsrpt_outbox ("
    " day text NOT NULL,"
    " domain text NOT NULL,"
    " uri text NOT NULL,"
    " report_id text NOT NULL,"
    " gz bytea NOT NULL,"
    " state integer NOT NULL,"
    " attempts integer NOT NULL DEFAULT 0,"
    " first_attempt bigint NOT NULL DEFAULT 0,"
    " next_attempt bigint NOT NULL DEFAULT 0,"
    " note text NOT NULL DEFAULT '',"
    " lease_node text,"
    " lease_until bigint NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, domain, uri));"
    "CREATE INDEX dr_tlsrpt_outbox_due ON dr_tlsrpt_outbox(state, "
    "next_attempt);"
    /* MTA-STS: one cache for the fleet (RFC 8461 section 5.1). */
    "CREATE TABLE dr_sts_policies ("
    " domain text PRIMARY KEY,"
    " id text NOT NULL,"
    " policy text NOT NULL,"
    " fetched_at bigint NOT NULL,"
    " expires_at bigint NOT NULL,"
    " node text NOT NULL,"         /* that fetched it */
    " stored_at bigint NOT NULL);" /* the database's clock, last change */
    "CREATE INDEX dr_sts_policies_stored ON dr_sts_policies(stored_at);"
    "CREATE INDEX dr_sts_policies_expires ON dr_sts_policies(expires_at);";

static int
pg_schema_version(struct pg *p, long long *version)
{
	PGresult *r;

	if (pg_exec(p,
	        "CREATE TABLE IF NOT EXISTS dr_meta (key text PRIMARY KEY, "
	        "value text NOT NULL)",
	        0, NULL) == -1)
		return -1;
	r = pg_query(
	    p, "SELECT value FROM dr_meta WHERE key = 'schema'", 0, NULL);
	if (r == NULL)
		return -1;
	*version = PQntuples(r) > 0 ? pg_int(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

static int
pg_schema_create(struct pg *p)
{
	char v[PG_INT_LEN];
	const char *args[1];

	if (pg_exec(p, pg_schema_sql, 0, NULL) == -1)
		return -1;
	args[0] = pg_itoa(PG_SCHEMA_VERSION, v);
	return pg_exec(p,
	    "INSERT INTO dr_meta (key, value) VALUES ('schema', $1)", 1, args);
}

int
pg_schema_ensure(struct pg *p)
{
	long long version = 0;
	char now[PG_INT_LEN];
	const char *args[2];

	if (pg_begin(p) == -1)
		goto fail;
	if (pg_exec(p, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")", 0,
	        NULL) == -1 ||
	    pg_schema_version(p, &version) == -1)
		goto fail;
	if (version > PG_SCHEMA_VERSION) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		    "the fleet database has schema %lld, this danerelay "
		    "knows %d: upgrade this node",
		    version, PG_SCHEMA_VERSION);
		pg_rollback(p);
		pg_fail(p, msg);
		return -1;
	}
	if (version == 0 && pg_schema_create(p) == -1)
		goto fail;
	args[0] = pg_node(p);
	args[1] = pg_itoa((long long)time(NULL), now);
	if (pg_exec(p,
	        "INSERT INTO dr_nodes (node, seen_at) VALUES ($1, $2) "
	        "ON CONFLICT (node) DO UPDATE SET seen_at = EXCLUDED.seen_at",
	        2, args) == -1)
		goto fail;
	return pg_commit(p);
fail:
	pg_rollback(p);
	return -1;
}
