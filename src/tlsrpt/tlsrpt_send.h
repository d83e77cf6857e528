/*
 * tlsrpt_send: sending our TLS reports (RFC 8460 §4.1, §5) from the store.
 *
 * For one UTC day: every policy domain with counters whose report was not
 * prepared yet gets its _smtp._tls TXT record looked up (tlsrpt_rua). A
 * domain without a usable record is marked done; for the others the
 * report is built once (report-id, JSON, gzip) and put in the outbox, one
 * entry per rua destination. Then every due outbox entry is tried:
 *
 *  - mailto: the §5.3 message (tlsrpt_mail), DKIM-signed by the
 *    configured signer (§3: reports without a valid signature MUST be
 *    ignored, so without a signer nothing is sent), is queued as a
 *    QUEUE_KIND_REPORT message with NOTIFY=NEVER; the queue delivers it
 *    under the relaxed rules of §3 (deliver/) and gives up after 24 h.
 *  - https: POST of the gzipped report with Content-Type
 *    application/tlsrpt+gzip (§5.4); a 2xx is success. Failures are
 *    retried with exponential backoff (5 min doubling, at most 2 h) and
 *    given up 24 hours after the first attempt (§5.5).
 *
 * Once no entry of a (day, domain) is pending, the report is marked sent.
 * Everything is durable in the store, so a restart resumes where it
 * stopped and a report is never built twice with different ids.
 */
#ifndef DR_TLSRPT_SEND_H
#define DR_TLSRPT_SEND_H

#include <stddef.h>
#include <time.h>

struct event_base;
struct dns_resolver;
struct http_client;
struct queue;
struct tlsrpt_store;
struct dkim_signer;
struct tlsrpt_sender;

struct tlsrpt_send_config {
	struct event_base *base;
	struct dns_resolver *resolver;
	struct http_client *http;
	struct queue *queue;
	struct tlsrpt_store *store;
	const struct dkim_signer *dkim; /* NULL: mailto destinations fail */
	const char *organization;       /* organization-name */
	const char *contact;            /* contact-info */
	const char *submitter;          /* TLS-Report-Submitter domain */
	const char *sender_address;     /* From and envelope sender */
	unsigned https_timeout_ms;
	void (*on_queued)(void *arg); /* a report mail was queued */
	void *arg;
};

/* What one run did, for logs and `tlsrpt send`. */
struct tlsrpt_send_stats {
	unsigned domains;   /* policy domains looked at */
	unsigned no_policy; /* without a usable _smtp._tls record */
	unsigned dns_later; /* lookup failed; tried again next run */
	unsigned queued;    /* report mails queued */
	unsigned posted;    /* https POSTs accepted */
	unsigned retry;     /* attempts that failed and will be retried */
	unsigned failed;    /* given up */
};

/* All pointers borrowed for the sender's life. Returns new. */
struct tlsrpt_sender *tlsrpt_send_new(const struct tlsrpt_send_config *c);

/*
 * SIGHUP: later reports are signed with c->dkim and carry c's identity
 * (organization, contact, submitter, sender_address); the other fields of
 * c are ignored. Borrowed as in tlsrpt_send_new; the old pointers are not
 * used once this returns (they are read only inside callbacks).
 */
void tlsrpt_send_reconfigure(
    struct tlsrpt_sender *s, const struct tlsrpt_send_config *c);

/* Cancels what is in flight (no callback). NULL is fine. */
void tlsrpt_send_free(struct tlsrpt_sender *s);

typedef void tlsrpt_send_done_cb(const struct tlsrpt_send_stats *st, void *arg);

/*
 * Prepare the reports of day ("YYYY-MM-DD"; NULL: only retry what is
 * due), then try every due outbox entry; done runs from the event loop
 * when all lookups and POSTs of this run have ended. Returns 0, or -1
 * when a run is already in progress (done will not be called).
 */
int tlsrpt_send_run(struct tlsrpt_sender *s, const char *day, time_t now,
    tlsrpt_send_done_cb *done, void *arg);

/*
 * The report-id of a report (RFC 8460 §4.4 "report-id", and the
 * Report-ID of §5.3, so it is an RFC 5322 id-left@id-right):
 * "YYYYMMDD.DOMAIN.RANDOM@SUBMITTER". Returns new.
 */
char *tlsrpt_send_report_id(
    const char *day, const char *domain, const char *submitter);

#endif
