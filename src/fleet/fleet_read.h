/*
 * fleet_read: where `trace`, `report` and the console read the trace
 * from. With [fleet] postgres set, the fleet's database (fleet_trace,
 * fleet_report); when it cannot be reached, the node's own queue, said
 * plainly ("fleet database unreachable: this node only"); with [queue]
 * store = postgres there is no own queue, so only the database.
 * docs/FLEET.md, "Trace and reports".
 */
#ifndef DR_FLEET_READ_H
#define DR_FLEET_READ_H

#include <stdbool.h>

struct conf;
struct pg;

/* The warning shown when the fleet's view falls back to the node's. */
#define FLEET_READ_LOCAL_ONLY "fleet database unreachable: this node only"

/* Whether the config sets [fleet] postgres. */
bool fleet_read_configured(const struct conf *c);

/* Whether the config keeps the queue in the database (store = postgres):
 * no local queue to fall back on. */
bool fleet_read_pg_only(const struct conf *c);

/*
 * A handle on the fleet's database as this node, not yet connected
 * (pg_new: the fleet_* functions connect, with bounded waits). NULL when
 * [fleet] postgres is unset. Returns new (pg_close).
 */
struct pg *fleet_read_new(const struct conf *c);

#endif
