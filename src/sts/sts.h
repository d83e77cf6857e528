/*
 * sts: MTA-STS (RFC 8461), the client side. For a recipient domain it finds
 * the `_mta-sts` TXT record (§3.1), fetches the policy over HTTPS with PKIX
 * validation (§3.3, libcurl on the process's event loop), parses it to the
 * letter (§3.2), keeps it in a persistent cache with the refresh rules of
 * §5.1 (a changed id triggers a refetch; a failed refetch keeps a cached
 * policy that is still valid; proactive refresh before expiry), and answers
 * which MX hosts the policy allows (§4.1).
 *
 * The policy is only consulted when the domain has no DANE policy: RFC 8461
 * §2, DANE takes precedence; the caller (deliver/, check/) decides that.
 */
#ifndef DR_STS_H
#define DR_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/outcome.h"

struct event_base;
struct dns_resolver;
struct sts;
struct sts_policy;
struct sts_lookup;

enum sts_mode {
	STS_MODE_NONE,
	STS_MODE_TESTING,
	STS_MODE_ENFORCE,
};

/*
 * Parse a policy body (RFC 8461 §3.2). Returns new (sts_policy_free), or
 * NULL with *errstr (static) naming the first defect ("missing version",
 * "unknown mode", "max_age out of range", "mx pattern malformed", ...).
 * The syntax is the ABNF of §3.2 to the letter: "key:" *WSP value *WSP
 * lines separated by LF or CRLF, keys case-sensitive, no empty lines.
 * Unknown keys are ignored as the RFC says; a duplicated field other than
 * mx keeps its first entry and the others are ignored (§3.2, last
 * paragraph). A known key whose first value is malformed is a defect.
 */
struct sts_policy *sts_policy_parse(
    const char *body, size_t len, const char **errstr);
void sts_policy_free(struct sts_policy *p); /* NULL is fine */
struct sts_policy *sts_policy_dup(const struct sts_policy *p); /* new */

/* The longest policy id of a TXT record (§3.1: 1*32(ALPHA / DIGIT)). */
#define STS_ID_MAX 32

/*
 * One TXT record of _mta-sts.DOMAIN, its character-strings concatenated
 * (§3.1). Returns 0 when it is not an STSv1 record (it does not begin with
 * "v=STSv1" *WSP ";": discarded), 1 for a valid record with its id copied
 * to id[STS_ID_MAX + 1], -1 for an STSv1 record that breaks the ABNF, with
 * *errstr (static). The first id field counts, later ones are ignored.
 */
int sts_txt_parse(const char *txt, size_t len, char *id, const char **errstr);

/*
 * §3.1 over a whole TXT RRset (txt[i] NULL for a record that could not be
 * read): exactly one STSv1 record must remain after discarding the others,
 * and it must be valid. Returns 0 with id filled, or -1 with *errstr
 * (static): the domain has no usable record.
 */
int sts_txt_select(char *const *txt, size_t n, char *id, const char **errstr);

enum sts_mode sts_policy_mode(const struct sts_policy *p);
const char *sts_mode_str(enum sts_mode m); /* "enforce", ... */
long sts_policy_max_age(const struct sts_policy *p);
size_t sts_policy_mx_count(const struct sts_policy *p);
const char *sts_policy_mx(const struct sts_policy *p, size_t i);
/*
 * RFC 8461 §4.1: does host match one of the mx patterns? A pattern
 * "*.example.com" matches exactly one leading label ("mx.example.com", not
 * "example.com" nor "a.b.example.com"); comparison is case-insensitive and
 * ignores a trailing dot.
 */
bool sts_policy_mx_match(const struct sts_policy *p, const char *host);
/* The policy as the list of its lines, for TLS-RPT's policy-string. */
size_t sts_policy_line_count(const struct sts_policy *p);
const char *sts_policy_line(const struct sts_policy *p, size_t i);

