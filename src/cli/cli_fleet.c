/*
 * cli_fleet: what `trace` and `report` do when a read of the fleet's
 * database failed (cli.h cli_fleet_failed): the one wording of the
 * fallback to the node's own queue (docs/FLEET.md).
 */
#include <stdio.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "fleet/fleet_read.h"
#include "pg/pg.h"

int
cli_fleet_failed(const struct conf *c, struct pg *p, const char *cmd)
{
	if (!pg_broken(p)) {
		/* The database answered with an error: no outage. */
		fprintf(stderr, "danerelay %s: %s\n", cmd, pg_error(p));
		return EX_SOFTWARE;
	}
	if (fleet_read_pg_only(c)) {
		fprintf(stderr,
		    "danerelay %s: fleet database unreachable: %s\n", cmd,
		    pg_error(p));
		return EX_UNAVAILABLE;
	}
	fprintf(stderr,
	    "danerelay %s: warning: " FLEET_READ_LOCAL_ONLY " (%s)\n", cmd,
	    pg_error(p));
	return 0;
}
