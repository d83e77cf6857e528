/*
 * console: the console's thread. console_start() builds everything on the
 * main thread, where errors can still stop the start: it binds the socket
 * (before the relay drops its privileges), reads Chart.js, loads the TLS
 * certificate and the users, and opens the console's own connections to
 * the queue and TLS-RPT stores. Then a thread runs the console's own
 * event loop; from then on only that thread touches any of it, until
 * console_stop() makes the loop exit (a byte on a pipe: a libevent base
 * may not be touched from another thread) and joins the thread.
 *
 * What the delivery loop and the console share is the metrics registry
 * (C11 atomics, metrics.h) and the guard state below, nothing else: a slow
 * page delays other pages, never a delivery.
 */
#include "console/console.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/util.h>

#include "conf/conf.h"
#include "console/console_core.h"
#include "console/console_int.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "fleet/fleet_read.h"
#include "pg/pg.h"
#include "queue/queue.h"
#include "tlsrpt/tlsrpt.h"

/* --- the inbound TLSA guard's state, set by relay/, read by pages --- */

static atomic_int console_guard = CONSOLE_GUARD_UNKNOWN;

void
console_guard_set(enum console_guard g)
{
	atomic_store(&console_guard, (int)g);
}

enum console_guard
console_guard_get(void)
{
	return (enum console_guard)atomic_load(&console_guard);
}

const char *
console_guard_str(enum console_guard g)
{
	switch (g) {
	case CONSOLE_GUARD_OFF:
		return "off";
	case CONSOLE_GUARD_NO_TLS:
		return "no inbound TLS";
	case CONSOLE_GUARD_NO_TLSA:
		return "no secure TLSA published";
	case CONSOLE_GUARD_MATCH:
		return "certificate matches our TLSA";
	case CONSOLE_GUARD_UNKNOWN:
		break;
	}
	return "unknown";
}

bool
console_addr_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET)
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	return sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

/* --- start and stop --- */

/* The whole Chart.js file, capped (it is some 200 kB). */
#define CONSOLE_CHART_MAX (8u * 1024 * 1024)

