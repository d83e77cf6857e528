/*
 * cmd_check_config: validate the config file and print the effective
 * configuration (every key, with defaults marked).
 */
#include <stdio.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "conf/conf.h"

int
cmd_check_config(int argc, char **argv, struct cli_ctx *ctx)
{
	struct conf *c;

	if (argc != 1)
		return cli_usage("check-config");
	c = cli_load_conf(ctx);
	printf("# %s: configuration is valid\n",
	    ctx->config_path != NULL ? ctx->config_path :
	                               "(built-in defaults)");
	conf_dump(c, stdout);
	conf_free(c);
	return 0;
}
