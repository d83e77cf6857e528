/*
 * fuzz_dns_packet: libFuzzer target for the DNS wire parser and everything
 * built on it. Each input is parsed with dns_packet_parse(); every record is
 * touched; then the same bytes go through dns_answer_new_unbound() as a
 * secure, insecure and bogus answer for the packet's own question, and
 * every dns_answer accessor is called on every record.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "dns/dns_answer.h"
#include "dns/dns_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void
touch_packet(const struct dns_packet *p)
{
	sink += strlen(dns_packet_qname(p)) + dns_packet_qtype(p) +
	    (size_t)dns_packet_rcode(p);
	for (size_t i = 0; i < dns_packet_rr_count(p); i++) {
		const struct dns_rr *rr = dns_packet_rr(p, i);

		sink += strlen(rr->owner) + rr->type + rr->rclass + rr->ttl +
		    rr->pref + rr->soa_minimum;
		if (rr->rdlen > 0)
			sink += rr->rdata[0] + rr->rdata[rr->rdlen - 1];
		if (rr->target != NULL)
			sink += strlen(rr->target);
	}
	sink += dns_packet_rr(p, dns_packet_rr_count(p)) == NULL;
}

static void
touch_record(const struct dns_answer *a, size_t i)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char buf[64], *txt;
	const char *host;
	const uint8_t *d;
	uint16_t pref;
	uint8_t u, s, m;
	size_t n;

	if (dns_answer_rdata(a, i, &n) != NULL)
		sink += n;
	if (dns_answer_mx(a, i, &pref, &host) == 0)
		sink += pref + strlen(host);
	if (dns_answer_addr(a, i, &ss, &sl) == 0)
		sink += sl;
	if (dns_answer_addr_str(a, i, buf, sizeof(buf)) == 0)
		sink += strlen(buf);
	if (dns_answer_tlsa(a, i, &u, &s, &m, &d, &n) == 0)
		sink += u + s + m + n + (n > 0 ? d[n - 1] : 0);
	if ((txt = dns_answer_txt(a, i)) != NULL) {
		sink += strlen(txt);
		free(txt);
	}
}

static void
touch_answer(const struct dns_answer *a)
{
	const char *s;

	sink += (size_t)dns_answer_status(a) + (size_t)dns_answer_sec(a) +
	    dns_answer_ttl(a) + (size_t)dns_answer_rcode(a) +
	    dns_answer_nxdomain(a) + dns_answer_nodata(a) + dns_answer_qtype(a);
	sink += strlen(dns_answer_qname(a)) + strlen(dns_answer_canonname(a));
	if ((s = dns_answer_error(a)) != NULL)
		sink += strlen(s);
	if ((s = dns_answer_why_bogus(a)) != NULL)
		sink += strlen(s);
	if ((s = dns_answer_denial(a)) != NULL)
		sink += strlen(s);
	if ((s = dns_selftest_explain(a)) != NULL)
		sink += strlen(s);
	for (size_t i = 0; i <= dns_answer_cname_count(a); i++) {
		if ((s = dns_answer_cname_owner(a, i)) != NULL)
			sink += strlen(s);
		if ((s = dns_answer_cname_target(a, i)) != NULL)
			sink += strlen(s);
	}
	for (size_t i = 0; i <= dns_answer_count(a); i++)
		touch_record(a, i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *err = NULL;
	struct dns_packet *p = dns_packet_parse(data, size, &err);
	const char *qname = "fuzz.example";
	uint16_t qtype = DNS_TYPE_A;

	if (p != NULL) {
		touch_packet(p);
		qname = dns_packet_qname(p);
		qtype = dns_packet_qtype(p);
	} else {
		sink += strlen(err);
	}
	if (size > (size_t)INT32_MAX)
		size = INT32_MAX;
	for (int sec = 0; sec <= 2; sec++) {
		struct dns_answer *a = dns_answer_new_unbound(qname, qtype, 0,
		    data, (int)size, sec, sec == 1 ? "fuzz" : NULL);

		touch_answer(a);
		sink += strlen(dns_type_str(dns_answer_qtype(a)));
		dns_answer_free(a);
	}
	dns_packet_free(p);
	return 0;
}
