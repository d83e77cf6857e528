/*
 * server: listeners, the list of sessions, limits at accept time, reload
 * and shutdown (see server.h). One connection is server_session.c's
 * business; this file decides whether it may start.
 *
 * Listener sockets are made here (not by evconnlistener_new_bind) so that
 * an IPv6 listener is IPV6_V6ONLY: "[::]:25" and "0.0.0.0:25" can then be
 * configured side by side, and the relay decision sees real IPv4 peers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "metrics/metrics.h"
#include "server/server_int.h"

#define SERVER_BACKLOG 128
/* After accept() fails (EMFILE, ENFILE, ENOBUFS): pause, then retry. */
#define SERVER_ACCEPT_PAUSE_MS 1000
/* Refused connections still cost a socket: beyond this, no 421 either. */
#define SERVER_HARD_FACTOR 2

struct server_listener {
	struct server *srv;
	char *addr; /* as configured */
	struct evconnlistener *lis;
	struct event *pause; /* re-enables lis after an accept error */
};

struct server {
	struct event_base *base;
	struct server_config cfg; /* strings and vectors are ours */
	struct server_net *nets;
	struct server_listener **lis;
	size_t nlis;
	struct server_authpool *authpool; /* password checks */
	struct server_authfail *authfail; /* failures per network */
	struct server_session **sess;
	size_t nsess;   /* all sessions, refused ones included */
	size_t nactive; /* sessions not refused */
	unsigned long long next_id;
	bool shutting_down;
	void (*done)(void *arg);
	void *done_arg;
	struct event *done_ev;
};

/* ---- configuration -------------------------------------------------- */

static void
server_cfg_clear(struct server_config *c)
{
	str_vec_free(c->listen);
	str_vec_free(c->relay_networks);
	free((char *)(uintptr_t)c->hostname);
	SSL_CTX_free(c->tls);
	memset(c, 0, sizeof(*c));
}

/* Our name when the config gives none: the system's. */
static char *
server_default_hostname(void)
{
	char name[256];

	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		return xstrdup("localhost");
	name[sizeof(name) - 1] = '\0';
	return xstrdup(name);
}

/* A private copy of cfg, with 0 meaning the default. */
static void
server_cfg_copy(struct server_config *dst, const struct server_config *src)
{
	*dst = *src;
	dst->listen = str_vec_dup(src->listen);
	dst->relay_networks = str_vec_dup(src->relay_networks);
	dst->hostname = src->hostname != NULL && src->hostname[0] != '\0' ?
	    xstrdup(src->hostname) :
	    server_default_hostname();
	if (dst->tls != NULL)
		SSL_CTX_up_ref(dst->tls);
	if (dst->max_message_size == 0)
		dst->max_message_size = SERVER_MAX_MESSAGE_SIZE;
	if (dst->max_recipients == 0)
		dst->max_recipients = SERVER_MAX_RECIPIENTS;
	if (dst->max_connections == 0)
		dst->max_connections = SERVER_MAX_CONNECTIONS;
	if (dst->max_connections_per_ip == 0)
		dst->max_connections_per_ip = SERVER_MAX_PER_IP;
	if (dst->command_timeout_ms == 0)
		dst->command_timeout_ms = SERVER_COMMAND_TIMEOUT_MS;
	if (dst->data_timeout_ms == 0)
		dst->data_timeout_ms = SERVER_DATA_TIMEOUT_MS;
	if (dst->auth_max_failures == 0)
		dst->auth_max_failures = SERVER_AUTH_MAX_FAILURES;
	if (dst->auth_lockout == 0)
		dst->auth_lockout = SERVER_AUTH_LOCKOUT_S;
}

/* ---- sessions ------------------------------------------------------- */

struct event_base *
server_base(const struct server *s)
{
	return s->base;
}

const struct server_config *
server_cfg(const struct server *s)
{
	return &s->cfg;
}

bool
server_relay_allowed(const struct server *s, const struct sockaddr *sa)
{
	return server_net_match(s->nets, sa);
}

/* ---- AUTH: the workers and the failure count ------------------------ */

struct server_authpool *
server_auth_pool(const struct server *s)
{
	return s->authpool;
}

