/* in development: replaced by the real command before it is committed */
#include <sysexits.h>
#include "cli/cli.h"
int
cmd_passwd(int argc, char **argv, struct cli_ctx *ctx)
{
	return EX_SOFTWARE;
}
