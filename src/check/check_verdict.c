/*
 * check_verdict: one verdict per domain from the facts of a check, and the
 * warnings an administrator should read even when mail would flow
 * (docs/VERDICTS.md). The verdict follows the first host, in MX preference
 * order, that would take the mail (RFC 7672 §2.2.1).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check/check_int.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dane/dane_host.h"
#include "dane/dane_mx.h"
#include "dane/dane_tlsa.h"
#include "dns/dns.h"
#include "tls/tls_cert.h"

#define CHECK_EXPIRY_WARN_DAYS 30
#define CHECK_TLSA_MANY        8
#define CHECK_TLSA_BIG         1200 /* bytes of rdata: near the EDNS0 1232 limit */

void
check_warn(struct check_domain *d, const char *code, const char *fmt, ...)
{
	va_list ap;
	char text[1024];

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	d->warnings =
	    xreallocarray(d->warnings, d->nwarn + 1, sizeof(*d->warnings));
	d->warnings[d->nwarn].code = xstrdup(code);
	d->warnings[d->nwarn].text = xstrdup(text);
	d->nwarn++;
}

/* A host passes when its first working address passes, like delivery. */
static void
check_host_judge(struct check_host *h, bool connect)
{
	size_t i;

	if (h->dh == NULL)
		return;
	if (dane_host_level(h->dh) == DANE_LEVEL_UNUSABLE) {
		h->outcome = *dane_host_outcome(h->dh);
		return;
	}
	if (h->sts_refused)
		return; /* h->outcome says why (MTA-STS §4.1) */
	if (!connect) {
		h->pass = true;
		return;
	}
	for (i = 0; i < h->nconn; i++) {
		if (outcome_is_ok(&h->conns[i].outcome)) {
			h->pass = true;
			outcome_ok(&h->outcome);
			return;
		}
	}
	if (h->nconn > 0)
		h->outcome = h->conns[0].outcome;
}

enum check_verdict
check_verdict_pass(
    enum dane_level level, bool verified_path, enum policy_sts_use sts)
{
	switch (level) {
	case DANE_LEVEL_AUTH:
		return verified_path ? CHECK_VERIFIED : CHECK_TRUSTED;
	case DANE_LEVEL_ENCRYPT:
		return CHECK_ENCRYPTED;
	default:
		/* MTA-STS enforce: TLS with a PKIX-valid MX certificate. */
		return sts == POLICY_STS_ENFORCE ? CHECK_VERIFIED :
		                                   CHECK_OPPORTUNISTIC;
	}
}

static enum check_verdict
check_pass_verdict(const struct check_host *h)
{
	return check_verdict_pass(dane_host_level(h->dh),
	    dane_host_level(h->dh) == DANE_LEVEL_AUTH &&
	        dane_host_verified_path(h->dh),
	    h->sts_use);
}

static void
check_domain_verdict_hosts(struct check_domain *d)
{
	size_t i, pass = d->nhost;

	for (i = 0; i < d->nhost; i++) {
		if (d->hosts[i].pass) {
			pass = i;
			break;
		}
	}
	if (pass == d->nhost) {
		/* No host would take the mail: the most preferred failure. */
		if (d->nhost > 0)
			d->outcome = d->hosts[0].outcome;
		d->verdict =
		    d->outcome.cls == OUTCOME_PERM ? CHECK_BOUNCE : CHECK_DEFER;
		return;
	}
	for (i = 0; i < pass; i++)
		check_warn(d, "mx-failed",
		    "%s (preference %u) cannot be used: "
		    "%s %s",
		    d->hosts[i].name, d->hosts[i].pref,
		    d->hosts[i].outcome.status, d->hosts[i].outcome.text);
	d->deliver_to = &d->hosts[pass];
	d->verdict = check_pass_verdict(&d->hosts[pass]);
	outcome_ok(&d->outcome);
}

/* Does TLSA record r match certificate f? Full(0) cannot be told here. */
static bool
check_rec_matches(const struct tls_tlsa *r, const struct tls_cert_facts *f)
{
	const char *want;
	bool match;
	char *hex;

	if (r->mtype == 1)
		want = r->selector == 0 ? f->sha256 : f->spki_sha256;
	else if (r->mtype == 2)
		want = r->selector == 0 ? f->sha512 : f->spki_sha512;
	else
		return false;
	hex = str_hex(r->data, r->len);
	match = strcmp(hex, want) == 0;
	free(hex);
	return match;
}

