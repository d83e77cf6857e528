/*
 * fuzz_conf: the configuration parser on arbitrary bytes. It must return a
 * config or a "file:line: error", never crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	}
	conf_free(c);
	free(err);
	return 0;
}
