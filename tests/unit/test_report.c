/*
 * test_report: delivery status notifications (src/dsn/) and the
 * inbound DANE guard (src/tls/tls_guard.c), which reports on our own
 * certificate.
 *
 * Golden cases build reports from fixed inputs, with the random source
 * fixed by dsn_set_random(), and compare them byte for byte with the files
 * in golden/ (run with DSN_GOLDEN_UPDATE=1 to rewrite them after a wanted
 * change, then read the diff). Every report built here also goes through
 * t_dsn_check(), a small independent reader of the MIME structure and the
 * RFC 3464 fields. The guard cases make a CA and a leaf at start.
 *
 * With "--emit DIR" the program writes the golden reports to DIR and
 * exits, so tests/integration/test_dsn_parse.sh can feed them to another
 * parser (Python's email package).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dsn/dsn.h"
#include "dsn/dsn_hdr.h"
#include "dsn/dsn_int.h"
#include "tls/tls_cert.h"
#include "tls/tls_guard.h"

#include "t.h"

#define ARRIVAL ((time_t)1795856400) /* Sat, 28 Nov 2026 09:00:00 */
#define HOUR    ((time_t)3600)
#define DAY     (24 * HOUR)

/* The fixed random source of the golden cases: 0x0b, 0x30, 0x55, ... */
static unsigned t_seed;

static void
t_rand(void *p, size_t n)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(t_seed++ * 37 + 11);
}

static const char orig_msg[] = "From: Alice <alice@example.org>\r\n"
                               "To: Bob <bob@example.com>\r\n"
                               "Subject: Quarterly report\r\n"
                               "Date: Sat, 28 Nov 2026 09:00:00 +0000\r\n"
                               "Message-ID: <q3-report-42@example.org>\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: text/plain; charset=us-ascii\r\n"
                               "\r\n"
                               "Hi Bob,\r\n"
                               "\r\n"
                               "the figures are attached.\r\n";

/* Header section of orig_msg, as RET=HDRS must return it. */
static size_t
orig_hdr_len(void)
{
	return (size_t)(strstr(orig_msg, "\r\n\r\n") + 2 - orig_msg);
}

/* A report message with one recipient, filled with the usual values. */
static void
t_msg(struct dsn_msg *m, struct dsn_rcpt *r, const char *orig)
{
	memset(m, 0, sizeof(*m));
	m->reporting_mta = "relay.example.org";
	m->from = "MAILER-DAEMON@relay.example.org";
	m->to = "alice@example.org";
	m->orig = (const uint8_t *)orig;
	m->orig_len = orig != NULL ? strlen(orig) : 0;
	m->arrival = ARRIVAL;
	m->now = ARRIVAL + HOUR;
	m->rcpts = r;
	m->nrcpt = 1;
	memset(r, 0, sizeof(*r));
	r->addr = "bob@example.com";
	r->action = DSN_ACTION_FAILED;
	r->status = "5.7.323";
	r->result_type = "tlsa-invalid";
	r->remote_mta = "mx.example.com";
	r->diagnostic = "no TLSA record matches the certificate chain "
	                "presented by mx.example.com[192.0.2.25]";
	r->last_attempt = ARRIVAL + HOUR;
}

/* ---- an independent reader of reports, for the structural checks ---- */

struct t_dsn {
	char *text; /* the whole report, NUL-terminated */
	size_t len;
	char bnd[128];
	const char *part[3]; /* each part: its header, empty line, content */
	size_t plen[3];
	int nparts;
};

/* Every line ends in CRLF, no bare CR or LF, none over 998 octets. */
static const char *
t_lines(const char *p, size_t n)
{
	size_t i, col = 0;

	if (n < 2 || p[n - 2] != '\r' || p[n - 1] != '\n')
		return "does not end in CRLF";
	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			return "bare CR";
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return "bare LF";
		if (p[i] == '\r')
			continue;
		if (p[i] == '\n')
			col = 0;
		else if (++col > 998)
			return "line over 998 octets";
	}
	return NULL;
}

/* Value of field name in the header section text (unfolded). New. */
static char *
t_field(const char *hdr, size_t n, const char *name)
{
	return dsn_hdr_get((const uint8_t *)hdr, n, name, 100000);
}

/* Split r into parts; returns NULL or what is wrong. */
static const char *
t_split(struct t_dsn *d)
{
	char *ct, *b, *e;
	const char *p, *end, *next;
	size_t hlen = (size_t)(strstr(d->text, "\r\n\r\n") + 2 - d->text);

	ct = t_field(d->text, hlen, "Content-Type");
	if (ct == NULL ||
	    strncmp(ct, "multipart/report; report-type=", 30) != 0)
		return free(ct), "no multipart/report Content-Type";
	if ((b = strstr(ct, "boundary=\"")) == NULL ||
	    (e = strchr(b + 10, '"')) == NULL ||
	    (size_t)(e - b - 10) >= sizeof(d->bnd) || e - b - 10 > 70)
		return free(ct), "no boundary";
	memcpy(d->bnd, b + 10, (size_t)(e - b - 10));
	d->bnd[e - b - 10] = '\0';
	free(ct);
	end = d->text + d->len;
	p = strstr(d->text, "\r\n\r\n");
	for (d->nparts = 0;; d->nparts++) {
		char delim[140];

		snprintf(delim, sizeof(delim), "\r\n--%s", d->bnd);
		if ((p = memmem(p, (size_t)(end - p), delim, strlen(delim))) ==
		    NULL)
			return "missing delimiter";
		p += strlen(delim);
		if (strncmp(p, "--\r\n", 4) == 0)
			return p + 4 == end ? NULL : "text after the end";
		if (strncmp(p, "\r\n", 2) != 0 || d->nparts == 3)
			return "bad delimiter line or too many parts";
		p += 2;
		next = memmem(p, (size_t)(end - p), delim, strlen(delim));
		if (next == NULL)
			return "part not closed";
		d->part[d->nparts] = p;
		d->plen[d->nparts] = (size_t)(next - p);
		p = next;
	}
}

/* A status "c.s.d" by RFC 3463 §2. */
static bool
t_status_ok(const char *s)
{
	size_t i = 2, d;

	if (s == NULL || s[0] < '2' || s[0] > '5' || s[1] != '.')
		return false;
	for (d = 0; d < 2; d++) {
		size_t start = i;

		while (s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i - start > 3 || s[i] != (d ? '\0' : '.'))
			return false;
		i++;
	}
	return true;
}

/* RFC 3464 fields of part 2; NULL or what is wrong. */
static const char *
t_fields(const char *p, size_t n, size_t nrcpt)
{
	const char *g = p, *e, *end = p + n;
	size_t groups = 0;
	char *v;

	while (g < end) {
		e = memmem(g, (size_t)(end - g), "\r\n\r\n", 4);
		e = e != NULL ? e + 2 : end;
		if (groups == 0) {
			if ((v = t_field(g, (size_t)(e - g),
			         "Reporting-MTA")) == NULL ||
			    strncmp(v, "dns; ", 5) != 0)
				return free(v), "no Reporting-MTA";
			free(v);
		} else {
			static const char *const need[] = { "Final-Recipient",
				"Action", "Status", NULL };
			size_t i;

			for (i = 0; need[i] != NULL; i++) {
				v = t_field(g, (size_t)(e - g), need[i]);
				if (v == NULL)
					return "recipient field missing";
				if (i == 2 && !t_status_ok(v))
					return free(v), "bad Status";
				free(v);
			}
		}
		groups++;
		g = e + (e < end ? 2 : 0);
	}
	return groups == nrcpt + 1 ? NULL : "wrong number of recipient groups";
}

