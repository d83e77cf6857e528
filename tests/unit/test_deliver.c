/*
 * test_deliver: the decisions of deliver_decide.c, table-driven against a
 * real queue in a temporary directory: delivered, deferred (the retry
 * schedule, the last step repeating, one last attempt at the end of the
 * lifetime, due at once after a shutdown) or bounced (a permanent failure,
 * or a temporary one that outlived max_queue_lifetime: 4.7.32x becomes
 * 5.7.32x; TLS reports give up after 24 h, RFC 8460 §5.5); when a delay
 * warning is due; and which DSNs the sender is owed per RFC 3461 NOTIFY.
 * And the pending batch of deliver_hold.c: a settled message is written
 * with the next group commit, when the batch is full or a moment later,
 * and at the latest when delivery stops.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/outcome.h"
#include "core/xmalloc.h"
#include "deliver/deliver_int.h"
#include "metrics/metrics.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "t.h"

#define NELEM(a)  (sizeof(a) / sizeof((a)[0]))
#define DAY       86400
#define LIFETIME  (5 * DAY)
#define WARN_TIME 3600

static const time_t retry[] = { 60, 600, 3600 };

struct fx {
	char dir[64];
	struct event_base *base;
	struct conf *conf;
	struct policy *policy;
	struct deliver d;
};

static void
fx_noop(evutil_socket_t fd, short what, void *arg)
{
}

static bool
fx_init(struct fx *x)
{
	char *err = NULL;

	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/dr-test-deliver.XXXXXX");
	T_CHECK(mkdtemp(x->dir) != NULL);
	x->base = event_base_new();
	x->conf = conf_load(NULL, &err);
	T_CHECK(x->conf != NULL);
	free(err);
	err = NULL;
	if (x->conf == NULL)
		return false;
	x->policy = policy_new(x->conf);
	x->d.policy = x->policy;
	x->d.timer = evtimer_new(x->base, fx_noop, NULL);
	x->d.cfg.queue = queue_open(x->dir, &err);
	if (x->d.cfg.queue == NULL)
		printf("  queue_open: %s\n", err);
	T_CHECK(x->d.cfg.queue != NULL);
	free(err);
	x->d.cfg.hostname = "relay.test";
	x->d.cfg.retry = retry;
	x->d.cfg.nretry = NELEM(retry);
	x->d.cfg.max_lifetime = LIFETIME;
	x->d.cfg.delay_warning = WARN_TIME;
	return x->d.cfg.queue != NULL;
}

static int
fx_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
fx_done(struct fx *x)
{
	queue_close(x->d.cfg.queue);
	if (x->d.timer != NULL)
		event_free(x->d.timer);
	policy_free(x->policy);
	conf_free(x->conf);
	event_base_free(x->base);
	nftw(x->dir, fx_rm, 8, FTW_DEPTH | FTW_PHYS);
}

#define BODY "From: s@a.test\r\nSubject: t\r\n\r\nhello\r\n"

struct rows {
	struct queue_rcpt r[8];
	char last_status[8][16];
	char last_text[8][400];
	char msgid[8][QUEUE_ID_LEN];
	enum queue_kind kind[8];
	size_t n;
};

static void
rows_cb(const struct queue_rcpt *r, void *arg)
{
	struct rows *rs = arg;

	if (rs->n >= NELEM(rs->r))
		return;
	rs->r[rs->n] = *r;
	snprintf(rs->last_status[rs->n], sizeof(rs->last_status[0]), "%s",
	    r->last_status);
	snprintf(
	    rs->last_text[rs->n], sizeof(rs->last_text[0]), "%s", r->last_text);
	snprintf(rs->msgid[rs->n], QUEUE_ID_LEN, "%s", r->msgid);
	rs->kind[rs->n] = r->kind;
	rs->n++;
}

/* Queue one message from sender to addr; its id in msgid, row id out. */
static int64_t
fx_add(struct fx *x, enum queue_kind kind, const char *sender, const char *addr,
    unsigned notify, char msgid[QUEUE_ID_LEN])
{
	struct queue_rcpt_in rin = { addr, NULL, notify };
	struct queue_msg_in in;
	struct rows rs = { .n = 0 };
	char *err = NULL;

	memset(&in, 0, sizeof(in));
	in.kind = kind;
	in.sender = sender;
	in.client = "test";
	in.data = (const uint8_t *)BODY;
	in.len = strlen(BODY);
	in.rcpts = &rin;
	in.nrcpt = 1;
	msgid[0] = '\0';
	if (queue_add(x->d.cfg.queue, &in, msgid, &err) == -1) {
		printf("  queue_add: %s\n", err);
		free(err);
		T_FAIL("message queued");
		return -1;
	}
	queue_msg_rcpts(x->d.cfg.queue, msgid, rows_cb, &rs);
	T_CHECK(rs.n == 1);
	return rs.n == 1 ? rs.r[0].id : -1;
}

