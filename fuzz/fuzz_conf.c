/*
 * fuzz_conf: the configuration parser on arbitrary bytes. It must return a
 * config or a "file:line: error", never crash or leak; and what
 * check-config prints of a config it accepted (conf_dump) must be read
 * back into a config that prints the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
fuzz_dump(const struct conf *c, size_t *len)
{
	char *text = NULL;
	FILE *fp = open_memstream(&text, len);

	if (fp == NULL)
		abort();
	conf_dump(c, fp);
	fclose(fp);
	return text;
}

/* The printed configuration is valid input that prints the same. */
static void
fuzz_roundtrip(const struct conf *c)
{
	size_t len1, len2;
	char *t1 = fuzz_dump(c, &len1), *t2, *err = NULL;
	struct conf *again = conf_parse(t1, len1, "dump", &err);

	if (again == NULL) {
		fprintf(stderr, "dump does not parse: %s\n", err);
		abort();
	}
	t2 = fuzz_dump(again, &len2);
	if (len1 != len2 || memcmp(t1, t2, len1) != 0)
		abort();
	conf_free(again);
	free(t1);
	free(t2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *err = NULL;
	struct conf *c;
	FILE *devnull;

	c = conf_parse((const char *)data, size, "fuzz", &err);
	if (c != NULL) {
		devnull = fopen("/dev/null", "w");
		if (devnull != NULL) {
			conf_dump(c, devnull);
			fclose(devnull);
		}
		fuzz_roundtrip(c);
	}
	conf_free(c);
	free(err);
	return 0;
}
