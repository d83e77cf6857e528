/*
 * queue_conf: which queue the config names (queue.h queue_open_conf).
 */
#include "queue/queue_int.h"

#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/xmalloc.h"
#include "queue/queue_pg_int.h"

struct queue *
queue_open_conf(const struct conf *c, bool create, char **errstr)
{
	const char *store = conf_str(c, CONF_QUEUE_STORE);
	const char *conninfo = conf_str(c, CONF_FLEET_POSTGRES);
	struct queue *q;
	char *node;

	if (store == NULL || strcmp(store, "postgres") != 0)
		return create ?
		    queue_open(conf_str(c, CONF_QUEUE_DIRECTORY), errstr) :
		    queue_open_existing(
		        conf_str(c, CONF_QUEUE_DIRECTORY), errstr);
	if (conninfo == NULL) {
		*errstr = xstrdup("[queue] store = postgres needs [fleet] "
		                  "postgres");
		return NULL;
	}
	node = pg_default_node(conf_str(c, CONF_FLEET_NODE));
	q = queue_open_pg(
	    conninfo, node, (time_t)conf_int(c, CONF_QUEUE_LEASE), errstr);
	free(node);
	return q;
}

bool
queue_is_pg(const struct queue *q)
{
	return q->pg != NULL;
}

bool
queue_available(struct queue *q)
{
	return q->pg == NULL || queue_pg_available(q);
}

int
queue_lease_renew(struct queue *q, time_t now)
{
	return q->pg != NULL ? queue_pg_lease_renew(q, now) : 0;
}