/* ---- deliver_decide: one recipient, one attempt --------------------- */

struct decide_case {
	const char *name;
	enum outcome_class cls;
	const char *status;
	enum result_type rt;
	time_t age;   /* seconds since the message was queued */
	int attempts; /* before this one */
	bool report;  /* a TLS report (QUEUE_KIND_REPORT) */
	bool stopping;
	bool warned; /* a delay DSN was sent already */
	/* expected */
	enum queue_rcpt_status want;
	const char *want_status;
	long want_next;      /* next_attempt - now, when deferred */
	bool want_warn;      /* a delay warning is now due */
	const char *want_in; /* in the recorded text, or NULL */
};

static const struct decide_case decide_cases[] = {
	{ "delivered", OUTCOME_OK, "2.0.0", RT_NONE, 10, 0, false, false, false,
	    QUEUE_RCPT_DELIVERED, "2.0.0", 0, false, NULL },
	{ "bounced", OUTCOME_PERM, "5.1.1", RT_NONE, 10, 0, false, false, false,
	    QUEUE_RCPT_BOUNCED, "5.1.1", 0, false, NULL },
	{ "first-retry", OUTCOME_TEMP, "4.4.1", RT_NONE, 10, 0, false, false,
	    false, QUEUE_RCPT_QUEUED, "4.4.1", 60, false, NULL },
	{ "second-retry", OUTCOME_TEMP, "4.4.1", RT_NONE, 100, 1, false, false,
	    false, QUEUE_RCPT_QUEUED, "4.4.1", 600, false, NULL },
	{ "third-retry", OUTCOME_TEMP, "4.7.323", RT_TLSA_INVALID, 1000, 2,
	    false, false, false, QUEUE_RCPT_QUEUED, "4.7.323", 3600, false,
	    NULL },
	/* The last wait of the schedule repeats. */
	{ "last-repeats", OUTCOME_TEMP, "4.4.1", RT_NONE, 20000, 9, false,
	    false, false, QUEUE_RCPT_QUEUED, "4.4.1", 3600, true, NULL },
	/* One last attempt when the lifetime ends, not an hour after it. */
	{ "clamped-to-lifetime", OUTCOME_TEMP, "4.4.1", RT_NONE, LIFETIME - 100,
	    9, false, false, true, QUEUE_RCPT_QUEUED, "4.4.1", 100, false,
	    NULL },
	/* Lifetime over: the temporary failure becomes permanent. */
	{ "lifetime-tlsa", OUTCOME_TEMP, "4.7.323", RT_TLSA_INVALID, LIFETIME,
	    9, false, false, true, QUEUE_RCPT_BOUNCED, "5.7.323", 0, false,
	    "gave up after 5 days in the queue" },
	{ "lifetime-starttls", OUTCOME_TEMP, "4.7.321",
	    RT_STARTTLS_NOT_SUPPORTED, LIFETIME + 50, 9, false, false, true,
	    QUEUE_RCPT_BOUNCED, "5.7.321", 0, false, NULL },
	{ "lifetime-perm-unchanged", OUTCOME_PERM, "5.7.1", RT_NONE,
	    LIFETIME + 50, 9, false, false, true, QUEUE_RCPT_BOUNCED, "5.7.1",
	    0, false, NULL },
	/* A TLS report lives 24 hours (RFC 8460 §5.5), mail five days. */
	{ "report-24h", OUTCOME_TEMP, "4.7.325", RT_NONE, DAY, 3, true, false,
	    false, QUEUE_RCPT_BOUNCED, "5.7.325", 0, false, NULL },
	{ "mail-24h", OUTCOME_TEMP, "4.7.325", RT_NONE, DAY, 3, false, false,
	    true, QUEUE_RCPT_QUEUED, "4.7.325", 3600, false, NULL },
	/* Cut short by a shutdown: due again as soon as we are back. */
	{ "stopping", OUTCOME_TEMP, "4.3.2", RT_NONE, 10, 0, false, true, false,
	    QUEUE_RCPT_QUEUED, "4.3.2", 0, false, NULL },
	/* A delay warning only once, and not before delay_warning. */
	{ "warn-just-before", OUTCOME_TEMP, "4.4.1", RT_NONE, WARN_TIME - 5, 1,
	    false, false, false, QUEUE_RCPT_QUEUED, "4.4.1", 600, false, NULL },
	{ "warn-already", OUTCOME_TEMP, "4.4.1", RT_NONE, WARN_TIME + 5, 1,
	    false, false, true, QUEUE_RCPT_QUEUED, "4.4.1", 600, false, NULL },
};

