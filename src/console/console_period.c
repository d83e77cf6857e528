/*
 * console_period: the period picker of /report and /impact, and how the
 * console writes a time.
 */
#include <string.h>

#include "console/console_int.h"

static const struct {
	const char *name;
	time_t length, bucket; /* 24 to 60 points per chart */
} console_periods[] = {
	{ "1h", 3600, 60 * 2 },
	{ "1d", 86400, 3600 },
	{ "7d", 7 * 86400, 4 * 3600 },
	{ "30d", 30 * 86400, 86400 },
};

const char *
console_period(struct console_req *r, time_t now, time_t *since, time_t *bucket)
{
	const char *want = console_arg(r, "period");
	size_t i, pick = 1; /* 1d */

	for (i = 0; want != NULL && i < 4; i++)
		if (strcmp(want, console_periods[i].name) == 0)
			pick = i;
	*since = now - console_periods[pick].length;
	*bucket = console_periods[pick].bucket;
	return console_periods[pick].name;
}

const char *
console_time(time_t t, char buf[CONSOLE_TIME_LEN])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, CONSOLE_TIME_LEN, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
	return buf;
}
