/*
 * console_http: one HTTP request of the console, from libevent's evhttp
 * to a page of the route table (console_route.c) and back.
 *
 * The core decides here, before any page runs, what a request may do:
 * the Host it names (a loopback console answers only to loopback names,
 * so that a web site cannot rebind its own name to 127.0.0.1 and read the
 * pages), the session it needs, and for every POST a session, an Origin
 * that is ours (when the browser sends one) and the session's CSRF token
 * in the form field "csrf" (docs/CONSOLE.md, security model). Every answer
 * carries the security headers below.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "console/console_auth.h"
#include "console/console_core.h"
#include "console/console_int.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define CONSOLE_BODY_MAX   (1u << 20) /* a request's body (forms) */
#define CONSOLE_HEADER_MAX (16u << 10)
#define CONSOLE_PAGE_MAX   (64u << 20) /* a page we write */
#define CONSOLE_TIMEOUT_S  30

/*
 * The console's CPU budget: its thread may use CONSOLE_CPU_SHARE of one
 * CPU on average, with bursts of CONSOLE_CPU_BURST seconds (a page that
 * takes a while, after a quiet minute). Past that, requests wait their
 * turn, and one that would wait more than CONSOLE_CPU_BACKLOG seconds
 * gets 503: a client hammering the console slows the console, not the
 * delivery loop that shares the machine (docs/CONSOLE.md).
 */
#define CONSOLE_CPU_SHARE   0.05
#define CONSOLE_CPU_BURST   0.5
#define CONSOLE_CPU_BACKLOG 30.0

/* Content-Security-Policy: nothing inline, nothing from elsewhere. */
#define CONSOLE_CSP                                                     \
	"default-src 'self'; img-src 'self' data:; object-src 'none'; " \
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

void
console_req_free(struct console_req *r)
{
	size_t i;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		r->con->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	console_auth_release(r->con->auth, r->sess);
	evhttp_clear_headers(&r->query);
	evhttp_clear_headers(&r->form);
	for (i = 0; i < r->nvecs; i++)
		free(r->vecs[i]);
	free(r->vecs);
	if (r->timer != NULL)
		event_free(r->timer);
	free(r->rest);
	buf_free(&r->body);
	free(r);
}

void
console_http_send(struct console_req *r, int code, const char *type,
    const char *body, size_t len, const char *cache)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *out = evbuffer_new();
	char cookie[256];
	bool tls = r->con->tls != NULL;

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Content-Security-Policy", CONSOLE_CSP);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	/* Not "no-referrer": with it a browser sends "Origin: null" on our
	 * own forms (Fetch, serializing a request origin), and every POST
	 * was refused. Nothing leaves for another site either way. */
	evhttp_add_header(h, "Referrer-Policy", "same-origin");
	evhttp_add_header(h, "Cache-Control", cache);
	if (tls)
		evhttp_add_header(
		    h, "Strict-Transport-Security", "max-age=31536000");
	if (r->set_cookie && r->sess != NULL) {
		snprintf(cookie, sizeof(cookie),
		    "%s=%s; Path=/; HttpOnly; SameSite=Strict%s",
		    CONSOLE_COOKIE, console_session_id(r->sess),
		    tls ? "; Secure" : "");
		evhttp_add_header(h, "Set-Cookie", cookie);
	} else if (r->clear_cookie) {
		snprintf(cookie, sizeof(cookie),
		    "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
		    CONSOLE_COOKIE, tls ? "; Secure" : "");
		evhttp_add_header(h, "Set-Cookie", cookie);
	}
	if (body == NULL) {
		body = buf_cstr(&r->body);
		len = r->body.len;
	}
	evbuffer_add(out, body, len);
	evhttp_send_reply(r->req, code, NULL, out);
	evbuffer_free(out);
	console_req_free(r);
}

/* --- arguments --- */

static const char *
console_find(struct evkeyvalq *q, const char *name)
{
	return evhttp_find_header(q, name);
}

