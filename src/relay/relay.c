/*
 * relay: assembling and running the daemon.
 */
#include "relay/relay.h"

#include <errno.h>
#include <event2/event.h>
#include <grp.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf/conf.h"
#include "console/console.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "deliver/deliver.h"
#include "dns/dns.h"
#include "fleet/fleet.h"
#include "metrics/metrics.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "relay/relay_dns.h"
#include "relay/relay_guard.h"
#include "relay/relay_local.h"
#include "server/server.h"
#include "dkim/dkim.h"
#include "tlsrpt/tlsrpt.h"
#include "relay/relay_tlsrpt.h"
#include "sts/sts.h"
#include "tls/tls_client.h"
#include "tls/tls_server.h"

struct relay {
	struct event_base *base;
	char *config_path;
	struct conf *conf;
	/*
	 * The configuration read at start. What was set up from it once
	 * (delivery settings, resolver, MTA-STS) borrows its strings, so it
	 * lives as long as the relay; a reload replaces conf only.
	 */
	struct conf *boot_conf;
	struct dns_resolver *resolver;
	struct relay_dns *dns; /* the resolver's self-test and state */
	struct queue *queue;
	SSL_CTX *client_tls;
	SSL_CTX *server_tls;
	struct server_auth *auth;
	struct policy *policy;
	struct server *server;
	struct deliver *deliver;
	struct sts *sts;
	struct event *sts_timer;
	struct tlsrpt_store *tlsrpt;
	struct dkim_signer *dkim;      /* [dkim], or NULL */
	char *dkim_set;                /* its relay_dkim_set() */
	struct relay_tlsrpt *reporter; /* sends the reports, or NULL */
	struct console *console;       /* [admin] listen, or NULL */
	struct fleet_sync *fleet;      /* [fleet] postgres, or NULL */
	struct event *purge_timer;
	struct event *compact_timer;
	int lock_fd; /* the queue's exclusive lock (relay_local.c), or -1 */
	time_t *retry;
	char hostname[256];
	int stopping;
	void (*done)(void *);
	void *done_arg;
};

struct relay_wait {
	const char *err;
	bool done;
};

static void
relay_selftest_cb(struct dns_answer *a, void *arg)
{
	struct relay_wait *w = arg;

	w->err = dns_selftest_explain(a);
	w->done = true;
	dns_answer_free(a);
}

/* The resolver of [dns], not yet tested. */
static struct dns_resolver *
relay_resolver_open(
    const struct conf *c, struct event_base *base, char **errstr)
{
	struct dns_options o;

	relay_dns_options(c, &o);
	return dns_resolver_new(base, &o, errstr);
}

struct dns_resolver *
relay_resolver_new(const struct conf *c, struct event_base *base, char **errstr)
{
	struct relay_wait w = { NULL, false };
	struct dns_resolver *res;

	if ((res = relay_resolver_open(c, base, errstr)) == NULL)
		return NULL;
	/* Without DNSSEC validation every DANE domain would look bogus. */
	dns_selftest(res, relay_selftest_cb, &w);
	while (!w.done)
		event_base_loop(base, EVLOOP_ONCE);
	if (w.err != NULL) {
		*errstr = xasprintf("resolver self-test failed: %s", w.err);
		dns_resolver_free(res);
		return NULL;
	}
	return res;
}

/* The distinct ports of [server] listen, for the DANE guard. */
static size_t
relay_listen_ports(const struct conf *c, uint16_t *ports, size_t max)
{
	char **l = conf_list(c, CONF_SERVER_LISTEN);
	size_t i, k, n = 0;
	uint64_t p;

	for (i = 0; l[i] != NULL && n < max; i++) {
		const char *colon = strrchr(l[i], ':');

		if (colon == NULL || str_to_uint(colon + 1, 1, 65535, &p) == -1)
			continue;
		for (k = 0; k < n && ports[k] != p; k++)
			;
		if (k == n)
			ports[n++] = (uint16_t)p;
	}
	return n;
}

