/*
 * fleet_events: the copy of a node's local trace (store = sqlite) into
 * the fleet database: the rows of the queue's events table after
 * dr_nodes.events_mark go to dr_events, the envelopes of the messages
 * they name to dr_messages (body NULL), in batches of FLEET_EVENTS_BATCH
 * rows, each batch and the new mark in one PostgreSQL transaction.
 * (node, local_id) is unique in dr_events, so a batch copied again after a
 * crash between COMMIT and anything else counts once.
 *
 * Used by the copying thread (fleet_sync.c) and `danerelay fleet`.
 */
#ifndef DR_FLEET_EVENTS_H
#define DR_FLEET_EVENTS_H

#include <time.h>

struct pg;
struct fleet_events;

#define FLEET_EVENTS_BATCH 2000

/*
 * A read-only SQLite connection of its own to the queue in dir
 * (queue.db), kept open for the life of the object: closing a file
 * descriptor of a database would drop the POSIX locks the daemon's own
 * connection holds on it, so the file is never opened any other way.
 * Returns new, or NULL with *errstr (new string).
 */
struct fleet_events *fleet_events_open(const char *dir, char **errstr);
void fleet_events_close(struct fleet_events *e); /* NULL is fine */

/*
 * Copy every local event after the node's events_mark, batch after
 * batch, until none is left or until (a time(), 0: no limit) has
 * passed. *copied: the rows dr_events gained. 0 all copied, 1 some left
 * when until passed, or -1 (pg_error; a local error is set there too
 * with pg_fail). The batches committed before a failure stay copied.
 */
int fleet_events_push(
    struct fleet_events *e, struct pg *p, time_t until, long long *copied);

/*
 * Remove from the fleet database the copy of this node's finished
 * messages that had no event since before: their envelopes (body NULL,
 * no recipient row: copies, never a store = postgres message) and events,
 * as queue_purge() does for the local queue, so that a fleet of local
 * queues keeps QUEUE_REPORT_MAX_DAYS of trace and no more. Short
 * statements of FLEET_PURGE_CHUNK messages. Returns the number removed,
 * or -1 (pg_error).
 */
#define FLEET_PURGE_CHUNK 2000
long long fleet_events_purge(struct pg *p, time_t before);

/* The highest local event id (0: none), -1 on error. */
long long fleet_events_local_max(struct fleet_events *e);

/* The node's events_mark as the last push left it (0 before any). */
long long fleet_events_mark(const struct fleet_events *e);

/*
 * The fields text of a local event as dr_events.fields takes it: a JSON
 * object, as jansson writes it; anything else (damaged text, not JSON,
 * not an object, not UTF-8) as {"fields_raw": "the text"}, invalid
 * UTF-8 replaced by U+FFFD, so that one damaged row never stops the
 * copy. NULL for NULL. Returns new.
 */
char *fleet_events_fields(const char *text);

#endif
