/*
 * sts: the MTA-STS engine. One job per domain in flight, shared by every
 * lookup of that domain that arrives meanwhile (one TXT query, one fetch):
 *
 *   TXT _mta-sts.DOMAIN (§3.1)
 *     lookup error     -> the cached policy if still valid, else none
 *     no usable record -> the cached policy if still valid (§3.1: absence
 *                         does not remove it), else none
 *     id == cached id  -> the cached policy (refresh jobs fetch anyway)
 *     otherwise        -> A/AAAA of mta-sts.DOMAIN, HTTPS fetch (§3.3):
 *       valid policy   -> stored for max_age seconds, used
 *       failure        -> the cached policy if still valid (§3.3), else
 *                         fetch-error / invalid; the same id is not
 *                         fetched again for five minutes (§3.3)
 *
 * Results are delivered from an event of the job's own at the top of the
 * loop, so a callback may start lookups, cancel others or free the engine.
 */
#include "sts/sts.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "dns/dns_addrs.h"
#include "sts/sts_cache.h"
#include "sts/sts_fetch.h"
#include "sts/sts_int.h"

#define STS_TIMEOUT_MS  60000 /* §3.3: "a suggested timeout is one minute" */
#define STS_MAX_BODY    65536 /* §3.3: "64 kilobytes" */
#define STS_BACKOFF     300   /* §3.3: "five minutes or longer per id" */
#define STS_REFRESH_MAX 256
#define STS_ADDRS_MAX   8

enum sts_stage {
	STS_STAGE_TXT,
	STS_STAGE_ADDR,
	STS_STAGE_FETCH,
	STS_STAGE_DONE,
};

struct sts_lookup {
	struct sts_job *job;
	TAILQ_ENTRY(sts_lookup) entry;
	sts_cb *cb;
	void *arg;
};

struct sts_job {
	struct sts *s;
	TAILQ_ENTRY(sts_job) entry;
	TAILQ_HEAD(, sts_lookup) waiters;
	char *domain;
	enum sts_stage stage;
	bool refresh; /* proactive: fetch even when the id is unchanged */
	struct dns_query *txt_q;
	struct dns_addrs_lookup *al; /* of mta-sts.DOMAIN */
	struct sts_fetch *fetch;
	struct event *done;
	struct sts_policy *cached; /* the cached policy while still valid */
	char cached_id[STS_ID_MAX + 1];
	time_t cached_expires;
	char *addrs[STS_ADDRS_MAX];
	size_t naddrs;
	char txt_id[STS_ID_MAX + 1];
	struct sts_result res;
	struct sts_policy *policy; /* the one res points to (owned) */
	char *error;
	char *fetch_error; /* res.fetch_error */
};

/* A failed fetch, remembered for the §3.3 retry interval. */
struct sts_fail {
	TAILQ_ENTRY(sts_fail) entry;
	char *domain;
	char id[STS_ID_MAX + 1];
	time_t at;
	enum sts_state state;
	char *error;
	bool webpki;
};

struct sts {
	struct event_base *base;
	struct dns_resolver *r;
	struct sts_cache *cache;
	struct sts_fetcher *fetcher;
	TAILQ_HEAD(, sts_job) jobs;
	TAILQ_HEAD(, sts_fail) fails;
	unsigned dispatching; /* result callbacks running */
	bool dying;           /* sts_free() ran inside one of them */
	char *test_addr;
	time_t test_now;
	time_t backoff;
};

static void sts_job_fetch(struct sts_job *job);

const char *
sts_state_str(enum sts_state st)
{
	switch (st) {
	case STS_STATE_NONE:
		return "none";
	case STS_STATE_POLICY:
		return "policy";
	case STS_STATE_FETCH_ERROR:
		return "sts-policy-fetch-error";
	case STS_STATE_INVALID:
		return "sts-policy-invalid";
	}
	return "?";
}

static time_t
sts_now(const struct sts *s)
{
	return s->test_now != 0 ? s->test_now : time(NULL);
}

/* ------------------------------------------------------------------ */
/* The §3.3 memory of failed fetches. */

static void
sts_fail_free(struct sts *s, struct sts_fail *f)
{
	TAILQ_REMOVE(&s->fails, f, entry);
	free(f->domain);
	free(f->error);
	free(f);
}

/* Forget failures of domain (or, with NULL, those past the interval). */
static void
sts_fail_forget(struct sts *s, const char *domain)
{
	struct sts_fail *f, *next;
	time_t now = sts_now(s);

	for (f = TAILQ_FIRST(&s->fails); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (domain != NULL ? strcmp(f->domain, domain) == 0 :
		                     now - f->at >= s->backoff)
			sts_fail_free(s, f);
	}
}