/* Seconds that only go forward: a clock step must not lift a lockout. */
static time_t
server_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

bool
server_auth_locked(struct server *s, const struct sockaddr *sa, unsigned *count)
{
	*count = server_authfail_count(
	    s->authfail, sa, s->cfg.auth_lockout, server_now());
	return *count >= s->cfg.auth_max_failures;
}

unsigned
server_auth_failed(
    struct server *s, const struct sockaddr *sa, unsigned *delay_ms)
{
	unsigned n = server_authfail_add(
	    s->authfail, sa, s->cfg.auth_lockout, server_now());
	unsigned shift = n > 1 ? n - 1 : 0;

	/* 1 s, 2 s, 4 s, then 8 s: guessing slows down at once. */
	if (shift > 3)
		shift = 3;
	*delay_ms = SERVER_AUTH_DELAY_MS << shift;
	if (*delay_ms > SERVER_AUTH_DELAY_MAX_MS)
		*delay_ms = SERVER_AUTH_DELAY_MAX_MS;
	return n;
}

/* ---- sessions (continued) ------------------------------------------- */

size_t
server_sessions(const struct server *s)
{
	return s->nsess;
}

static size_t
server_count_host(const struct server *s, const struct sockaddr *sa)
{
	size_t i, n = 0;

	for (i = 0; i < s->nsess; i++)
		if (!server_session_refused(s->sess[i]) &&
		    server_net_same_host(server_session_addr(s->sess[i]), sa))
			n++;
	return n;
}

void
server_session_gone(struct server *s, struct server_session *ss)
{
	size_t i;

	for (i = 0; i < s->nsess && s->sess[i] != ss; i++)
		;
	ASSERT(i < s->nsess);
	if (!server_session_refused(ss))
		s->nactive--;
	s->sess[i] = s->sess[--s->nsess];
	metrics_inbound_session(-1);
	if (s->shutting_down && s->nsess == 0)
		event_active(s->done_ev, EV_TIMEOUT, 0);
}

/*
 * RFC 5321 §3.1 lets a server refuse with 421 at the greeting: over the
 * total or per-address limit the client hears why and comes back later.
 */
static enum smtp_server_refuse
server_refusal(const struct server *s, const struct sockaddr *sa)
{
	if (s->nactive >= s->cfg.max_connections)
		return SMTP_SRV_REFUSE_BUSY;
	if (server_count_host(s, sa) >= s->cfg.max_connections_per_ip)
		return SMTP_SRV_REFUSE_PER_IP;
	return SMTP_SRV_REFUSE_NONE;
}

static void
server_accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct server_listener *l = arg;
	struct server *s = l->srv;
	struct server_session *ss;
	enum smtp_server_refuse refuse;

	/* A flood of refused clients must not cost unbounded sockets. */
	if (s->shutting_down ||
	    s->nsess >= (size_t)s->cfg.max_connections * SERVER_HARD_FACTOR) {
		evutil_closesocket(fd);
		return;
	}
	refuse = server_refusal(s, sa);
	ss = server_session_new(
	    s, fd, sa, (socklen_t)salen, refuse, ++s->next_id);
	s->sess = xreallocarray(s->sess, s->nsess + 1, sizeof(*s->sess));
	s->sess[s->nsess++] = ss;
	metrics_inbound_session(+1); /* refused ones too: they hold a socket */
	if (refuse == SMTP_SRV_REFUSE_NONE)
		s->nactive++;
	server_session_start(ss);
}

static void
server_pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_listener *l = arg;

	evconnlistener_enable(l->lis);
}

/* Out of descriptors: stop accepting for a moment instead of spinning. */
static void
server_accept_error_cb(struct evconnlistener *lis, void *arg)
{
	struct server_listener *l = arg;
	struct timeval tv = { .tv_sec = SERVER_ACCEPT_PAUSE_MS / 1000,
		.tv_usec = SERVER_ACCEPT_PAUSE_MS % 1000 * 1000 };

	log_warn("%s: accept", l->addr);
	evconnlistener_disable(lis);
	evtimer_add(l->pause, &tv);
}

/* ---- listeners ------------------------------------------------------ */

