/*
 * test_relay: the pure decisions of src/relay/: who our TLS reports say
 * they are from (relay_tlsrpt_ident: sender, contact-info, the
 * TLS-Report-Submitter that must match the contact's domain, RFC 8460
 * §5.3; organization-name), and the daily schedule of RFC 8460 §4.1
 * (which day is due, when, and that a finished day is not sent again);
 * and the inbound DANE guard's decision from our own TLSA answer
 * (relay_guard_judge).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "core/log.h"
#include "dns/dns.h"
#include "dns/dns_answer.h"
#include "relay/relay_guard.h"
#include "relay/relay_tlsrpt.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define DAY      86400

struct ident_case {
	const char *name;
	const char *conf;
	const char *sender, *contact, *submitter, *organization;
};

#define DKIM                                       \
	"[dkim]\ndomain = d.test\nselector = s1\n" \
	"key_file = /tmp/dr-test-relay.key\n"

static const struct ident_case ident_cases[] = {
	{ "defaults", "", "noreply-tlsrpt@relay.test",
	    "noreply-tlsrpt@relay.test", "relay.test", "relay.test" },
	/* the From: aligns with the DKIM d= */
	{ "dkim", DKIM, "noreply-tlsrpt@d.test", "noreply-tlsrpt@d.test",
	    "d.test", "d.test" },
	{ "sender", "[tlsrpt]\nsender_address = tls@s.test\n", "tls@s.test",
	    "tls@s.test", "s.test", "s.test" },
	{ "contact", "[tlsrpt]\ncontact = ops@c.test\n",
	    "noreply-tlsrpt@relay.test", "ops@c.test", "c.test", "c.test" },
	/* a contact that is not an address: the DKIM domain, else us */
	{ "url-contact-dkim", DKIM "[tlsrpt]\ncontact = https://c.test/tls@x\n",
	    "noreply-tlsrpt@d.test", "https://c.test/tls@x", "d.test",
	    "d.test" },
	{ "url-contact", "[tlsrpt]\ncontact = https://c.test/tls\n",
	    "noreply-tlsrpt@relay.test", "https://c.test/tls", "relay.test",
	    "relay.test" },
	{ "organization",
	    "[tlsrpt]\norganization = Example Org\ncontact = ops@c.test\n",
	    "noreply-tlsrpt@relay.test", "ops@c.test", "c.test",
	    "Example Org" },
};

static void
test_ident(void)
{
	struct relay_tlsrpt_ident id;
	struct conf *c;
	char *err;
	size_t i;

	for (i = 0; i < NELEM(ident_cases); i++) {
		const struct ident_case *w = &ident_cases[i];

		err = NULL;
		c = conf_parse(w->conf, strlen(w->conf), "test.conf", &err);
		if (c == NULL) {
			printf("  %s: conf_parse: %s\n", w->name, err);
			free(err);
			T_FAIL("config parsed");
			continue;
		}
		relay_tlsrpt_ident(c, "relay.test", &id);
		if (strcmp(id.sender_address, w->sender) != 0 ||
		    strcmp(id.contact, w->contact) != 0 ||
		    strcmp(id.submitter, w->submitter) != 0 ||
		    strcmp(id.organization, w->organization) != 0) {
			printf("  %s: %s | %s | %s | %s\n", w->name,
			    id.sender_address, id.contact, id.submitter,
			    id.organization);
			T_FAIL("identity as in the table");
		}
		relay_tlsrpt_ident_free(&id);
		conf_free(c);
	}
}

/* 2026-12-07T00:00:00Z */
static time_t
today(void)
{
	struct tm tm = { .tm_year = 126, .tm_mon = 11, .tm_mday = 7 };

	return timegm(&tm);
}

static void
days_set(struct relay_tlsrpt_days *s, time_t max_delay, const char *fin)
{
	const char *p;

	memset(s, 0, sizeof(*s));
	s->max_delay = max_delay;
	s->salt = 12345;
	/* fin: "04 05" = 2026-12-04 and 2026-12-05 finished */
	for (p = fin; p != NULL && *p != '\0'; p += p[2] == ' ' ? 3 : 2) {
		snprintf(s->finished[s->nfinished % RELAY_TLSRPT_DAYS],
		    TLSRPT_DAY_LEN, "2026-12-%.2s", p);
		s->nfinished++;
	}
}

