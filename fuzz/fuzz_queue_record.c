/*
 * fuzz_queue_record: libFuzzer target for what `danerelay trace` reads back
 * from the queue database: an event's fields JSON (written by the delivery
 * code from remote replies, or damaged on disk), its recipient and time,
 * through the event builder, the JSON output and the human printer; and
 * the --since duration parser and the --since/--until time parser (also
 * fed from the console's /trace form).
 *
 * The printer's promise is checked, not just its survival: one event is
 * one line, and no control character (C0, DEL, C1) reaches the terminal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "queue/queue_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Printed text: exactly lines newlines, no other control characters. */
static void
fuzz_check_printed(const char *out, size_t len, size_t lines)
{
	size_t i, nl = 0;
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)out[i];
		if (c == '\n') {
			nl++;
			continue;
		}
		ASSERT(c >= 0x20 && c != 0x7f);
		ASSERT(!(c == 0xc2 && i + 1 < len &&
		    (unsigned char)out[i + 1] >= 0x80 &&
		    (unsigned char)out[i + 1] <= 0x9f));
	}
	ASSERT(nl == lines);
}

static void
fuzz_print(json_t *ev, const char *sender)
{
	json_t *tr = json_array(), *m = json_object(), *evs = json_array();
	char *out = NULL, *dump;
	size_t len = 0;
	FILE *fp;

	json_object_set_new(m, "id", json_string("0123456789abcdef"));
	json_object_set_new(m, "sender",
	    sender != NULL ? json_string(sender) : json_string(""));
	json_object_set_new(m, "message_id", json_string("<x@example.org>"));
	json_array_append_new(evs, ev);
	json_object_set_new(m, "events", evs);
	json_array_append_new(tr, m);
	fp = open_memstream(&out, &len);
	ASSERT(fp != NULL);
	queue_trace_print(fp, tr);
	fclose(fp);
	fuzz_check_printed(out, len, 2);
	free(out);
	dump = json_dumps(tr, JSON_COMPACT);
	ASSERT(dump != NULL);
	free(dump);
	json_decref(tr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	int64_t at = 0;
	time_t secs = 0, when = 0;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (queue_trace_parse_since(text, &secs) == NULL)
		ASSERT(secs >= 1);
	/* --since / --until, and the console's /trace form (network input). */
	(void)queue_trace_parse_when(text, 2000000000, size % 2 == 1, &when);
	if (size >= sizeof(at))
		memcpy(&at, data, sizeof(at));
	/* As stored: fields of an attempt, and as a damaged row. */
	fuzz_print(
	    queue_trace_event(at, "attempt", "bob@example.com", text), NULL);
	/* Arbitrary text where the recipient, type and sender go. */
	fuzz_print(queue_trace_event(0, text, text, NULL), text);
	free(text);
	return 0;
}
