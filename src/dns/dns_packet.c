/*
 * dns_packet: a strict parser of DNS messages (RFC 1035 §4.1).
 *
 * The input is untrusted bytes, so every read is bounded by the packet
 * length, compression pointers may only point backwards and each one must
 * land before the previous one's target (so a chain of pointers always
 * terminates), names are capped at 255 octets, and the rdata of the types
 * the rest of danerelay interprets (A, AAAA, NS, CNAME, SOA, MX, OPT) must
 * have exactly the shape its RFC gives it. The first defect ends the parse.
 */
#include "dns/dns_packet.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define HDR_LEN       12
#define NAME_WIRE_MAX 255                     /* RFC 1035 §2.3.4 */
#define NAME_TEXT_MAX (NAME_WIRE_MAX * 4 + 2) /* every octet as \DDD */
#define PTR_HOPS_MAX  128
#define RR_FIXED_LEN  10                 /* type, class, ttl, rdlength */
#define RR_MIN_LEN    (1 + RR_FIXED_LEN) /* root owner, no rdata */

#define TYPE_A     1
#define TYPE_NS    2
#define TYPE_CNAME 5
#define TYPE_SOA   6
#define TYPE_MX    15
#define TYPE_AAAA  28
#define TYPE_OPT   41
#define CLASS_IN   1

struct dns_packet {
	uint8_t *wire; /* private copy; rr[].rdata points into it */
	size_t len;
	int rcode;
	char *qname;
	uint16_t qtype;
	uint16_t qclass;
	struct dns_rr *rr;
	size_t nrr;
	bool have_opt;
};

/* A read position in the packet. */
struct cur {
	const uint8_t *w;
	size_t len;
	size_t off;
};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/*
 * Append one label octet in presentation form: lowercase, "\." for a dot
 * inside a label, a backslash before the other zone-file specials, and \DDD
 * for anything that is not a printable ASCII character (RFC 4343 §2.1).
 */
static size_t
name_put_octet(char *out, size_t o, uint8_t c)
{
	static const char special[] = ".\\\"();$@";

	if (c >= 'A' && c <= 'Z')
		c = (uint8_t)(c - 'A' + 'a');
	if (c <= 0x20 || c >= 0x7f) {
		out[o++] = '\\';
		out[o++] = (char)('0' + c / 100);
		out[o++] = (char)('0' + c / 10 % 10);
		out[o++] = (char)('0' + c % 10);
		return o;
	}
	if (strchr(special, c) != NULL)
		out[o++] = '\\';
	out[o++] = (char)c;
	return o;
}

/* Follow a compression pointer at off (RFC 1035 §4.1.4). */
static const char *
name_follow(
    const struct cur *c, size_t off, size_t *target, size_t *limit, int *hops)
{
	size_t t;

	if (off + 1 >= c->len)
		return "compression pointer runs past the end of the packet";
	t = ((size_t)(c->w[off] & 0x3f) << 8) | c->w[off + 1];
	if (t < HDR_LEN)
		return "compression pointer into the header";
	/* Only to a prior occurrence, and each hop further back: no loops. */
	if (t >= off || t >= *limit)
		return "compression pointer loop or forward pointer";
	if (++*hops > PTR_HOPS_MAX)
		return "too many compression pointers";
	*limit = t;
	*target = t;
	return NULL;
}

/*
 * Read a possibly compressed name at c->off into out (NAME_TEXT_MAX bytes)
 * and advance c->off past it. Returns NULL or the defect.
 */
