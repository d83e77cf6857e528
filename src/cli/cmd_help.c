/*
 * cmd_help: help generated from the command table (cli.c): `danerelay
 * help`, `danerelay --help`, and `danerelay help COMMAND`, which is what
 * `danerelay COMMAND --help` prints.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"

int
cmd_help(int argc, char **argv, struct cli_ctx *ctx)
{
	const struct cli_cmd *cmd;

	if (argc > 2)
		return cli_usage("help");
	if (argc == 2) {
		if ((cmd = cli_cmd_find(argv[1])) == NULL || cmd->hidden) {
			fprintf(stderr, "danerelay: no such command '%s'\n",
			    argv[1]);
			return EX_USAGE;
		}
		cli_cmd_help(cmd, stdout);
		return 0;
	}
	printf("usage: danerelay [-c FILE] [-v] [-T CATS] COMMAND "
	       "[ARGS...]\n\n");
	cli_opts_print(cli_global_opts, stdout);
	printf("\ncommands:\n");
	for (cmd = cli_cmds; cmd->name != NULL; cmd++)
		if (!cmd->hidden)
			printf("  %-13s %s\n", cmd->name, cmd->summary);
	printf("\n'danerelay COMMAND --help' shows the options of a command; "
	       "man danerelay(8)\nand danerelay.conf(5) are the manual.\n");
	return 0;
}