/* Header section and content of part i. */
static void
t_part(
    const struct t_dsn *d, int i, size_t *hlen, const char **body, size_t *blen)
{
	const char *e = memmem(d->part[i], d->plen[i], "\r\n\r\n", 4);

	ASSERT(e != NULL);
	*hlen = (size_t)(e + 2 - d->part[i]);
	*body = e + 4;
	*blen = d->plen[i] - (size_t)(e + 4 - d->part[i]);
}

static bool
t_part_type(const struct t_dsn *d, int i, const char *type)
{
	const char *body;
	size_t hlen, blen;
	char *v;
	bool ok;

	t_part(d, i, &hlen, &body, &blen);
	v = t_field(d->part[i], hlen, "Content-Type");
	ok = v != NULL && strcmp(v, type) == 0;
	free(v);
	return ok;
}

/* Everything a report must be; fills d (t_dsn_free). NULL or the fault. */
static const char *
t_dsn_check(struct t_dsn *d, const uint8_t *p, size_t n, size_t nrcpt)
{
	const char *why, *body;
	size_t hlen, blen;

	memset(d, 0, sizeof(*d));
	d->text = xstrndup((const char *)p, n);
	d->len = n;
	if (strlen(d->text) != n)
		return "NUL in the report";
	if ((why = t_lines(d->text, n)) != NULL)
		return why;
	hlen = (size_t)(strstr(d->text, "\r\n\r\n") + 2 - d->text);
	if (!dsn_mime_ascii(d->text, hlen))
		return "8-bit octet in the report's header";
	if ((why = t_split(d)) != NULL)
		return why;
	if (d->nparts < 2)
		return "fewer than two parts";
	t_part(d, 1, &hlen, &body, &blen);
	return t_fields(body, blen, nrcpt);
}

static void
t_dsn_free(struct t_dsn *d)
{
	free(d->text);
}

/* Field of the report's own header. New. */
static char *
t_top(const struct t_dsn *d, const char *name)
{
	return t_field(d->text, d->len, name);
}

/* Field of recipient group k (0 = per-message) of part 2. New. */
static char *
t_ds(const struct t_dsn *d, int k, const char *name)
{
	const char *g, *e, *end;
	size_t hlen, blen;

	t_part(d, 1, &hlen, &g, &blen);
	end = g + blen;
	for (; k > 0 && g != NULL; k--)
		if ((g = memmem(g, (size_t)(end - g), "\r\n\r\n", 4)) != NULL)
			g += 4;
	if (g == NULL)
		return NULL;
	e = memmem(g, (size_t)(end - g), "\r\n\r\n", 4);
	return t_field(
	    g, e != NULL ? (size_t)(e + 2 - g) : (size_t)(end - g), name);
}

static bool
t_has(const struct t_dsn *d, const char *s)
{
	return strstr(d->text, s) != NULL;
}

/* Does the report hold text s, line ends read as spaces (wrapped text)? */
static bool
t_has_text(const struct t_dsn *d, const char *s)
{
	char *flat = xstrdup(d->text), *p;
	bool found;

	for (p = flat; (p = strstr(p, "\r\n")) != NULL;)
		memmove(p, p + 1, strlen(p + 1) + 1), *p = ' ';
	found = strstr(flat, s) != NULL;
	free(flat);
	return found;
}

/* Build m, check it; d filled for more checks. */
static bool
t_build(struct t_dsn *d, const struct dsn_msg *m)
{
	const char *why;
	uint8_t *p;
	size_t n;

	p = dsn_build(m, &n);
	why = t_dsn_check(d, p, n, m->nrcpt);
	free(p);
	if (why != NULL)
		printf("# %s: %s\n", t_name, why);
	return why == NULL;
}

/* ---- golden reports ---- */

struct t_golden {
	const char *name;
	void (*make)(struct dsn_msg *m, struct dsn_rcpt *r);
	size_t nrcpt;
};

static void
g_failed_tlsa(struct dsn_msg *m, struct dsn_rcpt *r)
{
	t_msg(m, r, orig_msg);
	m->envid = "Q3-42";
	m->ret_full = true;
	r->orcpt = "rfc822;bob@example.com";
}

static void
g_delayed(struct dsn_msg *m, struct dsn_rcpt *r)
{
	t_msg(m, r, orig_msg);
	m->ret_full = true; /* ignored: a delay returns headers */
	m->now = ARRIVAL + 4 * HOUR;
	r->action = DSN_ACTION_DELAYED;
	r->status = "4.7.324";
	r->result_type = "dnssec-invalid";
	r->remote_mta = NULL;
	r->diagnostic = "TLSA lookup for _25._tcp.mx.example.com failed: "
	                "validation failure <mx.example.com. TLSA>: signature "
	                "expired";
	r->last_attempt = ARRIVAL + 4 * HOUR;
	r->will_retry_until = ARRIVAL + 5 * DAY;
}

static void
g_multi(struct dsn_msg *m, struct dsn_rcpt *r)
{
	t_msg(m, r, orig_msg);
	m->nrcpt = 4;
	r[1] = r[0];
	r[2] = r[0];
	r[3] = r[0];
	r[0].addr = "carol@example.com";
	r[0].status = "5.1.1";
	r[0].result_type = NULL;
	r[0].diagnostic = "550 5.1.1 <carol@example.com>: Recipient address "
	                  "rejected: User unknown in virtual mailbox table";
	r[1].addr = "dave@nullmx.example";
	r[1].status = "5.1.10";
	r[1].result_type = NULL;
	r[1].remote_mta = NULL;
	r[1].diagnostic = "nullmx.example publishes a null MX (RFC 7505)";
	r[2].addr = "erin@nowhere.example";
	r[2].status = "5.1.2";
	r[2].result_type = NULL;
	r[2].remote_mta = NULL;
	r[2].diagnostic = "nowhere.example: no such domain (NXDOMAIN)";
	r[3].addr = "frank@plain.example";
	r[3].status = "4.7.321"; /* given up: reported as 5.7.321 */
	r[3].result_type = "starttls-not-supported";
	r[3].remote_mta = "mx1.plain.example";
	r[3].diagnostic = "mx1.plain.example[198.51.100.7] did not offer "
	                  "STARTTLS, and the domain's TLSA records require it";
}

static void
g_relayed(struct dsn_msg *m, struct dsn_rcpt *r)
{
	t_msg(m, r, orig_msg);
	m->ret_full = true;
	r->action = DSN_ACTION_RELAYED;
	r->status = "2.0.0";
	r->result_type = NULL;
	r->diagnostic = "250 2.0.0 Ok: queued as 4F2A1C";
}

static const char utf8_msg[] =
    "From: =?utf-8?q?J=C3=B6ran?= <joran@example.org>\r\n"
    "To: Björn <björn@exämple.de>\r\n"
    "Subject: Grüße aus Köln\r\n"
    "Message-ID: <utf8-1@example.org>\r\n"
    "\r\n"
    "Hallo Björn!\r\n";

static void
g_utf8(struct dsn_msg *m, struct dsn_rcpt *r)
{
	t_msg(m, r, utf8_msg);
	m->ret_full = true;
	r->addr = "björn@exämple.de";
	r->orcpt = "utf-8;björn@exämple.de";
	r->status = "5.7.325";
	r->result_type = "certificate-host-mismatch";
	r->remote_mta = "mx.xn--exmple-cua.de";
	r->diagnostic = "the certificate of mx.exämple.de[203.0.113.5] "
	                "names none of: exämple.de, mx.exämple.de";
}

