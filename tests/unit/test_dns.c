/*
 * test_dns: the dns module.
 *
 * Parser tables on hand-built packets (well-formed and malformed), answer
 * classification and accessors fed through the same constructor libunbound
 * answers take, name checks, resolver construction errors, and live
 * resolver runs against a tiny fake DNS server on 127.0.0.1 (forward mode,
 * so a random port works) with a trust anchor for an unrelated zone, which
 * leaves everything it serves insecure. Nothing leaves 127.0.0.0/8.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns.h"
#include "dns/dns_answer.h"
#include "dns/dns_packet.h"
#include "dns/dns_setup.h"
#include "relay/relay_dns.h"
#include "t.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* A packet builder: plain labels, big-endian fields, patchable rdlen. */

struct pk {
	uint8_t b[4096];
	size_t n;
};

static void
pk_u8(struct pk *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)v;
}

static void
pk_u16(struct pk *p, unsigned v)
{
	pk_u8(p, v >> 8 & 0xff);
	pk_u8(p, v & 0xff);
}

static void
pk_u32(struct pk *p, uint32_t v)
{
	pk_u16(p, v >> 16);
	pk_u16(p, v & 0xffff);
}

static void
pk_bytes(struct pk *p, const void *v, size_t n)
{
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

/* "a.b.c" or "." as uncompressed labels. */
static void
pk_name(struct pk *p, const char *name)
{
	const char *s = name;

	while (*s != '\0' && strcmp(s, ".") != 0) {
		size_t n = strcspn(s, ".");

		pk_u8(p, (unsigned)n);
		pk_bytes(p, s, n);
		s += n;
		if (*s == '.')
			s++;
	}
	pk_u8(p, 0);
}

static void
pk_header(struct pk *p, unsigned rcode, unsigned an, unsigned ns, unsigned ar)
{
	p->n = 0;
	pk_u16(p, 0x1234);
	pk_u16(p, 0x8180 | rcode); /* QR RD RA */
	pk_u16(p, 1);
	pk_u16(p, an);
	pk_u16(p, ns);
	pk_u16(p, ar);
}

static void
pk_question(struct pk *p, const char *name, unsigned type)
{
	pk_name(p, name);
	pk_u16(p, type);
	pk_u16(p, 1);
}

/* Owner, type, class IN, ttl; returns the rdlength position to patch. */
static size_t
pk_rr(struct pk *p, const char *owner, unsigned type, uint32_t ttl)
{
	size_t mark;

	pk_name(p, owner);
	pk_u16(p, type);
	pk_u16(p, 1);
	pk_u32(p, ttl);
	mark = p->n;
	pk_u16(p, 0);
	return mark;
}

static void
pk_end(struct pk *p, size_t mark)
{
	size_t len = p->n - mark - 2;

	p->b[mark] = (uint8_t)(len >> 8);
	p->b[mark + 1] = (uint8_t)len;
}

static void
pk_rr_name(struct pk *p, const char *owner, unsigned type, uint32_t ttl,
    const char *target)
{
	size_t m = pk_rr(p, owner, type, ttl);

	pk_name(p, target);
	pk_end(p, m);
}

static void
pk_rr_a(struct pk *p, const char *owner, uint32_t ttl, const char *ip)
{
	size_t m = pk_rr(p, owner, DNS_TYPE_A, ttl);
	uint8_t a[4];

	inet_pton(AF_INET, ip, a);
	pk_bytes(p, a, 4);
	pk_end(p, m);
}

static void
pk_rr_mx(struct pk *p, const char *owner, uint32_t ttl, unsigned pref,
    const char *host)
{
	size_t m = pk_rr(p, owner, DNS_TYPE_MX, ttl);

	pk_u16(p, pref);
	pk_name(p, host);
	pk_end(p, m);
}

static void
pk_rr_soa(struct pk *p, const char *owner, uint32_t ttl, uint32_t minimum)
{
	size_t m = pk_rr(p, owner, DNS_TYPE_SOA, ttl);

	pk_name(p, "ns.example");
	pk_name(p, "hostmaster.example");
	pk_u32(p, 1);
	pk_u32(p, 3600);
	pk_u32(p, 600);
	pk_u32(p, 86400);
	pk_u32(p, minimum);
	pk_end(p, m);
}

static void
pk_rr_raw(struct pk *p, const char *owner, unsigned type, uint32_t ttl,
    const void *rd, size_t n)
{
	size_t m = pk_rr(p, owner, type, ttl);

	pk_bytes(p, rd, n);
	pk_end(p, m);
}

/* ------------------------------------------------------------------ */
/* Parser: malformed and edge-case packets as raw bytes. */

#define H(an, ns, ar) 0x12, 0x34, 0x81, 0x80, 0, 1, 0, an, 0, ns, 0, ar
#define Q_EX          7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1 /* @12 */

struct parse_case {
	const char *name;
	uint8_t wire[96];
	size_t len;
	const char *err; /* substring of the error, NULL: parses */
};

static const struct parse_case parse_cases[] = {
	{ "empty", { 0 }, 0, "truncated header" },
	{ "short header", { H(0, 0, 0) }, 11, "truncated header" },
	{ "no question", { 0x12, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0 }, 12,
	    "question count" },
	{ "two questions",
	    { 0x12, 0x34, 0x81, 0x80, 0, 2, 0, 0, 0, 0, 0, 0, Q_EX }, 25,
	    "question count" },
	{ "question cut", { H(0, 0, 0), 7, 'e', 'x', 'a' }, 16,
	    "past the end" },
	{ "question no type",
	    { H(0, 0, 0), 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 0 }, 23,
	    "question runs past" },
	{ "minimal ok", { H(0, 0, 0), Q_EX }, 25, NULL },
	{ "trailing byte", { H(0, 0, 0), Q_EX, 0 }, 26, "trailing" },
	{ "pointer to self", { H(0, 0, 0), 0xc0, 12, 0, 1, 0, 1 }, 18,
	    "compression pointer" },
	{ "pointer forward", { H(0, 0, 0), 0xc0, 14, 0, 0, 1, 0, 1 }, 19,
	    "compression pointer" },
	{ "pointer into header",
	    { H(1, 0, 0), Q_EX, 0xc0, 2, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0 }, 37,
	    "into the header" },
	/* answer owner @25: label "a", then a pointer back to 25: a loop */
	{ "pointer loop",
	    { H(1, 0, 0), Q_EX, 1, 'a', 0xc0, 25, 0, 1, 0, 1, 0, 0, 0, 0, 0,
	        0 },
	    39, "loop" },
	{ "pointer cut", { H(0, 0, 0), 0xc0 }, 13, "past the end" },
	{ "answer to qname ok",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0,
	        2, 1 },
	    41, NULL },
	{ "rdlen too big",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 192, 0,
	        2, 1 },
	    41, "rdata runs past" },
	{ "rr header cut",
	    { H(1, 0, 0), Q_EX, 1, 'a', 0, 0, 1, 0, 1, 0, 0, 0, 60 }, 36,
	    "record header runs past" },
	{ "counts exceed",
	    { H(9, 0, 0), Q_EX, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0,
	        2, 1 },
	    41, "counts exceed" },
	{ "A wrong length",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 192, 0,
	        2 },
	    40, "A rdata" },
	{ "label type 0x40", { H(0, 0, 0), 0x41, 'x', 0, 0, 1, 0, 1 }, 19,
	    "label type" },
	{ "CNAME target past rdata",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 1, 'b',
	        0 },
	    40, "does not fit" },
	{ "CNAME extra byte",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 'b',
	        0, 0 },
	    41, "does not fit" },
	{ "CNAME compressed ok",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 'b',
	        0xc0, 12 },
	    41, NULL },
	{ "MX too short",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 2, 0,
	        10 },
	    39, "MX rdata" },
	{ "NS past rdata",
	    { H(1, 0, 0), Q_EX, 0xc0, 12, 0, 2, 0, 1, 0, 0, 0, 60, 0, 1, 0xc0,
	        12 },
	    39, "does not fit" },
	{ "SOA short",
	    { H(0, 1, 0), Q_EX, 0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 6, 0xc0,
	        12, 0xc0, 12, 0, 0 },
	    43, "SOA" },
	{ "OPT in answer",
	    { H(1, 0, 0), Q_EX, 0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0 }, 36,
	    "OPT record outside" },
	{ "OPT twice",
	    { H(0, 0, 2), Q_EX, 0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 16,
	        0, 0, 0, 0, 0, 0, 0 },
	    47, "more than one OPT" },
	{ "OPT not root",
	    { H(0, 0, 1), Q_EX, 0xc0, 12, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0 }, 37,
	    "not owned by the root" },
};

