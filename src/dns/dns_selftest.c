/*
 * dns_selftest: can this resolver validate at all?
 *
 * The root DNSKEY RRset is the first thing a validator checks against its
 * trust anchor, so a secure answer for it proves the anchor, the path to
 * the root servers (or forwarders) and the RRSIG plumbing in one query.
 * Every other outcome gets a loud, specific explanation: a DANE client that
 * cannot validate must not pretend it can (RFC 7672 §2.1.1).
 */
#include "dns/dns.h"

#include <string.h>

struct dns_query *
dns_selftest(struct dns_resolver *r, dns_cb *cb, void *arg)
{
	return dns_query(r, ".", DNS_TYPE_DNSKEY, cb, arg);
}

static const char *
selftest_error(enum dns_status st)
{
	switch (st) {
	case DNS_ERR_BOGUS:
		return "the resolver cannot validate: the root DNSKEY RRset "
		       "is bogus; the trust anchor does not match the root "
		       "keys, the system clock is wrong, or an upstream "
		       "tampers with DNSSEC records";
	case DNS_ERR_SERVFAIL:
		return "the resolver cannot validate: the root DNSKEY lookup "
		       "failed with SERVFAIL; the root servers or forwarders "
		       "are unreachable or the trust anchor cannot be primed";
	case DNS_ERR_TIMEOUT:
		return "the resolver cannot validate: the root DNSKEY lookup "
		       "timed out; no root server or forwarder answered (is DNS "
		       "to them blocked?)";
	case DNS_ERR_MALFORMED:
		return "the resolver cannot validate: the root DNSKEY answer "
		       "was malformed";
	default:
		return "the resolver cannot validate: the root DNSKEY lookup "
		       "failed (refused or a resolver error)";
	}
}

const char *
dns_selftest_explain(const struct dns_answer *a)
{
	if (strcmp(dns_answer_qname(a), ".") != 0 ||
	    dns_answer_qtype(a) != DNS_TYPE_DNSKEY)
		return "the self-test answer is not for the root DNSKEY RRset";
	if (dns_answer_status(a) != DNS_OK)
		return selftest_error(dns_answer_status(a));
	if (dns_answer_sec(a) != DNS_SEC_SECURE)
		return "the resolver cannot validate: the root DNSKEY RRset "
		       "came back insecure; there is no trust anchor for the "
		       "root, or an upstream strips RRSIGs";
	if (dns_answer_count(a) == 0)
		return "the resolver cannot validate: the root zone has no "
		       "DNSKEY records";
	return NULL;
}
