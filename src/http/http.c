/*
 * http: libcurl's multi interface on libevent (after curl's
 * docs/examples/multi-event.c): curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION);
 * libevent calls curl_multi_socket_action when that happens.
 *
 * User callbacks never run under curl: a finished transfer is taken apart
 * after curl_multi_socket_action has returned, and its callback runs from
 * an event of its own at the top of the loop.
 */
#include "http/http.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "http/http_lib.h"

#define HTTP_CONNECT_MS 15000 /* per connect, within the deadline */
#define HTTP_ADDRS_MAX  8

/* One socket curl asked us to watch. */
struct http_sock {
	struct http_client *f;
	struct event *ev;
	TAILQ_ENTRY(http_sock) entry;
};

struct http_request {
	struct http_client *f;
	TAILQ_ENTRY(http_request) entry;
	CURL *easy; /* NULL once the transfer is over */
	struct curl_slist *resolve;
	char *url;
	char *ctype_hdr; /* "Content-Type: ..." for a POST */
	struct curl_slist *headers;
	void *post;
	size_t post_len;
	unsigned timeout_ms;
	char content_type[128];
	struct buf body;
	bool headers_checked, rejected, too_big;
	char errbuf[CURL_ERROR_SIZE];
	char error[CURL_ERROR_SIZE + 64];
	struct http_result res;
	struct event *done; /* runs cb from the top of the loop */
	http_cb *cb;
	void *arg;
};

struct http_client {
	struct event_base *base;
	const struct http_lib *lib; /* set with multi, by the first request */
	CURLM *multi;
	struct event *timer;
	char *ca_file;
	TAILQ_HEAD(, http_request) fetches;
	TAILQ_HEAD(, http_sock) socks;
};

static void http_collect(struct http_client *f);

static void
http_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_sock *k = arg;
	struct http_client *f = k->f; /* k may be gone after the action */
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	f->lib->multi_socket_action(f->multi, fd, flags, &running);
	http_collect(f);
}

static void
http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *f = arg;
	int running;

	f->lib->multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_collect(f);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means "soon". */
static int
http_timer_set(CURLM *multi, long ms, void *arg)
{
	struct http_client *f = arg;
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
http_sock_free(struct http_sock *k)
{
	TAILQ_REMOVE(&k->f->socks, k, entry);
	event_free(k->ev);
	free(k);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants, or stop. */
static int
http_sock_set(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
	struct http_client *f = arg;
	struct http_sock *k = sockp;
	short events = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (k != NULL)
			http_sock_free(k);
		f->lib->multi_assign(f->multi, s, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (k == NULL) {
		k = xcalloc(1, sizeof(*k));
		k->f = f;
		k->ev = event_new(f->base, s, events, http_sock_cb, k);
		TAILQ_INSERT_TAIL(&f->socks, k, entry);
		f->lib->multi_assign(f->multi, s, k);
	} else {
		event_del(k->ev);
		event_assign(k->ev, f->base, s, events, http_sock_cb, k);
	}
	event_add(k->ev, NULL);
	return 0;
}

struct http_client *
http_client_new(struct event_base *base, const char *ca_file)
{
	struct http_client *f;

	f = xcalloc(1, sizeof(*f));
	f->base = base;
	f->ca_file = ca_file != NULL ? xstrdup(ca_file) : NULL;
	TAILQ_INIT(&f->fetches);
	TAILQ_INIT(&f->socks);
	f->timer = evtimer_new(base, http_timer_cb, f);
	return f;
}

/* libcurl and the multi handle, made by the first request. NULL, or why
 * not. */
static const char *
http_client_start(struct http_client *f)
{
	const struct http_lib *lib;
	const char *err;

	if (f->multi != NULL)
		return NULL;
	if ((lib = http_lib_get(&err)) == NULL)
		return err;
	if ((f->multi = lib->multi_init()) == NULL)
		return "libcurl cannot initialise";
	f->lib = lib;
	lib->multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, http_sock_set);
	lib->multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	lib->multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, http_timer_set);
	lib->multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	return NULL;
}

static void
http_release(struct http_request *x)
{
	const struct http_lib *lib = x->f->lib;

	if (lib == NULL) /* libcurl never started: nothing of it to free */
		return;
	if (x->easy != NULL) {
		lib->multi_remove_handle(x->f->multi, x->easy);
		lib->easy_cleanup(x->easy);
		x->easy = NULL;
	}
	lib->slist_free_all(x->resolve);
	x->resolve = NULL;
	lib->slist_free_all(x->headers);
	x->headers = NULL;
}

static void
http_destroy(struct http_request *x)
{
	http_release(x);
	TAILQ_REMOVE(&x->f->fetches, x, entry);
	event_free(x->done);
	buf_free(&x->body);
	free(x->url);
	free(x->ctype_hdr);
	free(x->post);
	free(x);
}

void
http_client_free(struct http_client *f)
{
	struct http_request *x;

	if (f == NULL)
		return;
	while ((x = TAILQ_FIRST(&f->fetches)) != NULL)
		http_destroy(x);
	/* Cleanup may still tell us about sockets: keep f whole until then. */
	if (f->multi != NULL)
		f->lib->multi_cleanup(f->multi);
	while (!TAILQ_EMPTY(&f->socks))
		http_sock_free(TAILQ_FIRST(&f->socks));
	event_free(f->timer);
	free(f->ca_file);
	free(f);
}

/* A header value from the server, made safe to show in a log line. */
static void
http_quote(char *out, size_t outlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outlen && i < 120; i++)
		out[i] = s[i] > 0x1f && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* Status and type are known: a response that is not 2xx is not read. */
static int
http_headers(struct http_request *x)
{
	const struct http_lib *lib = x->f->lib;
	char *ct = NULL;

	x->headers_checked = true;
	lib->easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->res.status);
	lib->easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (ct != NULL) {
		http_quote(x->content_type, sizeof(x->content_type), ct);
		x->res.content_type = x->content_type;
	}
	if (x->res.status >= 200 && x->res.status < 300)
		return 0;
	if (x->res.status >= 300 && x->res.status < 400)
		snprintf(x->error, sizeof(x->error),
		    "redirect refused (HTTP %ld)", x->res.status);
	else
		snprintf(x->error, sizeof(x->error), "HTTP %ld", x->res.status);
	x->rejected = true;
	return -1;
}

