/*
 * fleet_sync: the copying thread of a node (fleet.h, docs/FLEET.md).
 *
 * Every interval, and once more at stop, one pass: the new local trace
 * events (fleet_events.c), the TLS-RPT counters (fleet_tlsrpt_push) and
 * the MTA-STS policies (fleet_sts_sync). The thread owns everything it
 * touches: its own libpq connection and its own SQLite connections to the
 * local stores; what it shares with the delivery loop is two gauges of
 * the metrics registry (atomics). libpq waits are synchronous, which is
 * why this runs here and never on the loop: a database that is away
 * costs this thread a bounded wait (pg.h), never a delivery.
 *
 * A failing pass is logged once per outage, when it starts and when the
 * database is back; the local stores keep everything meanwhile, and the
 * next pass after the return copies what accumulated.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "fleet/fleet.h"
#include "fleet/fleet_events.h"
#include "metrics/metrics.h"
#include "pg/pg.h"
#include "tlsrpt/tlsrpt.h"

/* A pass stops starting new batches after this long: a stop never waits
 * for a long backlog, the next pass goes on with it. */
#define FLEET_SYNC_PASS_S  5
#define FLEET_SYNC_FINAL_S 5 /* the pass at stop */
/* How often the node purges its old copied trace (fleet_events_purge),
 * and how much it keeps: as much as the local queue (relay.c). */
#define FLEET_PURGE_EVERY_S 3600
#define FLEET_TRACE_DAYS    QUEUE_REPORT_MAX_DAYS

/* What one pass needs, opened lazily and kept across passes. */
struct fleet_link {
	const struct fleet_sync_config *c;
	struct pg *pg;
	struct fleet_events *events; /* the local queue, or NULL */
	struct tlsrpt_store *tlsrpt; /* or NULL */
	bool failing;                /* the failure was logged */
	bool away;                   /* it was the database's */
	bool local;                  /* the last failure was a local store's */
	time_t purged;               /* last purge; 0 = not yet */
	char err[512];               /* of the last failed pass */
};

struct fleet_sync {
	struct fleet_sync_config c; /* its strings below */
	char *conninfo, *node, *queue_dir, *tlsrpt_path, *sts_path;
	struct fleet_link link;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

/* what as one log line: libpq's tabs and runs of blanks as one space. */
static void
fleet_link_fail(struct fleet_link *l, const char *what)
{
	size_t n = 0;

	for (; *what != '\0' && n + 1 < sizeof(l->err); what++) {
		if (*what == '\t' || *what == '\n' || *what == '\r' ||
		    *what == ' ') {
			if (n > 0 && l->err[n - 1] != ' ')
				l->err[n++] = ' ';
		} else
			l->err[n++] = *what;
	}
	while (n > 0 && l->err[n - 1] == ' ')
		n--;
	l->err[n] = '\0';
}

/* The local stores, opened at the first pass that needs them. */
static int
fleet_link_open(struct fleet_link *l)
{
	char *err = NULL, queue[4096];

	/* Only stores that exist: the daemon made them; a command never
	 * creates one, and a node without them has nothing to copy. */
	snprintf(queue, sizeof(queue), "%s/queue.db",
	    l->c->queue_dir != NULL ? l->c->queue_dir : "");
	if (l->c->queue_dir != NULL && l->events == NULL &&
	    access(queue, F_OK) == 0 &&
	    (l->events = fleet_events_open(l->c->queue_dir, &err)) == NULL)
		goto fail;
	if (l->c->tlsrpt_path != NULL && l->tlsrpt == NULL &&
	    access(l->c->tlsrpt_path, F_OK) == 0 &&
	    (l->tlsrpt = tlsrpt_store_open(l->c->tlsrpt_path, &err)) == NULL)
		goto fail;
	return 0;
fail:
	fleet_link_fail(l, err);
	free(err);
	return -1;
}

/* The backlog gauge: local events not yet in the database. */
static void
fleet_link_metrics(struct fleet_link *l, bool up)
{
	long long max = 0, mark = 0;

	if (l->events != NULL) {
		max = fleet_events_local_max(l->events);
		mark = fleet_events_mark(l->events);
	}
	metrics_fleet(up, max > mark ? (uint64_t)(max - mark) : 0);
}

/* The node is alive: dr_nodes.seen_at, for `fleet status`. */
static int
fleet_link_seen(struct fleet_link *l)
{
	char now[PG_INT_LEN];
	const char *args[2] = { pg_node(l->pg),
		pg_itoa((long long)time(NULL), now) };

	return pg_exec(
	    l->pg, "UPDATE dr_nodes SET seen_at = $2 WHERE node = $1", 2, args);
}

/* The node's old copied trace, at most every FLEET_PURGE_EVERY_S. */
static int
fleet_link_purge(struct fleet_link *l)
{
	time_t now = time(NULL);
	long long n;

	if (l->events == NULL ||
	    (l->purged != 0 && now - l->purged < FLEET_PURGE_EVERY_S))
		return 0;
	if ((n = fleet_events_purge(
	         l->pg, now - (time_t)FLEET_TRACE_DAYS * 86400)) == -1) {
		fleet_link_fail(l, pg_error(l->pg));
		return -1;
	}
	l->purged = now;
	if (n > 0)
		log_info("fleet: purged %lld messages of this node older than "
		         "%d days from the fleet's trace",
		    n, FLEET_TRACE_DAYS);
	return 0;
}

/*
 * One pass; 0, or -1 with l->err. *copied: events copied; *more: events
 * were left when until passed.
 */
static int
fleet_link_pass(
    struct fleet_link *l, time_t until, long long *copied, bool *more)
{
	int rc = 0;

