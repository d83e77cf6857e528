/*
 * console_auth: sessions, logins and their throttling (console_auth.h).
 *
 * Passwords are checked with the code of [server] auth_file
 * (server_auth_check: scrypt, run here on the console thread, where a slow
 * hash delays other console requests but never a delivery). Failed logins
 * are counted per client network with server_authfail, the table SMTP
 * AUTH uses, with the same limits ([server] auth_max_failures within
 * auth_lockout lock a network out for auth_lockout).
 */
#include "console/console_auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "conf/conf.h"
#include "console/console_core.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "server/server.h"
#include "server/server_authfail.h"

#define CONSOLE_TOKEN_BYTES 32
#define CONSOLE_TOKEN_HEX   (2 * CONSOLE_TOKEN_BYTES)
#define CONSOLE_SESSIONS    256 /* at most; the oldest makes room */
#define CONSOLE_AUTH_NETS   1024

struct console_session {
	char id[CONSOLE_TOKEN_HEX + 1];
	char csrf[CONSOLE_TOKEN_HEX + 1];
	char *user;
	time_t opened, used;
	bool stored;   /* in the table */
	unsigned refs; /* requests holding it (a page may answer later) */
};

struct console_auth {
	bool required, metrics_open;
	struct server_auth *users; /* [admin] auth_file, or NULL */
	struct server_authfail *fails;
	unsigned max_failures, lockout;
	struct console_session *v[CONSOLE_SESSIONS];
	size_t n;
	/* Anonymous sessions (no login required) keep no state: their CSRF
	 * token is HMAC-SHA256(secret, id), the secret drawn at start. */
	unsigned char secret[CONSOLE_TOKEN_BYTES];
};

static void
console_hex(const unsigned char *b, char out[CONSOLE_TOKEN_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < CONSOLE_TOKEN_BYTES; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[CONSOLE_TOKEN_HEX] = '\0';
}

static void
console_token(char out[CONSOLE_TOKEN_HEX + 1])
{
	unsigned char b[CONSOLE_TOKEN_BYTES];

	if (RAND_bytes(b, sizeof(b)) != 1)
		panic("RAND_bytes failed");
	console_hex(b, out);
	OPENSSL_cleanse(b, sizeof(b));
}

/* An anonymous session of id: its token derived, nothing stored. */
static struct console_session *
console_anonymous(struct console_auth *a, const char *id, time_t now)
{
	struct console_session *s = xcalloc(1, sizeof(*s));
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	memcpy(s->id, id, CONSOLE_TOKEN_HEX + 1);
	if (HMAC(EVP_sha256(), a->secret, sizeof(a->secret),
	        (const unsigned char *)id, CONSOLE_TOKEN_HEX, mac,
	        &len) == NULL ||
	    len < CONSOLE_TOKEN_BYTES)
		panic("HMAC-SHA256 failed");
	console_hex(mac, s->csrf);
	s->user = xstrdup("");
	s->opened = s->used = now;
	s->refs = 1;
	return s;
}

struct console_auth *
console_auth_new(const struct conf *c, bool tls, char **errstr)
{
	struct console_auth *a = xcalloc(1, sizeof(*a));
	const char *file = conf_str(c, CONF_ADMIN_AUTH_FILE);

	/* relay_check refused a non-loopback listen without auth_file. */
	a->required = file != NULL;
	a->metrics_open = conf_bool(c, CONF_ADMIN_METRICS_OPEN);
	if (file != NULL &&
	    (a->users = server_auth_load(file, errstr)) == NULL) {
		free(a);
		return NULL;
	}
	a->fails = server_authfail_new(CONSOLE_AUTH_NETS);
	if (RAND_bytes(a->secret, sizeof(a->secret)) != 1)
		panic("RAND_bytes failed");
	a->max_failures = (unsigned)conf_int(c, CONF_SERVER_AUTH_MAX_FAILURES);
	a->lockout = (unsigned)conf_int(c, CONF_SERVER_AUTH_LOCKOUT);
	return a;
}

static void
console_session_free(struct console_session *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s->id, sizeof(s->id));
	OPENSSL_cleanse(s->csrf, sizeof(s->csrf));
	free(s->user);
	free(s);
}

void
console_auth_free(struct console_auth *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		console_session_free(a->v[i]);
	server_auth_free(a->users);
	server_authfail_free(a->fails);
	OPENSSL_cleanse(a->secret, sizeof(a->secret));
	free(a);
}

bool
console_auth_required(const struct console_auth *a)
{
	return a->required;
}

bool
console_auth_metrics_closed(const struct console_auth *a)
{
	return a->required && !a->metrics_open;
}

/* Out of the table; freed now unless a request still holds it. */
static void
console_auth_drop(struct console_auth *a, size_t i)
{
	struct console_session *s = a->v[i];

	a->v[i] = a->v[--a->n];
	s->stored = false;
	if (s->refs == 0)
		console_session_free(s);
}

