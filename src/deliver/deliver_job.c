/*
 * deliver_job: one attempt for a batch of recipients of one destination:
 * MX resolution (or the configured route), then the MX hosts in preference
 * order (RFC 7672 §2.2.1), each through dane_host (addresses, TLSA, level),
 * the per-destination policy on top, and one SMTP session over which every
 * message of the batch is sent in turn. The first session that reaches the
 * READY state carries the mail; failures before it move on to the next
 * address or host. All outcomes go to deliver_decide().
 */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dane/dane_host.h"
#include "dane/dane_mx.h"
#include "dane/dane_outcome.h"
#include "dane/dane_tlsa.h"
#include "deliver/deliver_int.h"
#include "dns/dns.h"
#include "policy/policy_sts.h"
#include "tlsrpt/tlsrpt.h"
#include "sts/sts.h"
#include "tls/tls_client.h"

#define JOB_MAX_ADDRS 4

struct job {
	TAILQ_ENTRY(job) entry; /* in deliver's list, for shutdown */
	struct deliver *d;
	struct ddest *dest;
	struct policy_dest pol;
	/* pol.route_host's own copy: a SIGHUP frees the policy it came
	 * from while the job waits for DNS; pol.exception is not kept. */
	char *route_host;
	struct dmsg *msgs;
	size_t nmsg;
	size_t cur; /* message in transaction */

	struct dane_mx_lookup *mxl;
	struct dane_mx *mx;
	char **hosts; /* route host or MX hosts in order */
	size_t nhost, hi;
	bool mx_secure;
	enum dane_via via;
	struct dane_host_lookup *hl;
	struct dane_host *host;
	size_t ai; /* address index within host */

	struct smtp_session *sess;
	bool verify; /* check the DANE result in on_tls */
	/* MTA-STS (RFC 8461), looked up beside the MX RRset */
	struct sts_lookup *stsl;
	bool sts_pending;
	bool plain; /* a TLS report's cleartext retry (RFC 8460 §3) */
	char sts_txt_id[STS_ID_MAX + 1]; /* id of the policy in use */
	bool sts_rechecked; /* RFC 8461 §5 re-check before a bounce */
	bool mx_ready;      /* MX known, waiting for the STS lookup */
	struct sts_policy *sts_policy;
	enum policy_sts_use sts_use; /* for the current host */
	bool tls_required;
	struct dfacts facts;
	bool connected; /* some session reached READY */
	/* a connection was tried: only then does the job say anything
	 * about dest for the dead-destination cache (not when DNS is down,
	 * an MX lookup failed, or dest was dead already and not tried) */
	bool dialed;
	bool have_fail;
	struct outcome fail;      /* most preferred host's failure */
	struct dfacts fail_facts; /* where it happened */
	struct outcome sess_fail; /* set by on_tls when DANE rejects the peer */
	bool sess_rejected;
	struct event *finish_ev;
	/* connection reuse across jobs (deliver_job_idle_take) */
	enum { JOB_BUSY, JOB_SETTLING, JOB_IDLE } state;
	struct event *idle_ev;
	unsigned conn_msgs; /* transactions over this connection */
	TAILQ_ENTRY(job) idle_entry;
};

static void job_next_host(struct job *j);
static void job_next_addr(struct job *j);
static void job_send_next(struct job *j);
static void job_msgs_free(struct job *j);
static void job_unidle(struct job *j);
static void job_group(struct job *j, struct drcpt **rcpts, size_t n);
static bool job_operator_bounces(struct job *j);

/* --- finishing --- */

static void
job_free(struct job *j)
{
	job_msgs_free(j);
	dane_mx_cancel(j->mxl);
	dane_mx_free(j->mx);
	if (j->stsl != NULL)
		sts_lookup_cancel(j->stsl);
	if (j->sts_policy != NULL)
		sts_policy_free(j->sts_policy);
	dane_host_cancel(j->hl);
	dane_host_free(j->host);
	str_vec_free(j->hosts);
	free(j->route_host);
	smtp_session_free(j->sess);
	if (j->finish_ev != NULL)
		event_free(j->finish_ev);
	if (j->idle_ev != NULL)
		event_free(j->idle_ev);
	free(j);
}

/* What sending m needed (job_prepare): its transaction, the reply slots,
 * the recipient and parameter vectors. */
static void
job_msg_send_free(struct dmsg *m)
{
	size_t k;

	free(m->txn);
	m->txn = NULL;
	free(m->replies);
	m->replies = NULL;
	free(m->addrs); /* the strings belong to the drcpts */
	m->addrs = NULL;
	for (k = 0; m->params != NULL && k < m->nopen; k++)
		free(m->params[k]); /* may hold NULLs: not a vector */
	free(m->params);
	m->params = NULL;
	free(m->mail_params);
	m->mail_params = NULL;
	free(m->open);
	m->open = NULL;
	m->nopen = 0;
}

/* The messages of j are decided: outcomes written, memory freed. */
static void
job_msgs_free(struct job *j)
{
	size_t i, k;

	for (i = 0; i < j->nmsg; i++) {
		struct dmsg *m = &j->msgs[i];

		job_msg_send_free(m);
		for (k = 0; k < m->n; k++)
			drcpt_free(m->rcpts[k]);
		free(m->rcpts);
		queue_msg_free(m->msg);
	}
	free(j->msgs);
	j->msgs = NULL;
	j->nmsg = j->cur = 0;
}

/*
 * Hand the outcome of every recipient of j still here (not sent, or
 * failed with the connection; f: the facts of the attempt, or NULL) to
 * deliver_hold.c, which writes them with the next group commit. Those
 * whose transaction ended went there from job_txn_done already.
 */
