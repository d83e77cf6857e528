/*
 * cli: git-style subcommands. Each command lives in cmd_<name>.c and is one
 * row of the table in cli.c: { name, usage, summary, run, opts, exit }.
 * `danerelay help`, `danerelay COMMAND --help` and the danerelay(8) man
 * page are all generated from that table, so describing an option is one
 * row of its command's cli_opt array. Exit codes follow sysexits(3) for
 * usage and environment errors; commands document their own result codes.
 */
#ifndef DR_CLI_H
#define DR_CLI_H

#include <stdbool.h>
#include <stdio.h>

struct conf;

struct cli_ctx {
	const char
	    *config_path;  /* -c FILE, or NULL for the built-in defaults */
	const char *trace; /* -T list, or NULL */
	int verbose;       /* -v count */
};

/*
 * One option, operand or subcommand of a command, as shown by --help and
 * danerelay(8): name is what the user types ("--mx HOST", "DOMAIN...",
 * "show ID"), help one line saying what it does and its default.
 */
struct cli_opt {
	const char *name;
	const char *help;
};

struct cli_cmd {
	const char *name;
	const char *usage;   /* options after the command name */
	const char *summary; /* one line */
	int (*run)(int argc, char **argv, struct cli_ctx *ctx);
	const struct cli_opt *opts; /* ended by { NULL, NULL } */
	const char *exit;           /* the exit status, one sentence */
	bool hidden;                /* left out of help and the man page */
};

/* The command table, terminated by a row with name NULL. */
extern const struct cli_cmd cli_cmds[];

/* The options before the command (-c, -v, -T, ...), same form. */
extern const struct cli_opt cli_global_opts[];

/* The row of the command called name, or NULL. */
const struct cli_cmd *cli_cmd_find(const char *name);

/* Print the --help text of cmd (usage, summary, options, exit) to fp. */
void cli_cmd_help(const struct cli_cmd *cmd, FILE *fp);

/* Print the global options, one "  NAME  HELP" line each, to fp. */
void cli_opts_print(const struct cli_opt *opts, FILE *fp);

/*
 * Print `danerelay --version`: the version this was built as and the
 * versions of the libraries it runs with (cli_version.c).
 */
void cli_version_print(FILE *fp);

/*
 * The roff text of the command reference of danerelay(8) (cli_man.c):
 * the global options, then per command its synopsis, summary, options and
 * exit status.
 */
void cli_man_global_opts(FILE *fp);
void cli_man_commands(FILE *fp);

/*
 * Load the configuration named by ctx (defaults when no -c), or exit
 * EX_CONFIG with "file:line: error". Returns new; caller frees.
 */
struct conf *cli_load_conf(const struct cli_ctx *ctx);

/* Print "usage: danerelay NAME USAGE" to stderr and return EX_USAGE. */
int cli_usage(const char *name);

int cmd_help(int argc, char **argv, struct cli_ctx *ctx);
int cmd_check_config(int argc, char **argv, struct cli_ctx *ctx);
int cmd_check(int argc, char **argv, struct cli_ctx *ctx);
int cmd_tlsa(int argc, char **argv, struct cli_ctx *ctx);
int cmd_serve(int argc, char **argv, struct cli_ctx *ctx);
int cmd_queue(int argc, char **argv, struct cli_ctx *ctx);
int cmd_trace(int argc, char **argv, struct cli_ctx *ctx);
int cmd_report(int argc, char **argv, struct cli_ctx *ctx);
int cmd_passwd(int argc, char **argv, struct cli_ctx *ctx);
int cmd_tlsrpt(int argc, char **argv, struct cli_ctx *ctx);
int cmd_tlsrpt_send(int argc, char **argv, struct cli_ctx *ctx);
int cmd_fleet(int argc, char **argv, struct cli_ctx *ctx);
int cmd_man_page(int argc, char **argv, struct cli_ctx *ctx);

#endif
