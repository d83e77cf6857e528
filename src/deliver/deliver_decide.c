/*
 * deliver_decide: the one place that turns the outcome of an attempt into
 * what happens to a recipient: delivered, deferred until the next retry
 * (backoff from [delivery] retry_schedule), or bounced (a permanent
 * failure, or a temporary one that outlived max_queue_lifetime: 4.7.32x
 * becomes 5.7.32x). It writes the queue state, the trace event and the one
 * canonical log line, and sends the DSNs the sender is owed (RFC 3461):
 * failures, delay warnings, and successes when NOTIFY=SUCCESS was asked.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "deliver/deliver_int.h"
#include "dsn/dsn.h"
#include "metrics/metrics.h"
#include "smtp/smtp_cmd.h"

#define DECIDE_REPORT_LIFETIME 86400 /* RFC 8460 §5.5 */

/* How long r may stay queued. */
static time_t
decide_lifetime(const struct deliver *d, const struct drcpt *r)
{
	return r->report && d->cfg.max_lifetime > DECIDE_REPORT_LIFETIME ?
	    DECIDE_REPORT_LIFETIME :
	    d->cfg.max_lifetime;
}

static time_t
decide_next(const struct deliver *d, const struct drcpt *r, time_t now)
{
	size_t i = (size_t)r->attempts;
	time_t next, end = r->queued_at + decide_lifetime(d, r);

	if (d->cfg.nretry == 0)
		return now + 300;
	if (i >= d->cfg.nretry)
		i = d->cfg.nretry - 1;
	next = now + d->cfg.retry[i];
	/* One last attempt when the lifetime ends, not long after it. */
	return next > end && end > now ? end : next;
}

static void
decide_mta(char *buf, size_t len, const struct dfacts *f)
{
	if (f == NULL || f->mx[0] == '\0')
		snprintf(buf, len, "none");
	else if (f->ip[0] == '\0')
		snprintf(buf, len, "%s", f->mx);
	else
		snprintf(buf, len, "%s[%s]:%u", f->mx, f->ip, f->port);
}

/*
 * The security a recipient's attempt had, in the words of the transit
 * security report and of danerelay_deliveries_total{security}
 * (docs/CONSOLE.md): delivered: "dane" (TLSA authenticated the server, MX RRset
 * secure), "dane_trusted" (TLSA authenticated it but the MX RRset was insecure:
 * RFC 7672 section 2.2.1 gives no protection against a forged MX), "sts"
 * (RFC 8461 policy enforced, PKIX verified), "tls" (encrypted, not
 * authenticated) or "plaintext". Not delivered: the requirement that was
 * in force ("dane", "sts", "tls") or "plaintext"; NULL without a
 * connection and without a TLS-RPT result type (nothing about security).
 */
const char *
deliver_security(const struct dfacts *f, const struct outcome *o)
{
	const char *tls = f != NULL && f->tls != NULL ? f->tls : "none";
	const char *pol = f != NULL && f->policy != NULL ? f->policy : "none";

	if (o->cls == OUTCOME_OK) {
		if (strcmp(tls, "trusted") == 0)
			return "dane_trusted";
		if (strcmp(tls, "verified") == 0)
			return strcmp(pol, "mta-sts") == 0 ? "sts" : "dane";
		return strcmp(tls, "none") == 0 ? "plaintext" : "tls";
	}
	if (strcmp(pol, "mta-sts") == 0)
		return "sts";
	if (strcmp(pol, "dane") == 0)
		return "dane";
	switch (o->rt) {
	case RT_STS_POLICY_FETCH_ERROR:
	case RT_STS_POLICY_INVALID:
	case RT_STS_WEBPKI_INVALID:
		return "sts";
	/* DANE's own failures, also where the host was skipped before any
	 * policy applied (a bogus TLSA RRset, RFC 7672 section 2.1.2). */
	case RT_TLSA_INVALID:
	case RT_DNSSEC_INVALID:
	case RT_DANE_REQUIRED:
		return "dane";
	case RT_NONE:
		break;
	default:
		/* A TLS failure with no DANE or MTA-STS policy: encrypt. */
		return f != NULL ? "tls" : "dane";
	}
	if (f == NULL)
		return NULL;
	return strcmp(tls, "none") == 0 ? "plaintext" : "tls";
}

