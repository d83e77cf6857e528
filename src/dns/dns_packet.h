/*
 * dns_packet: a strict parser of DNS wire-format messages (RFC 1035 §4),
 * used on the answer packets libunbound hands back. It decompresses names,
 * bounds every read by the packet length, and refuses pointer loops. It does
 * not validate anything: DNSSEC validation is libunbound's job.
 */
#ifndef DR_DNS_PACKET_H
#define DR_DNS_PACKET_H

#include <stddef.h>
#include <stdint.h>

struct dns_packet;

enum dns_section {
	DNS_SECTION_ANSWER,
	DNS_SECTION_AUTHORITY,
	DNS_SECTION_ADDITIONAL,
};

struct dns_rr {
	enum dns_section section;
	char *owner; /* lowercase presentation, no trailing dot */
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	const uint8_t *rdata; /* points into the packet copy */
	uint16_t rdlen;
	char *target;         /* CNAME/MX/NS target name, else NULL */
	uint16_t pref;        /* MX preference */
	uint32_t soa_minimum; /* SOA MINIMUM (RFC 2308 §5), else 0 */
};

/*
 * Parse len bytes of wire data. Returns new (free with dns_packet_free), or
 * NULL with *errstr (static) describing the first defect. The question count
 * must be 1; the rcode includes the EDNS extended bits (RFC 6891 §6.1.3).
 * RR TTLs with the top bit set read as 0 (RFC 2181 §8); the OPT record keeps
 * its raw TTL field.
 */
struct dns_packet *dns_packet_parse(
    const uint8_t *wire, size_t len, const char **errstr);
void dns_packet_free(struct dns_packet *p); /* NULL is fine */

/* Accessors; the strings and records are borrowed, valid until free. */
int dns_packet_rcode(const struct dns_packet *p);
const char *dns_packet_qname(const struct dns_packet *p);
uint16_t dns_packet_qtype(const struct dns_packet *p);
size_t dns_packet_rr_count(const struct dns_packet *p);
/* Record i, answer then authority then additional; NULL if i >= count. */
const struct dns_rr *dns_packet_rr(const struct dns_packet *p, size_t i);

#endif
