/*
 * main: global options, then dispatch to the subcommand of cli_cmds[].
 *
 *   danerelay [-c FILE] [-v] [-T trace,list] COMMAND [ARGS...]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"

static void
main_usage(void)
{
	fprintf(stderr,
	    "usage: danerelay [-c FILE] [-v] [-T CATS] COMMAND "
	    "[ARGS...]\n       danerelay help\n");
}

int
main(int argc, char **argv)
{
	struct cli_ctx ctx = { 0 };
	const struct cli_cmd *cmd;
	const char *errstr;
	int ch;

	signal(SIGPIPE, SIG_IGN);
	/* '+': stop at the command name; its options are its own. */
	while ((ch = getopt(argc, argv, "+c:vT:h")) != -1) {
		switch (ch) {
		case 'c':
			ctx.config_path = optarg;
			break;
		case 'v':
			ctx.verbose++;
			break;
		case 'T':
			ctx.trace = optarg;
			break;
		case 'h':
			return cmd_help(0, NULL, &ctx);
		default:
			main_usage();
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		main_usage();
		return EX_USAGE;
	}
	if (ctx.verbose > 0)
		log_set_level(LOG_LEVEL_DEBUG);
	if (ctx.trace != NULL && log_trace_enable(ctx.trace, &errstr) == -1) {
		fprintf(stderr, "danerelay: -T %s: %s\n", ctx.trace, errstr);
		return EX_USAGE;
	}
	for (cmd = cli_cmds; cmd->name != NULL; cmd++) {
		if (strcmp(cmd->name, argv[0]) == 0) {
			optind = 1; /* reset getopt for the command */
			return cmd->run(argc, argv, &ctx);
		}
	}
	fprintf(stderr,
	    "danerelay: unknown command '%s' (try 'danerelay "
	    "help')\n",
	    argv[0]);
	return EX_USAGE;
}
