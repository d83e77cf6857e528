/*
 * cmd_tlsrpt_send: `danerelay tlsrpt send [--day D]`: send the TLS reports
 * of a UTC day now (default: yesterday) instead of waiting for the
 * relay's daily run, with the relay's configuration, store and queue:
 * https destinations are POSTed from this process, mail reports are
 * queued and go out through the running relay. Then every outbox entry of
 * the day is printed with its state.
 *
 * With [fleet] postgres the run is the fleet's (fleet_tlsrpt_send.c): this
 * node's counters are pushed first, each domain's report is claimed in
 * the database and built from the sums of every node, and the outbox
 * printed is the fleet's.
 *
 * Exit status: 0 every report was delivered or queued (or nothing was
 * due); 75 (EX_TEMPFAIL) some will be retried (by the relay) or a DNS
 * lookup failed; 1 some were given up; EX_USAGE for a --day that is not
 * a calendar day; EX_CONFIG / EX_NOINPUT / EX_UNAVAILABLE when the config,
 * the store or the resolver is missing.
 */
#include <event2/event.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "queue/queue.h"
#include "relay/relay.h"
#include "relay/relay_tlsrpt.h"
#include "dkim/dkim.h"
#include "fleet/fleet_tlsrpt.h"
#include "pg/pg.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_send.h"

struct send_ctx {
	struct conf *conf;
	struct event_base *base;
	struct dns_resolver *resolver;
	struct queue *queue;
	struct tlsrpt_store *store;
	struct dkim_signer *dkim;
	struct pg *pg;                  /* [fleet] postgres, or NULL */
	struct fleet_tlsrpt_book *book; /* the fleet's, or NULL */
	struct relay_tlsrpt *rt;
	struct tlsrpt_send_stats st;
	bool done;
	char day[TLSRPT_DAY_LEN];
};

static void
send_done(const struct tlsrpt_send_stats *st, void *arg)
{
	struct send_ctx *x = arg;

	x->st = *st;
	x->done = true;
}

static void
send_print(const struct tlsrpt_out *o, void *arg)
{
	printf("%-30s %-8s %3d  %s  %s\n", o->domain,
	    tlsrpt_out_state_str(o->state), o->attempts, o->uri, o->note);
}

static void
send_free(struct send_ctx *x)
{
	relay_tlsrpt_free(x->rt);
	fleet_tlsrpt_book_free(x->book);
	pg_close(x->pg);
	dkim_signer_free(x->dkim);
	tlsrpt_store_close(x->store);
	queue_close(x->queue);
	dns_resolver_free(x->resolver);
	if (x->base != NULL)
		event_base_free(x->base);
	conf_free(x->conf);
}

/* [fleet] postgres: the database, and the fleet's book in it. 0 or -1. */
static int
send_fleet(struct send_ctx *x, char **err)
{
	const char *conninfo = conf_str(x->conf, CONF_FLEET_POSTGRES);
	char *node;

	if (conninfo == NULL)
		return 0;
	node = pg_default_node(conf_str(x->conf, CONF_FLEET_NODE));
	x->pg = pg_open(conninfo, node, err);
	free(node);
	if (x->pg == NULL)
		return -1;
	x->book = fleet_tlsrpt_book_new(
	    x->pg, x->store, (time_t)conf_int(x->conf, CONF_TLSRPT_LEASE));
	return 0;
}

/* The outbox entries of the day: the node's, or the fleet's. */
static void
send_list(struct send_ctx *x)
{
	struct tlsrpt_store *m;

	if (x->pg == NULL) {
		tlsrpt_outbox_list(x->store, x->day, send_print, NULL);
		return;
	}
	if ((m = fleet_tlsrpt_snapshot(x->pg, x->day, x->day, NULL)) == NULL) {
		fprintf(stderr, "danerelay tlsrpt send: %s\n", pg_error(x->pg));
		return;
	}
	tlsrpt_outbox_list(m, x->day, send_print, NULL);
	tlsrpt_store_close(m);
}