static void
job_settle(struct job *j, const struct dfacts *f)
{
	size_t i, k;

	for (i = 0; i < j->nmsg; i++) {
		struct dmsg *m = &j->msgs[i];

		job_msg_send_free(m);
		for (k = 0; k < m->n; k++) {
			struct drcpt *r = m->rcpts[k];

			if (r->done)
				continue;
			if (j->have_fail)
				*r->o = j->fail;
			if (outcome_is_ok(r->o))
				outcome_set(r->o, OUTCOME_TEMP, "4.4.7",
				    RT_NONE, "no attempt could be made");
		}
	}
	/* They are deliver_hold's now: written, or kept until they can be. */
	deliver_outcomes(j->d, j->msgs, j->nmsg, f);
	j->msgs = NULL;
	j->nmsg = j->cur = 0;
}

/* Runs at the top of the loop: decide everything, free, tell deliver.c. */
static void
job_finish_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct job *j = arg;
	struct deliver *d = j->d;
	struct ddest *dest = j->dest;
	bool connected = j->connected, counts = j->dialed;

	if (!connected && counts && j->have_fail)
		dest->dead_reason = j->fail;
	job_settle(j,
	    j->connected     ? &j->facts :
	        j->have_fail ? &j->fail_facts :
	                       NULL);
	TAILQ_REMOVE(&d->joblist, j, entry);
	job_free(j);
	deliver_job_finished(d, dest, connected, counts);
}

static void
job_finish(struct job *j)
{
	if (j->finish_ev != NULL)
		return; /* already on its way out */
	j->finish_ev = evtimer_new(j->d->cfg.base, job_finish_cb, j);
	event_active(j->finish_ev, EV_TIMEOUT, 0);
}

/* Remember the failure of the most preferred host (what must be fixed). */
static void
job_fail(struct job *j, const struct outcome *o)
{
	if (!j->have_fail) {
		j->fail = *o;
		j->fail_facts = j->facts;
		j->have_fail = true;
	}
}

/* Every recipient of the job gets o now (final for this attempt). */
static void
job_fail_all(struct job *j, const struct outcome *o)
{
	size_t i, k;

	for (i = 0; i < j->nmsg; i++)
		for (k = 0; k < j->msgs[i].n; k++)
			if (!j->msgs[i].rcpts[k]->done) {
				*j->msgs[i].rcpts[k]->o = *o;
				j->msgs[i].rcpts[k]->done = true;
			}
	job_finish(j);
}

/* --- policy per host --- */

/* Log-only: remember the first thing that would have failed. */
static void
job_would(struct job *j, const struct outcome *o)
{
	if (!j->facts.would_fail) {
		j->facts.would = *o;
		j->facts.would_fail = true;
		j->facts.would_report_only = j->sts_use == POLICY_STS_TESTING;
	}
}

/*
 * RFC 8461 for a host without DANE: enforce keeps MX hosts outside the
 * policy away (§4.1) and requires TLS with PKIX (§4.2); testing only
 * reports. Returns false with *o when the host must not be used.
 */
static bool
job_host_sts(struct job *j, struct outcome *o)
{
	j->sts_use = j->pol.security == POLICY_DANE ?
	    policy_sts_use(j->sts_policy, DANE_LEVEL_OPPORTUNISTIC) :
	    POLICY_STS_OFF;
	if (j->sts_use == POLICY_STS_OFF)
		return true;
	j->facts.policy = "mta-sts";
	if (!policy_sts_mx_ok(j->sts_policy, dane_host_name(j->host), o)) {
		if (j->sts_use == POLICY_STS_ENFORCE && !j->pol.log_only)
			return false;
		job_would(j, o);
	}
	if (j->sts_use == POLICY_STS_ENFORCE)
		j->tls_required = true;
	return true;
}

/*
 * How to connect to this host under the destination's policy. Returns
 * false with *o when the host must not be used (in enforce mode).
 */
static bool
job_host_policy(struct job *j, struct outcome *o)
{
	const struct dane_host *h = j->host;
	enum dane_level level = dane_host_level(h);
	bool log_only = j->pol.log_only;

	j->verify = false;
	j->tls_required = false;
	j->sts_use = POLICY_STS_OFF;
	j->facts.policy = dane_host_level(h) == DANE_LEVEL_AUTH ||
	        dane_host_level(h) == DANE_LEVEL_ENCRYPT ?
	    "dane" :
	    "none";
	if (dane_host_addr_count(h) == 0) {
		*o = *dane_host_outcome(h);
		return false;
	}
	switch (j->pol.security) {
	case POLICY_MAY:
		return true;
	case POLICY_ENCRYPT:
		j->tls_required = true;
		return true;
	case POLICY_DANE_ONLY:
		/* RFC 7672 §6: a secure MX RRset and usable secure TLSA. */
		if (!j->mx_secure || level != DANE_LEVEL_AUTH) {
			outcome_set(o, OUTCOME_TEMP, "4.7.323",
			    RT_DANE_REQUIRED,
			    "DANE is mandatory for %s, but %s", j->dest->domain,
			    !j->mx_secure ?
			        "its MX RRset is not DNSSEC-signed" :
			        "the MX host has no usable secure "
			        "TLSA records");
			if (!log_only)
				return false;
			job_would(j, o);
		}
		break;
	case POLICY_DANE:
		break;
	}
	switch (level) {
	case DANE_LEVEL_AUTH:
		j->verify = true;
		j->tls_required = true;
		break;
	case DANE_LEVEL_ENCRYPT:
		j->tls_required = true;
		break;
	case DANE_LEVEL_OPPORTUNISTIC:
		return job_host_sts(j, o);
	case DANE_LEVEL_UNUSABLE:
		*o = *dane_host_outcome(h);
		if (!log_only)
			return false;
		job_would(j, o);
		break;
	}
	return true;
}

/* --- TLS-RPT (RFC 8460 §4): one record per TLS negotiation --- */

#define JOB_TLSRPT_MAX 64