/* TLS for the inbound side, checked against our own TLSA records. */
static SSL_CTX *
relay_server_tls(struct relay *r, const struct conf *c, char **errstr)
{
	const char *cert = conf_str(c, CONF_SERVER_TLS_CERT);
	const char *key = conf_str(c, CONF_SERVER_TLS_KEY);
	uint16_t ports[16];
	size_t nports;
	char *msg = NULL;
	int rc;

	if (cert == NULL && key == NULL) {
		console_guard_set(CONSOLE_GUARD_NO_TLS);
		return NULL;
	}
	if (cert == NULL || key == NULL) {
		*errstr = xstrdup("[server] tls_cert and tls_key go together");
		return NULL;
	}
	if (!conf_bool(c, CONF_SERVER_TLSA_GUARD))
		console_guard_set(CONSOLE_GUARD_OFF);
	else {
		nports = relay_listen_ports(c, ports, 16);
		rc = relay_guard_check(r->base, r->resolver, r->hostname, ports,
		    nports, cert, conf_list(c, CONF_DANE_DIGESTS), &msg);
		if (rc == -1) {
			*errstr =
			    xasprintf("DANE guard: %s (set [server] "
			              "tlsa_guard = no to serve it anyway)",
			        msg);
			free(msg);
			return NULL;
		}
		if (msg != NULL)
			log_info("DANE guard: %s", msg);
		free(msg);
		console_guard_set(
		    rc == 1 ? CONSOLE_GUARD_MATCH : CONSOLE_GUARD_NO_TLSA);
	}
	return tls_server_ctx_new(cert, key, errstr);
}

static void
relay_on_queued(const char *msgid, void *arg)
{
	struct relay *r = arg;

	if (r->deliver != NULL)
		deliver_wake(r->deliver);
}

static void
relay_on_dns_error(void *arg)
{
	struct relay *r = arg;

	if (r->dns != NULL)
		relay_dns_trouble(r->dns);
}

static void
relay_wake(void *arg)
{
	relay_on_queued(NULL, arg);
}

static void
relay_server_config(struct relay *r, const struct conf *c, SSL_CTX *tls,
    struct server_auth *auth, struct server_config *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->listen = conf_list(c, CONF_SERVER_LISTEN);
	sc->relay_networks = conf_list(c, CONF_SERVER_RELAY_NETWORKS);
	sc->hostname = r->hostname;
	sc->tls = tls;
	sc->auth = auth;
	sc->max_message_size =
	    (size_t)conf_int(c, CONF_SERVER_MAX_MESSAGE_SIZE);
	sc->max_recipients = (size_t)conf_int(c, CONF_SERVER_MAX_RECIPIENTS);
	sc->max_connections =
	    (unsigned)conf_int(c, CONF_SERVER_MAX_CONNECTIONS);
	sc->max_connections_per_ip =
	    (unsigned)conf_int(c, CONF_SERVER_MAX_CONNECTIONS_PER_IP);
	sc->command_timeout_ms =
	    (unsigned)conf_int(c, CONF_SERVER_COMMAND_TIMEOUT) * 1000;
	sc->data_timeout_ms =
	    (unsigned)conf_int(c, CONF_SERVER_DATA_TIMEOUT) * 1000;
	sc->auth_max_failures =
	    (unsigned)conf_int(c, CONF_SERVER_AUTH_MAX_FAILURES);
	sc->auth_lockout = (unsigned)conf_int(c, CONF_SERVER_AUTH_LOCKOUT);
	sc->queue = r->queue;
	sc->min_free_space =
	    (uint64_t)conf_int(c, CONF_QUEUE_MIN_FREE_SPACE) * 1024 * 1024;
	sc->dkim = conf_bool(c, CONF_DKIM_SIGN_OUTBOUND) ? r->dkim : NULL;
	sc->on_queued = relay_on_queued;
	sc->arg = r;
}

