/*
 * dns: asynchronous, DNSSEC-validating lookups on the process's one libevent
 * loop, through libunbound validating in-process (RFC 7672 §2.1.1: a
 * security-aware resolver; an AD bit from elsewhere is never trusted).
 *
 * Every answer carries the security state of its RRset (RFC 4035 §4.3),
 * rcode, TTL, the CNAME chain, the denial-of-existence kind and, when bogus,
 * libunbound's why-bogus text. NXDOMAIN and NODATA, secure or insecure, are
 * answers (DNS_OK), not errors; SERVFAIL, timeouts, bogus and indeterminate
 * results are lookup errors (RFC 7672 §2.1.1).
 *
 * Names are presentation format, lowercase, without the trailing dot ("."
 * for the root).
 */
#ifndef DR_DNS_H
#define DR_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;
struct dns_query;
struct dns_answer;

#define DNS_TYPE_A      1
#define DNS_TYPE_NS     2
#define DNS_TYPE_CNAME  5
#define DNS_TYPE_SOA    6
#define DNS_TYPE_MX     15
#define DNS_TYPE_TXT    16
#define DNS_TYPE_AAAA   28
#define DNS_TYPE_DS     43
#define DNS_TYPE_DNSKEY 48
#define DNS_TYPE_TLSA   52

/* RFC 4035 §4.3 security states; INDETERMINATE is handled as BOGUS. */
enum dns_sec {
	DNS_SEC_SECURE,
	DNS_SEC_INSECURE,
	DNS_SEC_BOGUS,
	DNS_SEC_INDETERMINATE,
};

enum dns_status {
	DNS_OK,            /* data, NODATA or NXDOMAIN: an answer */
	DNS_ERR_BOGUS,     /* validation failed (bogus or indeterminate) */
	DNS_ERR_SERVFAIL,  /* SERVFAIL without a validation failure */
	DNS_ERR_TIMEOUT,   /* our own deadline passed */
	DNS_ERR_MALFORMED, /* answer could not be parsed */
	DNS_ERR_OTHER,     /* REFUSED, NOTIMP, FORMERR, libunbound error */
};

/* What resolves names; see dns_resolver_new(). */
struct dns_options {
	const char *trust_anchor_file; /* NULL: built-in IANA root anchors */
	char **root_servers; /* NULL-terminated "ADDR[@PORT]" or NULL */
	char **forwarders;   /* NULL-terminated "ADDR[@PORT]" or NULL */
	unsigned timeout_ms; /* per-query deadline, 0 = 30000 */
};

/*
 * Create a resolver on base. Returns new (caller frees with
 * dns_resolver_free, before event_base_free(base)), or NULL with *errstr
 * set to a new string (caller frees with free()). The trust anchors are
 * loaded here, so a bad trust_anchor_file fails now, not at the first query.
 *
 * root_servers replaces the real root servers (private trees, labs, tests):
 * libunbound's built-in special-use local zones (test., invalid., ...) are
 * dropped so they cannot shadow the private tree, and loopback servers are
 * queryable. When every root server listens on port 53 they are a stub for
 * "." (iteration follows delegations); otherwise the delegations cannot be
 * followed (NS addresses always mean port 53), so the servers are used as the
 * forward target for "." and must serve the whole tree. Answers are
 * validated in-process either way.
 */
struct dns_resolver *dns_resolver_new(
    struct event_base *base, const struct dns_options *opt, char **errstr);

/*
 * Replace libunbound's context with a fresh one made from the same options,
 * forgetting its caches. After its servers stopped answering libunbound
 * keeps them marked unresponsive and waits up to minutes before it tries
 * them again; a relay waiting for DNS to return resets instead. Queries in
 * flight are answered DNS_ERR_TIMEOUT. Returns 0, or -1 with *errstr (new)
 * and the old context kept.
 */
int dns_resolver_reset(struct dns_resolver *r, char **errstr);

/* The event loop the resolver runs on (borrowed). */
struct event_base *dns_resolver_base(const struct dns_resolver *r);

/*
 * Cancels pending queries without calling their callbacks. NULL is fine.
 * May be called from inside a dns_cb.
 */
void dns_resolver_free(struct dns_resolver *r);

/*
 * Called once per query with the answer (never NULL). The callee owns the
 * answer and frees it with dns_answer_free(). The query handle is invalid
 * once the callback runs. Callbacks run from the top of the event loop,
 * never nested inside libunbound or dns_query(), so they may start
 * queries, cancel other queries or free the resolver.
 */
typedef void dns_cb(struct dns_answer *a, void *arg);

/*
 * Start a lookup of name/type. Returns a handle usable for cancellation
 * (never NULL); the callback is never called from within dns_query()
 * itself. A name failing dns_name_check() is answered DNS_ERR_OTHER.
 * Trailing dot and case do not matter: the answer's qname is canonical.
 */
