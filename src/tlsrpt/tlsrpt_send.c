/*
 * tlsrpt_send: one run = TXT lookups for the day's unprepared domains
 * (at most TS_LOOKUPS at once), then the due outbox entries: mail is
 * queued at once, POSTs resolve their host through our resolver (private
 * trees work, nothing blocks) and go out through the http module. The
 * run's end is reported from an event of its own, never from inside a
 * call of the caller.
 */
#include "tlsrpt/tlsrpt_send.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "dns/dns_addrs.h"
#include "http/http.h"
#include "queue/queue.h"
#include "dkim/dkim.h"
#include "tlsrpt/tlsrpt.h"
#include "tlsrpt/tlsrpt_mail.h"
#include "tlsrpt/tlsrpt_rua.h"

#define TS_LOOKUPS     16    /* TXT lookups in flight */
#define TS_DUE_MAX     256   /* outbox entries per run */
#define TS_BACKOFF     300   /* first retry after 5 min ... */
#define TS_BACKOFF_MAX 7200  /* ... doubling up to 2 h */
#define TS_GIVE_UP     86400 /* RFC 8460 §5.5: 24 hours */
#define TS_ADDRS       8
#define TS_REPLY_MAX   65536 /* of a collector's answer body */

struct ts_txt {
	struct tlsrpt_sender *s;
	char *domain;
	struct dns_query *q;
	TAILQ_ENTRY(ts_txt) entry;
};

/* One https entry of the outbox being tried. */
struct ts_post {
	struct tlsrpt_sender *s;
	char day[TLSRPT_DAY_LEN];
	char *domain, *uri;
	uint8_t *gz;
	size_t gzlen;
	int attempts;
	time_t first_attempt;
	struct dns_addrs_lookup *al; /* of the URL's host */
	char *addrs[TS_ADDRS];
	size_t naddrs;
	struct http_request *req;
	TAILQ_ENTRY(ts_post) entry;
};

struct tlsrpt_sender {
	struct tlsrpt_send_config c;
	struct tlsrpt_send_book local;    /* c.store's, when c.book is NULL */
	const struct tlsrpt_send_book *b; /* the one in use */
	bool running;
	char day[TLSRPT_DAY_LEN];
	time_t now;
	char **domains;
	size_t ndomains, next;
	TAILQ_HEAD(, ts_txt) txts;
	TAILQ_HEAD(, ts_post) posts;
	struct tlsrpt_send_stats st;
	struct event *done_ev;
	tlsrpt_send_done_cb *done;
	void *done_arg;
};

static void ts_lookup_more(struct tlsrpt_sender *s);
static void ts_check_end(struct tlsrpt_sender *s);

char *
tlsrpt_send_report_id(
    const char *day, const char *domain, const char *submitter)
{
	uint8_t r[6];
	char *hex, *id;
	char ymd[9];

	if (getentropy(r, sizeof(r)) == -1)
		memset(r, 0, sizeof(r));
	hex = str_hex(r, sizeof(r));
	snprintf(ymd, sizeof(ymd), "%.4s%.2s%.2s", day, day + 5, day + 8);
	id = xasprintf("%s.%s.%s@%s", ymd, domain, hex, submitter);
	free(hex);
	return id;
}

/* --- the end of a run --- */

static void
ts_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tlsrpt_sender *s = arg;
	struct tlsrpt_send_stats st = s->st;

	s->running = false;
	tlsrpt_strv_free(s->domains);
	s->domains = NULL;
	if (s->done != NULL)
		s->done(&st, s->done_arg);
}

static void
ts_check_end(struct tlsrpt_sender *s)
{
	if (s->running && TAILQ_EMPTY(&s->txts) && TAILQ_EMPTY(&s->posts) &&
	    s->next >= s->ndomains)
		event_active(s->done_ev, EV_TIMEOUT, 0);
}

/* The end of an attempt, into the book (a book that fails is logged). */
static void
ts_update(struct tlsrpt_sender *s, const char *day, const char *domain,
    const char *uri, enum tlsrpt_out_state state, const char *note,
    time_t next_attempt)
{
	if (s->b->update(s->b->ctx, day, domain, uri, state, note, time(NULL),
	        next_attempt) == -1)
		log_warnx("TLS-RPT: %s", s->b->error(s->b->ctx));
}

