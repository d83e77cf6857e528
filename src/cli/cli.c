/*
 * cli: the command table and helpers shared by the commands.
 *
 * Each command is one row of cli_cmds[] and its options one row of its
 * cli_opt array just above: `danerelay COMMAND --help`, `danerelay help`
 * and the danerelay(8) man page (cli_man.c) are printed from here, so
 * adding an option to a command's getopt means adding its row here too
 * (tests/integration/test_man.sh fails on a long option without one).
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "conf/conf.h"
#include "core/log.h"

#define CLI_COLUMNS    80 /* --help fits a terminal of this width */
#define CLI_NAME_WIDTH 18 /* the column of option names */

const struct cli_opt cli_global_opts[] = {
	{ "-c FILE",
	    "configuration file (default: none, the built-in defaults; see "
	    "danerelay.conf(5))" },
	{ "-v", "verbose: debug messages in the log, details in check" },
	{ "-T CATS",
	    "trace categories, comma separated: dns, smtp, tls, dane, queue, "
	    "check, all" },
	{ "-h, --help", "print the commands and these options" },
	{ "-V, --version",
	    "print the version and the versions of the libraries in use" },
	{ NULL, NULL },
};

static const struct cli_opt check_opts[] = {
	{ "DOMAIN...", "the recipient domains to analyse" },
	{ "--json", "print the verdicts as JSON (docs/CHECK-JSON.md)" },
	{ "--no-connect",
	    "DNS only: no SMTP connection (quick, many domains at once)" },
	{ "--mx HOST",
	    "test this host instead of the domain's MX hosts (no MX lookup), "
	    "as a [domain] route would" },
	{ "--port N",
	    "destination port and _N._tcp TLSA prefix (default: [delivery] "
	    "port, 25)" },
	{ "-v, --verbose",
	    "details of the hosts that passed too (certificate, TLSA match)" },
	{ NULL, NULL },
};

static const struct cli_opt tlsa_opts[] = {
	{ "--cert FILE",
	    "the certificate (PEM), chain after the leaf for --usage 2; "
	    "required" },
	{ "--host NAME",
	    "MX host name of the TLSA owner (default: the certificate's first "
	    "DNS name)" },
	{ "--port N", "port of the _N._tcp owner (default: 25)" },
	{ "--usage 3|2", "3 DANE-EE (default) or 2 DANE-TA (RFC 7671)" },
	{ "--selector 1|0",
	    "1 the public key, SPKI (default), or 0 the whole certificate" },
	{ "--mtype 1|2|0", "1 SHA2-256 (default), 2 SHA2-512 or 0 full data" },
	{ "--next-key FILE",
	    "also the record of the next key (PEM), to publish before a "
	    "rollover (RFC 7671 §8.1; needs 3 1)" },
	{ NULL, NULL },
};

static const struct cli_opt serve_opts[] = {
	{ NULL, NULL },
};

static const struct cli_opt queue_opts[] = {
	{ "list", "the queued recipients: row id, queue id, state, next try" },
	{ "show ID", "one message: its recipients, attempts and headers" },
	{ "retry ID",
	    "make it due now: the relay tries on its next scan "
	    "(held recipients stay held)" },
	{ "hold ID", "keep it queued, never attempted, until release" },
	{ "release ID", "end a hold: due now" },
	{ "flush [DOMAIN]",
	    "make every waiting recipient (of DOMAIN) due now; held ones "
	    "stay held" },
	{ "delete ID", "remove it without a bounce" },
	{ "bounce ID",
	    "return it to the sender (DSN) on the relay's next scan" },
	{ "ID",
	    "a queue id (16 hex digits) or a recipient row id (the first "
	    "column of list)" },
	{ "--json", "print list and show as JSON (docs/QUEUE.md)" },
	{ "--domain D", "list: recipients in this domain" },
	{ "--state S", "list: active, deferred or held recipients" },
	{ "--sender S", "list: messages from senders containing S" },
	{ "--recipient R", "list: recipients whose address contains R" },
	{ NULL, NULL },
};

static const struct cli_opt trace_opts[] = {
	{ "--message-id ID",
	    "the queue id, or the Message-ID header with or without <>" },
	{ "--sender ADDR",
	    "messages from this sender (case-insensitive; <> the null "
	    "sender)" },
	{ "--recipient ADDR", "messages to this recipient" },
	{ "--domain D", "messages to recipients in this domain" },
	{ "--since WHEN",
	    "messages with an event at or after WHEN: an age (30m, 1h, 2d) or "
	    "a UTC time (2026-12-07, 2026-12-07T10:00:00Z); whole story "
	    "shown" },
	{ "--until WHEN",
	    "messages with an event at or before WHEN (same forms; a date "
	    "alone means its last second)" },
	{ "--json", "print the events as JSON (docs/QUEUE.md)" },
	{ NULL, NULL },
};

