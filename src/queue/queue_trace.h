/*
 * queue_trace: the story of messages, read back from the queue's event log
 * for `danerelay trace`, as JSON or as human text.
 *
 * Events are stored with their details as a JSON object; the printer shows
 * any field generically as key=value, so a new field written by the
 * delivery code needs no change here. docs/QUEUE.md lists the event types.
 */
#ifndef DR_QUEUE_TRACE_H
#define DR_QUEUE_TRACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct queue;

struct queue_trace_filter {
	const char *message_id; /* queue id or Message-ID (with or without
	                         * <>), or NULL */
	const char *recipient;  /* address, case-insensitive, or NULL */
	const char *domain;     /* recipient domain, or NULL */
	time_t since;           /* messages with an event at or after this;
	                         * 0 = any */
	const char *sender;     /* envelope sender, case-insensitive; "" or
	                         * "<>" the null sender; NULL = any */
	time_t until;           /* messages with an event at or before this
	                         * (and at or after since, the same event);
	                         * 0 = any */
	size_t limit;           /* at most this many messages, the most
	                         * recently received; 0 = all */
};

/*
 * The matching messages, oldest first (with a limit: the newest limit of
 * them, still oldest first), as a JSON array of {id, message_id,
 * sender, kind, received_at, size, events: [{at, type, recipient,
 * fields...}]}, events in the order they happened. With a recipient or
 * domain filter, only message-level events and those of the matching
 * recipients are shown. Returns new (json_decref), or NULL on error
 * (queue_error()).
 */
json_t *queue_trace(struct queue *q, const struct queue_trace_filter *f);

/*
 * One stored event as trace shows it: {at (ISO 8601), type, recipient (or
 * null), then the fields of fields_text}. fields_text may be NULL, or not
 * a JSON object (damaged row): it is then kept as the string "fields_raw".
 * Returns new.
 */
json_t *queue_trace_event(
    int64_t at, const char *type, const char *addr, const char *fields_text);

/*
 * One message as trace shows it, before its events: {id, message_id (or
 * null), sender, kind, received_at (ISO 8601), size}. For queue_trace
 * and fleet_trace alike. Returns new.
 */
json_t *queue_trace_message_new(const char *id, const char *message_id,
    const char *sender, int kind, time_t received_at, int64_t size);

/*
 * Whether an event of recipient addr (NULL: the message itself) is shown
 * under f: with a recipient or domain filter, only the matching
 * recipients' events (and the message's own).
 */
bool queue_trace_shows(const struct queue_trace_filter *f, const char *addr);

/*
 * Human form: one block per message, one line per event, fields as
 * key=value (values quoted and escaped when they hold spaces, quotes or
 * control characters, so one event is always one line). A fleet trace's
 * "node" shows as node=NAME on the message line (that accepted it) and
 * on each event's line (that wrote it); a node's own trace has none.
 */
void queue_trace_print(FILE *fp, const json_t *trace);

/*
 * Parse a --since duration: a number with s, m, h, d or w ("90", "30m",
 * "1h", "2d"). Returns NULL and *secs (>= 1), or a static error text.
 */
const char *queue_trace_parse_since(const char *s, time_t *secs);

/*
 * Parse a --since or --until time: a duration before now as
 * queue_trace_parse_since reads it, or a UTC time "YYYY-MM-DD",
 * "YYYY-MM-DDTHH:MM" or "YYYY-MM-DDTHH:MM:SS" (a space instead of the T,
 * a trailing Z allowed). A date alone means its first second, or with
 * end_of_day its last. Returns NULL and *t, or a static error text.
 */
const char *queue_trace_parse_when(
    const char *s, time_t now, bool end_of_day, time_t *t);

/* Print v to fp as a trace value (the key=value printer's right side). */
void queue_trace_print_value(FILE *fp, const json_t *v);

#endif
