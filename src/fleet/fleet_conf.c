/*
 * fleet_conf: the copying thread's settings from the configuration, one
 * definition for `serve` and `danerelay fleet` (fleet.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "fleet/fleet.h"
#include "pg/pg.h"

_Static_assert(sizeof(((struct fleet_sync_names *)0)->node) == PG_NODE_MAX + 1,
    "fleet_sync_names.node holds a node name");

int
fleet_sync_config_of(const struct conf *c, struct fleet_sync_config *fc,
    struct fleet_sync_names *names)
{
	const char *dir = conf_str(c, CONF_QUEUE_DIRECTORY);
	const char *store = conf_str(c, CONF_QUEUE_STORE);
	char *node;

	memset(fc, 0, sizeof(*fc));
	if ((fc->conninfo = conf_str(c, CONF_FLEET_POSTGRES)) == NULL)
		return -1;
	node = pg_default_node(conf_str(c, CONF_FLEET_NODE));
	snprintf(names->node, sizeof(names->node), "%s", node);
	free(node);
	fc->node = names->node;
	/* With store = postgres the events are written there directly. */
	if (store == NULL || strcmp(store, "postgres") != 0)
		fc->queue_dir = dir;
	/* The paths relay.c gives tlsrpt_store_open() and sts_new(). */
	snprintf(names->tlsrpt, sizeof(names->tlsrpt), "%s/tlsrpt.db", dir);
	snprintf(names->sts, sizeof(names->sts), "%s/mta-sts.db", dir);
	if (conf_bool(c, CONF_TLSRPT_ENABLED))
		fc->tlsrpt_path = names->tlsrpt;
	if (conf_bool(c, CONF_MTA_STS_ENABLED))
		fc->sts_path = names->sts;
	fc->interval_ms =
	    (unsigned)conf_int(c, CONF_FLEET_SYNC_INTERVAL) * 1000;
	return 0;
}
