/*
 * check_run: drive the delivery engine over one or many domains on one
 * event loop and record what happened. The decisions are the engine's
 * (dane_mx, dane_host, dane_outcome); this file only sequences them and
 * keeps the facts.
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_int.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dane/dane_host.h"
#include "dane/dane_mx.h"
#include "dns/dns.h"
#include "tls/tls_cert.h"
#include "tls/tls_client.h"

struct check_run {
	struct event_base *base;
	struct dns_resolver *resolver;
	SSL_CTX *ctx;
	const struct check_opts *opts;
	struct check_domain **domains;
	size_t n;
	size_t pending;
	/* check_run_start(): the caller's completion callback, run by
	 * done_ev from the top of the loop, never nested in the engine's. */
	check_run_done_fn *done;
	void *done_arg;
	struct event *done_ev;
};

static void check_domain_settle(struct check_domain *d);
static void check_host_trace(struct check_host *h);

const char *
check_verdict_str(enum check_verdict v)
{
	static const char *const names[] = { "verified", "trusted", "encrypted",
		"opportunistic", "defer", "bounce" };

	return (unsigned)v < 6 ? names[v] : "?";
}

struct check_run *
check_run_new(struct event_base *base, struct dns_resolver *r, SSL_CTX *ctx,
    const struct check_opts *opts)
{
	struct check_run *run = xcalloc(1, sizeof(*run));

	run->base = base;
	run->resolver = r;
	run->ctx = ctx;
	run->opts = opts;
	return run;
}

static void
check_conn_clear(struct check_conn *c)
{
	smtp_session_free(c->session);
	str_vec_free(c->ehlo);
	free(c->tls_version);
	free(c->tls_cipher);
	free(c->sni);
	free(c->peername);
	tls_chain_free(c->chain);
}

static void
check_domain_free(struct check_domain *d)
{
	size_t i, j;

	dane_mx_cancel(d->mx_lookup);
	dane_mx_free(d->mx);
	for (i = 0; i < d->nhost; i++) {
		struct check_host *h = &d->hosts[i];

		dane_host_cancel(h->lookup);
		for (j = 0; j < h->nconn; j++)
			check_conn_clear(&h->conns[j]);
		dane_host_free(h->dh);
		free(h->name);
	}
	for (i = 0; i < d->nwarn; i++) {
		free(d->warnings[i].code);
		free(d->warnings[i].text);
	}
	free(d->warnings);
	check_trace_free(d);
	if (d->sts_l != NULL)
		sts_lookup_cancel(d->sts_l);
	if (d->sts_policy != NULL)
		sts_policy_free(d->sts_policy);
	free(d->sts_error);
	free(d->sts_txt_id);
	free(d->name);
	free(d);
}

void
check_run_free(struct check_run *run)
{
	size_t i;

	if (run == NULL)
		return;
	for (i = 0; i < run->n; i++)
		check_domain_free(run->domains[i]);
	if (run->done_ev != NULL)
		event_free(run->done_ev);
	free(run->domains);
	free(run);
}

size_t
check_run_count(const struct check_run *run)
{
	return run->n;
}

const struct check_domain *
check_run_domain(const struct check_run *run, size_t i)
{
	ASSERT(i < run->n);
	return run->domains[i];
}

enum check_verdict
check_domain_verdict(const struct check_domain *d)
{
	return d->verdict;
}

const struct check_opts *
check_domain_opts(const struct check_domain *d)
{
	return d->run->opts;
}

void
check_run_add(struct check_run *run, const char *domain)
{
	struct check_domain *d = xcalloc(1, sizeof(*d));
	size_t len;

	d->run = run;
	d->name = xstrdup(domain);
	str_lower(d->name);
	/* "example.com." and "example.com" are the same next hop. */
	len = strlen(d->name);
	if (len > 1 && d->name[len - 1] == '.')
		d->name[len - 1] = '\0';
	outcome_ok(&d->outcome);
	run->domains =
	    xreallocarray(run->domains, run->n + 1, sizeof(*run->domains));
	run->domains[run->n++] = d;
}

