/*
 * deliver_int: the data shared by the files of src/deliver/ only:
 * destinations (deliver.c), jobs = one connection's worth of work
 * (deliver_job.c) and the decisions on their outcomes (deliver_decide.c).
 */
#ifndef DR_DELIVER_INT_H
#define DR_DELIVER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "core/outcome.h"
#include "deliver/deliver.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "smtp/smtp_session.h"

struct dane_mx;
struct dane_mx_lookup;
struct dane_host;
struct dane_host_lookup;
struct event;

/* One recipient waiting for, or going through, an attempt. */
struct drcpt {
	int64_t id;
	char msgid[QUEUE_ID_LEN];
	char *addr;
	char *orcpt;
	unsigned notify;
	time_t queued_at;
	int attempts;
	bool delay_warned;
	bool bounce_now; /* the operator asked to bounce it */
	bool report; /* a TLS report: given up after 24 h (RFC 8460 §5.5) */
	/* outcome of this attempt: allocated when a job takes the recipient
	 * (job_group), so the up to DELIVER_PENDING_MAX waiting ones do not
	 * each carry its 420 octets (docs/PERFORMANCE.md) */
	bool done;
	struct outcome *o;
	char *remote; /* remote reply for Diagnostic-Code, or NULL */
	/* what deliver_decide did, for deliver_decide_message */
	enum queue_rcpt_status decided;
	bool warn_now; /* a delay DSN is due */
	bool logged;   /* its log line is out (deliver_hold writes again) */
	TAILQ_ENTRY(drcpt) entry;
};
TAILQ_HEAD(drcpt_list, drcpt);

struct job;
TAILQ_HEAD(job_list, job);

struct dheld; /* deliver_hold.c */
TAILQ_HEAD(dheld_list, dheld);
struct dsettled; /* deliver_hold.c */

struct ddest {
	char *domain;
	/*
	 * TLS reports (QUEUE_KIND_REPORT) travel apart from other mail to
	 * the same domain: RFC 8460 §3 wants them delivered despite the
	 * TLS failures they may report, so they get a relaxed policy.
	 */
	bool report;
	struct drcpt_list pending;
	size_t npending;
	unsigned active; /* jobs running */
	unsigned limit;  /* slow start: grows with success */
	unsigned fails;  /* connection-level failures in a row */
	time_t dead_until;
	time_t last_fail; /* kept while recent: failures must add up */
	struct outcome dead_reason;
	TAILQ_ENTRY(ddest) entry;
	struct ddest *hnext; /* chain in deliver.dtab */
	/*
	 * Jobs whose messages are done and whose connection is kept open a
	 * moment for more mail to this destination (deliver_job_idle).
	 * They still count in active.
	 */
	struct job_list idle;
};
TAILQ_HEAD(ddest_list, ddest);

struct deliver {
	struct deliver_config cfg;
	const struct policy *policy;
	struct event *timer;
	struct ddest_list dests;
	struct ddest **dtab; /* hash of dests by (domain, report) */
	size_t dtab_cap, ndests;
	int64_t *inflight; /* open-addressing set of recipient ids */
	size_t inflight_cap;
	size_t inflight_n;
	size_t npending; /* recipients waiting in all dests' pending lists */
	bool more_due;   /* the last scan stopped before the due rows ended */
	bool woken;      /* deliver_wake() since the last scan began */
	bool slice;      /* the next scan goes on from the cursor */
	time_t cursor_next; /* where the last scan stopped */
	int64_t cursor_id;
	unsigned jobs;
	struct job_list joblist;
	struct event *grace;   /* shutdown: abort what is still running */
	struct tls_gate *gate; /* TLS handshakes at once, all destinations */
	enum deliver_dns dns;  /* the resolver's state */
	char dns_why[512];     /* why it is DOWN */
	bool stopping;
	/* the last queue scan or lease renewal failed (logged once per
	 * outage: store = postgres while the database is away) */
	bool queue_down;
	/* outcomes not written yet (deliver_hold.c): no new attempts */
	bool paused;
	struct dheld_list held;
	size_t nheld; /* recipients in held */
	struct event *probe;
	int probe_s;
	/* settled messages of all jobs, for the next commit (deliver_hold.c) */
	struct dsettled *batch;
	size_t nbatch;
	struct event *batch_ev;
	void (*stopped)(void *arg);
	void *stopped_arg;
};

