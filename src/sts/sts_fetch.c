/*
 * sts_fetch: the MTA-STS policy GET on top of the http module: the URL of
 * RFC 8461 §3.3, and the rules a response must meet to be a policy (HTTP
 * 200 only, Content-Type text/plain, §3.2). Redirects, caps, deadlines
 * and certificate checks are the http module's.
 */
#include "sts/sts_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/str.h"
#include "core/xmalloc.h"
#include "http/http.h"

struct sts_fetch {
	struct sts_fetcher *f;
	struct http_request *req;
	sts_fetch_cb *cb;
	void *arg;
	TAILQ_ENTRY(sts_fetch) entry;
};

struct sts_fetcher {
	struct http_client *http;
	TAILQ_HEAD(, sts_fetch) fetches;
	unsigned timeout_ms;
	size_t max_body;
	unsigned port;
};

struct sts_fetcher *
sts_fetch_new(struct event_base *base, const struct sts_fetch_options *opt)
{
	struct sts_fetcher *f = xcalloc(1, sizeof(*f));

	f->http = http_client_new(base, opt->ca_file);
	f->timeout_ms = opt->timeout_ms;
	f->max_body = opt->max_body;
	f->port = opt->port != 0 ? opt->port : 443;
	TAILQ_INIT(&f->fetches);
	return f;
}

void
sts_fetch_free(struct sts_fetcher *f)
{
	struct sts_fetch *x;

	if (f == NULL)
		return;
	http_client_free(f->http); /* cancels the requests */
	while ((x = TAILQ_FIRST(&f->fetches)) != NULL) {
		TAILQ_REMOVE(&f->fetches, x, entry);
		free(x);
	}
	free(f);
}

bool
sts_fetch_ctype_ok(const char *ct)
{
	const char *p = ct;

	str_skip_ws(&p);
	if (str_match_ci(&p, "text/plain") == -1)
		return false;
	str_skip_ws(&p);
	return *p == '\0' || *p == ';';
}

/* §3.3: only a 200 of text/plain is a policy. */
static void
sts_fetch_done(const struct http_result *hr, void *arg)
{
	struct sts_fetch *x = arg;
	struct sts_fetch_result r = { 0 };
	char err[200];

	if (!hr->ok) {
		r.error = hr->error;
		r.webpki = hr->webpki;
	} else if (hr->status != 200) {
		snprintf(err, sizeof(err), "HTTP %ld", hr->status);
		r.error = err;
	} else if (hr->content_type == NULL) {
		r.error = "no content type";
	} else if (!sts_fetch_ctype_ok(hr->content_type)) {
		snprintf(
		    err, sizeof(err), "content type %.64s", hr->content_type);
		r.error = err;
	} else {
		r.ok = true;
		r.body = hr->body;
		r.len = hr->len;
	}
	TAILQ_REMOVE(&x->f->fetches, x, entry);
	x->cb(&r, x->arg);
	free(x);
}

struct sts_fetch *
sts_fetch_start(struct sts_fetcher *f, const char *domain, char *const *addrs,
    size_t naddrs, sts_fetch_cb *cb, void *arg)
{
	struct sts_fetch *x = xcalloc(1, sizeof(*x));
	struct http_request_params p = { 0 };
	char *url = f->port == 443 ?
	    xasprintf("https://mta-sts.%s/.well-known/mta-sts.txt", domain) :
	    xasprintf("https://mta-sts.%s:%u/.well-known/mta-sts.txt", domain,
	        f->port);

	ASSERT(naddrs > 0);
	x->f = f;
	x->cb = cb;
	x->arg = arg;
	p.url = url;
	p.addrs = addrs;
	p.naddrs = naddrs;
	p.timeout_ms = f->timeout_ms;
	p.max_body = f->max_body;
	p.user_agent = "danerelay (MTA-STS)";
	TAILQ_INSERT_TAIL(&f->fetches, x, entry);
	x->req = http_request_start(f->http, &p, sts_fetch_done, x);
	free(url);
	return x;
}

void
sts_fetch_cancel(struct sts_fetch *x)
{
	if (x == NULL)
		return;
	http_request_cancel(x->req);
	TAILQ_REMOVE(&x->f->fetches, x, entry);
	free(x);
}
