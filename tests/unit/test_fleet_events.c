/*
 * test_fleet_events: what a local event's fields text becomes in
 * dr_events.fields (fleet_events_fields): a JSON object as jansson writes
 * it, anything else kept whole as {"fields_raw": ...} with invalid UTF-8
 * replaced, so that a damaged row never stops the copy
 * (tests/integration/relay_fleet_sync.py copies such rows for real).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_events.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct fields_case {
	const char *in;
	const char *want; /* NULL: fleet_events_fields gives NULL */
};

static void
fields_table(void)
{
	static const struct fields_case cases[] = {
		{ NULL, NULL },
		{ "{\"mx\":\"mx.example\",\"port\":25}",
		    "{\"mx\":\"mx.example\",\"port\":25}" },
		/* Reformatted, order kept. */
		{ "{ \"b\" : 1, \"a\" : [true, null] }",
		    "{\"b\":1,\"a\":[true,null]}" },
		{ "{}", "{}" },
		{ "{\"t\":\"caf\xc3\xa9\"}", "{\"t\":\"caf\xc3\xa9\"}" },
		/* Damaged: cut, not JSON, not an object, trailing garbage. */
		{ "{\"mx\":\"mx.exa",
		    "{\"fields_raw\":\"{\\\"mx\\\":\\\"mx.exa\"}" },
		{ "not json", "{\"fields_raw\":\"not json\"}" },
		{ "[1,2]", "{\"fields_raw\":\"[1,2]\"}" },
		{ "42", "{\"fields_raw\":\"42\"}" },
		{ "{} x", "{\"fields_raw\":\"{} x\"}" },
		{ "", "{\"fields_raw\":\"\"}" },
		/* A number jansson cannot hold: kept whole, not lost. */
		{ "{\"n\":123456789012345678901234567890}",
		    "{\"fields_raw\":\"{\\\"n\\\":123456789012345678901234567890}"
		    "\"}" },
		/* Invalid UTF-8: each bad octet becomes U+FFFD. */
		{ "\xff\xfe x",
		    "{\"fields_raw\":\"\xef\xbf\xbd\xef\xbf\xbd x\"}" },
		{ "{\"a\":\"\xc3(\"}",
		    "{\"fields_raw\":\"{\\\"a\\\":\\\"\xef\xbf\xbd(\\\"}\"}" },
		/* Overlong form and a surrogate are not UTF-8 either. */
		{ "\xc0\xaf", "{\"fields_raw\":\"\xef\xbf\xbd\xef\xbf\xbd\"}" },
		{ "\xed\xa0\x80",
		    "{\"fields_raw\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}" },
	};
	char why[256];
	size_t i;
	char *got;

	for (i = 0; i < NELEM(cases); i++) {
		got = fleet_events_fields(cases[i].in);
		if ((got == NULL) != (cases[i].want == NULL) ||
		    (got != NULL && strcmp(got, cases[i].want) != 0)) {
			snprintf(why, sizeof(why), "case %zu: got %s", i,
			    got != NULL ? got : "(null)");
			T_FAIL(why);
		}
		free(got);
	}
}

/* Whatever comes out is a JSON object (PostgreSQL's json takes it). */
static void
fields_always_object(void)
{
	static const char *const in[] = { "{", "}", "\"", "\\", "{\"a\":}",
		"\x01\x02", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}" };
	json_error_t err;
	json_t *o;
	size_t i;
	char *got;

	for (i = 0; i < NELEM(in); i++) {
		got = fleet_events_fields(in[i]);
		o = got != NULL ? json_loads(got, 0, &err) : NULL;
		if (o == NULL || !json_is_object(o))
			T_FAIL(in[i]);
		json_decref(o);
		free(got);
	}
}

int
main(void)
{
	T_RUN(fields_table);
	T_RUN(fields_always_object);
	T_EXIT();
}