static const struct sts_fail *
sts_fail_find(struct sts *s, const char *domain, const char *id)
{
	struct sts_fail *f;

	sts_fail_forget(s, NULL);
	TAILQ_FOREACH (f, &s->fails, entry)
		if (strcmp(f->domain, domain) == 0 && strcmp(f->id, id) == 0)
			return f;
	return NULL;
}

static void
sts_fail_note(
    struct sts_job *job, enum sts_state state, const char *error, bool webpki)
{
	struct sts *s = job->s;
	struct sts_fail *f = xcalloc(1, sizeof(*f));

	sts_fail_forget(s, job->domain);
	f->domain = xstrdup(job->domain);
	memcpy(f->id, job->txt_id, sizeof(f->id));
	f->at = sts_now(s);
	f->state = state;
	f->error = xstrdup(error);
	f->webpki = webpki;
	TAILQ_INSERT_TAIL(&s->fails, f, entry);
}

/* ------------------------------------------------------------------ */
/* Jobs: their life and the delivery of their result. */

static void
sts_job_free(struct sts_job *job)
{
	struct sts_lookup *l;
	size_t i;

	while ((l = TAILQ_FIRST(&job->waiters)) != NULL) {
		TAILQ_REMOVE(&job->waiters, l, entry);
		free(l);
	}
	dns_query_cancel(job->txt_q);
	dns_addrs_cancel(job->al);
	sts_fetch_cancel(job->fetch);
	event_free(job->done);
	for (i = 0; i < job->naddrs; i++)
		free(job->addrs[i]);
	sts_policy_free(job->cached);
	sts_policy_free(job->policy);
	free(job->error);
	free(job->fetch_error);
	free(job->domain);
	free(job);
}

/* At the top of the loop: every waiter gets the result, then the job goes. */
static void
sts_job_dispatch(evutil_socket_t fd, short what, void *arg)
{
	struct sts_job *job = arg;
	struct sts *s = job->s;
	struct sts_lookup *l;
	sts_cb *cb;
	void *cbarg;

	/* Out of the table: new lookups of the domain start afresh. */
	TAILQ_REMOVE(&s->jobs, job, entry);
	s->dispatching++;
	while (!s->dying && (l = TAILQ_FIRST(&job->waiters)) != NULL) {
		TAILQ_REMOVE(&job->waiters, l, entry);
		cb = l->cb;
		cbarg = l->arg;
		free(l);
		cb(&job->res, cbarg);
	}
	s->dispatching--;
	sts_job_free(job);
	if (s->dying && s->dispatching == 0)
		free(s);
}

static void
sts_job_finish(struct sts_job *job)
{
	job->stage = STS_STAGE_DONE;
	job->res.error = job->error;
	job->res.txt_id = job->txt_id[0] != '\0' ? job->txt_id : NULL;
	event_active(job->done, EV_TIMEOUT, 0);
}

/* Takes ownership of msg. */
static void
sts_job_error(struct sts_job *job, char *msg)
{
	free(job->error);
	job->error = msg;
}

/*
 * RFC 8460 §4.3.2.2: the result type of a failed fetch, for the report;
 * why is the failure's own text.
 */
static void
sts_job_fetch_rt(
    struct sts_job *job, enum sts_state state, bool webpki, const char *why)
{
	job->res.webpki_error = webpki;
	job->res.fetch_rt = state == STS_STATE_INVALID ? RT_STS_POLICY_INVALID :
	    webpki                                     ? RT_STS_WEBPKI_INVALID :
	             RT_STS_POLICY_FETCH_ERROR;
	free(job->fetch_error);
	job->fetch_error = xstrdup(why);
	job->res.fetch_error = job->fetch_error;
}

/* §3.3: with no live policy, a still valid cached one applies. */
static void
sts_job_fallback(struct sts_job *job, enum sts_state state)
{
	if (job->cached != NULL) {
		job->res.state = STS_STATE_POLICY;
		job->res.from_cache = true;
		job->policy = job->cached;
		job->cached = NULL;
		job->res.policy = job->policy;
	} else
		job->res.state = state;
	sts_job_finish(job);
}

static struct sts_job *
sts_job_new(struct sts *s, const char *domain, bool refresh)
{
	struct sts_job *job = xcalloc(1, sizeof(*job));

	job->s = s;
	job->domain = xstrdup(domain);
	job->refresh = refresh;
	TAILQ_INIT(&job->waiters);
	job->done = event_new(s->base, -1, 0, sts_job_dispatch, job);
	TAILQ_INSERT_HEAD(&s->jobs, job, entry);
	return job;
}

