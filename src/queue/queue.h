/*
 * queue: the durable store of the relay (SQLite, WAL, synchronous=FULL).
 *
 * A message is committed, body and recipients, in one transaction before
 * queue_add() returns 0; only then may the server answer 250 to the final
 * dot, so an acknowledged message survives kill -9 and power loss (the
 * fsync of the WAL commit is the durability point). Recipients move from
 * queued to delivered, bounced or deleted; the body is removed once no
 * recipient is queued and no report about it is pending. Every event of a
 * message's life is appended to an event log for `danerelay trace`.
 *
 * Several processes may open the same queue: the daemon and the `queue` /
 * `trace` commands. SQLite's locking serialises writers; the daemon picks
 * up changes made by the commands on its next scan (queue_due()).
 *
 * The operator may hold a recipient: it stays in the queue with its
 * message's body, but is never due until released (Postfix's hold queue).
 */
#ifndef DR_QUEUE_H
#define DR_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

struct queue;

#define QUEUE_ID_LEN 17 /* 16 hex characters + NUL (core/qid.h) */

/* RFC 3461 §4.1 NOTIFY bits; 0 = not given (default: FAILURE). */
#define QUEUE_NOTIFY_NEVER   0x1
#define QUEUE_NOTIFY_SUCCESS 0x2
#define QUEUE_NOTIFY_FAILURE 0x4
#define QUEUE_NOTIFY_DELAY   0x8

/* RFC 3461 §4.3 RET. */
enum queue_ret {
	QUEUE_RET_UNSET,
	QUEUE_RET_FULL,
	QUEUE_RET_HDRS,
};

/* The values are stored (recipients.status): never renumber them. */
enum queue_rcpt_status {
	QUEUE_RCPT_QUEUED,
	QUEUE_RCPT_DELIVERED,
	QUEUE_RCPT_BOUNCED,
	QUEUE_RCPT_DELETED,
	QUEUE_RCPT_HELD, /* queued, but never due until released */
};

/* Kinds of message: what the relay accepted, or what it generated. */
enum queue_kind {
	QUEUE_KIND_MAIL,   /* accepted from a client */
	QUEUE_KIND_DSN,    /* a delivery status notification we generated */
	QUEUE_KIND_REPORT, /* a TLS-RPT report (RFC 8460 §5.3) */
};

struct queue_rcpt_in {
	const char *addr;  /* local@domain, no angle brackets */
	const char *orcpt; /* RFC 3461 ORCPT as given ("rfc822;x@y"), or NULL */
	unsigned notify;   /* QUEUE_NOTIFY_* bits, 0 = not given */
};

struct queue_msg_in {
	enum queue_kind kind;
	const char *sender; /* reverse-path; "" = null sender <> */
	const char *envid;  /* RFC 3461 ENVID (decoded), or NULL */
	enum queue_ret ret;
	bool body_8bit;         /* BODY=8BITMIME was given */
	bool smtputf8;          /* SMTPUTF8 was given */
	const char *client;     /* "name [ip]:port" of the submitting client */
	const char *helo;       /* its EHLO/HELO argument, or NULL */
	const char *auth_user;  /* authenticated user, or NULL */
	const char *message_id; /* Message-ID header value, or NULL */
	const uint8_t *data;    /* message as it will be sent: CRLF line ends,
	                         * not dot-stuffed, Received header included */
	size_t len;
	const struct queue_rcpt_in *rcpts;
	size_t nrcpt;
};

/* A queued recipient, as the scheduler and the queue command see it. */
struct queue_rcpt {
	int64_t id; /* row id, stable */
	char msgid[QUEUE_ID_LEN];
	const char *addr;
	const char *domain; /* lowercase part after the last '@' */
	const char *orcpt;  /* or NULL */
	unsigned notify;
	enum queue_rcpt_status status;
	int attempts;
	time_t queued_at; /* when the message was accepted */
	time_t next_attempt;
	time_t last_attempt;          /* 0 = never */
	const char *last_status;      /* "4.7.323" or "" */
	const char *last_result_type; /* RFC 8460 name or "" */
	const char *last_text;        /* or "" */
	const char *last_mta;         /* "mx.example.com[192.0.2.1]:25" or "" */
	bool delay_warned;
	bool bounce_requested; /* the operator ran `queue bounce` */
	enum queue_kind kind;  /* of its message */
	const char *sender;    /* of its message: queue_list_filter only,
	                        * NULL elsewhere */
};

