/*
 * test_tlsrpt_send: the pure parts of sending TLS reports: the
 * _smtp._tls record (RFC 8460 §3, table of records and what they yield),
 * the report mail (§5.3) against golden/tlsrpt_mail.eml (rewrite with
 * TLSRPT_GOLDEN_UPDATE=1 after a wanted change, and review the diff), the
 * §5.1 file name and the report id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_mail.h"
#include "tlsrpt/tlsrpt_rua.h"
#include "tlsrpt/tlsrpt_send.h"
#include "t.h"

/*
 * Where a case comes from: [mox] mjl-/mox tlsrpt/parse_test.go TestRecord,
 * [stalwart] stalwartlabs/mail-auth src/mta_sts/parse.rs tlsrpt_parse;
 * the others are ours (RFC 8460 §3 and its examples).
 */
struct rua_case {
	const char *recs[3];
	int want; /* destinations, or -1 */
	const char *first;
	const char *why; /* part of the error */
};

static const struct rua_case rua_cases[] = {
	{ { "v=TLSRPTv1;rua=mailto:reports@example.com" }, 1,
	    "reports@example.com", NULL },
	{ { "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt" }, 1,
	    "https://reporting.example.com/v1/tlsrpt", NULL },
	{ { "v=TLSRPTv1 ; rua=mailto:a@x.example , https://c.example/p ;" }, 2,
	    "a@x.example", NULL },
	/* §3: commas in a URI are encoded; a mailto may name two */
	{ { "v=TLSRPTv1; rua=mailto:a@x.example%2Cb@y.example" }, 2,
	    "a@x.example", NULL },
	{ { "v=TLSRPTv1; rua=mailto:tls%2Brpt@x.example?subject=hi" }, 1,
	    "tls+rpt@x.example", NULL },
	{ { "v=TLSRPTv1; rua=mailto:a@x.example; ext_1=yes" }, 1, "a@x.example",
	    NULL },
	/* unknown schemes are skipped, not fatal */
	{ { "v=TLSRPTv1; rua=ftp://x.example/r,mailto:a@x.example" }, 1,
	    "a@x.example", NULL },
	{ { "v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@x.example" }, 1,
	    "a@x.example", NULL },
	{ { "v=TLSRPTv1; rua=mailto:a@x.example",
	      "v=TLSRPTv1; rua=mailto:b@x.example" },
	    -1, NULL, "exactly one" },
	{ { "v=spf1 -all" }, -1, NULL, "no v=TLSRPTv1" },
	{ { "v=TLSRPTv2; rua=mailto:a@x.example" }, -1, NULL, "no v=" },
	{ { "v=TLSRPTv1" }, -1, NULL, "no v=" },
	{ { "v=TLSRPTv1;" }, -1, NULL, "no field" }, /* [mox] missing rua */
	/* A repeated rua adds its URIs (docs/TLSRPT.md): [mox] tlsrpt/
	 * parse_test.go keeps both lists, [stalwart] mail-auth
	 * src/mta_sts/parse.rs pushes every rua; it used to drop the record. */
	{ { "v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example" }, 2,
	    "a@x.example", NULL },
	{ { "v=TLSRPTv1 ; rua=mailto:x@x.example; rua=mailto:y@x.example" }, 2,
	    "x@x.example", NULL },
	{ { "v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:a@x.example" }, 1,
	    "a@x.example", NULL },
	{ { "v=TLSRPTv1; rua=mailto:a@x.example; rua=noscheme" }, -1, NULL,
	    "malformed rua" },
	/* [mox] tlsrpt/parse_test.go good and bad records */
	{ { "v=TLSRPTv1; rua=mailto:tlsrpt@mox.example;" }, 1,
	    "tlsrpt@mox.example", NULL },
	{ { "v=TLSRPTv1; rua=mailto:tlsrpt@mox.example , \t\t "
	    "https://mox.example/tlsrpt" },
	    2, "tlsrpt@mox.example", NULL },
	/* ... [mox] accepts it with two spaces at the end; the ABNF wants
	 * a ";" before trailing whitespace, as for _mta-sts */
	{ { "v=TLSRPTv1; rua=mailto:tlsrpt@mox.example , \t\t "
	    "https://mox.example/tlsrpt  " },
	    -1, NULL, "separator" },
	{ { "v=TLSRPTv1; rua=mailto:tlsrpt@mox.example; ext=yes" }, 1,
	    "tlsrpt@mox.example", NULL },
	{ { "v=TLSRPTv0" }, -1, NULL, "no v=" },
	{ { "v=TLSRPTv10" }, -1, NULL, "no v=" },
	{ { "v=TLSRPTv1; ext=1" }, -1, NULL, "no rua" },
	{ { "v=TLSRPTv1; rua=noscheme" }, -1, NULL, "malformed rua" },
	{ { "v=TLSRPTv1; rua=,, ," }, -1, NULL, "malformed rua" },
	{ { "v=TLSRPTv1; rua=mailto:x@x.example; more=" }, -1, NULL,
	    "empty field value" },
	{ { "v=TLSRPTv1; rua=mailto:x@x.example; "
	    "a12345678901234567890123456789012=1" },
	    -1, NULL, "malformed field name" },
	{ { "v=TLSRPTv1; rua=mailto:x@x.example; 1%=a" }, -1, NULL,
	    "malformed field name" },
	{ { "v=TLSRPTv1; rua=mailto:x@x.example; test==" }, -1, NULL,
	    "malformed field value" },
	/* issue 10 §5: the empty trailing field the _mta-sts parser refuses
	 * ([mox] "additional semicolon") */
	{ { "v=TLSRPTv1; rua=mailto:a@b.example;;" }, -1, NULL, "empty field" },
	{ { "v=TLSRPTv1; rua=mailto:x@x.example other" }, -1, NULL,
	    "malformed rua" },
	/* [stalwart] mail-auth src/mta_sts/parse.rs tlsrpt_parse */
	{ { "v=TLSRPTv1; rua=mailto:tlsrpt@mydomain.com,"
	    "https://tlsrpt.mydomain.com/v1" },
	    2, "tlsrpt@mydomain.com", NULL },
	{ { "v=TLSRPTv1; rua=" }, -1, NULL, "empty field value" }, /* [mox] */
	{ { "v=TLSRPTv1; rua=mailto:not-an-address" }, -1, NULL,
	    "malformed rua" },
	/* found by fuzz_tlsrpt_rua: an address of two '@' was taken */
	{ { "v=TLSRPTv1; rua=mailto:a@x.example%2C@b@y.example" }, -1, NULL,
	    "malformed rua" },
	{ { "v=TLSRPTv1; rua=ftp://x.example/r" }, -1, NULL,
	    "no mailto: or https:" },
	{ { "v=TLSRPTv1; rua=mailto:a@x.example; bad field" }, -1, NULL,
	    "malformed field name" },
	{ { "v=TLSRPTv1; rua=mailto:a@x.example; _x=1" }, -1, NULL,
	    "malformed field name" },
	{ { "V=TLSRPTv1; rua=mailto:a@x.example" }, -1, NULL, "no v=" },
};