static const char latin_msg[] =
    "From: alice@example.org\r\n"
    "Subject: =?iso-8859-1?q?Gr=FC=DFe_?= =?utf-8?b?YXVzIEvDtmxu?=\r\n"
    "\r\n"
    "body\r\n";

static void
g_qp(struct dsn_msg *m, struct dsn_rcpt *r)
{
	t_msg(m, r, latin_msg);
	r->status = "5.4.1";
	r->result_type = NULL;
	r->diagnostic = "connect to mx.example.com[192.0.2.25]:25: Connection "
	                "refused";
}

static const struct t_golden goldens[] = {
	{ "failed_tlsa", g_failed_tlsa, 1 },
	{ "delayed", g_delayed, 1 },
	{ "failed_multi", g_multi, 4 },
	{ "relayed", g_relayed, 1 },
	{ "failed_utf8", g_utf8, 1 },
	{ "failed_qp", g_qp, 1 },
};

/* The report of golden case g, with the fixed random source. New. */
static uint8_t *
t_golden_build(const struct t_golden *g, size_t *n)
{
	struct dsn_rcpt r[4];
	struct dsn_msg m;
	uint8_t *p;

	g->make(&m, r);
	t_seed = 0;
	dsn_set_random(t_rand);
	p = dsn_build(&m, n);
	dsn_set_random(NULL);
	return p;
}

static uint8_t *
t_read(const char *path, size_t *n)
{
	const char *errstr;

	return tls_load_file(path, n, &errstr);
}

static void
t_write(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		panic("cannot write %s", path);
}

/* First differing line, for the failure message. */
static void
t_diff(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t i, line = 1;

	for (i = 0; i < an && i < bn && a[i] == b[i]; i++)
		if (a[i] == '\n')
			line++;
	printf(
	    "# %s: differs from the golden file at line %zu\n", t_name, line);
}

static void
golden(void)
{
	bool update = getenv("DSN_GOLDEN_UPDATE") != NULL;
	char path[256];
	uint8_t *p, *want;
	size_t i, n, wn;
	struct t_dsn d;

	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		p = t_golden_build(&goldens[i], &n);
		snprintf(
		    path, sizeof(path), "golden/dsn_%s.eml", goldens[i].name);
		if (update)
			t_write(path, p, n);
		want = t_read(path, &wn);
		T_CHECK(want != NULL);
		if (want != NULL && (wn != n || memcmp(want, p, n) != 0)) {
			t_diff(want, wn, p, n);
			T_CHECK(!"golden file differs");
		}
		T_CHECK(t_dsn_check(&d, p, n, goldens[i].nrcpt) == NULL);
		t_dsn_free(&d);
		free(want);
		free(p);
	}
}

/* Same inputs, same random source: same bytes. */
static void
golden_repeatable(void)
{
	uint8_t *a, *b;
	size_t an, bn;

	a = t_golden_build(&goldens[0], &an);
	b = t_golden_build(&goldens[0], &bn);
	T_CHECK(an == bn && memcmp(a, b, an) == 0);
	free(a);
	free(b);
}

/* ---- structure and fields ---- */

static void
failed_fields(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *v;

	t_msg(&m, &r, orig_msg);
	m.envid = "Q3-42";
	r.orcpt = "rfc822;bob@example.com";
	T_CHECK(t_build(&d, &m));
	T_STREQ((v = t_top(&d, "From")),
	    "Mail Delivery System <MAILER-DAEMON@relay.example.org>");
	free(v);
	T_STREQ((v = t_top(&d, "To")), "alice@example.org");
	free(v);
	T_STREQ((v = t_top(&d, "Subject")),
	    "Undelivered Mail Returned to Sender: Quarterly report");
	free(v);
	T_STREQ((v = t_top(&d, "Date")), "Sat, 28 Nov 2026 10:00:00 +0000");
	free(v);
	T_STREQ((v = t_top(&d, "Auto-Submitted")), "auto-replied");
	free(v);
	T_STREQ((v = t_top(&d, "In-Reply-To")), "<q3-report-42@example.org>");
	free(v);
	v = t_top(&d, "Message-ID");
	T_CHECK(v != NULL && v[0] == '<' &&
	    strstr(v, "@relay.example.org>") != NULL);
	free(v);
	T_CHECK(t_part_type(&d, 0, "text/plain; charset=utf-8"));
	T_CHECK(t_part_type(&d, 1, "message/delivery-status"));
	T_STREQ((v = t_ds(&d, 0, "Original-Envelope-Id")), "Q3-42");
	free(v);
	T_STREQ((v = t_ds(&d, 0, "Reporting-MTA")), "dns; relay.example.org");
	free(v);
	T_STREQ((v = t_ds(&d, 0, "Arrival-Date")),
	    "Sat, 28 Nov 2026 09:00:00 +0000");
	free(v);
	T_STREQ(
	    (v = t_ds(&d, 1, "Original-Recipient")), "rfc822;bob@example.com");
	free(v);
	T_STREQ(
	    (v = t_ds(&d, 1, "Final-Recipient")), "rfc822; bob@example.com");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Action")), "failed");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Status")), "5.7.323");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Remote-MTA")), "dns; mx.example.com");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Diagnostic-Code")),
	    "X-Danerelay; tlsa-invalid: no TLSA record matches the "
	    "certificate chain presented by mx.example.com[192.0.2.25]");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Last-Attempt-Date")),
	    "Sat, 28 Nov 2026 10:00:00 +0000");
	free(v);
	T_CHECK((v = t_ds(&d, 1, "Will-Retry-Until")) == NULL);
	free(v);
	t_dsn_free(&d);
}

static void
smtp_diagnostic(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *v;

	t_msg(&m, &r, orig_msg);
	r.status = "5.1.1";
	r.result_type = NULL;
	/* A multi-line reply as the SMTP layer keeps it. */
	r.diagnostic = "550-5.1.1 The email account that you tried to reach "
	               "does not exist.\r\n550 5.1.1 Please try again.";
	T_CHECK(t_build(&d, &m));
	T_STREQ((v = t_ds(&d, 1, "Diagnostic-Code")),
	    "smtp; 550-5.1.1 The email account that you tried to reach does "
	    "not exist. 550 5.1.1 Please try again.");
	free(v);
	T_CHECK(t_has(&d, "  Remote reply:  550-5.1.1 The email account"));
	T_CHECK(t_has_text(&d, "says that the address does not exist"));
	t_dsn_free(&d);
}

static void
delayed_fields(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *v;

	g_delayed(&m, &r);
	T_CHECK(t_build(&d, &m));
	T_STREQ((v = t_top(&d, "Subject")),
	    "Delayed Mail (still being retried): Quarterly report");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Action")), "delayed");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Status")), "4.7.324");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Will-Retry-Until")),
	    "Thu, 03 Dec 2026 09:00:00 +0000");
	free(v);
	T_CHECK((v = t_ds(&d, 1, "Remote-MTA")) == NULL);
	free(v);
	T_CHECK(t_has_text(&d,
	    "has not been delivered yet; we will keep "
	    "trying until Thu, 03 Dec 2026 09:00:00 +0000."));
	T_CHECK(d.nparts == 3 && t_part_type(&d, 2, "text/rfc822-headers"));
	T_CHECK(!t_has(&d, "the figures are attached"));
	t_dsn_free(&d);
}

static void
success_report(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *v;

	t_msg(&m, &r, orig_msg);
	m.ret_full = true;
	r.action = DSN_ACTION_DELIVERED;
	r.status = "2.0.0";
	r.result_type = NULL;
	r.diagnostic = "250 2.0.0 Ok";
	T_CHECK(t_build(&d, &m));
	T_STREQ((v = t_top(&d, "Subject")),
	    "Successful Mail Delivery Report: Quarterly report");
	free(v);
	T_STREQ((v = t_ds(&d, 1, "Action")), "delivered");
	free(v);
	T_CHECK(t_has_text(&d,
	    "was delivered to the mail server "
	    "mx.example.com."));
	T_CHECK(!t_has(&d, "danerelay check"));
	T_CHECK(t_part_type(&d, 2, "text/rfc822-headers"));
	t_dsn_free(&d);
}