static struct drcpt *
drcpt_make(const char *msgid, int64_t id, const char *addr)
{
	struct drcpt *r = calloc(1, sizeof(*r));

	r->id = id;
	snprintf(r->msgid, sizeof(r->msgid), "%s", msgid);
	r->addr = strdup(addr);
	r->o = calloc(1, sizeof(*r->o));
	return r;
}

static void
drcpt_drop(struct drcpt *r)
{
	free(r->addr);
	free(r->o);
	free(r);
}

static void
decide_one(struct fx *x, const struct decide_case *c)
{
	char msgid[QUEUE_ID_LEN];
	struct dmsg m;
	struct rows rs = { .n = 0 };
	struct drcpt *r;
	int64_t id;
	time_t now;
	long next;
	bool ok;

	id = fx_add(x, c->report ? QUEUE_KIND_REPORT : QUEUE_KIND_MAIL,
	    "s@a.test", "rcpt@b.test", 0, msgid);
	if (id < 0)
		return;
	r = drcpt_make(msgid, id, "rcpt@b.test");
	now = time(NULL);
	r->queued_at = now - c->age;
	r->attempts = c->attempts;
	r->report = c->report;
	r->delay_warned = c->warned;
	outcome_set(r->o, c->cls, c->status, c->rt, "%s", "the reason");
	x->d.stopping = c->stopping;
	memset(&m, 0, sizeof(m));
	snprintf(m.msgid, sizeof(m.msgid), "%s", msgid);
	deliver_decide(&x->d, &m, r, NULL);
	x->d.stopping = false;
	queue_msg_rcpts(x->d.cfg.queue, msgid, rows_cb, &rs);
	ok = rs.n == 1 && rs.r[0].status == c->want &&
	    strcmp(rs.last_status[0], c->want_status) == 0 &&
	    r->decided == c->want && r->warn_now == c->want_warn &&
	    (c->want_in == NULL || strstr(rs.last_text[0], c->want_in) != NULL);
	next = rs.n == 1 ? (long)(rs.r[0].next_attempt - now) : -1;
	/* time() may tick during the call */
	if (ok && c->want == QUEUE_RCPT_QUEUED)
		ok = next >= c->want_next && next <= c->want_next + 2;
	if (!ok) {
		printf("  %s: status %s last %s next %+ld warn %d text \"%s\"; "
		       "want %s %s %+ld warn %d\n",
		    c->name,
		    rs.n == 1 ? queue_rcpt_status_str(rs.r[0].status) : "?",
		    rs.n == 1 ? rs.last_status[0] : "?", next, r->warn_now,
		    rs.n == 1 ? rs.last_text[0] : "?",
		    queue_rcpt_status_str(c->want), c->want_status,
		    c->want_next, c->want_warn);
		T_FAIL("decision as in the table");
	}
	drcpt_drop(r);
}

