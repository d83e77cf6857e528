/*
 * deliver: the outbound half of the relay. It takes due recipients from the
 * queue, groups them per destination domain, resolves and connects through
 * the same RFC 7672 engine as `danerelay check` (dane_mx, dane_host,
 * smtp_session), applies the per-destination policy (policy/), sends one
 * transaction per message with all its recipients for that domain, reuses
 * the connection for further messages, and records every outcome: queue
 * state, trace events, one log line per recipient and attempt, and the DSNs
 * the senders are owed (deliver_decide.c, the one place where defer, bounce
 * or next MX is decided).
 */
#ifndef DR_DELIVER_H
#define DR_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

struct event_base;
struct dns_resolver;
struct queue;
struct policy;
struct sts;
struct tlsrpt_store;
struct deliver;

struct deliver_config {
	struct event_base *base;
	struct dns_resolver *resolver;
	SSL_CTX *tls; /* client context with DANE enabled */
	struct queue *queue;
	const struct policy *policy;
	struct sts *sts;             /* MTA-STS engine, or NULL when disabled */
	struct tlsrpt_store *tlsrpt; /* TLS-RPT counters, or NULL */
	char **digests;              /* [dane] digests */
	const char *hostname;        /* EHLO name and Reporting-MTA */
	unsigned connect_timeout_ms;
	unsigned greeting_timeout_ms;
	unsigned command_timeout_ms;
	unsigned data_timeout_ms;
	const time_t *retry; /* waits between attempts; last repeats */
	size_t nretry;
	time_t max_lifetime;  /* then temporary failures are final */
	time_t delay_warning; /* 0 = no delay DSNs */
	unsigned concurrency; /* connections per destination, at most */
	unsigned initial_concurrency;
	unsigned dead_after; /* connection failures in a row */
	time_t dead_time;
	unsigned max_msgs_per_conn;
	unsigned conn_idle_ms;     /* wait for more mail; 0 = close at once */
	unsigned scan_interval_ms; /* queue poll period; 0 = 1000 */
	bool hold;                 /* [delivery] hold: start no attempt */
	unsigned tls_handshakes;   /* at once (tls/tls_gate.h); 0 = 128 */
	/* an MX lookup failed (not bogus): is DNS itself down? or NULL */
	void (*on_dns_error)(void *arg);
	void *dns_arg;
};

/* What the resolver's self-test says (relay/relay_dns.h). */
enum deliver_dns {
	DELIVER_DNS_OK,      /* validating: deliver (the default) */
	DELIVER_DNS_UNKNOWN, /* not known yet: start no attempt */
	DELIVER_DNS_DOWN,    /* unusable: defer at once with 4.4.3 */
};

/* Start delivering (all pointers borrowed for the object's life). */
struct deliver *deliver_new(const struct deliver_config *cfg);

/* A message was queued: scan now instead of at the next tick. */
void deliver_wake(struct deliver *d);

/* New policy after a reload (borrowed). */
void deliver_set_policy(struct deliver *d, const struct policy *p);

/* [delivery] hold changed by a reload: false starts delivering again. */
void deliver_set_hold(struct deliver *d, bool hold);

/*
 * The resolver's state changed. While DOWN, due recipients are deferred
 * at once with 4.4.3 and why (copied) as the reason, without counting
 * against their destinations; mail is never sent without DNSSEC
 * validation. OK wakes the scheduler.
 */
void deliver_set_dns(struct deliver *d, enum deliver_dns st, const char *why);

/*
 * Start no new attempts; done is called (from the event loop) once the
 * attempts in progress have finished.
 */
void deliver_shutdown(struct deliver *d, void (*done)(void *arg), void *arg);

void deliver_free(struct deliver *d);

#endif
