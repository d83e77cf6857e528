/*
 * dns_answer: one lookup's result, classified once (RFC 7672 §2.1.1).
 *
 * libunbound hands back a wire packet, a security state and maybe a
 * why-bogus text. This file turns that into the status the rest of
 * danerelay acts on: bogus and indeterminate are lookup errors, SERVFAIL
 * and other failing rcodes are lookup errors, and NOERROR/NXDOMAIN with or
 * without data are answers. For answers it also works out the CNAME chain
 * from the query name, the canonical name, the records of the asked type
 * at that name, the TTL and the kind of denial of existence.
 */
#include "dns/dns_answer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "dns/dns_packet.h"

#define CNAME_CHAIN_MAX 32
#define TXT_MAX         65535
#define TYPE_NSEC       47
#define TYPE_NSEC3      50
#define CLASS_IN        1
#define RCODE_NOERROR   0
#define RCODE_SERVFAIL  2
#define RCODE_NXDOMAIN  3

struct dns_answer {
	char *qname;
	uint16_t qtype;
	enum dns_status status;
	enum dns_sec sec;
	int rcode; /* -1: no DNS rcode known */
	uint32_t ttl;
	char *why_bogus;
	char *error; /* NULL when status is DNS_OK */
	struct dns_packet *pkt;
	const struct dns_rr **cname; /* chain links, in order */
	size_t ncname;
	const char *canon;         /* qname, or the last link's target */
	const struct dns_rr **rec; /* qtype records owned by canon */
	size_t nrec;
	const char *denial;
};