static const struct cli_opt report_opts[] = {
	{ "--period P",
	    "1h, 1d (default), 7d or 30d, ending now (docs/QUEUE.md)" },
	{ "--impact",
	    "the log-only analysis: what enforcement would have blocked" },
	{ "--json", "print the report as JSON (docs/CONSOLE.md)" },
	{ NULL, NULL },
};

static const struct cli_opt passwd_opts[] = {
	{ "USER",
	    "print USER:HASH, a line for the auth_file (without it: the hash "
	    "alone)" },
	{ NULL, NULL },
};

static const struct cli_opt check_config_opts[] = {
	{ NULL, NULL },
};

static const struct cli_opt tlsrpt_opts[] = {
	{ "parse FILE...",
	    "read received reports: JSON, gzip or the whole mail; - is "
	    "standard input" },
	{ "received [DIR]",
	    "reports received in a directory or maildir (default: [tlsrpt] "
	    "received), per sender, policy and day" },
	{ "list", "the policy domains recorded for a day, with their counts" },
	{ "show DOMAIN DAY",
	    "the RFC 8460 report of one domain and day, as it would be sent" },
	{ "send", "send a day's reports now (default: yesterday, UTC)" },
	{ "--json", "parse, received, list: print JSON (docs/TLSRPT.md)" },
	{ "--day YYYY-MM-DD",
	    "list, send: the UTC day (default: today for list, yesterday for "
	    "send)" },
	{ NULL, NULL },
};

static const struct cli_opt fleet_opts[] = {
	{ "status",
	    "the fleet's nodes (last seen, trace copied up to, events), this "
	    "node's backlog of local events not yet copied, and the sizes of "
	    "dr_events and dr_messages" },
	{ "sync",
	    "copy now what the relay's thread copies every [fleet] "
	    "sync_interval: new trace events, TLS-RPT counters, MTA-STS "
	    "policies" },
	{ "--json", "status: print JSON (docs/FLEET.md)" },
	{ NULL, NULL },
};

static const struct cli_opt help_opts[] = {
	{ "COMMAND", "the options of this command (same as COMMAND --help)" },
	{ NULL, NULL },
};

static const struct cli_opt man_page_opts[] = {
	{ "TEMPLATE", "the man page source with @...@ lines to fill" },
	{ NULL, NULL },
};

const struct cli_cmd cli_cmds[] = {
	{ "check", "[--json] [--no-connect] [--mx HOST] [--port N] DOMAIN...",
	    "analyse DANE/DNSSEC delivery to domains and explain the verdict",
	    cmd_check, check_opts,
	    "0 mail to every domain would flow (verified, trusted, encrypted, "
	    "opportunistic); 1 some would defer or bounce; 2 the check could "
	    "not run (bad arguments, the resolver does not validate DNSSEC)",
	    false },
	{ "tlsa",
	    "--cert FILE [--host NAME] [--port N] [--usage 3|2] "
	    "[--selector 1|0] [--mtype 1|2|0] [--next-key FILE]",
	    "print TLSA records for a certificate (and the next key)", cmd_tlsa,
	    tlsa_opts,
	    "0 printed; 64 bad arguments or no usable owner name; 66 a file "
	    "cannot be read; 65 a file is not what it should be; 74 the "
	    "records cannot be written",
	    false },
	{ "serve", "", "run the relay: accept, queue and deliver mail",
	    cmd_serve, serve_opts,
	    "0 after a stop by SIGTERM or SIGINT; when it cannot start (the "
	    "log says why): 78 configuration, 75 another relay holds the "
	    "queue, 73 the queue cannot be opened, 71 cannot listen, 77 cannot "
	    "become [server] user, 70 internal error",
	    false },
	{ "queue",
	    "list [--json] [--domain D] [--state active|deferred|held] "
	    "[--sender S] [--recipient R] | show [--json] ID | "
	    "retry|hold|release|bounce|delete ID | flush [DOMAIN]",
	    "inspect and act on the queue (works while the relay runs)",
	    cmd_queue, queue_opts,
	    "0 done; 1 nothing queued matches ID; 64 bad arguments; 78 the "
	    "configuration or the queue cannot be opened; 70 a database error",
	    false },
	{ "trace",
	    "[--message-id ID] [--sender ADDR] [--recipient ADDR] [--domain D] "
	    "[--since WHEN] [--until WHEN] [--json]",
	    "the story of messages, newest last", cmd_trace, trace_opts,
	    "0 something matched; 1 nothing did; 64 bad arguments; 78 the "
	    "configuration or the queue cannot be opened; 70 a database error",
	    false },
	{ "report", "[--period 1h|1d|7d|30d] [--impact] [--json]",
	    "the transit security report, or the log-only impact (--impact)",
	    cmd_report, report_opts,
	    "0; 64 bad arguments; 78 the configuration or the queue cannot be "
	    "opened; 70 a database error",
	    false },
	{ "passwd", "[USER]", "hash a password for [server] auth_file",
	    cmd_passwd, passwd_opts,
	    "0 printed; 64 bad arguments or user name; 65 empty or overlong "
	    "password, or the two entries differ; 74 nothing to read; 70 "
	    "OpenSSL failed",
	    false },
	{ "check-config", "",
	    "validate the config file and print the "
	    "effective configuration",
	    cmd_check_config, check_config_opts,
	    "0 valid (the effective configuration is printed); 78 not, with "
	    "FILE:LINE: [section] key: what is wrong",
	    false },
	{ "tlsrpt",
	    "parse [--json] FILE... | received [--json] [DIR] | list [--day D] "
	    "[--json] | show DOMAIN DAY | send [--day D]",
	    "TLS-RPT reports (RFC 8460): read received reports; list, show and "
	    "send ours",
	    cmd_tlsrpt, tlsrpt_opts,
	    "parse: 0 every file was a report, 65 one was not, 66 one could not "
	    "be read; received: 0, 66 DIR cannot be opened; list, show: 0, 1 no data; send: 0 sent, 1 a report was "
	    "given up, 75 some are to be retried; 64 bad arguments",
	    false },
	{ "fleet", "status [--json] | sync",
	    "the fleet's nodes and this node's backlog, or a copy to the "
	    "database now",
	    cmd_fleet, fleet_opts,
	    "0; 1 the database cannot be reached or the copy failed; 64 bad "
	    "arguments; 78 no [fleet] postgres or the configuration cannot be "
	    "read",
	    false },
	{ "help", "[COMMAND]", "show this help", cmd_help, help_opts,
	    "0; 64 no such command", false },
	{ "man-page", "TEMPLATE",
	    "print a man page with the command and key tables filled in "
	    "(build step)",
	    cmd_man_page, man_page_opts, "0; 64 bad arguments; 66 no template",
	    true },
	{ NULL, NULL, NULL, NULL, NULL, NULL, false },
};