static void
rua_table(void)
{
	size_t i, k, n;

	for (i = 0; i < sizeof(rua_cases) / sizeof(rua_cases[0]); i++) {
		const struct rua_case *c = &rua_cases[i];
		struct tlsrpt_rua *v = NULL;
		char *why = NULL;
		int got;

		for (n = 0; n < 3 && c->recs[n] != NULL; n++)
			;
		got = tlsrpt_rua_parse(c->recs, n, &v, &why);
		if (got != c->want)
			printf("  case %zu: got %d want %d (%s)\n", i, got,
			    c->want, why != NULL ? why : "");
		T_CHECK(got == c->want);
		if (got > 0) {
			T_STREQ(v[0].target, c->first);
			for (k = 0; k < (size_t)got; k++)
				T_CHECK(v[k].kind ==
				    (strncmp(v[k].target, "https:", 6) == 0 ?
				            TLSRPT_RUA_HTTPS :
				            TLSRPT_RUA_MAILTO));
			tlsrpt_rua_free(v, (size_t)got);
		} else {
			/* c->why is NULL when a record that must parse
			 * did not: a failure, not a crash */
			if (c->why == NULL || why == NULL ||
			    strstr(why, c->why) == NULL)
				printf(
				    "  case %zu: \"%s\" does not say \"%s\"\n",
				    i, why != NULL ? why : "",
				    c->why != NULL ? c->why : "(should parse)");
			T_CHECK(c->why != NULL && why != NULL &&
			    strstr(why, c->why) != NULL);
			free(why);
		}
	}
}