/* After a failed attempt: retry with backoff, or give up after 24 h. */
static void
ts_failed(struct tlsrpt_sender *s, const char *day, const char *domain,
    const char *uri, int attempts, time_t first, const char *why)
{
	time_t now = time(NULL), wait = TS_BACKOFF;
	int i;

	for (i = 0; i < attempts && wait < TS_BACKOFF_MAX; i++)
		wait *= 2;
	if (wait > TS_BACKOFF_MAX)
		wait = TS_BACKOFF_MAX;
	if (first != 0 && now - first >= TS_GIVE_UP) {
		log_warnx("TLS-RPT: report for %s (%s) to %s: %s; giving up "
		          "after 24 hours",
		    domain, day, uri, why);
		ts_update(s, day, domain, uri, TLSRPT_OUT_FAILED, why, 0);
		s->st.failed++;
		return;
	}
	log_warnx("TLS-RPT: report for %s (%s) to %s: %s; next attempt in "
	          "%lld s",
	    domain, day, uri, why, (long long)wait);
	ts_update(s, day, domain, uri, TLSRPT_OUT_PENDING, why, now + wait);
	s->st.retry++;
}

static void
ts_succeeded(struct tlsrpt_sender *s, const char *day, const char *domain,
    const char *uri, const char *note)
{
	log_info(
	    "TLS-RPT: report for %s (%s) to %s: %s", domain, day, uri, note);
	ts_update(s, day, domain, uri, TLSRPT_OUT_DONE, note, 0);
}

/* --- mailto: --- */

/* The signed §5.3 message for o to addr. New, or NULL with *why. */
static uint8_t *
ts_mail_data(struct tlsrpt_sender *s, const struct tlsrpt_out *o,
    const char *addr, size_t *len, const char **why)
{
	struct tlsrpt_mail m = { 0 };
	uint8_t *msg, *out;
	char *sig;
	size_t n, siglen;

	m.from = s->c.sender_address;
	m.to = addr;
	m.policy_domain = o->domain;
	m.submitter = s->c.submitter;
	m.report_id = o->report_id;
	m.organization = s->c.organization;
	m.begin = tlsrpt_day_start(o->day);
	m.end = m.begin + 86399;
	m.now = time(NULL);
	m.gz = o->gz;
	m.gzlen = o->gzlen;
	if ((msg = tlsrpt_mail_build(&m, &n)) == NULL) {
		*why = "the report mail cannot be built (check [tlsrpt] "
		       "sender_address)";
		return NULL;
	}
	if ((sig = dkim_sign(s->c.dkim, msg, n, m.now)) == NULL) {
		free(msg);
		*why = "DKIM signing failed";
		return NULL;
	}
	siglen = strlen(sig);
	out = xmalloc(siglen + n);
	memcpy(out, sig, siglen);
	memcpy(out + siglen, msg, n);
	*len = siglen + n;
	free(sig);
	free(msg);
	return out;
}

/* RFC 8460 §3: mail reports need a valid DKIM signature; queued here,
 * delivered under the relaxed rules for QUEUE_KIND_REPORT. */
static void
ts_mail(struct tlsrpt_sender *s, const struct tlsrpt_out *o)
{
	const char *addr = o->uri + strlen("mailto:"), *why = NULL;
	struct queue_rcpt_in rcpt = { addr, NULL, QUEUE_NOTIFY_NEVER };
	struct queue_msg_in in;
	char id[QUEUE_ID_LEN] = "", note[64], *err = NULL;
	uint8_t *data = NULL;
	size_t len = 0;

	if (s->c.dkim == NULL)
		why = "no [dkim] signing key: RFC 8460 §3 reports by mail "
		      "must be DKIM-signed";
	else
		data = ts_mail_data(s, o, addr, &len, &why);
	if (data == NULL) {
		log_warnx("TLS-RPT: report for %s (%s) to %s: %s", o->domain,
		    o->day, o->uri, why);
		ts_update(
		    s, o->day, o->domain, o->uri, TLSRPT_OUT_FAILED, why, 0);
		s->st.failed++;
		return;
	}
	memset(&in, 0, sizeof(in));
	in.kind = QUEUE_KIND_REPORT;
	in.sender = s->c.sender_address;
	in.client = "danerelay (TLS-RPT)";
	in.message_id = o->report_id;
	in.data = data;
	in.len = len;
	in.rcpts = &rcpt;
	in.nrcpt = 1;
	if (queue_add(s->c.queue, &in, id, &err) == -1) {
		ts_failed(s, o->day, o->domain, o->uri, o->attempts,
		    o->first_attempt != 0 ? o->first_attempt : time(NULL), err);
		free(err);
	} else {
		snprintf(note, sizeof(note), "queued as %s", id);
		ts_succeeded(s, o->day, o->domain, o->uri, note);
		s->st.queued++;
		if (s->c.on_queued != NULL)
			s->c.on_queued(s->c.arg);
	}
	free(data);
}

