/*
 * cmd_tlsrpt: `danerelay tlsrpt parse [--json] FILE... | list | show |
 * send`, TLS reports (RFC 8460). One row per subcommand in the table
 * below.
 *
 * parse reads the reports other MTAs sent about our MX hosts: JSON, gzip
 * or the whole report email, one per FILE ("-" is standard input), and
 * prints a summary per policy (never added up across policies: RFC 8460 §4
 * lets a sender count the same sessions under sts and tlsa) and result
 * type, or with --json the normalized form (docs/TLSRPT.md); received
 * adds up a directory or maildir of them (tlsrpt_inbox.c). Exit status: 0 when
 * every file was a report; 65 (EX_DATAERR) when one was not; 66 (EX_NOINPUT)
 * when one could not be read, which wins over 65. The other files are still
 * read.
 *
 * list shows what was recorded for a day and, once sent, where each
 * report went (with [fleet] postgres: the sums of every node, and the
 * fleet's sent marks); show prints the report of one domain and day as it would
 * be sent; send (cmd_tlsrpt_send.c) sends a day's reports now.
 */
#include <errno.h>
#include <getopt.h>
#include <unistd.h>
#include <time.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "tlsrpt/tlsrpt.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "fleet/fleet_tlsrpt.h"
#include "pg/pg.h"
#include "tlsrpt/tlsrpt_inbox.h"
#include "tlsrpt/tlsrpt_parse.h"
#include "tlsrpt/tlsrpt_send.h"
#include "relay/relay.h"
#include "relay/relay_tlsrpt.h"

struct cmd_tlsrpt_sub {
	const char *name;
	int (*run)(int argc, char **argv, struct cli_ctx *ctx);
};

/* Read all of path ("-": stdin) into b, capped. NULL, or a static error
 * text (with errno for a failed open or read). */
static const char *
cmd_tlsrpt_read(const char *path, struct buf *b)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char chunk[65536];
	const char *err = NULL;
	struct stat sb;
	size_t n;

	if (fp == NULL)
		return strerror(errno);
	if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode))
		err = "a directory: `danerelay tlsrpt received DIR` reads "
		      "a directory or maildir of reports";
	while (err == NULL && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_add(b, chunk, n) == -1)
			err = "larger than the input limit (20 MiB)";
	if (err == NULL && ferror(fp))
		err = strerror(errno);
	if (fp != stdin)
		fclose(fp);
	return err;
}

/* One file: the report printed or added to out (--json). Returns 0 or
 * the exit status it calls for. */
static int
cmd_tlsrpt_one(const char *path, json_t *out)
{
	static const char *const keys[] = { "format", "email", "warnings",
		"report", "summary", NULL };
	struct tlsrpt_report *r = NULL;
	const char *ioerr;
	char *err = NULL;
	struct buf b;
	json_t *o;
	size_t i;
	int rc = 0;

	buf_init(&b, TLSRPT_INPUT_MAX);
	if ((ioerr = cmd_tlsrpt_read(path, &b)) != NULL) {
		err = xstrdup(ioerr);
		rc = EX_NOINPUT;
	} else if ((r = tlsrpt_parse(
	                (const uint8_t *)buf_cstr(&b), b.len, &err)) == NULL) {
		rc = EX_DATAERR;
	}
	buf_free(&b);
	if (err != NULL)
		fprintf(stderr, "danerelay tlsrpt parse: %s: %s\n", path, err);
	if (out != NULL) {
		o = json_pack("{s:s}", "file", path);
		if (o == NULL) /* a file name that is not UTF-8 */
			o = json_pack("{s:s}", "file", "(not UTF-8)");
		for (i = 0; r != NULL && keys[i] != NULL; i++)
			if (json_object_get(tlsrpt_report_json(r), keys[i]))
				json_object_set(o, keys[i],
				    json_object_get(
				        tlsrpt_report_json(r), keys[i]));
		if (err != NULL)
			json_object_set_new(o, "error", json_string(err));
		json_array_append_new(out, o);
	} else if (r != NULL) {
		printf("%s:\n", path);
		tlsrpt_report_print(stdout, r);
		printf("\n");
	}
	free(err);
	tlsrpt_report_free(r);
	return rc;
}

static int
cmd_tlsrpt_parse(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *out = NULL;
	bool json = false;
	int ch, i, rc = 0, r;

	/* 0 re-initialises GNU getopt: --json may follow the files. */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "j", longopts, NULL)) != -1) {
		if (ch != 'j')
			return cli_usage("tlsrpt");
		json = true;
	}
	if (optind >= argc)
		return cli_usage("tlsrpt");
	if (json)
		out = json_array();
	for (i = optind; i < argc; i++) {
		r = cmd_tlsrpt_one(argv[i], out);
		if (r == EX_NOINPUT || (r != 0 && rc == 0))
			rc = r;
	}
	if (json) {
		/* One file: one document; several: an array in order. */
		json_dumpf(argc - optind == 1 ? json_array_get(out, 0) : out,
		    stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(out);
	}
	fflush(stdout);
	return rc;
}

