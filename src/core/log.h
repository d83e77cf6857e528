/*
 * log: the one place that writes diagnostics.
 *
 * Lines go to stderr (systemd style) with a level tag. Trace categories
 * (dns, smtp, tls, dane, queue, check) can be switched on at run time with
 * log_trace_enable(); log_trace() costs one branch when its category is off.
 */
#ifndef DR_LOG_H
#define DR_LOG_H

#include <stdarg.h>
#include <stdbool.h>

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

/* Set the most verbose level printed (default LOG_LEVEL_INFO). */
void log_set_level(enum log_level level);

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
