/*
 * log: levels, trace categories, text or JSON lines; log_sink.c writes
 * them where [log] target says.
 *
 * The level and the format can change on SIGHUP while the console thread
 * logs: they are atomics. Everything else is set before threads start.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "core/log_sink.h"

#define LOG_MSG_MAX  4096
#define LOG_BODY_MAX 16000

/* -v, -T: the floor of the configured level (none: ERR). */
static enum log_level log_cli_level = LOG_LEVEL_ERR;
static atomic_int log_level = LOG_LEVEL_INFO;
static atomic_int log_json;
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

static const struct {
	const char *name;
	int facility;
} log_facilities[] = {
	{ "mail", LOG_MAIL },
	{ "daemon", LOG_DAEMON },
	{ "user", LOG_USER },
	{ "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static enum log_level
log_level_now(void)
{
	return (enum log_level)atomic_load_explicit(
	    &log_level, memory_order_relaxed);
}

void
log_set_level(enum log_level level)
{
	log_cli_level = level;
	atomic_store(&log_level, level);
}

const char *
log_check_target(const char *v)
{
	if (strcmp(v, "auto") == 0 || strcmp(v, "stderr") == 0 ||
	    strcmp(v, "syslog") == 0 || strcmp(v, "journal") == 0)
		return NULL;
	return "expected auto, stderr, syslog or journal";
}

const char *
log_check_format(const char *v)
{
	if (strcmp(v, "text") == 0 || strcmp(v, "json") == 0)
		return NULL;
	return "expected text or json";
}

const char *
log_check_level(const char *v)
{
	if (strcmp(v, "warning") == 0 || strcmp(v, "info") == 0 ||
	    strcmp(v, "debug") == 0)
		return NULL;
	return "expected warning, info or debug";
}

static int
log_facility_lookup(const char *v)
{
	size_t i;

	for (i = 0; i < NELEM(log_facilities); i++)
		if (strcmp(v, log_facilities[i].name) == 0)
			return log_facilities[i].facility;
	return -1;
}

const char *
log_check_facility(const char *v)
{
	if (log_facility_lookup(v) == -1)
		return "expected mail, daemon, user or local0 ... local7";
	return NULL;
}

int
log_reconfigure(const char *format, const char *level, const char **errstr)
{
	enum log_level lv;

	format = format != NULL ? format : "text";
	level = level != NULL ? level : "info";
	if ((*errstr = log_check_format(format)) != NULL ||
	    (*errstr = log_check_level(level)) != NULL)
		return -1;
	lv = strcmp(level, "debug") == 0  ? LOG_LEVEL_DEBUG :
	    strcmp(level, "warning") == 0 ? LOG_LEVEL_WARN :
	                                    LOG_LEVEL_INFO;
	/* -v and -T on the command line win over a quieter file. */
	if (lv < log_cli_level)
		lv = log_cli_level;
	atomic_store(&log_level, lv);
	atomic_store(&log_json, strcmp(format, "json") == 0);
	return 0;
}

int
log_configure(const struct log_config *lc, const char **errstr)
{
	const char *target = lc->target != NULL ? lc->target : "auto";
	enum log_sink_kind kind;
	int facility;

	if ((*errstr = log_check_target(target)) != NULL)
		return -1;
	facility =
	    log_facility_lookup(lc->facility != NULL ? lc->facility : "mail");
	if (facility == -1) {
		*errstr = log_check_facility(lc->facility);
		return -1;
	}
	if (log_reconfigure(lc->format, lc->level, errstr) == -1)
		return -1;
	kind = strcmp(target, "stderr") == 0 ? LOG_SINK_STDERR :
	    strcmp(target, "syslog") == 0    ? LOG_SINK_SYSLOG :
	    strcmp(target, "journal") == 0   ? LOG_SINK_JOURNAL :
	                                       log_sink_auto();
	log_sink_set(kind, facility, lc->syslog_socket);
	return 0;
}

const char *
log_target_name(void)
{
	switch (log_sink_kind()) {
	case LOG_SINK_PLAIN:
		return "plain";
	case LOG_SINK_STDERR:
		return "stderr";
	case LOG_SINK_JOURNAL:
		return "journal";
	case LOG_SINK_SYSLOG:
		return "syslog";
	}
	return "?";
}

static int
log_cat_lookup(const char *name, size_t len, unsigned *out)
{
	size_t i;

	if (len == 3 && strncmp(name, "all", 3) == 0) {
		*out = ~0u;
		return 0;
	}
	for (i = 0; i < NELEM(log_cat_names); i++) {
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
	if (log_cats != 0 && log_cli_level < LOG_LEVEL_DEBUG)
		log_set_level(LOG_LEVEL_DEBUG);
	return 0;
}

bool
log_trace_on(enum log_cat cat)
{
	return (log_cats & (unsigned)cat) != 0;
}

/* A capped string being built; what does not fit sets full. */
struct log_out {
	char *p;
	size_t len, cap;
	bool full;
};

static void
log_out_add(struct log_out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - 1 - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* Length of the valid UTF-8 sequence at s (RFC 3629 §4), 0 if invalid. */
static size_t
log_utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, surrogate, above U+10FFFF */
	return n;
}

/* s as a JSON string (RFC 8259 §7); invalid UTF-8 becomes U+FFFD. */
static void
log_out_json_str(struct log_out *o, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];
	size_t n;

	log_out_add(o, "\"", 1);
	while (*u != '\0') {
		if (*u == '"' || *u == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*u++;
			log_out_add(o, esc, 2);
		} else if (*u < 0x20 || *u == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *u++);
			log_out_add(o, esc, 6);
		} else if (*u < 0x80) {
			log_out_add(o, (const char *)u++, 1);
		} else if ((n = log_utf8_len(u)) > 0) {
			log_out_add(o, (const char *)u, n);
			u += n;
		} else {
			log_out_add(o, "\\ufffd", 6);
			u++;
		}
	}
	log_out_add(o, "\"", 1);
}

static void
log_out_member(struct log_out *o, const char *key)
{
	log_out_add(o, ",", 1);
	log_out_json_str(o, key);
	log_out_add(o, ":", 1);
}

/* {"ts","level","pid","msg", fields...}; -1 when it does not fit. */
static int
log_json_body(struct log_out *o, const char *level, const char *msg,
    const struct log_field *f, size_t nf)
{
	char num[32];
	size_t i;

	log_out_add(o, "{\"ts\":", 6);
	log_sink_timestamp(num, sizeof(num));
	log_out_json_str(o, num);
	log_out_member(o, "level");
	log_out_json_str(o, level);
	log_out_member(o, "pid");
	snprintf(num, sizeof(num), "%ld", (long)getpid());
	log_out_add(o, num, strlen(num));
	log_out_member(o, "msg");
	log_out_json_str(o, msg);
	for (i = 0; i < nf; i++) {
		log_out_member(o, f[i].key);
		if (f[i].str != NULL)
			log_out_json_str(o, f[i].str);
		else {
			snprintf(num, sizeof(num), "%lld", f[i].num);
			log_out_add(o, num, strlen(num));
		}
	}
	log_out_add(o, "}", 1);
	return o->full ? -1 : 0;
}

/*
 * A line too long for the buffer: the message cut short, without the
 * fields, marked, so that it still parses (6 bytes per escaped byte fit).
 */
static void
log_json_short(struct log_out *o, const char *level, char *msg)
{
	static const struct log_field cut = LOG_NUM("truncated", 1);

	if (strlen(msg) > LOG_BODY_MAX / 8)
		msg[LOG_BODY_MAX / 8] = '\0';
	o->len = 0;
	o->full = false;
	(void)log_json_body(o, level, msg, &cut, 1);
}

static void log_vwrite(int, const char *, const struct log_field *, size_t,
    const char *, va_list, int) __attribute__((format(printf, 5, 0)));

/* prio: syslog severity; tag: its word in text and in "level". */
static void
log_vwrite(int prio, const char *tag, const struct log_field *f, size_t nf,
    const char *fmt, va_list ap, int err)
{
	char msg[LOG_MSG_MAX], body[LOG_BODY_MAX];
	struct log_out o = { body, 0, sizeof(body), false };
	size_t n;
	int json = atomic_load_explicit(&log_json, memory_order_relaxed) &&
	    log_sink_kind() != LOG_SINK_PLAIN;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err != 0) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(err));
	}
	if (json && log_json_body(&o, tag, msg, f, nf) == -1)
		log_json_short(&o, tag, msg);
	log_sink_write(prio, tag, json ? body : msg, json);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, "warning", NULL, 0, fmt, ap, err);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, "warning", NULL, 0, fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_level_now() < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_INFO, "info", NULL, 0, fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level_now() < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, "debug", NULL, 0, fmt, ap, 0);
	va_end(ap);
}

void
log_fields(enum log_level level, const struct log_field *f, size_t n,
    const char *fmt, ...)
{
	va_list ap;
	int prio = level <= LOG_LEVEL_WARN ? LOG_WARNING :
	    level == LOG_LEVEL_INFO        ? LOG_INFO :
	                                     LOG_DEBUG;

	if (log_level_now() < level && level > LOG_LEVEL_WARN)
		return;
	va_start(ap, fmt);
	log_vwrite(prio,
	    prio == LOG_WARNING  ? "warning" :
	        prio == LOG_INFO ? "info" :
	                           "debug",
	    f, n, fmt, ap, 0);
	va_end(ap);
}

void
log_trace(enum log_cat cat, const char *fmt, ...)
{
	va_list ap;

	if (!log_trace_on(cat))
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, "trace", NULL, 0, fmt, ap, 0);
	va_end(ap);
}

void
fatal(int ex, const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, "fatal", NULL, 0, fmt, ap, err);
	va_end(ap);
	exit(ex);
}

void
fatalx(int ex, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, "fatal", NULL, 0, fmt, ap, 0);
	va_end(ap);
	exit(ex);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, "panic", NULL, 0, fmt, ap, 0);
	va_end(ap);
	abort();
}
