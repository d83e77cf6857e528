/*
 * server_int: what the files of src/server/ share, and nothing outside
 * src/server/ includes. server.c owns the listeners and the list of
 * sessions; server_session.c runs one connection; server_net.c matches
 * client addresses against networks; server_auth.c checks passwords,
 * server_authpool.c runs those checks on worker threads, and
 * server_authfail.c counts failures per client network.
 */
#ifndef DR_SERVER_INT_H
#define DR_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/util.h>

#include "server/server.h"
#include "server/server_authfail.h"
#include "smtp/smtp_server.h"

struct server_authpool;
struct server_authpool_job;
struct server_authfail;
struct server_net;
struct server_session;

/* Defaults for config values left at 0 (every wait has a deadline). */
#define SERVER_MAX_MESSAGE_SIZE   (25u * 1024 * 1024)
#define SERVER_MAX_RECIPIENTS     1000u
#define SERVER_MAX_CONNECTIONS    1000u
#define SERVER_MAX_PER_IP         50u
#define SERVER_COMMAND_TIMEOUT_MS 300000u /* RFC 5321 §4.5.3.2.7 */
#define SERVER_DATA_TIMEOUT_MS    180000u /* RFC 5321 §4.5.3.2.5 */
#define SERVER_AUTH_MAX_FAILURES  5u
#define SERVER_AUTH_LOCKOUT_S     600u

/*
 * AUTH (docs/SERVER.md): password checks run on this many worker threads,
 * with at most this many waiting (more get 454 at once); failures are
 * counted for this many client networks at most; a failed AUTH is
 * answered after a delay that doubles with the network's failures, from
 * the first to the last value below. A locked-out network's attempts are
 * answered after the first delay.
 */
#define SERVER_AUTH_WORKERS      2u
#define SERVER_AUTH_QUEUE        16u
#define SERVER_AUTH_NETS         4096u
#define SERVER_AUTH_DELAY_MS     1000u
#define SERVER_AUTH_DELAY_MAX_MS 8000u

/* ---- server.c: what sessions need from their server ----------------- */

struct event_base *server_base(const struct server *s);

/* The current configuration (defaults filled in). Borrowed. */
const struct server_config *server_cfg(const struct server *s);

/* Whether client address sa may relay without AUTH. */
bool server_relay_allowed(const struct server *s, const struct sockaddr *sa);

/*
 * The session is going away (called once, from server_session's
 * destructor): forget it, and finish a pending shutdown when it was the
 * last one.
 */
void server_session_gone(struct server *s, struct server_session *ss);

/* The pool that runs password checks. Borrowed. */
struct server_authpool *server_auth_pool(const struct server *s);

/*
 * Whether sa's network is locked out of AUTH now ([server]
 * auth_max_failures within auth_lockout); *count: its failures.
 */
bool server_auth_locked(
    struct server *s, const struct sockaddr *sa, unsigned *count);

/*
 * Count a failed AUTH from sa. Returns the network's failures within the
 * window, this one included; *delay_ms: how long to wait before the 535.
 */
unsigned server_auth_failed(
    struct server *s, const struct sockaddr *sa, unsigned *delay_ms);

/* ---- server_session.c ----------------------------------------------- */

/*
 * A session on accepted socket fd (taken over; closed on free) from
 * address sa. refuse != NONE greets with 421 and closes. n numbers the
 * session for logs. Returns new; it frees itself when the connection
 * ends (telling the server), or the server frees it.
 */
struct server_session *server_session_new(struct server *srv,
    evutil_socket_t fd, const struct sockaddr *sa, socklen_t salen,
    enum smtp_server_refuse refuse, unsigned long long n);

/* Send the greeting (or the refusal). Call once, after _new. */
void server_session_start(struct server_session *ss);

/* The server is going down: end now if idle, else after the message. */
void server_session_shutdown(struct server_session *ss);

/* Close at once, without a word. NULL is fine. */
void server_session_free(struct server_session *ss);

/* The client's address (borrowed) and whether it was refused. */
const struct sockaddr *server_session_addr(const struct server_session *ss);
bool server_session_refused(const struct server_session *ss);

/* ---- server_net.c --------------------------------------------------- */

/*
 * Networks from "ADDR/LEN" or bare "ADDR" strings (IPv4 and IPv6),
 * NULL-terminated; NULL or empty = no network. Returns new, or NULL with
 * *errstr (new string) naming the bad entry.
 */
struct server_net *server_net_new(char *const *cidrs, char **errstr);
void server_net_free(struct server_net *n);

/* Whether sa is in one of the networks (IPv4-mapped IPv6 counts as v4). */
bool server_net_match(const struct server_net *n, const struct sockaddr *sa);

/* Whether a and b are the same host (address, not port). */
bool server_net_same_host(const struct sockaddr *a, const struct sockaddr *b);

/* The numeric address of sa ("192.0.2.1", "2001:db8::1") and its port. */
void server_net_ntop(
    const struct sockaddr *sa, char *dst, size_t len, unsigned *port);

/* ---- server_authpool.c: password checks off the loop --------------- */

/*
 * A pool of workers threads (started at the first check) on loop base,
 * with at most queue_max checks waiting. Returns new.
 */
struct server_authpool *server_authpool_new(
    struct event_base *base, unsigned workers, unsigned queue_max);

/*
 * Stop: waits for the checks running (each well under a second), drops
 * the others; their done callbacks never run. NULL is fine.
 */
void server_authpool_free(struct server_authpool *p);

/*
 * Run t (takes ownership) on a worker; done(ok, arg) is called later on
 * the loop, never inside this call. Returns the job (borrowed: valid
 * until done is called or the job is cancelled), or NULL when the queue
 * is full or no worker could start (t is freed; the caller says 454).
 */
struct server_authpool_job *server_authpool_submit(struct server_authpool *p,
    struct server_auth_try *t, void (*done)(bool ok, void *arg), void *arg);

/* The caller no longer wants j's verdict: done is never called. NULL ok. */
void server_authpool_cancel(
    struct server_authpool *p, struct server_authpool_job *j);

/* ---- server_authfail.c: in server_authfail.h (the console uses it) -- */

#endif