/* CURLOPT_WRITEFUNCTION: returning less than given aborts the transfer. */
static size_t
http_write(char *p, size_t size, size_t n, void *arg)
{
	struct http_request *x = arg;
	size_t len = size * n; /* size is always 1 */

	if (!x->headers_checked && http_headers(x) == -1)
		return 0;
	if (buf_add(&x->body, p, len) == -1) {
		x->too_big = true;
		return 0;
	}
	return len;
}

static void
http_curl_error(struct http_request *x, CURLcode code)
{
	const char *why =
	    x->errbuf[0] != '\0' ? x->errbuf : x->f->lib->easy_strerror(code);

	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(x->error, sizeof(x->error), "timeout after %u ms",
		    x->timeout_ms);
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
		/* No TLS with the server, so no certificate to trust: for
		 * MTA-STS the policy cannot be authenticated (RFC 8460
		 * §4.3.2.2 sts-webpki-invalid), not merely unreachable. */
		x->res.webpki = true;
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
http_finish(struct http_request *x, CURLcode code)
{
	if (x->rejected)
		; /* the error is already written */
	else if (x->too_big)
		snprintf(x->error, sizeof(x->error), "body larger than %zu",
		    x->body.max);
	else if (code != CURLE_OK)
		http_curl_error(x, code);
	else if (x->headers_checked || http_headers(x) == 0) {
		x->res.ok = true;
		x->res.body = buf_cstr(&x->body);
		x->res.len = x->body.len;
	}
	if (!x->res.ok)
		x->res.error = x->error;
	http_release(x);
	event_active(x->done, EV_TIMEOUT, 0);
}

/* Finished transfers, after curl_multi_socket_action has returned. */
static void
http_collect(struct http_client *f)
{
	const struct http_lib *lib = f->lib;
	struct http_request *x;
	CURLMsg *msg;
	int left;

	while ((msg = lib->multi_info_read(f->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		x = NULL;
		lib->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
		http_finish(x, msg->data.result);
	}
}

static void
http_done(evutil_socket_t fd, short what, void *arg)
{
	struct http_request *x = arg;

	x->cb(&x->res, x->arg);
	http_destroy(x);
}

int
http_url_host(const char *url, char *host, size_t hostlen, unsigned *port,
    const char **errstr)
{
	const struct http_lib *lib;
	CURLU *u;
	char *scheme = NULL, *h = NULL, *pt = NULL;
	unsigned long n = 443;
	int rc = HTTP_URL_BAD;

	if ((lib = http_lib_get(errstr)) == NULL)
		return HTTP_URL_NOLIB;
	if ((u = lib->url()) == NULL)
		return HTTP_URL_BAD;
	if (lib->url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    lib->url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    strcmp(scheme, "https") == 0 &&
	    lib->url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
	    h[0] != '\0') {
		if (lib->url_get(u, CURLUPART_PORT, &pt, 0) == CURLUE_OK)
			n = strtoul(pt, NULL, 10);
		if (h[0] == '[' && h[strlen(h) - 1] == ']') {
			memmove(h, h + 1, strlen(h));
			h[strlen(h) - 1] = '\0';
		}
		if (n > 0 && n < 65536 && strlen(h) < hostlen) {
			memcpy(host, h, strlen(h) + 1);
			str_lower(host);
			*port = (unsigned)n;
			rc = 0;
		}
	}
	lib->free(scheme);
	lib->free(h);
	lib->free(pt);
	lib->url_cleanup(u);
	return rc;
}

/* "+HOST:PORT:ADDR,[ADDR6]": a pinned, expiring DNS entry for curl. */
static struct curl_slist *
http_resolve(const struct http_lib *lib, const char *host, unsigned port,
    char *const *addrs, size_t naddrs)
{
	struct buf b;
	struct curl_slist *l;
	size_t i;

	buf_init(&b, 4096);
	buf_printf(&b,
	    strchr(host, ':') != NULL ? "+[%s]:%u:" : "+%s:%u:", host, port);
	for (i = 0; i < naddrs && i < HTTP_ADDRS_MAX; i++)
		buf_printf(&b,
		    strchr(addrs[i], ':') != NULL ? "%s[%s]" : "%s%s",
		    i > 0 ? "," : "", addrs[i]);
	l = lib->slist_append(NULL, buf_cstr(&b));
	buf_free(&b);
	return l;
}

static void
http_tls_opts(struct http_request *x)
{
	const struct http_lib *lib = x->f->lib;
	CURL *e = x->easy;

	lib->easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	lib->easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	lib->easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (x->f->ca_file != NULL) {
		/* The configured bundle replaces the system store. */
		lib->easy_setopt(e, CURLOPT_CAINFO, x->f->ca_file);
		lib->easy_setopt(e, CURLOPT_CAPATH, NULL);
	}
}

static void
http_post_opts(struct http_request *x, const struct http_request_params *p)
{
	const struct http_lib *lib = x->f->lib;
	CURL *e = x->easy;

	x->post = xmalloc(p->post_len > 0 ? p->post_len : 1);
	memcpy(x->post, p->post, p->post_len);
	x->ctype_hdr = xasprintf("Content-Type: %s", p->post_type);
	x->headers = lib->slist_append(NULL, x->ctype_hdr);
	x->headers = lib->slist_append(x->headers, "Expect:");
	lib->easy_setopt(e, CURLOPT_POST, 1L);
	lib->easy_setopt(e, CURLOPT_POSTFIELDS, x->post);
	lib->easy_setopt(
	    e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->post_len);
	lib->easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
}

static void
http_opts(struct http_request *x, const struct http_request_params *p)
{
	const struct http_lib *lib = x->f->lib;
	CURL *e = x->easy;
	long connect_ms = p->timeout_ms < HTTP_CONNECT_MS ?
	    (long)p->timeout_ms :
	    HTTP_CONNECT_MS;

	lib->easy_setopt(e, CURLOPT_URL, x->url);
	lib->easy_setopt(e, CURLOPT_PRIVATE, x);
	lib->easy_setopt(e, CURLOPT_RESOLVE, x->resolve);
	lib->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	lib->easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	lib->easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	lib->easy_setopt(e, CURLOPT_PROXY, ""); /* nor from env */
	lib->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	lib->easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	lib->easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	lib->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
	lib->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	lib->easy_setopt(e, CURLOPT_USERAGENT,
	    p->user_agent != NULL ? p->user_agent : "danerelay");
	lib->easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	lib->easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
	lib->easy_setopt(e, CURLOPT_WRITEDATA, x);
	if (p->post_type != NULL)
		http_post_opts(x, p);
	http_tls_opts(x);
}

/* The request cannot start: report it from the loop like any other. */
static struct http_request *
http_fail_early(struct http_request *x, const char *why)
{
	snprintf(x->error, sizeof(x->error), "%s", why);
	x->res.error = x->error;
	http_release(x);
	event_active(x->done, EV_TIMEOUT, 0);
	return x;
}

struct http_request *
http_request_start(struct http_client *f, const struct http_request_params *p,
    http_cb *cb, void *arg)
{
	struct http_request *x = xcalloc(1, sizeof(*x));
	const char *err;
	char host[256];
	unsigned port;

	x->f = f;
	x->cb = cb;
	x->arg = arg;
	x->timeout_ms = p->timeout_ms;
	buf_init(&x->body, p->max_body);
	x->done = event_new(f->base, -1, 0, http_done, x);
	x->url = xstrdup(p->url);
	TAILQ_INSERT_TAIL(&f->fetches, x, entry);
	/* libcurl first: its URL parser says whether the URL is https. */
	if ((err = http_client_start(f)) != NULL)
		return http_fail_early(x, err);
	if (http_url_host(p->url, host, sizeof(host), &port, &err) != 0)
		return http_fail_early(x, "not an https URL");
	if (p->naddrs == 0)
		return http_fail_early(x, "no address for the host");
	x->resolve = http_resolve(f->lib, host, port, p->addrs, p->naddrs);
	if ((x->easy = f->lib->easy_init()) == NULL || x->resolve == NULL)
		return http_fail_early(x, "libcurl cannot start");
	http_opts(x, p);
	f->lib->multi_add_handle(f->multi, x->easy);
	return x;
}

void
http_request_cancel(struct http_request *x)
{
	if (x != NULL)
		http_destroy(x);
}