struct dns_resolver *
check_domain_resolver(const struct check_domain *d)
{
	return d->run->resolver;
}

/* One more or one less thing in flight for d; judge d at zero. */
void
check_domain_ref(struct check_domain *d)
{
	d->pending++;
}

void
check_domain_unref(struct check_domain *d)
{
	ASSERT(d->pending > 0);
	if (--d->pending == 0)
		check_domain_settle(d);
}

static void
check_domain_settle(struct check_domain *d)
{
	struct check_run *run = d->run;

	check_domain_judge(d, run->opts);
	d->done = true;
	if (--run->pending > 0)
		return;
	if (run->done_ev != NULL)
		event_active(run->done_ev, EV_TIMEOUT, 0);
	else
		event_base_loopexit(run->base, NULL);
}

static void
check_run_finished(evutil_socket_t fd, short what, void *arg)
{
	struct check_run *run = arg;

	(void)fd;
	(void)what;
	/* The callback may free run: nothing of it is touched after. */
	run->done(run, run->done_arg);
}

static SSL *
check_conn_tls_new(void *arg)
{
	struct check_conn *c = arg;
	SSL *ssl;

	if (c->host->sts_use != POLICY_STS_OFF) {
		/* RFC 8461 §4.2: PKIX validation for the MX name. */
		if ((ssl = SSL_new(c->host->domain->run->ctx)) != NULL)
			policy_sts_ssl(ssl, c->host->name);
	} else {
		ssl = dane_host_ssl_new(
		    c->host->dh, c->host->domain->run->ctx, &c->ssl_error);
	}
	if (ssl != NULL) {
		const char *sni =
		    SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

		c->sni = xstrdup(sni != NULL ? sni : "");
	}
	return ssl;
}

/* Record what the handshake showed, then judge it as the relay would. */
static bool
check_conn_on_tls(struct smtp_session *s, SSL *ssl, void *arg)
{
	struct check_conn *c = arg;
	const char *peer;

	c->tls = true;
	c->tls_version = xstrdup(tls_version_str(ssl));
	c->tls_cipher = xstrdup(tls_cipher_str(ssl));
	c->chain = tls_chain_from_ssl(ssl);
	c->verify_err = tls_verify_result(ssl);
	c->matched_depth = tls_dane_matched(ssl, &c->mu, &c->ms, &c->mm);
	peer = tls_peername(ssl);
	c->peername = peer != NULL ? xstrdup(peer) : NULL;
	if (c->host->sts_use == POLICY_STS_ENFORCE)
		return policy_sts_verify(ssl, c->host->name, &c->outcome);
	if (c->host->sts_use == POLICY_STS_TESTING) {
		/* RFC 8461 §5: testing mode reports and delivers anyway. */
		policy_sts_verify(ssl, c->host->name, &c->sts_warn);
		return true;
	}
	/* A failed DANE check ends the session, exactly like delivery. */
	return dane_host_verify(c->host->dh, ssl, &c->outcome);
}

static void
check_conn_on_ready(struct smtp_session *s, void *arg)
{
	struct check_conn *c = arg;
	size_t i, n = smtp_session_ehlo_count(s);

	c->ehlo = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++)
		c->ehlo[i] = xstrdup(smtp_session_ehlo_line(s, i));
	smtp_session_quit(s);
}

static void
check_conn_on_done(
    struct smtp_session *s, const struct smtp_result *res, void *arg)
{
	struct check_conn *c = arg;
	struct check_host *h = c->host;

