/*
 * cmd_man_page: `danerelay man-page TEMPLATE`, a hidden command that the
 * build runs (man/meson.build) to print danerelay(8) and danerelay.conf(5):
 * the prose comes from TEMPLATE, the reference parts from the tables the
 * program itself runs on, so the pages cannot drift from the binary.
 *
 * A template line that is exactly one of these is replaced:
 *   @GLOBAL_OPTIONS@  the options before the command (cli_global_opts)
 *   @COMMANDS@        every command, its options and exit status (cli_cmds)
 *   @CONFIG_KEYS@     every configuration key by section (conf_keys)
 * and @VERSION@ anywhere in a line becomes the version.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "version.h"

#define MAN_LINE_MAX 4096

static void
man_page_line(const char *line, FILE *out)
{
	const char *at;

	if (strcmp(line, "@GLOBAL_OPTIONS@\n") == 0)
		cli_man_global_opts(out);
	else if (strcmp(line, "@COMMANDS@\n") == 0)
		cli_man_commands(out);
	else if (strcmp(line, "@CONFIG_KEYS@\n") == 0)
		conf_man_keys(out);
	else if ((at = strstr(line, "@VERSION@")) != NULL)
		fprintf(out, "%.*s%s%s", (int)(at - line), line,
		    DANERELAY_VERSION, at + strlen("@VERSION@"));
	else
		fputs(line, out);
}

int
cmd_man_page(int argc, char **argv, struct cli_ctx *ctx)
{
	char line[MAN_LINE_MAX];
	FILE *in;
	int rc = 0;

	if (argc != 2)
		return cli_usage("man-page");
	if ((in = fopen(argv[1], "r")) == NULL) {
		perror(argv[1]);
		return EX_NOINPUT;
	}
	while (fgets(line, sizeof(line), in) != NULL) {
		if (strchr(line, '\n') == NULL && !feof(in)) {
			fprintf(stderr, "%s: line longer than %d octets\n",
			    argv[1], MAN_LINE_MAX - 2);
			rc = EX_DATAERR;
			break;
		}
		man_page_line(line, stdout);
	}
	if (rc == 0 && ferror(in))
		rc = EX_IOERR;
	fclose(in);
	if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		rc = EX_IOERR;
	return rc;
}
