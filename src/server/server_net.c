/*
 * server_net: client addresses against CIDR networks, for the relay
 * decision ([server] relay_networks) and the per-address connection limit.
 *
 * Addresses are compared as byte strings under a prefix mask; an
 * IPv4-mapped IPv6 address (::ffff:192.0.2.1) is taken as the IPv4
 * address it carries, so a dual-stack socket cannot dodge an IPv4 rule.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "core/xmalloc.h"
#include "server/server_int.h"

struct server_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned bits;
};

struct server_net {
	struct server_cidr *v;
	size_t n;
};

/* The address bytes of sa (IPv4-mapped IPv6 made IPv4). */
static int
server_net_bytes(const struct sockaddr *sa, unsigned char *out, int *family)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET) {
		memcpy(out, &sin->sin_addr, 4);
		*family = AF_INET;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	if (memcmp(&sin6->sin6_addr, mapped, sizeof(mapped)) == 0) {
		memcpy(out, (const unsigned char *)&sin6->sin6_addr + 12, 4);
		*family = AF_INET;
	} else {
		memcpy(out, &sin6->sin6_addr, 16);
		*family = AF_INET6;
	}
	return 0;
}

/* Whether the first bits of a and b agree. */
static bool
server_net_prefix_eq(
    const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Whether the bits after the prefix are all zero. */
static bool
server_net_host_bits_zero(const struct server_cidr *c)
{
	unsigned char masked[16] = { 0 };
	unsigned full = c->bits / 8, rest = c->bits % 8;

	memcpy(masked, c->addr, full);
	if (rest != 0)
		masked[full] =
		    (unsigned char)(c->addr[full] & (0xff << (8 - rest)));
	return memcmp(masked, c->addr, sizeof(masked)) == 0;
}

/*
 * One "ADDR[/LEN]". Host bits after the prefix are an error, as in
 * Postfix: "127.0.0.1/8" is most likely a typo for something narrower.
 */
static const char *
server_net_parse(const char *s, struct server_cidr *c)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned max;
	uint64_t bits;

	if (n == 0 || n >= sizeof(addr))
		return "expected ADDR/LEN";
	memcpy(addr, s, n);
	addr[n] = '\0';
	memset(c->addr, 0, sizeof(c->addr));
	if (inet_pton(AF_INET, addr, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, c->addr) == 1)
		c->family = AF_INET6;
	else
		return "not an IPv4 or IPv6 address";
	max = c->family == AF_INET ? 32 : 128;
	if (slash == NULL)
		bits = max;
	else if (str_to_uint(slash + 1, 0, max, &bits) == -1)
		return "bad prefix length";
	c->bits = (unsigned)bits;
	if (!server_net_host_bits_zero(c))
		return "host bits set after the prefix length";
	/* ::ffff:a.b.c.d/n is the IPv4 network it maps. */
	if (c->family == AF_INET6 && c->bits >= 96) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
		int fam;

		memcpy(&sin6.sin6_addr, c->addr, 16);
		server_net_bytes((const struct sockaddr *)&sin6, c->addr, &fam);
		if (fam == AF_INET) {
			c->family = AF_INET;
			c->bits -= 96;
			memset(c->addr + 4, 0, 12);
		}
	}
	return NULL;
}

struct server_net *
server_net_new(char *const *cidrs, char **errstr)
{
	struct server_net *n = xcalloc(1, sizeof(*n));
	const char *why;
	size_t i, count = 0;

	while (cidrs != NULL && cidrs[count] != NULL)
		count++;
	n->v = xcalloc(count > 0 ? count : 1, sizeof(*n->v));
	for (i = 0; i < count; i++) {
		if ((why = server_net_parse(cidrs[i], &n->v[i])) != NULL) {
			*errstr =
			    xasprintf("relay_networks: %s: %s", cidrs[i], why);
			server_net_free(n);
			return NULL;
		}
	}
	n->n = count;
	return n;
}

void
server_net_free(struct server_net *n)
{
	if (n == NULL)
		return;
	free(n->v);
	free(n);
}

bool
server_net_match(const struct server_net *n, const struct sockaddr *sa)
{
	unsigned char addr[16] = { 0 };
	int family;
	size_t i;

	if (n == NULL || server_net_bytes(sa, addr, &family) == -1)
		return false;
	for (i = 0; i < n->n; i++)
		if (n->v[i].family == family &&
		    server_net_prefix_eq(n->v[i].addr, addr, n->v[i].bits))
			return true;
	return false;
}

bool
server_net_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	unsigned char x[16] = { 0 }, y[16] = { 0 };
	int fx, fy;

	if (server_net_bytes(a, x, &fx) == -1 ||
	    server_net_bytes(b, y, &fy) == -1)
		return false;
	return fx == fy && memcmp(x, y, sizeof(x)) == 0;
}

void
server_net_ntop(
    const struct sockaddr *sa, char *dst, size_t len, unsigned *port)
{
	unsigned char addr[16] = { 0 };
	int family;

	*port = 0;
	if (server_net_bytes(sa, addr, &family) == -1 ||
	    inet_ntop(family, addr, dst, (socklen_t)len) == NULL) {
		snprintf(dst, len, "?");
		return;
	}
	if (sa->sa_family == AF_INET)
		*port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else
		*port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}
