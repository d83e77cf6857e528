/*
 * dane_host: the DNS facts and the RFC 7672 policy of one SMTP server.
 *
 * For a host name (an MX host, the implicit MX, or a configured route) it
 * looks up the addresses first (RFC 7672 §2.2.2: A/AAAA before TLSA, and no
 * TLSA query when the addresses are insecure), works out the candidate TLSA
 * base domains (§2.2.2/§2.2.3: the CNAME-expanded name, then the original;
 * never a name in the middle of the chain), looks up `_PORT._tcp.BASE` TLSA
 * for each in turn, and classifies the result into one of the four actions
 * of §2.2 (enum dane_level). The same object then prepares the SSL handshake
 * (dane_host_ssl_new) and judges it (dane_host_verify), so the code that
 * decides is the code that connects.
 */
#ifndef DR_DANE_HOST_H
#define DR_DANE_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/outcome.h"
#include "dane/dane_outcome.h"

struct dns_resolver;
struct dns_answer;
struct dane_tlsa;
struct dane_host;
struct dane_host_lookup;

/* How the host was reached; decides the reference identifiers (§3.2.2). */
enum dane_via {
	DANE_VIA_MX_SECURE,   /* from a secure MX RRset */
	DANE_VIA_MX_INSECURE, /* from an insecure MX RRset (§2.2.1) */
	DANE_VIA_IMPLICIT,    /* no MX: the next-hop domain itself */
	DANE_VIA_ROUTE,       /* configured next hop, no MX resolution */
};

struct dane_host_params {
	const char *host;
	uint16_t port; /* the port actually used: _PORT._tcp */
	enum dane_via via;
	const char *nexthop; /* original next-hop domain (or NULL for routes) */
	const char *nexthop_expanded; /* its CNAME expansion (or NULL) */
	bool nexthop_secure; /* for DANE_VIA_IMPLICIT: MX answer secure */
	char **digests;      /* [dane] digests, borrowed during the call */
};

typedef void dane_host_cb(struct dane_host *h, void *arg); /* callee owns h */

/* Start resolving; never calls back from inside. Params are copied. */
struct dane_host_lookup *dane_host_resolve(struct dns_resolver *r,
    const struct dane_host_params *p, dane_host_cb *cb, void *arg);
void dane_host_cancel(struct dane_host_lookup *l);
void dane_host_free(struct dane_host *h);

const char *dane_host_name(const struct dane_host *h);
enum dane_level dane_host_level(const struct dane_host *h);
/* Why the host is unusable (level UNUSABLE); ok otherwise. */
const struct outcome *dane_host_outcome(const struct dane_host *h);

/* Addresses (A first, then AAAA), with the port set. */
size_t dane_host_addr_count(const struct dane_host *h);
const struct sockaddr *dane_host_addr(
    const struct dane_host *h, size_t i, socklen_t *len);
const char *dane_host_addr_str(const struct dane_host *h, size_t i);
/* The address RRsets validated as secure. */
bool dane_host_addr_secure(const struct dane_host *h);
/*
 * RFC 7672 §2.1.2 for the address lookups of one host: 0 when both the A
 * and the AAAA answer are usable; 1 when one failed (bogus, SERVFAIL,
 * timeout) and the other is a secure RRset with addresses: only the
 * failed family's addresses are unusable, delivery proceeds via the
 * others, as Postfix does (the TLSA lookup stays mandatory); -1 when the
 * host is unusable (both failed, or the remaining family is insecure or
 * empty). *bad is the failed answer (borrowed), NULL for 0.
 */
int dane_host_addr_families(const struct dns_answer *a,
    const struct dns_answer *aaaa, const struct dns_answer **bad);

/*
 * When the A or the AAAA lookup failed (bogus, SERVFAIL, timeout) while the
 * other family's RRset is secure with addresses, only the other family's
 * addresses are used (RFC 7672 §2.1.2) and this is why the failed one was
 * skipped (4.7.324 or 4.4.3); NULL when nothing was skipped. Borrowed.
 */
const struct outcome *dane_host_addr_warning(const struct dane_host *h);
/* Name after CNAME expansion of the address lookup. */
const char *dane_host_expanded(const struct dane_host *h);

/* DNS answers for traces: A, AAAA, the extra CNAME query (may be NULL). */
const struct dns_answer *dane_host_answer_a(const struct dane_host *h);
const struct dns_answer *dane_host_answer_aaaa(const struct dane_host *h);
const struct dns_answer *dane_host_answer_cname(const struct dane_host *h);

/* TLSA candidate base domains tried, in order, with their answers. */
size_t dane_host_tlsa_tried(const struct dane_host *h);
const char *dane_host_tlsa_candidate(const struct dane_host *h, size_t i);
const struct dns_answer *dane_host_tlsa_answer(
    const struct dane_host *h, size_t i); /* NULL if not queried */
/* Why no TLSA query was made, when none was (e.g. insecure addresses). */
const char *dane_host_tlsa_skipped(const struct dane_host *h);

/* The TLSA base domain and its secure RRset, or NULL (no secure TLSA). */
const char *dane_host_base(const struct dane_host *h);
const struct dane_tlsa *dane_host_tlsa(const struct dane_host *h);

/* Reference identifiers for DANE-TA name checks (§3.2.2), NULL-terminated. */
char **dane_host_refnames(const struct dane_host *h);

/* Whether success here may be called "verified" (false: "trusted", §2.2.1). */
bool dane_host_verified_path(const struct dane_host *h);

/*
 * A new SSL for STARTTLS to this host: DANE records, SNI and names for
 * DANE_LEVEL_AUTH, SNI only otherwise. NULL with *errstr on failure.
 */
SSL *dane_host_ssl_new(
    const struct dane_host *h, SSL_CTX *ctx, const char **errstr);

/*
 * Judge a completed handshake: under DANE_LEVEL_AUTH a TLSA record must have
 * matched (RFC 7672 §3.2); other levels accept any certificate. Returns true
 * and sets o to ok, or false with o classified (dane_outcome_verify).
 */
bool dane_host_verify(const struct dane_host *h, SSL *ssl, struct outcome *o);

#endif