static void
relay_deliver_config(struct relay *r, struct deliver_config *dc)
{
	const struct conf *c = r->conf;
	long long *sched;
	size_t i, n;
	const char *helo = conf_str(c, CONF_DELIVERY_HELO_NAME);

	memset(dc, 0, sizeof(*dc));
	dc->base = r->base;
	dc->resolver = r->resolver;
	dc->tls = r->client_tls;
	dc->queue = r->queue;
	dc->policy = r->policy;
	dc->sts = r->sts;
	dc->tlsrpt = r->tlsrpt;
	dc->digests = conf_list(c, CONF_DANE_DIGESTS);
	dc->hostname = helo != NULL ? helo : r->hostname;
	dc->connect_timeout_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_CONNECT_TIMEOUT) * 1000;
	dc->greeting_timeout_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_GREETING_TIMEOUT) * 1000;
	dc->command_timeout_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_COMMAND_TIMEOUT) * 1000;
	dc->data_timeout_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_DATA_TIMEOUT) * 1000;
	sched = conf_durations(c, CONF_DELIVERY_RETRY_SCHEDULE, &n);
	free(r->retry);
	r->retry = xcalloc(n + 1, sizeof(time_t));
	for (i = 0; i < n; i++)
		r->retry[i] = (time_t)sched[i];
	free(sched);
	dc->retry = r->retry;
	dc->nretry = n;
	dc->max_lifetime =
	    (time_t)conf_int(c, CONF_DELIVERY_MAX_QUEUE_LIFETIME);
	dc->delay_warning = (time_t)conf_int(c, CONF_DELIVERY_DELAY_WARNING);
	dc->concurrency = (unsigned)conf_int(c, CONF_DELIVERY_CONCURRENCY);
	dc->initial_concurrency =
	    (unsigned)conf_int(c, CONF_DELIVERY_INITIAL_CONCURRENCY);
	dc->dead_after = (unsigned)conf_int(c, CONF_DELIVERY_DEAD_AFTER);
	dc->dead_time = (time_t)conf_int(c, CONF_DELIVERY_DEAD_TIME);
	dc->max_msgs_per_conn =
	    (unsigned)conf_int(c, CONF_DELIVERY_MAX_MESSAGES_PER_CONNECTION);
	dc->conn_idle_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_CONNECTION_IDLE_TIME) * 1000;
	dc->hold = conf_bool(c, CONF_DELIVERY_HOLD);
	dc->tls_handshakes =
	    (unsigned)conf_int(c, CONF_DELIVERY_TLS_HANDSHAKES);
	dc->on_dns_error = relay_on_dns_error;
	dc->dns_arg = r;
}

/* Started as root: hand the queue to the user, then become that user. */
static int
relay_drop_privileges(struct relay *r, char **errstr)
{
	const char *user = conf_str(r->conf, CONF_SERVER_USER);
	struct passwd *pw;

	if (geteuid() != 0 || user == NULL)
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		*errstr = xasprintf("[server] user %s: no such user", user);
		return -1;
	}
	relay_local_chown(
	    conf_str(r->conf, CONF_QUEUE_DIRECTORY), pw->pw_uid, pw->pw_gid);
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1 || setuid(0) != -1) {
		*errstr = xasprintf(
		    "cannot become user %s: %s", user, strerror(errno));
		return -1;
	}
	log_info("running as user %s", user);
	return 0;
}

void
relay_hostname_of(const struct conf *c, char *out, size_t len)
{
	const char *h = conf_str(c, CONF_SERVER_HOSTNAME);

	if (h != NULL)
		snprintf(out, len, "%s", h);
	else if (gethostname(out, len) == -1 || out[0] == '\0')
		snprintf(out, len, "localhost");
	out[len - 1] = '\0';
}

static void
relay_hostname(struct relay *r)
{
	relay_hostname_of(r->conf, r->hostname, sizeof(r->hostname));
}

/* RFC 8461 §5.1: refresh cached policies before they expire. */
static void
relay_sts_refresh(evutil_socket_t fd, short ev, void *arg)
{
	struct relay *r = arg;
	struct timeval tv = { 3600, 0 };

	/* Policies that end within two hours, so a day-long one is
	 * refreshed about once a day, not every hour. */
	sts_refresh(r->sts, 7200);
	evtimer_add(r->sts_timer, &tv);
}

/* MTA-STS: a persistent policy cache beside the queue, PKIX anchors. */
static int
relay_sts(struct relay *r, char **errstr)
{
	struct sts_options so = { 0 };
	struct timeval tv = { 60, 0 };
	const char *terr;
	char path[4096];

	if (!conf_bool(r->conf, CONF_MTA_STS_ENABLED))
		return 0;
	if (tls_client_ctx_load_ca(r->client_tls,
	        conf_str(r->conf, CONF_MTA_STS_CA_FILE), &terr) == -1) {
		*errstr = xasprintf("[mta_sts] ca_file: %s", terr);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/mta-sts.db",
	    conf_str(r->conf, CONF_QUEUE_DIRECTORY));
	so.cache_path = path;
	so.ca_file = conf_str(r->conf, CONF_MTA_STS_CA_FILE);
	so.https_port = (unsigned)conf_int(r->conf, CONF_MTA_STS_HTTPS_PORT);
	so.fetch_timeout_ms =
	    (unsigned)conf_int(r->conf, CONF_MTA_STS_FETCH_TIMEOUT) * 1000;
	if ((r->sts = sts_new(r->base, r->resolver, &so, errstr)) == NULL)
		return -1;
	r->sts_timer = evtimer_new(r->base, relay_sts_refresh, r);
	evtimer_add(r->sts_timer, &tv);
	return 0;
}