/* A job still before its TXT answer (force) or before its result. */
static struct sts_job *
sts_job_find(struct sts *s, const char *domain, bool force_txt)
{
	struct sts_job *job;

	TAILQ_FOREACH (job, &s->jobs, entry)
		if (strcmp(job->domain, domain) == 0 &&
		    (force_txt ? job->stage == STS_STAGE_TXT :
		                 job->stage != STS_STAGE_DONE))
			return job;
	return NULL;
}

static struct sts_lookup *
sts_job_wait(struct sts_job *job, sts_cb *cb, void *arg)
{
	struct sts_lookup *l = xcalloc(1, sizeof(*l));

	l->job = job;
	l->cb = cb;
	l->arg = arg;
	TAILQ_INSERT_TAIL(&job->waiters, l, entry);
	return l;
}

/* ------------------------------------------------------------------ */
/* The cache side. */

/* The cached policy of the job's domain, if it has not expired. */
static void
sts_job_load_cache(struct sts_job *job)
{
	struct sts *s = job->s;
	struct sts_cache_entry e;
	const char *err;
	int rc = sts_cache_get(s->cache, job->domain, &e);

	if (rc == -1)
		log_warnx("MTA-STS cache: %s", sts_cache_error(s->cache));
	if (rc != 1)
		return;
	if (sts_now(s) <= e.expires_at) {
		job->cached = sts_policy_parse(e.policy, e.len, &err);
		memcpy(job->cached_id, e.id, sizeof(job->cached_id));
		job->cached_expires = e.expires_at;
		/* Written by us after parsing: only damage gets here. */
		if (job->cached == NULL)
			sts_cache_delete(s->cache, job->domain);
	}
	sts_cache_entry_clear(&e);
}

static void
sts_job_store(struct sts_job *job, const char *body, size_t len, long max_age)
{
	struct sts *s = job->s;
	time_t now = sts_now(s);

	if (sts_cache_put(s->cache, job->domain, job->txt_id, body, len, now,
	        now + max_age) == -1)
		log_warnx("MTA-STS cache: %s", sts_cache_error(s->cache));
}

/* ------------------------------------------------------------------ */
/* The TXT record and what follows from it (§3.1, §5.1). */

/*
 * §3.3, §10.2: a refresh that fails is worth an administrator's attention
 * (it may be an attack on policy discovery), unless the mode is none.
 */
static void
sts_job_alert(struct sts_job *job)
{
	if (job->cached == NULL ||
	    sts_policy_mode(job->cached) == STS_MODE_NONE)
		return;
	log_warnx("MTA-STS %s: cannot refresh the policy (TXT id %s), keeping "
	          "the cached one (id %s, expires in %lld s): %s",
	    job->domain, job->txt_id[0] != '\0' ? job->txt_id : "none",
	    job->cached_id, (long long)(job->cached_expires - sts_now(job->s)),
	    job->error != NULL ? job->error : "?");
}

/* The TXT lookup's outcome: records, or txt_error. */
static void
sts_job_txt(struct sts_job *job, char *const *txt, size_t n, bool txt_error)
{
	const struct sts_fail *f;
	const char *err;
	char id[STS_ID_MAX + 1];
	bool usable;

	sts_job_load_cache(job);
	usable = !txt_error && sts_txt_select(txt, n, id, &err) == 0;
	if (!txt_error && !usable)
		sts_job_error(job, xstrdup(err));
	if (!usable) {
		/* No live policy: a cached one still applies (§3.1, §3.3). */
		job->res.txt_error = txt_error;
		if (job->refresh)
			sts_job_alert(job);
		sts_job_fallback(job, STS_STATE_NONE);
		return;
	}
	memcpy(job->txt_id, id, sizeof(job->txt_id));
	if (job->cached != NULL && strcmp(job->cached_id, id) == 0 &&
	    !job->refresh) {
		sts_job_fallback(job, STS_STATE_POLICY);
		return;
	}
	if ((f = sts_fail_find(job->s, job->domain, id)) != NULL) {
		sts_job_error(job,
		    xasprintf(
		        "not fetched again within %lld s of a failure: %s",
		        (long long)job->s->backoff, f->error));
		sts_job_fetch_rt(job, f->state, f->webpki, f->error);
		sts_job_fallback(job, f->state);
		return;
	}
	sts_job_fetch(job);
}