static evutil_socket_t
server_socket(const struct sockaddr *sa, socklen_t len)
{
	evutil_socket_t fd;
	int one = 1;

	fd = socket(
	    sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (sa->sa_family == AF_INET6 &&
	        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ==
	            -1) ||
	    bind(fd, sa, len) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void
server_listener_free(struct server_listener *l)
{
	if (l == NULL)
		return;
	if (l->lis != NULL)
		evconnlistener_free(l->lis); /* closes the socket */
	if (l->pause != NULL)
		event_free(l->pause);
	free(l->addr);
	free(l);
}

/*
 * "192.0.2.1:25" or "[2001:db8::1]:25" into ss (port 0 = any, for
 * tests). Numeric only: a listener must not depend on DNS at startup.
 */
static int
server_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *colon = strrchr(addr, ':');
	char host[INET6_ADDRSTRLEN + 2];
	size_t n = colon != NULL ? (size_t)(colon - addr) : 0;
	uint64_t port;

	memset(ss, 0, sizeof(*ss));
	if (colon == NULL || n == 0 || n >= sizeof(host) ||
	    str_to_uint(colon + 1, 0, 65535, &port) == -1)
		return -1;
	memcpy(host, addr, n);
	host[n] = '\0';
	if (host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	*len = sizeof(*sin);
	return 0;
}

/* Bind "ADDR:PORT" / "[v6]:PORT". Returns new, or NULL with *errstr. */
static struct server_listener *
server_listen(struct server *s, const char *addr, char **errstr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct server_listener *l;
	evutil_socket_t fd;

	if (server_parse_addr(addr, &ss, &len) == -1) {
		*errstr = xasprintf(
		    "listen %s: expected ADDR:PORT or [ADDR]:PORT", addr);
		return NULL;
	}
	if ((fd = server_socket((struct sockaddr *)&ss, len)) == -1) {
		*errstr = xasprintf("listen %s: %s", addr, strerror(errno));
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->srv = s;
	l->addr = xstrdup(addr);
	l->lis = evconnlistener_new(s->base, server_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, SERVER_BACKLOG, fd);
	l->pause = evtimer_new(s->base, server_pause_cb, l);
	if (l->lis == NULL || l->pause == NULL) {
		*errstr = xasprintf("listen %s: %s", addr, strerror(errno));
		if (l->lis == NULL)
			close(fd);
		server_listener_free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->lis, server_accept_error_cb);
	return l;
}

/* The listener bound to addr in v[0..n), or NULL. */
static struct server_listener **
server_find_listener(struct server_listener **v, size_t n, const char *addr)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] != NULL && strcmp(v[i]->addr, addr) == 0)
			return &v[i];
	return NULL;
}

static void
server_listeners_free(struct server_listener **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		server_listener_free(v[i]);
	free(v);
}

/* Bind what old lacks; on failure nothing has changed. */
static int
server_bind_new(struct server *s, char *const *listen, size_t count,
    struct server_listener **old, size_t nold, struct server_listener **v,
    char **errstr)
{
	size_t i, j;

	for (i = 0; i < count; i++) {
		for (j = 0; j < i; j++) {
			if (strcmp(listen[i], listen[j]) == 0) {
				*errstr = xasprintf(
				    "listen %s: listed twice", listen[i]);
				return -1;
			}
		}
		if (server_find_listener(old, nold, listen[i]) == NULL &&
		    (v[i] = server_listen(s, listen[i], errstr)) == NULL)
			return -1;
	}
	return 0;
}

/*
 * Listeners for every address of listen, reusing those of old (taken
 * out of it, so the caller frees what is left) so that a reload keeps
 * the sockets it still needs. Returns new, or NULL with *errstr and old
 * untouched.
 */
static struct server_listener **
server_listeners(struct server *s, char *const *listen,
    struct server_listener **old, size_t nold, size_t *n, char **errstr)
{
	struct server_listener **v, **slot;
	size_t i, count = 0;

	while (listen != NULL && listen[count] != NULL)
		count++;
	v = xcalloc(count + 1, sizeof(*v));
	if (server_bind_new(s, listen, count, old, nold, v, errstr) == -1) {
		server_listeners_free(v, count);
		return NULL;
	}
	for (i = 0; i < count; i++) {
		if (v[i] == NULL) {
			slot = server_find_listener(old, nold, listen[i]);
			v[i] = *slot;
			*slot = NULL;
		}
	}
	*n = count;
	return v;
}

