/*
 * check_json: the JSON document of `danerelay check --json`
 * (docs/CHECK-JSON.md). Same content as the human report.
 */
#include <jansson.h>
#include <stdlib.h>

#include "check/check_int.h"
#include "core/str.h"
#include "dane/dane_host.h"
#include "dane/dane_mx.h"
#include "dane/dane_tlsa.h"
#include "dns/dns.h"
#include "tls/tls_cert.h"

static json_t *
jstr(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* One CNAME link with the state of its own RRset (check_trace.c). */
static json_t *
check_json_link(
    const struct check_domain *d, const struct dns_answer *a, size_t i)
{
	const struct check_link *l;
	const char *sec = NULL;

	l = check_trace_link(d, dns_answer_cname_owner(a, i));
	if (l != NULL && l->done)
		sec = l->status == DNS_OK ? dns_sec_str(l->sec) :
		                            dns_status_str(l->status);
	return json_pack("{s:s, s:s, s:o}", "owner",
	    dns_answer_cname_owner(a, i), "target",
	    dns_answer_cname_target(a, i), "security", jstr(sec));
}

static json_t *
check_json_answer(const struct check_domain *d, const struct dns_answer *a)
{
	json_t *o, *chain;
	size_t i;

	if (a == NULL)
		return json_null();
	chain = json_array();
	for (i = 0; i < dns_answer_cname_count(a); i++)
		json_array_append_new(chain, check_json_link(d, a, i));
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:o, s:o, s:o}",
	    "name", dns_answer_qname(a), "type",
	    dns_type_str(dns_answer_qtype(a)), "status",
	    dns_status_str(dns_answer_status(a)), "rcode", dns_answer_rcode(a),
	    "security", dns_sec_str(dns_answer_sec(a)), "ttl",
	    (json_int_t)dns_answer_ttl(a), "records",
	    (json_int_t)dns_answer_count(a), "cname_chain", chain, "denial",
	    jstr(dns_answer_denial(a)), "why_bogus",
	    jstr(dns_answer_why_bogus(a)));
	if (dns_answer_status(a) != DNS_OK)
		json_object_set_new(o, "error", jstr(dns_answer_error(a)));
	return o;
}

static json_t *
check_json_outcome(json_t *o, const struct outcome *oc)
{
	json_object_set_new(o, "status", json_string(oc->status));
	json_object_set_new(o, "result_type", jstr(result_type_str(oc->rt)));
	json_object_set_new(o, "text", json_string(oc->text));
	return o;
}

static json_t *
check_json_tlsa(const struct dane_tlsa *t)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; t != NULL && i < dane_tlsa_count(t); i++) {
		const struct tls_tlsa *r = dane_tlsa_rec(t, i);
		char *hex = str_hex(r->data, r->len);

		json_array_append_new(arr,
		    json_pack("{s:i, s:i, s:i, s:s, "
		              "s:b, s:o}",
		        "usage", r->usage, "selector", r->selector, "mtype",
		        r->mtype, "data", hex, "usable", dane_tlsa_usable(t, i),
		        "why_unusable", jstr(dane_tlsa_why(t, i))));
		free(hex);
	}
	return arr;
}

static json_t *
check_json_chain(const struct tls_chain *c)
{
	json_t *arr = json_array(), *sans;
	size_t i, j;

	for (i = 0; c != NULL && i < tls_chain_count(c); i++) {
		const struct tls_cert_facts *f = tls_chain_cert(c, i);

		sans = json_array();
		for (j = 0; f->sans != NULL && f->sans[j] != NULL; j++)
			json_array_append_new(sans, json_string(f->sans[j]));
		json_array_append_new(arr,
		    json_pack("{s:i, s:s, s:s, s:o, "
		              "s:s, s:s, s:s, s:s, s:b}",
		        "depth", f->depth, "subject", f->subject, "issuer",
		        f->issuer, "sans", sans, "not_before", f->not_before,
		        "not_after", f->not_after, "sha256", f->sha256,
		        "spki_sha256", f->spki_sha256, "ca", f->is_ca));
	}
	return arr;
}

static json_t *
check_json_conn(const struct check_conn *c)
{
	json_t *o, *ehlo = json_array();
	size_t i;

	for (i = 0; c->ehlo != NULL && c->ehlo[i] != NULL; i++)
		json_array_append_new(ehlo, json_string(c->ehlo[i]));
	o = json_pack("{s:s, s:b, s:s, s:o, s:b, s:b, s:s}", "address", c->addr,
	    "connected", c->res.connected, "banner", c->res.banner, "ehlo",
	    ehlo, "starttls_offered", c->res.starttls_offered, "tls", c->tls,
	    "session_end", smtp_error_str(c->res.error));
	if (c->tls) {
		json_object_set_new(o, "tls_version", jstr(c->tls_version));
		json_object_set_new(o, "cipher", jstr(c->tls_cipher));
		json_object_set_new(o, "sni", jstr(c->sni));
		json_object_set_new(o, "chain", check_json_chain(c->chain));
		json_object_set_new(o, "matched",
		    c->matched_depth < 0 ?
		        json_null() :
		        json_pack("{s:i, s:i, s:i, s:i}", "usage", c->mu,
		            "selector", c->ms, "mtype", c->mm, "depth",
		            c->matched_depth));
		json_object_set_new(o, "peername", jstr(c->peername));
	}
	return check_json_outcome(o, &c->outcome);
}

