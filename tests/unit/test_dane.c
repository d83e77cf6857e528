/*
 * test_dane: TLSA usability for SMTP (RFC 7672 §3.1, RFC 6698 §4.1,
 * RFC 7671 §9) and the classification table (docs/VERDICTS.md).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509_vfy.h>

#include "dane/dane_host.h"
#include "dane/dane_outcome.h"
#include "dane/dane_tlsa.h"
#include "dns/dns.h"
#include "dns/dns_answer.h"
#include "smtp/smtp_session.h"
#include "t.h"

/* A NOERROR answer for _25._tcp.mx.example TLSA with the given rdatas. */
static struct dns_answer *
tlsa_answer(const uint8_t *const *rdata, const size_t *len, size_t n, int sec)
{
	static const uint8_t qname[] = "\x03_25\x04_tcp\x02mx\x07"
	                               "example";
	uint8_t pkt[4096];
	size_t off = 0, i;

	memcpy(pkt, "\x00\x00\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00", 12);
	pkt[7] = (uint8_t)n;
	off = 12;
	memcpy(pkt + off, qname, sizeof(qname));
	off += sizeof(qname);
	memcpy(pkt + off, "\x00\x34\x00\x01", 4);
	off += 4;
	for (i = 0; i < n; i++) {
		memcpy(
		    pkt + off, "\xc0\x0c\x00\x34\x00\x01\x00\x00\x0e\x10", 10);
		off += 10;
		pkt[off++] = (uint8_t)(len[i] >> 8);
		pkt[off++] = (uint8_t)len[i];
		memcpy(pkt + off, rdata[i], len[i]);
		off += len[i];
	}
	return dns_answer_new_unbound(
	    "_25._tcp.mx.example", DNS_TYPE_TLSA, 0, pkt, (int)off, sec, NULL);
}

static void
tlsa_usability_table(void)
{
	static const struct {
		uint8_t u, s, m;
		size_t datalen;
		int usable_default; /* digests sha512 sha256 */
		int usable_sha256_only;
	} cases[] = {
		{ 3, 1, 1, 32, 1, 1 },
		{ 3, 0, 1, 32, 1, 1 },
		{ 3, 1, 2, 64, 1, 0 },
		{ 2, 0, 1, 32, 1, 1 },
		{ 2, 1, 2, 64, 1, 0 },
		{ 0, 0, 1, 32, 0, 0 }, /* PKIX-TA: unusable for SMTP */
		{ 1, 1, 1, 32, 0, 0 }, /* PKIX-EE */
		{ 4, 1, 1, 32, 0, 0 }, /* unknown usage */
		{ 3, 2, 1, 32, 0, 0 }, /* unknown selector */
		{ 3, 1, 3, 32, 0, 0 }, /* unknown mtype */
		{ 3, 1, 1, 31, 0, 0 }, /* wrong digest length */
		{ 3, 1, 2, 32, 0, 0 },
		{ 3, 1, 0, 20, 0, 0 }, /* Full(0) that is no SPKI */
		{ 255, 1, 1, 32, 0, 0 },
	};
	char *both[] = { "sha512", "sha256", NULL };
	char *one[] = { "sha256", NULL };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t rd[70];
		const uint8_t *rdp[1] = { rd };
		size_t len[1] = { 3 + cases[i].datalen };
		struct dns_answer *a;
		struct dane_tlsa *t;

		memset(rd, 0xab, sizeof(rd));
		rd[0] = cases[i].u;
		rd[1] = cases[i].s;
		rd[2] = cases[i].m;
		a = tlsa_answer(rdp, len, 1, 2);
		T_CHECK(dns_answer_status(a) == DNS_OK);
		T_CHECK(dns_answer_count(a) == 1);
		t = dane_tlsa_new(a, both);
		T_CHECK(dane_tlsa_count(t) == 1);
		T_CHECK((int)dane_tlsa_usable(t, 0) == cases[i].usable_default);
		T_CHECK(
		    (dane_tlsa_why(t, 0) == NULL) == cases[i].usable_default);
		dane_tlsa_free(t);
		t = dane_tlsa_new(a, one);
		T_CHECK(
		    (int)dane_tlsa_usable(t, 0) == cases[i].usable_sha256_only);
		dane_tlsa_free(t);
		dns_answer_free(a);
	}
}

