/*
 * log: stderr logging with levels and trace categories.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level log_level = LOG_LEVEL_INFO;
static unsigned log_cats;

static const struct {
	const char *name;
	enum log_cat cat;
} log_cat_names[] = {
	{ "dns", LOG_CAT_DNS },
	{ "smtp", LOG_CAT_SMTP },
	{ "tls", LOG_CAT_TLS },
	{ "dane", LOG_CAT_DANE },
	{ "queue", LOG_CAT_QUEUE },
	{ "check", LOG_CAT_CHECK },
};

void
log_set_level(enum log_level level)
{
	log_level = level;
}

static int
log_cat_lookup(const char *name, size_t len, unsigned *out)
{
	size_t i;

	if (len == 3 && strncmp(name, "all", 3) == 0) {
		*out = ~0u;
		return 0;
	}
	for (i = 0; i < sizeof(log_cat_names) / sizeof(log_cat_names[0]); i++) {
		if (strlen(log_cat_names[i].name) == len &&
		    strncmp(log_cat_names[i].name, name, len) == 0) {
			*out = (unsigned)log_cat_names[i].cat;
			return 0;
		}
	}
	return -1;
}

int
log_trace_enable(const char *list, const char **errstr)
{
	const char *p = list, *end;
	unsigned bit;

	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if (log_cat_lookup(p, (size_t)(end - p), &bit) == -1) {
			*errstr = "unknown trace category (dns, smtp, tls, "
			          "dane, queue, check, all)";
			return -1;
		}
		log_cats |= bit;
		p = *end == ',' ? end + 1 : end;
	}
	if (log_cats != 0 && log_level < LOG_LEVEL_DEBUG)
		log_level = LOG_LEVEL_DEBUG;
	return 0;
}

bool
log_trace_on(enum log_cat cat)
{
	return (log_cats & (unsigned)cat) != 0;
}

static void log_vwrite(const char *, const char *, va_list, int)
    __attribute__((format(printf, 2, 0)));

static void
log_vwrite(const char *tag, const char *fmt, va_list ap, int err)
{
	char line[4096];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (err != 0)
		fprintf(
		    stderr, "danerelay: %s%s: %s\n", tag, line, strerror(err));
	else
		fprintf(stderr, "danerelay: %s%s\n", tag, line);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	log_vwrite("warning: ", fmt, ap, err);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("warning: ", fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	log_vwrite("", fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	log_vwrite("debug: ", fmt, ap, 0);
	va_end(ap);
}

void
log_trace(enum log_cat cat, const char *fmt, ...)
{
	va_list ap;

	if (!log_trace_on(cat))
		return;
	va_start(ap, fmt);
	log_vwrite("trace: ", fmt, ap, 0);
	va_end(ap);
}

void
fatal(int ex, const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	log_vwrite("fatal: ", fmt, ap, err);
	va_end(ap);
	exit(ex);
}

void
fatalx(int ex, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(ex);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("panic: ", fmt, ap, 0);
	va_end(ap);
	abort();
}
