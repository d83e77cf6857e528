/*
 * cmd_check_config: validate the config file as `serve` would at start
 * (relay_check_config: the same checks, the same messages) and print the
 * effective configuration, which is valid input again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "relay/relay.h"

int
cmd_check_config(int argc, char **argv, struct cli_ctx *ctx)
{
	struct conf *c;
	char *err = NULL;

	if (argc != 1)
		return cli_usage("check-config");
	c = cli_load_conf(ctx);
	if (relay_check_config(c, false, &err) == -1) {
		fprintf(stderr, "danerelay: %s\n", err);
		free(err);
		conf_free(c);
		return EX_CONFIG;
	}
	printf("# %s: configuration is valid\n", conf_file(c));
	conf_dump(c, stdout);
	conf_free(c);
	return 0;
}