/* The trace of finished messages is kept this long, then purged. */
#define RELAY_TRACE_DAYS 30
#define RELAY_COMPACT_S  10 /* queue_compact(): cheap when idle */

static void
relay_purge(evutil_socket_t fd, short ev, void *arg)
{
	struct relay *r = arg;
	struct timeval tv = { 3600, 0 };
	int n;

	n = queue_purge(r->queue, time(NULL) - RELAY_TRACE_DAYS * 86400);
	if (n > 0)
		log_info("purged the trace of %d messages finished more than "
		         "%d days ago",
		    n, RELAY_TRACE_DAYS);
	evtimer_add(r->purge_timer, &tv);
}

/* Give the space of delivered messages back to the filesystem. */
static void
relay_compact(evutil_socket_t fd, short ev, void *arg)
{
	struct relay *r = arg;
	struct timeval tv = { RELAY_COMPACT_S, 0 };

	if (queue_compact(r->queue) == -1)
		log_warnx("queue: cannot compact: %s", queue_error(r->queue));
	evtimer_add(r->compact_timer, &tv);
}

/* RFC 8460: count every TLS negotiation, in a store beside the queue. */
static int
relay_tlsrpt(struct relay *r, char **errstr)
{
	char path[4096];

	if (!conf_bool(r->conf, CONF_TLSRPT_ENABLED))
		return 0;
	snprintf(path, sizeof(path), "%s/tlsrpt.db",
	    conf_str(r->conf, CONF_QUEUE_DIRECTORY));
	r->tlsrpt = tlsrpt_store_open(path, errstr);
	return r->tlsrpt != NULL ? 0 : -1;
}

/* RFC 8460 §4.1, §5: the daily reports, when there is a store. */
static void
relay_reporter(struct relay *r)
{
	struct relay_tlsrpt_deps d;

	if (r->tlsrpt == NULL || !conf_bool(r->conf, CONF_TLSRPT_SEND))
		return;
	memset(&d, 0, sizeof(d));
	d.base = r->base;
	d.resolver = r->resolver;
	d.queue = r->queue;
	d.store = r->tlsrpt;
	d.dkim = r->dkim;
	d.hostname = r->hostname;
	d.on_queued = relay_wake;
	d.arg = r;
	r->reporter = relay_tlsrpt_new(r->conf, &d);
	relay_tlsrpt_schedule(r->reporter);
}

/*
 * [fleet] postgres: the thread that copies the local trace, TLS-RPT
 * counters and MTA-STS policies to the fleet's database. It connects by
 * itself: a database that is down at start does not keep the relay from
 * serving (docs/FLEET.md, "When PostgreSQL is away").
 */
static void
relay_fleet(struct relay *r)
{
	struct fleet_sync_config fc;
	struct fleet_sync_names names;

	if (fleet_sync_config_of(r->boot_conf, &fc, &names) == 0)
		r->fleet = fleet_sync_start(&fc);
}

/* [dkim] domain, selector and key_file as one string, to see a change. */
static char *
relay_dkim_set(const struct conf *c)
{
	const char *d = conf_str(c, CONF_DKIM_DOMAIN);
	const char *s = conf_str(c, CONF_DKIM_SELECTOR);
	const char *k = conf_str(c, CONF_DKIM_KEY_FILE);

	return xasprintf("%s %s %s", d != NULL ? d : "-", s != NULL ? s : "-",
	    k != NULL ? k : "-");
}