/*
 * The recipient's attempt in the metrics (metrics.h), once per attempt
 * (the caller's r->logged): delivered, with its security and latency;
 * blocked when a DANE (RFC 7672) or MTA-STS (RFC 8461) requirement
 * failed: a TLS or policy failure (it has an RFC 8460 §4.3 result type)
 * under a policy that applies DANE and MTA-STS (not "may" or "encrypt",
 * where such a failure is not one of their requirements); and, in
 * log-only mode, what enforcement would have blocked.
 */
static void
decide_metrics(const struct drcpt *r, const struct dfacts *f,
    const struct policy_dest *pol, time_t now)
{
	const char *sec = deliver_security(f, r->o);

	if (r->o->cls == OUTCOME_OK)
		metrics_delivered(sec, (double)(now - r->queued_at));
	else if (r->o->rt != RT_NONE && sec != NULL &&
	    (pol->security == POLICY_DANE ||
	        pol->security == POLICY_DANE_ONLY) &&
	    (strcmp(sec, "dane") == 0 || strcmp(sec, "sts") == 0))
		metrics_blocked(sec, r->o->status);
	if (f != NULL && f->would_fail && !f->would_report_only)
		metrics_would_block(
		    deliver_security(f, &f->would), f->would.status);
}

static json_t *
decide_fields(const struct drcpt *r, const struct dfacts *f, const char *mta,
    const char *exception)
{
	json_t *o;

	o = json_pack("{s:s, s:s, s:s?, s:s}", "status", r->o->status, "text",
	    r->remote != NULL ? r->remote : r->o->text, "result_type",
	    result_type_str(r->o->rt), "relay", mta);
	if (o == NULL) /* text that is not UTF-8: keep the rest */
		o = json_pack("{s:s, s:s?, s:s}", "status", r->o->status,
		    "result_type", result_type_str(r->o->rt), "text",
		    "(reply not shown: not UTF-8)");
	if (deliver_security(f, r->o) != NULL)
		json_object_set_new(
		    o, "security", json_string(deliver_security(f, r->o)));
	if (f != NULL) {
		json_object_set_new(o, "mx", json_string(f->mx));
		if (f->ip[0] != '\0') {
			json_object_set_new(o, "ip", json_string(f->ip));
			json_object_set_new(o, "port", json_integer(f->port));
		}
		json_object_set_new(
		    o, "tls", json_string(f->tls != NULL ? f->tls : "none"));
		if (f->tls_version[0] != '\0') {
			json_object_set_new(
			    o, "tls_version", json_string(f->tls_version));
			json_object_set_new(
			    o, "cipher", json_string(f->cipher));
		}
		if (f->policy != NULL)
			json_object_set_new(
			    o, "policy", json_string(f->policy));
		if (f->tlsa[0] != '\0')
			json_object_set_new(o, "tlsa", json_string(f->tlsa));
		if (f->tlsa_base[0] != '\0')
			json_object_set_new(
			    o, "tlsa_base", json_string(f->tlsa_base));
		if (f->would_fail) {
			json_object_set_new(o, "would_fail",
			    json_sprintf("%s (%s)",
			        result_type_str(f->would.rt) != NULL ?
			            result_type_str(f->would.rt) :
			            f->would.text,
			        f->would.status));
			json_object_set_new(
			    o, "would_fail_text", json_string(f->would.text));
			if (f->would_report_only)
				json_object_set_new(
				    o, "sts_mode", json_string("testing"));
		}
	}
	if (exception != NULL)
		json_object_set_new(o, "exception", json_string(exception));
	return o;
}

static json_t *
decide_result_fields(const struct drcpt *r, time_t now, const struct deliver *d)
{
	char when[QUEUE_TIME_LEN];
	json_t *o;

	o = json_pack("{s:s, s:s?}", "status", r->o->status, "result_type",
	    result_type_str(r->o->rt));

	if (r->o->cls == OUTCOME_TEMP)
		json_object_set_new(o, "next_attempt",
		    json_string(queue_time_iso(decide_next(d, r, now), when)));
	return o;
}