static void
test_decide_table(void)
{
	struct fx x;
	size_t i;

	if (!fx_init(&x)) {
		fx_done(&x);
		return;
	}
	for (i = 0; i < NELEM(decide_cases); i++)
		decide_one(&x, &decide_cases[i]);
	fx_done(&x);
}

/* Without a retry schedule, five minutes; a report's lifetime is the
 * shorter of 24 h and max_queue_lifetime. */
static void
test_decide_defaults(void)
{
	static const struct decide_case no_schedule = { "no-schedule",
		OUTCOME_TEMP, "4.4.1", RT_NONE, 10, 0, false, false, false,
		QUEUE_RCPT_QUEUED, "4.4.1", 300, false, NULL };
	static const struct decide_case short_life = { "report-short-life",
		OUTCOME_TEMP, "4.4.1", RT_NONE, 7200, 1, true, false, false,
		QUEUE_RCPT_BOUNCED, "5.4.1", 0, false, NULL };
	struct fx x;

	if (!fx_init(&x)) {
		fx_done(&x);
		return;
	}
	x.d.cfg.nretry = 0;
	decide_one(&x, &no_schedule);
	x.d.cfg.nretry = NELEM(retry);
	x.d.cfg.max_lifetime = 3600;
	decide_one(&x, &short_life);
	fx_done(&x);
}

/* ---- deliver_decide_message: the DSNs owed (RFC 3461) --------------- */

struct dsn_case {
	const char *name;
	enum queue_kind kind;
	const char *sender;
	unsigned notify;
	enum outcome_class cls;
	const char *status;
	time_t age; /* past delay_warning: a delay warning is due */
	const char *want_action; /* "failed", "delayed", "relayed" or NULL */
};

#define N_NEVER   QUEUE_NOTIFY_NEVER
#define N_SUCCESS QUEUE_NOTIFY_SUCCESS
#define N_FAILURE QUEUE_NOTIFY_FAILURE
#define N_DELAY   QUEUE_NOTIFY_DELAY

