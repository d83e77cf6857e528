/*
 * sts_fetch: libcurl's multi interface on libevent (after curl's
 * docs/examples/multi-event.c): curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION);
 * libevent calls curl_multi_socket_action when that happens.
 *
 * User callbacks never run under curl: a finished transfer is taken apart
 * after curl_multi_socket_action has returned, and its callback runs from
 * an event of its own at the top of the loop.
 */
#include "sts/sts_fetch.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"

#define STS_FETCH_CONNECT_MS 15000 /* per connect, within the deadline */
#define STS_FETCH_ADDRS_MAX  8

/* One socket curl asked us to watch. */
struct sts_fetch_sock {
	struct sts_fetcher *f;
	struct event *ev;
	TAILQ_ENTRY(sts_fetch_sock) entry;
};

struct sts_fetch {
	struct sts_fetcher *f;
	TAILQ_ENTRY(sts_fetch) entry;
	CURL *easy; /* NULL once the transfer is over */
	struct curl_slist *resolve;
	char *url;
	struct buf body;
	bool headers_checked, rejected, too_big;
	char errbuf[CURL_ERROR_SIZE];
	char error[CURL_ERROR_SIZE + 64];
	struct sts_fetch_result res;
	struct event *done; /* runs cb from the top of the loop */
	sts_fetch_cb *cb;
	void *arg;
};

struct sts_fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	char *ca_file;
	unsigned timeout_ms;
	size_t max_body;
	unsigned port;
	TAILQ_HEAD(, sts_fetch) fetches;
	TAILQ_HEAD(, sts_fetch_sock) socks;
};

/* curl_global_init is process-wide: the first fetcher starts it. */
static unsigned sts_fetch_users;

static void sts_fetch_collect(struct sts_fetcher *f);

static void
sts_fetch_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetch_sock *k = arg;
	struct sts_fetcher *f = k->f; /* k may be gone after the action */
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(f->multi, fd, flags, &running);
	sts_fetch_collect(f);
}

static void
sts_fetch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetcher *f = arg;
	int running;

	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	sts_fetch_collect(f);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means "soon". */