/*
 * The one canonical line per recipient and attempt, key=value:
 *   ID: to=<rcpt> relay=host[ip]:port tls=verified tlsa=3-1-1 delay=0s
 *   attempts=1 dsn=2.0.0 status=sent result=- text="250 ok"
 * plus would_fail=TYPE(STATUS) in log-only mode; the same values are
 * its fields in [log] format = json (decide_log_fields).
 */
struct decide_line {
	const char *tls, *rt, *text, *security;
	char tlsa[32], would[64];
	long delay;
};

static void
decide_log_fields(const struct drcpt *r, const struct decide_line *l,
    const char *mta, const char *word)
{
	struct log_field fl[13] = {
		LOG_STR("queue_id", r->msgid),
		LOG_STR("to", r->addr),
		LOG_STR("relay", mta),
		LOG_STR("tls", l->tls),
		LOG_STR("security", l->security != NULL ? l->security : "-"),
		LOG_NUM("delay", l->delay),
		LOG_NUM("attempts", r->attempts + 1),
		LOG_STR("dsn", r->o->status),
		LOG_STR("status", word),
		LOG_STR("result", l->rt != NULL ? l->rt : "-"),
		LOG_STR("text", l->text),
	};
	size_t n = 11;

	/* The optional ones only with a value (after " tlsa=", ...). */
	if (l->tlsa[0] != '\0')
		fl[n++] = (struct log_field)LOG_STR("tlsa", l->tlsa + 6);
	if (l->would[0] != '\0')
		fl[n++] =
		    (struct log_field)LOG_STR("would_fail", l->would + 12);
	log_fields(LOG_LEVEL_INFO, fl, n,
	    "%s: to=<%s> relay=%s tls=%s%s delay=%lds attempts=%d "
	    "dsn=%s status=%s result=%s%s text=\"%s\"",
	    r->msgid, r->addr, mta, l->tls, l->tlsa, l->delay, r->attempts + 1,
	    r->o->status, word, l->rt != NULL ? l->rt : "-", l->would, l->text);
}

static void
decide_log(const struct drcpt *r, const struct dfacts *f, const char *mta,
    const char *word, time_t now)
{
	struct decide_line l = { 0 };

	l.tls = f != NULL && f->tls != NULL ? f->tls : "none";
	l.rt = result_type_str(r->o->rt);
	l.text = r->remote != NULL ? r->remote : r->o->text;
	l.security = deliver_security(f, r->o);
	l.delay = (long)(now - r->queued_at);
	if (f != NULL && f->tlsa[0] != '\0')
		snprintf(l.tlsa, sizeof(l.tlsa), " tlsa=%s", f->tlsa);
	if (f != NULL && f->would_fail)
		snprintf(l.would, sizeof(l.would), " would_fail=%s(%s)",
		    result_type_str(f->would.rt) != NULL ?
		        result_type_str(f->would.rt) :
		        "error",
		    f->would.status);
	decide_log_fields(r, &l, mta, word);
}

void
deliver_decide(
    struct deliver *d, struct dmsg *m, struct drcpt *r, const struct dfacts *f)
{
	struct policy_dest pol;
	struct queue_attempt a;
	const char *word, *domain;
	time_t now = time(NULL);
	char mta[400];
	json_t *fields;