static bool
console_session_live(const struct console_session *s, time_t now)
{
	return now - s->used < CONSOLE_SESSION_IDLE &&
	    now - s->opened < CONSOLE_SESSION_MAX;
}

/* The value of CONSOLE_COOKIE in a Cookie header (RFC 6265 §5.4), or
 * NULL; copied into out. */
static const char *
console_cookie_value(const char *hdr, char out[CONSOLE_TOKEN_HEX + 1])
{
	const char *p = hdr, *v;
	size_t nlen = strlen(CONSOLE_COOKIE), vlen;

	while (p != NULL && *p != '\0') {
		p += strspn(p, " ;");
		v = p + strcspn(p, ";");
		if (strncmp(p, CONSOLE_COOKIE, nlen) == 0 && p[nlen] == '=') {
			vlen = (size_t)(v - (p + nlen + 1));
			if (vlen != CONSOLE_TOKEN_HEX)
				return NULL;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return out;
		}
		p = v;
	}
	return NULL;
}

struct console_session *
console_auth_find(struct console_auth *a, const char *cookie, time_t now)
{
	char want[CONSOLE_TOKEN_HEX + 1];
	struct console_session *found = NULL;
	size_t i = 0;

	if (cookie == NULL || console_cookie_value(cookie, want) == NULL)
		return NULL;
	if (strspn(want, "0123456789abcdef") != CONSOLE_TOKEN_HEX)
		return NULL;
	/* Expired sessions go; the id compares in constant time. */
	while (i < a->n) {
		if (!console_session_live(a->v[i], now)) {
			console_auth_drop(a, i);
			continue;
		}
		if (CRYPTO_memcmp(a->v[i]->id, want, CONSOLE_TOKEN_HEX) == 0)
			found = a->v[i];
		i++;
	}
	if (found != NULL) {
		found->used = now;
		found->refs++;
	} else if (!a->required)
		found = console_anonymous(a, want, now);
	OPENSSL_cleanse(want, sizeof(want));
	return found;
}

/* Room for one more: the least recently used goes, anonymous ones (a
 * login form's) before those of users. */
static void
console_auth_room(struct console_auth *a)
{
	size_t i, pick = a->n;

	for (i = 0; i < a->n; i++) {
		bool anon = a->v[i]->user[0] == '\0';
		bool pick_anon = pick < a->n && a->v[pick]->user[0] == '\0';

		if (pick == a->n || (anon && !pick_anon) ||
		    (anon == pick_anon && a->v[i]->used < a->v[pick]->used))
			pick = i;
	}
	console_auth_drop(a, pick);
}

struct console_session *
console_auth_open(struct console_auth *a, const char *user, time_t now)
{
	struct console_session *s;
	char id[CONSOLE_TOKEN_HEX + 1];

	if (!a->required && user[0] == '\0') {
		console_token(id);
		return console_anonymous(a, id, now);
	}
	s = xcalloc(1, sizeof(*s));
	console_token(s->id);
	console_token(s->csrf);
	s->user = xstrdup(user);
	s->opened = s->used = now;
	s->stored = true;
	s->refs = 1;
	if (a->n == CONSOLE_SESSIONS)
		console_auth_room(a);
	a->v[a->n++] = s;
	return s;
}

void
console_auth_release(struct console_auth *a, struct console_session *s)
{
	if (s != NULL && --s->refs == 0 && !s->stored)
		console_session_free(s);
}

void
console_auth_close(struct console_auth *a, struct console_session *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < a->n; i++)
		if (a->v[i] == s) {
			console_auth_drop(a, i);
			break;
		}
	console_auth_release(a, s);
}

const char *
console_session_id(const struct console_session *s)
{
	return s->id;
}

const char *
console_session_csrf(const struct console_session *s)
{
	return s->csrf;
}

const char *
console_session_user(const struct console_session *s)
{
	return s->user;
}

bool
console_session_csrf_ok(const struct console_session *s, const char *token)
{
	return token != NULL && strlen(token) == CONSOLE_TOKEN_HEX &&
	    CRYPTO_memcmp(s->csrf, token, CONSOLE_TOKEN_HEX) == 0;
}

int
console_auth_login(struct console_auth *a, const struct sockaddr *peer,
    const char *user, const char *password, time_t now, unsigned *wait)
{
	unsigned n = server_authfail_count(a->fails, peer, a->lockout, now);

	*wait = 0;
	if (n >= a->max_failures) {
		*wait = a->lockout;
		return -1;
	}
	if (a->users != NULL && server_auth_check(a->users, user, password))
		return 1;
	n = server_authfail_add(a->fails, peer, a->lockout, now);
	if (n >= a->max_failures) {
		*wait = a->lockout; /* this one locked it: say so now */
		return -1;
	}
	/* 1 s, 2 s, 4 s, then 8 s, as SMTP AUTH; then the lockout. */
	*wait = n <= 1 ? 1 : 1u << (n > 4 ? 3 : n - 1);
	return 0;
}