static const struct dsn_case dsn_cases[] = {
	/* §4.1: NOTIFY absent means FAILURE (and DELAY at our option) */
	{ "failed-default", QUEUE_KIND_MAIL, "s@a.test", 0, OUTCOME_PERM,
	    "5.1.1", 10, "failed" },
	{ "failed-asked", QUEUE_KIND_MAIL, "s@a.test", N_FAILURE, OUTCOME_PERM,
	    "5.1.1", 10, "failed" },
	{ "failed-never", QUEUE_KIND_MAIL, "s@a.test", N_NEVER, OUTCOME_PERM,
	    "5.1.1", 10, NULL },
	{ "failed-success-only", QUEUE_KIND_MAIL, "s@a.test", N_SUCCESS,
	    OUTCOME_PERM, "5.1.1", 10, NULL },
	{ "relayed-default", QUEUE_KIND_MAIL, "s@a.test", 0, OUTCOME_OK,
	    "2.0.0", 10, NULL },
	{ "relayed-asked", QUEUE_KIND_MAIL, "s@a.test", N_SUCCESS | N_FAILURE,
	    OUTCOME_OK, "2.0.0", 10, "relayed" },
	{ "delayed-default", QUEUE_KIND_MAIL, "s@a.test", 0, OUTCOME_TEMP,
	    "4.4.1", WARN_TIME + 10, "delayed" },
	{ "delayed-asked", QUEUE_KIND_MAIL, "s@a.test", N_DELAY, OUTCOME_TEMP,
	    "4.4.1", WARN_TIME + 10, "delayed" },
	{ "delayed-failure-only", QUEUE_KIND_MAIL, "s@a.test", N_FAILURE,
	    OUTCOME_TEMP, "4.4.1", WARN_TIME + 10, NULL },
	{ "delayed-too-early", QUEUE_KIND_MAIL, "s@a.test", 0, OUTCOME_TEMP,
	    "4.4.1", 10, NULL },
	/* §6.2: never to a null sender; no reports about reports */
	{ "null-sender", QUEUE_KIND_MAIL, "", 0, OUTCOME_PERM, "5.1.1", 10,
	    NULL },
	{ "about-a-dsn", QUEUE_KIND_DSN, "s@a.test", 0, OUTCOME_PERM, "5.1.1",
	    10, NULL },
	{ "about-a-tls-report", QUEUE_KIND_REPORT, "s@a.test", 0, OUTCOME_PERM,
	    "5.1.1", 10, NULL },
};

/* The DSNs now queued: how many, and the text of the last one. */
static size_t
dsn_count(struct fx *x, char *action, size_t len)
{
	struct rows rs = { .n = 0 };
	struct queue_msg *m;
	const char *p;
	size_t i, n = 0;

	action[0] = '\0';
	queue_list(x->d.cfg.queue, rows_cb, &rs);
	for (i = 0; i < rs.n; i++) {
		if (rs.kind[i] != QUEUE_KIND_DSN)
			continue;
		n++;
		m = queue_msg_get(x->d.cfg.queue, rs.msgid[i]);
		p = m != NULL ? memmem(m->data, m->len, "\r\nAction: ", 10) :
		                NULL;
		if (p != NULL)
			snprintf(action, len, "%.*s",
			    (int)strcspn(p + 10, "\r\n"), p + 10);
		queue_msg_free(m);
	}
	return n;
}

static void
dsn_one(const struct dsn_case *c)
{
	char msgid[QUEUE_ID_LEN], action[32];
	struct drcpt *r, *rcpts[1];
	struct dmsg m;
	struct fx x;
	int64_t id;
	size_t n;

	if (!fx_init(&x)) {
		fx_done(&x);
		return;
	}
	id = fx_add(&x, c->kind, c->sender, "rcpt@b.test", c->notify, msgid);
	if (id < 0) {
		fx_done(&x);
		return;
	}
	r = drcpt_make(msgid, id, "rcpt@b.test");
	r->queued_at = time(NULL) - c->age;
	r->notify = c->notify;
	outcome_set(r->o, c->cls, c->status, RT_NONE, "%s", "the reason");
	rcpts[0] = r;
	memset(&m, 0, sizeof(m));
	snprintf(m.msgid, sizeof(m.msgid), "%s", msgid);
	m.rcpts = rcpts;
	m.n = 1;
	deliver_decide(&x.d, &m, r, NULL);
	deliver_decide_message(&x.d, &m, NULL);
	n = dsn_count(&x, action, sizeof(action));
	if (c->want_action == NULL ?
	        n != 0 :
	        n != 1 || strcmp(action, c->want_action) != 0) {
		printf("  %s: %zu DSN(s), action \"%s\"; want %s\n", c->name, n,
		    action, c->want_action != NULL ? c->want_action : "none");
		T_FAIL("DSN as in the table");
	}
	queue_msg_free(m.msg);
	drcpt_drop(r);
	fx_done(&x);
}

static void
test_dsn_table(void)
{
	size_t i;

	for (i = 0; i < NELEM(dsn_cases); i++)
		dsn_one(&dsn_cases[i]);
}