static const char *
rcode_str(int rcode)
{
	static const char *names[] = { "NOERROR", "FORMERR", "SERVFAIL",
		"NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
		"NXRRSET", "NOTAUTH", "NOTZONE" };

	if (rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	return rcode == 16 ? "BADVERS" : "unknown rcode";
}

static struct dns_answer *
answer_new(const char *qname, uint16_t qtype)
{
	struct dns_answer *a = xcalloc(1, sizeof(*a));

	a->qname = xstrdup(qname);
	a->qtype = qtype;
	a->canon = a->qname;
	a->rcode = -1;
	a->status = DNS_OK;
	a->sec = DNS_SEC_INDETERMINATE;
	return a;
}

/* Mark a as failed; text is formatted by the caller. Takes ownership. */
static struct dns_answer *
answer_fail(struct dns_answer *a, enum dns_status st, char *text)
{
	a->status = st;
	if (st != DNS_ERR_BOGUS)
		a->sec = DNS_SEC_INDETERMINATE;
	free(a->error);
	a->error = text;
	return a;
}

struct dns_answer *
dns_answer_new_error(
    const char *qname, uint16_t qtype, enum dns_status st, const char *text)
{
	ASSERT(st != DNS_OK);
	return answer_fail(answer_new(qname, qtype), st, xstrdup(text));
}

static const struct dns_rr *
answer_find_cname(const struct dns_answer *a, const char *owner)
{
	for (size_t i = 0; i < dns_packet_rr_count(a->pkt); i++) {
		const struct dns_rr *rr = dns_packet_rr(a->pkt, i);

		if (rr->section == DNS_SECTION_ANSWER &&
		    rr->type == DNS_TYPE_CNAME && rr->rclass == CLASS_IN &&
		    strcmp(rr->owner, owner) == 0)
			return rr;
	}
	return NULL;
}

static bool
answer_chain_has(const struct dns_answer *a, const char *name)
{
	if (strcmp(a->qname, name) == 0)
		return true;
	for (size_t i = 0; i < a->ncname; i++)
		if (strcmp(a->cname[i]->target, name) == 0)
			return true;
	return false;
}

/*
 * Follow CNAMEs from the query name through the answer section, in order
 * (RFC 7672 §2.1.3: a DNAME arrives as its synthesized CNAME, so this
 * covers it too). A query for CNAME itself is not followed. Returns -1 on a
 * loop or an absurdly long chain.
 */
static int
answer_chain(struct dns_answer *a)
{
	const struct dns_rr *rr;

	if (a->qtype == DNS_TYPE_CNAME)
		return 0;
	a->cname = xcalloc(CNAME_CHAIN_MAX, sizeof(*a->cname));
	while ((rr = answer_find_cname(a, a->canon)) != NULL) {
		if (a->ncname == CNAME_CHAIN_MAX ||
		    answer_chain_has(a, rr->target))
			return -1;
		a->cname[a->ncname++] = rr;
		a->canon = rr->target;
	}
	return 0;
}

static void
answer_records(struct dns_answer *a)
{
	size_t n = dns_packet_rr_count(a->pkt);

	a->rec = xcalloc(n, sizeof(*a->rec));
	for (size_t i = 0; i < n; i++) {
		const struct dns_rr *rr = dns_packet_rr(a->pkt, i);

		if (rr->section == DNS_SECTION_ANSWER && rr->type == a->qtype &&
		    rr->rclass == CLASS_IN && strcmp(rr->owner, a->canon) == 0)
			a->rec[a->nrec++] = rr;
	}
}

/*
 * The smallest TTL of the answer section; for a negative answer, the SOA's
 * own TTL capped by its MINIMUM field (RFC 2308 §5).
 */
static void
answer_ttl(struct dns_answer *a)
{
	bool seen = false, neg_seen = false;
	uint32_t ttl = 0, neg = 0;

	for (size_t i = 0; i < dns_packet_rr_count(a->pkt); i++) {
		const struct dns_rr *rr = dns_packet_rr(a->pkt, i);

		if (rr->section == DNS_SECTION_ANSWER) {
			ttl = !seen || rr->ttl < ttl ? rr->ttl : ttl;
			seen = true;
		} else if (rr->section == DNS_SECTION_AUTHORITY &&
		    rr->type == DNS_TYPE_SOA && !neg_seen) {
			neg = rr->ttl;
			if (rr->soa_minimum < neg)
				neg = rr->soa_minimum;
			neg_seen = true;
		}
	}
	a->ttl = seen ? ttl : neg;
}

static void
answer_denial(struct dns_answer *a)
{
	for (size_t i = 0; i < dns_packet_rr_count(a->pkt); i++) {
		const struct dns_rr *rr = dns_packet_rr(a->pkt, i);

		if (rr->section != DNS_SECTION_AUTHORITY)
			continue;
		if (rr->type == TYPE_NSEC3) {
			a->denial = "nsec3";
			return;
		}
		if (rr->type == TYPE_NSEC)
			a->denial = "nsec";
	}
}

/* Views of a NOERROR/NXDOMAIN answer. */
static struct dns_answer *
answer_views(struct dns_answer *a)
{
	if (answer_chain(a) == -1)
		return answer_fail(a, DNS_ERR_MALFORMED,
		    xstrdup("malformed answer: CNAME loop or overlong chain"));
	answer_records(a);
	answer_ttl(a);
	answer_denial(a);
	return a;
}

/* A failing rcode: SERVFAIL, or another one (REFUSED, NOTIMP, ...). */
static struct dns_answer *
answer_rcode_fail(struct dns_answer *a)
{
	char *text;

	if (a->rcode == RCODE_SERVFAIL)
		return answer_fail(
		    a, DNS_ERR_SERVFAIL, xstrdup("server failure (SERVFAIL)"));
	text =
	    xasprintf("DNS error %s (rcode %d)", rcode_str(a->rcode), a->rcode);
	return answer_fail(a, DNS_ERR_OTHER, text);
}

static struct dns_answer *
answer_rcode(struct dns_answer *a)
{
	if (a->rcode == RCODE_NOERROR || a->rcode == RCODE_NXDOMAIN)
		return answer_views(a);
	return answer_rcode_fail(a);
}

/* RFC 7672 §2.1.1: a bogus answer is a lookup error, whatever its rcode. */
static struct dns_answer *
answer_bogus(struct dns_answer *a, const char *why_bogus)
{
	a->sec = DNS_SEC_BOGUS;
	a->why_bogus =
	    xstrdup(why_bogus != NULL ? why_bogus : "validation failed");
	return answer_fail(a, DNS_ERR_BOGUS,
	    xasprintf("DNSSEC validation failed: %s", a->why_bogus));
}

struct dns_answer *
dns_answer_new_unbound(const char *qname, uint16_t qtype, int err,
    const void *pkt, int len, int sec, const char *why_bogus)
{
	struct dns_answer *a = answer_new(qname, qtype);
	const char *perr = "empty answer";

	if (err != 0) {
		/* libunbound's rcode argument: no packet worth reading. */
		a->rcode = err;
		return answer_rcode_fail(a);
	}
	if (pkt != NULL && len > 0)
		a->pkt = dns_packet_parse(pkt, (size_t)len, &perr);
	if (a->pkt != NULL)
		a->rcode = dns_packet_rcode(a->pkt);
	if (sec == 1)
		return answer_bogus(a, why_bogus);
	if (a->pkt == NULL)
		return answer_fail(a, DNS_ERR_MALFORMED,
		    xasprintf("malformed answer: %s", perr));
	a->sec = sec == 2 ? DNS_SEC_SECURE : DNS_SEC_INSECURE;
	if (strcmp(dns_packet_qname(a->pkt), a->qname) != 0 ||
	    dns_packet_qtype(a->pkt) != qtype)
		return answer_fail(a, DNS_ERR_MALFORMED,
		    xstrdup("malformed answer: not for the question asked"));
	return answer_rcode(a);
}

bool
dns_answer_servfail_timeout(int err, int sec, long elapsed_ms)
{
	return err == RCODE_SERVFAIL && sec != 1 &&
	    elapsed_ms >= DNS_SLOW_SERVFAIL_MS;
}

void
dns_answer_free(struct dns_answer *a)
{
	if (a == NULL)
		return;
	dns_packet_free(a->pkt);
	free(a->cname);
	free(a->rec);
	free(a->why_bogus);
	free(a->error);
	free(a->qname);
	free(a);
}

const char *
dns_answer_qname(const struct dns_answer *a)
{
	return a->qname;
}

uint16_t
dns_answer_qtype(const struct dns_answer *a)
{
	return a->qtype;
}

enum dns_status
dns_answer_status(const struct dns_answer *a)
{
	return a->status;
}

enum dns_sec
dns_answer_sec(const struct dns_answer *a)
{
	return a->sec;
}

int
dns_answer_rcode(const struct dns_answer *a)
{
	return a->rcode;
}

uint32_t
dns_answer_ttl(const struct dns_answer *a)
{
	return a->ttl;
}

const char *
dns_answer_why_bogus(const struct dns_answer *a)
{
	return a->why_bogus;
}

const char *
dns_answer_error(const struct dns_answer *a)
{
	return a->error;
}

bool
dns_answer_nxdomain(const struct dns_answer *a)
{
	return a->status == DNS_OK && a->rcode == RCODE_NXDOMAIN;
}

bool
dns_answer_nodata(const struct dns_answer *a)
{
	return a->status == DNS_OK && a->rcode == RCODE_NOERROR && a->nrec == 0;
}

const char *
dns_answer_denial(const struct dns_answer *a)
{
	return a->denial;
}

size_t
dns_answer_cname_count(const struct dns_answer *a)
{
	return a->ncname;
}

const char *
dns_answer_cname_owner(const struct dns_answer *a, size_t i)
{
	return i < a->ncname ? a->cname[i]->owner : NULL;
}

const char *
dns_answer_cname_target(const struct dns_answer *a, size_t i)
{
	return i < a->ncname ? a->cname[i]->target : NULL;
}

const char *
dns_answer_canonname(const struct dns_answer *a)
{
	return a->canon;
}

size_t
dns_answer_count(const struct dns_answer *a)
{
	return a->nrec;
}

static const struct dns_rr *
answer_rec(const struct dns_answer *a, size_t i, uint16_t type)
{
	if (i >= a->nrec || a->rec[i]->type != type)
		return NULL;
	return a->rec[i];
}

const uint8_t *
dns_answer_rdata(const struct dns_answer *a, size_t i, size_t *len)
{
	if (i >= a->nrec) {
		*len = 0;
		return NULL;
	}
	*len = a->rec[i]->rdlen;
	return a->rec[i]->rdata;
}

int
dns_answer_mx(
    const struct dns_answer *a, size_t i, uint16_t *pref, const char **host)
{
	const struct dns_rr *rr = answer_rec(a, i, DNS_TYPE_MX);

	if (rr == NULL || rr->target == NULL)
		return -1;
	*pref = rr->pref;
	*host = rr->target;
	return 0;
}

int
dns_answer_addr(const struct dns_answer *a, size_t i,
    struct sockaddr_storage *ss, socklen_t *len)
{
	const struct dns_rr *rr;

	memset(ss, 0, sizeof(*ss));
	if ((rr = answer_rec(a, i, DNS_TYPE_A)) != NULL && rr->rdlen == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, rr->rdata, 4);
		*len = sizeof(*sin);
		return 0;
	}
	if ((rr = answer_rec(a, i, DNS_TYPE_AAAA)) != NULL && rr->rdlen == 16) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, rr->rdata, 16);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int
