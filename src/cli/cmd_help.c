/*
 * cmd_help: help generated from the command table.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"

int
cmd_help(int argc, char **argv, struct cli_ctx *ctx)
{
	const struct cli_cmd *cmd;

	if (argc > 1) {
		for (cmd = cli_cmds; cmd->name != NULL; cmd++) {
			if (strcmp(cmd->name, argv[1]) == 0) {
				printf("usage: danerelay %s %s\n\n%s\n",
				    cmd->name, cmd->usage, cmd->summary);
				return 0;
			}
		}
		fprintf(stderr, "danerelay: no such command '%s'\n", argv[1]);
		return EX_USAGE;
	}
	printf(
	    "usage: danerelay [-c FILE] [-v] [-T CATS] COMMAND [ARGS...]\n\n"
	    "  -c FILE   configuration file (INI style; see docs/CONFIG.md)\n"
	    "  -v        verbose\n"
	    "  -T CATS   trace categories: dns,smtp,tls,dane,queue,check,all\n\n"
	    "commands:\n");
	for (cmd = cli_cmds; cmd->name != NULL; cmd++)
		printf("  %-13s %s\n", cmd->name, cmd->summary);
	printf("\n'danerelay help COMMAND' shows the options of a command.\n");
	return 0;
}