/* ---- deliver_outcome: the pending batch of settled messages --------- */

#define BATCH_MAX 64 /* HOLD_BATCH_MAX */

/*
 * Queue one message and hand its outcome (deferred) to the batch, with
 * facts that live on this stack frame only (each entry keeps a copy).
 */
static bool
settle_with(struct fx *x, char msgid[QUEUE_ID_LEN], const char *status,
    enum result_type rt, const char *policy)
{
	struct dfacts f;
	struct dmsg m;
	struct drcpt *r;
	int64_t id;

	id = fx_add(x, QUEUE_KIND_MAIL, "s@a.test", "rcpt@b.test", 0, msgid);
	if (id < 0)
		return false;
	r = drcpt_make(msgid, id, "rcpt@b.test");
	r->queued_at = time(NULL);
	r->done = true;
	outcome_set(r->o, OUTCOME_TEMP, status, rt, "%s", "try later");
	memset(&f, 0, sizeof(f));
	snprintf(f.mx, sizeof(f.mx), "mx.b.test");
	snprintf(f.ip, sizeof(f.ip), "127.0.0.1");
	f.tls = "none";
	f.policy = policy;
	memset(&m, 0, sizeof(m));
	snprintf(m.msgid, sizeof(m.msgid), "%s", msgid);
	m.rcpts = malloc(sizeof(*m.rcpts));
	m.rcpts[0] = r;
	m.n = 1;
	deliver_outcome(&x->d, &m, &f);
	T_CHECK(m.n == 0 && m.rcpts == NULL); /* taken over */
	return true;
}

static bool
batch_settle(struct fx *x, char msgid[QUEUE_ID_LEN])
{
	return settle_with(x, msgid, "4.4.1", RT_NONE, "none");
}

/* How many of the n messages have their outcome in the queue. */
static size_t
batch_written(struct fx *x, char (*msgids)[QUEUE_ID_LEN], size_t n)
{
	size_t i, w = 0;

	for (i = 0; i < n; i++) {
		struct rows rs = { .n = 0 };

		queue_msg_rcpts(x->d.cfg.queue, msgids[i], rows_cb, &rs);
		if (rs.n == 1 && strcmp(rs.last_status[0], "4.4.1") == 0)
			w++;
	}
	return w;
}

static void
test_batch(void)
{
	static char ids[BATCH_MAX + 4][QUEUE_ID_LEN];
	struct fx x;
	size_t i;

	if (!fx_init(&x)) {
		fx_done(&x);
		return;
	}
	x.d.cfg.base = x.base;
	/* A few: not written at once, but a moment later (the timer). */
	for (i = 0; i < 3; i++)
		T_CHECK(batch_settle(&x, ids[i]));
	T_CHECK(batch_written(&x, ids, 3) == 0);
	event_base_loop(x.base, EVLOOP_ONCE);
	T_CHECK(batch_written(&x, ids, 3) == 3);
	T_CHECK(x.d.nbatch == 0);
	/* A full batch is written at once, without the loop. */
	for (i = 0; i < BATCH_MAX; i++)
		T_CHECK(batch_settle(&x, ids[i]));
	T_CHECK(batch_written(&x, ids, BATCH_MAX - 1) == BATCH_MAX - 1);
	T_CHECK(x.d.nbatch == 0);
	/* Delivery stops: what is pending is written. */
	for (i = 0; i < 2; i++)
		T_CHECK(batch_settle(&x, ids[i]));
	T_CHECK(batch_written(&x, ids, 2) == 0);
	deliver_hold_free(&x.d);
	T_CHECK(batch_written(&x, ids, 2) == 2);
	T_CHECK(x.d.nbatch == 0 && x.d.batch == NULL);
	fx_done(&x);
}

