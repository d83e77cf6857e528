/*
 * cmd_trace: `danerelay trace [--message-id ID] [--sender ADDR]
 * [--recipient ADDR] [--domain D] [--since WHEN] [--until WHEN] [--json]`,
 * the story of each matching message from the queue's event log:
 * received, queued, every attempt (MX, IP, TLS, TLSA match, reply),
 * deferred, delivered or bounced, DSN sent.
 *
 * Filters combine (AND). --message-id takes the queue id or the
 * Message-ID header (with or without <>); --sender "<>" is the null
 * sender. --since and --until (a duration before now, or a UTC time) keep
 * the messages with an event in that window and show their whole story.
 * Like `queue`, it opens the daemon's database side by side and never
 * creates one. With [fleet] postgres it reads the fleet's database
 * instead (every node's messages, each event with its node); when that
 * cannot be reached, this node's queue with a warning, or with [queue]
 * store = postgres an error (EX_UNAVAILABLE).
 *
 * Exit status: 0 something matched, 1 nothing did, EX_USAGE bad
 * arguments, EX_CONFIG the config or queue cannot be opened, EX_SOFTWARE a
 * database error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "fleet/fleet.h"
#include "fleet/fleet_read.h"
#include "pg/pg.h"
#include "queue/queue.h"
#include "queue/queue_trace.h"

#define TRACE_EXIT_NOMATCH 1

/* --since / --until WHEN into *t; -1 with a message on stderr. */
static int
cmd_trace_when(const char *opt, const char *arg, bool until, time_t *t)
{
	const char *errstr = queue_trace_parse_when(arg, time(NULL), until, t);

	if (errstr == NULL && *t <= 0)
		errstr = "before 1970";
	if (errstr != NULL) {
		fprintf(
		    stderr, "danerelay trace: --%s %s: %s\n", opt, arg, errstr);
		return -1;
	}
	return 0;
}

/* --limit N: a count of messages, 1 or more. */
static int
cmd_trace_limit(const char *arg, size_t *limit)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 ||
	    v == 0 || v > SIZE_MAX) {
		fprintf(stderr,
		    "danerelay trace: --limit %s: expected a number of "
		    "messages (1 or more)\n",
		    arg);
		return -1;
	}
	*limit = (size_t)v;
	return 0;
}

static int
cmd_trace_parse(int argc, char **argv, struct queue_trace_filter *f, bool *json)
{
	static const struct option longopts[] = {
		{ "message-id", required_argument, NULL, 'm' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "domain", required_argument, NULL, 'd' },
		{ "sender", required_argument, NULL, 'f' },
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "limit", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(
	            argc, argv, "m:r:d:f:s:u:n:j", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			f->message_id = optarg;
			break;
		case 'r':
			f->recipient = optarg;
			break;
		case 'd':
			f->domain = optarg;
			break;
		case 'f':
			f->sender = optarg;
			break;
		case 's':
		case 'u':
			if (cmd_trace_when(ch == 's' ? "since" : "until",
			        optarg, ch == 'u',
			        ch == 's' ? &f->since : &f->until) == -1)
				return -1;
			break;
		case 'n':
			if (cmd_trace_limit(optarg, &f->limit) == -1)
				return -1;
			break;
		case 'j':
			*json = true;
			break;
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

static int
cmd_trace_print(json_t *tr, bool json)
{
	int rc = json_array_size(tr) > 0 ? 0 : TRACE_EXIT_NOMATCH;

	if (json) {
		json_dumpf(tr, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (rc == 0)
		queue_trace_print(stdout, tr);
	else
		fprintf(stderr, "danerelay trace: no matching message\n");
	return rc;
}

/* This node's queue. NULL with *rc set when it cannot be read. */
static json_t *
cmd_trace_local(
    const struct conf *c, const struct queue_trace_filter *f, int *rc)
{
	struct queue *q;
	char *err = NULL;
	json_t *tr;

	q = queue_open_existing(conf_str(c, CONF_QUEUE_DIRECTORY), &err);
	if (q == NULL) {
		fprintf(stderr, "danerelay trace: %s\n", err);
		free(err);
		*rc = EX_CONFIG;
		return NULL;
	}
	if ((tr = queue_trace(q, f)) == NULL) {
		fprintf(stderr, "danerelay trace: %s\n", queue_error(q));
		*rc = EX_SOFTWARE;
	}
	queue_close(q);
	return tr;
}

/*
 * The fleet's trace, or this node's when the database cannot be reached
 * (not with store = postgres: there is no queue of this node's own).
 * NULL with *rc set on failure.
 */
static json_t *
cmd_trace_query(
    const struct conf *c, const struct queue_trace_filter *f, int *rc)
{
	struct pg *p = fleet_read_new(c);
	json_t *tr;

	if (p == NULL)
		return cmd_trace_local(c, f, rc);
	if ((tr = fleet_trace(p, f)) == NULL &&
	    (*rc = cli_fleet_failed(c, p, "trace")) == 0)
		tr = cmd_trace_local(c, f, rc);
	pg_close(p);
	return tr;
}

int
cmd_trace(int argc, char **argv, struct cli_ctx *ctx)
{
	struct queue_trace_filter f = { 0 };
	struct conf *c;
	bool json = false;
	json_t *tr;
	int rc = 0;

	if (cmd_trace_parse(argc, argv, &f, &json) == -1)
		return cli_usage("trace");
	c = cli_load_conf(ctx);
	tr = cmd_trace_query(c, &f, &rc);
	conf_free(c);
	if (tr != NULL)
		rc = cmd_trace_print(tr, json);
	json_decref(tr);
	return rc;
}
