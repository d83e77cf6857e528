/*
 * console: the administrator's web console and /metrics ([admin] listen).
 *
 * It runs on a thread of its own with its own libevent loop, its own
 * connection to the queue and TLS-RPT stores and its own resolver for
 * /check, so that no page, however slow its query, ever holds up the
 * delivery loop (docs/CONSOLE.md says why this is the second exception to
 * "one thread", and what the thread shares: the metrics registry's atomics
 * only). Pages read through the same store interfaces as the `trace`,
 * `queue`, `report` and `tlsrpt` commands.
 *
 * CONTRACT (issue 11): relay/relay.c calls console_start, console_stop
 * and console_guard_set.
 */
#ifndef DR_CONSOLE_H
#define DR_CONSOLE_H

#include <stdbool.h>

struct conf;
struct console;
struct sockaddr;

/*
 * Start the console described by c's [admin] section (NULL when [admin]
 * listen is not set: nothing to do). The listening socket is bound before
 * this returns (so that a port in use is an error at start, and privileges
 * can be dropped afterwards); returns NULL with *errstr (new) on failure.
 */
struct console *console_start(const struct conf *c, char **errstr);

/* Stop the thread, close everything (NULL allowed). */
void console_stop(struct console *con);

/*
 * The inbound DANE guard (relay/relay_guard.c) as the overview shows it.
 * relay/ sets it on the main thread at start and reload; the console
 * reads it on its own (an atomic: nothing else is shared).
 */
enum console_guard {
	CONSOLE_GUARD_UNKNOWN, /* not run yet */
	CONSOLE_GUARD_OFF,     /* [server] tlsa_guard = no */
	CONSOLE_GUARD_NO_TLS,  /* no [server] tls_cert: nothing to guard */
	CONSOLE_GUARD_NO_TLSA, /* no secure TLSA of ours: nothing to match */
	CONSOLE_GUARD_MATCH,   /* our certificate matches our TLSA */
};
void console_guard_set(enum console_guard g);
enum console_guard console_guard_get(void);
const char *console_guard_str(enum console_guard g);

/* 127.0.0.0/8 or ::1: reachable from this host only (no login needed). */
bool console_addr_loopback(const struct sockaddr *sa);

#endif
