/*
 * fleet_sts_stub: a stand-in for fleet_sts_sync (fleet.h), which the
 * copying thread calls and h/sts provides in fleet_sts.c, so that h/sync
 * builds alone. Weak: the real definition wins.
 *
 * removed when h/sts merges.
 */
#include "fleet/fleet.h"

__attribute__((weak)) int
fleet_sts_sync(struct pg *p, const char *sts_path)
{
	(void)p;
	(void)sts_path;
	return 0;
}