struct dns_query *dns_query(struct dns_resolver *r, const char *name,
    uint16_t type, dns_cb *cb, void *arg);

/*
 * Cancel a pending query; its callback will not be called. NULL is fine;
 * a handle whose callback already ran must not be passed.
 */
void dns_query_cancel(struct dns_query *q);

/*
 * Self-test: look up the root DNSKEY RRset, which must validate as secure.
 * cb receives the answer; dns_selftest_explain() turns it into a verdict.
 */
struct dns_query *dns_selftest(struct dns_resolver *r, dns_cb *cb, void *arg);

/*
 * NULL when a is a secure root DNSKEY answer; otherwise a loud, specific
 * explanation (static string) such as "the resolver cannot validate:
 * the root DNSKEY RRset came back insecure; an upstream may strip RRSIGs".
 */
const char *dns_selftest_explain(const struct dns_answer *a);

void dns_answer_free(struct dns_answer *a); /* NULL is fine */

/*
 * Accessors; strings are borrowed, valid until dns_answer_free(). Only a
 * DNS_OK answer has records, a CNAME chain, a denial kind or a TTL: data
 * from a bogus answer is never exposed. Answers without validated data
 * (every error but DNS_ERR_BOGUS) have sec DNS_SEC_INDETERMINATE.
 * TTLs are what libunbound reports: the remaining TTL when it answers from
 * its cache.
 */
const char *dns_answer_qname(const struct dns_answer *a);
uint16_t dns_answer_qtype(const struct dns_answer *a);
enum dns_status dns_answer_status(const struct dns_answer *a);
enum dns_sec dns_answer_sec(const struct dns_answer *a);
/* 0 NOERROR, 3 NXDOMAIN, ...; -1 when there is none (timeout, bad name). */
int dns_answer_rcode(const struct dns_answer *a);
/*
 * Smallest TTL of the answer RRs; for a negative answer the SOA's TTL
 * capped by its MINIMUM (RFC 2308 §5); 0 for errors.
 */
uint32_t dns_answer_ttl(const struct dns_answer *a);
const char *dns_answer_why_bogus(
    const struct dns_answer *a); /* NULL unless bogus */
/* Human text of a non-OK status; NULL when the status is DNS_OK. */
const char *dns_answer_error(const struct dns_answer *a);
bool dns_answer_nxdomain(const struct dns_answer *a);
bool dns_answer_nodata(
    const struct dns_answer *a); /* NOERROR, no RR of qtype */

/* Denial of existence seen in the authority section: "nsec", "nsec3" or NULL.
 */
const char *dns_answer_denial(const struct dns_answer *a);

/* CNAME chain, in order: link i maps cname_owner(i) -> cname_target(i). */
size_t dns_answer_cname_count(const struct dns_answer *a);
const char *dns_answer_cname_owner(const struct dns_answer *a, size_t i);
const char *dns_answer_cname_target(const struct dns_answer *a, size_t i);
/* Final name after the CNAME chain (qname when there is none). */
const char *dns_answer_canonname(const struct dns_answer *a);

/* Records of qtype owned by the canonical name. */
size_t dns_answer_count(const struct dns_answer *a);
const uint8_t *dns_answer_rdata(
    const struct dns_answer *a, size_t i, size_t *len);

/* Typed views; return 0, or -1 if record i is not of that type or malformed. */
int dns_answer_mx(
    const struct dns_answer *a, size_t i, uint16_t *pref, const char **host);
int dns_answer_addr(const struct dns_answer *a, size_t i,
    struct sockaddr_storage *ss, socklen_t *len); /* port 0 */
int dns_answer_addr_str(
    const struct dns_answer *a, size_t i, char *out, size_t outlen);
int dns_answer_tlsa(const struct dns_answer *a, size_t i, uint8_t *usage,
    uint8_t *selector, uint8_t *mtype, const uint8_t **data, size_t *len);
/*
 * TXT: character-strings concatenated, in a new string (caller frees);
 * NULL if record i is not TXT, is malformed or holds a NUL byte.
 */
char *dns_answer_txt(const struct dns_answer *a, size_t i);

const char *dns_sec_str(enum dns_sec sec); /* "secure", ... */
/* "ok", "bogus", "servfail", "timeout", "malformed", "other" */
const char *dns_status_str(enum dns_status st);
/* "MX", "TYPE65280" (static buffer for unknown types: not reentrant) */
const char *dns_type_str(uint16_t type);

/*
 * Check that name is a syntactically valid domain name for a query
 * (length limits of RFC 1035 §2.3.4, no empty labels; one trailing dot is
 * allowed, "." is the root; no backslash escapes, spaces, control
 * characters or zone-file specials " ( ) ; $ @). NULL when fine, otherwise a
 * static error text.
 */
const char *dns_name_check(const char *name);

#endif