static void
sts_job_txt_done(struct dns_answer *a, void *arg)
{
	struct sts_job *job = arg;
	size_t i, n = 0;
	char **txt = NULL;

	job->txt_q = NULL;
	if (dns_answer_status(a) != DNS_OK) {
		sts_job_error(job,
		    xasprintf("TXT lookup failed: %s",
		        dns_answer_error(a) != NULL ? dns_answer_error(a) :
		                                      "?"));
		sts_job_txt(job, NULL, 0, true);
		dns_answer_free(a);
		return;
	}
	n = dns_answer_count(a);
	txt = xcalloc(n + 1, sizeof(*txt));
	for (i = 0; i < n; i++)
		txt[i] = dns_answer_txt(a, i);
	dns_answer_free(a);
	sts_job_txt(job, txt, n, false);
	for (i = 0; i < n; i++)
		free(txt[i]);
	free(txt);
}

static void
sts_job_start(struct sts_job *job)
{
	char *name = xasprintf("_mta-sts.%s", job->domain);
	const char *err = dns_name_check(name);

	/* §3.4: address literals have no policy domain. */
	if (job->domain[0] == '\0' || job->domain[0] == '[')
		err = "no domain name";
	if (err != NULL) {
		sts_job_error(
		    job, xasprintf("not a domain for MTA-STS: %s", err));
		job->res.state = STS_STATE_NONE;
		sts_job_finish(job);
	} else
		job->txt_q = dns_query(
		    job->s->r, name, DNS_TYPE_TXT, sts_job_txt_done, job);
	free(name);
}

/* ------------------------------------------------------------------ */
/* The fetch (§3.3). */

static void
sts_job_fetch_failed(struct sts_job *job, enum sts_state state, bool webpki)
{
	sts_fail_note(job, state, job->error, webpki);
	sts_job_fetch_rt(job, state, webpki, job->error);
	sts_job_alert(job);
	sts_job_fallback(job, state);
}

static void
sts_job_fetch_done(const struct sts_fetch_result *r, void *arg)
{
	struct sts_job *job = arg;
	struct sts_policy *p;
	const char *err;

	job->fetch = NULL;
	if (!r->ok) {
		sts_job_error(job, xstrdup(r->error));
		sts_job_fetch_failed(job, STS_STATE_FETCH_ERROR, r->webpki);
		return;
	}
	if ((p = sts_policy_parse(r->body, r->len, &err)) == NULL) {
		sts_job_error(job, xasprintf("policy invalid: %s", err));
		sts_job_fetch_failed(job, STS_STATE_INVALID, false);
		return;
	}
	/* mode none is kept too: the domain said it opted out (§8.3). */
	sts_job_store(job, r->body, r->len, sts_policy_max_age(p));
	sts_fail_forget(job->s, job->domain);
	job->policy = p;
	job->res.policy = p;
	job->res.state = STS_STATE_POLICY;
	sts_job_finish(job);
}

static void
sts_job_fetch_go(struct sts_job *job)
{
	job->stage = STS_STAGE_FETCH;
	job->fetch = sts_fetch_start(job->s->fetcher, job->domain, job->addrs,
	    job->naddrs, sts_job_fetch_done, job);
}

/* The addresses of mta-sts.DOMAIN. */
static void
sts_job_addrs_done(const struct dns_addrs_result *r, void *arg)
{
	struct sts_job *job = arg;
	size_t i;

	job->al = NULL;
	for (i = 0; i < r->n && job->naddrs < STS_ADDRS_MAX; i++)
		job->addrs[job->naddrs++] = xstrdup(r->addrs[i]);
	if (job->naddrs > 0) {
		sts_job_fetch_go(job);
		return;
	}
	sts_job_error(job,
	    xasprintf("mta-sts.%s: no address%s%s", job->domain,
	        r->error != NULL ? ": " : "",
	        r->error != NULL ? r->error : ""));
	sts_job_fetch_failed(job, STS_STATE_FETCH_ERROR, false);
}

static void
sts_job_fetch(struct sts_job *job)
{
	char *host;

	job->stage = STS_STAGE_ADDR;
	if (job->s->test_addr != NULL) {
		job->addrs[job->naddrs++] = xstrdup(job->s->test_addr);
		sts_job_fetch_go(job);
		return;
	}
	/* Ours, not libcurl's resolver: private trees work, nothing blocks. */
	host = xasprintf("mta-sts.%s", job->domain);
	job->al =
	    dns_addrs(job->s->r, host, STS_ADDRS_MAX, sts_job_addrs_done, job);
	free(host);
}

/* ------------------------------------------------------------------ */
/* The interface. */