	c->res = *res;
	c->done = true;
	if (res->error == SMTP_ERR_TLS_HANDSHAKE && c->ssl_error != NULL)
		snprintf(c->res.error_text, sizeof(c->res.error_text), "%s",
		    c->ssl_error);
	/* The DANE verdict (on_tls) wins over what followed it. */
	if (outcome_is_ok(&c->outcome) && h->sts_use == POLICY_STS_ENFORCE)
		policy_sts_session(&c->outcome, res, h->name);
	else if (outcome_is_ok(&c->outcome))
		dane_outcome_smtp(
		    &c->outcome, res, dane_host_level(h->dh), h->name);
	smtp_session_free(s);
	c->session = NULL;
	check_domain_unref(h->domain);
}

static void
check_host_connect(struct check_host *h)
{
	const struct check_opts *o = h->domain->run->opts;
	struct smtp_session_params p;
	size_t i, n = dane_host_addr_count(h->dh);
	enum dane_level level = dane_host_level(h->dh);

	h->sts_use = policy_sts_use(h->domain->sts_policy, level);
	if (h->sts_use == POLICY_STS_ENFORCE &&
	    !policy_sts_mx_ok(h->domain->sts_policy, h->name, &h->outcome)) {
		h->sts_refused = true; /* §4.1: not a host of the policy */
		return;
	}
	for (i = 0; i < n && i < CHECK_MAX_CONNS; i++) {
		struct check_conn *c = &h->conns[h->nconn++];

		c->host = h;
		c->matched_depth = -1;
		outcome_ok(&c->outcome);
		outcome_ok(&c->sts_warn);
		snprintf(c->addr, sizeof(c->addr), "%s",
		    dane_host_addr_str(h->dh, i));
		memset(&p, 0, sizeof(p));
		p.addr = dane_host_addr(h->dh, i, &p.addrlen);
		p.helo_name = o->helo_name;
		p.connect_timeout_ms = o->connect_timeout_ms;
		p.greeting_timeout_ms = o->greeting_timeout_ms;
		p.command_timeout_ms = o->command_timeout_ms;
		/* RFC 7672 §2.2: any secure TLSA RRset makes TLS mandatory. */
		p.tls_mode = level == DANE_LEVEL_OPPORTUNISTIC &&
		        h->sts_use != POLICY_STS_ENFORCE ?
		    SMTP_TLS_OPPORTUNISTIC :
		    SMTP_TLS_REQUIRED;
		p.tls_new = check_conn_tls_new;
		p.on_tls = check_conn_on_tls;
		p.on_ready = check_conn_on_ready;
		p.on_done = check_conn_on_done;
		p.arg = c;
		h->domain->pending++;
		c->session = smtp_session_start(h->domain->run->base, &p);
	}
}

static void
check_host_trace(struct check_host *h)
{
	size_t i;

	check_trace_cnames(h->domain, dane_host_answer_a(h->dh));
	check_trace_cnames(h->domain, dane_host_answer_aaaa(h->dh));
	for (i = 0; i < dane_host_tlsa_tried(h->dh); i++)
		check_trace_cnames(h->domain, dane_host_tlsa_answer(h->dh, i));
}

static void
check_host_resolved(struct dane_host *dh, void *arg)
{
	struct check_host *h = arg;

	h->lookup = NULL;
	h->dh = dh;
	check_host_trace(h);
	if (dane_host_level(dh) != DANE_LEVEL_UNUSABLE &&
	    h->domain->run->opts->connect) {
		if (h->domain->sts_pending)
			h->wait_sts =
			    true; /* connect once the policy is known */
		else
			check_host_connect(h);
	}
	check_domain_unref(h->domain);
}