	domain = strrchr(r->addr, '@') != NULL ? strrchr(r->addr, '@') + 1 : "";
	policy_for(d->policy, domain, &pol);
	if (r->o->cls == OUTCOME_TEMP &&
	    now - r->queued_at >= decide_lifetime(d, r)) {
		outcome_make_permanent(r->o);
		snprintf(
		    r->o->text + strnlen(r->o->text, sizeof(r->o->text) - 60),
		    60, " (gave up after %ld days in the queue)",
		    (long)((now - r->queued_at) / 86400));
	}
	decide_mta(mta, sizeof(mta), f);
	a.status = r->o->status;
	a.result_type = result_type_str(r->o->rt);
	a.text = r->remote != NULL ? r->remote : r->o->text;
	a.mta = f != NULL ? mta : NULL;
	fields = decide_fields(r, f, mta, pol.exception);
	queue_event_json(d->cfg.queue, r->msgid, r->addr, "attempt", fields);
	switch (r->o->cls) {
	case OUTCOME_OK:
		word = "sent";
		r->decided = QUEUE_RCPT_DELIVERED;
		queue_rcpt_delivered(d->cfg.queue, r->id, &a);
		break;
	case OUTCOME_PERM:
		word = "bounced";
		r->decided = QUEUE_RCPT_BOUNCED;
		queue_rcpt_bounced(d->cfg.queue, r->id, &a);
		break;
	case OUTCOME_TEMP:
	default:
		word = "deferred";
		r->decided = QUEUE_RCPT_QUEUED;
		/* Cut short by a shutdown: due again as soon as we are back. */
		queue_rcpt_deferred(d->cfg.queue, r->id,
		    d->stopping ? now : decide_next(d, r, now), &a);
		r->warn_now = !r->delay_warned && d->cfg.delay_warning > 0 &&
		    now - r->queued_at >= d->cfg.delay_warning;
		break;
	}
	json_decref(fields);
	/* The verdict event repeats only the result; the attempt has the rest.
	 */
	fields = decide_result_fields(r, now, d);
	queue_event_json(d->cfg.queue, r->msgid, r->addr,
	    r->o->cls == OUTCOME_OK       ? "delivered" :
	        r->o->cls == OUTCOME_PERM ? "bounced" :
	                                    "deferred",
	    fields);
	if (!r->logged) { /* once, though a write kept back is done again */
		decide_log(r, f, mta, word, now);
		decide_metrics(r, f, &pol, now);
	}
	r->logged = true;
	json_decref(fields);
	(void)m;
}

/* RFC 3461 §4.1: NOTIFY absent means FAILURE (and DELAY at our option). */
static bool
decide_notify(const struct drcpt *r, enum dsn_action action)
{
	if (r->notify & QUEUE_NOTIFY_NEVER)
		return false;
	switch (action) {
	case DSN_ACTION_FAILED:
		return r->notify == 0 || (r->notify & QUEUE_NOTIFY_FAILURE);
	case DSN_ACTION_DELAYED:
		return r->notify == 0 || (r->notify & QUEUE_NOTIFY_DELAY);
	default:
		return (r->notify & QUEUE_NOTIFY_SUCCESS) != 0;
	}
}

static bool
decide_wants(const struct drcpt *r, enum dsn_action action)
{
	switch (action) {
	case DSN_ACTION_FAILED:
		return r->decided == QUEUE_RCPT_BOUNCED;
	case DSN_ACTION_DELAYED:
		return r->decided == QUEUE_RCPT_QUEUED && r->warn_now;
	default:
		return r->decided == QUEUE_RCPT_DELIVERED;
	}
}

/* Whether data holds an octet above 127 (then BODY=8BITMIME). */
static bool
memchr8(const uint8_t *data, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (data[i] > 127)
			return true;
	return false;
}

/* Queue the report built from the recipients in rcpts of message q. */
static void
decide_send_dsn(struct deliver *d, const struct queue_msg *q,
    struct dsn_rcpt *rcpts, size_t n, enum dsn_action action)
{
	struct queue_rcpt_in to = { q->sender, NULL, QUEUE_NOTIFY_NEVER };
	struct queue_msg_in in;
	struct dsn_msg m;
	char id[QUEUE_ID_LEN] = "", *err = NULL, *fields;
	uint8_t *data;
	size_t len;

