/*
 * cli: the command table and helpers shared by the commands.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "conf/conf.h"
#include "core/log.h"

const struct cli_cmd cli_cmds[] = {
	{ "check", "[--json] [--no-connect] [--mx HOST] [--port N] DOMAIN...",
	    "analyse DANE/DNSSEC delivery to domains and explain the verdict",
	    cmd_check },
	{ "tlsa",
	    "--cert FILE [--host NAME] [--port N] [--usage 3|2] "
	    "[--selector 1|0] [--mtype 1|2|0] [--next-key FILE]",
	    "print TLSA records for a certificate (and the next key)",
	    cmd_tlsa },
	{ "serve", "", "run the relay: accept, queue and deliver mail",
	    cmd_serve },
	{ "queue", "list|show|retry|delete|bounce [--json] [ID]",
	    "inspect and act on the queue (works while the relay runs)",
	    cmd_queue },
	{ "trace",
	    "[--message-id ID] [--recipient ADDR] [--domain D] "
	    "[--since 1h] [--json]",
	    "the story of messages, newest last", cmd_trace },
	{ "report", "[--period 1h|1d|7d|30d] [--impact] [--json]",
	    "the transit security report, or the log-only impact (--impact)",
	    cmd_report },
	{ "passwd", "[USER]", "hash a password for [server] auth_file",
	    cmd_passwd },
	{ "check-config", "",
	    "validate the config file and print the "
	    "effective configuration",
	    cmd_check_config },
	{ "tlsrpt",
	    "parse [--json] FILE... | list [--day D] [--json] | show DOMAIN DAY | send [--day D]",
	    "TLS-RPT reports (RFC 8460): read received reports; list, show and send ours",
	    cmd_tlsrpt },
	{ "help", "[COMMAND]", "show this help", cmd_help },
	{ NULL, NULL, NULL, NULL },
};

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
	const struct cli_cmd *cmd;

	for (cmd = cli_cmds; cmd->name != NULL; cmd++) {
		if (strcmp(cmd->name, name) == 0) {
			fprintf(stderr, "usage: danerelay %s %s\n", cmd->name,
			    cmd->usage);
			break;
		}
	}
	return EX_USAGE;
}