static const uint8_t gz_fixture[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x03, 0xab, 0xae, 0x05, 0x00, 0x43, 0xbf, 0xa6, 0xa3, 0x02,
	0x00, 0x00, 0x00 }; /* gzip of "{}" */

static uint8_t *
golden_mail(size_t *len)
{
	struct tlsrpt_mail m = { 0 };

	m.from = "noreply-tlsrpt@mail.sender.example";
	m.to = "mts-sts-tlsrpt@example.net";
	m.policy_domain = "example.net";
	m.submitter = "mail.sender.example";
	m.report_id = "20170508.example.net.0a1b2c3d4e5f@mail.sender.example";
	m.organization = "Sender Inc.";
	m.begin = 1494201600; /* 2017-05-08T00:00:00Z */
	m.end = m.begin + 86399;
	m.now = 1494378870;
	m.gz = gz_fixture;
	m.gzlen = sizeof(gz_fixture);
	return tlsrpt_mail_build(&m, len);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *p;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	p = xmalloc((size_t)n + 1);
	*len = fread(p, 1, (size_t)n, fp);
	p[*len] = '\0';
	fclose(fp);
	return p;
}

static void
mail_golden(void)
{
	const char *path = "golden/tlsrpt_mail.eml";
	size_t len = 0, wlen = 0, i, col = 0;
	uint8_t *got = golden_mail(&len);
	char *want;
	FILE *fp;

	T_CHECK(got != NULL);
	if (got == NULL)
		return;
	if (getenv("TLSRPT_GOLDEN_UPDATE") != NULL &&
	    (fp = fopen(path, "wb")) != NULL) {
		fwrite(got, 1, len, fp);
		fclose(fp);
	}
	want = read_file(path, &wlen);
	T_CHECK(want != NULL && wlen == len && memcmp(want, got, len) == 0);
	/* RFC 5322 §2.1.1: lines of at most 998 octets, CRLF only */
	for (i = 0; i < len; i++) {
		if (got[i] == '\n')
			T_CHECK(i > 0 && got[i - 1] == '\r');
		col = got[i] == '\n' ? 0 : col + 1;
		T_CHECK(col <= 998);
	}
	free(want);
	free(got);
}

static void
mail_refuses_bad_fields(void)
{
	struct tlsrpt_mail m = { 0 };
	size_t len;

	m.from = "a@b.example";
	m.to = "x@y.example\r\nBcc: evil@z.example";
	m.policy_domain = "y.example";
	m.submitter = "b.example";
	m.report_id = "1.y.example.1@b.example";
	m.gz = gz_fixture;
	m.gzlen = sizeof(gz_fixture);
	T_CHECK(tlsrpt_mail_build(&m, &len) == NULL);
	m.to = "x@y.example";
	m.from = NULL;
	T_CHECK(tlsrpt_mail_build(&m, &len) == NULL);
}

static void
filename_and_id(void)
{
	char name[256];
	char *id = tlsrpt_send_report_id(
	    "2026-11-28", "example.net", "mail.sender.example");
	const char *p;

	/* the §5.1 example shape */
	tlsrpt_mail_filename(name, sizeof(name), "mail.sndr.example.com",
	    "example.net", 1470013207, 1470186007, "001");
	T_STREQ(name,
	    "mail.sndr.example.com!example.net!1470013207!1470186007!001."
	    "json.gz");
	/* an RFC 5322 msg-id: id-left "@" id-right, no ':' */
	T_CHECK(strncmp(id, "20261128.example.net.", 21) == 0);
	p = strchr(id, '@');
	T_CHECK(p != NULL && strcmp(p + 1, "mail.sender.example") == 0);
	T_CHECK(strchr(id, ':') == NULL && strlen(id) == 21 + 12 + 20);
	free(id);
}

int
main(void)
{
	T_RUN(rua_table);
	T_RUN(mail_golden);
	T_RUN(mail_refuses_bad_fields);
	T_RUN(filename_and_id);
	T_EXIT();
}
