/*
 * check_text: the human report of `danerelay check`: the verdict first,
 * one summary line per MX host, a few indented facts under each, and the
 * details (DNS trace, certificate chain) of what failed. Colour only on a
 * terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_int.h"
#include "dane/dane_host.h"
#include "dane/dane_mx.h"
#include "dane/dane_tlsa.h"
#include "dns/dns.h"
#include "tls/tls_cert.h"

struct check_tty {
	const struct check_domain *d;
	FILE *fp;
	bool colour;
	bool verbose;
};

static const char *
check_col(const struct check_tty *t, const char *code)
{
	return t->colour ? code : "";
}

#define C_RED    "\033[31m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"
#define C_BOLD   "\033[1m"
#define C_OFF    "\033[0m"

static const char *
check_verdict_colour(enum check_verdict v)
{
	switch (v) {
	case CHECK_VERIFIED:
	case CHECK_TRUSTED:
		return C_GREEN;
	case CHECK_ENCRYPTED:
	case CHECK_OPPORTUNISTIC:
		return C_YELLOW;
	default:
		return C_RED;
	}
}

static const char *
check_verdict_meaning(enum check_verdict v)
{
	switch (v) {
	case CHECK_VERIFIED:
		return "DANE-authenticated TLS";
	case CHECK_TRUSTED:
		return "DANE-authenticated TLS to an MX host named by an "
		       "unsigned MX RRset";
	case CHECK_ENCRYPTED:
		return "TLS required, not authenticated (TLSA records all "
		       "unusable)";
	case CHECK_OPPORTUNISTIC:
		return "no DANE: TLS if offered";
	case CHECK_DEFER:
		return "mail would wait in the queue";
	case CHECK_BOUNCE:
		return "mail would be returned to the sender";
	}
	return "";
}

static void
check_text_answer(
    const struct check_tty *t, const char *label, const struct dns_answer *a)
{
	size_t i;

	if (a == NULL)
		return;
	fprintf(t->fp, "      %-8s %s %s: %s, %s, ttl %u", label,
	    dns_answer_qname(a), dns_type_str(dns_answer_qtype(a)),
	    dns_status_str(dns_answer_status(a)),
	    dns_sec_str(dns_answer_sec(a)), dns_answer_ttl(a));
	if (dns_answer_nxdomain(a))
		fprintf(t->fp, ", NXDOMAIN");
	else if (dns_answer_status(a) == DNS_OK && dns_answer_count(a) == 0)
		fprintf(t->fp, ", no records");
	if (dns_answer_denial(a) != NULL)
		fprintf(t->fp, " (denial: %s)", dns_answer_denial(a));
	for (i = 0; i < dns_answer_cname_count(a); i++) {
		const struct check_link *l =
		    check_trace_link(t->d, dns_answer_cname_owner(a, i));

		fprintf(t->fp, "%s%s -> %s",
		    i == 0 ? "\n               CNAME " :
		             "\n                     ",
		    dns_answer_cname_owner(a, i),
		    dns_answer_cname_target(a, i));
		if (l != NULL && l->done)
			fprintf(t->fp, " (%s)",
			    l->status == DNS_OK ? dns_sec_str(l->sec) :
			                          dns_status_str(l->status));
	}
	if (dns_answer_why_bogus(a) != NULL)
		fprintf(
		    t->fp, "\n               why: %s", dns_answer_why_bogus(a));
	fprintf(t->fp, "\n");
}

static void
check_text_tlsa(const struct check_tty *t, const struct dane_host *dh)
{
	const struct dane_tlsa *tl = dane_host_tlsa(dh);
	size_t i;

	for (i = 0; i < dane_host_tlsa_tried(dh); i++)
		check_text_answer(t, "TLSA", dane_host_tlsa_answer(dh, i));
	if (dane_host_tlsa_skipped(dh) != NULL)
		fprintf(t->fp, "      %-8s not looked up: %s\n", "TLSA",
		    dane_host_tlsa_skipped(dh));
	for (i = 0; tl != NULL && i < dane_tlsa_count(tl); i++) {
		char *s = dane_tlsa_str(tl, i);

		if (strlen(s) > 80)
			memcpy(s + 74, "...", 4);
		fprintf(t->fp, "               %s  %s%s%s\n", s,
		    dane_tlsa_usable(tl, i) ? "usable" : "unusable",
		    dane_tlsa_why(tl, i) != NULL ? ": " : "",
		    dane_tlsa_why(tl, i) != NULL ? dane_tlsa_why(tl, i) : "");
		free(s);
	}
}

static void
check_text_chain(const struct check_tty *t, const struct check_conn *c)
{
	size_t i, j;

	for (i = 0; c->chain != NULL && i < tls_chain_count(c->chain); i++) {
		const struct tls_cert_facts *f = tls_chain_cert(c->chain, i);

		fprintf(t->fp,
		    "        cert %d  %s\n               issuer %s\n"
		    "               valid %s .. %s\n",
		    f->depth, f->subject, f->issuer, f->not_before,
		    f->not_after);
		for (j = 0; f->sans != NULL && f->sans[j] != NULL; j++)
			fprintf(t->fp, "%s%s",
			    j == 0 ? "               DNS " : ", ", f->sans[j]);
		if (f->sans != NULL && f->sans[0] != NULL)
			fprintf(t->fp, "\n");
		fprintf(t->fp,
		    "               sha256 %s\n               spki "
		    "sha256 %s\n",
		    f->sha256, f->spki_sha256);
	}
}

static void
check_text_conn(const struct check_tty *t, const struct check_host *h,
    const struct check_conn *c)
{
	bool ok = outcome_is_ok(&c->outcome);

	fprintf(t->fp, "      %-8s %s port %u: %s", "connect", c->addr,
	    check_domain_opts(h->domain)->port,
	    c->res.connected ? "connected" : "no connection");
	if (c->res.banner[0] != '\0')
		fprintf(t->fp, ", banner \"%.60s\"", c->res.banner);
	if (c->res.connected)
		fprintf(t->fp, ", STARTTLS %s",
		    c->res.starttls_offered ? "offered" : "not offered");
	fprintf(t->fp, "\n");
	if (c->tls) {
		fprintf(t->fp, "      %-8s %s %s, SNI %s\n", "tls",
		    c->tls_version, c->tls_cipher, c->sni);
		if (c->matched_depth >= 0)
			fprintf(t->fp,
			    "      %-8s TLSA %u %u %u matched the "
			    "certificate at depth %d%s%s\n",
			    "match", c->mu, c->ms, c->mm, c->matched_depth,
			    c->peername != NULL ? ", name " : "",
			    c->peername != NULL ? c->peername : "");
	}
	if (c->tls && (!ok || t->verbose))
		check_text_chain(t, c);
	if (!ok)
		fprintf(t->fp, "      %s%-8s %s %s%s\n", check_col(t, C_RED),
		    "fail", c->outcome.status, c->outcome.text,
		    check_col(t, C_OFF));
}

/* A passing host in two lines: what DNS said, what TLS did. */
static void
check_text_host_brief(const struct check_tty *t, const struct check_host *h)
{
	const struct dane_host *dh = h->dh;
	const struct dane_tlsa *tl = dane_host_tlsa(dh);
	const struct check_conn *c = NULL;
	size_t i;

	fprintf(t->fp, "      %-8s", "dns");
	for (i = 0; i < dane_host_addr_count(dh) && i < 4; i++)
		fprintf(t->fp, "%s%s", i == 0 ? " " : ", ",
		    dane_host_addr_str(dh, i));
	fprintf(
	    t->fp, " (%s)", dane_host_addr_secure(dh) ? "secure" : "insecure");
	if (tl != NULL)
		fprintf(t->fp, "; TLSA at %s: %zu records, %zu usable",
		    dane_host_base(dh), dane_tlsa_count(tl),
		    dane_tlsa_usable_count(tl));
	else
		fprintf(t->fp, "; no secure TLSA%s%s",
		    dane_host_tlsa_skipped(dh) != NULL ? ": " : "",
		    dane_host_tlsa_skipped(dh) != NULL ?
		        dane_host_tlsa_skipped(dh) :
		        "");
	fprintf(t->fp, "\n");
	for (i = 0; i < h->nconn && c == NULL; i++)
		if (outcome_is_ok(&h->conns[i].outcome))
			c = &h->conns[i];
	if (c == NULL)
		return;
	if (c->tls)
		fprintf(t->fp, "      %-8s %s: %s %s, SNI %s", "tls", c->addr,
		    c->tls_version, c->tls_cipher, c->sni);
	else
		fprintf(t->fp, "      %-8s %s: no TLS (%s)", "tls", c->addr,
		    c->res.starttls_offered ? "STARTTLS failed" :
		                              "STARTTLS not offered");
	if (c->matched_depth >= 0)
		fprintf(t->fp, "; TLSA %u %u %u matched at depth %d", c->mu,
		    c->ms, c->mm, c->matched_depth);
	fprintf(t->fp, "\n");
}

