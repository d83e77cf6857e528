/*
 * fleet_read: the fleet's database for the readers of the trace
 * (fleet_read.h).
 */
#include "fleet/fleet_read.h"

#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "pg/pg.h"

bool
fleet_read_configured(const struct conf *c)
{
	const char *conninfo = conf_str(c, CONF_FLEET_POSTGRES);

	return conninfo != NULL && *conninfo != '\0';
}

bool
fleet_read_pg_only(const struct conf *c)
{
	const char *store = conf_str(c, CONF_QUEUE_STORE);

	return store != NULL && strcmp(store, "postgres") == 0;
}

struct pg *
fleet_read_new(const struct conf *c)
{
	struct pg *p;
	char *node;

	if (!fleet_read_configured(c))
		return NULL;
	node = pg_default_node(conf_str(c, CONF_FLEET_NODE));
	p = pg_new(conf_str(c, CONF_FLEET_POSTGRES), node);
	free(node);
	return p;
}