/* [log]: where the daemon's lines go from now on (no thread runs yet). */
static void
relay_log(const struct conf *c)
{
	struct log_config lc = {
		.target = conf_str(c, CONF_LOG_TARGET),
		.format = conf_str(c, CONF_LOG_FORMAT),
		.level = conf_str(c, CONF_LOG_LEVEL),
		.facility = conf_str(c, CONF_LOG_FACILITY),
		.syslog_socket = conf_str(c, CONF_LOG_SYSLOG_SOCKET),
	};
	const char *err;

	/* The table checked every value. */
	if (log_configure(&lc, &err) == -1)
		panic("[log]: %s", err);
}

static int
relay_fail(struct relay *r, char **errstr, int *ex, int code, char *msg)
{
	*errstr = msg;
	*ex = code;
	relay_free(r);
	return -1;
}

/* Everything that may fail before we serve, in order. */
static int
relay_build(struct relay *r, char **errstr, int *ex)
{
	struct server_config sc;
	struct deliver_config dc;
	const char *authf, *terr;
	char *err = NULL;

	if ((r->conf = conf_load(r->config_path, &err)) == NULL)
		return relay_fail(r, errstr, ex, EX_CONFIG, err);
	r->boot_conf = r->conf;
	/* What check-config refuses, serve refuses, before anything. */
	if (relay_check_config(r->conf, false, &err) == -1)
		return relay_fail(r, errstr, ex, EX_CONFIG, err);
	relay_log(r->conf);
	relay_hostname(r);
	r->lock_fd =
	    relay_local_lock(conf_str(r->conf, CONF_QUEUE_DIRECTORY), &err);
	if (r->lock_fd == -1)
		return relay_fail(r, errstr, ex, EX_TEMPFAIL, err);
	/*
	 * Not self-tested here: serve starts and queues mail while DNS is
	 * down, and relay_dns keeps deliveries deferred until it validates.
	 * A resolver that cannot even be set up (bad trust anchor file) is a
	 * configuration error.
	 */
	r->resolver = relay_resolver_open(r->conf, r->base, &err);
	if (r->resolver == NULL)
		return relay_fail(r, errstr, ex, EX_CONFIG, err);
	r->client_tls =
	    tls_client_ctx_new(conf_list(r->conf, CONF_DANE_DIGESTS), &terr);
	if (r->client_tls == NULL)
		return relay_fail(r, errstr, ex, EX_SOFTWARE,
		    xasprintf("client TLS: %s", terr));
	/* [queue] store: the directory, or the fleet's PostgreSQL. */
	r->queue = queue_open_conf(r->conf, true, &err);
	if (r->queue == NULL)
		return relay_fail(r, errstr, ex, EX_CANTCREAT, err);
	err = NULL;
	r->server_tls = relay_server_tls(r, r->conf, &err);
	if (r->server_tls == NULL && err != NULL)
		return relay_fail(r, errstr, ex, EX_CONFIG, err);
	authf = conf_str(r->conf, CONF_SERVER_AUTH_FILE);
	if (authf != NULL && (r->auth = server_auth_load(authf, &err)) == NULL)
		return relay_fail(r, errstr, ex, EX_CONFIG, err);
	r->policy = policy_new(r->conf);
	if ((r->dkim = relay_dkim_signer(r->conf, &err)) == NULL && err != NULL)
		return relay_fail(r, errstr, ex, EX_CONFIG, err);
	r->dkim_set = relay_dkim_set(r->conf);
	if (relay_sts(r, &err) == -1)
		return relay_fail(r, errstr, ex, EX_CONFIG, err);
	if (relay_tlsrpt(r, &err) == -1)
		return relay_fail(r, errstr, ex, EX_CANTCREAT, err);
	/* Bound before privileges go, and before the SMTP listeners: when
	 * mail can come in, the console is there. */
	err = NULL;
	if ((r->console = console_start(r->boot_conf, &err)) == NULL &&
	    err != NULL)
		return relay_fail(r, errstr, ex, EX_OSERR, err);
	relay_server_config(r, r->conf, r->server_tls, r->auth, &sc);
	if ((r->server = server_new(r->base, &sc, &err)) == NULL)
		return relay_fail(r, errstr, ex, EX_OSERR, err);
	if (relay_drop_privileges(r, &err) == -1)
		return relay_fail(r, errstr, ex, EX_NOPERM, err);
	relay_deliver_config(r, &dc);
	r->deliver = deliver_new(&dc);
	r->dns = relay_dns_new(r->base, r->resolver, r->deliver, r->queue);
	relay_reporter(r);
	relay_fleet(r);
	r->purge_timer = evtimer_new(r->base, relay_purge, r);
	event_active(r->purge_timer, EV_TIMEOUT, 0); /* first purge at start */
	r->compact_timer = evtimer_new(r->base, relay_compact, r);
	event_active(r->compact_timer, EV_TIMEOUT, 0);
	return 0;
}