static int
console_read_chart(struct console *con, char **errstr)
{
	const char *path = conf_str(con->conf, CONF_ADMIN_CHART_JS);
	struct stat sb;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    (size_t)sb.st_size > CONSOLE_CHART_MAX) {
		*errstr = xasprintf("[admin] chart_js %s: %s (install Debian's "
		                    "libjs-chart.js, or point the key at "
		                    "Chart.js)",
		    path, fd == -1 ? strerror(errno) : "not a usable file");
		if (fd != -1)
			close(fd);
		return -1;
	}
	con->chart_js = xmalloc((size_t)sb.st_size + 1);
	while (got < (size_t)sb.st_size &&
	    (n = read(fd, con->chart_js + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	con->chart_js_len = got;
	return 0;
}

/* The console's own connections to the stores beside the queue. */
static int
console_open_stores(struct console *con, char **errstr)
{
	const char *dir = conf_str(con->conf, CONF_QUEUE_DIRECTORY);
	char path[4096];

	if ((con->queue = queue_open_existing(dir, errstr)) == NULL)
		return -1;
	/* Not connected yet: the console's thread does, at its first read
	 * (a database that is away must not stop the relay's start). */
	con->fleet = fleet_read_new(con->conf);
	if (!conf_bool(con->conf, CONF_TLSRPT_ENABLED))
		return 0;
	snprintf(path, sizeof(path), "%s/tlsrpt.db", dir);
	con->tlsrpt = tlsrpt_store_open(path, errstr);
	return con->tlsrpt != NULL ? 0 : -1;
}

static void
console_on_stop(evutil_socket_t fd, short ev, void *arg)
{
	struct console *con = arg;

	event_base_loopexit(con->base, NULL);
}

static int
console_bind(struct console *con, char **errstr)
{
	const char *listen = conf_str(con->conf, CONF_ADMIN_LISTEN);
	struct sockaddr_storage ss;
	int sslen = (int)sizeof(ss);
	char host[INET6_ADDRSTRLEN + 2];
	int port;

	if (evutil_parse_sockaddr_port(
	        listen, (struct sockaddr *)&ss, &sslen) == -1) {
		*errstr = xasprintf("[admin] listen %s: not ADDR:PORT", listen);
		return -1;
	}
	port = ntohs(ss.ss_family == AF_INET ?
	        ((struct sockaddr_in *)&ss)->sin_port :
	        ((struct sockaddr_in6 *)&ss)->sin6_port);
	evutil_inet_ntop(ss.ss_family,
	    ss.ss_family == AF_INET ?
	        (const void *)&((struct sockaddr_in *)&ss)->sin_addr :
	        (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
	    host, sizeof(host));
	snprintf(con->listen, sizeof(con->listen), "%s", listen);
	if (evhttp_bind_socket_with_handle(con->http, host, (uint16_t)port) ==
	    NULL) {
		*errstr = xasprintf("[admin] listen %s: cannot bind: %s",
		    listen, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Linux gives each thread its own nice value: the console's yields the
 * CPU to the delivery loop whenever both want it, so a busy console
 * slows its own pages, not the mail (docs/CONSOLE.md, the measurement).
 */
#define CONSOLE_NICE 10

static void *
console_main(void *arg)
{
	struct console *con = arg;

	if (setpriority(PRIO_PROCESS, (id_t)gettid(), CONSOLE_NICE) == -1)
		log_debug("console: cannot lower the thread's priority");
	event_base_dispatch(con->base);
	return NULL;
}

/* Everything but the thread; -1 with *errstr. */
static int
console_build(struct console *con, char **errstr)
{
	if (console_read_chart(con, errstr) == -1 ||
	    console_tls_new(con, errstr) == -1 ||
	    (con->auth = console_auth_new(
	         con->conf, con->tls != NULL, errstr)) == NULL ||
	    console_open_stores(con, errstr) == -1)
		return -1;
	if ((con->base = event_base_new()) == NULL ||
	    (con->http = evhttp_new(con->base)) == NULL) {
		*errstr = xstrdup("console: cannot create an event loop");
		return -1;
	}
	console_http_setup(con);
	console_tls_setup(con);
	if (console_bind(con, errstr) == -1)
		return -1;
	if (pipe2(con->stop_pipe, O_CLOEXEC) == -1) {
		*errstr = xasprintf("console: pipe: %s", strerror(errno));
		return -1;
	}
	con->stop_ev = event_new(
	    con->base, con->stop_pipe[0], EV_READ, console_on_stop, con);
	event_add(con->stop_ev, NULL);
	return 0;
}

struct console *
console_start(const struct conf *c, char **errstr)
{
	struct console *con;
	int rc;

	if (conf_str(c, CONF_ADMIN_LISTEN) == NULL)
		return NULL;
	con = xcalloc(1, sizeof(*con));
	con->conf = c;
	con->stop_pipe[0] = con->stop_pipe[1] = -1;
	if (console_build(con, errstr) == -1) {
		console_stop(con);
		return NULL;
	}
	if ((rc = pthread_create(&con->thread, NULL, console_main, con)) != 0) {
		*errstr = xasprintf(
		    "console: cannot start a thread: %s", strerror(rc));
		console_stop(con);
		return NULL;
	}
	con->running = true;
	log_info(
	    "console on %s%s", con->listen, con->tls != NULL ? " (HTTPS)" : "");
	return con;
}

void
console_stop(struct console *con)
{
	if (con == NULL)
		return;
	if (con->running) {
		(void)!write(con->stop_pipe[1], "", 1);
		pthread_join(con->thread, NULL);
	}
	/* The thread has ended: the checks /check runs end their pages (so
	 * before the loop below) and free what they keep on the loop. */
	if (con->base != NULL)
		console_page_check_stop();
	/* Requests a page meant to answer later: the loop is gone. */
	while (con->reqs != NULL)
		console_req_free(con->reqs);
	if (con->stop_ev != NULL)
		event_free(con->stop_ev);
	if (con->http != NULL)
		evhttp_free(con->http);
	if (con->base != NULL)
		event_base_free(con->base);
	if (con->stop_pipe[0] != -1)
		close(con->stop_pipe[0]);
	if (con->stop_pipe[1] != -1)
		close(con->stop_pipe[1]);
	console_auth_free(con->auth);
	SSL_CTX_free(con->tls);
	queue_close(con->queue);
	pg_close(con->fleet);
	tlsrpt_store_close(con->tlsrpt);
	free(con->chart_js);
	free(con);
}