/* The content of part 3. */
static void
t_part3(const struct t_dsn *d, const char **body, size_t *blen)
{
	size_t hlen;

	t_part(d, 2, &hlen, body, blen);
}

static void
ret_hdrs(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	const char *body;
	size_t blen;

	t_msg(&m, &r, orig_msg);
	m.ret_full = false;
	T_CHECK(t_build(&d, &m));
	T_CHECK(d.nparts == 3 && t_part_type(&d, 2, "text/rfc822-headers"));
	t_part3(&d, &body, &blen);
	T_CHECK(blen == orig_hdr_len() && memcmp(body, orig_msg, blen) == 0);
	T_CHECK(!t_has(&d, "the figures are attached"));
	T_CHECK(t_has(&d, "The headers of your message are attached."));
	t_dsn_free(&d);
}

static void
ret_full(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	const char *body;
	size_t blen;

	t_msg(&m, &r, orig_msg);
	m.ret_full = true;
	T_CHECK(t_build(&d, &m));
	T_CHECK(d.nparts == 3 && t_part_type(&d, 2, "message/rfc822"));
	t_part3(&d, &body, &blen);
	T_CHECK(blen == strlen(orig_msg) && memcmp(body, orig_msg, blen) == 0);
	T_CHECK(t_has(&d, "Your message is attached."));
	t_dsn_free(&d);
}

/* A body that cannot travel whole: headers only, and the sender is told. */
static void
ret_full_unclean(void)
{
	static const char *const bad[] = {
		"Subject: x\r\n\r\nbare LF\nhere\r\n",
		"Subject: x\r\n\r\nbare CR\rhere\r\n",
	};
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *big;
	size_t i;

	for (i = 0; i < 3; i++) {
		if (i < 2)
			t_msg(&m, &r, bad[i]);
		else {
			big = xmalloc(1200);
			memcpy(big, "Subject: x\r\n\r\n", 14);
			memset(big + 14, 'a', 1200 - 15);
			big[1199] = '\0';
			t_msg(&m, &r, big);
		}
		m.ret_full = true;
		T_CHECK(t_build(&d, &m));
		T_CHECK(t_part_type(&d, 2, "text/rfc822-headers"));
		T_CHECK(t_has(&d, "only its headers are attached"));
		t_dsn_free(&d);
		if (i == 2)
			free(big);
	}
}

static void
ret_none(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;

	t_msg(&m, &r, NULL);
	T_CHECK(t_build(&d, &m));
	T_CHECK(d.nparts == 2);
	t_dsn_free(&d);
	t_msg(&m, &r, "garbage without any header\r\n");
	T_CHECK(t_build(&d, &m) && d.nparts == 2);
	t_dsn_free(&d);
}

static void
action_names(void)
{
	T_STREQ(dsn_action_str(DSN_ACTION_FAILED), "failed");
	T_STREQ(dsn_action_str(DSN_ACTION_DELAYED), "delayed");
	T_STREQ(dsn_action_str(DSN_ACTION_DELIVERED), "delivered");
	T_STREQ(dsn_action_str(DSN_ACTION_RELAYED), "relayed");
}

static void
ret_default(void)
{
	T_CHECK(dsn_ret_default(0));
	T_CHECK(dsn_ret_default(DSN_RET_DEFAULT_MAX));
	T_CHECK(!dsn_ret_default(DSN_RET_DEFAULT_MAX + 1));
}

/* The action decides the class of the status. */
static void
status_class(void)
{
	static const struct {
		enum dsn_action a;
		const char *in, *out;
	} c[] = {
		{ DSN_ACTION_FAILED, "4.7.323", "5.7.323" },
		{ DSN_ACTION_FAILED, "5.1.10", "5.1.10" },
		{ DSN_ACTION_DELAYED, "5.4.1", "4.4.1" },
		{ DSN_ACTION_DELIVERED, "2.1.5", "2.1.5" },
		{ DSN_ACTION_FAILED, "bogus", "5.0.0" },
		{ DSN_ACTION_FAILED, NULL, "5.0.0" },
		{ DSN_ACTION_FAILED, "5.1234.1", "5.0.0" },
		{ DSN_ACTION_DELAYED, "4.7.", "4.0.0" },
	};
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	size_t i;
	char *v;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		t_msg(&m, &r, orig_msg);
		r.action = c[i].a;
		r.status = c[i].in;
		T_CHECK(t_build(&d, &m));
		T_STREQ((v = t_ds(&d, 1, "Status")), c[i].out);
		free(v);
		t_dsn_free(&d);
	}
}

/* Lines stay under 998 octets whatever the diagnostic. */
static void
long_diagnostic(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *diag = xmalloc(5001), *v;

	memset(diag, 'x', 5000);
	diag[5000] = '\0';
	memcpy(diag, "550 ", 4);
	t_msg(&m, &r, orig_msg);
	r.diagnostic = diag;
	T_CHECK(t_build(&d, &m));
	v = t_ds(&d, 1, "Diagnostic-Code");
	T_CHECK(v != NULL && strncmp(v, "smtp; 550 xxx", 13) == 0);
	free(v);
	t_dsn_free(&d);
	/* Words of ordinary length fold at 78 columns. */
	memset(diag, 0, 5001);
	while (strlen(diag) < 3000)
		memcpy(diag + strlen(diag), "word ", 6);
	T_CHECK(t_build(&d, &m));
	T_CHECK(t_has(&d, "\r\n word word"));
	t_dsn_free(&d);
	free(diag);
}

/* Nothing from the inputs may end a header line and start a field. */
static void
no_injection(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;

	t_msg(&m, &r, orig_msg);
	m.to = "alice@example.org\r\nBcc: victim@example.net";
	m.envid = "id\r\nX-Evil: 1";
	r.addr = "bob@example.com\nX-Evil: 2";
	r.remote_mta = "mx\r\n\r\nX-Evil: 3";
	r.diagnostic = "550 no\r\nX-Evil: 4\x1b[31m";
	m.orig_subject = "hi\r\nBcc: victim@example.net";
	T_CHECK(t_build(&d, &m));
	T_CHECK(!t_has(&d, "\nBcc:") && !t_has(&d, "\nX-Evil"));
	T_CHECK(!t_has(&d, "\x1b"));
	t_dsn_free(&d);
}

/* An original subject that is not ASCII is RFC 2047 encoded. */
static void
subject_encoded(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *v, *dec;

	t_msg(&m, &r, orig_msg);
	m.orig_subject = "Grüße aus Köln – 100 €, and a rather long tail of "
	                 "words so that the encoded words must be folded";
	T_CHECK(t_build(&d, &m));
	T_CHECK(t_has(&d,
	    "Subject: Undelivered Mail Returned to Sender:\r\n "
	    "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln"));
	v = t_top(&d, "Subject");
	dec = dsn_mime_decode_2047(v, 1000);
	T_STREQ(dec,
	    "Undelivered Mail Returned to Sender: Grüße aus Köln – "
	    "100 €, and a rather long tail of words so that the "
	    "encoded words must be folded");
	free(dec);
	free(v);
	/* Not global: the human part is quoted-printable. */
	T_CHECK(t_has(&d, "Content-Transfer-Encoding: quoted-printable"));
	T_CHECK(t_has(&d, "  Subject:       Gr=C3=BC=C3=9Fe aus K=C3=B6ln"));
	t_dsn_free(&d);
}

