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
 * CONTRACT (issue 11): relay/relay.c calls these three.
 */
#ifndef DR_CONSOLE_H
#define DR_CONSOLE_H

struct conf;
struct console;

/*
 * Start the console described by c's [admin] section (NULL when [admin]
 * listen is not set: nothing to do). The listening socket is bound before
 * this returns (so that a port in use is an error at start, and privileges
 * can be dropped afterwards); returns NULL with *errstr (new) on failure.
 */
struct console *console_start(const struct conf *c, char **errstr);

/* Stop the thread, close everything (NULL allowed). */
void console_stop(struct console *con);

#endif