/* An MTA-STS policy's lines and mx patterns (none for NULL), borrowed. */
static void
job_tlsrpt_sts(const struct sts_policy *p, const char **strs, size_t *ns,
    const char **mx, size_t *nmx)
{
	size_t i;

	for (i = 0;
	     p != NULL && i < sts_policy_line_count(p) && i < JOB_TLSRPT_MAX;
	     i++)
		strs[(*ns)++] = sts_policy_line(p, i);
	for (i = 0;
	     p != NULL && i < sts_policy_mx_count(p) && i < JOB_TLSRPT_MAX; i++)
		mx[(*nmx)++] = sts_policy_mx(p, i);
}

/* Which policy governed the current host, with its strings. */
static enum tlsrpt_policy_type
job_tlsrpt_policy(struct job *j, char **owned, const char **strs, size_t *ns,
    const char **mx, size_t *nmx)
{
	const struct dane_tlsa *t = dane_host_tlsa(j->host);
	size_t i;

	*ns = *nmx = 0;
	if (t != NULL) {
		for (i = 0; i < dane_tlsa_count(t) && i < JOB_TLSRPT_MAX; i++)
			strs[(*ns)++] = owned[i] = dane_tlsa_str(t, i);
		return TLSRPT_TLSA;
	}
	if (j->sts_use == POLICY_STS_OFF)
		return TLSRPT_NO_POLICY;
	job_tlsrpt_sts(j->sts_policy, strs, ns, mx, nmx);
	return TLSRPT_STS;
}

/* Count one session to the current host: success, or failure of rt. */
static void
job_tlsrpt(struct job *j, bool success, enum result_type rt)
{
	const char *strs[JOB_TLSRPT_MAX], *mx[JOB_TLSRPT_MAX];
	char *owned[JOB_TLSRPT_MAX] = { NULL };
	struct tlsrpt_session t;
	size_t i;

	/*
	 * RFC 8460 §3: report mail is not counted in the next report. A
	 * configured route (a [domain] route, the relayhost) is no MX of the
	 * policy domain and its TLSA records are not the domain's policy
	 * (RFC 8460 §4.3.1): reporting them to the domain would be wrong.
	 */
	if (j->d->cfg.tlsrpt == NULL || j->host == NULL || j->dest->report ||
	    j->pol.route_host != NULL)
		return;
	memset(&t, 0, sizeof(t));
	t.when = time(NULL);
	t.policy_domain = j->dest->domain;
	t.type = job_tlsrpt_policy(
	    j, owned, strs, &t.npolicy_strings, mx, &t.nmx_hosts);
	t.policy_strings = strs;
	t.mx_hosts = mx;
	t.success = success;
	t.result_type = success         ? NULL :
	    result_type_str(rt) != NULL ? result_type_str(rt) :
	                                  "validation-failure";
	t.receiving_mx_hostname = dane_host_name(j->host);
	t.receiving_ip = j->facts.ip[0] != '\0' ? j->facts.ip : NULL;
	if (tlsrpt_store_record(j->d->cfg.tlsrpt, &t) == -1)
		log_warnx("TLS-RPT: cannot record a session: %s",
		    tlsrpt_store_error(j->d->cfg.tlsrpt));
	for (i = 0; i < JOB_TLSRPT_MAX; i++)
		free(owned[i]);
}

/*
 * RFC 8461 §6: a policy that could not be fetched or authenticated is a
 * reportable failure, also when the mail then goes out without MTA-STS
 * (§3.3: no policy applies) or under a cached policy. It is a failure of
 * the policy discovery of this delivery attempt, counted once as one
 * failed session (RFC 8460 §4.2.2) under policy-type "sts" with the
 * RFC 8460 §4.3.2.2 result type: without policy strings when nothing was
 * cached (as Microsoft's and Stalwart's reports carry it), else under the
 * cached policy's. The sessions that follow are counted as usual, under
 * the policy that applied to them. A cached policy of mode none is the
 * domain's opt-out and is not reported (§6).
 */
static void
job_tlsrpt_discovery(struct job *j, const struct sts_result *res)
{
	const char *strs[JOB_TLSRPT_MAX], *mx[JOB_TLSRPT_MAX];
	struct tlsrpt_session t;

	/* RFC 8460 §3: report mail is not counted in the next report. */
	if (j->d->cfg.tlsrpt == NULL || j->dest->report ||
	    res->fetch_rt == RT_NONE ||
	    (res->policy != NULL &&
	        sts_policy_mode(res->policy) == STS_MODE_NONE))
		return;
	memset(&t, 0, sizeof(t));
	t.when = time(NULL);
	t.policy_domain = j->dest->domain;
	t.type = TLSRPT_STS;
	job_tlsrpt_sts(res->policy, strs, &t.npolicy_strings, mx, &t.nmx_hosts);
	t.policy_strings = strs;
	t.mx_hosts = mx;
	t.success = false;
	t.result_type = result_type_str(res->fetch_rt);
	t.failure_reason_code = res->fetch_error;
	if (tlsrpt_store_record(j->d->cfg.tlsrpt, &t) == -1)
		log_warnx("TLS-RPT: cannot record a policy fetch failure: %s",
		    tlsrpt_store_error(j->d->cfg.tlsrpt));
}

/* --- session callbacks --- */

static SSL *
job_tls_new(void *arg)
{
	struct job *j = arg;
	const char *err = NULL;
	SSL *ssl;

	if (j->sts_use != POLICY_STS_OFF) {
		if ((ssl = SSL_new(j->d->cfg.tls)) != NULL)
			policy_sts_ssl(ssl, dane_host_name(j->host));
		return ssl;
	}
	if (j->verify) /* DANE is checked (not under may, encrypt, reports) */
		return dane_host_ssl_new(j->host, j->d->cfg.tls, &err);
	if ((ssl = SSL_new(j->d->cfg.tls)) != NULL)
		tls_plain_setup(ssl, dane_host_name(j->host));
	return ssl;
}