/* --- https: --- */

static void
ts_post_free(struct ts_post *p)
{
	size_t i;

	TAILQ_REMOVE(&p->s->posts, p, entry);
	dns_addrs_cancel(p->al);
	http_request_cancel(p->req);
	for (i = 0; i < p->naddrs; i++)
		free(p->addrs[i]);
	free(p->domain);
	free(p->uri);
	free(p->gz);
	free(p);
}

static void
ts_post_done(const struct http_result *r, void *arg)
{
	struct ts_post *p = arg;
	struct tlsrpt_sender *s = p->s;
	char note[64];

	p->req = NULL;
	if (r->ok) {
		snprintf(note, sizeof(note), "accepted (HTTP %ld)", r->status);
		ts_succeeded(s, p->day, p->domain, p->uri, note);
		s->st.posted++;
	} else
		ts_failed(s, p->day, p->domain, p->uri, p->attempts,
		    p->first_attempt != 0 ? p->first_attempt : time(NULL),
		    r->error);
	ts_post_free(p);
	ts_check_end(s);
}

/* §5.4: POST the gzipped report. */
static void
ts_post_go(struct ts_post *p)
{
	struct http_request_params hp = { 0 };

	if (p->naddrs == 0) {
		ts_failed(p->s, p->day, p->domain, p->uri, p->attempts,
		    p->first_attempt != 0 ? p->first_attempt : time(NULL),
		    "the host of the URL has no address");
		ts_post_free(p); /* the caller checks for the run's end */
		return;
	}
	hp.url = p->uri;
	hp.addrs = p->addrs;
	hp.naddrs = p->naddrs;
	hp.post_type = "application/tlsrpt+gzip";
	hp.post = p->gz;
	hp.post_len = p->gzlen;
	hp.timeout_ms = p->s->c.https_timeout_ms;
	hp.max_body = TS_REPLY_MAX;
	hp.user_agent = "danerelay (TLS-RPT)";
	p->req = http_request_start(p->s->c.http, &hp, ts_post_done, p);
}

/* The addresses of the URL's host are in: POST. */
static void
ts_post_addrs(const struct dns_addrs_result *r, void *arg)
{
	struct ts_post *p = arg;
	struct tlsrpt_sender *s = p->s;
	size_t i;

	p->al = NULL;
	for (i = 0; i < r->n && p->naddrs < TS_ADDRS; i++)
		p->addrs[p->naddrs++] = xstrdup(r->addrs[i]);
	ts_post_go(p);
	ts_check_end(s);
}

static void
ts_post(struct tlsrpt_sender *s, const struct tlsrpt_out *o)
{
	struct ts_post *p = xcalloc(1, sizeof(*p));
	const char *err = NULL;
	char host[256];
	unsigned port;
	int rc;

	p->s = s;
	memcpy(p->day, o->day, sizeof(p->day));
	p->domain = xstrdup(o->domain);
	p->uri = xstrdup(o->uri);
	p->gz = xmalloc(o->gzlen > 0 ? o->gzlen : 1);
	memcpy(p->gz, o->gz, o->gzlen);
	p->gzlen = o->gzlen;
	p->attempts = o->attempts;
	p->first_attempt = o->first_attempt;
	TAILQ_INSERT_TAIL(&s->posts, p, entry);
	rc = http_url_host(o->uri, host, sizeof(host), &port, &err);
	if (rc == HTTP_URL_NOLIB) {
		/* Our problem, not the URL's: try again later. */
		ts_failed(s, o->day, o->domain, o->uri, o->attempts,
		    o->first_attempt != 0 ? o->first_attempt : time(NULL), err);
		ts_post_free(p);
		return;
	}
	if (rc != 0) {
		ts_update(s, o->day, o->domain, o->uri, TLSRPT_OUT_FAILED,
		    "not a usable https URL", 0);
		s->st.failed++;
		ts_post_free(p);
		return;
	}
	p->al = dns_addrs(s->c.resolver, host, TS_ADDRS, ts_post_addrs, p);
}

/* --- the outbox --- */

/* A due entry, copied: entries are tried after the read has ended,
 * because trying them writes to the same table. */