const char *
console_arg(struct console_req *r, const char *name)
{
	const char *v = console_find(&r->form, name);

	return v != NULL ? v : console_find(&r->query, name);
}

static size_t
console_count(struct evkeyvalq *q, const char *name)
{
	struct evkeyval *kv;
	size_t n = 0;

	TAILQ_FOREACH (kv, q, next)
		n += strcmp(kv->key, name) == 0;
	return n;
}

static size_t
console_collect(struct evkeyvalq *q, const char *name, const char **v)
{
	struct evkeyval *kv;
	size_t n = 0;

	TAILQ_FOREACH (kv, q, next)
		if (strcmp(kv->key, name) == 0)
			v[n++] = kv->value;
	return n;
}

const char *const *
console_args(struct console_req *r, const char *name, size_t *n)
{
	size_t total =
	    console_count(&r->form, name) + console_count(&r->query, name);
	const char **v = xcalloc(total + 1, sizeof(*v));

	*n = console_collect(&r->form, name, v);
	*n += console_collect(&r->query, name, v + *n);
	r->vecs = xreallocarray(r->vecs, r->nvecs + 1, sizeof(*r->vecs));
	r->vecs[r->nvecs++] = v;
	return v;
}

const char *
console_rest(struct console_req *r)
{
	return r->rest != NULL ? r->rest : "";
}

const char *
console_user(struct console_req *r)
{
	return r->sess != NULL ? console_session_user(r->sess) : "";
}

const struct conf *
console_conf(struct console_req *r)
{
	return r->con->conf;
}

struct queue *
console_queue(struct console_req *r)
{
	return r->con->queue;
}

struct tlsrpt_store *
console_tlsrpt(struct console_req *r)
{
	return r->con->tlsrpt;
}

struct event_base *
console_base(struct console_req *r)
{
	return r->con->base;
}

/* An urlencoded form body into r->form; -1 when it is not one. */
static int
console_parse_form(struct console_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	const char *type = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "Content-Type");
	size_t len = evbuffer_get_length(in);
	char *text;
	int rc;

	if (len == 0)
		return 0;
	if (type == NULL ||
	    strncmp(type, "application/x-www-form-urlencoded", 33) != 0)
		return -1;
	text = xmalloc(len + 1);
	evbuffer_copyout(in, text, len);
	text[len] = '\0';
	rc = memchr(text, '\0', len) != NULL ?
	    -1 :
	    evhttp_parse_query_str(text, &r->form);
	free(text);
	return rc;
}

/* --- who may do what --- */

/* A loopback console answers to loopback names only (DNS rebinding). */
static bool
console_host_ok(struct console_req *r)
{
	const char *host = evhttp_request_get_host(r->req);

	if (console_auth_required(r->con->auth))
		return true; /* a login and a session cookie stand guard */
	struct in_addr a4;

	if (host == NULL)
		return false;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "[::1]") == 0;
}

/* An Origin header, when the browser sends one, names us. */
static bool
console_origin_ok(struct console_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *origin = evhttp_find_header(h, "Origin");
	const char *host = evhttp_find_header(h, "Host");
	const char *scheme = r->con->tls != NULL ? "https://" : "http://";
	size_t sl = strlen(scheme);

	if (origin == NULL)
		return true;
	return host != NULL && strncmp(origin, scheme, sl) == 0 &&
	    strcmp(origin + sl, host) == 0;
}

/* A POST: a session, our Origin, its CSRF token. */
static bool
console_post_ok(struct console_req *r)
{
	/* From the body only: a token in a URL ends up in logs. */
	return r->sess != NULL && console_origin_ok(r) &&
	    console_session_csrf_ok(r->sess, console_find(&r->form, "csrf"));
}

/* The session of the request's cookie; a new anonymous one for a page
 * when no login is needed, or for the login form. */
static void
console_session(struct console_req *r, const char *path, bool post)
{
	struct console_auth *a = r->con->auth;
	const char *cookie = evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), "Cookie");
	time_t now = time(NULL);

	r->sess = console_auth_find(a, cookie, now);
	if (r->sess != NULL || post || strcmp(path, "/metrics") == 0)
		return;
	if (console_auth_required(a) && strcmp(path, "/login") != 0)
		return;
	r->sess = console_auth_open(a, "", now);
	r->set_cookie = true;
}

