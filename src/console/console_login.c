/*
 * console_login: /login and /logout, the core's own pages.
 *
 * The login form is a POST like any other: it needs the (anonymous)
 * session its GET created and that session's CSRF token, so that another
 * site cannot log a browser in under its own account. A good password
 * opens a new session (the old id is never promoted: no fixation); a
 * wrong one is answered after a delay that grows with the failures of
 * the client's network, and a network over the limit is locked out
 * (console_auth.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>

#include "console/console_auth.h"
#include "console/console_core.h"
#include "console/console_int.h"
#include "core/log.h"

/* Where to go after the login: a path of ours, never another site. */
static const char *
login_next(struct console_req *r)
{
	const char *next = console_arg(r, "next");

	if (next == NULL || next[0] != '/' || next[1] == '/' ||
	    next[1] == '\\' || strchr(next, '\r') != NULL ||
	    strchr(next, '\n') != NULL)
		return "/";
	return next;
}

static void
login_form(struct console_req *r, const char *error)
{
	console_begin(r, "Log in", false);
	console_printf(r, "<div class=\"login\">");
	if (error != NULL) {
		console_printf(r, "<p class=\"error\" id=\"login-error\">");
		console_text(r, error);
		console_printf(r, "</p>");
	}
	console_printf(r, "<form method=\"post\" action=\"/login\">");
	console_csrf_input(r);
	console_printf(r, "<input type=\"hidden\" name=\"next\" value=\"");
	console_text(r, login_next(r));
	console_printf(r,
	    "\"><label>User <input name=\"user\" autocomplete=\"username\" "
	    "required autofocus></label><label>Password <input "
	    "type=\"password\" name=\"password\" "
	    "autocomplete=\"current-password\" required></label>"
	    "<button type=\"submit\">Log in</button></form></div>");
}

void
console_login_get(struct console_req *r)
{
	if (!console_auth_required(r->con->auth) ||
	    console_user(r)[0] != '\0') {
		console_redirect(r, login_next(r));
		return;
	}
	login_form(r, NULL);
	console_end(r);
}

static void
login_delayed(evutil_socket_t fd, short ev, void *arg)
{
	struct console_req *r = arg;

	buf_adds(&r->body, "\n</main></body></html>\n");
	console_http_send(
	    r, 403, "text/html; charset=utf-8", NULL, 0, "no-store");
}

/* A wrong password: the page now, sent after wait seconds. */
static void
login_refuse(struct console_req *r, unsigned wait)
{
	struct timeval tv = { (time_t)wait, 0 };

	login_form(r, "Wrong user or password.");
	r->timer = evtimer_new(console_base(r), login_delayed, r);
	evtimer_add(r->timer, &tv);
}

static void
login_locked(struct console_req *r, unsigned wait)
{
	char text[160];

	snprintf(text, sizeof(text),
	    "Too many failed logins from your network: try again in %u "
	    "minutes.",
	    (wait + 59) / 60);
	console_fail(r, 429, text);
}

/* A user name for the log: printable ASCII, at most 64 characters. */
static const char *
login_safe(const char *user, char out[65])
{
	size_t i;

	for (i = 0; user[i] != '\0' && i < 64; i++)
		out[i] = user[i] > 0x20 && user[i] < 0x7f ? user[i] : '?';
	out[i] = '\0';
	return out;
}

void
console_login_post(struct console_req *r)
{
	struct evhttp_connection *c = evhttp_request_get_connection(r->req);
	const char *user = console_arg(r, "user");
	const char *pw = console_arg(r, "password");
	char *peer_ip = NULL, safe[65];
	ev_uint16_t peer_port = 0;
	unsigned wait = 0;
	int rc;

	if (user == NULL || pw == NULL) {
		console_fail(r, 400, "user and password, please");
		return;
	}
	login_safe(user, safe);
	evhttp_connection_get_peer(c, &peer_ip, &peer_port);
	rc = console_auth_login(r->con->auth, evhttp_connection_get_addr(c),
	    user, pw, time(NULL), &wait);
	if (rc == 1) {
		log_info("console: login user=%s client=%s", safe,
		    peer_ip != NULL ? peer_ip : "?");
		console_auth_close(r->con->auth, r->sess);
		r->sess = console_auth_open(r->con->auth, user, time(NULL));
		r->set_cookie = true;
		console_redirect(r, login_next(r));
		return;
	}
	log_warnx("console: login %s user=%s client=%s",
	    rc == 0 ? "failed" : "locked out", safe,
	    peer_ip != NULL ? peer_ip : "?");
	if (rc == -1)
		login_locked(r, wait);
	else
		login_refuse(r, wait);
}

void
console_logout_post(struct console_req *r)
{
	console_auth_close(r->con->auth, r->sess);
	r->sess = NULL;
	r->clear_cookie = true;
	console_redirect(
	    r, console_auth_required(r->con->auth) ? "/login" : "/");
}