struct ts_item {
	struct tlsrpt_out o; /* pointing into the fields below */
	char *domain, *uri, *report_id;
	uint8_t *gz;
};

struct ts_due {
	struct ts_item *v;
	size_t n;
};

static void
ts_due_one(const struct tlsrpt_out *o, void *arg)
{
	struct ts_due *d = arg;
	struct ts_item *it;

	d->v = xreallocarray(d->v, d->n + 1, sizeof(*d->v));
	it = &d->v[d->n++];
	it->o = *o;
	it->o.domain = it->domain = xstrdup(o->domain);
	it->o.uri = it->uri = xstrdup(o->uri);
	it->o.report_id = it->report_id = xstrdup(o->report_id);
	it->o.note = NULL;
	it->gz = xmalloc(o->gzlen > 0 ? o->gzlen : 1);
	memcpy(it->gz, o->gz, o->gzlen);
	it->o.gz = it->gz;
}

static void
ts_process_due(struct tlsrpt_sender *s)
{
	struct ts_due d = { NULL, 0 };
	size_t i;

	if (s->b->due(s->b->ctx, s->now, TS_DUE_MAX, ts_due_one, &d) == -1)
		log_warnx("TLS-RPT: %s", s->b->error(s->b->ctx));
	for (i = 0; i < d.n; i++) {
		if (strncmp(d.v[i].uri, "mailto:", 7) == 0)
			ts_mail(s, &d.v[i].o);
		else
			ts_post(s, &d.v[i].o);
		free(d.v[i].domain);
		free(d.v[i].uri);
		free(d.v[i].report_id);
		free(d.v[i].gz);
	}
	free(d.v);
	ts_check_end(s);
}

/* --- preparing a domain's report --- */

/* The report, once, into the outbox for each destination. */
static void
ts_prepare(struct tlsrpt_sender *s, const char *domain,
    const struct tlsrpt_rua *v, size_t n)
{
	struct tlsrpt_out o;
	char *id, *json, **uris;
	uint8_t *gz;
	size_t i;

	id = tlsrpt_send_report_id(s->day, domain, s->c.submitter);
	json = s->b->build(
	    s->b->ctx, domain, s->day, s->c.organization, s->c.contact, id);
	if (json == NULL) {
		log_warnx("TLS-RPT: cannot build the report for %s (%s): %s",
		    domain, s->day, s->b->error(s->b->ctx));
		s->b->release(s->b->ctx, s->day, domain);
		free(id);
		return;
	}
	memset(&o, 0, sizeof(o));
	memcpy(o.day, s->day, sizeof(o.day));
	o.domain = domain;
	o.report_id = id;
	o.gz = gz = tlsrpt_gzip(json, &o.gzlen);
	o.state = TLSRPT_OUT_PENDING;
	uris = xcalloc(n + 1, sizeof(*uris));
	for (i = 0; i < n; i++)
		uris[i] = v[i].kind == TLSRPT_RUA_MAILTO ?
		    xasprintf("mailto:%s", v[i].target) :
		    xstrdup(v[i].target);
	if (s->b->prepare(s->b->ctx, &o, (const char *const *)uris, n) == -1)
		log_warnx("TLS-RPT: %s", s->b->error(s->b->ctx));
	tlsrpt_strv_free(uris);
	free(gz);
	free(json);
	free(id);
}

/* The domain takes no reports: its day is done. */
static void
ts_no_policy(struct tlsrpt_sender *s, const char *domain)
{
	struct tlsrpt_out o;

	memset(&o, 0, sizeof(o));
	memcpy(o.day, s->day, sizeof(o.day));
	o.domain = domain;
	o.report_id = "";
	o.note = "";
	if (s->b->prepare(s->b->ctx, &o, NULL, 0) == -1)
		log_warnx("TLS-RPT: %s", s->b->error(s->b->ctx));
}

static void
ts_txt_free(struct ts_txt *t)
{
	TAILQ_REMOVE(&t->s->txts, t, entry);
	dns_query_cancel(t->q);
	free(t->domain);
	free(t);
}