static void
test_parse_table(void)
{
	for (size_t i = 0; i < NITEMS(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		const char *err = "unset";
		struct dns_packet *p = dns_packet_parse(c->wire, c->len, &err);

		if (c->err == NULL) {
			if (p == NULL)
				printf("  case \"%s\": %s\n", c->name,
				    err != NULL ? err : "?");
			T_CHECK(p != NULL && err == NULL);
		} else {
			if (p != NULL || err == NULL ||
			    strstr(err, c->err) == NULL)
				printf("  case \"%s\": got %s\n", c->name,
				    p != NULL || err == NULL ? "success" : err);
			T_CHECK(p == NULL && err != NULL &&
			    strstr(err, c->err) != NULL);
		}
		dns_packet_free(p);
	}
}

/* Names: 255 octets is the limit, 256 is one too many. */
static void
test_parse_name_length(void)
{
	struct pk p;
	char name[300], label[64];
	const char *err;
	struct dns_packet *dp;

	memset(label, 'a', 63);
	label[63] = '\0';
	/* 3 x (1+63) + (1+61) + 1 = 255 */
	snprintf(
	    name, sizeof(name), "%s.%s.%s.%.61s", label, label, label, label);
	pk_header(&p, 0, 0, 0, 0);
	pk_question(&p, name, DNS_TYPE_A);
	dp = dns_packet_parse(p.b, p.n, &err);
	T_CHECK(dp != NULL);
	if (dp != NULL)
		T_STREQ(dns_packet_qname(dp), name);
	dns_packet_free(dp);

	snprintf(
	    name, sizeof(name), "%s.%s.%s.%.62s", label, label, label, label);
	pk_header(&p, 0, 0, 0, 0);
	pk_question(&p, name, DNS_TYPE_A);
	dp = dns_packet_parse(p.b, p.n, &err);
	T_CHECK(dp == NULL && strstr(err, "255") != NULL);
	dns_packet_free(dp);
}

/* Presentation: lowercase, "\." inside a label, \DDD for odd octets. */
static void
test_parse_presentation(void)
{
	static const uint8_t wire[] = { H(0, 0, 0), 7, 'A', '.', 'b', '\\', 0,
		' ', 0xff, 3, 'C', 'o', 'M', 0, 0, 1, 0, 1 };
	const char *err;
	struct dns_packet *p = dns_packet_parse(wire, sizeof(wire), &err);

	T_CHECK(p != NULL);
	if (p == NULL)
		return;
	T_STREQ(dns_packet_qname(p), "a\\.b\\\\\\000\\032\\255.com");
	T_CHECK(dns_packet_qtype(p) == DNS_TYPE_A);
	T_CHECK(dns_packet_rr_count(p) == 0);
	T_CHECK(dns_packet_rr(p, 0) == NULL);
	dns_packet_free(p);

	static const uint8_t root[] = { H(0, 0, 0), 0, 0, 48, 0, 1 };
	p = dns_packet_parse(root, sizeof(root), &err);
	T_CHECK(p != NULL);
	if (p != NULL)
		T_STREQ(dns_packet_qname(p), ".");
	dns_packet_free(p);
}

/* Sections, compression, MX/NS/CNAME targets, TTL rule, EDNS rcode. */
static void
test_parse_records(void)
{
	struct pk p;
	const char *err;
	struct dns_packet *dp;
	const struct dns_rr *rr;
	size_t m;

	pk_header(&p, 3, 1, 1, 1);
	pk_question(&p, "Example.COM", DNS_TYPE_MX);
	m = pk_rr(&p, "example.com", DNS_TYPE_MX, 0x80000000u);
	pk_u16(&p, 10);
	pk_u8(&p, 2);
	pk_bytes(&p, "mx", 2);
	pk_u8(&p, 0xc0);
	pk_u8(&p, 12); /* -> example.com in the question */
	pk_end(&p, m);
	pk_rr_name(&p, "example.com", DNS_TYPE_NS, 300, "NS1.example.com");
	/* OPT: udp 1232, extended rcode 1 (-> rcode 16 | 3) */
	pk_u8(&p, 0);
	pk_u16(&p, 41);
	pk_u16(&p, 1232);
	pk_u32(&p, 0x01008000u);
	pk_u16(&p, 0);
	dp = dns_packet_parse(p.b, p.n, &err);
	T_CHECK(dp != NULL);
	if (dp == NULL) {
		printf("  %s\n", err);
		return;
	}
	T_STREQ(dns_packet_qname(dp), "example.com");
	T_CHECK(dns_packet_rcode(dp) == (1 << 4 | 3));
	T_CHECK(dns_packet_rr_count(dp) == 3);
	rr = dns_packet_rr(dp, 0);
	T_CHECK(rr->section == DNS_SECTION_ANSWER && rr->type == DNS_TYPE_MX);
	T_CHECK(rr->ttl == 0 && rr->pref == 10 && rr->rdlen == 7);
	T_STREQ(rr->target, "mx.example.com");
	rr = dns_packet_rr(dp, 1);
	T_CHECK(rr->section == DNS_SECTION_AUTHORITY && rr->ttl == 300);
	T_STREQ(rr->target, "ns1.example.com");
	rr = dns_packet_rr(dp, 2);
	T_CHECK(rr->section == DNS_SECTION_ADDITIONAL && rr->type == 41);
	T_STREQ(rr->owner, ".");
	T_CHECK(rr->target == NULL && rr->rclass == 1232);
	dns_packet_free(dp);
}

/* ------------------------------------------------------------------ */
/* Answers. */

static struct dns_answer *
answer_of(const struct pk *p, const char *qname, uint16_t qtype, int sec)
{
	return dns_answer_new_unbound(
	    qname, qtype, 0, p->b, (int)p->n, sec, NULL);
}

static void
test_answer_mx(void)
{
	struct pk p;
	struct dns_answer *a;
	uint16_t pref = 0;
	const char *host = NULL;
	size_t len;
	char txt[64];

	pk_header(&p, 0, 3, 0, 0);
	pk_question(&p, "example.com", DNS_TYPE_MX);
	pk_rr_mx(&p, "example.com", 3600, 10, "mx1.example.com");
	pk_rr_mx(&p, "example.com", 1800, 20, "MX2.example.net");
	pk_rr_raw(&p, "example.com", 46, 3600, "sig", 3); /* RRSIG */
	a = answer_of(&p, "example.com", DNS_TYPE_MX, 2);
	T_CHECK(dns_answer_status(a) == DNS_OK);
	T_CHECK(dns_answer_error(a) == NULL);
	T_CHECK(dns_answer_sec(a) == DNS_SEC_SECURE);
	T_CHECK(dns_answer_rcode(a) == 0);
	T_CHECK(dns_answer_ttl(a) == 1800);
	T_CHECK(!dns_answer_nxdomain(a) && !dns_answer_nodata(a));
	T_CHECK(dns_answer_why_bogus(a) == NULL);
	T_CHECK(dns_answer_denial(a) == NULL);
	T_CHECK(dns_answer_cname_count(a) == 0);
	T_STREQ(dns_answer_canonname(a), "example.com");
	T_STREQ(dns_answer_qname(a), "example.com");
	T_CHECK(dns_answer_qtype(a) == DNS_TYPE_MX);
	T_CHECK(dns_answer_count(a) == 2);
	T_CHECK(dns_answer_mx(a, 1, &pref, &host) == 0);
	T_CHECK(pref == 20);
	T_STREQ(host, "mx2.example.net");
	T_CHECK(dns_answer_mx(a, 2, &pref, &host) == -1);
	T_CHECK(dns_answer_rdata(a, 0, &len) != NULL && len == 19);
	T_CHECK(dns_answer_rdata(a, 2, &len) == NULL && len == 0);
	T_CHECK(dns_answer_addr_str(a, 0, txt, sizeof(txt)) == -1);
	T_CHECK(dns_answer_txt(a, 0) == NULL);
	dns_answer_free(a);
}

static void
test_answer_cname_chain(void)
{
	struct pk p;
	struct dns_answer *a;
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	char txt[INET6_ADDRSTRLEN];

	pk_header(&p, 0, 4, 0, 0);
	pk_question(&p, "www.example.com", DNS_TYPE_A);
	pk_rr_name(
	    &p, "www.example.com", DNS_TYPE_CNAME, 600, "Alias.example.org");
	pk_rr_name(
	    &p, "alias.example.org", DNS_TYPE_CNAME, 300, "real.example.net");
	pk_rr_a(&p, "real.example.net", 900, "192.0.2.7");
	pk_rr_a(&p, "other.example.net", 60, "192.0.2.8"); /* not ours */
	a = answer_of(&p, "www.example.com", DNS_TYPE_A, 0);
	T_CHECK(dns_answer_status(a) == DNS_OK);
	T_CHECK(dns_answer_sec(a) == DNS_SEC_INSECURE);
	T_CHECK(dns_answer_cname_count(a) == 2);
	T_STREQ(dns_answer_cname_owner(a, 0), "www.example.com");
	T_STREQ(dns_answer_cname_target(a, 0), "alias.example.org");
	T_STREQ(dns_answer_cname_owner(a, 1), "alias.example.org");
	T_STREQ(dns_answer_cname_target(a, 1), "real.example.net");
	T_CHECK(dns_answer_cname_owner(a, 2) == NULL);
	T_STREQ(dns_answer_canonname(a), "real.example.net");
	T_CHECK(dns_answer_count(a) == 1);
	T_CHECK(dns_answer_ttl(a) == 60);
	T_CHECK(dns_answer_addr(a, 0, &ss, &sl) == 0);
	T_CHECK(ss.ss_family == AF_INET && sl == sizeof(struct sockaddr_in));
	T_CHECK(((struct sockaddr_in *)&ss)->sin_port == 0);
	T_CHECK(dns_answer_addr_str(a, 0, txt, sizeof(txt)) == 0);
	T_STREQ(txt, "192.0.2.7");
	T_CHECK(dns_answer_addr_str(a, 0, txt, 4) == -1);
	T_CHECK(dns_answer_addr(a, 1, &ss, &sl) == -1);
	dns_answer_free(a);

	/* Asking for the CNAME itself does not follow it. */
	pk_header(&p, 0, 1, 0, 0);
	pk_question(&p, "www.example.com", DNS_TYPE_CNAME);
	pk_rr_name(&p, "www.example.com", DNS_TYPE_CNAME, 600, "a.example");
	a = answer_of(&p, "www.example.com", DNS_TYPE_CNAME, 2);
	T_CHECK(dns_answer_cname_count(a) == 0);
	T_CHECK(dns_answer_count(a) == 1);
	T_STREQ(dns_answer_canonname(a), "www.example.com");
	dns_answer_free(a);
}

static void
test_answer_cname_loop(void)
{
	struct pk p;
	struct dns_answer *a;

	pk_header(&p, 0, 2, 0, 0);
	pk_question(&p, "a.example", DNS_TYPE_A);
	pk_rr_name(&p, "a.example", DNS_TYPE_CNAME, 60, "b.example");
	pk_rr_name(&p, "b.example", DNS_TYPE_CNAME, 60, "a.example");
	a = answer_of(&p, "a.example", DNS_TYPE_A, 2);
	T_CHECK(dns_answer_status(a) == DNS_ERR_MALFORMED);
	T_CHECK(strstr(dns_answer_error(a), "CNAME loop") != NULL);
	T_CHECK(dns_answer_count(a) == 0);
	dns_answer_free(a);
}

static void
test_answer_negative(void)
{
	struct pk p;
	struct dns_answer *a;

	/* NXDOMAIN, NSEC3 denial, TTL min(SOA TTL, MINIMUM) */
	pk_header(&p, 3, 0, 3, 0);
	pk_question(&p, "nx.example.com", DNS_TYPE_TLSA);
	pk_rr_soa(&p, "example.com", 3600, 300);
	pk_rr_raw(&p, "abc.example.com", 50, 300, "\x01\x00\x00\x0a\x00", 5);
	pk_rr_raw(&p, "example.com", 46, 3600, "sig", 3);
	a = answer_of(&p, "nx.example.com", DNS_TYPE_TLSA, 2);
	T_CHECK(dns_answer_status(a) == DNS_OK);
	T_CHECK(dns_answer_nxdomain(a) && !dns_answer_nodata(a));
	T_CHECK(dns_answer_rcode(a) == 3);
	T_STREQ(dns_answer_denial(a), "nsec3");
	T_CHECK(dns_answer_ttl(a) == 300);
	T_CHECK(dns_answer_count(a) == 0);
	dns_answer_free(a);

	/* NODATA with NSEC */
	pk_header(&p, 0, 0, 2, 0);
	pk_question(&p, "_25._tcp.mx.example.com", DNS_TYPE_TLSA);
	pk_rr_soa(&p, "example.com", 60, 3600);
	pk_rr_raw(&p, "_25._tcp.mx.example.com", 47, 60, "\x00\x00\x01\x40", 4);
	a = answer_of(&p, "_25._tcp.mx.example.com", DNS_TYPE_TLSA, 0);
	T_CHECK(dns_answer_status(a) == DNS_OK);
	T_CHECK(dns_answer_nodata(a) && !dns_answer_nxdomain(a));
	T_STREQ(dns_answer_denial(a), "nsec");
	T_CHECK(dns_answer_ttl(a) == 60);
	T_CHECK(dns_answer_sec(a) == DNS_SEC_INSECURE);
	dns_answer_free(a);
}

struct class_case {
	const char *name;
	int err;        /* libunbound callback rcode */
	unsigned rcode; /* packet rcode */
	int sec;
	const char *why;
	bool garbage;      /* hand over an unparsable packet */
	const char *qname; /* what was asked, if not the packet's */
	enum dns_status st;
	enum dns_sec dsec;
	int want_rcode;
	const char *errtext; /* substring of dns_answer_error */
};

static const struct class_case class_cases[] = {
	{ "noerror secure", 0, 0, 2, NULL, false, NULL, DNS_OK, DNS_SEC_SECURE,
	    0, NULL },
	{ "nxdomain insecure", 0, 3, 0, NULL, false, NULL, DNS_OK,
	    DNS_SEC_INSECURE, 3, NULL },
	{ "bogus", 0, 0, 1, "signature expired", false, NULL, DNS_ERR_BOGUS,
	    DNS_SEC_BOGUS, 0, "signature expired" },
	{ "bogus servfail", 0, 2, 1, NULL, false, NULL, DNS_ERR_BOGUS,
	    DNS_SEC_BOGUS, 2, "validation failed" },
	{ "bogus garbage", 0, 0, 1, "no keys", true, NULL, DNS_ERR_BOGUS,
	    DNS_SEC_BOGUS, -1, "no keys" },
	{ "ub servfail", 2, 0, 0, NULL, false, NULL, DNS_ERR_SERVFAIL,
	    DNS_SEC_INDETERMINATE, 2, "SERVFAIL" },
	{ "ub refused", 5, 0, 0, NULL, false, NULL, DNS_ERR_OTHER,
	    DNS_SEC_INDETERMINATE, 5, "REFUSED" },
	{ "packet servfail", 0, 2, 0, NULL, false, NULL, DNS_ERR_SERVFAIL,
	    DNS_SEC_INDETERMINATE, 2, "SERVFAIL" },
	{ "packet notimp", 0, 4, 2, NULL, false, NULL, DNS_ERR_OTHER,
	    DNS_SEC_INDETERMINATE, 4, "NOTIMP" },
	{ "garbage", 0, 0, 2, NULL, true, NULL, DNS_ERR_MALFORMED,
	    DNS_SEC_INDETERMINATE, -1, "malformed" },
	{ "other question", 0, 0, 2, NULL, false, "b.example",
	    DNS_ERR_MALFORMED, DNS_SEC_INDETERMINATE, 0, "question asked" },
};

static void
test_answer_classify(void)
{
	static const uint8_t garbage[] = { 1, 2, 3 };

	for (size_t i = 0; i < NITEMS(class_cases); i++) {
		const struct class_case *c = &class_cases[i];
		struct pk p;
		struct dns_answer *a;
		const char *e;

		pk_header(&p, c->rcode, 1, 0, 0);
		pk_question(&p, "a.example", DNS_TYPE_A);
		pk_rr_a(&p, "a.example", 60, "192.0.2.1");
		a = dns_answer_new_unbound(c->qname ? c->qname : "a.example",
		    DNS_TYPE_A, c->err, c->garbage ? garbage : p.b,
		    c->garbage ? 3 : (int)p.n, c->sec, c->why);
		e = dns_answer_error(a);
		if (dns_answer_status(a) != c->st ||
		    dns_answer_sec(a) != c->dsec ||
		    dns_answer_rcode(a) != c->want_rcode)
			printf("  case \"%s\": %s %s %d\n", c->name,
			    dns_status_str(dns_answer_status(a)),
			    dns_sec_str(dns_answer_sec(a)),
			    dns_answer_rcode(a));
		T_CHECK(dns_answer_status(a) == c->st);
		T_CHECK(dns_answer_sec(a) == c->dsec);
		T_CHECK(dns_answer_rcode(a) == c->want_rcode);
		if (c->errtext == NULL)
			T_CHECK(e == NULL);
		else
			T_CHECK(e != NULL && strstr(e, c->errtext) != NULL);
		T_CHECK((dns_answer_why_bogus(a) != NULL) ==
		    (c->st == DNS_ERR_BOGUS));
		if (c->st != DNS_OK)
			T_CHECK(dns_answer_count(a) == 0 &&
			    !dns_answer_nodata(a) && !dns_answer_nxdomain(a));
		dns_answer_free(a);
	}
}

static void
test_answer_typed(void)
{
	static const uint8_t tlsa[] = { 3, 1, 1, 0xaa, 0xbb };
	static const uint8_t txt[] = { 3, 'v', '=', 'S', 4, 'T', 'S', 'v',
		'1' };
	static const uint8_t txtnul[] = { 2, 'a', 0 };
	static const uint8_t txtbad[] = { 5, 'a' };
	struct pk p;
	struct dns_answer *a;
	uint8_t u, s, m;
	const uint8_t *d;
	size_t n;
	char *t, buf[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;
	socklen_t sl;
	uint8_t v6[16];

	pk_header(&p, 0, 2, 0, 0);
	pk_question(&p, "_25._tcp.mx.example", DNS_TYPE_TLSA);
	pk_rr_raw(&p, "_25._tcp.mx.example", DNS_TYPE_TLSA, 60, tlsa, 5);
	pk_rr_raw(&p, "_25._tcp.mx.example", DNS_TYPE_TLSA, 60, tlsa, 2);
	a = answer_of(&p, "_25._tcp.mx.example", DNS_TYPE_TLSA, 2);
	T_CHECK(dns_answer_count(a) == 2);
	T_CHECK(dns_answer_tlsa(a, 0, &u, &s, &m, &d, &n) == 0);
	T_CHECK(u == 3 && s == 1 && m == 1 && n == 2 && d[0] == 0xaa);
	T_CHECK(dns_answer_tlsa(a, 1, &u, &s, &m, &d, &n) == -1);
	T_CHECK(dns_answer_tlsa(a, 2, &u, &s, &m, &d, &n) == -1);
	dns_answer_free(a);

	pk_header(&p, 0, 3, 0, 0);
	pk_question(&p, "_mta-sts.example", DNS_TYPE_TXT);
	pk_rr_raw(&p, "_mta-sts.example", DNS_TYPE_TXT, 60, txt, sizeof(txt));
	pk_rr_raw(&p, "_mta-sts.example", DNS_TYPE_TXT, 60, txtnul, 3);
	pk_rr_raw(&p, "_mta-sts.example", DNS_TYPE_TXT, 60, txtbad, 2);
	a = answer_of(&p, "_mta-sts.example", DNS_TYPE_TXT, 0);
	t = dns_answer_txt(a, 0);
	T_STREQ(t, "v=STSv1");
	free(t);
	T_CHECK(dns_answer_txt(a, 1) == NULL);
	T_CHECK(dns_answer_txt(a, 2) == NULL);
	T_CHECK(dns_answer_tlsa(a, 0, &u, &s, &m, &d, &n) == -1);
	dns_answer_free(a);

	inet_pton(AF_INET6, "2001:db8::25", v6);
	pk_header(&p, 0, 1, 0, 0);
	pk_question(&p, "mx.example", DNS_TYPE_AAAA);
	pk_rr_raw(&p, "mx.example", DNS_TYPE_AAAA, 60, v6, 16);
	a = answer_of(&p, "mx.example", DNS_TYPE_AAAA, 2);
	T_CHECK(dns_answer_addr_str(a, 0, buf, sizeof(buf)) == 0);
	T_STREQ(buf, "2001:db8::25");
	T_CHECK(dns_answer_addr(a, 0, &ss, &sl) == 0);
	T_CHECK(ss.ss_family == AF_INET6 && sl == sizeof(struct sockaddr_in6));
	dns_answer_free(a);
}

static void
test_answer_error(void)
{
	struct dns_answer *a = dns_answer_new_error(
	    "mx.example", DNS_TYPE_A, DNS_ERR_TIMEOUT, "no answer within 5 ms");

	T_CHECK(dns_answer_status(a) == DNS_ERR_TIMEOUT);
	T_CHECK(dns_answer_sec(a) == DNS_SEC_INDETERMINATE);
	T_CHECK(dns_answer_rcode(a) == -1);
	T_STREQ(dns_answer_error(a), "no answer within 5 ms");
	T_STREQ(dns_answer_canonname(a), "mx.example");
	T_CHECK(dns_answer_count(a) == 0 && !dns_answer_nodata(a));
	dns_answer_free(a);
	dns_answer_free(NULL);
}

static void
test_selftest_explain(void)
{
	struct pk p;
	struct dns_answer *a;
	const char *e;

	pk_header(&p, 0, 1, 0, 0);
	pk_question(&p, ".", DNS_TYPE_DNSKEY);
	pk_rr_raw(&p, ".", DNS_TYPE_DNSKEY, 172800, "\x01\x01\x03\x08key", 7);
	a = answer_of(&p, ".", DNS_TYPE_DNSKEY, 2);
	T_CHECK(dns_selftest_explain(a) == NULL);
	dns_answer_free(a);

	a = answer_of(&p, ".", DNS_TYPE_DNSKEY, 0);
	e = dns_selftest_explain(a);
	T_CHECK(e != NULL && strstr(e, "insecure") != NULL &&
	    strstr(e, "strips RRSIGs") != NULL &&
	    strstr(e, "no trust anchor") != NULL);
	dns_answer_free(a);

	a = dns_answer_new_unbound(".", DNS_TYPE_DNSKEY, 0, p.b, (int)p.n, 1,
	    "no DNSKEY matches the DS");
	e = dns_selftest_explain(a);
	T_CHECK(e != NULL && strstr(e, "bogus") != NULL);
	dns_answer_free(a);

	a = dns_answer_new_unbound(".", DNS_TYPE_DNSKEY, 2, NULL, 0, 0, NULL);
	e = dns_selftest_explain(a);
	T_CHECK(e != NULL && strstr(e, "SERVFAIL") != NULL);
	dns_answer_free(a);

	a = dns_answer_new_error(".", DNS_TYPE_DNSKEY, DNS_ERR_TIMEOUT, "t");
	e = dns_selftest_explain(a);
	T_CHECK(e != NULL && strstr(e, "timed out") != NULL);
	dns_answer_free(a);

	a = dns_answer_new_error(
	    "example", DNS_TYPE_DNSKEY, DNS_ERR_OTHER, "x");
	T_CHECK(dns_selftest_explain(a) != NULL);
	dns_answer_free(a);
}

/*
 * libunbound reports silent servers as SERVFAIL: only a slow one is a
 * timeout (dns_answer_servfail_timeout), and the relay's resolver state
 * names each kind (relay_dns_explain).
 */
static void
test_servfail_timeout(void)
{
	static const struct {
		int err, sec;
		long ms;
		bool timeout;
	} cases[] = {
		{ 2, 0, 17400, true }, /* forwarder down: libunbound gave up */
		{ 2, 0, DNS_SLOW_SERVFAIL_MS, true },
		{ 2, 0, 40, false },    /* upstream answered SERVFAIL */
		{ 2, 1, 17400, false }, /* bogus is never a timeout */
		{ 0, 0, 17400, false }, /* an answer, however slow */
		{ 5, 0, 17400, false }, /* REFUSED */
	};
	struct dns_answer *a;
	char why[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		T_CHECK(dns_answer_servfail_timeout(cases[i].err, cases[i].sec,
		            cases[i].ms) == cases[i].timeout);

	a = dns_answer_new_error(".", DNS_TYPE_DNSKEY, DNS_ERR_TIMEOUT, "t");
	T_CHECK(relay_dns_explain(a, why, sizeof(why)) == 0);
	T_CHECK(strstr(why, "unreachable (timeout)") != NULL &&
	    strstr(why, "SERVFAIL") == NULL);
	dns_answer_free(a);
	a = dns_answer_new_unbound(".", DNS_TYPE_DNSKEY, 2, NULL, 0, 0, NULL);
	T_CHECK(relay_dns_explain(a, why, sizeof(why)) == 0);
	T_CHECK(strstr(why, "(SERVFAIL)") != NULL &&
	    strstr(why, "timeout") == NULL);
	dns_answer_free(a);
	a = dns_answer_new_unbound(
	    ".", DNS_TYPE_DNSKEY, 0, NULL, 0, 1, "no DNSKEY matches the DS");
	T_CHECK(relay_dns_explain(a, why, sizeof(why)) == 0);
	T_CHECK(strstr(why, "DNSSEC validation fails") != NULL &&
	    strstr(why, "bogus") != NULL);
	dns_answer_free(a);
}

/* ------------------------------------------------------------------ */
/* Names and strings. */

static void
test_name_check(void)
{
	static const struct {
		const char *name;
		const char *err; /* substring, NULL: valid */
	} cases[] = {
		{ ".", NULL },
		{ "example.com", NULL },
		{ "example.com.", NULL },
		{ "_25._tcp.MX.example.com", NULL },
		{ "", "empty name" },
		{ "..", "empty label" },
		{ "a..b", "empty label" },
		{ ".a", "empty label" },
		{ "a.b..", "empty label" },
		{ "a b", "invalid character" },
		{ "a\\.b", "invalid character" },
		{ "a\x7f", "invalid character" },
		{ "a(b", "invalid character" },
		{ "a@b.example", "invalid character" },
		{ "mx-1.exa_mple.com", NULL },
	};
	char big[300];
	const char *e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		e = dns_name_check(cases[i].name);
		if (cases[i].err == NULL)
			T_CHECK(e == NULL);
		else
			T_CHECK(e != NULL && strstr(e, cases[i].err) != NULL);
	}
	T_CHECK(dns_name_check(NULL) != NULL);
	memset(big, 'a', 64);
	memcpy(big + 64, ".b", 3);
	e = dns_name_check(big);
	T_CHECK(e != NULL && strstr(e, "63") != NULL);
	big[1] = '.';
	T_CHECK(dns_name_check(big) == NULL);
	/* 127 one-octet labels: 127 * 2 + 1 = 255 octets, fine; 128 not. */
	for (size_t i = 0; i < 127; i++) {
		big[2 * i] = 'a';
		big[2 * i + 1] = '.';
	}
	big[253] = '\0';
	T_CHECK(dns_name_check(big) == NULL);
	big[253] = '.';
	big[254] = 'a';
	big[255] = '\0';
	e = dns_name_check(big);
	T_CHECK(e != NULL && strstr(e, "255") != NULL);
}

static void
test_strings(void)
{
	T_STREQ(dns_type_str(DNS_TYPE_TLSA), "TLSA");
	T_STREQ(dns_type_str(DNS_TYPE_MX), "MX");
	T_STREQ(dns_type_str(65280), "TYPE65280");
	T_STREQ(dns_status_str(DNS_ERR_SERVFAIL), "servfail");
	T_STREQ(dns_status_str(DNS_OK), "ok");
	T_STREQ(dns_sec_str(DNS_SEC_SECURE), "secure");
	T_STREQ(dns_sec_str(DNS_SEC_INDETERMINATE), "indeterminate");
}

static void
test_setup_server(void)
{
	uint16_t port = 0;

	T_CHECK(dns_setup_server("127.0.0.1", &port) == 0 && port == 53);
	T_CHECK(dns_setup_server("127.0.0.1@5353", &port) == 0 && port == 5353);
	T_CHECK(dns_setup_server("::1@53", &port) == 0 && port == 53);
	T_CHECK(dns_setup_server("2001:db8::1", &port) == 0);
	T_CHECK(dns_setup_server("", &port) == -1);
	T_CHECK(dns_setup_server("@53", &port) == -1);
	T_CHECK(dns_setup_server("ns.example", &port) == -1);
	T_CHECK(dns_setup_server("127.0.0.1@", &port) == -1);
	T_CHECK(dns_setup_server("127.0.0.1@0", &port) == -1);
	T_CHECK(dns_setup_server("127.0.0.1@65536", &port) == -1);
	T_CHECK(dns_setup_server("127.0.0.1@53x", &port) == -1);
	T_CHECK(dns_setup_server("127.0.0.1:53", &port) == -1);
}

/* ------------------------------------------------------------------ */
/* Resolver construction. */

static char *test_anchor; /* a valid anchor for an unrelated zone */

static char *
write_temp(const char *text)
{
	char tmpl[] = "/tmp/test_dns_XXXXXX";
	int fd = mkstemp(tmpl);

	if (fd == -1 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("temp file");
		exit(1);
	}
	close(fd);
	return strdup(tmpl);
}

static bool
new_fails(
    struct event_base *base, const struct dns_options *o, const char *want)
{
	char *err = NULL;
	struct dns_resolver *r = dns_resolver_new(base, o, &err);
	bool ok = r == NULL && err != NULL && strstr(err, want) != NULL;

	if (!ok)
		printf("  want \"%s\", got %s\n", want, err ? err : "success");
	dns_resolver_free(r);
	free(err);
	return ok;
}

static void
test_resolver_errors(void)
{
	struct event_base *base = event_base_new();
	char *bad = write_temp("this is not a trust anchor\n");
	char *roots[] = { "127.0.0.1@5353", NULL };
	char *fwds[] = { "127.0.0.1", NULL };
	char *badaddr[] = { "127.0.0.1", "ns.example", NULL };
	char *badport[] = { "127.0.0.1@99999", NULL };
	struct dns_options o;

	memset(&o, 0, sizeof(o));
	o.trust_anchor_file = "/nonexistent/root.key";
	T_CHECK(new_fails(base, &o, "cannot read trust anchor file"));
	o.trust_anchor_file = bad;
	T_CHECK(new_fails(base, &o, "cannot start the resolver"));
	o.trust_anchor_file = NULL;
	o.root_servers = roots;
	o.forwarders = fwds;
	T_CHECK(new_fails(base, &o, "cannot both be set"));
	o.forwarders = NULL;
	o.root_servers = badaddr;
	T_CHECK(new_fails(base, &o, "bad root server address \"ns.example\""));
	o.root_servers = NULL;
	o.forwarders = badport;
	T_CHECK(new_fails(base, &o, "bad forwarder address"));
	unlink(bad);
	free(bad);
	event_base_free(base);
}

static void
test_resolver_ok(void)
{
	struct event_base *base = event_base_new();
	char *roots53[] = { "127.0.0.1", "::1@53", NULL };
	char *roots[] = { "127.0.0.1@5353", NULL };
	char *empty[] = { NULL };
	struct dns_options o;
	char *err = NULL;
	struct dns_resolver *r;

	memset(&o, 0, sizeof(o));
	r = dns_resolver_new(base, &o, &err);
	T_CHECK(r != NULL && err == NULL);
	dns_resolver_free(r);
	o.root_servers = roots53;
	o.trust_anchor_file = test_anchor;
	r = dns_resolver_new(base, &o, &err);
	T_CHECK(r != NULL);
	dns_resolver_free(r);
	o.root_servers = roots;
	o.forwarders = empty;
	r = dns_resolver_new(base, &o, &err);
	T_CHECK(r != NULL);
	dns_resolver_free(r);
	dns_resolver_free(NULL);
	dns_query_cancel(NULL);
	event_base_free(base);
}

/* ------------------------------------------------------------------ */
/* Live: a fake DNS server on 127.0.0.1 and the resolver forwarding to it. */

enum fake_mode { FAKE_ANSWER, FAKE_SILENT, FAKE_SERVFAIL, FAKE_REFUSED };

struct fake {
	int fd;
	uint16_t port;
	struct event *ev;
	char seen[64][128]; /* qnames received, in order */
	size_t nseen;
};

static enum fake_mode
fake_mode_of(const char *qname)
{
	if (strncmp(qname, "silent", 6) == 0)
		return FAKE_SILENT;
	if (strncmp(qname, "servfail", 8) == 0)
		return FAKE_SERVFAIL;
	if (strncmp(qname, "refused", 7) == 0)
		return FAKE_REFUSED;
	if (strstr(qname, "example") != NULL || strcmp(qname, ".") == 0)
		return FAKE_ANSWER;
	return FAKE_SILENT;
}

/* Answer: A 192.0.2.1 and MX 10 mx.<qname>; NXDOMAIN for "nx.*". */
static void
fake_reply(struct fake *f, const uint8_t *q, size_t qlen,
    const struct dns_packet *qp, struct sockaddr_storage *from,
    socklen_t fromlen)
{
	enum fake_mode mode = fake_mode_of(dns_packet_qname(qp));
	const char *qname = dns_packet_qname(qp);
	uint16_t qtype = dns_packet_qtype(qp);
	char mx[300];
	struct pk p;
	unsigned rcode = strncmp(qname, "nx.", 3) == 0 ? 3 : 0;
	bool data;

	if (mode == FAKE_SILENT)
		return;
	if (mode == FAKE_SERVFAIL || mode == FAKE_REFUSED)
		rcode = mode == FAKE_SERVFAIL ? 2 : 5;
	data = rcode == 0 && (qtype == DNS_TYPE_A || qtype == DNS_TYPE_MX);
	pk_header(&p, rcode, data ? 1 : 0, 0, 0);
	p.b[0] = q[0];
	p.b[1] = q[1];
	p.b[2] = 0x85; /* QR AA RD */
	pk_question(&p, qname, qtype);
	if (data && qtype == DNS_TYPE_A)
		pk_rr_a(&p, qname, 120, "192.0.2.1");
	if (data && qtype == DNS_TYPE_MX) {
		snprintf(mx, sizeof(mx), "mx.%s", qname);
		pk_rr_mx(&p, qname, 120, 10, mx);
	}
	(void)qlen;
	sendto(f->fd, p.b, p.n, 0, (struct sockaddr *)from, fromlen);
}

static void
fake_read(evutil_socket_t fd, short what, void *arg)
{
	struct fake *f = arg;
	uint8_t q[1500];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	ssize_t n =
	    recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
	struct dns_packet *qp;
	const char *err;

	if (n <= 0 || (qp = dns_packet_parse(q, (size_t)n, &err)) == NULL)
		return;
	if (f->nseen < 64)
		snprintf(f->seen[f->nseen++], sizeof(f->seen[0]), "%s",
		    dns_packet_qname(qp));
	fake_reply(f, q, (size_t)n, qp, &from, fromlen);
	dns_packet_free(qp);
}

static void
fake_start(struct fake *f, struct event_base *base)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (f->fd == -1 ||
	    bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(f->fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("fake server");
		exit(1);
	}
	evutil_make_socket_nonblocking(f->fd);
	f->port = ntohs(sin.sin_port);
	f->ev = event_new(base, f->fd, EV_READ | EV_PERSIST, fake_read, f);
	event_add(f->ev, NULL);
}

static void
fake_stop(struct fake *f)
{
	event_free(f->ev);
	close(f->fd);
}

static bool
fake_saw(const struct fake *f, const char *qname)
{
	for (size_t i = 0; i < f->nseen; i++)
		if (strcmp(f->seen[i], qname) == 0)
			return true;
	return false;
}

struct got {
	int calls;
	struct dns_answer *a;
	struct dns_resolver *free_me; /* freed from inside the callback */
	struct dns_query *cancel_me;  /* cancelled from inside */
};

static void
got_cb(struct dns_answer *a, void *arg)
{
	struct got *g = arg;

	g->calls++;
	dns_answer_free(g->a);
	g->a = a;
	if (g->cancel_me != NULL)
		dns_query_cancel(g->cancel_me);
	g->cancel_me = NULL;
	if (g->free_me != NULL)
		dns_resolver_free(g->free_me);
	g->free_me = NULL;
}

static void
got_reset(struct got *g)
{
	dns_answer_free(g->a);
	memset(g, 0, sizeof(*g));
}

/* Run the loop until *calls reaches want or ms pass. */
static void
run_until(struct event_base *base, const int *calls, int want, int ms)
{
	struct timeval tv = { 0, 10000 };

	for (int i = 0; i < ms / 10 && *calls < want; i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

static struct dns_resolver *
fake_resolver(struct event_base *base, const struct fake *f, bool as_root,
    unsigned timeout_ms)
{
	static char addr[64];
	static char *list[] = { addr, NULL };
	struct dns_options o;
	char *err = NULL;
	struct dns_resolver *r;

	snprintf(addr, sizeof(addr), "127.0.0.1@%u", (unsigned)f->port);
	memset(&o, 0, sizeof(o));
	o.trust_anchor_file = test_anchor;
	o.timeout_ms = timeout_ms;
	if (as_root)
		o.root_servers = list;
	else
		o.forwarders = list;
	r = dns_resolver_new(base, &o, &err);
	if (r == NULL) {
		printf("  resolver: %s\n", err);
		exit(1);
	}
	return r;
}

static void
test_live_answers(void)
{
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns_resolver *r;
	struct got g = { 0 };
	const char *host;
	uint16_t pref;
	char ip[64];

	fake_start(&f, base);
	r = fake_resolver(base, &f, true, 5000);
	dns_query(r, "Mail.EXAMPLE.", DNS_TYPE_MX, got_cb, &g);
	T_CHECK(g.calls == 0);
	run_until(base, &g.calls, 1, 5000);
	T_CHECK(g.calls == 1);
	if (g.a != NULL) {
		if (dns_answer_status(g.a) != DNS_OK)
			printf("  %s\n", dns_answer_error(g.a));
		T_CHECK(dns_answer_status(g.a) == DNS_OK);
		T_CHECK(dns_answer_sec(g.a) == DNS_SEC_INSECURE);
		T_STREQ(dns_answer_qname(g.a), "mail.example");
		T_CHECK(dns_answer_count(g.a) == 1);
		T_CHECK(dns_answer_mx(g.a, 0, &pref, &host) == 0 && pref == 10);
		T_STREQ(host, "mx.mail.example");
	}
	got_reset(&g);

	dns_query(r, "mx.mail.example", DNS_TYPE_A, got_cb, &g);
	run_until(base, &g.calls, 1, 5000);
	T_CHECK(g.calls == 1 && g.a != NULL &&
	    dns_answer_addr_str(g.a, 0, ip, sizeof(ip)) == 0);
	T_STREQ(ip, "192.0.2.1");
	got_reset(&g);

	dns_query(r, "nx.example", DNS_TYPE_A, got_cb, &g);
	run_until(base, &g.calls, 1, 5000);
	T_CHECK(g.calls == 1 && g.a != NULL && dns_answer_nxdomain(g.a) &&
	    dns_answer_status(g.a) == DNS_OK);
	got_reset(&g);

	dns_query(r, "refused.example", DNS_TYPE_A, got_cb, &g);
	run_until(base, &g.calls, 1, 5000);
	T_CHECK(
	    g.calls == 1 && g.a != NULL && dns_answer_status(g.a) != DNS_OK);
	got_reset(&g);

	/* Insecure everywhere: the self-test must say so, loudly. */
	dns_selftest(r, got_cb, &g);
	run_until(base, &g.calls, 1, 5000);
	T_CHECK(
	    g.calls == 1 && g.a != NULL && dns_selftest_explain(g.a) != NULL);
	got_reset(&g);

	dns_resolver_free(r);
	fake_stop(&f);
	event_base_free(base);
}

/* A name that the fake never answers hits our own deadline. */
static void
test_live_timeout(void)
{
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns_resolver *r;
	struct got g = { 0 };
	struct got late = { 0 };

	fake_start(&f, base);
	r = fake_resolver(base, &f, false, 300);
	dns_query(r, "silent.example", DNS_TYPE_A, got_cb, &g);
	run_until(base, &g.calls, 1, 3000);
	T_CHECK(g.calls == 1 && g.a != NULL &&
	    dns_answer_status(g.a) == DNS_ERR_TIMEOUT);
	if (g.a != NULL)
		T_CHECK(strstr(dns_answer_error(g.a), "300 ms") != NULL);
	/* libunbound keeps trying; its late result must go nowhere. */
	dns_query(r, "mail.example", DNS_TYPE_A, got_cb, &late);
	run_until(base, &late.calls, 1, 3000);
	T_CHECK(g.calls == 1 && late.calls == 1);
	got_reset(&g);
	got_reset(&late);
	dns_resolver_free(r);
	fake_stop(&f);
	event_base_free(base);
}

/*
 * dns_resolver_reset: a query in flight is answered as a timeout, and the
 * fresh context answers the next one.
 */
static void
test_live_reset(void)
{
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns_resolver *r;
	struct got g = { 0 }, after = { 0 };
	char *err = NULL;

	fake_start(&f, base);
	r = fake_resolver(base, &f, false, 5000);
	dns_query(r, "silent.example", DNS_TYPE_A, got_cb, &g);
	run_until(base, &g.calls, 1, 200);
	T_CHECK(g.calls == 0);
	T_CHECK(dns_resolver_reset(r, &err) == 0 && err == NULL);
	run_until(base, &g.calls, 1, 1000);
	T_CHECK(g.calls == 1 && g.a != NULL &&
	    dns_answer_status(g.a) == DNS_ERR_TIMEOUT);
	if (g.a != NULL)
		T_CHECK(strstr(dns_answer_error(g.a), "restarted") != NULL);
	dns_query(r, "mail.example", DNS_TYPE_A, got_cb, &after);
	run_until(base, &after.calls, 1, 3000);
	T_CHECK(after.calls == 1 && after.a != NULL &&
	    dns_answer_status(after.a) == DNS_OK);
	got_reset(&g);
	got_reset(&after);
	free(err);
	dns_resolver_free(r);
	fake_stop(&f);
	event_base_free(base);
}

/* Cancel, free with pending queries, free and cancel from callbacks. */
static void
test_live_cancel(void)
{
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns_resolver *r;
	struct dns_query *q;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 };

	fake_start(&f, base);
	r = fake_resolver(base, &f, false, 2000);
	q = dns_query(r, "one.example", DNS_TYPE_A, got_cb, &g1);
	dns_query_cancel(q);
	q = dns_query(r, "silent.cancel.example", DNS_TYPE_A, got_cb, &g1);
	run_until(base, &g2.calls, 1, 300);
	dns_query_cancel(q);
	dns_query(r, "two.example", DNS_TYPE_A, got_cb, &g2);
	run_until(base, &g2.calls, 1, 3000);
	T_CHECK(g1.calls == 0 && g2.calls == 1);

	/* A callback that cancels another query and frees the resolver. */
	g3.cancel_me =
	    dns_query(r, "silent.three.example", DNS_TYPE_A, got_cb, &g1);
	g3.free_me = r;
	dns_query(r, "three.example", DNS_TYPE_A, got_cb, &g3);
	dns_query(r, "silent.four.example", DNS_TYPE_A, got_cb, &g1);
	run_until(base, &g3.calls, 1, 3000);
	T_CHECK(g3.calls == 1 && g3.free_me == NULL);
	run_until(base, &g1.calls, 1, 500);
	T_CHECK(g1.calls == 0);

	/* Free with queries pending in libunbound: no callbacks. */
	r = fake_resolver(base, &f, false, 2000);
	dns_query(r, "silent.five.example", DNS_TYPE_A, got_cb, &g1);
	dns_query(r, "silent.six.example", DNS_TYPE_MX, got_cb, &g1);
	run_until(base, &g1.calls, 1, 200);
	dns_query(r, "bad..name", DNS_TYPE_MX, got_cb, &g1);
	dns_resolver_free(r);
	run_until(base, &g1.calls, 1, 300);
	T_CHECK(g1.calls == 0);
	got_reset(&g1);
	got_reset(&g2);
	got_reset(&g3);
	fake_stop(&f);
	event_base_free(base);
}

/* Bad names and local answers never call back from inside dns_query(). */
static void
test_live_deferred(void)
{
	struct event_base *base = event_base_new();
	struct dns_options o;
	char *err = NULL;
	struct dns_resolver *r;
	struct got g = { 0 };
	char ip[64];

	/*
	 * The default resolver answers "localhost" from libunbound's local
	 * zone, synchronously inside ub_resolve_event(): no traffic.
	 */
	memset(&o, 0, sizeof(o));
	r = dns_resolver_new(base, &o, &err);
	dns_query(r, "localhost", DNS_TYPE_A, got_cb, &g);
	T_CHECK(g.calls == 0);
	run_until(base, &g.calls, 1, 1000);
	T_CHECK(g.calls == 1 && g.a != NULL &&
	    dns_answer_status(g.a) == DNS_OK &&
	    dns_answer_addr_str(g.a, 0, ip, sizeof(ip)) == 0);
	T_STREQ(ip, "127.0.0.1");
	got_reset(&g);

	dns_query(r, "a..b", DNS_TYPE_A, got_cb, &g);
	T_CHECK(g.calls == 0);
	run_until(base, &g.calls, 1, 1000);
	T_CHECK(g.calls == 1 && g.a != NULL &&
	    dns_answer_status(g.a) == DNS_ERR_OTHER &&
	    strstr(dns_answer_error(g.a), "empty label") != NULL);
	got_reset(&g);
	dns_resolver_free(r);
	event_base_free(base);
}

/*
 * With root_servers, libunbound's special-use zones must not answer:
 * every one of these names has to reach the (fake) root.
 */
static void
test_live_no_local_zones(void)
{
	static const struct {
		const char *name;
		uint16_t type;
	} names[] = {
		{ "localhost", DNS_TYPE_A },
		{ "silent.test", DNS_TYPE_A },
		{ "silent.invalid", DNS_TYPE_A },
		{ "silent.onion", DNS_TYPE_A },
		{ "silent.home.arpa", DNS_TYPE_A },
		{ "1.0.0.127.in-addr.arpa", 12 },
		{ "1.0.168.192.in-addr.arpa", 12 },
		{ "1.0.20.172.in-addr.arpa", 12 },
		{ "1.0.99.100.in-addr.arpa", 12 },
		{ "1.0.0.10.in-addr.arpa", 12 },
	};
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns_resolver *r;
	struct got g = { 0 };
	size_t n = sizeof(names) / sizeof(*names);

	fake_start(&f, base);
	r = fake_resolver(base, &f, true, 400);
	for (size_t i = 0; i < n; i++)
		dns_query(r, names[i].name, names[i].type, got_cb, &g);
	run_until(base, &g.calls, (int)n, 3000);
	T_CHECK(g.calls == (int)n);
	if (g.a != NULL && dns_answer_status(g.a) != DNS_ERR_TIMEOUT)
		printf("  last: %s\n", dns_answer_error(g.a));
	T_CHECK(g.a != NULL && dns_answer_status(g.a) == DNS_ERR_TIMEOUT);
	for (size_t i = 0; i < n; i++) {
		if (!fake_saw(&f, names[i].name))
			printf("  %s was answered locally\n", names[i].name);
		T_CHECK(fake_saw(&f, names[i].name));
	}
	got_reset(&g);
	dns_resolver_free(r);
	fake_stop(&f);
	event_base_free(base);
}

int
main(void)
{
	test_anchor = write_temp(
	    "anchor.invalid. IN DS 12345 8 2 "
	    "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
	    "\n");
	T_RUN(test_parse_table);
	T_RUN(test_parse_name_length);
	T_RUN(test_parse_presentation);
	T_RUN(test_parse_records);
	T_RUN(test_answer_mx);
	T_RUN(test_answer_cname_chain);
	T_RUN(test_answer_cname_loop);
	T_RUN(test_answer_negative);
	T_RUN(test_answer_classify);
	T_RUN(test_answer_typed);
	T_RUN(test_answer_error);
	T_RUN(test_selftest_explain);
	T_RUN(test_servfail_timeout);
	T_RUN(test_name_check);
	T_RUN(test_strings);
	T_RUN(test_setup_server);
	T_RUN(test_resolver_errors);
	T_RUN(test_resolver_ok);
	T_RUN(test_live_deferred);
	T_RUN(test_live_answers);
	T_RUN(test_live_timeout);
	T_RUN(test_live_reset);
	T_RUN(test_live_cancel);
	T_RUN(test_live_no_local_zones);
	unlink(test_anchor);
	free(test_anchor);
	T_EXIT();
}