/* Does any usable record of usage u match a certificate of the chain? */
static bool
check_usage_matches(
    const struct dane_tlsa *t, uint8_t u, const struct tls_chain *c, bool *have)
{
	size_t i, j;

	*have = false;
	for (i = 0; i < dane_tlsa_count(t); i++) {
		const struct tls_tlsa *r = dane_tlsa_rec(t, i);

		if (r->usage != u || !dane_tlsa_usable(t, i))
			continue;
		*have = true;
		for (j = 0; j < tls_chain_count(c); j++) {
			const struct tls_cert_facts *f = tls_chain_cert(c, j);

			if ((u == 3) != (f->depth == 0))
				continue;
			if (check_rec_matches(r, f))
				return true;
		}
	}
	return false;
}

static void
check_warn_records(struct check_domain *d, const struct check_host *h)
{
	const struct dane_tlsa *t = dane_host_tlsa(h->dh);
	size_t i, bytes = 0, n;

	if (t == NULL)
		return;
	n = dane_tlsa_count(t);
	if (n == 1)
		check_warn(d, "single-tlsa-record",
		    "%s publishes a single TLSA "
		    "record: a key or certificate change cannot be rolled over "
		    "without an outage; publish the next key's record too "
		    "(RFC 7671 §8)",
		    h->name);
	for (i = 0; i < n; i++) {
		const struct tls_tlsa *r = dane_tlsa_rec(t, i);

		bytes += r->len + 3;
		if (r->mtype == 0)
			check_warn(d, "full-tlsa-record",
			    "%s: TLSA %u %u 0 "
			    "carries the full %s; digests (matching type 1) are "
			    "smaller and recommended (RFC 7672 §3.1.2)",
			    h->name, r->usage, r->selector,
			    r->selector == 0 ? "certificate" : "public key");
	}
	if (n > CHECK_TLSA_MANY || bytes > CHECK_TLSA_BIG)
		check_warn(d, "oversized-tlsa-rrset",
		    "%s: the TLSA RRset has "
		    "%zu records, %zu bytes; large answers need TCP and break "
		    "on some networks",
		    h->name, n, bytes);
}

static void
check_warn_suggest(struct check_domain *d, const struct check_host *h,
    const struct check_conn *c)
{
	const struct check_opts *o = check_domain_opts(d);
	size_t n = tls_chain_count(c->chain);
	const struct tls_cert_facts *leaf, *top;

	if (n == 0)
		return;
	leaf = tls_chain_cert(c->chain, 0);
	top = tls_chain_cert(c->chain, n - 1);
	check_warn(d, "unpublished-match",
	    "records that would match the "
	    "chain %s presents: _%u._tcp.%s. IN TLSA 3 1 1 %s%s%s",
	    h->name, o->port, dane_host_base(h->dh), leaf->spki_sha256,
	    n > 1 ? " ; or for its issuer: 2 0 1 " : "",
	    n > 1 ? top->sha256 : "");
}

static void
check_warn_chain(struct check_domain *d, const struct check_host *h,
    const struct check_conn *c)
{
	const struct dane_tlsa *t = dane_host_tlsa(h->dh);
	bool have_ta, have_ee, ta_ok, ee_ok;

	if (t == NULL || c->chain == NULL)
		return;
	ta_ok = check_usage_matches(t, 2, c->chain, &have_ta);
	ee_ok = check_usage_matches(t, 3, c->chain, &have_ee);
	if (have_ta && !ta_ok && c->matched_depth < 0)
		check_warn(d, "ta-not-in-chain",
		    "%s: no certificate of the "
		    "chain it sends matches its DANE-TA record; the server "
		    "MUST send the trust anchor certificate (RFC 7672 "
		    "§3.1.2)",
		    h->name);
	if (c->outcome.rt == RT_TLSA_INVALID && (ta_ok || ee_ok))
		check_warn(d, "digest-agility-trap",
		    "%s: a TLSA record "
		    "matches the certificate, but a record of the same usage "
		    "and selector with a stronger digest does not, and the "
		    "stronger digest wins (RFC 7671 §9); fix or remove the "
		    "wrong record",
		    h->name);
	else if (c->outcome.rt == RT_TLSA_INVALID)
		check_warn_suggest(d, h, c);
}

static void
check_warn_expiry(struct check_domain *d, const struct check_host *h,
    const struct check_conn *c)
{
	const struct tls_cert_facts *f;
	time_t now = time(NULL);
	size_t i;

	/* DANE-EE ignores dates (RFC 7672 §3.1.1); DANE-TA does not. */
	if (c->chain == NULL || c->matched_depth < 0 || c->mu != 2)
		return;
	for (i = 0; i < tls_chain_count(c->chain); i++) {
		f = tls_chain_cert(c->chain, i);
		if (f->not_after_t - now < CHECK_EXPIRY_WARN_DAYS * 86400)
			check_warn(d, "certificate-expiring",
			    "%s: certificate "
			    "%s (depth %d) expires %s; with DANE-TA an expired "
			    "chain fails",
			    h->name, f->subject, f->depth, f->not_after);
	}
}