const struct cli_cmd *
cli_cmd_find(const char *name)
{
	const struct cli_cmd *cmd;

	for (cmd = cli_cmds; cmd->name != NULL; cmd++)
		if (strcmp(cmd->name, name) == 0)
			return cmd;
	return NULL;
}

/*
 * text from column col on, words wrapped before column 80, continuation
 * lines indented to column indent.
 */
static void
cli_wrap(FILE *fp, const char *text, size_t col, size_t indent)
{
	bool first = true;
	size_t n;

	while (*text != '\0') {
		n = strcspn(text, " ");
		if (!first && col + 1 + n >= CLI_COLUMNS) {
			fprintf(fp, "\n%*s", (int)indent, "");
			col = indent;
		} else if (!first) {
			fputc(' ', fp);
			col++;
		}
		first = false;
		fwrite(text, 1, n, fp);
		col += n;
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', fp);
}

void
cli_opts_print(const struct cli_opt *opts, FILE *fp)
{
	for (; opts->name != NULL; opts++) {
		if (strlen(opts->name) < CLI_NAME_WIDTH)
			fprintf(fp, "  %-*s ", CLI_NAME_WIDTH, opts->name);
		else
			fprintf(fp, "  %s\n%*s", opts->name, CLI_NAME_WIDTH + 3,
			    "");
		cli_wrap(
		    fp, opts->help, CLI_NAME_WIDTH + 3, CLI_NAME_WIDTH + 3);
	}
}

void
cli_cmd_help(const struct cli_cmd *cmd, FILE *fp)
{
	fprintf(fp, "usage: danerelay %s", cmd->name);
	if (cmd->usage[0] != '\0') {
		fputc(' ', fp);
		cli_wrap(fp, cmd->usage, 17 + strlen(cmd->name), 8);
	} else
		fputc('\n', fp);
	fprintf(fp, "\n%s\n", cmd->summary);
	/* A row without opts or exit shows less; test_man.sh flags it. */
	if (cmd->opts != NULL && cmd->opts[0].name != NULL) {
		fprintf(fp, "\n");
		cli_opts_print(cmd->opts, fp);
	}
	if (cmd->exit != NULL) {
		fprintf(fp, "\nexit status: ");
		cli_wrap(fp, cmd->exit, 13, 2);
	}
}

struct conf *
cli_load_conf(const struct cli_ctx *ctx)
{
	struct conf *c;
	char *errstr = NULL;

	c = conf_load(ctx->config_path, &errstr);
	if (c == NULL)
		fatalx(EX_CONFIG, "%s", errstr);
	return c;
}

int
cli_usage(const char *name)
{
	const struct cli_cmd *cmd = cli_cmd_find(name);

	if (cmd != NULL)
		fprintf(
		    stderr, "usage: danerelay %s %s\n", cmd->name, cmd->usage);
	return EX_USAGE;
}
