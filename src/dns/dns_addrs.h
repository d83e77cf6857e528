/*
 * dns_addrs: the addresses of a host name, A and AAAA looked up side by
 * side through the project's resolver, for clients that connect by
 * address (the MTA-STS policy fetch, TLS-RPT report POSTs): private DNS
 * trees work and nothing blocks in getaddrinfo.
 */
#ifndef DR_DNS_ADDRS_H
#define DR_DNS_ADDRS_H

#include <stddef.h>

struct dns_resolver;
struct dns_addrs_lookup;

struct dns_addrs_result {
	char *const *addrs; /* numeric IPv4 first, then IPv6; borrowed */
	size_t n;
	const char *error; /* the first failed lookup's reason, or NULL */
};

/* Called once, with both answers in, never from inside dns_addrs(). The
 * result is borrowed for the call; the lookup is gone afterwards. */
typedef void dns_addrs_cb(const struct dns_addrs_result *r, void *arg);

/* Look up host (at most max addresses). Returns a handle for
 * dns_addrs_cancel(). */
struct dns_addrs_lookup *dns_addrs(struct dns_resolver *r, const char *host,
    size_t max, dns_addrs_cb *cb, void *arg);

/* The callback will not run. NULL is fine; not after the callback ran. */
void dns_addrs_cancel(struct dns_addrs_lookup *l);

#endif