/* Everything the run needs. 0, or an exit status after a message. */
static int
send_open(struct send_ctx *x)
{
	struct relay_tlsrpt_deps d = { 0 };
	const char *dir = conf_str(x->conf, CONF_QUEUE_DIRECTORY);
	char path[4096], host[256], *err = NULL;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/tlsrpt.db", dir);
	if ((x->queue = queue_open_conf(x->conf, false, &err)) == NULL)
		rc = EX_NOINPUT;
	else if ((x->store = tlsrpt_store_open(path, &err)) == NULL)
		rc = EX_NOINPUT;
	else if ((x->dkim = relay_dkim_signer(x->conf, &err)) == NULL &&
	    err != NULL)
		rc = EX_CONFIG;
	else if ((x->resolver = relay_resolver_new(x->conf, x->base, &err)) ==
	    NULL)
		rc = EX_UNAVAILABLE;
	else if (send_fleet(x, &err) == -1)
		rc = EX_UNAVAILABLE;
	if (rc == 0) {
		relay_hostname_of(x->conf, host, sizeof(host));
		d.base = x->base;
		d.resolver = x->resolver;
		d.queue = x->queue;
		d.store = x->store;
		d.book = x->book != NULL ? fleet_tlsrpt_book(x->book) : NULL;
		d.dkim = x->dkim;
		d.hostname = host;
		x->rt = relay_tlsrpt_new(x->conf, &d);
	}
	if (rc != 0) {
		fprintf(stderr, "danerelay tlsrpt send: %s\n", err);
		free(err);
	}
	return rc;
}

static int
send_parse(int argc, char **argv, char day[TLSRPT_DAY_LEN])
{
	static const struct option longopts[] = {
		{ "day", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	tlsrpt_day(time(NULL) - 86400, day);
	optind = 0;
	while ((ch = getopt_long(argc, argv, "d:", longopts, NULL)) != -1) {
		if (ch != 'd')
			return -1;
		/* A day that is not on the calendar is a usage error, not an
		 * empty report: the caller must hear of it (EX_USAGE). */
		if (tlsrpt_day_start(optarg) == (time_t)-1) {
			fprintf(stderr,
			    "danerelay tlsrpt send: --day %s: expected a "
			    "calendar day YYYY-MM-DD\n",
			    optarg);
			return -1;
		}
		memcpy(day, optarg, TLSRPT_DAY_LEN);
	}
	return optind == argc ? 0 : -1;
}

int
cmd_tlsrpt_send(int argc, char **argv, struct cli_ctx *ctx)
{
	struct send_ctx x;
	char today[TLSRPT_DAY_LEN];
	int rc;

	memset(&x, 0, sizeof(x));
	if (send_parse(argc, argv, x.day) == -1)
		return cli_usage("tlsrpt");
	x.conf = cli_load_conf(ctx);
	x.base = event_base_new();
	if ((rc = send_open(&x)) != 0) {
		send_free(&x);
		return rc;
	}
	tlsrpt_day(time(NULL), today);
	if (strcmp(x.day, today) >= 0)
		fprintf(stderr,
		    "danerelay tlsrpt send: warning: %s has not ended yet "
		    "(UTC); its report covers the sessions so far and the "
		    "day is not reported again\n",
		    x.day);
	tlsrpt_send_run(
	    relay_tlsrpt_sender(x.rt), x.day, time(NULL), send_done, &x);
	while (!x.done)
		event_base_loop(x.base, EVLOOP_ONCE);
	printf("%s: %u domains prepared, %u without a TLSRPT policy, %u mails "
	       "queued, %u posted, %u to retry, %u given up\n",
	    x.day, x.st.domains, x.st.no_policy, x.st.queued, x.st.posted,
	    x.st.retry, x.st.failed);
	send_list(&x);
	rc = x.st.failed > 0 ? 1 :
	    x.st.retry > 0 || x.st.dns_later > 0 || x.st.later > 0 ?
	                       EX_TEMPFAIL :
	                       0;
	send_free(&x);
	return rc;
}
