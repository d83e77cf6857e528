/*
 * queue_pg: the queue in the fleet's PostgreSQL database ([queue] store =
 * postgres). Contract in queue.h (queue_open_pg); docs/FLEET.md.
 *
 * STUB: the issue-12 queue helper replaces this file.
 */
#include "queue/queue_int.h"

#include "core/xmalloc.h"

struct queue *
queue_open_pg(
    const char *conninfo, const char *node, time_t lease, char **errstr)
{
	(void)conninfo;
	(void)node;
	(void)lease;
	*errstr = xstrdup("[queue] store = postgres is not built yet");
	return NULL;
}