static int
sts_fetch_timer_set(CURLM *multi, long ms, void *arg)
{
	struct sts_fetcher *f = arg;
	struct timeval tv;

	if (ms < 0) {
		evtimer_del(f->timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(f->timer, &tv);
	return 0;
}

static void
sts_fetch_sock_free(struct sts_fetch_sock *k)
{
	TAILQ_REMOVE(&k->f->socks, k, entry);
	event_free(k->ev);
	free(k);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants, or stop. */
static int
sts_fetch_sock_set(
    CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct sts_fetcher *f = arg;
	struct sts_fetch_sock *k = sockp;
	short events = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (k != NULL)
			sts_fetch_sock_free(k);
		curl_multi_assign(f->multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (k == NULL) {
		k = xcalloc(1, sizeof(*k));
		k->f = f;
		k->ev = event_new(f->base, s, events, sts_fetch_sock_cb, k);
		TAILQ_INSERT_TAIL(&f->socks, k, entry);
		curl_multi_assign(f->multi, s, k);
	} else {
		event_del(k->ev);
		event_assign(k->ev, f->base, s, events, sts_fetch_sock_cb, k);
	}
	event_add(k->ev, NULL);
	return 0;
}

struct sts_fetcher *
sts_fetch_new(struct event_base *base, const struct sts_fetch_options *opt,
    const char **errstr)
{
	struct sts_fetcher *f;

	if (sts_fetch_users == 0 &&
	    curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		*errstr = "libcurl cannot initialise";
		return NULL;
	}
	sts_fetch_users++;
	f = xcalloc(1, sizeof(*f));
	f->base = base;
	f->ca_file = opt->ca_file != NULL ? xstrdup(opt->ca_file) : NULL;
	f->timeout_ms = opt->timeout_ms;
	f->max_body = opt->max_body;
	f->port = opt->port != 0 ? opt->port : 443;
	TAILQ_INIT(&f->fetches);
	TAILQ_INIT(&f->socks);
	f->timer = evtimer_new(base, sts_fetch_timer_cb, f);
	if ((f->multi = curl_multi_init()) == NULL) {
		*errstr = "libcurl cannot initialise";
		sts_fetch_free(f);
		return NULL;
	}
	curl_multi_setopt(
	    f->multi, CURLMOPT_SOCKETFUNCTION, sts_fetch_sock_set);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(
	    f->multi, CURLMOPT_TIMERFUNCTION, sts_fetch_timer_set);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return f;
}

static void
sts_fetch_release(struct sts_fetch *x)
{
	if (x->easy != NULL) {
		curl_multi_remove_handle(x->f->multi, x->easy);
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
	}
	curl_slist_free_all(x->resolve);
	x->resolve = NULL;
}

static void
sts_fetch_destroy(struct sts_fetch *x)
{
	sts_fetch_release(x);
	TAILQ_REMOVE(&x->f->fetches, x, entry);
	event_free(x->done);
	buf_free(&x->body);
	free(x->url);
	free(x);
}

void
sts_fetch_free(struct sts_fetcher *f)
{
	struct sts_fetch *x;

	if (f == NULL)
		return;
	while ((x = TAILQ_FIRST(&f->fetches)) != NULL)
		sts_fetch_destroy(x);
	/* Cleanup may still tell us about sockets: keep f whole until then. */
	if (f->multi != NULL)
		curl_multi_cleanup(f->multi);
	while (!TAILQ_EMPTY(&f->socks))
		sts_fetch_sock_free(TAILQ_FIRST(&f->socks));
	event_free(f->timer);
	free(f->ca_file);
	free(f);
	if (--sts_fetch_users == 0)
		curl_global_cleanup();
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

/* A header value from the server, made safe to show in a log line. */
static void
sts_fetch_quote(char *out, size_t outlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outlen && i < 64; i++)
		out[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* §3.3: only a 200 of text/plain is a policy; 3xx is not followed. */
static int
sts_fetch_headers(struct sts_fetch *x)
{
	long code = 0;
	char *ct = NULL;
	char q[80];

	x->headers_checked = true;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (code >= 300 && code < 400)
		snprintf(x->error, sizeof(x->error),
		    "redirect refused (HTTP %ld)", code);
	else if (code != 200)
		snprintf(x->error, sizeof(x->error), "HTTP %ld", code);
	else if (ct == NULL)
		snprintf(x->error, sizeof(x->error), "no content type");
	else if (!sts_fetch_ctype_ok(ct)) {
		sts_fetch_quote(q, sizeof(q), ct);
		snprintf(x->error, sizeof(x->error), "content type %s", q);
	} else
		return 0;
	x->rejected = true;
	return -1;
}

/* CURLOPT_WRITEFUNCTION: returning less than given aborts the transfer. */
static size_t
sts_fetch_write(char *p, size_t size, size_t n, void *arg)
{
	struct sts_fetch *x = arg;
	size_t len = size * n; /* size is always 1 */

	if (!x->headers_checked && sts_fetch_headers(x) == -1)
		return 0;
	if (buf_add(&x->body, p, len) == -1) {
		x->too_big = true;
		return 0;
	}
	return len;
}

static void
sts_fetch_curl_error(struct sts_fetch *x, CURLcode code)
{
	const char *why =
	    x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(code);

	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(x->error, sizeof(x->error), "timeout after %u ms",
		    x->f->timeout_ms);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		x->res.webpki = true;
		snprintf(x->error, sizeof(x->error),
		    "certificate not trusted: %s", why);
		break;
	case CURLE_COULDNT_CONNECT:
		snprintf(x->error, sizeof(x->error), "cannot connect: %s", why);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(x->error, sizeof(x->error), "TLS handshake failed: %s",
		    why);
		break;
	default:
		snprintf(x->error, sizeof(x->error), "%s", why);
		break;
	}
}

/* The transfer is over: judge it, free the curl side, call back later. */
static void
sts_fetch_finish(struct sts_fetch *x, CURLcode code)
{
	if (x->rejected)
		; /* the error is already written */
	else if (x->too_big)
		snprintf(x->error, sizeof(x->error), "body larger than %zu",
		    x->f->max_body);
	else if (code != CURLE_OK)
		sts_fetch_curl_error(x, code);
	else if (x->headers_checked || sts_fetch_headers(x) == 0) {
		x->res.ok = true;
		x->res.body = buf_cstr(&x->body);
		x->res.len = x->body.len;
	}
	if (!x->res.ok)
		x->res.error = x->error;
	sts_fetch_release(x);
	event_active(x->done, EV_TIMEOUT, 0);
}

/* Finished transfers, after curl_multi_socket_action has returned. */
static void
sts_fetch_collect(struct sts_fetcher *f)
{
	struct sts_fetch *x;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
		sts_fetch_finish(x, msg->data.result);
	}
}

static void
sts_fetch_done(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetch *x = arg;

	x->cb(&x->res, x->arg);
	sts_fetch_destroy(x);
}

/* "+mta-sts.DOMAIN:PORT:ADDR,[ADDR6]": a pinned, expiring DNS entry. */
static struct curl_slist *
sts_fetch_resolve(const struct sts_fetcher *f, const char *domain,
    char *const *addrs, size_t naddrs)
{
	struct buf b;
	struct curl_slist *l;
	size_t i;

	buf_init(&b, 4096);
	buf_printf(&b, "+mta-sts.%s:%u:", domain, f->port);
	for (i = 0; i < naddrs && i < STS_FETCH_ADDRS_MAX; i++)
		buf_printf(&b,
		    strchr(addrs[i], ':') != NULL ? "%s[%s]" : "%s%s",
		    i > 0 ? "," : "", addrs[i]);
	l = curl_slist_append(NULL, buf_cstr(&b));
	buf_free(&b);
	return l;
}

static void
sts_fetch_tls_opts(struct sts_fetch *x)
{
	CURL *e = x->easy;

	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (x->f->ca_file != NULL) {
		/* The configured bundle replaces the system store. */
		curl_easy_setopt(e, CURLOPT_CAINFO, x->f->ca_file);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
}

static void
sts_fetch_opts(struct sts_fetch *x)
{
	CURL *e = x->easy;
	long connect_ms = x->f->timeout_ms < STS_FETCH_CONNECT_MS ?
	    (long)x->f->timeout_ms :
	    STS_FETCH_CONNECT_MS;

	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_RESOLVE, x->resolve);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* §3.3 */
	curl_easy_setopt(e, CURLOPT_PROXY, "");          /* nor from env */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)x->f->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "danerelay (MTA-STS)");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sts_fetch_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	sts_fetch_tls_opts(x);
}

struct sts_fetch *
sts_fetch_start(struct sts_fetcher *f, const char *domain, char *const *addrs,
    size_t naddrs, sts_fetch_cb *cb, void *arg)
{
	struct sts_fetch *x = xcalloc(1, sizeof(*x));

	ASSERT(naddrs > 0);
	x->f = f;
	x->cb = cb;
	x->arg = arg;
	buf_init(&x->body, f->max_body);
	x->done = event_new(f->base, -1, 0, sts_fetch_done, x);
	x->url = f->port == 443 ?
	    xasprintf("https://mta-sts.%s/.well-known/mta-sts.txt", domain) :
	    xasprintf("https://mta-sts.%s:%u/.well-known/mta-sts.txt", domain,
	        f->port);
	x->resolve = sts_fetch_resolve(f, domain, addrs, naddrs);
	TAILQ_INSERT_TAIL(&f->fetches, x, entry);
	if ((x->easy = curl_easy_init()) == NULL || x->resolve == NULL) {
		snprintf(x->error, sizeof(x->error), "libcurl cannot start");
		x->res.error = x->error;
		sts_fetch_release(x);
		event_active(x->done, EV_TIMEOUT, 0);
		return x;
	}
	sts_fetch_opts(x);
	curl_multi_add_handle(f->multi, x->easy);
	return x;
}

void
sts_fetch_cancel(struct sts_fetch *x)
{
	if (x != NULL)
		sts_fetch_destroy(x);
}
