/*
 * policy: the security policy that applies to one destination domain, decided
 * in one place from [policy] and the [domain NAME] overrides.
 *
 *   dane       opportunistic DANE (RFC 7672): enforce where TLSA is published,
 *              opportunistic TLS elsewhere (the default)
 *   dane-only  mandatory DANE (RFC 7672 §6): a secure MX RRset and usable
 *              secure TLSA records are required
 *   encrypt    TLS required, no authentication, TLSA not consulted
 *   may        opportunistic TLS, no DANE enforcement (exceptions)
 *
 * Log-only mode runs every check but delivers anyway at the best security
 * still available, recording what would have failed.
 */
#ifndef DR_POLICY_H
#define DR_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct conf;
struct policy;

enum policy_security {
	POLICY_DANE,
	POLICY_DANE_ONLY,
	POLICY_ENCRYPT,
	POLICY_MAY,
};

/* The effective policy for one destination (a value; strings borrowed from
 * the policy object, valid until policy_free). */
struct policy_dest {
	enum policy_security security;
	bool log_only;
	bool log_only_cleartext;
	const char *route_host; /* next hop instead of MX resolution, or NULL */
	bool route_mx;          /* route "host:port": MX lookup of route_host */
	uint16_t port;          /* destination port */
	const char *exception; /* logged reason for a relaxed domain, or NULL */
};

/* Build from a loaded config (borrowed during the call). Returns new. */
struct policy *policy_new(const struct conf *c);
void policy_free(struct policy *p);

/* The policy for domain (any case, a trailing dot ignored). */
void policy_for(
    const struct policy *p, const char *domain, struct policy_dest *out);

const char *policy_security_str(enum policy_security s);

#endif