/* RFC 7672 §2.1.2: one address family failed, the other is in use. */
static void
check_warn_addr(struct check_domain *d, const struct check_host *h)
{
	const struct outcome *w = dane_host_addr_warning(h->dh);

	if (w != NULL)
		check_warn(d, "address-lookup-failed",
		    "%s: %s; only its other addresses are used (RFC 7672 "
		    "§2.1.2)",
		    h->name, w->text);
}

static void
check_warn_coverage(struct check_domain *d)
{
	size_t i, with = 0, without = 0;

	for (i = 0; i < d->nhost; i++) {
		const struct dane_host *dh = d->hosts[i].dh;

		if (dh == NULL || dane_host_level(dh) == DANE_LEVEL_UNUSABLE)
			continue;
		if (dane_host_tlsa(dh) != NULL)
			with++;
		else
			without++;
	}
	if (with > 0 && without > 0)
		check_warn(d, "partial-tlsa",
		    "only %zu of %zu usable MX hosts "
		    "publish TLSA records; mail via the others is not protected "
		    "by DANE",
		    with, with + without);
	if (with > 0 && d->mx != NULL && !dane_mx_secure(d->mx) && !d->route)
		check_warn(d, "insecure-mx",
		    "the MX RRset of %s is not signed: "
		    "DANE can authenticate the MX hosts but not that they serve "
		    "%s, so delivery is 'trusted', never 'verified' (RFC 7672 "
		    "§2.2.1)",
		    d->name, d->name);
	if (d->ignored_hosts > 0)
		check_warn(d, "too-many-mx",
		    "%zu MX hosts beyond the first %d "
		    "were not checked",
		    d->ignored_hosts, CHECK_MAX_HOSTS);
}

/* What MTA-STS had to say, as warnings (RFC 8461 §5, RFC 8460 types). */
static void
check_warn_sts(struct check_domain *d)
{
	size_t i, j;

	if (d->sts_state == STS_STATE_FETCH_ERROR)
		check_warn(d, "sts-policy-fetch-error",
		    "%s publishes an "
		    "_mta-sts record, but its policy could not be fetched: %s; "
		    "mail flows as without MTA-STS",
		    d->name, d->sts_error != NULL ? d->sts_error : "?");
	else if (d->sts_state == STS_STATE_INVALID)
		check_warn(d, "sts-policy-invalid",
		    "%s publishes an invalid "
		    "MTA-STS policy: %s; mail flows as without MTA-STS",
		    d->name, d->sts_error != NULL ? d->sts_error : "?");
	for (i = 0; i < d->nhost; i++) {
		const struct check_host *h = &d->hosts[i];

		if (h->sts_use != POLICY_STS_TESTING)
			continue;
		if (!sts_policy_mx_match(d->sts_policy, h->name))
			check_warn(d, "sts-testing-failure",
			    "MTA-STS (testing): "
			    "%s is not in the policy's mx list; in enforce mode "
			    "it would not be used",
			    h->name);
		for (j = 0; j < h->nconn; j++)
			if (!outcome_is_ok(&h->conns[j].sts_warn))
				check_warn(d, "sts-testing-failure",
				    "MTA-STS (testing): %s; in enforce mode "
				    "delivery would fail",
				    h->conns[j].sts_warn.text);
	}
}

void
check_domain_judge(struct check_domain *d, const struct check_opts *o)
{
	size_t i, j;

	for (i = 0; i < d->nhost; i++)
		check_host_judge(&d->hosts[i], o->connect);
	if (d->mx != NULL && !outcome_is_ok(dane_mx_outcome(d->mx)))
		d->outcome = *dane_mx_outcome(d->mx);
	if (!outcome_is_ok(&d->outcome)) {
		d->verdict =
		    d->outcome.cls == OUTCOME_PERM ? CHECK_BOUNCE : CHECK_DEFER;
		return;
	}
	check_domain_verdict_hosts(d);
	for (i = 0; i < d->nhost; i++) {
		const struct check_host *h = &d->hosts[i];

		if (h->dh == NULL)
			continue;
		check_warn_records(d, h);
		check_warn_addr(d, h);
		for (j = 0; j < h->nconn; j++) {
			if (h->conns[j].tls) {
				check_warn_chain(d, h, &h->conns[j]);
				check_warn_expiry(d, h, &h->conns[j]);
				break;
			}
		}
	}
	check_warn_coverage(d);
	check_warn_sts(d);
}