/* Each header line of the report within 78 octets for ordinary input. */
static void
header_folding(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	const char *p, *e;

	t_msg(&m, &r, orig_msg);
	m.orig_subject = "A subject that goes on and on, well past the "
	                 "seventy-eight columns a header line should keep to, "
	                 "and then some more";
	T_CHECK(t_build(&d, &m));
	e = strstr(d.text, "\r\n\r\n");
	for (p = d.text; p < e; p = strstr(p, "\r\n") + 2)
		T_CHECK(strstr(p, "\r\n") - p <= 78);
	t_dsn_free(&d);
}

/* RFC 6533: an internationalised original gives a global report. */
static void
global_report(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;
	char *v;

	g_utf8(&m, &r);
	T_CHECK(dsn_is_global(&m));
	T_CHECK(t_build(&d, &m));
	v = t_top(&d, "Content-Type");
	T_CHECK(v != NULL && strstr(v, "report-type=global-delivery-status"));
	free(v);
	T_CHECK(t_part_type(&d, 1, "message/global-delivery-status"));
	T_CHECK(t_part_type(&d, 2, "message/global"));
	T_STREQ(
	    (v = t_ds(&d, 1, "Final-Recipient")), "utf-8; björn@exämple.de");
	free(v);
	T_STREQ(
	    (v = t_ds(&d, 1, "Original-Recipient")), "utf-8;björn@exämple.de");
	free(v);
	T_CHECK(t_has(&d, "danerelay check exämple.de"));
	t_dsn_free(&d);
	/* Only the header matters: an 8-bit body is just 8bit. */
	t_msg(&m, &r, "Subject: x\r\n\r\nK\xc3\xb6ln\r\n");
	T_CHECK(!dsn_is_global(&m));
	m.ret_full = true;
	T_CHECK(t_build(&d, &m));
	T_CHECK(t_part_type(&d, 2, "message/rfc822"));
	T_CHECK(t_has(&d, "Content-Transfer-Encoding: 8bit"));
	t_dsn_free(&d);
}

/* The boundary never occurs in the content, even when chosen to. */
static void
boundary_clash(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d, d2;
	char *orig;

	t_msg(&m, &r, orig_msg);
	t_seed = 0;
	dsn_set_random(t_rand);
	T_CHECK(t_build(&d, &m));
	orig = xasprintf(
	    "Subject: clash\r\n\r\n--%s\r\n--%s_1--\r\n", d.bnd, d.bnd);
	t_msg(&m, &r, orig);
	m.ret_full = true;
	t_seed = 0;
	T_CHECK(t_build(&d2, &m));
	dsn_set_random(NULL);
	T_CHECK(strncmp(d2.bnd, d.bnd, strlen(d.bnd)) == 0);
	T_CHECK(strcmp(d2.bnd, d.bnd) != 0 &&
	    strcmp(d2.bnd + strlen(d.bnd), "_1") != 0);
	T_CHECK(d2.nparts == 3 && t_part_type(&d2, 2, "message/rfc822"));
	t_dsn_free(&d);
	t_dsn_free(&d2);
	free(orig);
}

/* All recipients in one report, each with its own explanation. */
static void
multi_rcpt(void)
{
	struct dsn_rcpt r[4];
	struct dsn_msg m;
	struct t_dsn d;
	char *v;

	g_multi(&m, r);
	T_CHECK(t_build(&d, &m));
	T_STREQ((v = t_ds(&d, 4, "Final-Recipient")),
	    "rfc822; frank@plain.example");
	free(v);
	T_STREQ((v = t_ds(&d, 4, "Status")), "5.7.321");
	free(v);
	T_CHECK(t_has(&d,
	    "Your message to carol@example.com could not be "
	    "delivered."));
	T_CHECK(t_has(&d, "danerelay check nullmx.example"));
	T_CHECK(t_has(&d, "\"null MX\""));
	t_dsn_free(&d);
}

/* ---- explanations ---- */

static void
explain_each(void)
{
	static const struct {
		const char *status, *rt, *word;
	} c[] = {
		{ "4.7.321", "starttls-not-supported", "STARTTLS" },
		{ "5.7.322", "certificate-expired", "expired" },
		{ "4.7.323", "tlsa-invalid", "do not match" },
		{ "5.7.323", "dane-required", "requirement is set here" },
		{ "4.7.324", "dnssec-invalid", "DNSSEC" },
		{ "4.7.325", "certificate-host-mismatch", "not issued for" },
		{ "4.7.5", "validation-failure", "handshake" },
		{ "4.4.1", NULL, "could not be reached" },
		{ "4.4.2", NULL, "stopped answering" },
		{ "4.4.3", NULL, "DNS servers" },
		{ "4.4.4", NULL, "no address" },
		{ "5.1.10", NULL, "null MX" },
		{ "5.1.2", NULL, "does not exist in DNS" },
		{ "5.1.1", NULL, "address does not exist" },
		{ "5.7.1", NULL, "refused the message permanently" },
		{ "4.2.2", NULL, "temporary refusal" },
		{ "5.4.7", NULL, "time this mail system keeps trying" },
		{ "4.7.1", "sts-policy-invalid", "MTA-STS" },
		{ "zzz", NULL, "could not deliver" },
		{ "2.0.0", NULL, "accepted the message" },
	};
	const char *seen[sizeof(c) / sizeof(c[0])];
	size_t i, j;
	const char *e;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		e = seen[i] = dsn_explain(c[i].status, c[i].rt);
		T_CHECK(e != NULL && strstr(e, c[i].word) != NULL);
		T_CHECK(strchr(e, '%') == NULL);
		/* Every failure says whether the recipient's domain is at
		 * fault. */
		T_CHECK(c[i].status[0] == '2' ||
		    strstr(e, "recipient's domain") != NULL);
		for (j = 0; j < i; j++)
			T_CHECK(seen[j] != e || c[j].status[0] == 'z');
	}
	/* The result type decides before the status. */
	T_CHECK(dsn_explain("5.7.323", "dane-required") !=
	    dsn_explain("5.7.323", NULL));
	T_CHECK(dsn_explain("5.7.323", NULL) ==
	    dsn_explain("4.7.323", "tlsa-invalid"));
}

static void
explain_named(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	char *e;

	t_msg(&m, &r, NULL);
	e = dsn_explain_rcpt(&r);
	T_STREQ(e,
	    "The receiving domain example.com publishes DANE (TLSA) records in "
	    "DNS that do not match the certificate its mail server "
	    "mx.example.com presents, so the server could not be verified and "
	    "the message was not sent to it. This is a problem at the "
	    "recipient's domain: its administrator must update the TLSA "
	    "records or the certificate.");
	free(e);
	T_STREQ(dsn_explain("5.7.323", "tlsa-invalid"),
	    "The receiving domain publishes DANE (TLSA) records in DNS that do "
	    "not match the certificate its mail server presents, so the server "
	    "could not be verified and the message was not sent to it. This is "
	    "a problem at the recipient's domain: its administrator must "
	    "update the TLSA records or the certificate.");
	/* A status we do not know: the remote reply tells the class. */
	r.status = "5.0.0";
	r.result_type = NULL;
	r.diagnostic = "421 4.3.2 try later";
	e = dsn_explain_rcpt(&r);
	T_CHECK(strstr(e, "temporary refusal") != NULL);
	free(e);
	/* An unknown status and no reply: ours, not the server's. */
	r.diagnostic = "message too large for the queue";
	r.status = "5.3.4";
	e = dsn_explain_rcpt(&r);
	T_CHECK(strstr(e, "could not deliver") != NULL);
	free(e);
	r.diagnostic = "550 5.7.1 spam";
	e = dsn_explain_rcpt(&r);
	T_CHECK(strstr(e, "refused the message permanently") != NULL);
	free(e);
	/* Hostile names are cleaned. */
	r.remote_mta = "mx\r\nX: y";
	r.addr = "a@b c";
	e = dsn_explain_rcpt(&r);
	T_CHECK(strchr(e, '\r') == NULL && strstr(e, "b c") == NULL);
	free(e);
}