struct relay *
relay_new(
    struct event_base *base, const char *config_path, char **errstr, int *ex)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	/*
	 * With the console, two threads use SQLite (each its own
	 * connections): its memory statistics would take one process-wide
	 * mutex on every allocation of both. Nothing reads them. Before the
	 * first connection, or SQLite says SQLITE_MISUSE and keeps them.
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	r->base = base;
	r->lock_fd = -1;
	metrics_init();
	r->config_path = config_path != NULL ? xstrdup(config_path) : NULL;
	if (relay_build(r, errstr, ex) == -1)
		return NULL;
	log_info("started: %s, queue %s, policy %s (%s), log %s (%s)",
	    r->hostname, conf_str(r->conf, CONF_QUEUE_DIRECTORY),
	    conf_str(r->conf, CONF_POLICY_SECURITY),
	    conf_str(r->conf, CONF_POLICY_MODE), log_target_name(),
	    conf_str(r->conf, CONF_LOG_FORMAT));
	return r;
}

/*
 * SIGHUP: name every restart-only key whose value differs from the one
 * the relay runs with (read at start), every time, until the restart.
 */
static void
relay_reload_restart_keys(const struct relay *r, const struct conf *c)
{
	const char *was, *now;
	size_t k;

	for (k = 0; k < CONF_KEY_COUNT; k++) {
		if (conf_key_reloadable((enum conf_key)k))
			continue;
		was = conf_raw(r->boot_conf, (enum conf_key)k);
		now = conf_raw(c, (enum conf_key)k);
		if (was == now ||
		    (was != NULL && now != NULL && strcmp(was, now) == 0))
			continue;
		log_warnx("[%s] %s changed: needs a restart; still using %s",
		    conf_key_section((enum conf_key)k),
		    conf_key_name((enum conf_key)k),
		    was != NULL ? was : "(unset)");
	}
}

enum relay_dkim_change {
	RELAY_DKIM_SAME,   /* the running signer stays */
	RELAY_DKIM_NEW,    /* a new signer, or none: [dkim] was removed */
	RELAY_DKIM_FAILED, /* the new key cannot be loaded: the old set stays */
};

/* The signer of c, when its [dkim] set differs from the running one. */
static enum relay_dkim_change
relay_reload_dkim(
    const struct relay *r, const struct conf *c, struct dkim_signer **s)
{
	char *set = relay_dkim_set(c), *err = NULL;
	bool same = strcmp(set, r->dkim_set) == 0;

	*s = NULL;
	if (same) {
		free(set);
		return RELAY_DKIM_SAME;
	}
	if ((*s = relay_dkim_signer(c, &err)) == NULL && err != NULL) {
		log_warnx("%s: [dkim] %s not applied: still signing with the "
		          "old domain, selector and key (%s)",
		    err, set, r->dkim_set);
		free(err);
		free(set);
		return RELAY_DKIM_FAILED;
	}
	free(set);
	return RELAY_DKIM_NEW;
}

/* The new server TLS context and credentials of c, or -1 with *errstr. */
static int
relay_reload_server(struct relay *r, const struct conf *c, SSL_CTX **tls,
    struct server_auth **auth, char **errstr)
{
	const char *authf = conf_str(c, CONF_SERVER_AUTH_FILE);
	char *err = NULL;

	*auth = NULL;
	*tls = relay_server_tls(r, c, &err);
	if (*tls == NULL && err != NULL) {
		*errstr =
		    xasprintf("%s; the old certificate stays in service", err);
		free(err);
		return -1;
	}
	if (authf != NULL &&
	    (*auth = server_auth_load(authf, errstr)) == NULL) {
		SSL_CTX_free(*tls);
		return -1;
	}
	return 0;
}