/* Run sql on the fixture's queue through a connection of its own. */
static int
fx_sql(struct fx *x, const char *sql)
{
	char *path = xasprintf("%s/queue.db", x->dir);
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db) == SQLITE_OK &&
	        sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ?
	    0 :
	    -1;

	sqlite3_close(db);
	free(path);
	return rc;
}

static bool
blocked_count_is(const char *want)
{
	struct buf b;
	bool ok;

	buf_init(&b, 1 << 16);
	ok = metrics_render(&b, NULL) == 0 && strstr(buf_cstr(&b), want);
	buf_free(&b);
	return ok;
}

/*
 * A recipient's outcome is counted in the metrics once, though its write
 * failed and deliver_hold.c decides it again when the queue is writable
 * (meanwhile a trigger that writes to a table that does not exist makes
 * the queue fail the outcome's update: an error, not a constraint).
 */
static void
test_metrics_once(void)
{
	static const char *once = "\ndanerelay_blocked_total{security=\"dane\","
	                          "status=\"4.7.323\"} 1\n";
	char id[QUEUE_ID_LEN];
	struct fx x;
	time_t end;

	if (!fx_init(&x)) {
		fx_done(&x);
		return;
	}
	x.d.cfg.base = x.base;
	TAILQ_INIT(&x.d.held); /* as deliver_new() does */
	metrics_reset();
	T_CHECK(fx_sql(&x,
	            "CREATE TRIGGER refuse BEFORE UPDATE ON recipients "
	            "BEGIN INSERT INTO gone VALUES (1); END") == 0);
	T_CHECK(settle_with(&x, id, "4.7.323", RT_TLSA_INVALID, "dane"));
	event_base_loop(x.base, EVLOOP_ONCE); /* the batch: write refused */
	T_CHECK(x.d.paused && x.d.nheld == 1);
	T_CHECK(blocked_count_is(once));
	T_CHECK(fx_sql(&x, "DROP TRIGGER refuse") == 0);
	for (end = time(NULL) + 10; x.d.paused && time(NULL) < end;)
		event_base_loop(x.base, EVLOOP_ONCE); /* the probe writes */
	T_CHECK(!x.d.paused && x.d.nheld == 0);
	T_CHECK(blocked_count_is(once)); /* decided twice, counted once */
	deliver_hold_free(&x.d);
	fx_done(&x);
}

/* What deliver_decide() counts: a recipient's attempt and its series. */
struct count_case {
	const char *name;
	const char *domain; /* b.test: [policy] dane; enc.test: encrypt */
	enum outcome_class cls;
	const char *status;
	enum result_type rt;
	const char *tls, *policy; /* the attempt's facts */
	const char *would;        /* log-only would-fail status, or NULL */
	const char *want;         /* a line of the exposition, or NULL */
	const char *not_want;     /* a series that must not appear */
};