struct sts *
sts_new(struct event_base *base, struct dns_resolver *r,
    const struct sts_options *opt, char **errstr)
{
	struct sts *s = xcalloc(1, sizeof(*s));
	struct sts_fetch_options fo;

	s->base = base;
	s->r = r;
	s->backoff = STS_BACKOFF;
	TAILQ_INIT(&s->jobs);
	TAILQ_INIT(&s->fails);
	s->cache = sts_cache_open(
	    opt->cache_path != NULL ? opt->cache_path : ":memory:", errstr);
	if (s->cache == NULL) {
		sts_free(s);
		return NULL;
	}
	memset(&fo, 0, sizeof(fo));
	fo.ca_file = opt->ca_file != NULL && opt->ca_file[0] != '\0' ?
	    opt->ca_file :
	    NULL;
	fo.timeout_ms =
	    opt->fetch_timeout_ms != 0 ? opt->fetch_timeout_ms : STS_TIMEOUT_MS;
	fo.max_body = opt->max_body != 0 ? opt->max_body : STS_MAX_BODY;
	fo.port = opt->https_port;
	s->fetcher = sts_fetch_new(base, &fo);
	return s;
}

void
sts_free(struct sts *s)
{
	struct sts_job *job;

	if (s == NULL)
		return;
	while ((job = TAILQ_FIRST(&s->jobs)) != NULL) {
		TAILQ_REMOVE(&s->jobs, job, entry);
		sts_job_free(job);
	}
	while (!TAILQ_EMPTY(&s->fails))
		sts_fail_free(s, TAILQ_FIRST(&s->fails));
	sts_fetch_free(s->fetcher);
	s->fetcher = NULL;
	sts_cache_close(s->cache);
	s->cache = NULL;
	free(s->test_addr);
	s->test_addr = NULL;
	/* Inside a result callback: the dispatcher frees s when done. */
	if (s->dispatching > 0)
		s->dying = true;
	else
		free(s);
}

/* Lowercase, without the trailing dot: the key of the cache. */
static char *
sts_domain_key(const char *domain)
{
	char *d = xstrdup(domain);
	size_t n = strlen(d);

	if (n > 0 && d[n - 1] == '.')
		d[n - 1] = '\0';
	str_lower(d);
	return d;
}

struct sts_lookup *
sts_get(
    struct sts *s, const char *domain, bool force_txt, sts_cb *cb, void *arg)
{
	char *key;
	struct sts_job *job;

	ASSERT(s->r != NULL);
	key = sts_domain_key(domain);
	if ((job = sts_job_find(s, key, force_txt)) == NULL) {
		job = sts_job_new(s, key, false);
		sts_job_start(job);
	}
	free(key);
	return sts_job_wait(job, cb, arg);
}

void
sts_lookup_cancel(struct sts_lookup *l)
{
	if (l == NULL)
		return;
	TAILQ_REMOVE(&l->job->waiters, l, entry);
	free(l);
}

void
sts_refresh(struct sts *s, time_t within)
{
	time_t now = sts_now(s);
	struct sts_job *job;
	char **v;
	size_t i;

	/* An expired policy is never applied again (§5.1): drop it. */
	if (sts_cache_purge(s->cache, now) == -1 ||
	    (v = sts_cache_expiring(
	         s->cache, now, now + within, STS_REFRESH_MAX)) == NULL) {
		log_warnx("MTA-STS cache: %s", sts_cache_error(s->cache));
		return;
	}
	for (i = 0; v[i] != NULL; i++) {
		if (sts_job_find(s, v[i], false) != NULL)
			continue; /* a lookup is on it already */
		job = sts_job_new(s, v[i], true);
		sts_job_start(job);
	}
	str_vec_free(v);
}

/* ------------------------------------------------------------------ */
/* Test entry points (sts_int.h). */

struct sts_lookup *
sts_get_with_txt(struct sts *s, const char *domain, char *const *txt, size_t n,
    bool txt_error, sts_cb *cb, void *arg)
{
	char *key = sts_domain_key(domain);
	struct sts_job *job = sts_job_find(s, key, false);
	struct sts_lookup *l;

	if (job != NULL) {
		free(key);
		return sts_job_wait(job, cb, arg);
	}
	job = sts_job_new(s, key, false);
	free(key);
	l = sts_job_wait(job, cb, arg);
	if (txt_error)
		sts_job_error(job, xstrdup("TXT lookup failed (test)"));
	sts_job_txt(job, txt, n, txt_error);
	return l;
}

void
sts_test_addr(struct sts *s, const char *addr)
{
	free(s->test_addr);
	s->test_addr = addr != NULL ? xstrdup(addr) : NULL;
}

void
sts_test_clock(struct sts *s, time_t now)
{
	s->test_now = now;
}

void
sts_test_backoff(struct sts *s, time_t seconds)
{
	s->backoff = seconds;
}