	memset(&m, 0, sizeof(m));
	m.reporting_mta = d->cfg.hostname;
	m.from = NULL;
	m.to = q->sender;
	m.envid = q->envid;
	m.ret_full = q->ret == QUEUE_RET_FULL ||
	    (q->ret == QUEUE_RET_UNSET && dsn_ret_default(q->len));
	m.orig = q->data;
	m.orig_len = q->len;
	m.orig_message_id = q->message_id;
	m.arrival = q->received_at;
	m.now = time(NULL);
	m.rcpts = rcpts;
	m.nrcpt = n;
	data = dsn_build(&m, &len);
	memset(&in, 0, sizeof(in));
	in.kind = QUEUE_KIND_DSN;
	/* A report about UTF-8 mail is itself UTF-8 (RFC 6533). */
	in.smtputf8 = dsn_is_global(&m);
	in.body_8bit = memchr8(data, len);
	in.sender = ""; /* RFC 3461 §6.2: a null reverse-path */
	in.client = "danerelay";
	in.data = data;
	in.len = len;
	in.rcpts = &to;
	in.nrcpt = 1;
	if (queue_add(d->cfg.queue, &in, id, &err) == -1) {
		log_warnx("%s: cannot queue the DSN for <%s>: %s", q->id,
		    q->sender, err);
		free(err);
	} else {
		const char *what = dsn_action_str(action);
		json_t *o = json_pack("{s:s, s:s, s:s}", "action", what, "dsn",
		    id, "to", q->sender);

		/* The sender address came through our parser: UTF-8 or ASCII.
		 */
		fields = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		queue_event(d->cfg.queue, q->id, NULL, "dsn-sent", fields);
		log_info("%s: sender notified (%s): report %s to <%s>", q->id,
		    what, id, q->sender);
		free(fields);
		deliver_wake(d);
	}
	free(data);
}

static void
decide_dsn(struct deliver *d, struct dmsg *m, const struct dfacts *f,
    enum dsn_action action)
{
	struct dsn_rcpt *rcpts = xcalloc(m->n, sizeof(*rcpts));
	char **orcpt = xcalloc(m->n, sizeof(*orcpt));
	size_t k, n = 0;

	for (k = 0; k < m->n; k++) {
		struct drcpt *r = m->rcpts[k];

		if (!decide_wants(r, action) || !decide_notify(r, action))
			continue;
		rcpts[n].addr = r->addr;
		/* Queued as received (xtext); the report shows it decoded
		 * (RFC 3464 §2.3.1, dsn.h). */
		if (r->orcpt != NULL)
			orcpt[n] = smtp_orcpt_decode(r->orcpt);
		rcpts[n].orcpt = orcpt[n];
		rcpts[n].action = action;
		rcpts[n].status = r->o->status;
		rcpts[n].result_type = result_type_str(r->o->rt);
		rcpts[n].remote_mta =
		    f != NULL && f->mx[0] != '\0' ? f->mx : NULL;
		rcpts[n].diagnostic =
		    r->remote != NULL ? r->remote : r->o->text;
		rcpts[n].last_attempt = time(NULL);
		rcpts[n].will_retry_until = action == DSN_ACTION_DELAYED ?
		    r->queued_at + decide_lifetime(d, r) :
		    0;
		n++;
		if (action == DSN_ACTION_DELAYED)
			queue_rcpt_set_warned(d->cfg.queue, r->id);
	}
	if (n > 0 && m->msg->data == NULL) {
		/* The body was dropped after sending: the DSN may return it. */
		queue_msg_free(m->msg);
		m->msg = queue_msg_get(d->cfg.queue, m->msgid);
	}
	if (n > 0 && m->msg != NULL)
		decide_send_dsn(d, m->msg, rcpts, n, action);
	for (k = 0; k < n; k++)
		free(orcpt[k]);
	free(orcpt);
	free(rcpts);
}

void
deliver_decide_message(
    struct deliver *d, struct dmsg *m, const struct dfacts *f)
{
	static const enum dsn_action actions[] = { DSN_ACTION_FAILED,
		DSN_ACTION_DELAYED, DSN_ACTION_RELAYED };
	size_t i, k;
	bool any;

	if (m->msg == NULL)
		m->msg = queue_msg_get(d->cfg.queue, m->msgid);
	/* No reports about reports, and none to a null sender (RFC 3461 §6.2).
	 */
	if (m->msg != NULL && m->msg->kind == QUEUE_KIND_MAIL &&
	    m->msg->sender[0] != '\0') {
		for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
			for (any = false, k = 0; k < m->n && !any; k++)
				any = decide_wants(m->rcpts[k], actions[i]);
			if (any)
				decide_dsn(d, m, f, actions[i]);
		}
	}
	queue_msg_gc(d->cfg.queue, m->msgid);
}