/* What sts_get() found for a domain. */
enum sts_state {
	STS_STATE_NONE,   /* no _mta-sts TXT (and no valid cached policy) */
	STS_STATE_POLICY, /* a valid policy (fetched now or cached) */
	STS_STATE_FETCH_ERROR, /* TXT present, fetch failed, nothing cached:
	                        * sts-policy-fetch-error */
	STS_STATE_INVALID,     /* fetched but invalid, nothing cached:
	                        * sts-policy-invalid */
};

struct sts_result {
	enum sts_state state;
	const struct sts_policy *policy; /* when POLICY; borrowed until the
	                                  * callback returns (dup to keep) */
	const char *txt_id;              /* id of the TXT record, or NULL */
	bool from_cache;
	bool txt_error;    /* TXT lookup failed (DNS error) */
	const char *error; /* human text of what went wrong, also when a
	                    * cached policy answered instead; or NULL */
	bool webpki_error; /* the fetch failed PKIX validation of
	                    * mta-sts.DOMAIN (RFC 8460 sts-webpki-invalid) */
	/*
	 * The policy of the TXT id could not be had (RFC 8461 §6: a
	 * reportable failure), also when a cached policy answered instead:
	 * RT_STS_POLICY_FETCH_ERROR (HTTP status, redirect, media type,
	 * size, timeout, connection, no address), RT_STS_WEBPKI_INVALID
	 * (certificate or TLS handshake of mta-sts.DOMAIN) or
	 * RT_STS_POLICY_INVALID (the body is not a policy); RT_NONE when no
	 * fetch failed. fetch_error is the reason in words (the same for a
	 * failure remembered from an earlier fetch, §3.3), else NULL.
	 */
	enum result_type fetch_rt;
	const char *fetch_error;
};

const char *sts_state_str(enum sts_state st); /* "none", "policy", ... */

typedef void sts_cb(const struct sts_result *res, void *arg);

struct sts_options {
	const char *cache_path;    /* SQLite file for the policy cache;
	                            * NULL or ":memory:" = not kept */
	const char *ca_file;       /* PEM bundle, the only anchors then;
	                            * NULL = the system store */
	unsigned fetch_timeout_ms; /* whole HTTPS fetch; 0 = 60000 (§3.3) */
	size_t max_body;           /* 0 = 65536 octets (§3.3: 64 KiB) */
	/* Tests: the HTTPS port of mta-sts.DOMAIN (0 = 443). */
	unsigned https_port;
};

/*
 * Start the engine on base, looking up TXT records through r. Returns new
 * (sts_free), or NULL with *errstr (new string).
 */
struct sts *sts_new(struct event_base *base, struct dns_resolver *r,
    const struct sts_options *opt, char **errstr);
/* Cancels every pending lookup without calling back. NULL is fine. */
void sts_free(struct sts *s);

/*
 * The policy for domain: TXT lookup, then cache or fetch per §5.1. The
 * callback runs exactly once, never from inside this call, unless the
 * lookup is cancelled first. Every call looks at the TXT id (the
 * resolver's cache keeps that cheap and honours the record's TTL, §8.1);
 * concurrent calls for one domain share one TXT query and one fetch.
 * force_txt: ignore a fresh cache and look at the TXT id again (RFC 8461
 * §5: before bouncing for an enforce failure, re-check once); such a call
 * never joins a lookup whose TXT answer has already arrived.
 * The callback may call sts_get, sts_lookup_cancel on other lookups and
 * sts_free.
 */
struct sts_lookup *sts_get(
    struct sts *s, const char *domain, bool force_txt, sts_cb *cb, void *arg);
/* The callback will not run; not for a lookup whose callback ran. NULL ok. */
void sts_lookup_cancel(struct sts_lookup *l);

/*
 * Proactive refresh (§5.1): refetch cached policies that expire within
 * `within` seconds and whose domains still publish the TXT record. Call
 * from a timer; runs asynchronously. Expired entries are dropped, a failed
 * refresh of a policy whose mode is not none is logged (§3.3, §10.2), and
 * at most 256 domains start per call (the next call takes the rest).
 */
void sts_refresh(struct sts *s, time_t within);

#endif
