/*
 * cmd_report: `danerelay report [--period 1h|1d|7d|30d] [--impact]
 * [--json]`, the transit security report from the queue's event log:
 * messages blocked by a DANE or MTA-STS requirement (per domain, with the
 * distinct errors), recipients delivered by security class over time, and
 * the domains that had no TLS. With --impact, the log-only analysis
 * instead: what enforcement would have blocked, as counts and shares.
 * The console's /report and /impact pages show the same JSON
 * (queue_report.h); docs/CONSOLE.md defines every number.
 *
 * Like `trace`, it opens the daemon's database side by side and never
 * creates one, and with [fleet] postgres reports on the whole fleet
 * (falling back to this node's queue, with a warning, when the database
 * cannot be reached and the queue is local). Exit status: 0, EX_USAGE bad
 * arguments, EX_CONFIG the config or queue cannot be opened, EX_SOFTWARE a
 * database error.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "fleet/fleet.h"
#include "fleet/fleet_read.h"
#include "pg/pg.h"
#include "queue/queue.h"
#include "queue/queue_report.h"
#include "queue/queue_trace.h"

struct report_opts {
	const char *period;
	bool impact;
	bool json;
	bool fleet; /* the answer is the fleet's (every node) */
};

static int
cmd_report_parse(int argc, char **argv, struct report_opts *o)
{
	static const struct option longopts[] = {
		{ "period", required_argument, NULL, 'p' },
		{ "impact", no_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "p:ij", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			o->period = optarg;
			break;
		case 'i':
			o->impact = true;
			break;
		case 'j':
			o->json = true;
			break;
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

/* The integer member key of o. */
static long long
report_int(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* A value, quoted and escaped when it needs it (as trace prints them). */
static void
report_value(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_null(v) || v == NULL)
		fputs("-", stdout);
	else
		queue_trace_print_value(stdout, v);
}

static void
report_period(const char *what, const json_t *out, bool fleet)
{
	const json_t *p = json_object_get(out, "period");

	printf("%s%s, period %s: ", what, fleet ? " of every node" : "",
	    json_string_value(json_object_get(p, "name")));
	report_value(p, "since");
	fputs(" to ", stdout);
	report_value(p, "until");
	putchar('\n');
	if (json_is_string(json_object_get(p, "data_since"))) {
		printf("  (the %s holds events since ",
		    fleet ? "fleet's database" : "queue");
		report_value(p, "data_since");
		fputs(")\n", stdout);
	}
}

/*
 * Print o's members named in keys (NULL-terminated) as " key=value"; the
 * first one bare, after indent.
 */
static void
report_line(const char *indent, const json_t *o, const char *const *keys)
{
	fputs(indent, stdout);
	report_value(o, keys[0]);
	for (keys++; *keys != NULL; keys++) {
		printf(" %s=", *keys);
		report_value(o, *keys);
	}
	putchar('\n');
}

/* A domain row and its errors, for blocked and would-block alike. */
static void
report_domain(const json_t *d)
{
	static const char *const dkeys[] = { "domain", "security", "messages",
		"recipients", "attempts", "last", NULL };
	static const char *const ekeys[] = { "status", "result_type", "count",
		"last", "text", NULL };
	const json_t *e;
	size_t i;

	report_line("  ", d, dkeys);
	json_array_foreach(json_object_get(d, "errors"), i, e)
	    report_line("    ", e, ekeys);
}

static void
report_domains(const json_t *rows)
{
	const json_t *d;
	size_t i;

	if (json_array_size(rows) == 0)
		puts("  none");
	json_array_foreach(rows, i, d) report_domain(d);
}

static const char *const report_classes[] = { "dane", "dane_trusted", "sts",
	"tls", "plaintext" };
#define REPORT_NCLASS (sizeof(report_classes) / sizeof(report_classes[0]))

/* One line per bucket that had deliveries. */
static void
report_sent(const json_t *out)
{
	const json_t *sent = json_object_get(out, "sent");
	const json_t *series = json_object_get(sent, "series");
	const json_t *buckets =
	    json_object_get(json_object_get(out, "period"), "buckets");
	long long n;
	size_t b, k;

	puts("\nRecipients delivered, by security:");
	printf("  total=%lld", report_int(sent, "total"));
	for (k = 0; k < REPORT_NCLASS; k++)
		printf(" %s=%lld", report_classes[k],
		    report_int(
		        json_object_get(sent, "totals"), report_classes[k]));
	putchar('\n');
	for (b = 0; b < json_array_size(buckets); b++) {
		for (n = 0, k = 0; k < REPORT_NCLASS; k++)
			n += json_integer_value(json_array_get(
			    json_object_get(series, report_classes[k]), b));
		if (n == 0)
			continue;
		printf("  %s", json_string_value(json_array_get(buckets, b)));
		for (k = 0; k < REPORT_NCLASS; k++)
			printf(" %s=%lld", report_classes[k],
			    (long long)json_integer_value(json_array_get(
			        json_object_get(series, report_classes[k]),
			        b)));
		putchar('\n');
	}
}

static void
report_notls(const json_t *out)
{
	static const char *const keys[] = { "domain", "messages", "plaintext",
		"failed", "last", NULL };
	const json_t *nt = json_object_get(out, "no_tls"), *d;
	size_t i;

	printf("\nDomains without TLS: %lld\n", report_int(nt, "total"));
	json_array_foreach(json_object_get(nt, "table"), i, d)
	    report_line("  ", d, keys);
}

static void
report_print(const json_t *out, bool fleet)
{
	report_period("Transit security report", out, fleet);
	puts("\nMessages blocked (a DANE or MTA-STS requirement failed):");
	report_domains(json_object_get(out, "blocked"));
	report_sent(out);
	report_notls(out);
}

static void
impact_print(const json_t *out, bool fleet)
{
	const json_t *t = json_object_get(out, "totals");
	const json_t *w = json_object_get(out, "would_block");

	report_period("Log-only impact", out, fleet);
	printf("\nEnforcement would have blocked %lld of %lld recipient "
	       "domains (%.3g%%) and %lld of %lld messages (%.3g%%), %lld of "
	       "%lld recipients.\n",
	    report_int(w, "domains"), report_int(t, "domains"),
	    json_real_value(json_object_get(w, "domains_percent")),
	    report_int(w, "messages"), report_int(t, "messages"),
	    json_real_value(json_object_get(w, "messages_percent")),
	    report_int(w, "recipients"), report_int(t, "recipients"));
	report_domains(json_object_get(out, "domains"));
}

static void
cmd_report_show(json_t *out, const struct report_opts *o)
{
	if (o->json) {
		json_dumpf(out, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (o->impact)
		impact_print(out, o->fleet);
	else
		report_print(out, o->fleet);
}

/* This node's queue. NULL with *rc set when it cannot be read. */
static json_t *
cmd_report_local(const struct conf *c, const struct report_opts *o,
    const struct queue_report_period *p, int *rc)
{
	struct queue *q;
	char *err = NULL;
	json_t *out;

	q = queue_open_existing(conf_str(c, CONF_QUEUE_DIRECTORY), &err);
	if (q == NULL) {
		fprintf(stderr, "danerelay report: %s\n", err);
		free(err);
		*rc = EX_CONFIG;
		return NULL;
	}
	out = o->impact ? queue_report_impact(q, p) : queue_report(q, p);
	if (out == NULL) {
		fprintf(stderr, "danerelay report: %s\n", queue_error(q));
		*rc = EX_SOFTWARE;
	}
	queue_close(q);
	return out;
}

/* The fleet's report, or this node's when the database cannot be
 * reached and there is a local queue. NULL with *rc set on failure. */
static json_t *
cmd_report_query(const struct conf *c, struct report_opts *o,
    const struct queue_report_period *per, int *rc)
{
	struct pg *p = fleet_read_new(c);
	json_t *out;

	if (p == NULL)
		return cmd_report_local(c, o, per, rc);
	out = o->impact ? fleet_report_impact(p, per) : fleet_report(p, per);
	o->fleet = out != NULL;
	if (out == NULL && (*rc = cli_fleet_failed(c, p, "report")) == 0)
		out = cmd_report_local(c, o, per, rc);
	pg_close(p);
	return out;
}

int
cmd_report(int argc, char **argv, struct cli_ctx *ctx)
{
	struct report_opts o = { "1d", false, false, false };
	struct queue_report_period p;
	struct conf *c;
	json_t *out;
	int rc = 0;

	if (cmd_report_parse(argc, argv, &o) == -1)
		return cli_usage("report");
	if (queue_report_period(o.period, 0, &p) == -1) {
		fprintf(stderr,
		    "danerelay report: --period %s: expected 1h, 1d, 7d or "
		    "30d\n",
		    o.period);
		return EX_USAGE;
	}
	c = cli_load_conf(ctx);
	queue_report_period(o.period, time(NULL), &p);
	out = cmd_report_query(c, &o, &p, &rc);
	conf_free(c);
	if (out != NULL)
		cmd_report_show(out, &o);
	json_decref(out);
	return rc;
}
