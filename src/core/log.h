/*
 * log: the one place that writes diagnostics.
 *
 * Commands run by hand (check, queue, ...) print "danerelay: TEXT" on
 * stderr. The daemon (`serve`) calls log_configure() and then writes each
 * line to one of:
 *   stderr   "2026-01-31T12:00:00.123Z danerelay[PID]: LEVEL: TEXT"
 *   journal  "<N>TEXT" on stderr, when stderr is systemd's journal stream
 *            (JOURNAL_STREAM, sd-daemon(3) priority prefix)
 *   syslog   a datagram to the syslog socket (/dev/log), RFC 3164 form,
 *            with the facility and the severity of the line
 * and in [log] format = json one JSON object per line instead of TEXT.
 * Every line is built in a buffer and written with one write(2) or
 * send(2), so that the delivery loop and the console thread never mix
 * their lines. Trace categories (dns, smtp, tls, dane, queue, check) can
 * be switched on with log_trace_enable(); log_trace() costs one branch
 * when its category is off.
 */
#ifndef DR_LOG_H
#define DR_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define DR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DR_NORETURN     __attribute__((noreturn))

enum log_level {
	LOG_LEVEL_ERR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_cat {
	LOG_CAT_DNS = 1 << 0,
	LOG_CAT_SMTP = 1 << 1,
	LOG_CAT_TLS = 1 << 2,
	LOG_CAT_DANE = 1 << 3,
	LOG_CAT_QUEUE = 1 << 4,
	LOG_CAT_CHECK = 1 << 5,
};

/*
 * A named value that a line carries besides its text: in format = json
 * it becomes a member of the line's object ("to": "a@example.com"); in
 * text it is not printed (the text says it already). Strings are borrowed
 * for the call.
 */
struct log_field {
	const char *key;
	const char *str; /* NULL: num is the value */
	long long num;
};

#define LOG_STR(k, v)       \
	{                   \
		(k), (v), 0 \
	}
#define LOG_NUM(k, v)                     \
	{                                 \
		(k), NULL, (long long)(v) \
	}

/*
 * The daemon's settings ([log] in the configuration), as written there;
 * NULL members take the default (auto, text, info, mail, /dev/log).
 */
struct log_config {
	const char *target;        /* auto|stderr|syslog|journal */
	const char *format;        /* text|json */
	const char *level;         /* warning|info|debug */
	const char *facility;      /* mail|daemon|user|local0..local7 */
	const char *syslog_socket; /* datagram socket of the syslog daemon */
};

/* Set the most verbose level printed from the command line (-v); the
 * configured level cannot lower it. Default LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);

/*
 * Switch to daemon logging per lc. Call before any thread starts: the
 * target and the syslog socket are not changed again. target auto picks:
 * journal when JOURNAL_STREAM names the device and inode of stderr;
 * stderr when stderr is a terminal, a file or a pipe (`serve 2>FILE`);
 * syslog otherwise (closed, /dev/null, a socket). Returns 0, or -1 with
 * *errstr (static) for a value it does not know.
 */
int log_configure(const struct log_config *lc, const char **errstr);

/*
 * SIGHUP: apply a new format and level (NULL = default); safe while
 * other threads log. Returns 0 or -1 with *errstr (static).
 */
int log_reconfigure(const char *format, const char *level, const char **errstr);

/* The target in use: "plain" (commands), "stderr", "journal", "syslog". */
const char *log_target_name(void);

/* NULL when value is a valid [log] target/format/level/facility; else a
 * static error text (for the configuration table). */
const char *log_check_target(const char *value);
const char *log_check_format(const char *value);
const char *log_check_level(const char *value);
const char *log_check_facility(const char *value);

/*
 * Enable trace categories from a comma-separated list ("dns,smtp" or "all").
 * Returns 0, or -1 with *errstr naming the unknown category.
 */
int log_trace_enable(const char *list, const char **errstr);

/* True when trace category cat is on. */
bool log_trace_on(enum log_cat cat);

void log_warn(const char *fmt, ...)
    DR_PRINTF(1, 2); /* appends strerror(errno) */
void log_warnx(const char *fmt, ...) DR_PRINTF(1, 2);
void log_info(const char *fmt, ...) DR_PRINTF(1, 2);
void log_debug(const char *fmt, ...) DR_PRINTF(1, 2);
void log_trace(enum log_cat cat, const char *fmt, ...) DR_PRINTF(2, 3);

/*
 * A line at level (LOG_LEVEL_WARN, _INFO or _DEBUG) that carries n
 * structured fields for format = json (the canonical delivery and
 * reception lines). The text is the same as log_info()'s would be.
 */
void log_fields(enum log_level level, const struct log_field *f, size_t n,
    const char *fmt, ...) DR_PRINTF(4, 5);

/* Startup failures: print and exit with the sysexits(3) code ex. */
void fatal(int ex, const char *fmt, ...)
    DR_PRINTF(2, 3) DR_NORETURN; /* with errno */
void fatalx(int ex, const char *fmt, ...) DR_PRINTF(2, 3) DR_NORETURN;

/* Broken invariant: print and abort() so that a core is left behind. */
void panic(const char *fmt, ...) DR_PRINTF(1, 2) DR_NORETURN;

#define ASSERT(x)                                                           \
	do {                                                                \
		if (!(x))                                                   \
			panic("assertion failed: %s (%s:%d)", #x, __FILE__, \
			    __LINE__);                                      \
	} while (0)

#endif