static void
check_text_host(
    const struct check_tty *t, const struct check_host *h, size_t idx)
{
	const struct dane_host *dh = h->dh;
	size_t i;

	fprintf(t->fp, "  %s[%zu] %-30s pref %-3u %-13s %s%s\n",
	    check_col(t, h->pass ? C_GREEN : C_RED), idx + 1, h->name, h->pref,
	    dh != NULL ? dane_level_str(dane_host_level(dh)) : "-",
	    h->pass ? "PASS" : "FAIL", check_col(t, C_OFF));
	if (dh == NULL)
		return;
	if (h->pass && !t->verbose) {
		check_text_host_brief(t, h);
		return;
	}
	check_text_answer(t, "A", dane_host_answer_a(dh));
	check_text_answer(t, "AAAA", dane_host_answer_aaaa(dh));
	check_text_answer(t, "CNAME", dane_host_answer_cname(dh));
	check_text_tlsa(t, dh);
	if (dane_host_base(dh) != NULL &&
	    dane_host_level(dh) == DANE_LEVEL_AUTH) {
		char **n = dane_host_refnames(dh);

		fprintf(t->fp,
		    "      %-8s TLSA base %s; names accepted under "
		    "DANE-TA:",
		    "names", dane_host_base(dh));
		for (i = 0; n != NULL && n[i] != NULL; i++)
			fprintf(t->fp, " %s", n[i]);
		fprintf(t->fp, "\n");
	}
	for (i = 0; i < h->nconn; i++)
		check_text_conn(t, h, &h->conns[i]);
	if (!h->pass && h->nconn == 0)
		fprintf(t->fp, "      %s%-8s %s %s%s\n", check_col(t, C_RED),
		    "fail", h->outcome.status, h->outcome.text,
		    check_col(t, C_OFF));
}

