/*
 * relay_tlsrpt: the identity of our reports, chosen once from the config:
 *
 *  - sender_address: [tlsrpt] sender_address, else noreply-tlsrpt@ the
 *    [dkim] domain (so the From: aligns with the d= of the signature),
 *    else noreply-tlsrpt@HOSTNAME;
 *  - contact-info: [tlsrpt] contact, else the sender address;
 *  - submitter (TLS-Report-Submitter, §5.3: MUST match the domain of the
 *    contact-info): the domain of the contact when it is an address,
 *    else the [dkim] domain, else the host name;
 *  - organization-name: [tlsrpt] organization, else the submitter.
 */
#include "relay/relay_tlsrpt.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "dkim/dkim.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_send.h"

#define RT_TICK_S 60 /* schedule check and retries */
#define RT_DAYS   RELAY_TLSRPT_DAYS

struct relay_tlsrpt {
	struct event_base *base;
	struct http_client *http;
	struct tlsrpt_sender *sender;
	struct relay_tlsrpt_ident id;
	struct event *timer;
	struct relay_tlsrpt_days days; /* the schedule's state */
	char run_day[TLSRPT_DAY_LEN]; /* of the run in progress, "" = retries */
};

struct dkim_signer *
relay_dkim_signer(const struct conf *c, char **errstr)
{
	const char *dom = conf_str(c, CONF_DKIM_DOMAIN);
	const char *sel = conf_str(c, CONF_DKIM_SELECTOR);
	const char *key = conf_str(c, CONF_DKIM_KEY_FILE);
	struct dkim_signer *s;
	char *err = NULL;

	*errstr = NULL;
	if (dom == NULL && sel == NULL && key == NULL)
		return NULL;
	if (dom == NULL || sel == NULL || key == NULL) {
		*errstr = xstrdup("[dkim] needs domain, selector and key_file");
		return NULL;
	}
	if ((s = dkim_signer_new(dom, sel, key, &err)) == NULL) {
		*errstr = xasprintf("[dkim] %s", err);
		free(err);
	}
	return s;
}

void
relay_tlsrpt_ident(
    const struct conf *c, const char *hostname, struct relay_tlsrpt_ident *t)
{
	const char *dkim = conf_str(c, CONF_DKIM_DOMAIN);
	const char *from = conf_str(c, CONF_TLSRPT_SENDER_ADDRESS);
	const char *contact = conf_str(c, CONF_TLSRPT_CONTACT);
	const char *org = conf_str(c, CONF_TLSRPT_ORGANIZATION);
	const char *at;

	t->sender_address = from != NULL ?
	    xstrdup(from) :
	    xasprintf("noreply-tlsrpt@%s", dkim != NULL ? dkim : hostname);
	t->contact =
	    xstrdup(contact != NULL && contact[0] != '\0' ? contact :
	                                                    t->sender_address);
	at = strrchr(t->contact, '@');
	t->submitter =
	    xstrdup(at != NULL && strchr(t->contact, '/') == NULL ? at + 1 :
	            dkim != NULL                                  ? dkim :
	                                                            hostname);
	t->organization = xstrdup(org != NULL ? org : t->submitter);
}

void
relay_tlsrpt_ident_free(struct relay_tlsrpt_ident *t)
{
	free(t->sender_address);
	free(t->contact);
	free(t->submitter);
	free(t->organization);
}

struct relay_tlsrpt *
relay_tlsrpt_new(const struct conf *c, const struct relay_tlsrpt_deps *d)
{
	struct relay_tlsrpt *t = xcalloc(1, sizeof(*t));
	struct tlsrpt_send_config sc;

	t->http = http_client_new(d->base, conf_str(c, CONF_TLSRPT_CA_FILE));
	t->base = d->base;
	relay_tlsrpt_ident(c, d->hostname, &t->id);
	t->days.max_delay = (time_t)conf_int(c, CONF_TLSRPT_MAX_DELAY);
	if (getentropy(&t->days.salt, sizeof(t->days.salt)) == -1)
		t->days.salt = (uint32_t)getpid();
	memset(&sc, 0, sizeof(sc));
	sc.base = d->base;
	sc.resolver = d->resolver;
	sc.http = t->http;
	sc.queue = d->queue;
	sc.store = d->store;
	sc.book = d->book;
	sc.dkim = d->dkim;
	sc.organization = t->id.organization;
	sc.contact = t->id.contact;
	sc.submitter = t->id.submitter;
	sc.sender_address = t->id.sender_address;
	sc.https_timeout_ms =
	    (unsigned)conf_int(c, CONF_TLSRPT_POST_TIMEOUT) * 1000;
	/* A fleet node's claim on a destination must outlast its POST, or
	 * another node could send the same report meanwhile. */
	if (d->book != NULL &&
	    sc.https_timeout_ms >
	        (unsigned)conf_int(c, CONF_TLSRPT_LEASE) * 500)
		sc.https_timeout_ms =
		    (unsigned)conf_int(c, CONF_TLSRPT_LEASE) * 500;
	sc.on_queued = d->on_queued;
	sc.arg = d->arg;
	t->sender = tlsrpt_send_new(&sc);
	if (d->dkim == NULL)
		log_warnx("TLS-RPT: no [dkim] key: reports to mailto: "
		          "destinations cannot be sent (RFC 8460 §3)");
	return t;
}