static const char *
name_read(struct cur *c, char *out)
{
	size_t off = c->off, next = 0, limit = c->off, wirelen = 1, o = 0;
	const char *err;
	int hops = 0;

	for (;;) {
		uint8_t n;

		if (off >= c->len)
			return "name runs past the end of the packet";
		n = c->w[off];
		if ((n & 0xc0) == 0xc0) {
			if (hops == 0)
				next = off + 2;
			if ((err = name_follow(c, off, &off, &limit, &hops)))
				return err;
			continue;
		}
		if ((n & 0xc0) != 0)
			return "unsupported label type";
		if (n == 0)
			break;
		wirelen += (size_t)n + 1;
		if (wirelen > NAME_WIRE_MAX)
			return "name longer than 255 octets";
		if (off + 1 + n > c->len)
			return "label runs past the end of the packet";
		if (o > 0)
			out[o++] = '.';
		for (size_t i = 1; i <= n; i++)
			o = name_put_octet(out, o, c->w[off + i]);
		off += 1 + (size_t)n;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	c->off = hops > 0 ? next : off + 1;
	return NULL;
}

/* Read a name that must end exactly at end (a name-only rdata field). */
static const char *
name_read_to(struct cur *c, size_t end, char *out)
{
	const char *err;

	if ((err = name_read(c, out)))
		return err;
	if (c->off != end)
		return "name does not fit its rdata";
	return NULL;
}

/* NS and CNAME: one name (RFC 1035 §3.3.1, §3.3.11). */
static const char *
rdata_target(struct cur *c, size_t end, struct dns_rr *rr)
{
	char name[NAME_TEXT_MAX];
	const char *err;

	if ((err = name_read_to(c, end, name)))
		return err;
	rr->target = xstrdup(name);
	return NULL;
}

/* MX: preference and exchange (RFC 1035 §3.3.9). */
static const char *
rdata_mx(struct cur *c, size_t end, struct dns_rr *rr)
{
	if (rr->rdlen < 3)
		return "MX rdata too short";
	rr->pref = get16(c->w + c->off);
	c->off += 2;
	return rdata_target(c, end, rr);
}

/* SOA: two names and five 32-bit fields (RFC 1035 §3.3.13). */
static const char *
rdata_soa(struct cur *c, size_t end, struct dns_rr *rr)
{
	char name[NAME_TEXT_MAX];
	const char *err;

	if ((err = name_read(c, name)) || (err = name_read(c, name)))
		return err;
	if (c->off > end || end - c->off != 20)
		return "SOA rdata has the wrong length";
	rr->soa_minimum = get32(c->w + c->off + 16);
	return NULL;
}

/* OPT: once, in the additional section, owner root (RFC 6891 §6.1.1). */
static const char *
rdata_opt(struct dns_packet *p, struct dns_rr *rr)
{
	if (rr->section != DNS_SECTION_ADDITIONAL)
		return "OPT record outside the additional section";
	if (strcmp(rr->owner, ".") != 0)
		return "OPT record not owned by the root";
	if (p->have_opt)
		return "more than one OPT record";
	p->have_opt = true;
	/* The TTL field carries the upper 8 bits of the rcode (§6.1.3). */
	p->rcode |= (int)(rr->ttl >> 24) << 4;
	return NULL;
}

static const char *
rdata_check(struct dns_packet *p, struct cur *c, struct dns_rr *rr)
{
	size_t end = c->off + rr->rdlen;

	switch (rr->type) {
	case TYPE_NS:
	case TYPE_CNAME:
		return rdata_target(c, end, rr);
	case TYPE_MX:
		return rdata_mx(c, end, rr);
	case TYPE_SOA:
		return rdata_soa(c, end, rr);
	case TYPE_OPT:
		return rdata_opt(p, rr);
	case TYPE_A:
		if (rr->rclass == CLASS_IN && rr->rdlen != 4)
			return "A rdata is not 4 octets";
		return NULL;
	case TYPE_AAAA:
		if (rr->rclass == CLASS_IN && rr->rdlen != 16)
			return "AAAA rdata is not 16 octets";
		return NULL;
	default:
		return NULL;
	}
}

static const char *
rr_read(struct dns_packet *p, struct cur *c, struct dns_rr *rr)
{
	char name[NAME_TEXT_MAX];
	struct cur rc;
	const uint8_t *f;
	const char *err;

	if ((err = name_read(c, name)))
		return err;
	rr->owner = xstrdup(name);
	if (c->len - c->off < RR_FIXED_LEN)
		return "record header runs past the end of the packet";
	f = c->w + c->off;
	rr->type = get16(f);
	rr->rclass = get16(f + 2);
	rr->ttl = get32(f + 4);
	rr->rdlen = get16(f + 8);
	c->off += RR_FIXED_LEN;
	if (rr->rdlen > c->len - c->off)
		return "rdata runs past the end of the packet";
	rr->rdata = c->w + c->off;
	/* RFC 2181 §8: a TTL with the top bit set is treated as zero. */
	if (rr->type != TYPE_OPT && rr->ttl > 0x7fffffffU)
		rr->ttl = 0;
	rc = *c;
	if ((err = rdata_check(p, &rc, rr)))
		return err;
	c->off += rr->rdlen;
	return NULL;
}

static const char *
question_read(struct dns_packet *p, struct cur *c)
{
	char name[NAME_TEXT_MAX];
	const char *err;

	if ((err = name_read(c, name)))
		return err;
	if (c->len - c->off < 4)
		return "question runs past the end of the packet";
	p->qname = xstrdup(name);
	p->qtype = get16(c->w + c->off);
	p->qclass = get16(c->w + c->off + 2);
	c->off += 4;
	return NULL;
}

static const char *
sections_read(struct dns_packet *p, struct cur *c, const uint16_t count[3])
{
	static const enum dns_section sec[3] = { DNS_SECTION_ANSWER,
		DNS_SECTION_AUTHORITY, DNS_SECTION_ADDITIONAL };
	const char *err;
	size_t total = (size_t)count[0] + count[1] + count[2];

	/* Cheap sanity bound before allocating for the claimed counts. */
	if (total > (c->len - c->off) / RR_MIN_LEN)
		return "record counts exceed the packet size";
	p->rr = xcalloc(total, sizeof(*p->rr));
	for (size_t s = 0; s < 3; s++) {
		for (size_t i = 0; i < count[s]; i++) {
			struct dns_rr *rr = &p->rr[p->nrr++];

			rr->section = sec[s];
			if ((err = rr_read(p, c, rr)))
				return err;
		}
	}
	if (c->off != c->len)
		return "trailing bytes after the last record";
	return NULL;
}

static const char *
packet_read(struct dns_packet *p)
{
	struct cur c = { p->wire, p->len, HDR_LEN };
	uint16_t count[3];
	const char *err;

	p->rcode = p->wire[3] & 0x0f;
	if (get16(p->wire + 4) != 1)
		return "question count is not 1";
	count[0] = get16(p->wire + 6);
	count[1] = get16(p->wire + 8);
	count[2] = get16(p->wire + 10);
	if ((err = question_read(p, &c)))
		return err;
	return sections_read(p, &c, count);
}

struct dns_packet *
dns_packet_parse(const uint8_t *wire, size_t len, const char **errstr)
{
	struct dns_packet *p;
	const char *err;

	if (len < HDR_LEN) {
		*errstr = "truncated header";
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->wire = xmemdup(wire, len);
	p->len = len;
	if ((err = packet_read(p)) != NULL) {
		dns_packet_free(p);
		*errstr = err;
		return NULL;
	}
	*errstr = NULL;
	return p;
}

void
dns_packet_free(struct dns_packet *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nrr; i++) {
		free(p->rr[i].owner);
		free(p->rr[i].target);
	}
	free(p->rr);
	free(p->qname);
	free(p->wire);
	free(p);
}

int
dns_packet_rcode(const struct dns_packet *p)
{
	return p->rcode;
}

const char *
dns_packet_qname(const struct dns_packet *p)
{
	return p->qname;
}

uint16_t
dns_packet_qtype(const struct dns_packet *p)
{
	return p->qtype;
}

size_t
dns_packet_rr_count(const struct dns_packet *p)
{
	return p->nrr;
}

const struct dns_rr *
dns_packet_rr(const struct dns_packet *p, size_t i)
{
	return i < p->nrr ? &p->rr[i] : NULL;
}