/* Logged in, when logins are required. */
static bool
console_logged_in(struct console_req *r)
{
	return !console_auth_required(r->con->auth) ||
	    (r->sess != NULL && console_session_user(r->sess)[0] != '\0');
}

/* --- routing --- */

static const struct console_page console_core_pages[] = {
	{ "/login", NULL, console_login_get, console_login_post },
	{ "/logout", NULL, NULL, console_logout_post },
	{ NULL, NULL, NULL, NULL },
};

static const struct console_page *
console_route_in(const struct console_page *t, const char *path, size_t *plen)
{
	size_t i, n;

	for (i = 0; t[i].path != NULL; i++) {
		n = strlen(t[i].path);
		if (strcmp(path, t[i].path) == 0 ||
		    (n > 1 && t[i].path[n - 1] == '/' &&
		        strncmp(path, t[i].path, n) == 0)) {
			*plen = n;
			return &t[i];
		}
	}
	return NULL;
}

static const struct console_page *
console_route(const char *path, size_t *plen)
{
	const struct console_page *p;

	if ((p = console_route_in(console_core_pages, path, plen)) != NULL)
		return p;
	return console_route_in(console_pages, path, plen);
}

/* /static/...: the embedded assets, and Chart.js as read at start. */
static bool
console_static(struct console_req *r, const char *path)
{
	const char *cache = "no-cache";

	if (strcmp(path, "/static/console.css") == 0)
		console_http_send(r, 200, "text/css; charset=utf-8",
		    console_static_css, strlen(console_static_css), cache);
	else if (strcmp(path, "/static/console.js") == 0)
		console_http_send(r, 200, "text/javascript; charset=utf-8",
		    console_static_js, strlen(console_static_js), cache);
	else if (strcmp(path, "/favicon.ico") == 0)
		console_http_send(
		    r, 204, "image/x-icon", "", 0, "max-age=86400");
	else if (strcmp(path, "/static/chart.js") == 0)
		console_http_send(r, 200, "text/javascript; charset=utf-8",
		    r->con->chart_js, r->con->chart_js_len, cache);
	else
		return false;
	return true;
}

static void
console_not_allowed(struct console_req *r, const struct console_page *p)
{
	char allow[32];

	snprintf(allow, sizeof(allow), "%s%s",
	    p->get != NULL ? "GET, HEAD" : "",
	    p->post == NULL    ? "" :
	        p->get != NULL ? ", POST" :
	                         "POST");
	evhttp_add_header(
	    evhttp_request_get_output_headers(r->req), "Allow", allow);
	console_fail(r, 405, "method not allowed");
}

/* Logins required and none: a page asks for one, the rest is refused. */
static void
console_need_login(struct console_req *r, const char *path, bool post)
{
	const char *uri = evhttp_request_get_uri(r->req);
	char *enc, *loc;

	if (post || strcmp(path, "/metrics") == 0) {
		console_fail(r, 403, "log in first");
		return;
	}
	enc = evhttp_encode_uri(uri);
	loc = xasprintf("/login?next=%s", enc);
	console_redirect(r, loc);
	free(loc);
	free(enc);
}

static bool
console_open_route(const char *path, bool metrics_closed)
{
	return strcmp(path, "/login") == 0 ||
	    (strcmp(path, "/metrics") == 0 && !metrics_closed);
}