struct tlsrpt_sender *
relay_tlsrpt_sender(struct relay_tlsrpt *t)
{
	return t->sender;
}

void
relay_tlsrpt_reconfigure(struct relay_tlsrpt *t, const struct conf *c,
    const char *hostname, const struct dkim_signer *dkim)
{
	struct relay_tlsrpt_ident id;
	struct tlsrpt_send_config sc;

	relay_tlsrpt_ident(c, hostname, &id);
	memset(&sc, 0, sizeof(sc));
	sc.dkim = dkim;
	sc.organization = id.organization;
	sc.contact = id.contact;
	sc.submitter = id.submitter;
	sc.sender_address = id.sender_address;
	tlsrpt_send_reconfigure(t->sender, &sc);
	relay_tlsrpt_ident_free(&t->id);
	t->id = id;
}

/* §4.1: a random delay of 1 s up to max_delay after the day's end. */
time_t
relay_tlsrpt_delay(const struct relay_tlsrpt_days *t, const char *day)
{
	uint32_t h = 2166136261u ^ t->salt;
	size_t i;

	if (t->max_delay == 0)
		return 0;
	for (i = 0; day[i] != '\0'; i++)
		h = (h ^ (uint8_t)day[i]) * 16777619u;
	return 1 + (time_t)(h % (uint32_t)t->max_delay);
}

static bool
relay_tlsrpt_finished(const struct relay_tlsrpt_days *t, const char *day)
{
	unsigned i;

	for (i = 0; i < t->nfinished && i < RT_DAYS; i++)
		if (strcmp(t->finished[i], day) == 0)
			return true;
	return false;
}

static void relay_tlsrpt_ran(const struct tlsrpt_send_stats *st, void *arg);

/* The oldest of the last days that is due and not finished, or none. */
bool
relay_tlsrpt_due_day(
    const struct relay_tlsrpt_days *t, time_t now, char day[TLSRPT_DAY_LEN])
{
	time_t start = now - now % 86400;
	int k;

	for (k = RT_DAYS; k >= 1; k--) {
		time_t end = start - (time_t)(k - 1) * 86400;

		if (tlsrpt_day(end - 1, day) == -1)
			continue;
		if (now >= end + relay_tlsrpt_delay(t, day) &&
		    !relay_tlsrpt_finished(t, day))
			return true;
	}
	return false;
}

static void
relay_tlsrpt_tick(evutil_socket_t fd, short what, void *arg)
{
	struct relay_tlsrpt *t = arg;
	time_t now = time(NULL);

	if (!relay_tlsrpt_due_day(&t->days, now, t->run_day))
		t->run_day[0] =
		    '\0'; /* only retries: the next look in a minute */
	if (tlsrpt_send_run(t->sender,
	        t->run_day[0] != '\0' ? t->run_day : NULL, now,
	        relay_tlsrpt_ran, t) == -1) {
		struct timeval tv = { RT_TICK_S, 0 };

		evtimer_add(
		    t->timer, &tv); /* busy: cannot happen; look later */
	}
}

static void
relay_tlsrpt_ran(const struct tlsrpt_send_stats *st, void *arg)
{
	struct relay_tlsrpt *t = arg;
	struct timeval tv = { RT_TICK_S, 0 };

	if (t->run_day[0] != '\0' && st->dns_later == 0 && st->later == 0) {
		memcpy(t->days.finished[t->days.nfinished % RT_DAYS],
		    t->run_day, TLSRPT_DAY_LEN);
		t->days.nfinished++;
	}
	/* Per destination, as the outbox counts them (RFC 8460 §3). */
	metrics_tlsrpt_reports("sent", st->queued + st->posted);
	metrics_tlsrpt_reports("failed", st->failed);
	if (st->domains > 0 || st->queued > 0 || st->posted > 0 ||
	    st->failed > 0)
		log_info("TLS-RPT: %s: %u domains, %u without policy, %u "
		         "mails queued, %u posted, %u to retry, %u given up",
		    t->run_day[0] != '\0' ? t->run_day : "retries", st->domains,
		    st->no_policy, st->queued, st->posted, st->retry,
		    st->failed);
	/* Another day may be due too: look again at once (not after a DNS
	 * failure, which would spin). */
	if (t->run_day[0] != '\0' && st->dns_later == 0 && st->later == 0)
		tv.tv_sec = 0;
	evtimer_add(t->timer, &tv);
}

void
relay_tlsrpt_schedule(struct relay_tlsrpt *t)
{
	struct timeval tv = { 1, 0 };

	t->timer = evtimer_new(t->base, relay_tlsrpt_tick, t);
	evtimer_add(t->timer, &tv);
}

void
relay_tlsrpt_free(struct relay_tlsrpt *t)
{
	if (t == NULL)
		return;
	if (t->timer != NULL)
		event_free(t->timer);
	tlsrpt_send_free(t->sender);
	http_client_free(t->http);
	relay_tlsrpt_ident_free(&t->id);
	free(t);
}