	*copied = 0;
	*more = false;
	if ((l->local = fleet_link_open(l) == -1))
		return -1;
	if (pg_ready(l->pg) == -1 || fleet_link_seen(l) == -1 ||
	    (l->events != NULL &&
	        (rc = fleet_events_push(l->events, l->pg, until, copied)) ==
	            -1) ||
	    (l->tlsrpt != NULL && fleet_tlsrpt_push(l->pg, l->tlsrpt) == -1) ||
	    (l->c->sts_path != NULL &&
	        fleet_sts_sync(l->pg, l->c->sts_path) == -1)) {
		fleet_link_fail(l, pg_error(l->pg));
		return -1;
	}
	*more = rc == 1;
	return fleet_link_purge(l);
}

/* A pass of the thread, logged once per outage. Whether events were
 * left (the next pass need not wait). */
static bool
fleet_link_run(struct fleet_link *l, time_t secs)
{
	long long copied = 0;
	bool more, ok;

	ok = fleet_link_pass(l, time(NULL) + secs, &copied, &more) == 0;
	fleet_link_metrics(l, ok);
	if (!ok && !l->away && !l->local && pg_broken(l->pg)) {
		/* Once per outage (also after a refused statement). */
		l->failing = l->away = true;
		log_warnx("fleet: database unreachable: %s", l->err);
	} else if (!ok && !l->failing) {
		/* A refused statement, a local store: not an outage. */
		l->failing = true;
		log_warnx("fleet: copy failed: %s", l->err);
	} else if (ok && l->failing) {
		l->failing = false;
		log_info("fleet: %s, %lld events copied",
		    l->away ? "database back" : "copying again", copied);
		l->away = false;
	} else if (ok && copied > 0)
		log_debug("fleet: %lld events copied", copied);
	return ok && more;
}

static void
fleet_link_close(struct fleet_link *l)
{
	pg_close(l->pg);
	fleet_events_close(l->events);
	tlsrpt_store_close(l->tlsrpt);
	memset(l, 0, sizeof(*l));
}

static void *
fleet_sync_main(void *arg)
{
	struct fleet_sync *s = arg;
	struct timespec deadline;
	bool more;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		pthread_mutex_unlock(&s->mu);
		more = fleet_link_run(&s->link, FLEET_SYNC_PASS_S);
		pthread_mutex_lock(&s->mu);
		if (more) /* a backlog: on at once, unless stopping */
			continue;
		pthread_mutex_unlock(&s->mu);
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += s->c.interval_ms / 1000;
		deadline.tv_nsec += (long)(s->c.interval_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&s->mu);
		while (!s->stop &&
		    pthread_cond_timedwait(&s->cv, &s->mu, &deadline) !=
		        ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&s->mu);
	/* What the last deliveries wrote. */
	fleet_link_run(&s->link, FLEET_SYNC_FINAL_S);
	return NULL;
}

static char *
fleet_strdup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
fleet_sync_free(struct fleet_sync *s)
{
	fleet_link_close(&s->link);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->conninfo);
	free(s->node);
	free(s->queue_dir);
	free(s->tlsrpt_path);
	free(s->sts_path);
	free(s);
}

struct fleet_sync *
fleet_sync_start(const struct fleet_sync_config *c)
{
	struct fleet_sync *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	s->c.conninfo = s->conninfo = xstrdup(c->conninfo);
	s->c.node = s->node = xstrdup(c->node);
	s->c.queue_dir = s->queue_dir = fleet_strdup(c->queue_dir);
	s->c.tlsrpt_path = s->tlsrpt_path = fleet_strdup(c->tlsrpt_path);
	s->c.sts_path = s->sts_path = fleet_strdup(c->sts_path);
	s->c.interval_ms = c->interval_ms > 0 ? c->interval_ms : 1000;
	s->link.c = &s->c;
	s->link.pg = pg_new(s->conninfo, s->node);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals are the delivery loop's: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, fleet_sync_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		fatalx(
		    EX_OSERR, "fleet: cannot start a thread: %s", strerror(rc));
	log_info("fleet: node %s, copying %s every %ums", s->node,
	    s->queue_dir != NULL ? "trace events, TLS-RPT counters and "
	                           "MTA-STS policies" :
	                           "TLS-RPT counters and MTA-STS policies",
	    s->c.interval_ms);
	return s;
}

void
fleet_sync_stop(struct fleet_sync *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	fleet_sync_free(s);
}

int
fleet_sync_once(const struct fleet_sync_config *c, char **errstr)
{
	struct fleet_link l = { .c = c };
	long long copied;
	bool more;
	int rc;

	l.pg = pg_new(c->conninfo, c->node);
	rc = fleet_link_pass(&l, 0, &copied, &more);
	if (rc == -1)
		*errstr = xstrdup(l.err);
	fleet_link_close(&l);
	return rc;
}
