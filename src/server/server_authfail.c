/*
 * server_authfail: failed AUTH attempts counted per client network, for
 * the lockout and the growing delay of server_session (docs/SERVER.md).
 *
 * A network is an IPv4 address (an IPv4-mapped IPv6 one counts as IPv4)
 * or an IPv6 /64, the block one subscriber usually holds: counting single
 * IPv6 addresses would let one client guess from 2^64 of them. A count
 * lives while failures keep coming less than `window` seconds apart; one
 * more than that after the previous failure starts it again. A network
 * that has reached the limit is locked out until `window` seconds after
 * its last failure (attempts meanwhile are not checked, so they do not
 * count). A success does not reset the count: a client holding one good
 * password must not clear the way for guesses at the others.
 *
 * The table is a plain array searched linearly, capped at cap entries:
 * a new network takes the slot of an expired one, else of the one whose
 * last failure is oldest. Pure: time comes in as an argument.
 */
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "server/server_int.h"

#define AUTHFAIL_KEY_LEN 9 /* family tag, then 4 or 8 octets */

struct server_authfail_entry {
	unsigned char key[AUTHFAIL_KEY_LEN];
	unsigned count;
	time_t last; /* the last failure counted */
};

struct server_authfail {
	struct server_authfail_entry *v;
	size_t n, alloc, cap; /* n <= alloc <= cap */
};

struct server_authfail *
server_authfail_new(size_t cap)
{
	struct server_authfail *t = xcalloc(1, sizeof(*t));

	ASSERT(cap > 0);
	t->cap = cap;
	return t;
}

void
server_authfail_free(struct server_authfail *t)
{
	if (t == NULL)
		return;
	free(t->v);
	free(t);
}

size_t
server_authfail_size(const struct server_authfail *t)
{
	return t->n;
}

/* The network of sa as a key; -1 for a family we do not count. */
static int
server_authfail_key(const struct sockaddr *sa, unsigned char *key)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	const unsigned char *a6 = s6->sin6_addr.s6_addr;

	memset(key, 0, AUTHFAIL_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1,
		    &((const struct sockaddr_in *)sa)->sin_addr.s_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		key[0] = 4;
		memcpy(key + 1, a6 + 12, 4);
	} else {
		key[0] = 6;
		memcpy(key + 1, a6, 8); /* the /64 */
	}
	return 0;
}

static bool
server_authfail_live(
    const struct server_authfail_entry *e, unsigned window, time_t now)
{
	return e->count > 0 && now - e->last < (time_t)window;
}

static struct server_authfail_entry *
server_authfail_find(struct server_authfail *t, const unsigned char *key)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (memcmp(t->v[i].key, key, AUTHFAIL_KEY_LEN) == 0)
			return &t->v[i];
	return NULL;
}

unsigned
server_authfail_count(struct server_authfail *t, const struct sockaddr *sa,
    unsigned window, time_t now)
{
	unsigned char key[AUTHFAIL_KEY_LEN];
	struct server_authfail_entry *e;

	if (server_authfail_key(sa, key) == -1 ||
	    (e = server_authfail_find(t, key)) == NULL ||
	    !server_authfail_live(e, window, now))
		return 0;
	return e->count;
}

/* A slot for a new network: a free one, an expired one, the oldest. */
static struct server_authfail_entry *
server_authfail_slot(struct server_authfail *t, unsigned window, time_t now)
{
	struct server_authfail_entry *oldest = NULL;
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (!server_authfail_live(&t->v[i], window, now))
			return &t->v[i];
		if (oldest == NULL || t->v[i].last < oldest->last)
			oldest = &t->v[i];
	}
	if (t->n == t->cap)
		return oldest;
	if (t->n == t->alloc) {
		/* Grow by doubling, never past the cap. */
		t->alloc = t->alloc == 0 ? 16 : t->alloc * 2;
		if (t->alloc > t->cap)
			t->alloc = t->cap;
		t->v = xreallocarray(t->v, t->alloc, sizeof(*t->v));
	}
	return &t->v[t->n++];
}

unsigned
server_authfail_add(struct server_authfail *t, const struct sockaddr *sa,
    unsigned window, time_t now)
{
	unsigned char key[AUTHFAIL_KEY_LEN];
	struct server_authfail_entry *e;

	if (server_authfail_key(sa, key) == -1)
		return 0;
	if ((e = server_authfail_find(t, key)) == NULL) {
		e = server_authfail_slot(t, window, now);
		memcpy(e->key, key, AUTHFAIL_KEY_LEN);
		e->count = 0;
	} else if (!server_authfail_live(e, window, now))
		e->count = 0;
	if (e->count < UINT_MAX)
		e->count++;
	e->last = now;
	return e->count;
}
