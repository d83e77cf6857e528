/*
 * cli: git-style subcommands. Each command lives in cmd_<name>.c and is one
 * row of the table in cli.c: { name, usage, summary, run }. `danerelay help`
 * is generated from that table. Exit codes follow sysexits(3) for usage and
 * environment errors; commands document their own result codes.
 */
#ifndef DR_CLI_H
#define DR_CLI_H

#include <stdbool.h>

struct conf;

struct cli_ctx {
	const char
	    *config_path;  /* -c FILE, or NULL for the built-in defaults */
	const char *trace; /* -T list, or NULL */
	int verbose;       /* -v count */
};

struct cli_cmd {
	const char *name;
	const char *usage;   /* options after the command name */
	const char *summary; /* one line */
	int (*run)(int argc, char **argv, struct cli_ctx *ctx);
};

/* The command table, terminated by a row with name NULL. */
extern const struct cli_cmd cli_cmds[];

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

#endif
