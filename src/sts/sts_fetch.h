/*
 * sts_fetch: the HTTPS GET of https://mta-sts.DOMAIN/.well-known/mta-sts.txt
 * (RFC 8461 §3.3), on the event loop through the http module.
 *
 * The caller resolves mta-sts.DOMAIN itself (through the project's resolver,
 * so private DNS trees work and nothing blocks in getaddrinfo) and hands
 * the addresses over; libcurl only connects to them, and checks the
 * certificate against the name mta-sts.DOMAIN (PKIX, TLS 1.2 or later).
 * Redirects are refused, only a 200 with Content-Type text/plain is a
 * policy, the body is capped, the whole fetch has a deadline, and no proxy
 * or HTTP cache is used. Private to the sts module.
 */
#ifndef DR_STS_FETCH_H
#define DR_STS_FETCH_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct sts_fetcher;
struct sts_fetch;

struct sts_fetch_options {
	const char *ca_file; /* PEM bundle, the only anchors; NULL: system */
	unsigned timeout_ms; /* whole fetch, > 0 */
	size_t max_body;     /* octets, > 0 */
	unsigned port;       /* 0 = 443 */
};

struct sts_fetch_result {
	bool ok;
	const char *body; /* when ok: borrowed until the callback returns */
	size_t len;
	const char *error; /* when not ok: "HTTP 404", "timeout", ... */
	bool webpki;       /* mta-sts.DOMAIN could not be authenticated */
};

/* Called once per fetch, from the top of the event loop. */
typedef void sts_fetch_cb(const struct sts_fetch_result *r, void *arg);

/*
 * A fetcher on base. Returns new (sts_fetch_free). A libcurl that cannot
 * be loaded fails each fetch, through its callback (http/http_lib.h).
 */
struct sts_fetcher *sts_fetch_new(
    struct event_base *base, const struct sts_fetch_options *opt);

/*
 * Cancels the pending fetches without calling back. NULL is fine. Not from
 * inside an sts_fetch_cb.
 */
void sts_fetch_free(struct sts_fetcher *f);

/*
 * Fetch the policy of domain from one of addrs (numeric IPv4 or IPv6, at
 * least one). Returns a handle for sts_fetch_cancel; cb is never called
 * from inside this function. The handle is invalid once cb has run.
 */
struct sts_fetch *sts_fetch_start(struct sts_fetcher *f, const char *domain,
    char *const *addrs, size_t naddrs, sts_fetch_cb *cb, void *arg);

/* The callback will not run. NULL is fine. */
void sts_fetch_cancel(struct sts_fetch *x);

/*
 * Whether a Content-Type value is text/plain (case-insensitive, any
 * parameters, §3.2).
 */
bool sts_fetch_ctype_ok(const char *ctype);

#endif
