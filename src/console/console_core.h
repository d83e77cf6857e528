/*
 * console_core: what the core files of the console share (console.c,
 * console_http.c, console_html.c, console_auth.c). Pages never include
 * this: they see console_int.h only.
 */
#ifndef DR_CONSOLE_CORE_H
#define DR_CONSOLE_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "core/buf.h"

struct conf;
struct console_auth;
struct pg;
struct queue;
struct tlsrpt_store;

struct console {
	const struct conf *conf; /* the relay's boot configuration, borrowed */
	struct event_base *base; /* the console thread's own loop */
	struct evhttp *http;
	struct event *stop_ev; /* readable end of stop_pipe: loop exit */
	int stop_pipe[2];
	pthread_t thread;
	bool running;
	struct queue *queue;         /* our own connection */
	struct tlsrpt_store *tlsrpt; /* our own connection, or NULL */
	struct pg *fleet;            /* [fleet] postgres: our own handle,
	                              * or NULL (console_fleet.c) */
	bool fleet_was_down;         /* the last fleet read fell back */
	char fleet_err[640];
	char *chart_js; /* the Chart.js file, read at start */
	size_t chart_js_len;
	SSL_CTX *tls;              /* [admin] tls_cert: HTTPS, or NULL */
	struct console_auth *auth; /* sessions, logins, CSRF */
	char listen[128];          /* [admin] listen, for Origin checks */
	struct console_req *reqs;  /* not answered yet (freed at stop) */
	/* The CPU budget (console_http.c): seconds of this thread's CPU it
	 * may still spend now; refilled at CONSOLE_CPU_SHARE. */
	double budget;
	double budget_cpu;  /* the thread's CPU time at the last debit */
	double budget_wall; /* the monotonic time of the last refill */
};

/* One request, from the handler's call until its answer is sent. */
struct console_req {
	struct console *con;
	struct evhttp_request *req;
	const struct console_page *page; /* NULL: a core route */
	struct evkeyvalq query, form;    /* decoded arguments */
	char *rest;                      /* after a prefix route, decoded */
	struct console_session *sess;    /* NULL: none */
	bool set_cookie;                 /* sess is new: send its cookie */
	bool clear_cookie;               /* logged out: expire the cookie */
	bool began;                      /* console_begin() ran */
	bool fleet_used;   /* an answer came from the fleet's database */
	bool fleet_down;   /* a read fell back to this node's queue */
	bool fleet_banner; /* the banner saying so is on the page */
	struct buf body;
	const char ***vecs; /* console_args() results, freed at the end */
	size_t nvecs;
	struct event *timer;             /* a login's delay */
	struct console_req *prev, *next; /* con->reqs */
};

/* Free r without answering (console_stop: the loop is gone). */
void console_req_free(struct console_req *r);

/* Send body (NULL: r->body) with the console's headers; frees r. */
void console_http_send(struct console_req *r, int code, const char *type,
    const char *body, size_t len, const char *cache);

/* The core's own routes (console_login.c). */
void console_login_get(struct console_req *r);
void console_login_post(struct console_req *r);
void console_logout_post(struct console_req *r);

/* HTML-escape s onto b (console_html.c). */
void console_escape(struct buf *b, const char *s);

/* [admin] tls_cert and tls_key as con->tls, or nothing when unset
 * (console_tls.c). 0, or -1 with *errstr. */
int console_tls_new(struct console *con, char **errstr);

/* HTTPS on con->http when con->tls is set (console_tls.c). */
void console_tls_setup(struct console *con);

/* Sessions, logins and CSRF tokens (console_auth.c). tls: cookies get
 * Secure. Returns new, or NULL with *errstr. */
struct console_auth *console_auth_new(
    const struct conf *c, bool tls, char **errstr);
void console_auth_free(struct console_auth *a);

/* Install the request handler on con->http (console_http.c). */
void console_http_setup(struct console *con);

/* The embedded stylesheet and script (console_static.c). */
extern const char console_static_css[];
extern const char console_static_js[];

#endif
