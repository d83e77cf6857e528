/*
 * test_console: the console's sessions, CSRF tokens and login throttling
 * (console_auth.c), and its HTML escaping (console_html.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "console/console_auth.h"
#include "console/console_core.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "server/server.h"
#include "t.h"

#define PASSWORD "correct horse"

static char users_path[] = "/tmp/dr-test-console.XXXXXX";

/* A console_auth of [admin] with auth_file (users) or without. */
static struct console_auth *
auth_new(bool users, struct conf **cp)
{
	char text[512], *err = NULL;
	struct console_auth *a;

	snprintf(text, sizeof(text),
	    "[server]\nauth_max_failures = 3\nauth_lockout = 60s\n"
	    "[admin]\nlisten = 127.0.0.1:8025\n%s%s\n",
	    users ? "auth_file = " : "", users ? users_path : "");
	*cp = conf_parse(text, strlen(text), "test.conf", &err);
	if (*cp == NULL) {
		printf("  conf: %s\n", err);
		free(err);
		return NULL;
	}
	a = console_auth_new(*cp, false, &err);
	if (a == NULL) {
		printf("  auth: %s\n", err);
		free(err);
	}
	return a;
}

static void
make_users(void)
{
	char *hash = server_auth_hash(PASSWORD);
	int fd = mkstemp(users_path);
	FILE *fp = fd != -1 ? fdopen(fd, "w") : NULL;

	if (fp == NULL || hash == NULL) {
		perror("users file");
		exit(2);
	}
	fprintf(fp, "admin:%s\n", hash);
	fclose(fp);
	free(hash);
}

static char *
cookie_of(const struct console_session *s)
{
	return xasprintf("theme=dark; %s=%s; other=1", CONSOLE_COOKIE,
	    console_session_id(s));
}

/* No login: anonymous sessions whose token follows from the cookie. */
static void
anonymous_stateless(void)
{
	struct conf *c;
	struct console_auth *a = auth_new(false, &c);
	struct console_session *s, *again;
	char *cookie, *token;

	T_CHECK(a != NULL);
	if (a == NULL)
		return;
	T_CHECK(!console_auth_required(a));
	T_CHECK(!console_auth_metrics_closed(a));
	s = console_auth_open(a, "", 1000);
	T_CHECK(strlen(console_session_id(s)) == 64);
	T_CHECK(strspn(console_session_csrf(s), "0123456789abcdef") == 64);
	T_CHECK(strcmp(console_session_id(s), console_session_csrf(s)) != 0);
	T_CHECK(console_session_csrf_ok(s, console_session_csrf(s)));
	T_CHECK(!console_session_csrf_ok(s, NULL));
	T_CHECK(!console_session_csrf_ok(s, ""));
	T_CHECK(!console_session_csrf_ok(s, console_session_id(s)));
	T_STREQ(console_session_user(s), "");
	cookie = cookie_of(s);
	token = xstrdup(console_session_csrf(s));
	console_auth_release(a, s);
	/* A later request with the cookie: the same token, nothing kept. */
	again = console_auth_find(a, cookie, 2000);
	T_CHECK(again != NULL && console_session_csrf_ok(again, token));
	console_auth_release(a, again);
	T_CHECK(console_auth_find(a, NULL, 2000) == NULL);
	T_CHECK(console_auth_find(a, "danerelay_session=xyz", 2000) == NULL);
	T_CHECK(console_auth_find(a,
	            "danerelay_session=ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"
	            "ZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
	            2000) == NULL);
	free(cookie);
	free(token);
	console_auth_free(a);
	conf_free(c);
}

/* Logins: sessions live in the table, expire idle and absolute. */
static void
user_sessions_expire(void)
{
	struct conf *c;
	struct console_auth *a = auth_new(true, &c);
	struct console_session *s, *f;
	char *cookie;
	time_t t;

	T_CHECK(a != NULL);
	if (a == NULL)
		return;
	T_CHECK(console_auth_required(a));
	T_CHECK(console_auth_metrics_closed(a));
	s = console_auth_open(a, "admin", 1000);
	cookie = cookie_of(s);
	console_auth_release(a, s);
	f = console_auth_find(a, cookie, 1000 + CONSOLE_SESSION_IDLE - 1);
	T_CHECK(f == s);
	T_STREQ(f != NULL ? console_session_user(f) : NULL, "admin");
	console_auth_release(a, f);
	/* Used every 10 minutes: still ends 12 hours after the login. */
	for (t = 1000 + 600; t < 1000 + CONSOLE_SESSION_MAX; t += 600) {
		f = console_auth_find(a, cookie, t);
		if (f == NULL)
			break;
		console_auth_release(a, f);
	}
	T_CHECK(t >= 1000 + CONSOLE_SESSION_MAX);
	T_CHECK(
	    console_auth_find(a, cookie, 1000 + CONSOLE_SESSION_MAX) == NULL);
	free(cookie);
	/* Idle too long. */
	s = console_auth_open(a, "admin", 5000);
	cookie = cookie_of(s);
	console_auth_release(a, s);
	T_CHECK(
	    console_auth_find(a, cookie, 5000 + CONSOLE_SESSION_IDLE) == NULL);
	free(cookie);
	/* An unknown id is no session when logins are required. */
	T_CHECK(console_auth_find(a,
	            "danerelay_session=00000000000000000000000000000000000000"
	            "00000000000000000000000000",
	            5000) == NULL);
	console_auth_free(a);
	conf_free(c);
}