/*
 * `tlsrpt received [--json] [DIR]`: the reports in a directory or maildir
 * (default: [tlsrpt] received) added up per sender, policy and day; the
 * same code as the console's /tlsrpt (tlsrpt_inbox.c). 0, 66 when DIR
 * cannot be opened, 64 when there is no DIR.
 */
static int
cmd_tlsrpt_received(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct tlsrpt_inbox *b;
	struct conf *c = NULL;
	const char *dir;
	char *err = NULL;
	bool json = false;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "j", longopts, NULL)) != -1) {
		if (ch != 'j')
			return cli_usage("tlsrpt");
		json = true;
	}
	if (argc - optind > 1)
		return cli_usage("tlsrpt");
	if (optind < argc) {
		dir = argv[optind];
	} else if ((dir = conf_str(c = cli_load_conf(ctx),
	                CONF_TLSRPT_RECEIVED)) == NULL) {
		fprintf(stderr,
		    "danerelay tlsrpt received: no DIR and no [tlsrpt] "
		    "received in the config\n");
		conf_free(c);
		return EX_USAGE;
	}
	if ((b = tlsrpt_inbox_scan(dir, &err)) == NULL) {
		fprintf(stderr, "danerelay tlsrpt received: %s\n", err);
		free(err);
		conf_free(c);
		return EX_NOINPUT;
	}
	if (json) {
		json_dumpf(tlsrpt_inbox_json(b), stdout,
		    JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else {
		tlsrpt_inbox_print(stdout, b);
	}
	fflush(stdout);
	tlsrpt_inbox_free(b);
	conf_free(c);
	return 0;
}

/* [fleet] postgres: the fleet's sums of day, with its sent marks and
 * outbox, as a store in memory; NULL with a message. */
static struct tlsrpt_store *
cmd_tlsrpt_fleet(const struct conf *c, const char *day)
{
	struct tlsrpt_store *m = NULL;
	char *node, *err = NULL;
	struct pg *p;

	node = pg_default_node(conf_str(c, CONF_FLEET_NODE));
	p = pg_open(conf_str(c, CONF_FLEET_POSTGRES), node, &err);
	free(node);
	if (p != NULL && (m = fleet_tlsrpt_snapshot(p, day, day, NULL)) == NULL)
		err = xstrdup(pg_error(p));
	if (m == NULL)
		fprintf(stderr, "danerelay tlsrpt: %s\n", err);
	free(err);
	pg_close(p);
	return m;
}

/* The relay's store (tlsrpt.db beside the queue), or with [fleet]
 * postgres the fleet's of day; NULL with a message. */
static struct tlsrpt_store *
cmd_tlsrpt_store(const struct cli_ctx *ctx, struct conf **cp, const char *day)
{
	struct tlsrpt_store *s;
	char path[4096], *err = NULL;

	*cp = cli_load_conf(ctx);
	if (conf_str(*cp, CONF_FLEET_POSTGRES) != NULL)
		return cmd_tlsrpt_fleet(*cp, day);
	snprintf(path, sizeof(path), "%s/tlsrpt.db",
	    conf_str(*cp, CONF_QUEUE_DIRECTORY));
	if (access(path, R_OK) == -1) {
		fprintf(stderr,
		    "danerelay tlsrpt: %s: no TLS-RPT data yet (%s)\n", path,
		    strerror(errno));
		return NULL;
	}
	if ((s = tlsrpt_store_open(path, &err)) == NULL) {
		fprintf(stderr, "danerelay tlsrpt: %s\n", err);
		free(err);
	}
	return s;
}

/* A report built the way it will be sent. New string or NULL. */
static char *
cmd_tlsrpt_build(struct tlsrpt_store *s, const struct conf *c,
    const char *domain, const char *day)
{
	struct relay_tlsrpt_ident ident;
	char host[256], *id, *rep;

	relay_hostname_of(c, host, sizeof(host));
	relay_tlsrpt_ident(c, host, &ident);
	id = tlsrpt_send_report_id(day, domain, ident.submitter);
	rep = tlsrpt_report_build(
	    s, domain, day, ident.organization, ident.contact, id);
	free(id);
	relay_tlsrpt_ident_free(&ident);
	return rep;
}

static long long
cmd_tlsrpt_total(json_t *report, const char *key)
{
	json_t *p;
	size_t i;
	long long n = 0;

	json_array_foreach(json_object_get(report, "policies"), i, p) n +=
	    json_integer_value(
	        json_object_get(json_object_get(p, "summary"), key));
	return n;
}

/* Whether day is a calendar day "YYYY-MM-DD"; says why not on stderr. */
static bool
cmd_tlsrpt_day_ok(const char *day)
{
	if (tlsrpt_day_start(day) != (time_t)-1)
		return true;
	fprintf(stderr,
	    "danerelay tlsrpt: %s: expected a calendar day YYYY-MM-DD\n", day);
	return false;
}

/* `tlsrpt list [--day D] [--json]`: what will be reported for a day. */
static int
cmd_tlsrpt_list(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "day", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	char day[TLSRPT_DAY_LEN], **doms, *text;
	struct tlsrpt_store *s;
	json_t *out = json_array(), *rep;
	struct conf *c = NULL;
	bool json = false;
	size_t i, n;
	int ch;

	tlsrpt_day(time(NULL), day);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "jd:", longopts, NULL)) != -1) {
		if (ch == 'j')
			json = true;
		else if (ch == 'd' && cmd_tlsrpt_day_ok(optarg))
			memcpy(day, optarg, TLSRPT_DAY_LEN);
		else
			return cli_usage("tlsrpt");
	}
	if ((s = cmd_tlsrpt_store(ctx, &c, day)) == NULL) {
		json_decref(out);
		conf_free(c);
		return EX_NOINPUT;
	}
	doms = tlsrpt_store_domains(s, day, &n);
	for (i = 0; doms != NULL && i < n; i++) {
		text = cmd_tlsrpt_build(s, c, doms[i], day);
		rep = text != NULL ? json_loads(text, 0, NULL) : NULL;
		json_array_append_new(out,
		    json_pack("{s:s, s:s, s:I, s:I, s:b}", "domain", doms[i],
		        "day", day, "successful",
		        (json_int_t)cmd_tlsrpt_total(
		            rep, "total-successful-session-count"),
		        "failed",
		        (json_int_t)cmd_tlsrpt_total(
		            rep, "total-failure-session-count"),
		        "sent", tlsrpt_store_sent(s, doms[i], day)));
		json_decref(rep);
		free(text);
	}
	if (json) {
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else {
		json_t *e;

		printf("%-40s %-10s %10s %10s\n", "POLICY DOMAIN", "DAY",
		    "SUCCESS", "FAILURE");
		json_array_foreach(out, i, e)
		    printf("%-40s %-10s %10lld %10lld\n",
		        json_string_value(json_object_get(e, "domain")), day,
		        json_integer_value(json_object_get(e, "successful")),
		        json_integer_value(json_object_get(e, "failed")));
	}
	json_decref(out);
	tlsrpt_strv_free(doms);
	tlsrpt_store_close(s);
	conf_free(c);
	return n > 0 ? 0 : 1;
}