static void
test_schedule(void)
{
	struct relay_tlsrpt_days s;
	const time_t t0 = today();
	time_t d6;
	char day[TLSRPT_DAY_LEN];
	static const struct {
		time_t max_delay;
		const char *finished;
		long at;          /* seconds after 2026-12-07T00:00Z */
		const char *want; /* the day due, or NULL */
	} cases[] = {
		/* the oldest of the last three days first */
		{ 0, "", 36000, "2026-12-04" },
		{ 0, "04", 36000, "2026-12-05" },
		{ 0, "04 05", 36000, "2026-12-06" },
		{ 0, "04 05 06", 36000, NULL },
		/* a day that ended a second ago, without delay */
		{ 0, "04 05", 0, "2026-12-06" },
		/* a second before its end, yesterday is today */
		{ 0, "03 04 05", -1, NULL },
		/* with a delay, yesterday is not due at midnight */
		{ 14400, "04 05", 0, NULL },
		{ 14400, "05", 0, "2026-12-04" },
		/* the finished days are a ring of three */
		{ 0, "03 04 05 06", 36000, NULL },
	};
	size_t i;
	bool due;

	for (i = 0; i < NELEM(cases); i++) {
		days_set(&s, cases[i].max_delay, cases[i].finished);
		due = relay_tlsrpt_due_day(&s, t0 + cases[i].at, day);
		if (due != (cases[i].want != NULL) ||
		    (due && strcmp(day, cases[i].want) != 0)) {
			printf("  case %zu: %s, want %s\n", i,
			    due ? day : "none",
			    cases[i].want ? cases[i].want : "none");
			T_FAIL("due day as in the table");
		}
	}
	/* Yesterday becomes due exactly at its end plus its delay. */
	days_set(&s, 14400, "04 05");
	d6 = relay_tlsrpt_delay(&s, "2026-12-06");
	T_CHECK(d6 >= 1 && d6 <= 14400);
	T_CHECK(!relay_tlsrpt_due_day(&s, t0 + d6 - 1, day));
	T_CHECK(relay_tlsrpt_due_day(&s, t0 + d6, day) &&
	    strcmp(day, "2026-12-06") == 0);
}

/* §4.1: a random delay, fixed per day and process, within max_delay. */
static void
test_delay(void)
{
	struct relay_tlsrpt_days s;
	char day[TLSRPT_DAY_LEN];
	time_t d, first = 0;
	bool differ = false;
	int i;

	days_set(&s, 0, "");
	T_CHECK(relay_tlsrpt_delay(&s, "2026-12-06") == 0);
	days_set(&s, 600, "");
	for (i = 0; i < 60; i++) {
		snprintf(
		    day, sizeof(day), "2026-%02d-%02d", 1 + i / 28, 1 + i % 28);
		d = relay_tlsrpt_delay(&s, day);
		T_CHECK(d >= 1 && d <= 600);
		T_CHECK(d == relay_tlsrpt_delay(&s, day));
		if (i == 0)
			first = d;
		else if (d != first)
			differ = true;
	}
	T_CHECK(differ); /* not one fixed delay for every day */
	s.salt = 54321;
	differ = false;
	for (i = 0; i < 10 && !differ; i++) {
		snprintf(day, sizeof(day), "2026-12-%02d", 1 + i);
		d = relay_tlsrpt_delay(&s, day);
		s.salt = 12345;
		differ = d != relay_tlsrpt_delay(&s, day);
		s.salt = 54321;
	}
	T_CHECK(differ); /* and not the same for every process */
}

/* ---- the inbound DANE guard ---------------------------------------- */

#define GUARD_QNAME "_25._tcp.mx.example"