/* RFC 8460 §3: the TXT RRset of _smtp._tls.DOMAIN. */
static void
ts_txt_done(struct dns_answer *a, void *arg)
{
	struct ts_txt *t = arg;
	struct tlsrpt_sender *s = t->s;
	struct tlsrpt_rua *v = NULL;
	char **recs, *why = NULL;
	size_t i, n = 0;
	int nv;

	t->q = NULL;
	if (dns_answer_status(a) != DNS_OK) {
		log_warnx("TLS-RPT: _smtp._tls.%s: DNS %s; trying again later",
		    t->domain, dns_status_str(dns_answer_status(a)));
		s->st.dns_later++;
		s->b->release(s->b->ctx, s->day, t->domain);
		goto out;
	}
	recs = xcalloc(dns_answer_count(a) + 1, sizeof(char *));
	for (i = 0; i < dns_answer_count(a); i++)
		if ((recs[n] = dns_answer_txt(a, i)) != NULL)
			n++;
	nv = tlsrpt_rua_parse((const char *const *)recs, n, &v, &why);
	str_vec_free(recs);
	if (nv == -1) {
		log_info("TLS-RPT: %s takes no reports: %s", t->domain, why);
		s->st.no_policy++;
		ts_no_policy(s, t->domain);
		free(why);
		goto out;
	}
	ts_prepare(s, t->domain, v, (size_t)nv);
	tlsrpt_rua_free(v, (size_t)nv);
out:
	dns_answer_free(a);
	ts_txt_free(t);
	ts_lookup_more(s);
}

static void
ts_lookup_more(struct tlsrpt_sender *s)
{
	struct ts_txt *t;
	size_t inflight = 0;
	char *name;
	int rc;

	TAILQ_FOREACH (t, &s->txts, entry)
		inflight++;
	while (inflight < TS_LOOKUPS && s->next < s->ndomains) {
		const char *d = s->domains[s->next++];

		rc = s->b->claim(s->b->ctx, s->day, d, s->now);
		if (rc == -1)
			log_warnx("TLS-RPT: %s", s->b->error(s->b->ctx));
		if (rc == -1 || rc == 2)
			s->st.later++;
		if (rc != 1)
			continue; /* done, prepared earlier or elsewhere */
		s->st.domains++;
		t = xcalloc(1, sizeof(*t));
		t->s = s;
		t->domain = xstrdup(d);
		TAILQ_INSERT_TAIL(&s->txts, t, entry);
		name = xasprintf("_smtp._tls.%s", d);
		t->q = dns_query(
		    s->c.resolver, name, DNS_TYPE_TXT, ts_txt_done, t);
		free(name);
		inflight++;
	}
	if (inflight == 0 && s->next >= s->ndomains)
		ts_process_due(s);
}

/* --- the interface --- */

struct tlsrpt_sender *
tlsrpt_send_new(const struct tlsrpt_send_config *c)
{
	struct tlsrpt_sender *s = xcalloc(1, sizeof(*s));

	s->c = *c;
	tlsrpt_book_local(&s->local, c->store);
	s->b = c->book != NULL ? c->book : &s->local;
	TAILQ_INIT(&s->txts);
	TAILQ_INIT(&s->posts);
	s->done_ev = event_new(c->base, -1, 0, ts_done_cb, s);
	return s;
}

void
tlsrpt_send_free(struct tlsrpt_sender *s)
{
	if (s == NULL)
		return;
	while (!TAILQ_EMPTY(&s->txts))
		ts_txt_free(TAILQ_FIRST(&s->txts));
	while (!TAILQ_EMPTY(&s->posts))
		ts_post_free(TAILQ_FIRST(&s->posts));
	event_free(s->done_ev);
	tlsrpt_strv_free(s->domains);
	free(s);
}

int
tlsrpt_send_run(struct tlsrpt_sender *s, const char *day, time_t now,
    tlsrpt_send_done_cb *done, void *arg)
{
	size_t n = 0;

	if (s->running)
		return -1;
	s->running = true;
	memset(&s->st, 0, sizeof(s->st));
	s->done = done;
	s->done_arg = arg;
	s->now = now;
	s->ndomains = s->next = 0;
	if (day != NULL) {
		snprintf(s->day, sizeof(s->day), "%s", day);
		s->domains = s->b->domains(s->b->ctx, day, &n);
		if (s->domains == NULL) {
			log_warnx("TLS-RPT: %s", s->b->error(s->b->ctx));
			s->st.later++;
		}
		s->ndomains = s->domains != NULL ? n : 0;
	}
	ts_lookup_more(s);
	return 0;
}

void
tlsrpt_send_reconfigure(
    struct tlsrpt_sender *s, const struct tlsrpt_send_config *c)
{
	s->c.dkim = c->dkim;
	s->c.organization = c->organization;
	s->c.contact = c->contact;
	s->c.submitter = c->submitter;
	s->c.sender_address = c->sender_address;
}
