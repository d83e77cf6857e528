/*
 * relay_tlsrpt_fleet: the fleet's daily TLS-RPT run on a thread of its
 * own (relay_tlsrpt_fleet.h). Everything the thread uses is made here on
 * the calling thread, before it starts, and freed after it was joined;
 * while it runs, only the thread touches them. The two pipes are the
 * only things shared: stop (to the thread) and wake (to the delivery
 * loop).
 */
#include "relay/relay_tlsrpt_fleet.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "dkim/dkim.h"
#include "dns/dns.h"
#include "fleet/fleet_tlsrpt.h"
#include "pg/pg.h"
#include "queue/queue.h"
#include "relay/relay.h"
#include "relay/relay_tlsrpt.h"
#include "tlsrpt/tlsrpt.h"

struct relay_tlsrpt_fleet {
	pthread_t thread;
	bool running;
	struct event_base *base; /* the thread's */
	struct dns_resolver *resolver;
	struct queue *queue;
	struct tlsrpt_store *store;
	struct dkim_signer *dkim;
	struct pg *pg;
	struct fleet_tlsrpt_book *book;
	struct relay_tlsrpt *rt;
	int stop_pipe[2], wake_pipe[2];
	struct event *stop_ev; /* on base */
	struct event *wake_ev; /* on the delivery loop */
	void (*on_queued)(void *arg);
	void *arg;
};

/* On the thread: a report mail was queued; tell the delivery loop. */
static void
rtf_queued(void *arg)
{
	struct relay_tlsrpt_fleet *f = arg;

	(void)!write(f->wake_pipe[1], "", 1);
}

/* On the delivery loop. */
static void
rtf_on_wake(evutil_socket_t fd, short ev, void *arg)
{
	struct relay_tlsrpt_fleet *f = arg;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	f->on_queued(f->arg);
}

static void
rtf_on_stop(evutil_socket_t fd, short ev, void *arg)
{
	struct relay_tlsrpt_fleet *f = arg;

	event_base_loopexit(f->base, NULL);
}

static void *
rtf_main(void *arg)
{
	struct relay_tlsrpt_fleet *f = arg;

	event_base_dispatch(f->base);
	return NULL;
}

static int
rtf_pipe(int p[2], char **errstr)
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1) {
		*errstr = xasprintf("TLS-RPT: pipe: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The thread's own connections. 0 or -1 with *errstr. */
static int
rtf_open(struct relay_tlsrpt_fleet *f, const struct conf *c, char **errstr)
{
	struct dns_options o;
	char path[4096], *node, *err = NULL;

	relay_dns_options(c, &o);
	if ((f->resolver = dns_resolver_new(f->base, &o, errstr)) == NULL ||
	    (f->queue = queue_open_conf(c, false, errstr)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tlsrpt.db",
	    conf_str(c, CONF_QUEUE_DIRECTORY));
	if ((f->store = tlsrpt_store_open(path, errstr)) == NULL)
		return -1;
	if ((f->dkim = relay_dkim_signer(c, &err)) == NULL && err != NULL) {
		*errstr = err;
		return -1;
	}
	/* Connected by the first run: the database may be down now. */
	node = pg_default_node(conf_str(c, CONF_FLEET_NODE));
	f->pg = pg_new(conf_str(c, CONF_FLEET_POSTGRES), node);
	free(node);
	f->book = fleet_tlsrpt_book_new(
	    f->pg, f->store, (time_t)conf_int(c, CONF_TLSRPT_LEASE));
	return 0;
}

static int
rtf_build(struct relay_tlsrpt_fleet *f, const struct conf *c,
    const char *hostname, struct event_base *main, char **errstr)
{
	struct relay_tlsrpt_deps d;

	if (rtf_pipe(f->stop_pipe, errstr) == -1 ||
	    rtf_pipe(f->wake_pipe, errstr) == -1)
		return -1;
	f->base = event_base_new();
	if (rtf_open(f, c, errstr) == -1)
		return -1;
	f->stop_ev = event_new(
	    f->base, f->stop_pipe[0], EV_READ | EV_PERSIST, rtf_on_stop, f);
	f->wake_ev = event_new(
	    main, f->wake_pipe[0], EV_READ | EV_PERSIST, rtf_on_wake, f);
	event_add(f->stop_ev, NULL);
	event_add(f->wake_ev, NULL);
	memset(&d, 0, sizeof(d));
	d.base = f->base;
	d.resolver = f->resolver;
	d.queue = f->queue;
	d.store = f->store;
	d.book = fleet_tlsrpt_book(f->book);
	d.dkim = f->dkim;
	d.hostname = hostname;
	d.on_queued = rtf_queued;
	d.arg = f;
	f->rt = relay_tlsrpt_new(c, &d);
	relay_tlsrpt_schedule(f->rt);
	return 0;
}

struct relay_tlsrpt_fleet *
relay_tlsrpt_fleet_start(const struct conf *c, const char *hostname,
    struct event_base *main, void (*on_queued)(void *arg), void *arg,
    char **errstr)
{
	struct relay_tlsrpt_fleet *f = xcalloc(1, sizeof(*f));
	char *err = NULL;
	int rc;

	f->stop_pipe[0] = f->stop_pipe[1] = -1;
	f->wake_pipe[0] = f->wake_pipe[1] = -1;
	f->on_queued = on_queued;
	f->arg = arg;
	if (rtf_build(f, c, hostname, main, &err) == -1) {
		*errstr = xasprintf("TLS-RPT (fleet): %s", err);
		free(err);
		relay_tlsrpt_fleet_stop(f);
		return NULL;
	}
	if ((rc = pthread_create(&f->thread, NULL, rtf_main, f)) != 0) {
		*errstr = xasprintf(
		    "TLS-RPT (fleet): cannot start a thread: %s", strerror(rc));
		relay_tlsrpt_fleet_stop(f);
		return NULL;
	}
	f->running = true;
	return f;
}

static void
rtf_close(int p[2])
{
	if (p[0] != -1)
		close(p[0]);
	if (p[1] != -1)
		close(p[1]);
}

void
relay_tlsrpt_fleet_stop(struct relay_tlsrpt_fleet *f)
{
	if (f == NULL)
		return;
	if (f->running) {
		(void)!write(f->stop_pipe[1], "", 1);
		pthread_join(f->thread, NULL);
	}
	relay_tlsrpt_free(f->rt);
	if (f->stop_ev != NULL)
		event_free(f->stop_ev);
	if (f->wake_ev != NULL)
		event_free(f->wake_ev);
	fleet_tlsrpt_book_free(f->book);
	pg_close(f->pg);
	dkim_signer_free(f->dkim);
	tlsrpt_store_close(f->store);
	queue_close(f->queue);
	dns_resolver_free(f->resolver);
	if (f->base != NULL)
		event_base_free(f->base);
	rtf_close(f->stop_pipe);
	rtf_close(f->wake_pipe);
	free(f);
}
