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

#include "tlsrpt/tlsrpt.h"

struct event_base;
struct dns_resolver;
struct http_client;
struct queue;
struct tlsrpt_store;
struct dkim_signer;
struct tlsrpt_sender;

/*
 * The book the run keeps: which domains it prepares, how a report is
 * built, where the outbox is. tlsrpt_book_local() (tlsrpt_book.c) is the
 * node's own store; a fleet node passes the shared database's
 * (src/fleet/fleet_tlsrpt_send.c), where claims make one node prepare
 * each domain's report and one node at a time try each destination.
 * Every function gets ctx; strings are borrowed for the call.
 */
struct tlsrpt_send_book {
	void *ctx;
	/* The day's policy domains that may still need a report. New
	 * (tlsrpt_strv_free), or NULL on an error (error()). */
	char **(*domains)(void *ctx, const char *day, size_t *n);
	/* Whether this run prepares domain's report: 1 (claimed), 0 (done
	 * or prepared), 2 (another node is preparing it: the day is looked
	 * at again next run, in case that node dies), -1 (error). */
	int (*claim)(
	    void *ctx, const char *day, const char *domain, time_t now);
	/* The claim ends unused (the _smtp._tls lookup failed): a later
	 * run tries the domain again. */
	void (*release)(void *ctx, const char *day, const char *domain);
	/* The RFC 8460 §4.4 JSON of the report (tlsrpt_report_build). New,
	 * or NULL with error(). */
	char *(*build)(void *ctx, const char *domain, const char *day,
	    const char *organization, const char *contact,
	    const char *report_id);
	/* The prepared report o (its uri ignored) for each of the n uris;
	 * n = 0: the domain takes no reports, its day is done. At once (one
	 * transaction): a report is prepared once, with one report-id. */
	int (*prepare)(void *ctx, const struct tlsrpt_out *o,
	    const char *const *uris, size_t n);
	/* The due PENDING entries, at most max (claimed for this node). */
	int (*due)(
	    void *ctx, time_t now, size_t max, tlsrpt_out_cb *cb, void *arg);
	/* After an attempt (tlsrpt_outbox_update); the day of the domain is
	 * done when no entry of it is pending any more. 0 or -1. */
	int (*update)(void *ctx, const char *day, const char *domain,
	    const char *uri, enum tlsrpt_out_state state, const char *note,
	    time_t now, time_t next_attempt);
	/* The last error, one line, borrowed. */
	const char *(*error)(void *ctx);
};

/* The book of the node's own store s (borrowed) into b. */
void tlsrpt_book_local(struct tlsrpt_send_book *b, struct tlsrpt_store *s);

struct tlsrpt_send_config {
	struct event_base *base;
	struct dns_resolver *resolver;
	struct http_client *http;
	struct queue *queue;
	struct tlsrpt_store *store; /* the node's own, when book is NULL */
	const struct tlsrpt_send_book *book; /* else this one (borrowed) */
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
	unsigned later;     /* the book failed (the fleet's database away):
	                     * the day is tried again next run */
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