/* The human part: per recipient, the plain words and the details. */
static void
human_part(void)
{
	struct dsn_rcpt r;
	struct dsn_msg m;
	struct t_dsn d;

	t_msg(&m, &r, orig_msg);
	T_CHECK(t_build(&d, &m));
	T_CHECK(t_has(&d,
	    "Your message to bob@example.com could not be "
	    "delivered.\r\n"));
	T_CHECK(t_has_text(&d,
	    "The receiving domain example.com publishes "
	    "DANE (TLSA) records in DNS that do not match"));
	T_CHECK(t_has(&d, "  Status:        5.7.323 (permanent failure)\r\n"));
	T_CHECK(t_has(&d, "  Result type:   tlsa-invalid\r\n"));
	T_CHECK(t_has(&d, "  Remote server: mx.example.com\r\n"));
	T_CHECK(t_has(&d, "  Reason:        no TLSA record matches"));
	T_CHECK(t_has(&d, "  Last attempt:  Sat, 28 Nov 2026 10:00:00 +0000"));
	T_CHECK(t_has(&d,
	    "An administrator can see the details with: "
	    "danerelay check example.com\r\n"));
	T_CHECK(t_has(&d, "  Subject:       Quarterly report\r\n"));
	t_dsn_free(&d);
}

/* ---- the header parser ---- */

static size_t
t_hlen(const char *s, size_t *body)
{
	return dsn_hdr_len((const uint8_t *)s, strlen(s), body);
}

static char *
t_get(const char *s, const char *name)
{
	return dsn_hdr_get((const uint8_t *)s, strlen(s), name, 1000);
}

static void
hdr_cases(void)
{
	static const struct {
		const char *msg;
		size_t hlen, body;
		const char *subject;
	} c[] = {
		{ "Subject: a\r\n\r\nbody", 12, 14, "a" },
		/* folded, with a tab */
		{ "Subject: a\r\n\tb\r\n  c\r\nX: y\r\n\r\n", 27, 29, "a b c" },
		/* bare LF */
		{ "Subject: lf\nX: y\n\nbody\n", 17, 18, "lf" },
		/* no separator: the header ends at the first non-field */
		{ "Subject: s\r\nthis is body text\r\n", 12, 12, "s" },
		/* no separator and no body */
		{ "Subject: end", 12, 12, "end" },
		/* obsolete space before the colon */
		{ "Subject : obs\r\n\r\n", 15, 17, "obs" },
		/* no header at all */
		{ "\r\nbody\r\n", 0, 2, NULL },
		{ "", 0, 0, NULL },
		{ ": no name\r\n\r\n", 0, 0, NULL },
		{ " continuation first\r\n\r\n", 0, 0, NULL },
		{ "From mbox line\r\nSubject: x\r\n\r\n", 0, 0, NULL },
		/* garbage in a value, empty value */
		{ "Subject: a\x01\x7f"
		  "b\r\n\r\n",
		    15, 17, "a b" },
		{ "Subject:\r\n\r\n", 10, 12, "" },
		/* the first of two */
		{ "Subject: one\r\nsubject: two\r\n\r\n", 28, 30, "one" },
		/* invalid UTF-8 */
		{ "Subject: \xff\xc3\r\n\r\n", 13, 15,
		    "\xef\xbf\xbd\xef\xbf\xbd" },
	};
	size_t i, body;
	char *s;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		T_CHECK(t_hlen(c[i].msg, &body) == c[i].hlen);
		T_CHECK(body == c[i].body);
		s = t_get(c[i].msg, "Subject");
		if (c[i].subject == NULL)
			T_CHECK(s == NULL);
		else
			T_STREQ(s, c[i].subject);
		if (t_failed_now) {
			printf("# case %zu\n", i);
			free(s);
			return;
		}
		free(s);
	}
}

static void
hdr_nul_and_cap(void)
{
	static const uint8_t nul[] = "Subject: a\0b\r\nX: \0\r\n\r\nbody";
	size_t body, n = 2 * DSN_HDR_MAX, i;
	uint8_t *big = xmalloc(n);
	struct buf b;
	char *s;

	s = dsn_hdr_get(nul, sizeof(nul) - 1, "Subject", 100);
	T_STREQ(s, "a b");
	free(s);
	T_CHECK(dsn_hdr_len(nul, sizeof(nul) - 1, &body) == 20 && body == 22);
	/* One endless field: not a header we take. */
	memcpy(big, "Subject: ", 9);
	memset(big + 9, 'x', n - 9);
	T_CHECK(dsn_hdr_len(big, n, &body) == 0 && body == 0);
	/* Many fields: cut at a line boundary under the cap. */
	for (i = 0; i + 10 <= n; i += 10)
		memcpy(big + i, "X-A: 123\r\n", 10);
	i = dsn_hdr_len(big, n, &body);
	T_CHECK(i <= DSN_HDR_MAX && i > DSN_HDR_MAX - 10 && i % 10 == 0);
	T_CHECK(body == i);
	/* The value is capped, on a character boundary. */
	s = dsn_hdr_get(
	    (const uint8_t *)"Subject: ab\xc3\xa9\r\n", 16, "subject", 3);
	T_STREQ(s, "ab");
	free(s);
	/* Copy: CRLF everywhere, long lines folded. */
	buf_init(&b, 1 << 20);
	memset(big, 'y', 3000);
	memcpy(big, "X-Long: ", 8);
	memcpy(big + 3000, "\nX: \r1\n\n", 8);
	T_CHECK(dsn_hdr_copy(&b, big, 3008) > 3000);
	T_CHECK(t_lines(b.data, b.len) == NULL);
	T_CHECK(strstr(b.data, "\r\nX:  1\r\n") != NULL);
	T_CHECK(strncmp(b.data + 990, "\r\n y", 4) == 0);
	buf_free(&b);
	free(big);
}

/* ---- MIME helpers ---- */

static void
mime_date(void)
{
	char d[DSN_DATE_LEN];

	dsn_mime_date(d, sizeof(d), 0);
	T_STREQ(d, "Thu, 01 Jan 1970 00:00:00 +0000");
	dsn_mime_date(d, sizeof(d), ARRIVAL + 5 * DAY + 61);
	T_STREQ(d, "Thu, 03 Dec 2026 09:01:01 +0000");
}

static void
mime_2047(void)
{
	static const struct {
		const char *in, *out;
	} c[] = {
		{ "=?utf-8?q?caf=C3=A9?=", "café" },
		{ "=?UTF-8?Q?a?= =?utf-8?q?b?=", "ab" },
		{ "x =?utf-8?b?w6k=?= y", "x é y" },
		{ "=?iso-8859-1?q?Gr=FC=DFe?=", "Grüße" },
		{ "=?utf-8*de?q?Hallo_Welt?=", "Hallo Welt" },
		{ "=?koi8-r?q?=F0?=", "=?koi8-r?q?=F0?=" },
		{ "=?utf-8?q?bad=G1?=", "=?utf-8?q?bad=G1?=" },
		{ "=?utf-8?x?a?=", "=?utf-8?x?a?=" },
		{ "=?utf-8?q?a b?=", "=?utf-8?q?a b?=" },
		{ "=?utf-8?b?//79?=", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "=?utf-8?q?line=0D=0Abreak?=", "line break" },
		{ "=?", "=?" },
		{ "=?utf-8?", "=?utf-8?" },
		{ "=?utf-8?q", "=?utf-8?q" },
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		s = dsn_mime_decode_2047(c[i].in, 100);
		T_STREQ(s, c[i].out);
		free(s);
	}
}