/* A message's envelope and body (from queue_msg_get). */
struct queue_msg {
	char id[QUEUE_ID_LEN];
	enum queue_kind kind;
	const char *sender;
	const char *envid; /* or NULL */
	enum queue_ret ret;
	bool body_8bit;
	bool smtputf8;
	const char *client;
	const char *message_id; /* or NULL */
	time_t received_at;
	const uint8_t *data; /* NULL once dropped (queue_msg_find only) */
	size_t len;
	const char *helo;      /* or NULL */
	const char *auth_user; /* or NULL */
	size_t size;           /* octets as accepted; kept after the body
	                        * is dropped */
};

/*
 * Open (creating if needed) the queue in directory dir (created 0700 if
 * missing). Returns new (queue_close), or NULL with *errstr (new string).
 */
struct queue *queue_open(const char *dir, char **errstr);

/*
 * Like queue_open, but fail if the database does not exist yet instead of
 * creating it: for the commands, so that an operator running them first
 * (e.g. as root) does not create a queue the relay cannot write.
 */
struct queue *queue_open_existing(const char *dir, char **errstr);

/*
 * [queue] store = postgres (queue_pg.c, docs/FLEET.md): the queue in the
 * fleet's PostgreSQL database, shared by every node. Messages commit there
 * before the 250; queue_due() claims the recipients it returns for this
 * node for lease seconds (renewed while attempted), so any node delivers
 * any message and a dead node's claims lapse to the others. Every other
 * function of this header works on it as on SQLite. Connects now: returns
 * new, or NULL with *errstr (new string).
 */
struct queue *queue_open_pg(
    const char *conninfo, const char *node, time_t lease, char **errstr);

struct conf;
/*
 * The queue the config names: [queue] store = sqlite opens [queue]
 * directory (queue_open when create, else queue_open_existing), postgres
 * opens [fleet] postgres as [fleet] node (queue_open_pg). For the daemon,
 * the commands and the console alike. Returns new or NULL with *errstr.
 */
struct queue *queue_open_conf(const struct conf *c, bool create, char **errstr);

/* Whether q lives in PostgreSQL (store = postgres). */
bool queue_is_pg(const struct queue *q);

/*
 * Whether the store can take a message now. SQLite: always.
 * store = postgres: false while the connection is lost (found by the last
 * statement; a reconnect is tried here at most every PG_RETRY_S), so the
 * server refuses MAIL with 451 4.3.0 instead of taking a message it
 * cannot commit. Cheap: no round trip while the connection is up.
 */
bool queue_available(struct queue *q);

/*
 * store = postgres: extend the leases of the recipients queue_due()
 * claimed on this connection and whose outcome is not written yet, once
 * a third of [queue] lease has passed since the last renewal, so that
 * another node does not take an attempt that is still running. The
 * first call also releases claims of this node that this connection does
 * not hold (left by a previous run of the node that was killed): only
 * the daemon calls it, from its scheduler's tick. SQLite: no-op.
 * 0, or -1 (queue_error).
 */
int queue_lease_renew(struct queue *q, time_t now);

/*
 * Group commit: the changes made between queue_batch_begin() and
 * queue_batch_end() reach the disk in one transaction (one fsync) instead
 * of one each. For the outcomes of delivery attempts (their trace events,
 * the DSNs they cause): a crash before the end forgets the batch, and its
 * recipients are simply attempted again. Never around queue_add() of a
 * message from a client, whose 250 waits for its own commit. Batches nest
 * (only the outermost commits). Both return 0, or -1 (queue_error); a
 * failed end has rolled the batch back.
 */