/* A full table drops login forms' sessions before users'. */
static void
full_table_keeps_users(void)
{
	struct conf *c;
	struct console_auth *a = auth_new(true, &c);
	struct console_session *s, *anon, *f;
	char *user_cookie = NULL, *anon_cookie;
	int i;

	T_CHECK(a != NULL);
	if (a == NULL)
		return;
	anon = console_auth_open(a, "", 100); /* the oldest of all */
	anon_cookie = cookie_of(anon);
	console_auth_release(a, anon);
	for (i = 0; i < 300; i++) {
		s = console_auth_open(a, "admin", 200 + i);
		if (i == 100)
			user_cookie = cookie_of(s);
		console_auth_release(a, s);
	}
	T_CHECK(console_auth_find(a, anon_cookie, 600) == NULL);
	/* 300 users in 256 places: the least recently used went. */
	f = console_auth_find(a, user_cookie, 600);
	T_CHECK(f != NULL);
	console_auth_release(a, f);
	free(user_cookie);
	free(anon_cookie);
	console_auth_free(a);
	conf_free(c);
}

/* A session a request holds outlives its logout until released. */
static void
held_session_survives_close(void)
{
	struct conf *c;
	struct console_auth *a = auth_new(true, &c);
	struct console_session *s, *held, *other;
	char *cookie;

	T_CHECK(a != NULL);
	if (a == NULL)
		return;
	s = console_auth_open(a, "admin", 100);
	cookie = cookie_of(s);
	console_auth_release(a, s);
	held = console_auth_find(a, cookie, 101);  /* a waiting page */
	other = console_auth_find(a, cookie, 102); /* the logout */
	console_auth_close(a, other);
	T_CHECK(console_auth_find(a, cookie, 103) == NULL);
	T_STREQ(console_session_user(held), "admin"); /* still readable */
	console_auth_release(a, held);
	free(cookie);
	console_auth_free(a);
	conf_free(c);
}

static struct sockaddr_in
v4(const char *ip)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sa.sin_addr);
	return sa;
}

/* Wrong passwords: growing delays, then a lockout of the network. */
static void
login_throttle(void)
{
	struct conf *c;
	struct console_auth *a = auth_new(true, &c);
	struct sockaddr_in me = v4("192.0.2.7"), other = v4("192.0.2.8");
	const struct sockaddr *sa = (const struct sockaddr *)&me;
	unsigned wait;

	T_CHECK(a != NULL);
	if (a == NULL)
		return;
	T_CHECK(console_auth_login(a, sa, "admin", PASSWORD, 100, &wait) == 1);
	T_CHECK(console_auth_login(a, sa, "admin", "nope", 100, &wait) == 0);
	T_CHECK(wait == 1);
	T_CHECK(console_auth_login(a, sa, "nobody", PASSWORD, 101, &wait) == 0);
	T_CHECK(wait == 2);
	T_CHECK(console_auth_login(a, sa, "admin", "nope", 102, &wait) == -1);
	T_CHECK(wait == 60);
	/* Locked out: even the right password. */
	T_CHECK(console_auth_login(a, sa, "admin", PASSWORD, 103, &wait) == -1);
	/* Another network is not. */
	T_CHECK(console_auth_login(a, (const struct sockaddr *)&other, "admin",
	            PASSWORD, 103, &wait) == 1);
	/* The lockout ends auth_lockout after the last failure. */
	T_CHECK(
	    console_auth_login(a, sa, "admin", PASSWORD, 102 + 61, &wait) == 1);
	console_auth_free(a);
	conf_free(c);
}

static void
escape(void)
{
	struct buf b;

	buf_init(&b, 1024);
	console_escape(&b, "<a href='x'>&\"</a>");
	T_STREQ(
	    buf_cstr(&b), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
	buf_free(&b);
}

int
main(void)
{
	make_users();
	T_RUN(anonymous_stateless);
	T_RUN(user_sessions_expire);
	T_RUN(full_table_keeps_users);
	T_RUN(held_session_survives_close);
	T_RUN(login_throttle);
	T_RUN(escape);
	unlink(users_path);
	T_EXIT();
}