/* `tlsrpt show DOMAIN DAY`: the RFC 8460 JSON report. */
static int
cmd_tlsrpt_show(int argc, char **argv, struct cli_ctx *ctx)
{
	struct tlsrpt_store *s;
	struct conf *c = NULL;
	char *text;
	json_t *rep;

	if (argc != 3 || !cmd_tlsrpt_day_ok(argv[2]))
		return cli_usage("tlsrpt");
	if ((s = cmd_tlsrpt_store(ctx, &c, argv[2])) == NULL) {
		conf_free(c);
		return EX_NOINPUT;
	}
	text = cmd_tlsrpt_build(s, c, argv[1], argv[2]);
	if (text == NULL) {
		fprintf(stderr, "danerelay tlsrpt: no data for %s on %s\n",
		    argv[1], argv[2]);
	} else {
		rep = json_loads(text, 0, NULL);
		json_dumpf(rep, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(rep);
	}
	free(text);
	tlsrpt_store_close(s);
	conf_free(c);
	return text != NULL ? 0 : 1;
}

static const struct cmd_tlsrpt_sub cmd_tlsrpt_subs[] = {
	{ "parse", cmd_tlsrpt_parse },
	{ "received", cmd_tlsrpt_received },
	{ "list", cmd_tlsrpt_list },
	{ "show", cmd_tlsrpt_show },
	{ "send", cmd_tlsrpt_send },
	{ NULL, NULL },
};

int
cmd_tlsrpt(int argc, char **argv, struct cli_ctx *ctx)
{
	const struct cmd_tlsrpt_sub *sub;

	if (argc < 2)
		return cli_usage("tlsrpt");
	for (sub = cmd_tlsrpt_subs; sub->name != NULL; sub++)
		if (strcmp(sub->name, argv[1]) == 0)
			return sub->run(argc - 1, argv + 1, ctx);
	fprintf(stderr, "danerelay tlsrpt: unknown subcommand '%s'\n", argv[1]);
	return cli_usage("tlsrpt");
}
