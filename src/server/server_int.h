/*
 * server_int: what the files of src/server/ share, and nothing outside
 * src/server/ includes. server.c owns the listeners and the list of
 * sessions; server_session.c runs one connection; server_net.c matches
 * client addresses against networks; server_auth.c checks passwords.
 */
#ifndef DR_SERVER_INT_H
#define DR_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "server/server.h"
#include "smtp/smtp_server.h"

struct server_net;
struct server_session;

/* Defaults for config values left at 0 (every wait has a deadline). */
#define SERVER_MAX_MESSAGE_SIZE   (25u * 1024 * 1024)
#define SERVER_MAX_RECIPIENTS     1000u
#define SERVER_MAX_CONNECTIONS    1000u
#define SERVER_MAX_PER_IP         50u
#define SERVER_COMMAND_TIMEOUT_MS 300000u /* RFC 5321 §4.5.3.2.7 */
#define SERVER_DATA_TIMEOUT_MS    180000u /* RFC 5321 §4.5.3.2.5 */

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

#endif