static const struct count_case count_cases[] = {
	{ "dane delivered", "b.test", OUTCOME_OK, "2.0.0", RT_NONE, "verified",
	    "dane", NULL, "danerelay_deliveries_total{security=\"dane\"} 1",
	    "danerelay_blocked_total{" },
	{ "sts delivered", "b.test", OUTCOME_OK, "2.0.0", RT_NONE, "verified",
	    "mta-sts", NULL, "danerelay_deliveries_total{security=\"sts\"} 1",
	    NULL },
	{ "tlsa mismatch blocked", "b.test", OUTCOME_TEMP, "4.7.323",
	    RT_TLSA_INVALID, "encrypted", "dane", NULL,
	    "danerelay_blocked_total{security=\"dane\",status=\"4.7.323\"} 1",
	    NULL },
	{ "sts failure blocked", "b.test", OUTCOME_TEMP, "4.7.5",
	    RT_CERTIFICATE_HOST_MISMATCH, "encrypted", "mta-sts", NULL,
	    "danerelay_blocked_total{security=\"sts\",status=\"4.7.5\"} 1",
	    NULL },
	/* RFC 7672 section 2.1.2: a bogus TLSA RRset skips the host before
	 * any connection; its facts have no policy, the failure is DANE's. */
	{ "bogus TLSA blocked", "b.test", OUTCOME_TEMP, "4.7.324",
	    RT_DNSSEC_INVALID, NULL, "none", NULL,
	    "danerelay_blocked_total{security=\"dane\",status=\"4.7.324\"} 1",
	    NULL },
	{ "refused: not a security failure", "b.test", OUTCOME_TEMP, "4.4.1",
	    RT_NONE, "none", "dane", NULL, NULL, "danerelay_blocked_total{" },
	{ "encrypt policy: not DANE or MTA-STS", "enc.test", OUTCOME_TEMP,
	    "4.7.321", RT_STARTTLS_NOT_SUPPORTED, "none", "none", NULL, NULL,
	    "danerelay_blocked_total{" },
	{ "log-only would-fail", "b.test", OUTCOME_OK, "2.0.0", RT_NONE,
	    "encrypted", "dane", "4.7.323",
	    "danerelay_would_block_total{security=\"dane\",status=\"4.7.323\"} "
	    "1",
	    "danerelay_blocked_total{" },
};

static void
count_one(struct fx *x, const struct count_case *c)
{
	char msgid[QUEUE_ID_LEN], *addr = xasprintf("rcpt@%s", c->domain);
	struct dfacts f;
	struct dmsg m;
	struct drcpt *r;
	struct buf b;
	int64_t id;

	metrics_reset();
	id = fx_add(x, QUEUE_KIND_MAIL, "s@a.test", addr, 0, msgid);
	r = drcpt_make(msgid, id, addr);
	r->queued_at = time(NULL);
	outcome_set(r->o, c->cls, c->status, c->rt, "%s", "the reason");
	memset(&f, 0, sizeof(f));
	snprintf(f.mx, sizeof(f.mx), "mx.%s", c->domain);
	f.tls = c->tls;
	f.policy = c->policy;
	if (c->would != NULL) {
		outcome_set(&f.would, OUTCOME_TEMP, c->would, RT_TLSA_INVALID,
		    "%s", "would");
		f.would_fail = true;
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.msgid, sizeof(m.msgid), "%s", msgid);
	deliver_decide(&x->d, &m, r, &f);
	buf_init(&b, 1 << 16);
	metrics_render(&b, NULL);
	if ((c->want != NULL && strstr(buf_cstr(&b), c->want) == NULL) ||
	    (c->not_want != NULL && strstr(buf_cstr(&b), c->not_want))) {
		printf("  %s: want %s, not %s\n", c->name,
		    c->want != NULL ? c->want : "-",
		    c->not_want != NULL ? c->not_want : "-");
		T_FAIL("counted as in the table");
	}
	buf_free(&b);
	drcpt_drop(r);
	free(addr);
}

static void
test_metrics_counts(void)
{
	static const char text[] = "[domain enc.test]\nsecurity = encrypt\n";
	struct policy *enc;
	struct conf *c;
	struct fx x;
	char *err = NULL;
	size_t i;

	c = conf_parse(text, sizeof(text) - 1, "test", &err);
	T_CHECK(c != NULL);
	free(err);
	if (!fx_init(&x) || c == NULL) {
		conf_free(c);
		fx_done(&x);
		return;
	}
	enc = policy_new(c);
	x.d.policy = enc;
	for (i = 0; i < NELEM(count_cases); i++)
		count_one(&x, &count_cases[i]);
	x.d.policy = x.policy;
	policy_free(enc);
	conf_free(c);
	fx_done(&x);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_LEVEL_WARN);
	T_RUN(test_decide_table);
	T_RUN(test_decide_defaults);
	T_RUN(test_dsn_table);
	T_RUN(test_batch);
	T_RUN(test_metrics_once);
	T_RUN(test_metrics_counts);
	T_EXIT();
}
