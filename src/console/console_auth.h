/*
 * console_auth: who may use the console (private to src/console/).
 *
 * Sessions of users live in memory on the console thread: an id of 32
 * random bytes (the cookie), a CSRF token of 32 more, the user, an idle
 * and an absolute expiry; so do the anonymous ones of login forms. When
 * the console needs no login (loopback without [admin] auth_file), every
 * browser still gets an anonymous session at its first page, so that
 * every POST carries a token only our own pages can know (CSRF); those
 * keep no state (the token is an HMAC of the id under a secret drawn at
 * start), so clients that never send cookies back (Prometheus, scripts)
 * fill no table.
 */
#ifndef DR_CONSOLE_AUTH_H
#define DR_CONSOLE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct console_auth;
struct console_session;
struct sockaddr;

#define CONSOLE_COOKIE       "danerelay_session"
#define CONSOLE_SESSION_IDLE (30 * 60)      /* seconds without a request */
#define CONSOLE_SESSION_MAX  (12 * 60 * 60) /* seconds since the login */

/* Whether pages need a login (auth_file set, or not loopback). */
bool console_auth_required(const struct console_auth *a);

/* Whether /metrics needs a session too. */
bool console_auth_metrics_closed(const struct console_auth *a);

/* The live session named by a Cookie header (NULL allowed), or NULL;
 * its idle time starts again. Give it back with console_auth_release()
 * at the end of the request. */
struct console_session *console_auth_find(
    struct console_auth *a, const char *cookie, time_t now);

/* A new session of user ("" = anonymous). Same contract. */
struct console_session *console_auth_open(
    struct console_auth *a, const char *user, time_t now);

/* The request is done with s (NULL allowed); a stored session stays. */
void console_auth_release(struct console_auth *a, struct console_session *s);

/* End s (logout; NULL allowed) and release it: the caller's s is gone. */
void console_auth_close(struct console_auth *a, struct console_session *s);

/* Its cookie value, CSRF token (64 hex digits each) and user. */
const char *console_session_id(const struct console_session *s);
const char *console_session_csrf(const struct console_session *s);
const char *console_session_user(const struct console_session *s);

/* Whether token (NULL allowed) is s's CSRF token (constant time). */
bool console_session_csrf_ok(
    const struct console_session *s, const char *token);

/*
 * A login attempt from peer. Returns 1 (user and password right), 0
 * (wrong: answer after *wait seconds), -1 (this client network is locked
 * out, by this failure or before: *wait is the lockout).
 */
int console_auth_login(struct console_auth *a, const struct sockaddr *peer,
    const char *user, const char *password, time_t now, unsigned *wait);

#endif
