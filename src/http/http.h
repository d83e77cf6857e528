/*
 * http: HTTPS requests with libcurl's multi interface driven by the
 * process's libevent loop: no thread, no blocking call. Used for the
 * MTA-STS policy GET (RFC 8461 §3.3, through sts_fetch) and the TLS-RPT
 * report POST (RFC 8460 §5.4).
 *
 * The caller resolves the host itself (through the project's resolver, so
 * private DNS trees work and nothing blocks in getaddrinfo) and hands the
 * addresses over; libcurl only connects to them and checks the server's
 * certificate against the host name of the URL (PKIX, TLS 1.2 or later,
 * the configured CA bundle or the system store). Only https is spoken,
 * redirects are never followed, no proxy or HTTP cache is used, the body
 * is capped and the whole request has a deadline. A response that is not
 * 2xx is not read further: its status is the result.
 *
 * libcurl itself is loaded at the first request, not at start
 * (http_lib.h): a relay that never fetches anything never maps it.
 */
#ifndef DR_HTTP_H
#define DR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct http_client;
struct http_request;

struct http_request_params {
	const char *url;    /* https://HOST[:PORT]/PATH */
	char *const *addrs; /* numeric IPv4/IPv6 of HOST, at least one */
	size_t naddrs;
	const char *post_type; /* NULL: GET; else POST with this type */
	const void *post;      /* POST body */
	size_t post_len;
	unsigned timeout_ms; /* whole request, > 0 */
	size_t max_body;     /* octets of the response body, > 0 */
	const char *user_agent;
};

struct http_result {
	bool ok;                  /* a 2xx response, body complete */
	long status;              /* HTTP status, 0 when none came */
	const char *content_type; /* or NULL */
	const char *body;         /* when ok: borrowed until cb returns */
	size_t len;
	const char *error; /* when not ok: "HTTP 404", "timeout..." */
	bool webpki;       /* the server could not be authenticated: its
	                    * certificate, or no TLS handshake at all */
};

/* Called once per request, from the top of the event loop. */
typedef void http_cb(const struct http_result *r, void *arg);

/*
 * A client on base; ca_file (PEM) replaces the system store when not
 * NULL. Returns new (http_client_free); cannot fail: libcurl is loaded by
 * the first request (http_lib.h), and if it cannot be, that request fails
 * through its callback.
 */
struct http_client *http_client_new(
    struct event_base *base, const char *ca_file);

/* Cancels pending requests without calling back. NULL is fine. Not from
 * inside an http_cb. */
void http_client_free(struct http_client *c);

/*
 * Start a request. Returns a handle for http_request_cancel; cb is never
 * called from inside this function, and the handle is invalid once cb
 * has run. A URL that is not https:// fails through cb.
 */
struct http_request *http_request_start(struct http_client *c,
    const struct http_request_params *p, http_cb *cb, void *arg);

/* The callback will not run. NULL is fine. */
void http_request_cancel(struct http_request *x);

/*
 * Split an https URL into its host (lowercase, without brackets) and port
 * (443 when not given). Returns 0; HTTP_URL_BAD when url is not a
 * well-formed https URL with a host; HTTP_URL_NOLIB when libcurl, whose
 * parser this is, cannot be loaded (*errstr says why: a local, temporary
 * problem, not the URL's).
 */
#define HTTP_URL_BAD   (-1)
#define HTTP_URL_NOLIB (-2)
int http_url_host(const char *url, char *host, size_t hostlen, unsigned *port,
    const char **errstr);

#endif