static void
mime_qp(void)
{
	struct buf b;
	char line[200];
	const char *p;

	buf_init(&b, 1 << 16);
	dsn_mime_qp(&b, "a=b \r\nK\xc3\xb6ln\t\r\n", 14);
	T_STREQ(buf_cstr(&b), "a=3Db=20\r\nK=C3=B6ln=09\r\n");
	buf_reset(&b);
	memset(line, 0xc3, sizeof(line));
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	dsn_mime_qp(&b, line, sizeof(line));
	for (p = b.data; *p != '\0'; p = strstr(p, "\r\n") + 2)
		T_CHECK(strstr(p, "\r\n") - p <= 76);
	buf_free(&b);
}

static void
mime_clean(void)
{
	char *s;

	s = dsn_mime_clean("  a\r\n\tb \x1b[0m c\xc2\x9b  ", 100, false);
	T_STREQ(s, "a b [0m c");
	free(s);
	s = dsn_mime_clean("Köln\xff", 100, true);
	T_STREQ(s, "K?ln?");
	free(s);
	s = dsn_mime_clean("Köln", 2, false);
	T_STREQ(s, "K");
	free(s);
	s = dsn_mime_clean(NULL, 5, false);
	T_STREQ(s, "");
	free(s);
}

/* ---- the inbound DANE guard ---- */

static struct {
	EVP_PKEY *ca_key, *leaf_key, *other_key;
	X509 *ca, *leaf;
	STACK_OF(X509) *chain; /* leaf, CA */
	STACK_OF(X509) *leaf_only;
} g;

static X509 *
t_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
    EVP_PKEY *issuer_key, bool ca)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	static long serial = 1;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(
	    nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(
	    x, issuer != NULL ? X509_get_subject_name(issuer) : nm);
	X509_NAME_free(nm);
	X509_gmtime_adj(X509_getm_notBefore(x), -DAY);
	X509_gmtime_adj(X509_getm_notAfter(x), 30 * DAY);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (san != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <=
	    0)
		panic("t_cert: cannot sign");
	return x;
}

static void
guard_pki(void)
{
	g.ca_key = EVP_EC_gen("P-256");
	g.leaf_key = EVP_EC_gen("P-256");
	g.other_key = EVP_EC_gen("P-256");
	ASSERT(g.ca_key != NULL && g.leaf_key != NULL && g.other_key != NULL);
	g.ca = t_cert(g.ca_key, "Guard Test CA", NULL, NULL, NULL, true);
	g.leaf = t_cert(g.leaf_key, "mx.example.com", "DNS:MX.Example.com",
	    g.ca, g.ca_key, false);
	g.chain = sk_X509_new_null();
	g.leaf_only = sk_X509_new_null();
	ASSERT(g.chain != NULL && g.leaf_only != NULL);
	sk_X509_push(g.chain, g.leaf);
	sk_X509_push(g.chain, g.ca);
	sk_X509_push(g.leaf_only, g.leaf);
}

static void
guard_pki_free(void)
{
	sk_X509_free(g.chain);
	sk_X509_free(g.leaf_only);
	X509_free(g.leaf);
	X509_free(g.ca);
	EVP_PKEY_free(g.ca_key);
	EVP_PKEY_free(g.leaf_key);
	EVP_PKEY_free(g.other_key);
}

/* Which object a test record describes. */
enum t_of { OF_LEAF, OF_CA, OF_OTHER_KEY, OF_JUNK32 };

struct t_rec {
	uint8_t u, s, m;
	enum t_of of;
};

/* Association data of a test record (new; *len). */
static uint8_t *
t_data(const struct t_rec *r, size_t *len)
{
	static const uint8_t junk[64] = { 1, 2, 3 };
	const char *errstr = NULL;
	uint8_t *d;

	switch (r->of) {
	case OF_LEAF:
	case OF_CA:
		d = tls_tlsa_data_cert(
		    r->of == OF_LEAF ? g.leaf : g.ca, r->s, r->m, len, &errstr);
		break;
	case OF_OTHER_KEY:
		d = tls_tlsa_data_key(g.other_key, r->m, len, &errstr);
		break;
	default:
		*len = 32;
		d = xmemdup(junk, 32);
		break;
	}
	ASSERT(d != NULL);
	return d;
}

/* tls_guard_match on records made from recs (n <= 4). */
static int
t_guard(STACK_OF(X509) *chain, const struct t_rec *recs, size_t n,
    const char *owner, char **suggest)
{
	struct tls_tlsa t[4] = { { 0 } };
	uint8_t *d[4];
	size_t i;
	int m;

	ASSERT(n <= 4);
	for (i = 0; i < n; i++) {
		d[i] = t_data(&recs[i], &t[i].len);
		t[i].usage = recs[i].u;
		t[i].selector = recs[i].s;
		t[i].mtype = recs[i].m;
		t[i].data = d[i];
	}
	m = tls_guard_match(chain, t, n, owner, suggest);
	for (i = 0; i < n; i++)
		free(d[i]);
	return m;
}

static void
guard_table(void)
{
	static const struct {
		const char *name;
		bool leaf_only;
		struct t_rec r[3];
		size_t n;
		int want;
	} c[] = {
		{ "3 1 1 leaf", false, { { 3, 1, 1, OF_LEAF } }, 1, 1 },
		{ "3 0 1 leaf", false, { { 3, 0, 1, OF_LEAF } }, 1, 1 },
		{ "3 1 2 leaf", false, { { 3, 1, 2, OF_LEAF } }, 1, 1 },
		{ "3 0 0 leaf", false, { { 3, 0, 0, OF_LEAF } }, 1, 1 },
		{ "3 1 0 leaf", false, { { 3, 1, 0, OF_LEAF } }, 1, 1 },
		{ "3 1 1 other key", false, { { 3, 1, 1, OF_OTHER_KEY } }, 1,
		    0 },
		{ "3 x x of the CA", false, { { 3, 1, 1, OF_CA } }, 1, 0 },
		{ "2 0 1 CA sent", false, { { 2, 0, 1, OF_CA } }, 1, 1 },
		{ "2 1 2 CA sent", false, { { 2, 1, 2, OF_CA } }, 1, 1 },
		{ "2 0 1 CA not sent", true, { { 2, 0, 1, OF_CA } }, 1, 0 },
		{ "2 1 0 CA key signs the leaf", true, { { 2, 1, 0, OF_CA } },
		    1, 1 },
		{ "2 1 0 other key", true, { { 2, 1, 0, OF_OTHER_KEY } }, 1,
		    0 },
		{ "2 x x of the leaf", false, { { 2, 1, 1, OF_LEAF } }, 1, 0 },
		{ "PKIX-EE not used", false, { { 1, 1, 1, OF_LEAF } }, 1, 0 },
		{ "PKIX-TA not used", false, { { 0, 0, 1, OF_CA } }, 1, 0 },
		{ "second record matches", false,
		    { { 3, 1, 1, OF_JUNK32 }, { 3, 1, 1, OF_LEAF } }, 2, 1 },
		/* RFC 7671 §9: SHA2-512 shadows SHA2-256 */
		{ "3 1 1 ok, 3 1 2 wrong", false,
		    { { 3, 1, 1, OF_LEAF }, { 3, 1, 2, OF_OTHER_KEY } }, 2, 0 },
		{ "3 1 1 wrong, 3 1 2 ok", false,
		    { { 3, 1, 1, OF_OTHER_KEY }, { 3, 1, 2, OF_LEAF } }, 2, 1 },
		{ "3 1 0 ok, 3 1 2 wrong", false,
		    { { 3, 1, 0, OF_LEAF }, { 3, 1, 2, OF_OTHER_KEY } }, 2, 1 },
		{ "3 0 1 ok, 3 1 2 wrong", false,
		    { { 3, 0, 1, OF_LEAF }, { 3, 1, 2, OF_OTHER_KEY } }, 2, 1 },
		{ "2 1 1 ok, 3 1 2 wrong", false,
		    { { 2, 1, 1, OF_CA }, { 3, 1, 2, OF_OTHER_KEY } }, 2, 1 },
		{ "wrong length SHA2-512", false, { { 3, 1, 2, OF_JUNK32 } }, 1,
		    0 },
		{ "no records", false, { { 0 } }, 0, 0 },
	};
	size_t i;
	int m;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		m = t_guard(c[i].leaf_only ? g.leaf_only : g.chain, c[i].r,
		    c[i].n, NULL, NULL);
		if (m != c[i].want) {
			printf(
			    "# %s: got %d, want %d\n", c[i].name, m, c[i].want);
			T_CHECK(!"guard case");
		}
	}
}