int queue_batch_begin(struct queue *q);
int queue_batch_end(struct queue *q);

/* Close q (NULL allowed). Nothing is lost: every change is committed. */
void queue_close(struct queue *q);

/*
 * Store a message with its recipients durably. If id holds a well-formed
 * id (16 lowercase hex digits) on entry, that id is used when it is free
 * (the server names it in the Received header before committing);
 * otherwise, or on a collision, a new random one is drawn. On success returns
 * 0, fills id with the new queue id and logs "received" and "queued" events; on
 * failure returns -1 with *errstr (new string) and stores nothing.
 */
int queue_add(struct queue *q, const struct queue_msg_in *m,
    char id[QUEUE_ID_LEN], char **errstr);

/*
 * Call cb for up to max queued recipients whose next_attempt <= now, in
 * order of next_attempt (an index makes this O(log n + max)); held ones
 * never. The record is borrowed for the call. Returns how many were
 * passed, or -1.
 */
typedef void queue_rcpt_cb(const struct queue_rcpt *r, void *arg);
int queue_due(
    struct queue *q, time_t now, size_t max, queue_rcpt_cb *cb, void *arg);

/*
 * queue_due() continued after the row (after_next, after_id) in the same
 * order (keyset paging): lets the scheduler look past recipients it already
 * has in flight without changing their rows.
 */
int queue_due_after(struct queue *q, time_t now, time_t after_next,
    int64_t after_id, size_t max, queue_rcpt_cb *cb, void *arg);

/* The earliest next_attempt of a queued (not held) recipient, or 0. */
time_t queue_next_due(struct queue *q);

/* Returns new (queue_msg_free) or NULL if there is no such message. */
struct queue_msg *queue_msg_get(struct queue *q, const char *msgid);
void queue_msg_free(struct queue_msg *m);

/* Free the body of m, keeping the envelope (data NULL, len 0): for a
 * message that is sent and only needs deciding. */
void queue_msg_drop_body(struct queue_msg *m);

/* The outcome of one delivery attempt for one recipient. */
struct queue_attempt {
	const char *status;      /* "2.0.0", "4.7.323", "5.1.1" */
	const char *result_type; /* RFC 8460 name or NULL */
	const char *text;        /* human text / remote reply */
	const char *mta;         /* "host[ip]:port" or NULL */
};

/*
 * Mark delivered / bounced (final), or deferred until next_attempt; each
 * counts an attempt and records a (status, result type, text, mta) as the
 * recipient's last result. They write no trace event: the caller logs
 * "attempt" and "delivered" / "bounced" / "deferred" with queue_event(),
 * with the details it has. Deferring a recipient that is no longer queued
 * (deleted by the operator meanwhile) changes nothing and returns 0; one
 * held meanwhile stays held, with the attempt recorded.
 * Return 0, or -1 (queue_error; also for an unknown rcpt).
 */
int queue_rcpt_delivered(
    struct queue *q, int64_t rcpt, const struct queue_attempt *a);
int queue_rcpt_bounced(
    struct queue *q, int64_t rcpt, const struct queue_attempt *a);
int queue_rcpt_deferred(struct queue *q, int64_t rcpt, time_t next_attempt,
    const struct queue_attempt *a);
/* Remember that a delay warning was sent for rcpt. */
int queue_rcpt_set_warned(struct queue *q, int64_t rcpt);

/*
 * Append an event to the trace of message msgid (and recipient addr, or
 * NULL for the message). type is one word ("received", "queued",
 * "attempt", "deferred", "delivered", "bounced", "dsn-sent", "deleted",
 * "retry", "would-fail"); fields is a JSON object text with the details
 * (e.g. {"mx":..,"ip":..,"tls":..,"status":..}) or NULL.
 */
int queue_event(struct queue *q, const char *msgid, const char *addr,
    const char *type, const char *fields);

