/*
 * dane_mx: which SMTP servers take mail for a next-hop domain (RFC 5321
 * §5.1, RFC 7672 §2.2.1, RFC 7505).
 *
 * One MX lookup (libunbound expands CNAMEs and tracks the security of the
 * whole chain, RFC 7672 §2.1.3). The hosts come sorted by preference: RFC
 * 7672 §2.2.1 forbids trading MX preference for security, so the order is
 * never changed by TLSA presence. No MX RRset means the domain is its own
 * implicit MX (§2.2.2); a lone "." MX is a null MX (RFC 7505 §3): bounce.
 */
#ifndef DR_DANE_MX_H
#define DR_DANE_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/outcome.h"

struct dns_resolver;
struct dns_answer;
struct dane_mx;
struct dane_mx_lookup;

enum dane_mx_kind {
	DANE_MX_LIST,     /* MX records */
	DANE_MX_IMPLICIT, /* no MX RRset: the domain itself (RFC 5321 §5.1) */
	DANE_MX_NULL,     /* null MX (RFC 7505): bounce 5.1.10 */
	DANE_MX_NXDOMAIN, /* the domain does not exist: bounce 5.1.2 */
	DANE_MX_ERROR,    /* lookup error: defer the whole domain (§2.1.2) */
};

/* The callee owns mx (dane_mx_free). */
typedef void dane_mx_cb(struct dane_mx *mx, void *arg);

/* Start the MX resolution of domain. Never calls back from inside. */
struct dane_mx_lookup *dane_mx_resolve(
    struct dns_resolver *r, const char *domain, dane_mx_cb *cb, void *arg);
/* Cancel a pending resolution; the callback will not run. */
void dane_mx_cancel(struct dane_mx_lookup *l);

void dane_mx_free(struct dane_mx *mx);

enum dane_mx_kind dane_mx_kind(const struct dane_mx *mx);
const char *dane_mx_kind_str(enum dane_mx_kind kind);
const char *dane_mx_domain(const struct dane_mx *mx);
/* The CNAME-expanded next-hop domain (== domain without CNAMEs). */
const char *dane_mx_expanded(const struct dane_mx *mx);
/* The MX RRset (with any CNAME leading to it) validated as secure. */
bool dane_mx_secure(const struct dane_mx *mx);
/* The outcome for NULL / NXDOMAIN / ERROR kinds; ok otherwise. */
const struct outcome *dane_mx_outcome(const struct dane_mx *mx);
/* The MX answer (borrowed) for traces. */
const struct dns_answer *dane_mx_answer(const struct dane_mx *mx);

/* Hosts in preference order (implicit MX: the domain, preference 0). */
size_t dane_mx_count(const struct dane_mx *mx);
const char *dane_mx_host(const struct dane_mx *mx, size_t i);
uint16_t dane_mx_pref(const struct dane_mx *mx, size_t i);

#endif