/* RFC 8461 §4.2: PKIX for the MX name; testing mode only reports. */
static bool
job_on_tls_sts(struct job *j, SSL *ssl)
{
	struct outcome o;

	if (policy_sts_verify(ssl, dane_host_name(j->host), &o)) {
		j->facts.tls = "verified";
		return true;
	}
	if (j->sts_use == POLICY_STS_TESTING || j->pol.log_only) {
		job_would(j, &o);
		return true;
	}
	j->sess_fail = o;
	j->sess_rejected = true;
	return false;
}

static bool
job_on_tls(struct smtp_session *s, SSL *ssl, void *arg)
{
	struct job *j = arg;
	uint8_t u, sel, m;
	struct outcome o;

	snprintf(j->facts.tls_version, sizeof(j->facts.tls_version), "%s",
	    tls_version_str(ssl));
	snprintf(j->facts.cipher, sizeof(j->facts.cipher), "%s",
	    tls_cipher_str(ssl));
	j->facts.tls = "encrypted";
	if (j->sts_use != POLICY_STS_OFF)
		return job_on_tls_sts(j, ssl);
	if (!j->verify)
		return true;
	if (dane_host_verify(j->host, ssl, &o)) {
		j->facts.tls =
		    dane_host_verified_path(j->host) ? "verified" : "trusted";
		if (tls_dane_matched(ssl, &u, &sel, &m) >= 0)
			snprintf(j->facts.tlsa, sizeof(j->facts.tlsa),
			    "%u-%u-%u", u, sel, m);
		snprintf(j->facts.tlsa_base, sizeof(j->facts.tlsa_base), "%s",
		    dane_host_base(j->host));
		return true;
	}
	if (j->pol.log_only) {
		job_would(j, &o);
		return true;
	}
	/* RFC 7672 §3.2: authentication failed: not this server. */
	j->sess_fail = o;
	j->sess_rejected = true;
	return false;
}

static void
job_on_ready(struct smtp_session *s, void *arg)
{
	struct job *j = arg;
	struct outcome o;

	j->connected = true;
	if (j->tls_required && smtp_session_ssl(s) == NULL) {
		/* Only in log-only mode with log_only_cleartext. */
		outcome_set(&o, OUTCOME_TEMP, "4.7.321",
		    RT_STARTTLS_NOT_SUPPORTED,
		    "%s does not offer STARTTLS "
		    "although TLS is required",
		    dane_host_name(j->host));
		job_would(j, &o);
	}
	if (j->facts.tls == NULL)
		j->facts.tls = "none";
	/* A TLS negotiation happened (or was required and missing). */
	if (smtp_session_ssl(s) != NULL || j->tls_required)
		job_tlsrpt(j,
		    smtp_session_ssl(s) != NULL && !j->facts.would_fail,
		    j->facts.would_fail ? j->facts.would.rt :
		                          RT_STARTTLS_NOT_SUPPORTED);
	job_send_next(j);
}

/*
 * RFC 8460 §3: report mail MUST be delivered despite TLS failures, "this
 * may mean that the reports are delivered unencrypted": when STARTTLS or
 * the handshake failed, try the same server once more in cleartext.
 */
static bool
job_report_plain(struct job *j, const struct smtp_result *res)
{
	if (!j->dest->report || j->plain)
		return false;
	if (res->error != SMTP_ERR_STARTTLS_REFUSED &&
	    res->error != SMTP_ERR_TLS_HANDSHAKE &&
	    res->phase != SMTP_PHASE_TLS_HANDSHAKE &&
	    res->phase != SMTP_PHASE_EHLO_TLS)
		return false;
	log_info("TLS report to %s: TLS with %s failed, sending it in "
	         "cleartext (RFC 8460 §3)",
	    j->dest->domain, dane_host_addr_str(j->host, j->ai));
	j->plain = true;
	return true;
}

static void
job_on_done(struct smtp_session *s, const struct smtp_result *res, void *arg)
{
	struct job *j = arg;
	struct outcome o;

	smtp_session_free(s);
	j->sess = NULL;
	job_unidle(j); /* an idle connection the server closed */
	if (j->connected) {
		/* Died during the transactions: the rest waits for a retry. */
		dane_outcome_smtp(
		    &o, res, dane_host_level(j->host), dane_host_name(j->host));
		if (outcome_is_ok(&o))
			outcome_set(&o, OUTCOME_TEMP, "4.4.2", RT_NONE,
			    "connection to %s ended early",
			    dane_host_name(j->host));
		job_fail_all(j, &o);
		return;
	}
	if (j->sess_rejected)
		o = j->sess_fail;
	else if (j->sts_use == POLICY_STS_ENFORCE)
		policy_sts_session(&o, res, dane_host_name(j->host));
	else
		dane_outcome_smtp(
		    &o, res, dane_host_level(j->host), dane_host_name(j->host));
	if (o.rt != RT_NONE)
		job_tlsrpt(j, false, o.rt);
	if (job_report_plain(j, res)) {
		job_next_addr(j); /* the same address, without STARTTLS */
		return;
	}
	job_fail(j, &o);
	j->ai++;
	j->plain = false;
	job_next_addr(j);
}