/* Who has to act on a failure, in one line. */
static const char *
check_fix_hint(const struct outcome *o)
{
	switch (o->rt) {
	case RT_DNSSEC_INVALID:
		return "the DNS operator of the zone named above must fix its "
		       "DNSSEC (signatures, DS records, or a failing name server)";
	case RT_TLSA_INVALID:
		return "the MX operator must publish TLSA records that match the "
		       "certificate the server presents (see unpublished-match), or "
		       "serve the certificate the records describe";
	case RT_CERTIFICATE_HOST_MISMATCH:
		return "the MX operator must use a certificate naming the MX host "
		       "(or the domain) as its trust anchor issues it";
	case RT_CERTIFICATE_EXPIRED:
		return "the MX operator must renew the certificate chain";
	case RT_STARTTLS_NOT_SUPPORTED:
		return "the MX operator must enable STARTTLS, or remove the TLSA "
		       "records if TLS cannot be offered";
	case RT_VALIDATION_FAILURE:
		return "the MX operator must fix the TLS configuration of the "
		       "server";
	default:
		break;
	}
	if (strncmp(o->status, "4.4.", 4) == 0)
		return "the MX host or its DNS is unreachable or broken; the "
		       "receiving domain's operator must fix it (or it is a "
		       "network problem on this side)";
	if (strcmp(o->status, "5.1.10") == 0)
		return "nothing: the domain states it accepts no mail";
	if (strcmp(o->status, "5.1.2") == 0)
		return "the sender: the address's domain does not exist";
	return NULL;
}