/*
 * queue_event() with the fields as a JSON object built by the caller
 * (borrowed; NULL or {} for none): no parsing of a string that was made
 * from an object just before. The hot path of deliver_decide.
 */
int queue_event_json(struct queue *q, const char *msgid, const char *addr,
    const char *type, json_t *fields);

/*
 * Drop the body of msgid if no recipient is queued or held any more. The
 * envelope, the recipient rows and the events stay for `queue show` and
 * `trace` until queue_purge(). Returns 0 (dropped or not) or -1.
 */
int queue_msg_gc(struct queue *q, const char *msgid);

/*
 * Remove every trace of finished messages (body dropped, nothing queued or
 * held) that had no event since before: message, recipients, events. Returns
 * the number of messages removed, or -1.
 */
int queue_purge(struct queue *q, time_t before);

/*
 * The message named by key: a queue id, or a recipient row id (decimal),
 * whose message is returned. Unlike queue_msg_get, a message whose body
 * was dropped is returned too, with data NULL. Returns new
 * (queue_msg_free), or NULL if nothing matches or on error (queue_error()
 * is then non-empty).
 */
struct queue_msg *queue_msg_find(struct queue *q, const char *key);

/* Call cb on every recipient of msgid, any status, in row id order.
 * Returns how many, or -1. */
int queue_msg_rcpts(
    struct queue *q, const char *msgid, queue_rcpt_cb *cb, void *arg);

/* Call cb on every queued or held recipient, oldest first. Returns how
 * many or -1. */
int queue_list(struct queue *q, queue_rcpt_cb *cb, void *arg);

/* The states of a recipient in the queue, for filters and counts. */
enum queue_state {
	QUEUE_STATE_ANY,      /* any of the three */
	QUEUE_STATE_ACTIVE,   /* queued, due now (or being attempted) */
	QUEUE_STATE_DEFERRED, /* queued, waiting for a later retry */
	QUEUE_STATE_HELD,     /* held by the operator */
};

/* "any", "active", "deferred", "held". */
const char *queue_state_str(enum queue_state s);
/* The state named s (one of those, "" = any). 0, or -1 if unknown. */
int queue_state_parse(const char *s, enum queue_state *out);

/*
 * Which recipients queue_list_filter() passes: all conditions hold. The
 * strings are borrowed; NULL or "" means no condition.
 */
struct queue_filter {
	const char *domain;    /* the recipient's domain, exactly (any case) */
	const char *sender;    /* a substring of the sender (any case) */
	const char *recipient; /* a substring of the recipient (any case) */
	const char *address;   /* a substring of either */
	enum queue_state state;
	time_t now;    /* what "due" means for active/deferred; 0 = now */
	int64_t after; /* keyset paging: only row ids above it (0: all) */
	size_t limit;  /* at most this many; 0 = no limit */
};

/*
 * Call cb on the queued and held recipients that match f (NULL: all), in
 * row id order, oldest first; r->sender is set. For a next page, pass the
 * last id seen as f->after. A domain filter walks its index. Returns how
 * many were passed, or -1.
 */
int queue_list_filter(struct queue *q, const struct queue_filter *f,
    queue_rcpt_cb *cb, void *arg);

/*
 * Operator actions (the `queue` command and the console) on the queued
 * recipients of a message (queue id) or on one recipient (row id,
 * decimal); each logs a "retry" / "deleted" / "bounce-requested" / "held"
 * / "released" event per recipient, and delete drops the body once
 * nothing is left queued. Return rows affected (0: nothing matched) or -1.
 *
 * Held recipients: retry leaves them held (a held message is not
 * delivered until released, as in Postfix); delete deletes them; bounce
 * releases them to be returned to the sender. hold takes the queued ones
 * out of every scan (an attempt already under way finishes); release
 * makes the held ones queued again and due now.
 */
int queue_retry(
    struct queue *q, const char *msgid_or_rcpt_id); /* next_attempt = now */
