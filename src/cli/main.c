/*
 * main: global options, then dispatch to the subcommand of cli_cmds[].
 *
 *   danerelay [-c FILE] [-v] [-T trace,list] COMMAND [ARGS...]
 *   danerelay --help | --version | COMMAND --help
 */
#include <getopt.h>
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
	    "[ARGS...]\n       danerelay --help | --version | COMMAND "
	    "--help\n");
}

/* `COMMAND ... --help` anywhere before a "--" asks for its help. */
static bool
main_wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

static int
main_run(int argc, char **argv, struct cli_ctx *ctx)
{
	const struct cli_cmd *cmd = cli_cmd_find(argv[0]);

	if (cmd == NULL) {
		fprintf(stderr,
		    "danerelay: unknown command '%s' (try 'danerelay "
		    "--help')\n",
		    argv[0]);
		return EX_USAGE;
	}
	if (main_wants_help(argc, argv)) {
		cli_cmd_help(cmd, stdout);
		return 0;
	}
	optind = 1; /* reset getopt for the command */
	return cmd->run(argc, argv, ctx);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_ctx ctx = { 0 };
	const char *errstr;
	int ch;

	signal(SIGPIPE, SIG_IGN);
	/* '+': stop at the command name; its options are its own. */
	while (
	    (ch = getopt_long(argc, argv, "+c:vT:hV", longopts, NULL)) != -1) {
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
		case 'V':
			cli_version_print(stdout);
			return 0;
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
	return main_run(argc, argv, &ctx);
}