static void
tlsa_mixed_rrset(void)
{
	uint8_t good[35], bad[35], shortrd[2] = { 3, 1 };
	const uint8_t *rdp[3] = { good, bad, shortrd };
	size_t len[3] = { 35, 35, 2 }, n;
	char *both[] = { "sha512", "sha256", NULL };
	struct dns_answer *a;
	struct dane_tlsa *t;
	char *s;

	memset(good, 0x11, sizeof(good));
	good[0] = 3, good[1] = 1, good[2] = 1;
	memset(bad, 0x22, sizeof(bad));
	bad[0] = 1, bad[1] = 1, bad[2] = 1;
	a = tlsa_answer(rdp, len, 3, 2);
	t = dane_tlsa_new(a, both);
	T_CHECK(dane_tlsa_count(t) == 3);
	T_CHECK(dane_tlsa_usable_count(t) == 1);
	T_CHECK(dane_tlsa_usable_recs(t, &n)->usage == 3 && n == 1);
	T_CHECK(!dane_tlsa_usable(t, 2));
	s = dane_tlsa_str(t, 0);
	T_STREQ(s,
	    "3 1 1 1111111111111111111111111111111111111111111111111111"
	    "111111111111");
	free(s);
	dane_tlsa_free(t);
	dns_answer_free(a);
}

static void
outcome_dns_table(void)
{
	struct outcome o;
	struct dns_answer *a;

	a = dns_answer_new_error("mx.example", DNS_TYPE_A, DNS_ERR_BOGUS, "x");
	dane_outcome_dns(&o, a);
	T_STREQ(o.status, "4.7.324");
	T_CHECK(o.rt == RT_DNSSEC_INVALID);
	dns_answer_free(a);
	a = dns_answer_new_error(
	    "mx.example", DNS_TYPE_A, DNS_ERR_SERVFAIL, "servfail");
	dane_outcome_dns(&o, a);
	T_STREQ(o.status, "4.4.3");
	T_CHECK(o.rt == RT_NONE);
	dane_outcome_tlsa_lookup(&o, a);
	T_STREQ(o.status, "4.7.324");
	T_CHECK(o.rt == RT_DNSSEC_INVALID);
	dns_answer_free(a);
	a = dns_answer_new_error("x", DNS_TYPE_TLSA, DNS_ERR_TIMEOUT, "t");
	dane_outcome_tlsa_lookup(&o, a);
	T_STREQ(o.status, "4.7.324");
	dns_answer_free(a);
}

static void
outcome_smtp_table(void)
{
	static const struct {
		enum smtp_error err;
		int code;
		const char *status;
		enum result_type rt;
	} cases[] = {
		{ SMTP_ERR_CONNECT_REFUSED, 0, "4.4.1", RT_NONE },
		{ SMTP_ERR_CONNECT_TIMEOUT, 0, "4.4.1", RT_NONE },
		{ SMTP_ERR_TIMEOUT, 0, "4.4.2", RT_NONE },
		{ SMTP_ERR_PROTOCOL, 0, "4.4.2", RT_NONE },
		{ SMTP_ERR_CLOSED, 0, "4.4.2", RT_NONE },
		{ SMTP_ERR_REPLY, 421, "4.0.0", RT_NONE },
		{ SMTP_ERR_REPLY, 554, "5.0.0", RT_NONE },
		{ SMTP_ERR_STARTTLS_NOT_OFFERED, 0, "4.7.321",
		    RT_STARTTLS_NOT_SUPPORTED },
		{ SMTP_ERR_STARTTLS_REFUSED, 454, "4.7.321",
		    RT_STARTTLS_NOT_SUPPORTED },
		{ SMTP_ERR_TLS_HANDSHAKE, 0, "4.7.5", RT_VALIDATION_FAILURE },
		{ SMTP_ERR_NONE, 0, "2.0.0", RT_NONE },
	};
	struct smtp_result r;
	struct outcome o;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.error = cases[i].err;
		r.reply_code = cases[i].code;
		dane_outcome_smtp(&o, &r, DANE_LEVEL_AUTH, "mx.example");
		T_STREQ(o.status, cases[i].status);
		T_CHECK(o.rt == cases[i].rt);
	}
}

static void
outcome_verify_table(void)
{
	static const struct {
		long err;
		const char *status;
		enum result_type rt;
	} cases[] = {
		{ X509_V_ERR_DANE_NO_MATCH, "4.7.323", RT_TLSA_INVALID },
		{ X509_V_OK, "4.7.323", RT_TLSA_INVALID },
		{ X509_V_ERR_HOSTNAME_MISMATCH, "4.7.325",
		    RT_CERTIFICATE_HOST_MISMATCH },
		{ X509_V_ERR_CERT_HAS_EXPIRED, "4.7.322",
		    RT_CERTIFICATE_EXPIRED },
		{ X509_V_ERR_CERT_NOT_YET_VALID, "4.7.322",
		    RT_CERTIFICATE_EXPIRED },
		{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "4.7.323",
		    RT_TLSA_INVALID },
	};
	struct outcome o;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dane_outcome_verify(&o, cases[i].err, "mx.example");
		T_STREQ(o.status, cases[i].status);
		T_CHECK(o.rt == cases[i].rt);
		T_CHECK(o.cls == OUTCOME_TEMP);
	}
}