/* The record `danerelay tlsa` would print for cert x. New. */
static char *
t_line(const char *owner, int u, int s, int m, X509 *x)
{
	const char *errstr = NULL;
	size_t len;
	uint8_t *d = tls_tlsa_data_cert(x, s, m, &len, &errstr);
	char *hex = str_hex(d, len), *line;

	line = xasprintf("%s IN TLSA %d %d %d %s\n", owner, u, s, m, hex);
	free(hex);
	free(d);
	return line;
}

static void
guard_suggest(void)
{
	static const struct t_rec wrong311[] = { { 3, 1, 1, OF_OTHER_KEY } };
	static const struct t_rec styles[] = { { 3, 1, 2, OF_OTHER_KEY },
		{ 2, 0, 1, OF_JUNK32 }, { 3, 1, 2, OF_JUNK32 },
		{ 1, 1, 1, OF_JUNK32 } };
	static const struct t_rec ta_only[] = { { 2, 0, 1, OF_JUNK32 } };
	char *s = (char *)"x", *want, *w2;

	/* The default record, the owner from the certificate's name. */
	T_CHECK(t_guard(g.chain, wrong311, 1, NULL, &s) == 0);
	want = t_line("_25._tcp.mx.example.com.", 3, 1, 1, g.leaf);
	T_STREQ(s, want);
	free(want);
	free(s);
	/* The owner given, case and trailing dot normalised. */
	T_CHECK(
	    t_guard(g.chain, wrong311, 1, "_25._tcp.MX.example.com.", &s) == 0);
	want = t_line("_25._tcp.mx.example.com.", 3, 1, 1, g.leaf);
	T_STREQ(s, want);
	free(want);
	free(s);
	/* The styles the RRset uses, each once, unusable ones skipped. */
	T_CHECK(
	    t_guard(g.chain, styles, 4, "_25._tcp.mx.example.com", &s) == 0);
	want = t_line("_25._tcp.mx.example.com.", 3, 1, 2, g.leaf);
	w2 = t_line("_25._tcp.mx.example.com.", 2, 0, 1, g.ca);
	T_CHECK(s != NULL && strncmp(s, want, strlen(want)) == 0 &&
	    strcmp(s + strlen(want), w2) == 0);
	free(want);
	free(w2);
	free(s);
	/* DANE-TA cannot be made without the CA: fall back to 3 1 1. */
	T_CHECK(t_guard(g.leaf_only, ta_only, 1, "_25._tcp.mx.example.com",
	            &s) == 0);
	want = t_line("_25._tcp.mx.example.com.", 3, 1, 1, g.leaf);
	T_STREQ(s, want);
	free(want);
	free(s);
	/* A match suggests nothing. */
	s = (char *)"x";
	T_CHECK(t_guard(g.chain, (const struct t_rec[]){ { 3, 1, 1, OF_LEAF } },
	            1, NULL, &s) == 1);
	T_CHECK(s == NULL);
}

static void
guard_errors(void)
{
	STACK_OF(X509) *empty = sk_X509_new_null();
	const char *errstr = NULL;
	char *s = (char *)"x";

	T_CHECK(tls_guard_match(empty, NULL, 0, NULL, &s) == -1 && s == NULL);
	T_CHECK(tls_guard_match(NULL, NULL, 0, NULL, NULL) == -1);
	sk_X509_free(empty);
	s = (char *)"x";
	T_CHECK(tls_guard_match_file(
	            "/nonexistent/cert.pem", NULL, 0, NULL, &s, &errstr) == -1);
	T_CHECK(s == NULL && errstr != NULL);
}

static void
guard_file(void)
{
	char path[] = "/tmp/test_report.XXXXXX";
	const char *errstr = NULL;
	struct tls_tlsa t;
	size_t len;
	uint8_t *d;
	FILE *f;
	int fd;

	fd = mkstemp(path);
	ASSERT(fd != -1 && (f = fdopen(fd, "w")) != NULL);
	PEM_write_X509(f, g.leaf);
	PEM_write_X509(f, g.ca);
	fclose(f);
	d = tls_tlsa_data_cert(g.ca, 1, 1, &len, &errstr);
	t = (struct tls_tlsa){ 2, 1, 1, d, len };
	T_CHECK(tls_guard_match_file(path, &t, 1, NULL, NULL, &errstr) == 1);
	t.usage = 3;
	T_CHECK(tls_guard_match_file(path, &t, 1, NULL, NULL, &errstr) == 0);
	free(d);
	unlink(path);
}

/* ---- --emit: the golden reports for other parsers ---- */

static int
emit(const char *dir)
{
	char path[512];
	uint8_t *p;
	size_t i, n;

	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		p = t_golden_build(&goldens[i], &n);
		snprintf(
		    path, sizeof(path), "%s/dsn_%s.eml", dir, goldens[i].name);
		t_write(path, p, n);
		free(p);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--emit") == 0)
		return emit(argv[2]);
	T_RUN(golden);
	T_RUN(golden_repeatable);
	T_RUN(failed_fields);
	T_RUN(smtp_diagnostic);
	T_RUN(delayed_fields);
	T_RUN(success_report);
	T_RUN(ret_hdrs);
	T_RUN(ret_full);
	T_RUN(ret_full_unclean);
	T_RUN(ret_none);
	T_RUN(ret_default);
	T_RUN(action_names);
	T_RUN(status_class);
	T_RUN(long_diagnostic);
	T_RUN(no_injection);
	T_RUN(subject_encoded);
	T_RUN(header_folding);
	T_RUN(global_report);
	T_RUN(boundary_clash);
	T_RUN(multi_rcpt);
	T_RUN(explain_each);
	T_RUN(explain_named);
	T_RUN(human_part);
	T_RUN(hdr_cases);
	T_RUN(hdr_nul_and_cap);
	T_RUN(mime_date);
	T_RUN(mime_2047);
	T_RUN(mime_qp);
	T_RUN(mime_clean);
	guard_pki();
	T_RUN(guard_table);
	T_RUN(guard_suggest);
	T_RUN(guard_errors);
	T_RUN(guard_file);
	guard_pki_free();
	T_EXIT();
}