dns_answer_addr_str(
    const struct dns_answer *a, size_t i, char *out, size_t outlen)
{
	const struct dns_rr *rr;
	int af;

	if ((rr = answer_rec(a, i, DNS_TYPE_A)) != NULL && rr->rdlen == 4)
		af = AF_INET;
	else if ((rr = answer_rec(a, i, DNS_TYPE_AAAA)) != NULL &&
	    rr->rdlen == 16)
		af = AF_INET6;
	else
		return -1;
	if (outlen > INT32_MAX ||
	    inet_ntop(af, rr->rdata, out, (socklen_t)outlen) == NULL)
		return -1;
	return 0;
}

int
dns_answer_tlsa(const struct dns_answer *a, size_t i, uint8_t *usage,
    uint8_t *selector, uint8_t *mtype, const uint8_t **data, size_t *len)
{
	const struct dns_rr *rr = answer_rec(a, i, DNS_TYPE_TLSA);

	/* RFC 6698 §2.1: three one-octet fields, then the association data. */
	if (rr == NULL || rr->rdlen < 3)
		return -1;
	*usage = rr->rdata[0];
	*selector = rr->rdata[1];
	*mtype = rr->rdata[2];
	*data = rr->rdata + 3;
	*len = (size_t)rr->rdlen - 3;
	return 0;
}

char *
dns_answer_txt(const struct dns_answer *a, size_t i)
{
	const struct dns_rr *rr = answer_rec(a, i, DNS_TYPE_TXT);
	struct buf b;
	size_t off = 0;

	if (rr == NULL)
		return NULL;
	buf_init(&b, TXT_MAX);
	/* RFC 1035 §3.3.14: one or more <character-string>s, back to back. */
	while (off < rr->rdlen) {
		size_t n = rr->rdata[off++];

		if (n > rr->rdlen - off ||
		    memchr(rr->rdata + off, '\0', n) != NULL ||
		    buf_add(&b, rr->rdata + off, n) == -1) {
			buf_free(&b);
			return NULL;
		}
		off += n;
	}
	if (rr->rdlen == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}