int queue_delete(struct queue *q, const char *msgid_or_rcpt_id);
int queue_hold(struct queue *q, const char *msgid_or_rcpt_id);
int queue_release(struct queue *q, const char *msgid_or_rcpt_id);
/*
 * Who the events of the actions above name as "by" on this connection
 * (copied, cut at 63 octets): "operator" (the default, also for NULL or
 * ""), or e.g. "console:alice" for the console's.
 */
void queue_set_actor(struct queue *q, const char *who);

/*
 * Make due now every queued, not held recipient (of domain, any case, or
 * of every domain when domain is NULL) that waits for a later retry, with
 * a "flushed" event each; in short transactions of up to 1000, so that
 * the daemon's writes never wait long. Returns the number made due, or -1
 * (those of the transactions before the failure stay due).
 */
int queue_flush(struct queue *q, const char *domain);
/*
 * Make due at now every queued recipient whose last attempt was at or
 * after since (the daemon, when DNS returns after an outage: what was
 * deferred meanwhile goes again at once). No trace event. Returns the
 * number made due, or -1.
 */
int queue_retry_since(struct queue *q, time_t since, time_t now);
/* Make queued recipients due now with a "bounce requested" mark. */
int queue_bounce(struct queue *q, const char *msgid_or_rcpt_id);
/*
 * How many recipients are queued, by state: active (due now: next_attempt
 * <= now, or being attempted), deferred (waiting for a later retry), held
 * (put aside by the operator). For the console and /metrics. One walk of
 * the (status, next_attempt) index. 0 or -1.
 */
struct queue_counts {
	uint64_t active;
	uint64_t deferred;
	uint64_t held;
};
int queue_count_states(struct queue *q, time_t now, struct queue_counts *c);

/*
 * Recipients attempted at or after since (the console's overview):
 * delivered, and blocked as the transit security report defines it (an
 * RFC 8460 result type, security "dane" or "sts": queue_report.c, which
 * implements this). Each recipient counted once. 0 or -1.
 */
struct queue_outcomes {
	uint64_t delivered;
	uint64_t blocked;
};
int queue_count_outcomes(
    struct queue *q, time_t since, struct queue_outcomes *c);

/* Whether the operator asked to bounce rcpt (consumed by the daemon). */
bool queue_rcpt_bounce_requested(struct queue *q, int64_t rcpt);

/*
 * Whether the queue's filesystem has less than need octets free for us
 * (statvfs f_bavail, one system call: cheap enough for every MAIL and
 * RCPT). A filesystem that cannot be measured is not low.
 */
bool queue_space_low(struct queue *q, uint64_t need);

/*
 * Give the space of messages that left back to the filesystem: pages
 * freed by dropped bodies are cut off the end of the file (SQLite
 * incremental vacuum) and a WAL grown by a large message is truncated
 * (checkpoint TRUNCATE, skipped while another process reads). Cheap when
 * there is nothing to do; for a periodic timer. 0, or -1 (queue_error).
 */
int queue_compact(struct queue *q);

/* Last SQLite error text of q (borrowed); "" when none. */
const char *queue_error(const struct queue *q);

/* Names for logs and the commands: "queued", "delivered", ...; "mail",
 * "dsn", "report"; "unset", "full", "hdrs". */
const char *queue_rcpt_status_str(enum queue_rcpt_status s);
const char *queue_kind_str(enum queue_kind k);
const char *queue_ret_str(enum queue_ret r);

/* t as ISO 8601 UTC ("2024-05-01T12:00:00Z") in buf; returns buf. */
#define QUEUE_TIME_LEN 21
const char *queue_time_iso(time_t t, char buf[QUEUE_TIME_LEN]);

/* A short age or delay, secs (negative: 0) as "45s", "12m", "3h" or "2d",
 * for `queue list` and the console; returns buf. */
#define QUEUE_AGO_LEN 32
const char *queue_time_ago(time_t secs, char buf[QUEUE_AGO_LEN]);

#endif