static void
check_text_header(const struct check_tty *t, const struct check_domain *d,
    const struct check_resolver_info *ri)
{
	fprintf(t->fp, "%s%s%s: %s%s%s", check_col(t, C_BOLD), d->name,
	    check_col(t, C_OFF), check_col(t, check_verdict_colour(d->verdict)),
	    check_verdict_str(d->verdict), check_col(t, C_OFF));
	fprintf(t->fp, " (%s%s%s) - %s", d->outcome.status,
	    d->outcome.rt != RT_NONE ? " " : "",
	    d->outcome.rt != RT_NONE ? result_type_str(d->outcome.rt) : "",
	    check_verdict_meaning(d->verdict));
	if (d->deliver_to != NULL)
		fprintf(t->fp, "; delivers to %s", d->deliver_to->name);
	fprintf(t->fp, "\n");
	if (!outcome_is_ok(&d->outcome)) {
		fprintf(t->fp, "  why: %s\n", d->outcome.text);
		if (check_fix_hint(&d->outcome) != NULL)
			fprintf(
			    t->fp, "  fix: %s\n", check_fix_hint(&d->outcome));
	}
	fprintf(t->fp, "  resolver: %s; trust anchor %s; %s\n",
	    ri->selftest_error == NULL ? "validating (root DNSKEY secure)" :
	                                 ri->selftest_error,
	    ri->trust_anchor, ri->upstream);
}

static void
check_text_sts(const struct check_tty *t, const struct check_domain *d)
{
	size_t i;

	if (!d->sts_looked)
		return;
	switch (d->sts_state) {
	case STS_STATE_NONE:
		fprintf(
		    t->fp, "  MTA-STS: no policy (no _mta-sts TXT record)\n");
		return;
	case STS_STATE_FETCH_ERROR:
		fprintf(t->fp,
		    "  MTA-STS: TXT id %s, but the policy fetch "
		    "failed: %s\n",
		    d->sts_txt_id != NULL ? d->sts_txt_id : "?",
		    d->sts_error != NULL ? d->sts_error : "?");
		return;
	case STS_STATE_INVALID:
		fprintf(t->fp, "  MTA-STS: TXT id %s, invalid policy: %s\n",
		    d->sts_txt_id != NULL ? d->sts_txt_id : "?",
		    d->sts_error != NULL ? d->sts_error : "?");
		return;
	case STS_STATE_POLICY:
		break;
	}
	fprintf(t->fp, "  MTA-STS: mode %s, max_age %ld, id %s%s; mx:",
	    sts_mode_str(sts_policy_mode(d->sts_policy)),
	    sts_policy_max_age(d->sts_policy),
	    d->sts_txt_id != NULL ? d->sts_txt_id : "?",
	    d->sts_from_cache ? " (cached)" : "");
	for (i = 0; i < sts_policy_mx_count(d->sts_policy); i++)
		fprintf(t->fp, " %s", sts_policy_mx(d->sts_policy, i));
	fprintf(t->fp, "%s\n",
	    d->nhost > 0 && d->hosts[0].dh != NULL &&
	            dane_host_level(d->hosts[0].dh) !=
	                DANE_LEVEL_OPPORTUNISTIC ?
	        " (DANE takes precedence, RFC 8461 §2)" :
	        "");
}

void
check_print_text(FILE *fp, const struct check_domain *d,
    const struct check_resolver_info *ri, bool colour, bool verbose)
{
	struct check_tty t = { d, fp, colour, verbose };
	size_t i;

	check_text_header(&t, d, ri);
	if (d->mx != NULL) {
		fprintf(fp, "  next hop: %s (%s%s)\n",
		    dane_mx_kind_str(dane_mx_kind(d->mx)),
		    dane_mx_secure(d->mx) ? "secure" : "insecure",
		    strcmp(dane_mx_expanded(d->mx), d->name) != 0 ? ", CNAME" :
		                                                    "");
		check_text_answer(&t, "MX", dane_mx_answer(d->mx));
	}
	check_text_sts(&t, d);
	for (i = 0; i < d->nhost; i++)
		check_text_host(&t, &d->hosts[i], i);
	for (i = 0; i < d->nwarn; i++)
		fprintf(fp, "  %swarning%s %s: %s\n", check_col(&t, C_YELLOW),
		    check_col(&t, C_OFF), d->warnings[i].code,
		    d->warnings[i].text);
	fprintf(fp, "\n");
}