/* The facts of one connection, for log lines and the trace. */
struct dfacts {
	char mx[256]; /* host name as in the MX RRset / route */
	char ip[64];
	unsigned port;
	const char *tls; /* verified|trusted|encrypted|none */
	char tls_version[32];
	char cipher[64];
	char tlsa[16];        /* "3-1-1" or "" */
	char tlsa_base[256];  /* TLSA base domain = SNI under DANE, or "" */
	const char *policy;   /* "dane", "mta-sts" or "none" */
	struct outcome would; /* log-only: what would have failed */
	bool would_fail;
	/* would only ever be reported: the domain's MTA-STS policy is in
	 * testing mode (RFC 8461 section 5), so enforcing here would not
	 * block it either (not counted by /impact or would_block) */
	bool would_report_only;
};

/* One message of a job, with its recipients for this destination. */
struct dmsg {
	char msgid[QUEUE_ID_LEN];
	struct queue_msg *msg; /* loaded when its turn comes */
	struct drcpt **rcpts;
	size_t n;
	struct smtp_txn *txn; /* while its transaction runs */
	/* The recipients in the transaction: the indexes into rcpts of
	 * those still open (job_prepare; the operator's bounces are not). */
	size_t *open;
	size_t nopen;
	struct smtp_rcpt_reply *replies; /* one per open recipient */
	char **addrs;
	char **params;
	char *mail_params;
};

/* deliver.c */
void deliver_inflight_del(struct deliver *d, int64_t id);
/* counts: the attempt says something about dest, for the dead-destination
 * cache: a connection was tried (not so while DNS is down, after a failed
 * MX lookup, or when dest was dead already and not tried again). */
void deliver_job_finished(
    struct deliver *d, struct ddest *dest, bool connected, bool counts);

/* deliver_job.c: run one job for dest over the given recipients. */
void deliver_job_start(
    struct deliver *d, struct ddest *dest, struct drcpt **rcpts, size_t n);

/*
 * Shutdown grace period over: end the job's connection now; its
 * recipients not yet done are deferred (4.3.2) and the job finishes from
 * the loop as usual.
 */
void deliver_job_abort(struct job *j);
/* The job after j in deliver's list (struct job is private to its file). */
struct job *deliver_job_next(struct job *j);

/*
 * Connection reuse across jobs: a job that has sent all its messages over
 * a healthy session settles their outcomes and waits up to
 * DELIVER_IDLE_MS on dest->idle for more. deliver_job_idle_take() takes
 * one off the list (NULL if none); deliver_job_room() is how many more
 * messages its connection may carry; deliver_job_resume() gives it
 * recipients (at most that many messages) and it sends them at once.
 */
struct job *deliver_job_idle_take(struct ddest *dest);
unsigned deliver_job_room(const struct job *j);
void deliver_job_resume(struct job *j, struct drcpt **rcpts, size_t n);

/* deliver.c: a connection to dest worked (slow start grows the limit). */
void deliver_dest_ok(struct deliver *d, struct ddest *dest);

/* deliver.c: start what dest's pending recipients allow. */
void deliver_dest_kick(struct deliver *d, struct ddest *dest);

/*
 * deliver_decide.c: record the outcome of r (r->o, r->remote) for message
 * m after an attempt described by f (NULL: no connection was made);
 * queue state, trace event, log line. Then, once per message,
 * deliver_decide_message() sends the DSNs owed and collects garbage.
 */
void deliver_decide(
    struct deliver *d, struct dmsg *m, struct drcpt *r, const struct dfacts *f);
/* "dane", "dane_trusted", "sts", "tls", "plaintext" or NULL: see there. */
const char *deliver_security(const struct dfacts *f, const struct outcome *o);
void deliver_decide_message(
    struct deliver *d, struct dmsg *m, const struct dfacts *f);

/*
 * deliver_hold.c: decide and write the outcomes of message m (taken over
 * with its recipients, which leave the in-flight set once written; *m is
 * emptied) after an attempt described by f (copied; NULL: no connection).
 * Messages settled by all jobs are written together (group commit), once
 * enough of them wait or a few milliseconds after the first. If the write
 * fails, they are kept in memory, the scheduler pauses (d->paused: no new
 * attempt) and a timer writes them when the queue can be written again,
 * then resumes. deliver_outcomes() does it for each of the nmsg messages
 * not handed over yet and frees the array msgs.
 */
void deliver_outcome(struct deliver *d, struct dmsg *m, const struct dfacts *f);
void deliver_outcomes(
    struct deliver *d, struct dmsg *msgs, size_t nmsg, const struct dfacts *f);
/* At exit: write the pending batch and what is kept, then free them. */
void deliver_hold_free(struct deliver *d);

void drcpt_free(struct drcpt *r);

#endif