static void
job_next_addr(struct job *j)
{
	const struct deliver_config *c = &j->d->cfg;
	struct smtp_session_params p;
	size_t n = dane_host_addr_count(j->host);

	if (j->ai >= n || j->ai >= JOB_MAX_ADDRS) {
		dane_host_free(j->host);
		j->host = NULL;
		j->hi++;
		job_next_host(j);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.addr = dane_host_addr(j->host, j->ai, &p.addrlen);
	p.helo_name = c->hostname;
	p.connect_timeout_ms = c->connect_timeout_ms;
	p.greeting_timeout_ms = c->greeting_timeout_ms;
	p.command_timeout_ms = c->command_timeout_ms;
	p.data_timeout_ms = c->data_timeout_ms;
	p.tls_mode = j->plain ? SMTP_TLS_NONE :
	    !j->tls_required  ? SMTP_TLS_OPPORTUNISTIC :
	    j->pol.log_only && j->pol.log_only_cleartext ?
	                       SMTP_TLS_OPPORTUNISTIC :
	                       SMTP_TLS_REQUIRED;
	p.tls_new = job_tls_new;
	p.tls_gate = j->d->gate;
	p.on_tls = job_on_tls;
	p.on_ready = job_on_ready;
	p.on_done = job_on_done;
	p.arg = j;
	snprintf(j->facts.ip, sizeof(j->facts.ip), "%s",
	    dane_host_addr_str(j->host, j->ai));
	j->facts.port = j->pol.port;
	j->facts.tls = NULL;
	j->facts.tlsa[0] = '\0';
	j->facts.tlsa_base[0] = '\0';
	j->sess_rejected = false;
	j->dialed = true;
	j->sess = smtp_session_start(c->base, &p);
}

static void
job_host_resolved(struct dane_host *h, void *arg)
{
	struct job *j = arg;
	struct outcome o;

	j->hl = NULL;
	j->host = h;
	j->ai = 0;
	snprintf(j->facts.mx, sizeof(j->facts.mx), "%s", dane_host_name(h));
	j->facts.ip[0] = '\0';
	j->facts.would_fail = false;
	j->facts.would_report_only = false;
	if (dane_host_addr_warning(h) != NULL)
		log_info("delivery to %s: %s; using %s's other addresses (RFC "
		         "7672 §2.1.2)",
		    j->dest->domain, dane_host_addr_warning(h)->text,
		    dane_host_name(h));
	if (!job_host_policy(j, &o)) {
		if (o.rt != RT_NONE)
			job_tlsrpt(j, false, o.rt);
		job_fail(j, &o);
		dane_host_free(h);
		j->host = NULL;
		j->hi++;
		job_next_host(j);
		return;
	}
	job_next_addr(j);
}

/* Whether a recipient still open would be bounced by this failure. */
static bool
job_would_bounce(const struct job *j, time_t now)
{
	size_t i, k;

	for (i = 0; i < j->nmsg; i++)
		for (k = 0; k < j->msgs[i].n; k++) {
			const struct drcpt *r = j->msgs[i].rcpts[k];

			if (!r->done &&
			    now - r->queued_at >= j->d->cfg.max_lifetime)
				return true;
		}
	return false;
}

static void
job_sts_rechecked(const struct sts_result *res, void *arg)
{
	struct job *j = arg;

	j->stsl = NULL;
	if (res->state == STS_STATE_POLICY && res->policy != NULL &&
	    res->txt_id != NULL && strcmp(res->txt_id, j->sts_txt_id) != 0) {
		log_info("MTA-STS %s: the policy id changed (%s -> %s) before "
		         "a bounce; trying again under the new policy (RFC "
		         "8461 §5)",
		    j->dest->domain, j->sts_txt_id, res->txt_id);
		sts_policy_free(j->sts_policy);
		j->sts_policy = sts_policy_dup(res->policy);
		snprintf(
		    j->sts_txt_id, sizeof(j->sts_txt_id), "%s", res->txt_id);
		j->hi = 0;
		j->have_fail = false;
		job_next_host(j);
		return;
	}
	log_info("MTA-STS %s: policy id re-checked before the bounce: %s",
	    j->dest->domain,
	    res->txt_id != NULL ? res->txt_id : "no policy record");
	job_fail_all(j, &j->fail);
}

/*
 * RFC 8461 §5: "a compliant MTA MUST NOT permanently fail to deliver
 * messages before checking, via DNS, for the presence of an updated
 * policy". Before an enforce failure turns into a bounce, the TXT id is
 * looked up once more (sts_get with force_txt); a changed id means a new
 * policy (fetched by sts), and the hosts are tried again under it.
 * Returns true when the re-check was started.
 */
static bool
job_sts_recheck(struct job *j)
{
	if (j->sts_rechecked || j->d->cfg.sts == NULL ||
	    j->sts_policy == NULL || !j->have_fail ||
	    j->fail.cls != OUTCOME_TEMP || j->fail_facts.policy == NULL ||
	    strcmp(j->fail_facts.policy, "mta-sts") != 0 ||
	    sts_policy_mode(j->sts_policy) != STS_MODE_ENFORCE ||
	    !job_would_bounce(j, time(NULL)))
		return false;
	j->sts_rechecked = true;
	j->stsl =
	    sts_get(j->d->cfg.sts, j->dest->domain, true, job_sts_rechecked, j);
	return true;
}

static void
job_next_host(struct job *j)
{
	struct dane_host_params p;
	struct outcome o;

	if (j->hi >= j->nhost) {
		if (job_sts_recheck(j))
			return;
		if (!j->have_fail)
			outcome_set(&o, OUTCOME_TEMP, "4.4.4", RT_NONE,
			    "no usable MX host for %s", j->dest->domain);
		job_fail_all(j, j->have_fail ? &j->fail : &o);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.host = j->hosts[j->hi];
	p.port = j->pol.port;
	p.via = j->via;
	p.nexthop =
	    j->pol.route_host != NULL ? j->pol.route_host : j->dest->domain;
	p.nexthop_expanded = j->mx != NULL ? dane_mx_expanded(j->mx) : NULL;
	p.nexthop_secure = j->mx_secure;
	p.digests = j->d->cfg.digests;
	j->hl = dane_host_resolve(j->d->cfg.resolver, &p, job_host_resolved, j);
}

static void
job_mx_resolved(struct dane_mx *mx, void *arg)
{
	struct job *j = arg;
	size_t i;

	j->mxl = NULL;
	j->mx = mx;
	switch (dane_mx_kind(mx)) {
	case DANE_MX_NULL:
	case DANE_MX_NXDOMAIN:
	case DANE_MX_ERROR:
		/* Not bogus: no answer at all; maybe DNS itself is down. */
		if (strcmp(dane_mx_outcome(mx)->status, "4.4.3") == 0 &&
		    j->d->cfg.on_dns_error != NULL)
			j->d->cfg.on_dns_error(j->d->cfg.dns_arg);
		/* RFC 7672 §2.1.2: an MX lookup error defers the domain. */
		job_fail_all(j, dane_mx_outcome(mx));
		return;
	case DANE_MX_LIST:
	case DANE_MX_IMPLICIT:
		break;
	}
	j->mx_secure = dane_mx_secure(mx);
	j->via = dane_mx_kind(mx) == DANE_MX_IMPLICIT ? DANE_VIA_IMPLICIT :
	    j->mx_secure                              ? DANE_VIA_MX_SECURE :
	                                                DANE_VIA_MX_INSECURE;
	j->nhost = dane_mx_count(mx);
	j->hosts = xcalloc(j->nhost + 1, sizeof(char *));
	for (i = 0; i < j->nhost; i++)
		j->hosts[i] = xstrdup(dane_mx_host(mx, i));
	if (j->sts_pending) {
		j->mx_ready = true; /* hosts start once the policy is known */
		return;
	}
	job_next_host(j);
}

static void
job_sts_done(const struct sts_result *res, void *arg)
{
	struct job *j = arg;

	j->stsl = NULL;
	j->sts_pending = false;
	job_tlsrpt_discovery(j, res);
	if (res->state == STS_STATE_POLICY && res->policy != NULL)
		j->sts_policy = sts_policy_dup(res->policy);
	snprintf(j->sts_txt_id, sizeof(j->sts_txt_id), "%s",
	    res->txt_id != NULL ? res->txt_id : "");
	if (j->mx_ready)
		job_next_host(j);
}

/* --- transactions --- */

/* RFC 3461 §4: xtext for ENVID (stored decoded). Returns new. */
static char *
job_xtext(const char *s)
{
	struct buf b;
	const unsigned char *p;

	buf_init(&b, 4096);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			buf_printf(&b, "+%02X", *p);
		else
			buf_addc(&b, (char)*p);
	}
	return buf_steal(&b);
}

static char *
job_rcpt_params(const struct drcpt *r)
{
	struct buf b;

	buf_init(&b, 4096);
	if (r->notify & QUEUE_NOTIFY_NEVER)
		buf_adds(&b, "NOTIFY=NEVER");
	else if (r->notify != 0)
		buf_printf(&b, "NOTIFY=%s%s%s",
		    r->notify & QUEUE_NOTIFY_SUCCESS ? "SUCCESS," : "",
		    r->notify & QUEUE_NOTIFY_FAILURE ? "FAILURE," : "",
		    r->notify & QUEUE_NOTIFY_DELAY ? "DELAY," : "");
	if (b.len > 0 && b.data[b.len - 1] == ',')
		b.data[--b.len] = '\0';
	/*
	 * RFC 3461 §4.2: the queue keeps ORCPT as it was received,
	 * "addr-type;xtext" (smtp_cmd.c checked it), and it is passed on
	 * unchanged: encoding it again would turn "bob+2Bx" into
	 * "bob+2B2Bx".
	 */
	if (r->orcpt != NULL)
		buf_printf(&b, "%sORCPT=%s", b.len > 0 ? " " : "", r->orcpt);
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static char *
job_mail_params(const struct queue_msg *q)
{
	struct buf b;
	char *x;

	buf_init(&b, 4096);
	if (q->ret == QUEUE_RET_FULL)
		buf_adds(&b, "RET=FULL");
	else if (q->ret == QUEUE_RET_HDRS)
		buf_adds(&b, "RET=HDRS");
	if (q->envid != NULL) {
		x = job_xtext(q->envid);
		buf_printf(&b, "%sENVID=%s", b.len > 0 ? " " : "", x);
		free(x);
	}
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* Outcome of a remote reply (RFC 3463 code taken when it fits the class). */
static void
job_reply_outcome(struct outcome *o, const struct smtp_rcpt_reply *rep)
{
	int cls = rep->code / 100;
	const char *st = rep->status;

	if (cls != 2 && cls != 4 && cls != 5) {
		outcome_set(o, OUTCOME_TEMP, "4.4.2", RT_NONE,
		    "no valid reply: %s", rep->text);
		return;
	}
	if (st[0] != (char)('0' + cls))
		st = cls == 2 ? "2.0.0" : cls == 4 ? "4.0.0" : "5.0.0";
	outcome_set(o,
	    cls == 2     ? OUTCOME_OK :
	        cls == 4 ? OUTCOME_TEMP :
	                   OUTCOME_PERM,
	    st, RT_NONE, "%s", rep->text);
}

static void
job_rcpt_result(struct drcpt *r, const struct smtp_rcpt_reply *rep)
{
	job_reply_outcome(r->o, rep);
	free(r->remote);
	r->remote = xstrdup(rep->text);
	r->done = true;
}

/*
 * The transaction of m is over and its replies are copied into the
 * recipients: what only the sending needed goes now, so memory grows
 * with the recipients waiting to be decided, not with their messages.
 */
static void
job_msg_sent(struct dmsg *m)
{
	queue_msg_drop_body(m->msg);
	job_msg_send_free(m);
}

static void
job_txn_done(struct smtp_session *s, struct smtp_txn *t, void *arg)
{
	struct job *j = arg;
	struct dmsg *m = &j->msgs[j->cur];
	size_t k;

	for (k = 0; k < m->nopen; k++) {
		struct drcpt *r = m->rcpts[m->open[k]];

		switch (t->end) {
		case SMTP_TXN_OK:
			/* Accepted recipients share the reply to the dot. */
			job_rcpt_result(r,
			    m->replies[k].code / 100 == 2 ? &t->data_reply :
			                                    &m->replies[k]);
			break;
		case SMTP_TXN_MAIL_REJECTED:
			job_rcpt_result(r, &t->mail_reply);
			break;
		case SMTP_TXN_NO_RCPT:
			job_rcpt_result(r, &m->replies[k]);
			break;
		case SMTP_TXN_DATA_REJECTED:
			job_rcpt_result(r,
			    m->replies[k].code / 100 == 2 ? &t->data_reply :
			                                    &m->replies[k]);
			break;
		case SMTP_TXN_FAILED:
			/* on_done follows with the reason. */
			return;
		}
	}
	job_msg_sent(m);
	/* Its reply is in: to the queue now, not at the end of the job. */
	deliver_outcome(j->d, m, &j->facts);
	j->conn_msgs++;
	j->cur++;
	job_send_next(j);
}

/*
 * Prepare message m for its transaction, with the recipients still open:
 * one the operator returned to the sender (job_operator_bounces) is
 * decided and must not be sent to. 1 ready, 0 no recipient open (nothing
 * to send), -1 the message vanished.
 */
static int
job_prepare(struct job *j, struct dmsg *m)
{
	size_t k;

	m->open = xcalloc(m->n, sizeof(*m->open));
	m->nopen = 0;
	for (k = 0; k < m->n; k++)
		if (!m->rcpts[k]->done)
			m->open[m->nopen++] = k;
	if (m->nopen == 0 ||
	    (m->msg = queue_msg_get(j->d->cfg.queue, m->msgid)) == NULL) {
		k = m->nopen;
		job_msg_send_free(m);
		return k == 0 ? 0 : -1;
	}
	m->replies = xcalloc(m->nopen, sizeof(*m->replies));
	m->addrs = xcalloc(m->nopen + 1, sizeof(char *));
	m->params = xcalloc(m->nopen + 1, sizeof(char *));
	for (k = 0; k < m->nopen; k++) {
		m->addrs[k] = m->rcpts[m->open[k]]->addr;
		m->params[k] = job_rcpt_params(m->rcpts[m->open[k]]);
	}
	m->mail_params = job_mail_params(m->msg);
	m->txn = xcalloc(1, sizeof(*m->txn));
	m->txn->mail_from = m->msg->sender;
	m->txn->mail_params = m->mail_params;
	m->txn->body_8bit = m->msg->body_8bit;
	m->txn->smtputf8 = m->msg->smtputf8;
	m->txn->rcpts = m->addrs;
	m->txn->rcpt_params = m->params;
	m->txn->nrcpt = m->nopen;
	m->txn->data = m->msg->data;
	m->txn->len = m->msg->len;
	m->txn->rcpt_reply = m->replies;
	return 1;
}

/* --- connection reuse across jobs --- */

/* A healthy connection with room left may wait for more mail. */
static bool
job_can_idle(const struct job *j)
{
	return j->sess != NULL && !j->d->stopping && !j->sess_rejected &&
	    j->d->cfg.conn_idle_ms > 0 &&
	    j->conn_msgs < j->d->cfg.max_msgs_per_conn;
}

static void
job_idle_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct job *j = arg;
	unsigned ms = j->d->cfg.conn_idle_ms;
	struct timeval tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

	if (j->state == JOB_SETTLING) {
		job_settle(j, &j->facts);
		deliver_dest_ok(j->d, j->dest);
		j->state = JOB_IDLE;
		TAILQ_INSERT_TAIL(&j->dest->idle, j, idle_entry);
		evtimer_add(j->idle_ev, &tv);
		deliver_dest_kick(j->d, j->dest); /* may resume j at once */
		return;
	}
	/* Nothing came: say goodbye; on_done finishes the job. */
	TAILQ_REMOVE(&j->dest->idle, j, idle_entry);
	j->state = JOB_BUSY;
	smtp_session_quit(j->sess);
}

/* All messages sent: settle them from the loop, then wait for more. */
static void
job_go_idle(struct job *j)
{
	if (j->idle_ev == NULL)
		j->idle_ev = evtimer_new(j->d->cfg.base, job_idle_cb, j);
	j->state = JOB_SETTLING;
	event_active(j->idle_ev, EV_TIMEOUT, 0);
}

/* The job stops waiting (taken, aborted, or its connection closed). */
static void
job_unidle(struct job *j)
{
	if (j->state == JOB_IDLE)
		TAILQ_REMOVE(&j->dest->idle, j, idle_entry);
	if (j->idle_ev != NULL)
		event_del(j->idle_ev);
	j->state = JOB_BUSY;
}

struct job *
deliver_job_idle_take(struct ddest *dest)
{
	struct job *j = TAILQ_FIRST(&dest->idle);

	if (j != NULL)
		job_unidle(j);
	return j;
}

unsigned
deliver_job_room(const struct job *j)
{
	return j->conn_msgs < j->d->cfg.max_msgs_per_conn ?
	    j->d->cfg.max_msgs_per_conn - j->conn_msgs :
	    1;
}

void
deliver_job_resume(struct job *j, struct drcpt **rcpts, size_t n)
{
	job_group(j, rcpts, n);
	/*
	 * `queue bounce` as in deliver_job_start: returned without an
	 * attempt, also when an open connection to the destination takes
	 * them (a recipient just deferred there, then bounced by the
	 * operator, would otherwise be tried again on it); the connection
	 * stays for what comes next.
	 */
	if (job_operator_bounces(j))
		job_settle(j, NULL);
	job_send_next(j);
}

static void
job_send_next(struct job *j)
{
	struct outcome o;
	struct dmsg *m;
	size_t k;
	int rc;

	while (j->cur < j->nmsg) {
		m = &j->msgs[j->cur];
		rc = job_prepare(j, m);
		if (rc == 1) {
			smtp_session_transaction(
			    j->sess, m->txn, job_txn_done, j);
			return;
		}
		if (rc == 0) {
			/* Every recipient returned by the operator: decided,
			 * nothing to send. */
			deliver_outcome(j->d, m, NULL);
			j->cur++;
			continue;
		}
		/* Deleted by an operator meanwhile, or unreadable (store =
		 * postgres: the database is away): nothing to send. */
		if (queue_error(j->d->cfg.queue)[0] != '\0')
			outcome_set(&o, OUTCOME_TEMP, "4.3.0", RT_NONE,
			    "message %s cannot be read: %s", m->msgid,
			    queue_error(j->d->cfg.queue));
		else
			outcome_set(&o, OUTCOME_TEMP, "4.3.0", RT_NONE,
			    "message %s is no longer in the queue", m->msgid);
		for (k = 0; k < m->n; k++) {
			*m->rcpts[k]->o = o;
			m->rcpts[k]->done = true;
		}
		j->cur++;
	}
	if (job_can_idle(j))
		job_go_idle(j);
	else
		smtp_session_quit(j->sess);
}

/* --- start --- */

static void
job_group(struct job *j, struct drcpt **rcpts, size_t n)
{
	size_t i, k;

	j->msgs = xcalloc(n, sizeof(*j->msgs));
	for (i = 0; i < n; i++) {
		for (k = 0; k < j->nmsg; k++)
			if (strcmp(j->msgs[k].msgid, rcpts[i]->msgid) == 0)
				break;
		if (k == j->nmsg)
			memcpy(j->msgs[j->nmsg++].msgid, rcpts[i]->msgid,
			    QUEUE_ID_LEN);
		j->msgs[k].rcpts = xreallocarray(
		    j->msgs[k].rcpts, j->msgs[k].n + 1, sizeof(struct drcpt *));
		j->msgs[k].rcpts[j->msgs[k].n++] = rcpts[i];
		if (rcpts[i]->o == NULL)
			rcpts[i]->o = xmalloc(sizeof(*rcpts[i]->o));
		outcome_ok(rcpts[i]->o);
	}
}

/* `danerelay queue bounce`: fail those recipients without an attempt. */
static bool
job_operator_bounces(struct job *j)
{
	size_t i, k, left = 0;

	for (i = 0; i < j->nmsg; i++) {
		for (k = 0; k < j->msgs[i].n; k++) {
			struct drcpt *r = j->msgs[i].rcpts[k];

			if (!r->bounce_now) {
				left++;
				continue;
			}
			outcome_set(r->o, OUTCOME_PERM, "5.0.0", RT_NONE,
			    "returned to the sender by the administrator");
			r->done = true;
		}
	}
	return left == 0;
}

void
deliver_job_start(
    struct deliver *d, struct ddest *dest, struct drcpt **rcpts, size_t n)
{
	struct job *j = xcalloc(1, sizeof(*j));
	struct outcome o;

	j->d = d;
	j->dest = dest;
	TAILQ_INSERT_TAIL(&d->joblist, j, entry);
	policy_for(d->policy, dest->domain, &j->pol);
	if (j->pol.route_host != NULL)
		j->pol.route_host = j->route_host = xstrdup(j->pol.route_host);
	j->pol.exception = NULL;
	if (dest->report) {
		/*
		 * RFC 8460 §5.3: "Sending MTAs MUST NOT honor MTA-STS or DANE
		 * TLSA failures" for reports: opportunistic TLS, no STS, no
		 * TLSA check, and cleartext if TLS fails (job_report_plain).
		 */
		j->pol.security = POLICY_MAY;
		j->pol.log_only = false;
	}
	job_group(j, rcpts, n);
	if (job_operator_bounces(j)) {
		job_finish(j);
		return;
	}
	if (d->dns == DELIVER_DNS_DOWN) {
		/* RFC 3463 §3.5 X.4.3: directory server failure. Never an
		 * attempt without DNSSEC validation (RFC 7672 §2.1.1). */
		outcome_set(
		    &o, OUTCOME_TEMP, "4.4.3", RT_NONE, "%s", d->dns_why);
		job_fail_all(j, &o);
		return;
	}
	if (dest->dead_until > time(NULL)) {
		outcome_set(&o, OUTCOME_TEMP,
		    dest->dead_reason.cls == OUTCOME_TEMP ?
		        dest->dead_reason.status :
		        "4.4.1",
		    dest->dead_reason.rt,
		    "%s (destination not tried again "
		    "before %lds: connections keep failing)",
		    dest->dead_reason.text,
		    (long)(dest->dead_until - time(NULL)));
		job_fail_all(j, &o);
		return;
	}
	if (j->pol.route_host != NULL && !j->pol.route_mx) {
		/* RFC 7672 §2.2.2: a configured next hop, no MX lookup. */
		j->hosts = xcalloc(2, sizeof(char *));
		j->hosts[0] = xstrdup(j->pol.route_host);
		j->nhost = 1;
		j->via = DANE_VIA_ROUTE;
		j->mx_secure = true;
		job_next_host(j);
		return;
	}
	/* RFC 8461: the policy of the recipient domain, beside its MX. */
	if (d->cfg.sts != NULL && j->pol.security == POLICY_DANE &&
	    j->pol.route_host == NULL) {
		j->sts_pending = true;
		j->stsl =
		    sts_get(d->cfg.sts, dest->domain, false, job_sts_done, j);
	}
	j->mxl = dane_mx_resolve(d->cfg.resolver,
	    j->pol.route_host != NULL ? j->pol.route_host : dest->domain,
	    job_mx_resolved, j);
}

void
deliver_job_abort(struct job *j)
{
	struct outcome o;

	if (j->finish_ev != NULL)
		return;
	job_unidle(j);
	/* No callback follows a free: the lookups and the session just stop. */
	dane_mx_cancel(j->mxl);
	j->mxl = NULL;
	dane_host_cancel(j->hl);
	j->hl = NULL;
	if (j->stsl != NULL)
		sts_lookup_cancel(j->stsl);
	j->stsl = NULL;
	smtp_session_free(j->sess);
	j->sess = NULL;
	outcome_set(&o, OUTCOME_TEMP, "4.3.2", RT_NONE,
	    "the relay is shutting down; will retry");
	job_fail_all(j, &o);
}

struct job *
deliver_job_next(struct job *j)
{
	return TAILQ_NEXT(j, entry);
}
