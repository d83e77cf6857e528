/*
 * cli_man: the command reference of danerelay(8), printed from the
 * command table (cli.c) so that the man page lists exactly the commands
 * and options the binary has. `danerelay man-page` (cmd_man_page.c) puts
 * it into man/danerelay.8.in at build time.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "core/roff.h"

/* ".TP" paragraphs: the name in bold, its help below. */
static void
cli_man_opts(const struct cli_opt *opts, FILE *fp)
{
	for (; opts->name != NULL; opts++) {
		fputs(".TP\n\\fB", fp);
		roff_puts(fp, opts->name, 0);
		fputs("\\fR\n", fp);
		roff_puts(fp, opts->help, 1);
		fputc('\n', fp);
	}
}

void
cli_man_global_opts(FILE *fp)
{
	cli_man_opts(cli_global_opts, fp);
}

static void
cli_man_command(const struct cli_cmd *cmd, FILE *fp)
{
	fprintf(fp, ".SS %s\n.B danerelay %s\n", cmd->name, cmd->name);
	if (cmd->usage[0] != '\0') {
		roff_puts(fp, cmd->usage, 1);
		fputc('\n', fp);
	}
	fputs(".PP\n", fp);
	roff_puts(fp, cmd->summary, 1);
	fputs(".\n", fp);
	if (cmd->opts != NULL)
		cli_man_opts(cmd->opts, fp);
	if (cmd->exit != NULL) {
		fputs(".PP\nExit status: ", fp);
		roff_puts(fp, cmd->exit, 0);
		fputs(".\n", fp);
	}
}

void
cli_man_commands(FILE *fp)
{
	const struct cli_cmd *cmd;

	for (cmd = cli_cmds; cmd->name != NULL; cmd++)
		if (!cmd->hidden)
			cli_man_command(cmd, fp);
}