static json_t *
check_json_host_dns(const struct check_host *h)
{
	const struct check_domain *d = h->domain;
	json_t *o, *cands = json_array(), *refs = json_array(), *addrs;
	const struct dane_host *dh = h->dh;
	char **names = dane_host_refnames(dh);
	size_t i;

	for (i = 0; i < dane_host_tlsa_tried(dh); i++)
		json_array_append_new(cands,
		    json_pack("{s:s, s:o}", "base",
		        dane_host_tlsa_candidate(dh, i), "answer",
		        check_json_answer(d, dane_host_tlsa_answer(dh, i))));
	for (i = 0; names != NULL && names[i] != NULL; i++)
		json_array_append_new(refs, json_string(names[i]));
	addrs = json_array();
	for (i = 0; i < dane_host_addr_count(dh); i++)
		json_array_append_new(
		    addrs, json_string(dane_host_addr_str(dh, i)));
	o = json_pack("{s:o, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "addresses", addrs, "addresses_secure", dane_host_addr_secure(dh),
	    "expanded", dane_host_expanded(dh), "a",
	    check_json_answer(d, dane_host_answer_a(dh)), "aaaa",
	    check_json_answer(d, dane_host_answer_aaaa(dh)), "cname",
	    check_json_answer(d, dane_host_answer_cname(dh)), "tlsa_candidates",
	    cands, "tlsa_skipped", jstr(dane_host_tlsa_skipped(dh)),
	    "tlsa_base", jstr(dane_host_base(dh)), "tlsa",
	    check_json_tlsa(dane_host_tlsa(dh)), "reference_names", refs);
	return o;
}

static json_t *
check_json_host(const struct check_host *h)
{
	json_t *o, *conns = json_array();
	size_t i;

	for (i = 0; i < h->nconn; i++)
		json_array_append_new(conns, check_json_conn(&h->conns[i]));
	o = json_pack("{s:s, s:i, s:b}", "host", h->name, "preference", h->pref,
	    "pass", h->pass);
	if (h->dh != NULL) {
		json_object_set_new(o, "policy",
		    json_string(dane_level_str(dane_host_level(h->dh))));
		json_object_update_new(o, check_json_host_dns(h));
	}
	json_object_set_new(o, "connections", conns);
	return check_json_outcome(o, &h->outcome);
}

/* Which policy governs delivery: that of the host the mail goes to. */
static const char *
check_policy_name(const struct check_domain *d)
{
	const struct check_host *h = d->deliver_to != NULL ? d->deliver_to :
	    d->nhost > 0                                   ? &d->hosts[0] :
	                                                     NULL;

	if (h == NULL || h->dh == NULL)
		return "none";
	if (dane_host_level(h->dh) == DANE_LEVEL_AUTH ||
	    dane_host_level(h->dh) == DANE_LEVEL_ENCRYPT)
		return "dane";
	return h->sts_use != POLICY_STS_OFF ? "mta-sts" : "none";
}

static json_t *
check_json_sts(const struct check_domain *d)
{
	static const char *const states[] = { "none", "policy", "fetch-error",
		"invalid" };
	json_t *o, *mx = json_array();
	size_t i;

	if (!d->sts_looked)
		return json_null();
	for (i = 0;
	     d->sts_policy != NULL && i < sts_policy_mx_count(d->sts_policy);
	     i++)
		json_array_append_new(
		    mx, json_string(sts_policy_mx(d->sts_policy, i)));
	o = json_pack("{s:s, s:o, s:o, s:o, s:b, s:o}", "state",
	    states[d->sts_state], "mode",
	    d->sts_policy != NULL ?
	        json_string(sts_mode_str(sts_policy_mode(d->sts_policy))) :
	        json_null(),
	    "txt_id", jstr(d->sts_txt_id), "error", jstr(d->sts_error),
	    "from_cache", d->sts_from_cache, "mx", mx);
	if (d->sts_policy != NULL)
		json_object_set_new(o, "max_age",
		    json_integer(sts_policy_max_age(d->sts_policy)));
	return o;
}

void *
check_to_json(
    const struct check_domain *d, const struct check_resolver_info *ri)
{
	json_t *o, *mx = json_array(), *warn = json_array();
	size_t i;

	for (i = 0; i < d->nhost; i++)
		json_array_append_new(mx, check_json_host(&d->hosts[i]));
	for (i = 0; i < d->nwarn; i++)
		json_array_append_new(warn,
		    json_pack("{s:s, s:s}", "code", d->warnings[i].code, "text",
		        d->warnings[i].text));
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o}", "domain",
	    d->name, "verdict", check_verdict_str(d->verdict), "status",
	    d->outcome.status, "result_type",
	    jstr(result_type_str(d->outcome.rt)), "text", d->outcome.text,
	    "deliver_to",
	    d->deliver_to != NULL ? json_string(d->deliver_to->name) :
	                            json_null(),
	    "mx", mx, "warnings", warn, "resolver",
	    json_pack("{s:b, s:o, s:s, s:s}", "ok", ri->selftest_error == NULL,
	        "error", jstr(ri->selftest_error), "trust_anchor",
	        ri->trust_anchor, "upstream", ri->upstream));
	json_object_set_new(o, "next_hop",
	    d->mx == NULL ?
	        json_null() :
	        json_pack("{s:s, s:s, s:b, s:o}", "kind",
	            dane_mx_kind_str(dane_mx_kind(d->mx)), "expanded",
	            dane_mx_expanded(d->mx), "mx_secure", dane_mx_secure(d->mx),
	            "answer", check_json_answer(d, dane_mx_answer(d->mx))));
	json_object_set_new(o, "policy", json_string(check_policy_name(d)));
	json_object_set_new(o, "mta_sts", check_json_sts(d));
	json_object_set_new(o, "connect",
	    json_boolean(d->run == NULL ? 1 : check_domain_opts(d)->connect));
	return o;
}
