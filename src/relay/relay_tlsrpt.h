/*
 * relay_tlsrpt: sending TLS reports from the relay and from `danerelay
 * tlsrpt send`: builds the tlsrpt sender (tlsrpt/tlsrpt_send.h) from the
 * configuration (identity of the reports, the https client, the DKIM
 * signer), and in the daemon runs the daily schedule of RFC 8460 §4.1: a
 * day is reported once it has ended in UTC plus a random delay of up to
 * [tlsrpt] max_delay; the last three days are looked at, so a relay that
 * was down at the time catches up. Every minute the due retries run.
 */
#ifndef DR_RELAY_TLSRPT_H
#define DR_RELAY_TLSRPT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "tlsrpt/tlsrpt.h"

struct conf;
struct event_base;
struct dns_resolver;
struct queue;
struct tlsrpt_store;
struct tlsrpt_sender;
struct tlsrpt_send_book;
struct dkim_signer;
struct relay_tlsrpt;

/* Who our reports say they are from (relay_tlsrpt.c explains the
 * defaults). All new strings. */
struct relay_tlsrpt_ident {
	char *sender_address; /* From: and envelope sender */
	char *contact;        /* contact-info */
	char *submitter;      /* TLS-Report-Submitter */
	char *organization;   /* organization-name */
};

void relay_tlsrpt_ident(
    const struct conf *c, const char *hostname, struct relay_tlsrpt_ident *out);
void relay_tlsrpt_ident_free(struct relay_tlsrpt_ident *id);

struct relay_tlsrpt_deps {
	struct event_base *base;
	struct dns_resolver *resolver;
	struct queue *queue;
	struct tlsrpt_store *store;
	/* The fleet's book (fleet_tlsrpt_book), or NULL: the store's own. */
	const struct tlsrpt_send_book *book;
	const struct dkim_signer *dkim; /* or NULL */
	const char *hostname;
	void (*on_queued)(void *arg);
	void *arg;
};

/* All borrowed. Returns new; cannot fail (libcurl is loaded by the first
 * POST, http/http_lib.h). */
struct relay_tlsrpt *relay_tlsrpt_new(
    const struct conf *c, const struct relay_tlsrpt_deps *d);

struct tlsrpt_sender *relay_tlsrpt_sender(struct relay_tlsrpt *t);

/*
 * SIGHUP: the identity of later reports from c ([tlsrpt] organization,
 * contact, sender_address and the [dkim] domain they default to) and the
 * signer dkim (borrowed, or NULL).
 */
void relay_tlsrpt_reconfigure(struct relay_tlsrpt *t, const struct conf *c,
    const char *hostname, const struct dkim_signer *dkim);

/* The daemon: start the daily schedule. */
void relay_tlsrpt_schedule(struct relay_tlsrpt *t);

void relay_tlsrpt_free(struct relay_tlsrpt *t);

/*
 * The daily schedule's decisions, apart from the timer so they can be
 * tested. A day (UTC) is due once it has ended plus its delay; the last
 * RELAY_TLSRPT_DAYS days are looked at; a day in finished[] (the last
 * nfinished runs, a ring) is not due again.
 */
#define RELAY_TLSRPT_DAYS 3
struct relay_tlsrpt_days {
	time_t max_delay; /* [tlsrpt] max_delay; 0 = no delay */
	uint32_t salt;    /* the random delay, per day, per process */
	char finished[RELAY_TLSRPT_DAYS][TLSRPT_DAY_LEN];
	unsigned nfinished;
};

/* §4.1: the delay after day's end, 1 s up to max_delay (0 if that is 0),
 * fixed for a given salt and day. */
time_t relay_tlsrpt_delay(const struct relay_tlsrpt_days *s, const char *day);

/* The oldest of the last days that is due at now and not finished: true
 * with day ("YYYY-MM-DD") filled, or false. */
bool relay_tlsrpt_due_day(
    const struct relay_tlsrpt_days *s, time_t now, char day[TLSRPT_DAY_LEN]);

/*
 * The [dkim] signer, or NULL with *errstr NULL when [dkim] is not
 * configured, or NULL with *errstr (new) when it is but cannot be used.
 */
struct dkim_signer *relay_dkim_signer(const struct conf *c, char **errstr);

#endif