int
relay_reload(struct relay *r, char **errstr)
{
	struct server_config sc;
	struct server_auth *auth;
	struct dkim_signer *dkim;
	enum relay_dkim_change dc;
	const char *lerr;
	struct conf *c;
	SSL_CTX *tls;

	if ((c = conf_load(r->config_path, errstr)) == NULL)
		return -1;
	if (relay_check_config(c, true, errstr) == -1 ||
	    relay_reload_server(r, c, &tls, &auth, errstr) == -1) {
		conf_free(c);
		return -1;
	}
	dc = relay_reload_dkim(r, c, &dkim);
	relay_server_config(r, c, tls, auth, &sc);
	if (dc == RELAY_DKIM_NEW)
		sc.dkim = conf_bool(c, CONF_DKIM_SIGN_OUTBOUND) ? dkim : NULL;
	if (server_reload(r->server, &sc, errstr) == -1) {
		dkim_signer_free(dkim);
		SSL_CTX_free(tls);
		server_auth_free(auth);
		conf_free(c);
		return -1;
	}
	relay_reload_restart_keys(r, c);
	if (log_reconfigure(conf_str(c, CONF_LOG_FORMAT),
	        conf_str(c, CONF_LOG_LEVEL), &lerr) == -1)
		panic("[log]: %s", lerr);
	/* Sessions hold their own references; the old objects can go. */
	SSL_CTX_free(r->server_tls);
	server_auth_free(r->auth);
	r->server_tls = tls;
	r->auth = auth;
	if (dc == RELAY_DKIM_NEW) {
		/* Nothing holds the old signer across callbacks. */
		dkim_signer_free(r->dkim);
		r->dkim = dkim;
		free(r->dkim_set);
		r->dkim_set = relay_dkim_set(c);
		log_info("[dkim] now signing as %s", r->dkim_set);
	}
	/* The reports' From: defaults to the [dkim] domain: it moves with
	 * the signer, never without it. */
	if (r->reporter != NULL && dc != RELAY_DKIM_FAILED)
		relay_tlsrpt_reconfigure(r->reporter, c, r->hostname, r->dkim);
	policy_free(r->policy);
	if (r->conf != r->boot_conf)
		conf_free(r->conf);
	r->conf = c;
	r->policy = policy_new(c);
	deliver_set_policy(r->deliver, r->policy);
	deliver_set_hold(r->deliver, conf_bool(c, CONF_DELIVERY_HOLD));
	log_info("configuration reloaded");
	return 0;
}

static void
relay_part_done(void *arg)
{
	struct relay *r = arg;

	if (--r->stopping == 0 && r->done != NULL)
		r->done(r->done_arg);
}

void
relay_shutdown(struct relay *r, void (*done)(void *arg), void *arg)
{
	r->done = done;
	r->done_arg = arg;
	r->stopping = 2;
	log_info("stopping: no new connections; finishing sessions and "
	         "deliveries in progress");
	server_shutdown(r->server, relay_part_done, r);
	deliver_shutdown(r->deliver, relay_part_done, r);
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	console_stop(r->console); /* first: it reads the stores below */
	relay_tlsrpt_free(r->reporter);
	relay_dns_free(r->dns);
	deliver_free(r->deliver);
	/* deliver_free() writes the outcomes kept while the queue could not
	 * be written (deliver_hold.c), and the bodies they drop leave free
	 * pages that no timer will give back any more. */
	if (r->queue != NULL && queue_compact(r->queue) == -1)
		log_warnx("queue: cannot compact: %s", queue_error(r->queue));
	server_free(r->server);
	/* After the last write to the queue: its last events are copied. */
	fleet_sync_stop(r->fleet);
	if (r->sts_timer != NULL)
		event_free(r->sts_timer);
	if (r->purge_timer != NULL)
		event_free(r->purge_timer);
	if (r->compact_timer != NULL)
		event_free(r->compact_timer);
	sts_free(r->sts);
	tlsrpt_store_close(r->tlsrpt);
	dkim_signer_free(r->dkim);
	policy_free(r->policy);
	server_auth_free(r->auth);
	SSL_CTX_free(r->server_tls);
	SSL_CTX_free(r->client_tls);
	queue_close(r->queue);
	dns_resolver_free(r->resolver);
	if (r->conf != r->boot_conf)
		conf_free(r->conf);
	conf_free(r->boot_conf);
	free(r->retry);
	free(r->dkim_set);
	free(r->config_path);
	if (r->lock_fd != -1)
		close(r->lock_fd); /* last: the queue is closed */
	free(r);
}
