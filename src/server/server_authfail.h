/*
 * server_authfail: failed logins counted per client network (IPv4
 * address, IPv6 /64), for the lockout and the growing delay of SMTP AUTH
 * (server_session.c) and of the console's login (console/console_auth.c).
 * Pure: time comes in as an argument.
 */
#ifndef DR_SERVER_AUTHFAIL_H
#define DR_SERVER_AUTHFAIL_H

#include <stddef.h>
#include <time.h>

struct server_authfail;
struct sockaddr;

/*
 * A table of at most cap networks (IPv4 address, IPv6 /64). A count
 * lives while failures come less than window seconds apart. Returns new.
 */
struct server_authfail *server_authfail_new(size_t cap);
void server_authfail_free(struct server_authfail *t);

/* Failures of sa's network still within window at now (0: none). */
unsigned server_authfail_count(struct server_authfail *t,
    const struct sockaddr *sa, unsigned window, time_t now);

/*
 * Count one failure of sa's network at now; returns its count, this one
 * included (0 for an address family not counted). A new network takes a
 * free or expired slot, else that of the network idle longest.
 */
unsigned server_authfail_add(struct server_authfail *t,
    const struct sockaddr *sa, unsigned window, time_t now);

/* Networks held (expired ones included, until their slot is reused). */
size_t server_authfail_size(const struct server_authfail *t);

#endif
