/*
 * cmd_fleet: `danerelay fleet status [--json]` and `danerelay fleet
 * sync`, for a node of a fleet ([fleet] postgres, docs/FLEET.md).
 *
 * status: the nodes the database knows (when each was last seen, how far
 * its trace was copied, its events there), this node's backlog (its
 * local events not yet copied: the local queue's highest event id minus
 * its mark), and the sizes of dr_events and dr_messages.
 * sync: one copying pass now, on this process's own connections, as the
 * daemon's thread makes every [fleet] sync_interval; safe beside it (the
 * node's row in dr_nodes is locked per batch).
 *
 * Exit status: 0; 1 the database cannot be reached or the pass failed
 * (the error on stderr); EX_USAGE bad arguments; EX_CONFIG no [fleet]
 * postgres, or the configuration cannot be read.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "fleet/fleet.h"
#include "fleet/fleet_events.h"
#include "pg/pg.h"
#include "queue/queue.h"

struct cmd_fleet_sub {
	const char *name;
	int (*run)(const struct conf *c, const struct fleet_sync_config *fc,
	    bool json);
};

/* This node's highest local event id; -1 when there is no local queue. */
static long long
cmd_fleet_local_max(const struct fleet_sync_config *fc)
{
	struct fleet_events *e;
	char *err = NULL, path[4096];
	long long max;

	if (fc->queue_dir == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/queue.db", fc->queue_dir);
	if (access(path, F_OK) == -1)
		return -1;
	if ((e = fleet_events_open(fc->queue_dir, &err)) == NULL) {
		fprintf(stderr, "danerelay fleet: %s\n", err);
		free(err);
		return -1;
	}
	max = fleet_events_local_max(e);
	fleet_events_close(e);
	return max;
}

static json_t *
cmd_fleet_time(long long t)
{
	char iso[QUEUE_TIME_LEN];

	return t > 0 ? json_string(queue_time_iso((time_t)t, iso)) :
	               json_null();
}

/* The nodes with their marks and events; NULL on error (pg_error). */
static json_t *
cmd_fleet_nodes(struct pg *p, long long *mark)
{
	PGresult *r;
	json_t *a;
	int i;

	r = pg_query(p,
	    "SELECT n.node, n.seen_at, n.events_mark, (SELECT count(*) FROM "
	    "dr_events e WHERE e.node = n.node) FROM dr_nodes n ORDER BY "
	    "n.node",
	    0, NULL);
	if (r == NULL)
		return NULL;
	a = json_array();
	for (i = 0; i < PQntuples(r); i++) {
		if (strcmp(pg_text(r, i, 0), pg_node(p)) == 0)
			*mark = pg_int(r, i, 2);
		json_array_append_new(a,
		    json_pack("{s:s, s:o, s:I, s:I}", "node", pg_text(r, i, 0),
		        "seen_at", cmd_fleet_time(pg_int(r, i, 1)),
		        "events_mark", (json_int_t)pg_int(r, i, 2), "events",
		        (json_int_t)pg_int(r, i, 3)));
	}
	PQclear(r);
	return a;
}

/* The status as JSON; NULL on error (pg_error). */
static json_t *
cmd_fleet_status_json(struct pg *p, const struct fleet_sync_config *fc)
{
	long long mark = 0, max = cmd_fleet_local_max(fc);
	json_t *nodes, *out;
	PGresult *r;

	if ((nodes = cmd_fleet_nodes(p, &mark)) == NULL)
		return NULL;
	r = pg_query(p,
	    "SELECT (SELECT count(*) FROM dr_events), "
	    "(SELECT count(*) FROM dr_messages)",
	    0, NULL);
	if (r == NULL) {
		json_decref(nodes);
		return NULL;
	}
	out = json_pack("{s:s, s:o, s:I, s:o, s:o, s:I, s:I}", "node",
	    pg_node(p), "local_max_event",
	    max >= 0 ? json_integer(max) : json_null(), "events_mark",
	    (json_int_t)mark, "backlog",
	    max >= 0 ? json_integer(max > mark ? max - mark : 0) : json_null(),
	    "nodes", nodes, "events", (json_int_t)pg_int(r, 0, 0), "messages",
	    (json_int_t)pg_int(r, 0, 1));
	PQclear(r);
	return out;
}

static void
cmd_fleet_status_print(const json_t *o)
{
	const json_t *n, *seen;
	size_t i;

	printf("this node: %s", json_string_value(json_object_get(o, "node")));
	if (json_is_integer(json_object_get(o, "backlog")))
		printf(", local events up to %lld, copied up to %lld, backlog "
		       "%lld\n",
		    (long long)json_integer_value(
		        json_object_get(o, "local_max_event")),
		    (long long)json_integer_value(
		        json_object_get(o, "events_mark")),
		    (long long)json_integer_value(
		        json_object_get(o, "backlog")));
	else
		printf(", no local queue\n");
	printf("%-24s %-20s %12s %12s\n", "node", "seen at", "events mark",
	    "events");
	json_array_foreach(json_object_get(o, "nodes"), i, n)
	{
		seen = json_object_get(n, "seen_at");
		printf("%-24s %-20s %12lld %12lld\n",
		    json_string_value(json_object_get(n, "node")),
		    json_is_string(seen) ? json_string_value(seen) : "-",
		    (long long)json_integer_value(
		        json_object_get(n, "events_mark")),
		    (long long)json_integer_value(
		        json_object_get(n, "events")));
	}
	printf("dr_events %lld, dr_messages %lld\n",
	    (long long)json_integer_value(json_object_get(o, "events")),
	    (long long)json_integer_value(json_object_get(o, "messages")));
}

static int
cmd_fleet_status(
    const struct conf *c, const struct fleet_sync_config *fc, bool json)
{
	char *err = NULL;
	struct pg *p;
	json_t *o;

	if ((p = pg_open(fc->conninfo, fc->node, &err)) == NULL) {
		fprintf(stderr, "danerelay fleet: %s\n", err);
		free(err);
		return 1;
	}
	if ((o = cmd_fleet_status_json(p, fc)) == NULL) {
		fprintf(stderr, "danerelay fleet: %s\n", pg_error(p));
		pg_close(p);
		return 1;
	}
	pg_close(p);
	if (json) {
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else
		cmd_fleet_status_print(o);
	json_decref(o);
	return 0;
}

static int
cmd_fleet_sync(
    const struct conf *c, const struct fleet_sync_config *fc, bool json)
{
	char *err = NULL;

	if (fleet_sync_once(fc, &err) == -1) {
		fprintf(stderr, "danerelay fleet: sync: %s\n", err);
		free(err);
		return 1;
	}
	return 0;
}

static const struct cmd_fleet_sub cmd_fleet_subs[] = {
	{ "status", cmd_fleet_status },
	{ "sync", cmd_fleet_sync },
	{ NULL, NULL },
};

int
cmd_fleet(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd_fleet_sub *sub;
	struct fleet_sync_config fc;
	struct fleet_sync_names names;
	struct conf *c;
	bool json = false;
	int ch, rc;

	/* As in cmd_queue.c: GNU getopt afresh, --json before or after. */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "j", longopts, NULL)) != -1) {
		if (ch != 'j')
			return cli_usage("fleet");
		json = true;
	}
	if (optind != argc - 1)
		return cli_usage("fleet");
	for (sub = cmd_fleet_subs; sub->name != NULL; sub++)
		if (strcmp(sub->name, argv[optind]) == 0)
			break;
	if (sub->name == NULL) {
		fprintf(stderr, "danerelay fleet: unknown subcommand '%s'\n",
		    argv[optind]);
		return cli_usage("fleet");
	}
	c = cli_load_conf(ctx);
	if (fleet_sync_config_of(c, &fc, &names) == -1) {
		fprintf(stderr,
		    "danerelay fleet: [fleet] postgres is not set: "
		    "this node is not part of a fleet\n");
		conf_free(c);
		return EX_CONFIG;
	}
	rc = sub->run(c, &fc, json);
	conf_free(c);
	return rc;
}