/* ---- the contract --------------------------------------------------- */

char *
server_check_listen(char *const *listen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i, j;

	for (i = 0; listen != NULL && listen[i] != NULL; i++) {
		if (server_parse_addr(listen[i], &ss, &len) == -1)
			return xasprintf(
			    "%s: expected ADDR:PORT with a numeric "
			    "address, IPv6 as [ADDR]:PORT",
			    listen[i]);
		for (j = 0; j < i; j++)
			if (strcmp(listen[i], listen[j]) == 0)
				return xasprintf("%s: listed twice", listen[i]);
	}
	return NULL;
}

char *
server_check_networks(char *const *cidrs)
{
	struct server_net *n;
	char *err = NULL;

	if ((n = server_net_new(cidrs, &err)) == NULL)
		return err;
	server_net_free(n);
	return NULL;
}

static void
server_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	if (s->done != NULL)
		s->done(s->done_arg);
}

struct server *
server_new(
    struct event_base *base, const struct server_config *cfg, char **errstr)
{
	struct server *s = xcalloc(1, sizeof(*s));

	s->base = base;
	server_cfg_copy(&s->cfg, cfg);
	s->authpool =
	    server_authpool_new(base, SERVER_AUTH_WORKERS, SERVER_AUTH_QUEUE);
	s->authfail = server_authfail_new(SERVER_AUTH_NETS);
	s->done_ev = event_new(base, -1, 0, server_done_cb, s);
	if (s->done_ev == NULL)
		panic("server_new: out of memory");
	if ((s->nets = server_net_new(s->cfg.relay_networks, errstr)) == NULL ||
	    (s->lis = server_listeners(
	         s, s->cfg.listen, NULL, 0, &s->nlis, errstr)) == NULL) {
		server_free(s);
		return NULL;
	}
	return s;
}

int
server_reload(struct server *s, const struct server_config *cfg, char **errstr)
{
	struct server_config next;
	struct server_net *nets;
	struct server_listener **lis = NULL;
	size_t nlis = 0;

	server_cfg_copy(&next, cfg);
	if ((nets = server_net_new(next.relay_networks, errstr)) == NULL ||
	    (!s->shutting_down &&
	        (lis = server_listeners(s, next.listen, s->lis, s->nlis, &nlis,
	             errstr)) == NULL)) {
		server_net_free(nets);
		server_cfg_clear(&next);
		return -1;
	}
	server_net_free(s->nets);
	s->nets = nets;
	if (!s->shutting_down) {
		/* What the new list did not take is no longer wanted. */
		server_listeners_free(s->lis, s->nlis);
		s->lis = lis;
		s->nlis = nlis;
	}
	server_cfg_clear(&s->cfg);
	s->cfg = next;
	return 0;
}

void
server_shutdown(struct server *s, void (*done)(void *arg), void *arg)
{
	size_t i;

	s->shutting_down = true;
	s->done = done;
	s->done_arg = arg;
	server_listeners_free(s->lis, s->nlis);
	s->lis = NULL;
	s->nlis = 0;
	/* Sessions may end inside the loop below: walk from the end. */
	for (i = s->nsess; i > 0; i--)
		if (i <= s->nsess)
			server_session_shutdown(s->sess[i - 1]);
	if (s->nsess == 0)
		event_active(s->done_ev, EV_TIMEOUT, 0);
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	/* Each free calls server_session_gone(), which shrinks the list. */
	s->shutting_down = false;
	while (s->nsess > 0)
		server_session_free(s->sess[s->nsess - 1]);
	free(s->sess);
	/* After the sessions: they cancel their checks as they go. */
	server_authpool_free(s->authpool);
	server_authfail_free(s->authfail);
	server_listeners_free(s->lis, s->nlis);
	server_net_free(s->nets);
	if (s->done_ev != NULL)
		event_free(s->done_ev);
	server_cfg_clear(&s->cfg);
	free(s);
}

int
server_listen_port(const struct server *s, size_t i)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (i >= s->nlis ||
	    getsockname(evconnlistener_get_fd(s->lis[i]->lis),
	        (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}