/* mx.example A (qtype 1) or AAAA (28): n records, DNSSEC state sec. */
static struct dns_answer *
addr_answer(uint16_t qtype, size_t n, int sec)
{
	static const uint8_t qname[] = "\x02mx\x07"
	                               "example";
	uint8_t pkt[512];
	size_t off, i, rdlen = qtype == DNS_TYPE_A ? 4 : 16;

	memcpy(pkt, "\x00\x00\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00", 12);
	pkt[7] = (uint8_t)n;
	off = 12;
	memcpy(pkt + off, qname, sizeof(qname));
	off += sizeof(qname);
	pkt[off++] = 0;
	pkt[off++] = (uint8_t)qtype;
	memcpy(pkt + off, "\x00\x01", 2);
	off += 2;
	for (i = 0; i < n; i++) {
		memcpy(pkt + off, "\xc0\x0c\x00", 3);
		off += 3;
		pkt[off++] = (uint8_t)qtype;
		memcpy(pkt + off, "\x00\x01\x00\x00\x0e\x10\x00", 7);
		off += 7;
		pkt[off++] = (uint8_t)rdlen;
		memset(pkt + off, 0, rdlen);
		pkt[off] = 127;
		pkt[off + rdlen - 1] = (uint8_t)(i + 1);
		off += rdlen;
	}
	return dns_answer_new_unbound(
	    "mx.example", qtype, 0, pkt, (int)off, sec, NULL);
}

static struct dns_answer *
addr_fail(uint16_t qtype, int how)
{
	if (how == 1) /* bogus */
		return dns_answer_new_unbound(
		    "mx.example", qtype, 0, NULL, 0, 1, "bad signature");
	if (how == 2) /* SERVFAIL */
		return dns_answer_new_unbound(
		    "mx.example", qtype, 2, NULL, 0, 0, NULL);
	return dns_answer_new_error(
	    "mx.example", qtype, DNS_ERR_TIMEOUT, "no answer");
}

/*
 * RFC 7672 §2.1.2 per address family: one failed lookup leaves the other
 * family usable when its RRset is secure and has addresses.
 */
static void
addr_families_table(void)
{
	/* kind: S secure with records, E secure empty, I insecure with
	 * records, B bogus, F SERVFAIL, T timeout. */
	static const struct {
		char a, aaaa;
		int want;
		char bad; /* 'a', '6' or 0 */
		const char *status;
	} cases[] = {
		{ 'S', 'S', 0, 0, NULL },
		{ 'S', 'E', 0, 0, NULL },
		{ 'I', 'I', 0, 0, NULL },
		{ 'S', 'B', 1, '6', "4.7.324" }, /* the issue's case */
		{ 'S', 'F', 1, '6', "4.4.3" },
		{ 'S', 'T', 1, '6', "4.4.3" },
		{ 'B', 'S', 1, 'a', "4.7.324" },
		{ 'I', 'B', -1, '6', "4.7.324" }, /* insecure rest: no */
		{ 'E', 'B', -1, '6', "4.7.324" }, /* nothing remains */
		{ 'B', 'B', -1, 'a', "4.7.324" },
		{ 'F', 'B', -1, '6', "4.7.324" }, /* bogus named first */
		{ 'T', 'F', -1, 'a', "4.4.3" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dns_answer *ans[2];
		const struct dns_answer *bad;
		struct outcome o;
		const char k[2] = { cases[i].a, cases[i].aaaa };
		const uint16_t t[2] = { DNS_TYPE_A, DNS_TYPE_AAAA };
		size_t f;
		int rc;

		for (f = 0; f < 2; f++)
			ans[f] = k[f] == 'S' ? addr_answer(t[f], 2, 2) :
			    k[f] == 'E'      ? addr_answer(t[f], 0, 2) :
			    k[f] == 'I'      ? addr_answer(t[f], 1, 0) :
			    k[f] == 'B'      ? addr_fail(t[f], 1) :
			    k[f] == 'F'      ? addr_fail(t[f], 2) :
			                       addr_fail(t[f], 3);
		rc = dane_host_addr_families(ans[0], ans[1], &bad);
		T_CHECK(rc == cases[i].want);
		T_CHECK(bad ==
		    (cases[i].bad == 'a'        ? ans[0] :
		            cases[i].bad == '6' ? ans[1] :
		                                  NULL));
		if (bad != NULL && cases[i].status != NULL) {
			dane_outcome_dns(&o, bad);
			T_STREQ(o.status, cases[i].status);
		}
		dns_answer_free(ans[0]);
		dns_answer_free(ans[1]);
	}
}

int
main(void)
{
	T_RUN(tlsa_usability_table);
	T_RUN(tlsa_mixed_rrset);
	T_RUN(outcome_dns_table);
	T_RUN(outcome_smtp_table);
	T_RUN(outcome_verify_table);
	T_RUN(addr_families_table);
	T_EXIT();
}
