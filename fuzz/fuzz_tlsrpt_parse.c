/*
 * fuzz_tlsrpt_parse: libFuzzer target for the reader of received TLS
 * reports (tlsrpt/tlsrpt_parse.c): sniffing, the MIME walk with base64
 * and quoted-printable, gzip inflation under its cap, and the JSON
 * normalization, then the summary printed and the normalized form dumped.
 *
 * The input is handed over in an exact-size copy so that ASan sees any
 * read past its end. A report that is read must keep the promises of
 * tlsrpt_parse.h: counts are integers >= 0, policy-string and mx-host are
 * arrays of strings, and the printed text has no control characters but
 * the line ends.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "tlsrpt/tlsrpt_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_strings(const json_t *arr)
{
	const json_t *v;
	size_t i;

	if (arr == NULL)
		return;
	ASSERT(json_is_array(arr));
	json_array_foreach(arr, i, v)
	{
		ASSERT(json_is_string(v));
	}
}

static void
fuzz_count(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	ASSERT(json_is_integer(v) && json_integer_value(v) >= 0);
}

static void
fuzz_check(const json_t *doc)
{
	const json_t *pols =
	    json_object_get(json_object_get(doc, "report"), "policies");
	const json_t *p, *d, *desc;
	size_t i, j;

	ASSERT(json_is_array(pols));
	json_array_foreach(pols, i, p)
	{
		desc = json_object_get(p, "policy");
		fuzz_strings(json_object_get(desc, "policy-string"));
		fuzz_strings(json_object_get(desc, "mx-host"));
		fuzz_count(json_object_get(p, "summary"),
		    "total-successful-session-count");
		fuzz_count(json_object_get(p, "summary"),
		    "total-failure-session-count");
		json_array_foreach(json_object_get(p, "failure-details"), j, d)
		{
			fuzz_count(d, "failed-session-count");
		}
	}
}

/* The summary as the command prints it: no controls but '\n'. */
static void
fuzz_print(const struct tlsrpt_report *r)
{
	char *out = NULL;
	size_t n = 0, i;
	FILE *fp = open_memstream(&out, &n);

	ASSERT(fp != NULL);
	tlsrpt_report_print(fp, r);
	fclose(fp);
	for (i = 0; i < n; i++)
		ASSERT((unsigned char)out[i] >= 0x20 || out[i] == '\n');
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsrpt_report *r;
	uint8_t *copy = malloc(size > 0 ? size : 1);
	char *err = NULL, *dump;

	memcpy(copy, data, size);
	r = tlsrpt_parse(copy, size, &err);
	ASSERT((r == NULL) != (err == NULL));
	if (r != NULL) {
		fuzz_check(tlsrpt_report_json(r));
		fuzz_print(r);
		dump = json_dumps(tlsrpt_report_json(r), JSON_COMPACT);
		ASSERT(dump != NULL);
		free(dump);
	}
	free(err);
	tlsrpt_report_free(r);
	free(copy);
	return 0;
}