static void
console_dispatch(struct console_req *r, const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(r->req);
	bool post = m == EVHTTP_REQ_POST;
	const struct console_page *p;
	size_t plen = 0;

	if ((p = console_route(path, &plen)) == NULL) {
		console_fail(r, 404, "no such page");
		return;
	}
	r->page = p;
	if (p->path[plen - 1] == '/' && plen > 1)
		r->rest = evhttp_uridecode(path + plen, 0, NULL);
	if (post ? p->post == NULL :
	           (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) ||
	            p->get == NULL) {
		console_not_allowed(r, p);
		return;
	}
	console_session(r, path, post);
	if (!console_logged_in(r) &&
	    !console_open_route(
	        path, console_auth_metrics_closed(r->con->auth))) {
		console_need_login(r, path, post);
		return;
	}
	if (post && (console_parse_form(r) == -1 || !console_post_ok(r))) {
		console_fail(r, 403,
		    "refused: this form needs a session and its token (reload "
		    "the page and try again)");
		return;
	}
	(post ? p->post : p->get)(r);
}

static double
console_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Charge the CPU this thread used since the last call (parsing, pages,
 * TLS, sending: all of it) and refill for the time gone by; the seconds
 * the next request must wait (0: now).
 */
static double
console_budget(struct console *con)
{
	double cpu = console_clock(CLOCK_THREAD_CPUTIME_ID);
	double wall = console_clock(CLOCK_MONOTONIC);

	if (con->budget_wall == 0) {
		con->budget = CONSOLE_CPU_BURST;
		con->budget_cpu = cpu;
		con->budget_wall = wall;
	}
	con->budget += (wall - con->budget_wall) * CONSOLE_CPU_SHARE;
	if (con->budget > CONSOLE_CPU_BURST)
		con->budget = CONSOLE_CPU_BURST;
	con->budget -= cpu - con->budget_cpu;
	con->budget_cpu = cpu;
	con->budget_wall = wall;
	return con->budget >= 0 ? 0 : -con->budget / CONSOLE_CPU_SHARE;
}

static void console_serve(struct console_req *r);

static void
console_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct console_req *r = arg;

	event_free(r->timer);
	r->timer = NULL;
	console_serve(r);
}

static void
console_handle(struct evhttp_request *req, void *arg)
{
	struct console_req *r = xcalloc(1, sizeof(*r));
	struct console *con = arg;
	double wait = console_budget(con);
	struct timeval tv;

	r->con = con;
	r->req = req;
	r->next = r->con->reqs;
	if (r->next != NULL)
		r->next->prev = r;
	r->con->reqs = r;
	TAILQ_INIT(&r->query);
	TAILQ_INIT(&r->form);
	buf_init(&r->body, CONSOLE_PAGE_MAX);
	if (wait == 0) {
		console_serve(r);
		return;
	}
	if (wait > CONSOLE_CPU_BACKLOG) {
		console_http_send(r, 503, "text/plain; charset=utf-8",
		    "busy: try again later\n", 22, "no-store");
		return;
	}
	/* Each waiting request books its own slot: the budget goes on
	 * into debt by a small request's worth, so that they leave one
	 * by one rather than all at once. */
	con->budget -= 0.001;
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
	r->timer = evtimer_new(con->base, console_resume, r);
	evtimer_add(r->timer, &tv);
}

static void
console_serve(struct console_req *r)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evhttp_request *req = r->req;

	if (path == NULL || path[0] == '\0')
		path = "/";
	if (!console_host_ok(r)) {
		console_fail(r, 421,
		    "this console answers to a loopback "
		    "address or localhost only");
		return;
	}
	if (query != NULL && evhttp_parse_query_str(query, &r->query) == -1) {
		console_fail(r, 400, "malformed query string");
		return;
	}
	if ((strncmp(path, "/static/", 8) == 0 ||
	        strcmp(path, "/favicon.ico") == 0) &&
	    (evhttp_request_get_command(req) &
	        (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)) != 0 &&
	    console_static(r, path))
		return;
	console_dispatch(r, path);
}

void
console_http_setup(struct console *con)
{
	evhttp_set_allowed_methods(con->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	        EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(con->http, CONSOLE_BODY_MAX);
	evhttp_set_max_headers_size(con->http, CONSOLE_HEADER_MAX);
	evhttp_set_timeout(con->http, CONSOLE_TIMEOUT_S);
	evhttp_set_gencb(con->http, console_handle, con);
}