/* A NOERROR answer for GUARD_QNAME TLSA with one record u s m data. */
static struct dns_answer *
guard_answer(const uint8_t *rdata, size_t len, int sec)
{
	static const uint8_t qname[] = "\x03_25\x04_tcp\x02mx\x07"
	                               "example";
	uint8_t pkt[512];
	size_t off = 0;

	memcpy(pkt, "\x00\x00\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00", 12);
	off = 12;
	memcpy(pkt + off, qname, sizeof(qname));
	off += sizeof(qname);
	memcpy(pkt + off, "\x00\x34\x00\x01", 4);
	off += 4;
	memcpy(pkt + off, "\xc0\x0c\x00\x34\x00\x01\x00\x00\x0e\x10", 10);
	off += 10;
	pkt[off++] = (uint8_t)(len >> 8);
	pkt[off++] = (uint8_t)len;
	memcpy(pkt + off, rdata, len);
	off += len;
	return dns_answer_new_unbound(
	    GUARD_QNAME, DNS_TYPE_TLSA, 0, pkt, (int)off, sec, NULL);
}

/* A self-signed P-256 leaf; spki gets "3 1 1" + SHA-256 of its key. */
static STACK_OF(X509) *
guard_chain(uint8_t spki[35])
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	unsigned char *der = NULL;
	unsigned int n = 0;
	int len;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.example", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, key);
	X509_sign(x, key, EVP_sha256());
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	spki[0] = 3;
	spki[1] = 1;
	spki[2] = 1;
	T_CHECK(len > 0 &&
	    EVP_Digest(der, (size_t)len, spki + 3, &n, EVP_sha256(), NULL) &&
	    n == 32);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	sk_X509_push(chain, x);
	return chain;
}

static void
test_guard(void)
{
	char *digests[] = { "sha512", "sha256", NULL };
	uint8_t good[35], wrong[35], pkix[35];
	STACK_OF(X509) *chain = guard_chain(good);
	const struct {
		const char *name;
		const uint8_t *rdata; /* NULL: SERVFAIL */
		int sec;              /* 0 insecure, 1 bogus, 2 secure */
		int want;
		const char *says;
	} cases[] = {
		{ "matches", good, 2, 1,
		    "the certificate matches the published TLSA records" },
		{ "mismatch", wrong, 2, -1,
		    "Publish first: " GUARD_QNAME ". IN TLSA 3 1 1 " },
		/* not secure: nothing a DANE client would check */
		{ "insecure", wrong, 0, 0, "no secure TLSA records" },
		{ "bogus", wrong, 1, 0, "TLSA lookup failed" },
		/* PKIX-TA(0) is unusable for SMTP (RFC 7672 §3.1.3) */
		{ "unusable", pkix, 2, 0, "no usable TLSA record" },
		{ "servfail", NULL, 0, 0, "TLSA lookup failed" },
	};
	struct dns_answer *a;
	struct buf msg;
	size_t i;
	int rc;

	memcpy(wrong, good, sizeof(good));
	wrong[34] ^= 1;
	memcpy(pkix, good, sizeof(good));
	pkix[0] = 0;
	for (i = 0; i < NELEM(cases); i++) {
		a = cases[i].rdata != NULL ?
		    guard_answer(cases[i].rdata, sizeof(good), cases[i].sec) :
		    dns_answer_new_error(GUARD_QNAME, DNS_TYPE_TLSA,
		        DNS_ERR_SERVFAIL, "servfail");
		buf_init(&msg, 4096);
		rc = relay_guard_judge(a, GUARD_QNAME, chain, digests, &msg);
		if (rc != cases[i].want ||
		    strstr(buf_cstr(&msg), cases[i].says) == NULL) {
			printf("  %s: %d \"%s\"\n", cases[i].name, rc,
			    buf_cstr(&msg));
			T_FAIL("guard decision as in the table");
		}
		buf_free(&msg);
		dns_answer_free(a);
	}
	sk_X509_pop_free(chain, X509_free);
}

int
main(void)
{
	FILE *f;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_LEVEL_WARN);
	/* [dkim] key_file must name a file (its content is not read here) */
	f = fopen("/tmp/dr-test-relay.key", "w");
	if (f != NULL)
		fclose(f);
	T_RUN(test_ident);
	T_RUN(test_schedule);
	T_RUN(test_delay);
	T_RUN(test_guard);
	remove("/tmp/dr-test-relay.key");
	T_EXIT();
}