static void
check_host_start(struct check_domain *d, const char *name, uint16_t pref)
{
	struct check_host *h = &d->hosts[d->nhost++];
	const struct check_opts *o = d->run->opts;
	struct dane_host_params p;

	h->domain = d;
	h->name = xstrdup(name);
	h->pref = pref;
	outcome_ok(&h->outcome);
	memset(&p, 0, sizeof(p));
	p.host = name;
	p.port = o->port;
	p.digests = o->digests;
	if (d->route) {
		p.via = DANE_VIA_ROUTE;
	} else {
		p.nexthop = d->name;
		p.nexthop_expanded = dane_mx_expanded(d->mx);
		p.nexthop_secure = dane_mx_secure(d->mx);
		if (dane_mx_kind(d->mx) == DANE_MX_IMPLICIT)
			p.via = DANE_VIA_IMPLICIT;
		else
			p.via = dane_mx_secure(d->mx) ? DANE_VIA_MX_SECURE :
			                                DANE_VIA_MX_INSECURE;
	}
	d->pending++;
	h->lookup =
	    dane_host_resolve(d->run->resolver, &p, check_host_resolved, h);
}

static void
check_mx_resolved(struct dane_mx *mx, void *arg)
{
	struct check_domain *d = arg;
	size_t i, n;

	d->mx_lookup = NULL;
	d->mx = mx;
	check_trace_cnames(d, dane_mx_answer(mx));
	n = dane_mx_count(mx);
	for (i = 0; i < n && i < CHECK_MAX_HOSTS; i++)
		check_host_start(d, dane_mx_host(mx, i), dane_mx_pref(mx, i));
	d->ignored_hosts = n > CHECK_MAX_HOSTS ? n - CHECK_MAX_HOSTS : 0;
	check_domain_unref(d);
}

static void
check_sts_done(const struct sts_result *res, void *arg)
{
	struct check_domain *d = arg;
	size_t i;

	d->sts_l = NULL;
	d->sts_pending = false;
	d->sts_looked = true;
	d->sts_state = res->state;
	d->sts_policy =
	    res->policy != NULL ? sts_policy_dup(res->policy) : NULL;
	d->sts_error = res->error != NULL ? xstrdup(res->error) : NULL;
	d->sts_txt_id = res->txt_id != NULL ? xstrdup(res->txt_id) : NULL;
	d->sts_from_cache = res->from_cache;
	for (i = 0; i < d->nhost; i++) {
		if (d->hosts[i].wait_sts) {
			d->hosts[i].wait_sts = false;
			check_host_connect(&d->hosts[i]);
		}
	}
	check_domain_unref(d);
}

/* RFC 8461 §3: the policy is looked up beside the MX RRset. */
static void
check_sts_start(struct check_domain *d)
{
	struct sts *sts = d->run->opts->sts;

	if (sts == NULL || d->route)
		return;
	d->sts_pending = true;
	d->pending++;
	d->sts_l = sts_get(sts, d->name, false, check_sts_done, d);
}

void
check_run_start(struct check_run *run, check_run_done_fn *done, void *arg)
{
	size_t i;

	ASSERT(run->done_ev == NULL);
	if (done != NULL) {
		run->done = done;
		run->done_arg = arg;
		run->done_ev = evtimer_new(run->base, check_run_finished, run);
	}
	run->pending = run->n;
	for (i = 0; i < run->n; i++) {
		struct check_domain *d = run->domains[i];
		const char *err = dns_name_check(d->name);

		d->pending = 1;
		if (err != NULL) {
			outcome_set(&d->outcome, OUTCOME_PERM, "5.1.2", RT_NONE,
			    "'%s' is not a valid domain name: %s", d->name,
			    err);
			check_domain_unref(d);
		} else if (run->opts->route != NULL) {
			d->route = true;
			check_host_start(d, run->opts->route, 0);
			check_domain_unref(d);
		} else {
			check_sts_start(d);
			d->mx_lookup = dane_mx_resolve(
			    run->resolver, d->name, check_mx_resolved, d);
		}
	}
	if (run->n == 0 && run->done_ev != NULL)
		event_active(run->done_ev, EV_TIMEOUT, 0);
}

void
check_run_go(struct check_run *run)
{
	check_run_start(run, NULL, NULL);
	if (run->pending > 0)
		event_base_dispatch(run->base);
}
