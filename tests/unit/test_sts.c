/*
 * test_sts: the MTA-STS module (RFC 8461).
 *
 * Pure tables first: the policy parser (§3.2), MX matching (§4.1), the TXT
 * record (§3.1). Then the SQLite cache on its own, the HTTPS fetch against
 * a Python server started here on 127.0.0.1 with a CA made by openssl in a
 * temp dir (200, 404, redirect, content types, oversized body, slow server,
 * untrusted and misnamed certificates), the §5.1 engine driven through
 * sts_get_with_txt() (sts_int.h: TXT records handed in, mta-sts.DOMAIN
 * pinned to 127.0.0.1, a settable clock), and finally sts_get() itself
 * against a tiny fake DNS server on 127.0.0.1. Nothing leaves 127.0.0.0/8.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/str.h"
#include "dns/dns.h"
#include "dns/dns_packet.h"
#include "tlsrpt/tlsrpt_rua.h"
#include "sts/sts.h"
#include "sts/sts_cache.h"
#include "sts/sts_fetch.h"
#include "sts/sts_int.h"
#include "t.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* §3.2: the policy parser. */

struct policy_case {
	const char *name;
	const char *body;
	const char *err; /* NULL: parses */
	enum sts_mode mode;
	long max_age;
	size_t nmx;
};

#define HEAD "version: STSv1\nmode: enforce\nmax_age: 86400\n"

static const struct policy_case policy_cases[] = {
	{ "rfc_example_lf",
	    "version: STSv1\nmode: enforce\nmx: mail.example.com\n"
	    "mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n",
	    NULL, STS_MODE_ENFORCE, 604800, 3 },
	{ "crlf",
	    "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\n"
	    "max_age: 86400\r\n",
	    NULL, STS_MODE_TESTING, 86400, 1 },
	{ "mixed_terminators_no_final",
	    "version: STSv1\r\nmode: testing\nmx: mx.example.com\r\n"
	    "max_age: 5",
	    NULL, STS_MODE_TESTING, 5, 1 },
	{ "none_without_mx", "version: STSv1\nmode: none\nmax_age: 0\n", NULL,
	    STS_MODE_NONE, 0, 0 },
	{ "version_not_first",
	    "mode: enforce\nmx: a.example\nversion: STSv1\nmax_age: 1\n", NULL,
	    STS_MODE_ENFORCE, 1, 1 },
	{ "whitespace_per_abnf",
	    "version:STSv1\t \nmode:\t testing  \nmx:  a.example\t\n"
	    "max_age: 31557600 \n",
	    NULL, STS_MODE_TESTING, 31557600, 1 },
	{ "unknown_keys_ignored",
	    HEAD "mx: a.example\nx-foo_bar.baz9: some value, with spaces\n"
	         "Mode: none\nVERSION: 2\n",
	    NULL, STS_MODE_ENFORCE, 86400, 1 },
	{ "utf8_extension_value",
	    HEAD "mx: a.example\nnote: h\xc3\xa9llo \xe2\x82\xac\n", NULL,
	    STS_MODE_ENFORCE, 86400, 1 },
	{ "duplicate_mode_first_wins",
	    "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\n"
	    "max_age: 10\nmax_age: 20\n",
	    NULL, STS_MODE_TESTING, 10, 1 },
	{ "duplicate_bad_second_ignored",
	    HEAD "mx: a.example\nversion: STSv2\nmode: sometimes\n", NULL,
	    STS_MODE_ENFORCE, 86400, 1 },
	{ "duplicate_bad_first",
	    "version: STSv1\nmode: sometimes\nmode: enforce\nmx: a.example\n"
	    "max_age: 1\n",
	    "unknown mode", STS_MODE_NONE, 0, 0 },
	{ "max_age_leading_zeros",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 0000086400\n",
	    NULL, STS_MODE_ENFORCE, 86400, 1 },
	{ "wildcard_and_plain_mx",
	    HEAD "mx: *.example.com\nmx: 1mx.a-b.example\nmx: localhost\n",
	    NULL, STS_MODE_ENFORCE, 86400, 3 },
	{ "missing_version", "mode: enforce\nmx: a.example\nmax_age: 1\n",
	    "missing version", STS_MODE_NONE, 0, 0 },
	{ "version_case",
	    "Version: STSv1\nmode: enforce\nmx: a.example\n"
	    "max_age: 1\n",
	    "missing version", STS_MODE_NONE, 0, 0 },
	{ "unsupported_version",
	    "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	    "unsupported version", STS_MODE_NONE, 0, 0 },
	{ "missing_mode", "version: STSv1\nmx: a.example\nmax_age: 1\n",
	    "missing mode", STS_MODE_NONE, 0, 0 },
	{ "missing_max_age", "version: STSv1\nmode: enforce\nmx: a.example\n",
	    "missing max_age", STS_MODE_NONE, 0, 0 },
	{ "enforce_without_mx", HEAD, "no mx pattern", STS_MODE_NONE, 0, 0 },
	{ "testing_without_mx", "version: STSv1\nmode: testing\nmax_age: 1\n",
	    "no mx pattern", STS_MODE_NONE, 0, 0 },
	{ "mode_case",
	    "version: STSv1\nmode: Enforce\nmx: a.example\n"
	    "max_age: 1\n",
	    "unknown mode", STS_MODE_NONE, 0, 0 },
	{ "max_age_too_big",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
	    "max_age out of range", STS_MODE_NONE, 0, 0 },
	{ "max_age_11_digits",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 00000000001\n",
	    "max_age not a number", STS_MODE_NONE, 0, 0 },
	{ "max_age_negative",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
	    "max_age not a number", STS_MODE_NONE, 0, 0 },
	{ "max_age_exponent",
	    "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1e3\n",
	    "max_age not a number", STS_MODE_NONE, 0, 0 },
	{ "max_age_huge",
	    "version: STSv1\nmode: enforce\nmx: a.example\n"
	    "max_age: 99999999999999999999\n",
	    "max_age not a number", STS_MODE_NONE, 0, 0 },
	{ "space_before_colon", HEAD "mx : a.example\n", "malformed line",
	    STS_MODE_NONE, 0, 0 },
	{ "leading_space", HEAD " mx: a.example\n", "malformed line",
	    STS_MODE_NONE, 0, 0 },
	{ "no_colon", HEAD "mx a.example\n", "malformed line", STS_MODE_NONE, 0,
	    0 },
	{ "key_33_chars",
	    HEAD "mx: a.example\n"
	         "abcdefghijabcdefghijabcdefghijabc: x\n",
	    "malformed line", STS_MODE_NONE, 0, 0 },
	{ "key_32_chars",
	    HEAD "mx: a.example\n"
	         "abcdefghijabcdefghijabcdefghijab: x\n",
	    NULL, STS_MODE_ENFORCE, 86400, 1 },
	{ "key_leading_underscore", HEAD "mx: a.example\n_x: y\n",
	    "malformed line", STS_MODE_NONE, 0, 0 },
	{ "empty_line_inside",
	    "version: STSv1\n\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	    "empty line", STS_MODE_NONE, 0, 0 },
	/* Blank lines after the last field are tolerated (sts_policy.c). */
	{ "trailing_empty_line", HEAD "mx: a.example\n\n", NULL,
	    STS_MODE_ENFORCE, 86400, 1 },
	{ "trailing_crlf_crlf", HEAD "mx: a.example\r\n\r\n", NULL,
	    STS_MODE_ENFORCE, 86400, 1 },
	{ "empty_body", "", "empty policy", STS_MODE_NONE, 0, 0 },
	{ "empty_value", HEAD "mx: a.example\nfoo:\n", "malformed value",
	    STS_MODE_NONE, 0, 0 },
	{ "empty_value_spaces", HEAD "mx: a.example\nfoo:   \n",
	    "malformed value", STS_MODE_NONE, 0, 0 },
	{ "tab_inside_value", HEAD "mx: a.example\nfoo: a\tb\n",
	    "malformed value", STS_MODE_NONE, 0, 0 },
	{ "bare_cr", HEAD "mx: a.example\rmx: b.example\n", "malformed value",
	    STS_MODE_NONE, 0, 0 },
	{ "cr_at_end_without_lf", HEAD "mx: a.example\r", "malformed value",
	    STS_MODE_NONE, 0, 0 },
	{ "control_char",
	    HEAD "mx: a.example\nfoo: a\x01"
	         "b\n",
	    "malformed value", STS_MODE_NONE, 0, 0 },
	{ "del_char", HEAD "mx: a.example\nfoo: a\x7f\n", "malformed value",
	    STS_MODE_NONE, 0, 0 },
	{ "utf8_overlong", HEAD "mx: a.example\nfoo: \xc0\x80\n",
	    "malformed value", STS_MODE_NONE, 0, 0 },
	{ "utf8_surrogate", HEAD "mx: a.example\nfoo: \xed\xa0\x80\n",
	    "malformed value", STS_MODE_NONE, 0, 0 },
	{ "utf8_truncated", HEAD "mx: a.example\nfoo: \xe2\x82\n",
	    "malformed value", STS_MODE_NONE, 0, 0 },
	{ "latin1", HEAD "mx: a.example\nfoo: caf\xe9\n", "malformed value",
	    STS_MODE_NONE, 0, 0 },
	{ "mx_partial_wildcard", HEAD "mx: *mail.example.com\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_trailing_dot", HEAD "mx: mail.example.com.\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_double_wildcard", HEAD "mx: *.*.example.com\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_inner_wildcard", HEAD "mx: mail.*.example.com\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_star_only", HEAD "mx: *\n", "mx pattern malformed", STS_MODE_NONE,
	    0, 0 },
	{ "mx_star_dot", HEAD "mx: *.\n", "mx pattern malformed", STS_MODE_NONE,
	    0, 0 },
	{ "mx_leading_hyphen", HEAD "mx: -a.example.com\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_trailing_hyphen", HEAD "mx: a-.example.com\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_underscore", HEAD "mx: a_b.example.com\n", "mx pattern malformed",
	    STS_MODE_NONE, 0, 0 },
	{ "mx_empty_label", HEAD "mx: example..com\n", "mx pattern malformed",
	    STS_MODE_NONE, 0, 0 },
	{ "mx_leading_dot", HEAD "mx: .example.com\n", "mx pattern malformed",
	    STS_MODE_NONE, 0, 0 },
	{ "mx_with_space", HEAD "mx: a.example b.example\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_utf8_ulabel",
	    HEAD "mx: b\xc3\xbc"
	         "cher.example\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_label_64",
	    HEAD
	    "mx: abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcd.example\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
	{ "mx_label_63",
	    HEAD
	    "mx: abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
	    "abc.example\n",
	    NULL, STS_MODE_ENFORCE, 86400, 1 },
	{ "mx_bad_even_when_none",
	    "version: STSv1\nmode: none\nmax_age: 1\nmx: bad_host\n",
	    "mx pattern malformed", STS_MODE_NONE, 0, 0 },
};

static void
test_policy_table(void)
{
	const struct policy_case *c;
	struct sts_policy *p;
	const char *err;
	size_t i;

	for (i = 0; i < NITEMS(policy_cases); i++) {
		c = &policy_cases[i];
		err = NULL;
		p = sts_policy_parse(c->body, strlen(c->body), &err);
		if (c->err == NULL && p == NULL)
			printf("  %s: unexpected error %s\n", c->name, err);
		if (c->err != NULL &&
		    (p != NULL || strstr(err, c->err) == NULL))
			printf("  %s: want \"%s\", got \"%s\"\n", c->name,
			    c->err, p != NULL ? "a policy" : err);
		T_CHECK((p == NULL) == (c->err != NULL));
		if (p != NULL && c->err == NULL) {
			T_CHECK(sts_policy_mode(p) == c->mode);
			T_CHECK(sts_policy_max_age(p) == c->max_age);
			T_CHECK(sts_policy_mx_count(p) == c->nmx);
		}
		if (p == NULL && c->err != NULL)
			T_CHECK(strstr(err, c->err) != NULL);
		sts_policy_free(p);
	}
}

/* The lines for TLS-RPT's policy-string: as served, without terminators. */
static void
test_policy_lines(void)
{
	static const char body[] = "version: STSv1\r\nmode: enforce  \r\n"
	                           "mx: Mail.Example.com\nmax_age: 60";
	const char *err;
	struct sts_policy *p = sts_policy_parse(body, strlen(body), &err);
	struct sts_policy *d;

	T_CHECK(p != NULL);
	if (p == NULL)
		return;
	T_CHECK(sts_policy_line_count(p) == 4);
	T_STREQ(sts_policy_line(p, 0), "version: STSv1");
	T_STREQ(sts_policy_line(p, 1), "mode: enforce  ");
	T_STREQ(sts_policy_line(p, 2), "mx: Mail.Example.com");
	T_STREQ(sts_policy_line(p, 3), "max_age: 60");
	T_STREQ(sts_policy_mx(p, 0), "Mail.Example.com");
	d = sts_policy_dup(p);
	sts_policy_free(p);
	T_CHECK(sts_policy_line_count(d) == 4);
	T_STREQ(sts_policy_line(d, 3), "max_age: 60");
	T_STREQ(sts_policy_mx(d, 0), "Mail.Example.com");
	T_CHECK(sts_policy_max_age(d) == 60);
	T_CHECK(sts_policy_mx_match(d, "mail.example.com"));
	sts_policy_free(d);
	sts_policy_free(NULL);
	T_STREQ(sts_mode_str(STS_MODE_TESTING), "testing");
	T_STREQ(sts_state_str(STS_STATE_INVALID), "sts-policy-invalid");
}

/* A NUL inside is a control character, not the end of the policy. */
static void
test_policy_nul(void)
{
	static const char body[] = HEAD "mx: a.example\nfoo: a\0b\n";
	const char *err = NULL;

	T_CHECK(sts_policy_parse(body, sizeof(body) - 1, &err) == NULL);
	T_CHECK(err != NULL && strstr(err, "NUL") != NULL);
	err = NULL;
	T_CHECK(sts_policy_parse(
	            HEAD "mx: a.example\n\0", sizeof(HEAD) + 14, &err) == NULL);
	T_CHECK(err != NULL);
}

/* Megabytes in: linear time, every pattern kept, or one clear error. */
static void
test_policy_huge(void)
{
	size_t cap = 4 * 1024 * 1024, n = 0, i;
	char *b = malloc(cap);
	struct sts_policy *p;
	const char *err;

	n += (size_t)snprintf(b, cap, "%s", HEAD);
	for (i = 0; n + 64 < cap; i++)
		n += (size_t)snprintf(
		    b + n, cap - n, "mx: mx%zu.example.com\n", i);
	p = sts_policy_parse(b, n, &err);
	T_CHECK(p != NULL);
	T_CHECK(p != NULL && sts_policy_mx_count(p) == i);
	T_CHECK(p != NULL && sts_policy_mx_match(p, "MX17.example.com."));
	sts_policy_free(p);
	/* One endless line. */
	memset(b, 'a', cap);
	T_CHECK(sts_policy_parse(b, cap, &err) == NULL);
	T_CHECK(strstr(err, "malformed line") != NULL);
	/* One endless value. */
	memcpy(b, "x: ", 3);
	T_CHECK(sts_policy_parse(b, cap, &err) == NULL);
	T_CHECK(strstr(err, "missing version") != NULL);
	free(b);
}

/* ------------------------------------------------------------------ */
/* §4.1: MX host matching. */

struct match_case {
	const char *host;
	bool match;
};

static const struct match_case match_cases[] = {
	{ "mail.example.com", true },
	{ "MAIL.Example.COM", true },
	{ "mail.example.com.", true },
	{ "mail.example.com..", false },
	{ "amail.example.com", false },
	{ "mail.example.co", false },
	{ "example.com", false },
	{ "x.example.net", true },
	{ "X.EXAMPLE.NET.", true },
	{ "example.net", false },
	{ "example.net.", false },
	{ ".example.net", false },
	{ "a.b.example.net", false },
	{ "xexample.net", false },
	{ "mx.upper.org", true },
	{ "MX.UPPER.ORG.", true },
	{ "b.mx.upper.org", false },
	{ "other.example", false },
	{ "", false },
	{ ".", false },
};

static void
test_mx_match(void)
{
	static const char body[] = "version: STSv1\nmode: enforce\n"
	                           "mx: mail.example.com\nmx: *.example.net\n"
	                           "mx: MX.Upper.Org\nmax_age: 1\n";
	const char *err;
	struct sts_policy *p = sts_policy_parse(body, strlen(body), &err);
	size_t i;

	T_CHECK(p != NULL);
	if (p == NULL)
		return;
	for (i = 0; i < NITEMS(match_cases); i++) {
		if (sts_policy_mx_match(p, match_cases[i].host) !=
		    match_cases[i].match)
			printf("  host \"%s\": want %d\n", match_cases[i].host,
			    match_cases[i].match);
		T_CHECK(sts_policy_mx_match(p, match_cases[i].host) ==
		    match_cases[i].match);
	}
	sts_policy_free(p);
}

/* ------------------------------------------------------------------ */
/* §3.1: TXT records. */

struct txt_case {
	const char *txt;
	int rc;
	const char *want; /* the id when rc == 1, an error part when -1 */
};

/*
 * Where a case comes from: [mox] mjl-/mox mtasts/parse_test.go TestRecord,
 * [stalwart] stalwartlabs/mail-auth src/mta_sts/parse.rs
 * mta_sts_record_parse, [snawoot] Snawoot/postfix-mta-sts-resolver
 * tests/test_utils.py test_parse_mta_sts_record. Where they accept what
 * the ABNF refuses, the case says so and we follow the ABNF.
 */
static const struct txt_case txt_cases[] = {
	/* [stalwart] [mox] [snawoot] */
	{ "v=STSv1; id=20160831085700Z;", 1, "20160831085700Z" },
	/* [stalwart] */
	{ "v=STSv1; id=20190429T010101", 1, "20190429T010101" },
	{ "v=STSv1;id=20160831085700Z;", 1, "20160831085700Z" }, /* [snawoot] */
	{ "v=STSv1;id=20160831085700Z", 1, "20160831085700Z" },  /* [snawoot] */
	/* [mox]: whitespace on both sides of ";" is field-delim */
	{ "v=STSv1; \t id=20160831085700Z  \t;", 1, "20160831085700Z" },
	{ "v=STSv1; id=a", 1, "a" },                /* [mox] */
	{ "v=STSv1; id=a; more=a; ext=2", 1, "a" }, /* [mox] */
	{ "v=STSv1;id=abc", 1, "abc" }, { "v=STSv1 ; id=abc", 1, "abc" },
	{ "v=STSv1\t;\tid=abc;\t ", 1, "abc" },
	{ "v=STSv1; id=abc; ext=val; x_y.z-1=a:b<>", 1, "abc" },
	{ "v=STSv1; ext=1; id=abc", 1, "abc" },
	{ "v=STSv1; id=first; id=second", 1, "first" },
	{ "v=STSv1; id=first; id=not-an-id", 1, "first" },
	{ "v=STSv1; id=first; id=a b", -1, "malformed field value" },
	{ "v=STSv1; id=abcdefghijabcdefghijabcdefghij12", 1,
	    "abcdefghijabcdefghijabcdefghij12" },
	{ "v=STSv1; id=abcdefghijabcdefghijabcdefghij123", -1, "id not" },
	/* [mox] id too long, invalid id, empty id */
	{ "v=STSv1; id=012345678901234567890123456789012", -1, "id not" },
	{ "v=STSv1; id=test-123", -1, "id not" },
	{ "v=STSv1; id=", -1, "empty field value" },
	{ "v=STSv1; id=abc-def", -1, "id not" },
	/* [snawoot] accepts trailing whitespace; the ABNF wants a ";" */
	{ "v=STSv1;        id=20160831085700Z   ", -1, "separator" },
	{ "v=STSv1; id=abc ", -1, "separator" },
	/* [mox] "additional semicolon"; [snawoot] accepts ";;;" */
	{ "v=STSv1; id=a;;", -1, "empty field" },
	{ "v=STSv1; id=20160831085700Z;;;", -1, "empty field" },
	{ "v=STSv1; id=abc; ;", -1, "empty field" },
	{ "v=STSv1;", -1, "no field" },         /* [mox] missing id */
	{ "v=STSv1; ext=1", -1, "id missing" }, /* [mox] */
	{ "v=STSv1; ;id=abc", -1, "empty field" },
	{ "v=STSv1; foo", -1, "malformed field name" },
	{ "v=STSv1; foo=", -1, "empty field value" },
	{ "v=STSv1; id=a; more=", -1, "empty field value" }, /* [mox] */
	/* [mox] extension name too long, invalid name, "==" */
	{ "v=STSv1; id=a; a12345678901234567890123456789012=1", -1,
	    "malformed field name" },
	{ "v=STSv1; id=a; 1%=a", -1, "malformed field name" },
	{ "v=STSv1; id=a; test==", -1, "malformed field value" },
	{ "v=STSv1; foo=a=b; id=x", -1, "malformed field value" },
	{ "v=STSv1; foo=a b; id=x", -1, "malformed field value" },
	{ "v=STSv1; foo= a; id=x", -1, "empty field value" },
	{ "v=STSv1; ID=abc", -1, "id missing" },
	{ "v=STSv1; id=abc; \xc3\xa9=x", -1, "malformed field name" },
	{ "v=STSv1; id=abc; x=\xc3\xa9", -1, "malformed field value" },
	{ "v=STSv1; id=abc; x=a\xc3\xa9", -1, "malformed field value" },
	{ "v=STSv1; abcdefghijabcdefghijabcdefghijabc=1; id=a", -1,
	    "malformed field name" },
	{ "v=STSv1; abcdefghijabcdefghijabcdefghijab=1; id=a", 1, "a" },
	/* not STSv1 records: discarded ([mox] STSv0, STSv10, STSv2, bare) */
	{ "v=STSv0", 0, NULL }, { "v=STSv10", 0, NULL }, { "v=STSv2", 0, NULL },
	{ "v=STSv1 id=abc", 0, NULL }, { "v=STSv10; id=abc", 0, NULL },
	{ "V=STSv1; id=abc", 0, NULL }, { "v=stsv1; id=abc", 0, NULL },
	{ " v=STSv1; id=abc", 0, NULL }, { "v=STSv1", 0, NULL },
	{ "v=spf1 -all", 0, NULL }, { "", 0, NULL }, /* [snawoot] */
	{ " ;   ;  ", 0, NULL },                     /* [snawoot] */
};

static void
test_txt_table(void)
{
	char id[STS_ID_MAX + 1];
	const char *err;
	size_t i;
	int rc;

	for (i = 0; i < NITEMS(txt_cases); i++) {
		const struct txt_case *c = &txt_cases[i];

		err = "";
		id[0] = '\0';
		rc = sts_txt_parse(c->txt, strlen(c->txt), id, &err);
		if (rc != c->rc)
			printf("  \"%s\": rc %d, want %d (%s)\n", c->txt, rc,
			    c->rc, err);
		T_CHECK(rc == c->rc);
		if (rc == 1 && c->rc == 1)
			T_STREQ(id, c->want);
		if (rc == -1 && c->rc == -1 && strstr(err, c->want) == NULL)
			printf("  \"%s\": error \"%s\"\n", c->txt, err);
		if (rc == -1 && c->rc == -1)
			T_CHECK(strstr(err, c->want) != NULL);
	}
}

/*
 * One reading of the grammar for both TXT records (core/txtrec.h): the
 * same tail after a valid first field gets the same verdict from the
 * _mta-sts parser and the _smtp._tls parser. ";;" is the case the
 * _smtp._tls parser used to accept ([mox] tlsrpt/parse_test.go and
 * mtasts/parse_test.go both refuse it as "additional semicolon").
 */
static const struct {
	const char *tail;
	bool valid;
} shape_cases[] = {
	{ "", true },
	{ ";", true },
	{ " ; ", true },
	{ "; x=1", true },
	{ "; x=1;", true },
	{ "\t;\tx.y-z_1=v\t;", true },
	{ ";;", false },
	{ "; ;", false },
	{ "; x=1;;", false },
	{ " ", false },
	{ "; x=1 ", false },
	{ "; x=", false },
	{ "; x", false },
	{ "; =1", false },
	{ "; x= 1", false },
	{ "; x=1 y", false },
	{ "; x=a=b", false },
	{ "; _x=1", false },
	{ " x=1", false },
};

static void
test_txt_one_reading(void)
{
	char rec[128], id[STS_ID_MAX + 1];
	const char *err, *one[1] = { rec };
	struct tlsrpt_rua *v = NULL;
	char *why = NULL;
	size_t i;
	int sts, rpt;

	for (i = 0; i < NITEMS(shape_cases); i++) {
		snprintf(
		    rec, sizeof(rec), "v=STSv1; id=a%s", shape_cases[i].tail);
		sts = sts_txt_parse(rec, strlen(rec), id, &err);
		snprintf(rec, sizeof(rec),
		    "v=TLSRPTv1; rua=mailto:a@b.example%s",
		    shape_cases[i].tail);
		rpt = tlsrpt_rua_parse(one, 1, &v, &why);
		if ((sts == 1) != shape_cases[i].valid ||
		    (rpt > 0) != shape_cases[i].valid)
			printf("  tail \"%s\": sts %d, tlsrpt %d (%s)\n",
			    shape_cases[i].tail, sts, rpt,
			    why != NULL ? why : "");
		T_CHECK((sts == 1) == shape_cases[i].valid);
		T_CHECK((rpt > 0) == shape_cases[i].valid);
		if (rpt > 0)
			tlsrpt_rua_free(v, (size_t)rpt);
		free(why);
		why = NULL;
	}
}

struct select_case {
	const char *name;
	const char *txt[3];
	size_t n;
	const char *want; /* id, or NULL */
	const char *err;
};

static const struct select_case select_cases[] = {
	{ "one", { "v=STSv1; id=a1" }, 1, "a1", NULL },
	{ "spf_and_sts", { "v=spf1 -all", "v=STSv1; id=a1" }, 2, "a1", NULL },
	{ "unreadable_and_sts", { NULL, "v=STSv1; id=a1" }, 2, "a1", NULL },
	{ "none", { NULL }, 0, NULL, "no STSv1" },
	{ "only_spf", { "v=spf1 -all" }, 1, NULL, "no STSv1" },
	{ "two", { "v=STSv1; id=a1", "v=STSv1; id=a2" }, 2, NULL,
	    "more than one" },
	{ "two_same", { "v=STSv1; id=a1", "v=STSv1; id=a1" }, 2, NULL,
	    "more than one" },
	{ "valid_and_invalid", { "v=STSv1; id=a1", "v=STSv1;" }, 2, NULL,
	    "more than one" },
	{ "invalid_only", { "v=STSv1; id=a1 ", "x" }, 2, NULL, "separator" },
	{ "not_sts_ignored", { "v=STSv1 id=zz", "v=STSv1; id=a1" }, 2, "a1",
	    NULL },
};

static void
test_txt_select(void)
{
	char id[STS_ID_MAX + 1];
	const char *err;
	size_t i;

	for (i = 0; i < NITEMS(select_cases); i++) {
		const struct select_case *c = &select_cases[i];
		int rc;

		err = "";
		rc = sts_txt_select(
		    (char *const *)(uintptr_t)c->txt, c->n, id, &err);
		if ((rc == 0) != (c->want != NULL))
			printf("  %s: rc %d (%s)\n", c->name, rc, err);
		T_CHECK((rc == 0) == (c->want != NULL));
		if (rc == 0 && c->want != NULL)
			T_STREQ(id, c->want);
		if (rc == -1 && c->err != NULL)
			T_CHECK(strstr(err, c->err) != NULL);
	}
}

static void
test_ctype(void)
{
	T_CHECK(sts_fetch_ctype_ok("text/plain"));
	T_CHECK(sts_fetch_ctype_ok("Text/Plain"));
	T_CHECK(sts_fetch_ctype_ok("text/plain; charset=utf-8"));
	T_CHECK(sts_fetch_ctype_ok("text/plain;charset=us-ascii"));
	T_CHECK(sts_fetch_ctype_ok(" text/plain ; format=flowed"));
	T_CHECK(!sts_fetch_ctype_ok("text/plainx"));
	T_CHECK(!sts_fetch_ctype_ok("text/html"));
	T_CHECK(!sts_fetch_ctype_ok("application/json"));
	T_CHECK(!sts_fetch_ctype_ok(""));
	T_CHECK(!sts_fetch_ctype_ok("text/plain, text/html"));
}

/* ------------------------------------------------------------------ */
/* The SQLite cache on its own. */

static char tmpdir[64];

static void
path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void
test_cache_roundtrip(void)
{
	char path[128], *err = NULL, **v;
	struct sts_cache *c;
	struct sts_cache_entry e;

	path_in(path, sizeof(path), "direct.db");
	c = sts_cache_open(path, &err);
	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	T_CHECK(sts_cache_get(c, "a.example", &e) == 0);
	T_CHECK(sts_cache_put(c, "a.example", "id1", "version: STSv1\n", 15,
	            1000, 2000) == 0);
	T_CHECK(sts_cache_put(c, "b.example", "id2", "x", 1, 1000, 1500) == 0);
	T_CHECK(sts_cache_put(c, "c.example", "id3", "y", 1, 1000, 900) == 0);
	/* Replace: the newer row wins. */
	T_CHECK(sts_cache_put(c, "a.example", "id4", "version: STSv1\n", 15,
	            1100, 2100) == 0);
	sts_cache_close(c);
	c = sts_cache_open(path, &err);
	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	T_CHECK(sts_cache_get(c, "a.example", &e) == 1);
	T_STREQ(e.id, "id4");
	T_CHECK(e.len == 15 && strcmp(e.policy, "version: STSv1\n") == 0);
	T_CHECK(e.fetched_at == 1100 && e.expires_at == 2100);
	sts_cache_entry_clear(&e);
	v = sts_cache_expiring(c, 1000, 1600, 10);
	T_CHECK(v != NULL && v[0] != NULL && strcmp(v[0], "b.example") == 0 &&
	    v[1] == NULL);
	str_vec_free(v);
	v = sts_cache_expiring(c, 1000, 3000, 1);
	T_CHECK(v != NULL && v[0] != NULL && v[1] == NULL);
	str_vec_free(v);
	T_CHECK(sts_cache_purge(c, 1000) == 0);
	T_CHECK(sts_cache_get(c, "c.example", &e) == 0);
	T_CHECK(sts_cache_delete(c, "b.example") == 0);
	T_CHECK(sts_cache_get(c, "b.example", &e) == 0);
	sts_cache_close(c);
	sts_cache_close(NULL);
}

/* A row as another node would send it (domain and policy borrowed). */
static struct sts_cache_row
merge_row(const char *domain, const char *id, const char *policy,
    time_t fetched_at, time_t expires_at)
{
	struct sts_cache_row r;

	memset(&r, 0, sizeof(r));
	r.domain = (char *)(uintptr_t)domain;
	snprintf(r.e.id, sizeof(r.e.id), "%s", id);
	r.e.policy = (char *)(uintptr_t)policy;
	r.e.len = strlen(policy);
	r.e.fetched_at = fetched_at;
	r.e.expires_at = expires_at;
	return r;
}

#define MERGE_POLICY "version: STSv1\nmode: enforce\nmx: mx.example\n"

/*
 * The fleet's copy (docs/FLEET.md): rows since a fetch time, and rows of
 * other nodes taken only when newer (§5.1) and valid as a fetch would be.
 */
static void
test_cache_merge(void)
{
	const char *day = MERGE_POLICY "max_age: 86400\n";
	char path[128], *err = NULL;
	struct sts_cache *c;
	struct sts_cache_entry e;
	struct sts_cache_row *got, in[9];
	time_t now = 100000;
	size_t n;

	path_in(path, sizeof(path), "merge.db");
	if ((c = sts_cache_open(path, &err)) == NULL) {
		T_CHECK(!"sts_cache_open");
		return;
	}
	T_CHECK(sts_cache_empty(c) == 1);
	T_CHECK(sts_cache_put(c, "a.example", "own", day, strlen(day), now - 50,
	            now + 86350) == 0);
	T_CHECK(sts_cache_empty(c) == 0);
	/* Damaged and expired rows are not shared. */
	T_CHECK(sts_cache_put(c, "bad.example", "bad", "x", 1, now - 40,
	            now + 86350) == 0);
	T_CHECK(sts_cache_put(c, "old.example", "old", day, strlen(day),
	            now - 90000, now - 3600) == 0);
	got = sts_cache_since(c, 0, now, &n);
	T_CHECK(got != NULL && n == 1 &&
	    strcmp(got[0].domain, "a.example") == 0 &&
	    strcmp(got[0].e.id, "own") == 0 && got[0].e.fetched_at == now - 50);
	sts_cache_rows_free(got, n);
	got = sts_cache_since(c, now - 49, now, &n);
	T_CHECK(got != NULL && n == 0);
	sts_cache_rows_free(got, n);

	in[0] = merge_row("a.example", "older", day, now - 60, now + 86340);
	T_CHECK(sts_cache_merge(c, in, 1, now) == 0);
	T_CHECK(sts_cache_get(c, "a.example", &e) == 1);
	T_STREQ(e.id, "own");
	sts_cache_entry_clear(&e);
	/* An equal fetch time keeps ours; a newer one replaces it. */
	in[0] = merge_row("a.example", "same", day, now - 50, now + 86350);
	in[1] = merge_row("a.example", "newer", day, now - 10, now + 86390);
	/* expires_at past fetched_at + max_age: cut to max_age. */
	in[2] = merge_row("b.example", "b1", day, now, now + 999999);
	/* Refused: invalid policy, bad id, not a key, future, expired. */
	in[3] = merge_row(
	    "c.example", "c1", "version: STSv1\nmode: x\n", now, now + 10);
	in[4] = merge_row("d.example", "d-1", day, now, now + 10);
	in[5] = merge_row("E.example", "e1", day, now, now + 10);
	in[6] = merge_row("f.example", "f1", day, now + 3600, now + 89000);
	in[7] = merge_row("g.example", "g1", day, now - 90000, now - 3600);
	in[8] = merge_row("h.example.", "h1", day, now, now + 10);
	T_CHECK(sts_cache_merge(c, in, 9, now) == 2);
	T_CHECK(sts_cache_get(c, "a.example", &e) == 1);
	T_STREQ(e.id, "newer");
	T_CHECK(e.fetched_at == now - 10 && e.expires_at == now + 86390);
	sts_cache_entry_clear(&e);
	T_CHECK(sts_cache_get(c, "b.example", &e) == 1);
	T_CHECK(e.expires_at == now + 86400 && strcmp(e.policy, day) == 0);
	sts_cache_entry_clear(&e);
	T_CHECK(sts_cache_get(c, "c.example", &e) == 0);
	T_CHECK(sts_cache_get(c, "d.example", &e) == 0);
	T_CHECK(sts_cache_get(c, "e.example", &e) == 0);
	T_CHECK(sts_cache_get(c, "f.example", &e) == 0);
	T_CHECK(sts_cache_get(c, "g.example", &e) == 0);
	T_CHECK(sts_cache_get(c, "h.example", &e) == 0);
	sts_cache_close(c);
}

static void
sql_file(const char *path, const char *sql)
{
	sqlite3 *db;

	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		panic("sql_file %s", path);
	sqlite3_close(db);
}

static bool
cache_refused(const char *path, const char *want)
{
	char *err = NULL;
	struct sts_cache *c = sts_cache_open(path, &err);
	bool ok = c == NULL && err != NULL && strstr(err, want) != NULL;

	if (!ok)
		printf("  %s: %s\n", path, err != NULL ? err : "opened");
	sts_cache_close(c);
	free(err);
	return ok;
}

static void
test_cache_foreign(void)
{
	char path[128];
	FILE *fp;

	path_in(path, sizeof(path), "foreign.db");
	sql_file(path, "CREATE TABLE t (x);");
	T_CHECK(cache_refused(path, "another program"));
	sql_file(path,
	    "PRAGMA application_id = 1146244185;"
	    "PRAGMA user_version = 1; CREATE TABLE messages (x);");
	T_CHECK(cache_refused(path, "another program"));
	sql_file(path,
	    "PRAGMA application_id = 1146245972;"
	    "PRAGMA user_version = 9; CREATE TABLE policies (x);");
	T_CHECK(cache_refused(path, "newer"));
	unlink(path);
	fp = fopen(path, "w");
	fputs("this is not a database, just some text long enough to be "
	      "looked at by SQLite as a header, and then some more text\n",
	    fp);
	fclose(fp);
	T_CHECK(cache_refused(path, path));
	path_in(path, sizeof(path), "no/such/dir/x.db");
	T_CHECK(cache_refused(path, "cannot open"));
}

/* ------------------------------------------------------------------ */
/* The HTTPS world: a CA, certificates, a Python server on 127.0.0.1. */

/* Every policy host the leaf certificate names (wrongname is left out). */
static const char *const cert_domains[] = { "ok", "charset", "notfound",
	"redirect", "json", "noctype", "big", "slow", "fresh", "invalid",
	"flaky", "none", "coalesce", "cancel", "freeme", "persist", "live",
	"coal", "twostr", "refresh", "hide", "expire" };

static const char server_py[] =
    "import http.server, os, socketserver, ssl, sys, threading, time\n"
    "d = sys.argv[1]\n"
    "DEFAULT = b'version: STSv1\\nmode: enforce\\nmx: mail.example\\n' \\\n"
    "    b'max_age: 86400\\n'\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def send(self, code, ctype, body, extra=()):\n"
    "        self.send_response(code)\n"
    "        if ctype is not None: self.send_header('Content-Type', ctype)\n"
    "        for k, v in extra: self.send_header(k, v)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def do_GET(self):\n"
    "        host = self.headers.get('Host', '').split(':')[0]\n"
    "        with open(os.path.join(d, 'requests.log'), 'a') as f:\n"
    "            f.write(host + ' ' + self.path + '\\n')\n"
    "        label = host[len('mta-sts.'):].split('.')[0]\n"
    "        pol = os.path.join(d, 'policies', host)\n"
    "        if self.path != '/.well-known/mta-sts.txt' or \\\n"
    "                label.startswith('notfound') or \\\n"
    "                os.path.exists(pol + '.404'):\n"
    "            return self.send(404, 'text/plain', b'not here\\n')\n"
    "        if label.startswith('slow'): time.sleep(3)\n"
    "        if label.startswith('redirect'):\n"
    "            return self.send(301, 'text/html', b'moved', [('Location',\n"
    "                'https://mta-sts.ok.example/.well-known/mta-sts.txt')])\n"
    "        if label.startswith('big'):\n"
    "            return self.send(200, 'text/plain',\n"
    "                DEFAULT + b'x: ' + b'y' * 70000 + b'\\n')\n"
    "        body = DEFAULT\n"
    "        if os.path.exists(pol):\n"
    "            with open(pol, 'rb') as f: body = f.read()\n"
    "        ctype = 'text/plain'\n"
    "        if label.startswith('json'): ctype = 'application/json'\n"
    "        if label.startswith('charset'):\n"
    "            ctype = 'Text/Plain; charset=utf-8'\n"
    "        if label.startswith('noctype'): ctype = None\n"
    "        self.send(200, ctype, body)\n"
    "def ctx_of(name):\n"
    "    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "    c.load_cert_chain(os.path.join(d, name + '.pem'),\n"
    "        os.path.join(d, name + '.key'))\n"
    "    return c\n"
    "ctx, self_ctx = ctx_of('leaf'), ctx_of('self')\n"
    "def sni(sock, name, c):\n"
    "    if name and name.startswith('mta-sts.untrusted.'):\n"
    "        sock.context = self_ctx\n"
    "    if name and name.startswith('mta-sts.nohandshake.'):\n"
    "        return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE\n"
    "ctx.sni_callback = sni\n"
    "class S(socketserver.ThreadingMixIn, http.server.HTTPServer):\n"
    "    daemon_threads = True\n"
    "    def get_request(self):\n"
    "        s, a = self.socket.accept()\n"
    "        return ctx.wrap_socket(s, server_side=True,\n"
    "            do_handshake_on_connect=False), a\n"
    "    def handle_error(self, request, address): pass\n"
    "srv = S(('127.0.0.1', 0), H)\n"
    "print(srv.server_address[1], flush=True)\n"
    "def watch():\n"
    "    sys.stdin.read()\n"
    "    os._exit(0)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
    "srv.serve_forever()\n";

struct world {
	pid_t pid;
	int to_child;
	unsigned port;
	char ca[128];
	bool up;
};

static struct world w;

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || fwrite(text, 1, len, fp) != len)
		panic("cannot write %s", path);
	fclose(fp);
}

static int
world_certs(void)
{
	char cmd[4096], san[2048];
	size_t i, n = 0;

	n += (size_t)snprintf(san, sizeof(san), "subjectAltName=");
	for (i = 0; i < NITEMS(cert_domains); i++)
		n += (size_t)snprintf(san + n, sizeof(san) - n,
		    "%sDNS:mta-sts.%s.example", i > 0 ? "," : "",
		    cert_domains[i]);
	snprintf(cmd, sizeof(cmd),
	    "(cd %s && mkdir policies && printf '%%s\\n' '%s' > san.ext && "
	    "E='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes' && "
	    "openssl req -x509 $E -keyout ca.key -out ca.pem -days 2 "
	    "-subj '/CN=danerelay STS test CA' && "
	    "openssl req $E -keyout leaf.key -out leaf.csr -subj '/CN=mta-sts' "
	    "&& openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key "
	    "-CAcreateserial -days 2 -extfile san.ext -out leaf.pem && "
	    "openssl req -x509 $E -keyout self.key -out self.pem -days 2 "
	    "-subj '/CN=mta-sts.untrusted.example' "
	    "-addext 'subjectAltName=DNS:mta-sts.untrusted.example' "
	    ") >/dev/null 2>&1",
	    tmpdir, san);
	return system(cmd) == 0 ? 0 : -1;
}

/* Read the port line the server prints, waiting at most 10 s. */
static unsigned
world_port(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char line[32];
	size_t n = 0;
	ssize_t r;
	uint64_t port = 0;
	const char *p = line;

	while (n < sizeof(line) - 1 && poll(&pfd, 1, 10000) == 1) {
		if ((r = read(fd, line + n, 1)) <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	if (str_parse_uint(&p, 65535, &port) == -1)
		return 0;
	return (unsigned)port;
}

static void
world_start(void)
{
	int in[2], out[2];
	char script[128];

	path_in(script, sizeof(script), "server.py");
	write_file(script, server_py, strlen(server_py));
	path_in(w.ca, sizeof(w.ca), "ca.pem");
	if (world_certs() == -1 || pipe(in) == -1 || pipe(out) == -1) {
		printf("  cannot make the test CA or pipes\n");
		return;
	}
	if ((w.pid = fork()) == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl("/usr/bin/python3", "python3", script, tmpdir,
		    (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	w.to_child = in[1];
	w.port = world_port(out[0]);
	close(out[0]);
	w.up = w.port != 0;
	if (!w.up)
		printf("  the HTTPS test server did not start\n");
}

static void
world_stop(void)
{
	if (w.pid <= 0)
		return;
	close(w.to_child); /* the server exits when its stdin closes */
	kill(w.pid, SIGTERM);
	waitpid(w.pid, NULL, 0);
	w.pid = 0;
}

/* How many times the server was asked for mta-sts.DOMAIN.example. */
static int
world_requests(const char *label)
{
	char path[128], line[512], want[160];
	FILE *fp;
	int n = 0;

	path_in(path, sizeof(path), "requests.log");
	snprintf(want, sizeof(want), "mta-sts.%s.example ", label);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, want, strlen(want)) == 0)
			n++;
	fclose(fp);
	return n;
}

/* Serve body as the policy of LABEL.example; NULL: the default one. */
static void
world_policy(const char *label, const char *body)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/policies/mta-sts.%s.example", tmpdir,
	    label);
	if (body == NULL)
		unlink(path);
	else
		write_file(path, body, strlen(body));
}

/* Make LABEL.example answer 404 (on) or serve again (off). */
static void
world_404(const char *label, bool on)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/policies/mta-sts.%s.example.404",
	    tmpdir, label);
	if (on)
		write_file(path, "", 0);
	else
		unlink(path);
}

/* Run the loop until *count reaches want or ms pass. */
static void
run_until(struct event_base *base, const int *count, int want, int ms)
{
	struct timeval tv = { 0, 10000 };
	int i;

	for (i = 0; i < ms / 10 && *count < want; i++) {
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
}

/* ------------------------------------------------------------------ */
/* §3.3: the fetch itself. */

struct fetch_case {
	const char *label; /* LABEL.example */
	const char *err;   /* NULL: a policy body comes back */
	bool webpki;
	bool done;
	struct sts_fetch_result got;
	char error[512];
};

static struct fetch_case fetch_cases[] = {
	{ .label = "ok" },
	{ .label = "charset" },
	{ .label = "notfound", .err = "HTTP 404" },
	{ .label = "redirect", .err = "redirect refused (HTTP 301)" },
	{ .label = "json", .err = "content type application/json" },
	{ .label = "noctype", .err = "no content type" },
	{ .label = "big", .err = "body larger than 65536" },
	{ .label = "slow", .err = "timeout" },
	{ .label = "untrusted",
	    .err = "certificate not trusted",
	    .webpki = true },
	{ .label = "wrongname",
	    .err = "certificate not trusted",
	    .webpki = true },
	/* no TLS at all: the policy cannot be authenticated either */
	{ .label = "nohandshake",
	    .err = "TLS handshake failed",
	    .webpki = true },
};

static int fetch_done_count;

static void
fetch_cb(const struct sts_fetch_result *r, void *arg)
{
	struct fetch_case *c = arg;

	c->done = true;
	c->got = *r;
	c->got.body = NULL;
	snprintf(
	    c->error, sizeof(c->error), "%s", r->error != NULL ? r->error : "");
	/* The body must be a policy, NUL-terminated, of the right size. */
	if (r->ok &&
	    (r->body[r->len] != '\0' ||
	        strncmp(r->body, "version: STSv1\n", 15) != 0))
		c->got.ok = false;
	fetch_done_count++;
}

static struct sts_fetcher *
fetcher_new(struct event_base *base, unsigned port, unsigned timeout_ms)
{
	struct sts_fetch_options o = { .ca_file = w.ca,
		.timeout_ms = timeout_ms,
		.max_body = 65536,
		.port = port };
	struct sts_fetcher *f = sts_fetch_new(base, &o);

	ASSERT(f != NULL);
	return f;
}

static void
test_fetch_table(void)
{
	struct event_base *base = event_base_new();
	struct sts_fetcher *f = fetcher_new(base, w.port, 1500);
	char *addr[] = { "127.0.0.1" }, domain[64];
	size_t i;
	int pending = 0;

	fetch_done_count = 0;
	for (i = 0; i < NITEMS(fetch_cases); i++) {
		snprintf(
		    domain, sizeof(domain), "%s.example", fetch_cases[i].label);
		sts_fetch_start(f, domain, addr, 1, fetch_cb, &fetch_cases[i]);
	}
	/* Never from inside sts_fetch_start. */
	T_CHECK(fetch_done_count == 0);
	run_until(base, &fetch_done_count, (int)NITEMS(fetch_cases), 10000);
	for (i = 0; i < NITEMS(fetch_cases); i++) {
		struct fetch_case *c = &fetch_cases[i];
		bool ok = c->done && c->got.ok == (c->err == NULL) &&
		    (c->err == NULL || strstr(c->error, c->err) != NULL) &&
		    c->got.webpki == c->webpki;

		if (!ok)
			printf("  %s: done %d ok %d webpki %d error \"%s\"\n",
			    c->label, c->done, c->got.ok, c->got.webpki,
			    c->error);
		T_CHECK(ok);
		pending += !c->done;
	}
	T_CHECK(pending == 0);
	sts_fetch_free(f);
	event_base_free(base);
}

/* Nobody listens: a connection error, quickly. */
static void
test_fetch_refused(void)
{
	struct event_base *base = event_base_new();
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sts_fetcher *f;
	struct fetch_case c = { .label = "ok", .err = "cannot connect" };
	char *addr[] = { "127.0.0.1" };

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	f = fetcher_new(base, ntohs(sin.sin_port), 3000);
	fetch_done_count = 0;
	sts_fetch_start(f, "ok.example", addr, 1, fetch_cb, &c);
	run_until(base, &fetch_done_count, 1, 5000);
	T_CHECK(c.done && !c.got.ok && strstr(c.error, c.err) != NULL);
	if (!c.done || strstr(c.error, c.err) == NULL)
		printf("  error \"%s\"\n", c.error);
	sts_fetch_free(f);
	event_base_free(base);
}

/* Cancelled fetches never call back; freeing with fetches pending is fine. */
static void
test_fetch_cancel(void)
{
	struct event_base *base = event_base_new();
	struct sts_fetcher *f = fetcher_new(base, w.port, 5000);
	struct fetch_case a = { .label = "ok" }, b = { .label = "ok" },
	                  c = { .label = "slow" };
	char *addr[] = { "127.0.0.1" };
	struct sts_fetch *x;

	fetch_done_count = 0;
	x = sts_fetch_start(f, "ok.example", addr, 1, fetch_cb, &a);
	sts_fetch_start(f, "ok.example", addr, 1, fetch_cb, &b);
	sts_fetch_cancel(x);
	sts_fetch_cancel(NULL);
	run_until(base, &fetch_done_count, 1, 5000);
	T_CHECK(!a.done && b.done && b.got.ok);
	sts_fetch_start(f, "slow.example", addr, 1, fetch_cb, &c);
	run_until(base, &fetch_done_count, 5, 200);
	sts_fetch_free(f);
	T_CHECK(!c.done);
	event_base_free(base);
}

/* ------------------------------------------------------------------ */
/* §5.1: the engine, TXT records handed in. */

struct got {
	int calls;
	enum sts_state state;
	bool has_policy, from_cache, txt_error, webpki;
	enum result_type fetch_rt;
	char fetch_error[512];
	enum sts_mode mode;
	size_t nmx;
	char txt_id[STS_ID_MAX + 1];
	char error[512];
	struct sts *free_me;          /* freed from inside the callback */
	struct sts_lookup *cancel_me; /* cancelled from inside */
};

static void
got_cb(const struct sts_result *r, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->state = r->state;
	g->has_policy = r->policy != NULL;
	g->from_cache = r->from_cache;
	g->txt_error = r->txt_error;
	g->webpki = r->webpki_error;
	g->fetch_rt = r->fetch_rt;
	snprintf(g->fetch_error, sizeof(g->fetch_error), "%s",
	    r->fetch_error != NULL ? r->fetch_error : "");
	ASSERT((r->fetch_rt == RT_NONE) == (r->fetch_error == NULL));
	g->mode = r->policy != NULL ? sts_policy_mode(r->policy) : 0;
	g->nmx = r->policy != NULL ? sts_policy_mx_count(r->policy) : 0;
	snprintf(g->txt_id, sizeof(g->txt_id), "%s",
	    r->txt_id != NULL ? r->txt_id : "");
	snprintf(
	    g->error, sizeof(g->error), "%s", r->error != NULL ? r->error : "");
	ASSERT((r->state == STS_STATE_POLICY) == (r->policy != NULL));
	if (g->cancel_me != NULL)
		sts_lookup_cancel(g->cancel_me);
	g->cancel_me = NULL;
	if (g->free_me != NULL)
		sts_free(g->free_me);
	g->free_me = NULL;
}

static struct sts *
engine_new(struct event_base *base, struct dns_resolver *r, const char *cache,
    unsigned timeout_ms)
{
	struct sts_options o;
	char path[128], *err = NULL;
	struct sts *s;

	memset(&o, 0, sizeof(o));
	if (cache != NULL)
		path_in(path, sizeof(path), cache);
	o.cache_path = cache != NULL ? path : NULL;
	o.ca_file = w.ca;
	o.fetch_timeout_ms = timeout_ms;
	o.https_port = w.port;
	if ((s = sts_new(base, r, &o, &err)) == NULL)
		panic("sts_new: %s", err);
	if (r == NULL)
		sts_test_addr(s, "127.0.0.1");
	return s;
}

/* One lookup of LABEL.example with one TXT record (NULL: none). */
static void
engine_get(struct sts *s, struct event_base *base, const char *label,
    const char *txt, bool txt_error, struct got *g)
{
	char domain[64], *rec[1];
	int calls;

	snprintf(domain, sizeof(domain), "%s.example", label);
	rec[0] = (char *)(uintptr_t)txt;
	memset(g, 0, sizeof(*g));
	sts_get_with_txt(
	    s, domain, rec, txt != NULL ? 1 : 0, txt_error, got_cb, g);
	calls = g->calls;
	T_CHECK(calls == 0); /* never from inside */
	run_until(base, &g->calls, 1, 5000);
	T_CHECK(g->calls == 1);
}

static void
test_engine_cache(void)
{
	struct event_base *base = event_base_new();
	struct sts *s = engine_new(base, NULL, "engine.db", 5000);
	struct got g;

	world_policy("fresh", NULL);
	/* Nothing cached: fetch, store. */
	engine_get(s, base, "fresh", "v=STSv1; id=a1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	T_CHECK(g.mode == STS_MODE_ENFORCE && g.nmx == 1);
	T_STREQ(g.txt_id, "a1");
	T_CHECK(world_requests("fresh") == 1);
	/* Same id: the cache, no request. */
	engine_get(s, base, "FRESH", "v=STSv1; id=a1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	T_STREQ(g.error, "");
	T_CHECK(g.fetch_rt == RT_NONE);
	T_CHECK(world_requests("fresh") == 1);
	/* §3.1: no TXT record does not remove a cached policy. */
	engine_get(s, base, "fresh", NULL, false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	T_CHECK(strstr(g.error, "no STSv1") != NULL);
	T_STREQ(g.txt_id, "");
	/* An invalid record: no usable record, the cache again. */
	engine_get(s, base, "fresh", "v=STSv1;", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	/* A DNS error is not "no record": the cache, txt_error. */
	engine_get(s, base, "fresh", NULL, true, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache && g.txt_error);
	/* A new id: refetch, the new policy replaces the old one. */
	world_policy("fresh",
	    "version: STSv1\nmode: testing\nmx: a.example\n"
	    "mx: b.example\nmax_age: 86400\n");
	engine_get(s, base, "fresh", "v=STSv1; id=a2", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	T_CHECK(g.mode == STS_MODE_TESTING && g.nmx == 2);
	T_CHECK(world_requests("fresh") == 2);
	sts_free(s);
	/* Persistence: a new engine on the same file answers from the cache. */
	world_404("fresh", true);
	s = engine_new(base, NULL, "engine.db", 5000);
	engine_get(s, base, "fresh", "v=STSv1; id=a2", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	T_CHECK(g.mode == STS_MODE_TESTING && g.nmx == 2);
	T_CHECK(world_requests("fresh") == 2);
	world_404("fresh", false);
	sts_free(s);
	sts_free(NULL);
	event_base_free(base);
}

/*
 * A row another node fetched, merged into the cache file by a second
 * connection (the fleet's thread) while an engine has it open: the next
 * lookup with the same id uses it without any request (RFC 8461 §5.1).
 */
static void
test_engine_merged(void)
{
	struct event_base *base = event_base_new();
	struct sts *s = engine_new(base, NULL, "shared.db", 5000);
	const char *pol = MERGE_POLICY "max_age: 86400\n";
	struct sts_cache_row row;
	struct sts_cache *c;
	char path[128], *err = NULL;
	time_t now = time(NULL);
	struct got g;

	world_404("pulled", true);
	path_in(path, sizeof(path), "shared.db");
	c = sts_cache_open(path, &err);
	T_CHECK(c != NULL);
	row = merge_row("pulled.example", "p1", pol, now - 5, now + 86395);
	T_CHECK(c != NULL && sts_cache_merge(c, &row, 1, now) == 1);
	sts_cache_close(c);
	engine_get(s, base, "pulled", "v=STSv1; id=p1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	T_CHECK(g.mode == STS_MODE_ENFORCE && g.nmx == 1);
	T_CHECK(world_requests("pulled") == 0);
	world_404("pulled", false);
	sts_free(s);
	event_base_free(base);
}

/* No cached policy: none, fetch-error, invalid. */
static void
test_engine_errors(void)
{
	struct event_base *base = event_base_new();
	struct sts *s = engine_new(base, NULL, NULL, 5000), *s2;
	struct got g;

	engine_get(s, base, "nocache", NULL, false, &g);
	T_CHECK(g.state == STS_STATE_NONE && !g.has_policy && !g.txt_error);
	engine_get(s, base, "nocache", NULL, true, &g);
	T_CHECK(g.state == STS_STATE_NONE && g.txt_error);
	engine_get(s, base, "notfound", "v=STSv1; id=n1", false, &g);
	T_CHECK(g.state == STS_STATE_FETCH_ERROR);
	T_STREQ(g.error, "HTTP 404");
	T_STREQ(g.txt_id, "n1");
	/* RFC 8460 §4.3.2.2 result types, for the TLS report */
	T_CHECK(g.fetch_rt == RT_STS_POLICY_FETCH_ERROR);
	T_STREQ(g.fetch_error, "HTTP 404");
	engine_get(s, base, "untrusted", "v=STSv1; id=u1", false, &g);
	T_CHECK(g.state == STS_STATE_FETCH_ERROR && g.webpki);
	T_CHECK(strstr(g.error, "certificate not trusted") != NULL);
	T_CHECK(g.fetch_rt == RT_STS_WEBPKI_INVALID);
	engine_get(s, base, "wrongname", "v=STSv1; id=w1", false, &g);
	T_CHECK(g.fetch_rt == RT_STS_WEBPKI_INVALID);
	engine_get(s, base, "nohandshake", "v=STSv1; id=h1", false, &g);
	T_CHECK(g.fetch_rt == RT_STS_WEBPKI_INVALID);
	T_CHECK(strstr(g.fetch_error, "TLS handshake failed") != NULL);
	s2 = engine_new(base, NULL, NULL, 1000);
	engine_get(s2, base, "slow", "v=STSv1; id=s1", false, &g);
	T_CHECK(g.state == STS_STATE_FETCH_ERROR && !g.webpki);
	T_CHECK(g.fetch_rt == RT_STS_POLICY_FETCH_ERROR);
	T_CHECK(strstr(g.fetch_error, "timeout") != NULL);
	sts_free(s2);
	/* Remembered for §3.3's interval: the same type and reason. */
	engine_get(s, base, "untrusted", "v=STSv1; id=u1", false, &g);
	T_CHECK(g.fetch_rt == RT_STS_WEBPKI_INVALID);
	T_CHECK(
	    strstr(g.fetch_error, "certificate not trusted") == g.fetch_error);
	/* No TXT record, or a TXT lookup error: no fetch, nothing failed. */
	engine_get(s, base, "nocache", NULL, true, &g);
	T_CHECK(g.fetch_rt == RT_NONE);
	world_policy("invalid",
	    "version: STSv1\nmode: sometimes\nmx: a.example\n"
	    "max_age: 1\n");
	engine_get(s, base, "invalid", "v=STSv1; id=i1", false, &g);
	T_CHECK(g.state == STS_STATE_INVALID);
	T_CHECK(strstr(g.error, "unknown mode") != NULL);
	T_CHECK(g.fetch_rt == RT_STS_POLICY_INVALID);
	engine_get(s, base, "redirect", "v=STSv1; id=r1", false, &g);
	T_CHECK(g.state == STS_STATE_FETCH_ERROR);
	T_CHECK(strstr(g.error, "redirect refused") != NULL);
	T_CHECK(g.fetch_rt == RT_STS_POLICY_FETCH_ERROR);
	sts_free(s);
	event_base_free(base);
}

/* A failed refetch keeps the cached policy; §3.3 retry interval; expiry. */
static void
test_engine_refetch(void)
{
	struct event_base *base = event_base_new();
	struct sts *s = engine_new(base, NULL, NULL, 5000);
	time_t t0 = 1700000000;
	struct got g;

	sts_test_clock(s, t0);
	engine_get(s, base, "flaky", "v=STSv1; id=f1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	world_404("flaky", true);
	sts_test_clock(s, t0 + 10);
	engine_get(s, base, "flaky", "v=STSv1; id=f2", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	T_STREQ(g.error, "HTTP 404");
	T_STREQ(g.txt_id, "f2");
	/* RFC 8461 §6: reportable although the cached policy applies */
	T_CHECK(g.fetch_rt == RT_STS_POLICY_FETCH_ERROR);
	T_CHECK(world_requests("flaky") == 2);
	/* Within five minutes the same id is not fetched again. */
	sts_test_clock(s, t0 + 200);
	engine_get(s, base, "flaky", "v=STSv1; id=f2", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	T_CHECK(strstr(g.error, "HTTP 404") != NULL);
	T_CHECK(world_requests("flaky") == 2);
	/* Another id may be tried at once. */
	engine_get(s, base, "flaky", "v=STSv1; id=f3", false, &g);
	T_CHECK(world_requests("flaky") == 3);
	/* After the interval it is. */
	world_404("flaky", false);
	sts_test_clock(s, t0 + 320);
	engine_get(s, base, "flaky", "v=STSv1; id=f2", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	T_CHECK(world_requests("flaky") == 4);
	/* Expired (max_age 86400): not used without a TXT record... */
	sts_test_clock(s, t0 + 320 + 86401);
	engine_get(s, base, "flaky", NULL, false, &g);
	T_CHECK(g.state == STS_STATE_NONE);
	/* ... nor when the fetch fails ... */
	world_404("flaky", true);
	engine_get(s, base, "flaky", "v=STSv1; id=f2", false, &g);
	T_CHECK(g.state == STS_STATE_FETCH_ERROR);
	T_CHECK(world_requests("flaky") == 5);
	/* ... and refetched even with the same id. */
	world_404("flaky", false);
	sts_test_backoff(s, 0);
	engine_get(s, base, "flaky", "v=STSv1; id=f2", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	T_CHECK(world_requests("flaky") == 6);
	/* max_age 0: used once, not kept. */
	world_policy("expire",
	    "version: STSv1\nmode: enforce\nmx: a.example\n"
	    "max_age: 0\n");
	engine_get(s, base, "expire", "v=STSv1; id=e1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	sts_test_clock(s, t0 + 320 + 86402);
	engine_get(s, base, "expire", "v=STSv1; id=e1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	T_CHECK(world_requests("expire") == 2);
	sts_free(s);
	event_base_free(base);
}

/* mode none is a policy too, and it is cached (§8.3). */
static void
test_engine_mode_none(void)
{
	struct event_base *base = event_base_new();
	struct sts *s = engine_new(base, NULL, NULL, 5000);
	struct got g;

	world_policy("none", "version: STSv1\nmode: none\nmax_age: 3600\n");
	engine_get(s, base, "none", "v=STSv1; id=z1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.mode == STS_MODE_NONE);
	T_CHECK(g.nmx == 0 && !g.from_cache);
	engine_get(s, base, "none", "v=STSv1; id=z1", false, &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.mode == STS_MODE_NONE);
	T_CHECK(g.from_cache && world_requests("none") == 1);
	sts_free(s);
	event_base_free(base);
}

/* Five lookups at once: one fetch, five answers; a cancelled one is quiet. */
static void
test_engine_coalesce(void)
{
	struct event_base *base = event_base_new();
	struct sts *s = engine_new(base, NULL, NULL, 5000);
	char *rec[] = { "v=STSv1; id=c1" };
	struct got g[5], total;
	struct sts_lookup *l[5];
	int i;

	memset(g, 0, sizeof(g));
	memset(&total, 0, sizeof(total));
	for (i = 0; i < 5; i++)
		l[i] = sts_get_with_txt(
		    s, "coalesce.example", rec, 1, false, got_cb, &g[i]);
	sts_lookup_cancel(l[3]);
	/* The first callback cancels the last lookup from inside. */
	g[0].cancel_me = l[4];
	for (i = 0; i < 100 && g[0].calls + g[1].calls + g[2].calls < 3; i++)
		run_until(base, &total.calls, 1, 50);
	for (i = 0; i < 3; i++) {
		T_CHECK(g[i].calls == 1 && g[i].state == STS_STATE_POLICY);
		T_CHECK(!g[i].from_cache);
	}
	T_CHECK(g[3].calls == 0 && g[4].calls == 0);
	T_CHECK(world_requests("coalesce") == 1);
	sts_lookup_cancel(NULL);
	sts_free(s);
	event_base_free(base);
}

/* sts_free from inside a callback; then sts_free with lookups pending. */
static void
test_engine_free_inside(void)
{
	struct event_base *base = event_base_new();
	struct sts *s = engine_new(base, NULL, NULL, 5000);
	char *rec[] = { "v=STSv1; id=q1" };
	struct got a, b, c;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	a.free_me = s;
	sts_get_with_txt(s, "freeme.example", rec, 1, false, got_cb, &a);
	sts_get_with_txt(s, "freeme.example", rec, 1, false, got_cb, &b);
	sts_get_with_txt(s, "slow.example", rec, 1, false, got_cb, &c);
	run_until(base, &a.calls, 1, 5000);
	T_CHECK(a.calls == 1 && b.calls == 0 && c.calls == 0);
	run_until(base, &c.calls, 1, 100);
	T_CHECK(c.calls == 0);
	s = engine_new(base, NULL, NULL, 5000);
	sts_get_with_txt(s, "slow.example", rec, 1, false, got_cb, &c);
	run_until(base, &c.calls, 1, 100);
	sts_free(s);
	T_CHECK(c.calls == 0);
	event_base_free(base);
}

/* ------------------------------------------------------------------ */
/* sts_get() for real: a fake DNS server on 127.0.0.1, the resolver
 * forwarding to it with a trust anchor for an unrelated zone (so every
 * answer is insecure, which MTA-STS accepts). */

struct pk {
	uint8_t b[2048];
	size_t n;
};

static void
pk_u16(struct pk *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)(v >> 8);
	p->b[p->n++] = (uint8_t)v;
}

static void
pk_name(struct pk *p, const char *name)
{
	const char *s = name;
	size_t n;

	while (*s != '\0') {
		n = strcspn(s, ".");
		p->b[p->n++] = (uint8_t)n;
		memcpy(p->b + p->n, s, n);
		p->n += n;
		s += n;
		if (*s == '.')
			s++;
	}
	p->b[p->n++] = 0;
}

/* An answer RR with TTL 0, so the resolver asks again next time. */
static void
pk_rr(
    struct pk *p, const char *owner, unsigned type, const void *rd, size_t len)
{
	pk_name(p, owner);
	pk_u16(p, type);
	pk_u16(p, 1);
	pk_u16(p, 0);
	pk_u16(p, 0);
	pk_u16(p, (unsigned)len);
	memcpy(p->b + p->n, rd, len);
	p->n += len;
}

/* TXT rdata of one record made of the given character-strings. */
static size_t
txt_rdata(uint8_t *out, const char *const *strs, size_t n)
{
	size_t len = 0, i, k;

	for (i = 0; i < n; i++) {
		k = strlen(strs[i]);
		out[len++] = (uint8_t)k;
		memcpy(out + len, strs[i], k);
		len += k;
	}
	return len;
}

struct fake {
	int fd;
	uint16_t port;
	struct event *ev;
	char seen[256][96]; /* "qname/type" received, in order */
	size_t nseen;
};

static void
fake_answers(struct pk *p, const char *qname, uint16_t qtype, unsigned *an)
{
	static const char *const two[] = { "v=STSv1; ", "id=two1" };
	uint8_t rd[300], a[4] = { 127, 0, 0, 1 };
	const char *d = qname + 9, *one[1];
	char id[64];
	size_t len;

	if (qtype == DNS_TYPE_A && strncmp(qname, "mta-sts.", 8) == 0) {
		pk_rr(p, qname, DNS_TYPE_A, a, 4);
		(*an)++;
		return;
	}
	if (qtype != DNS_TYPE_TXT || strncmp(qname, "_mta-sts.", 9) != 0)
		return;
	if (strncmp(d, "twostr.", 7) == 0)
		len = txt_rdata(rd, two, 2);
	else {
		/* The id is the first label and "1": live -> "live1". */
		snprintf(id, sizeof(id), "v=STSv1; id=%.*s1",
		    (int)strcspn(d, "."), d);
		one[0] = id;
		len = txt_rdata(rd, one, 1);
	}
	pk_rr(p, qname, DNS_TYPE_TXT, rd, len);
	(*an)++;
	one[0] = "v=spf1 -all";
	len = txt_rdata(rd, one, 1);
	pk_rr(p, qname, DNS_TYPE_TXT, rd, len);
	(*an)++;
}

/* A domain whose _mta-sts record is gone for now (NXDOMAIN). */
static const char *fake_hidden = "";

static void
fake_reply(struct fake *f, const uint8_t *q, const struct dns_packet *qp,
    struct sockaddr_storage *from, socklen_t fromlen)
{
	const char *qname = dns_packet_qname(qp);
	uint16_t qtype = dns_packet_qtype(qp);
	unsigned rcode = 0, an = 0;
	struct pk p;

	memset(&p, 0, sizeof(p));
	p.n = 12;
	pk_name(&p, qname);
	pk_u16(&p, qtype);
	pk_u16(&p, 1);
	if (strstr(qname, "servfail") != NULL)
		rcode = 2;
	else if (strstr(qname, "nosts") != NULL ||
	    (fake_hidden[0] != '\0' && strstr(qname, fake_hidden) != NULL &&
	        strncmp(qname, "_mta-sts.", 9) == 0) ||
	    (strncmp(qname, "_mta-sts.", 9) != 0 &&
	        strncmp(qname, "mta-sts.", 8) != 0))
		rcode = 3;
	else
		fake_answers(&p, qname, qtype, &an);
	p.b[0] = q[0];
	p.b[1] = q[1];
	p.b[2] = 0x85; /* QR AA RD */
	p.b[3] = (uint8_t)(0x80 | rcode);
	p.b[5] = 1;
	p.b[7] = (uint8_t)an;
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
	if (f->nseen < NITEMS(f->seen))
		snprintf(f->seen[f->nseen++], sizeof(f->seen[0]), "%s/%u",
		    dns_packet_qname(qp), (unsigned)dns_packet_qtype(qp));
	fake_reply(f, q, qp, &from, fromlen);
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
	    getsockname(f->fd, (struct sockaddr *)&sin, &len) == -1)
		panic("fake server: %s", strerror(errno));
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

static int
fake_count(const struct fake *f, const char *qname, unsigned type)
{
	char want[128];
	size_t i;
	int n = 0;

	snprintf(want, sizeof(want), "%s/%u", qname, type);
	for (i = 0; i < f->nseen; i++)
		n += strcmp(f->seen[i], want) == 0;
	return n;
}

static char anchor_path[128];

static struct dns_resolver *
fake_resolver(struct event_base *base, const struct fake *f)
{
	static char addr[64];
	static char *list[] = { addr, NULL };
	struct dns_options o;
	char *err = NULL;
	struct dns_resolver *r;

	snprintf(addr, sizeof(addr), "127.0.0.1@%u", (unsigned)f->port);
	memset(&o, 0, sizeof(o));
	o.trust_anchor_file = anchor_path;
	o.timeout_ms = 3000;
	o.forwarders = list;
	if ((r = dns_resolver_new(base, &o, &err)) == NULL)
		panic("resolver: %s", err);
	return r;
}

struct live {
	struct event_base *base;
	struct fake f;
	struct dns_resolver *r;
	struct sts *s;
};

static void
live_start(struct live *l, const char *cache)
{
	l->base = event_base_new();
	fake_start(&l->f, l->base);
	l->r = fake_resolver(l->base, &l->f);
	l->s = engine_new(l->base, l->r, cache, 5000);
}

static void
live_stop(struct live *l)
{
	sts_free(l->s);
	dns_resolver_free(l->r);
	fake_stop(&l->f);
	event_base_free(l->base);
}

static void
live_get(struct live *l, const char *domain, struct got *g)
{
	memset(g, 0, sizeof(*g));
	sts_get(l->s, domain, false, got_cb, g);
	T_CHECK(g->calls == 0);
	run_until(l->base, &g->calls, 1, 8000);
	T_CHECK(g->calls == 1);
}

static void
test_live_get(void)
{
	struct live l;
	struct got g, c[3];
	int i, total = 0;

	live_start(&l, NULL);
	live_get(&l, "live.example", &g);
	T_CHECK(g.state == STS_STATE_POLICY && !g.from_cache);
	if (g.state != STS_STATE_POLICY)
		printf("  live: %s\n", g.error);
	T_STREQ(g.txt_id, "live1");
	T_CHECK(world_requests("live") == 1);
	T_CHECK(fake_count(&l.f, "mta-sts.live.example", DNS_TYPE_A) == 1);
	/* Again: a TXT query, the cache, no fetch. */
	live_get(&l, "Live.Example.", &g);
	T_CHECK(g.state == STS_STATE_POLICY && g.from_cache);
	T_CHECK(world_requests("live") == 1);
	/* §3.1: the strings of one record are concatenated. */
	live_get(&l, "twostr.example", &g);
	T_CHECK(g.state == STS_STATE_POLICY);
	T_STREQ(g.txt_id, "two1");
	live_get(&l, "nosts.example", &g);
	T_CHECK(g.state == STS_STATE_NONE && !g.txt_error);
	live_get(&l, "servfail.example", &g);
	T_CHECK(g.state == STS_STATE_NONE && g.txt_error);
	T_CHECK(strstr(g.error, "TXT lookup failed") != NULL);
	live_get(&l, "bad domain", &g);
	T_CHECK(g.state == STS_STATE_NONE && !g.txt_error);
	T_CHECK(strstr(g.error, "not a domain") != NULL);
	live_get(&l, "[192.0.2.1]", &g);
	T_CHECK(g.state == STS_STATE_NONE && strstr(g.error, "no domain"));
	live_get(&l, ".", &g);
	T_CHECK(g.state == STS_STATE_NONE && strstr(g.error, "no domain"));
	/* Three at once: one TXT query, one A query, one fetch. */
	memset(c, 0, sizeof(c));
	for (i = 0; i < 3; i++)
		sts_get(l.s, "coal.example", false, got_cb, &c[i]);
	for (i = 0; i < 200 && total < 3; i++) {
		run_until(l.base, &c[0].calls, 1, 20);
		total = c[0].calls + c[1].calls + c[2].calls;
	}
	T_CHECK(total == 3);
	T_CHECK(c[2].state == STS_STATE_POLICY && !c[2].from_cache);
	T_CHECK(fake_count(&l.f, "_mta-sts.coal.example", DNS_TYPE_TXT) == 1);
	T_CHECK(fake_count(&l.f, "mta-sts.coal.example", DNS_TYPE_A) == 1);
	T_CHECK(world_requests("coal") == 1);
	/* force_txt: a new TXT query, never a join after the TXT answer. */
	live_get(&l, "coal.example", &g);
	memset(&g, 0, sizeof(g));
	sts_get(l.s, "coal.example", true, got_cb, &g);
	run_until(l.base, &g.calls, 1, 8000);
	T_CHECK(g.calls == 1 && g.from_cache);
	T_CHECK(fake_count(&l.f, "_mta-sts.coal.example", DNS_TYPE_TXT) == 3);
	live_stop(&l);
}

/* §3.3: sts_refresh refetches what expires soon, in the background. */
static void
test_live_refresh(void)
{
	struct live l;
	struct got g;
	struct sts_cache *c;
	struct sts_cache_entry e;
	char path[128], *err;
	time_t t0 = 1700000000;
	int i;

	live_start(&l, "refresh.db");
	sts_test_clock(l.s, t0);
	live_get(&l, "refresh.example", &g);
	T_CHECK(g.state == STS_STATE_POLICY && world_requests("refresh") == 1);
	live_get(&l, "hide.example", &g);
	T_CHECK(g.state == STS_STATE_POLICY && world_requests("hide") == 1);
	/* Not yet close to expiry: nothing happens. */
	sts_test_clock(l.s, t0 + 100);
	sts_refresh(l.s, 3600);
	run_until(l.base, &g.calls, 2, 300);
	T_CHECK(world_requests("refresh") == 1);
	/* Within a day of expiry: refetched, fetched_at moves; not a domain
	 * whose TXT record is gone (its policy stays until it expires). */
	fake_hidden = "hide.example";
	sts_refresh(l.s, 86400);
	for (i = 0; i < 400 && world_requests("refresh") < 2; i++)
		run_until(l.base, &g.calls, 2, 10);
	run_until(l.base, &g.calls, 2, 200);
	T_CHECK(world_requests("refresh") == 2);
	T_CHECK(world_requests("hide") == 1);
	T_CHECK(fake_count(&l.f, "_mta-sts.hide.example", DNS_TYPE_TXT) == 2);
	fake_hidden = "";
	path_in(path, sizeof(path), "refresh.db");
	c = sts_cache_open(path, &err);
	T_CHECK(c != NULL && sts_cache_get(c, "refresh.example", &e) == 1);
	T_CHECK(e.fetched_at == t0 + 100 && e.expires_at == t0 + 100 + 86400);
	sts_cache_entry_clear(&e);
	T_CHECK(
	    sts_cache_get(c, "hide.example", &e) == 1 && e.fetched_at == t0);
	sts_cache_entry_clear(&e);
	/* Expired rows are dropped by the next refresh. */
	sts_test_clock(l.s, t0 + 100 + 86401);
	sts_refresh(l.s, 60);
	T_CHECK(sts_cache_get(c, "refresh.example", &e) == 0);
	sts_cache_close(c);
	live_stop(&l);
}

/* ------------------------------------------------------------------ */

int
main(void)
{
	char path[256];

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_sts.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		panic("mkdtemp: %s", strerror(errno));
	path_in(anchor_path, sizeof(anchor_path), "anchor");
	write_file(anchor_path,
	    "anchor.invalid. IN DS 12345 8 2 "
	    "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
	    strlen(
	        "anchor.invalid. IN DS 12345 8 2 "
	        "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8E"
	        "C8D\n"));
	T_RUN(test_policy_table);
	T_RUN(test_policy_lines);
	T_RUN(test_policy_nul);
	T_RUN(test_policy_huge);
	T_RUN(test_mx_match);
	T_RUN(test_txt_table);
	T_RUN(test_txt_one_reading);
	T_RUN(test_txt_select);
	T_RUN(test_ctype);
	T_RUN(test_cache_roundtrip);
	T_RUN(test_cache_foreign);
	T_RUN(test_cache_merge);
	world_start();
	if (w.up) {
		T_RUN(test_fetch_table);
		T_RUN(test_fetch_refused);
		T_RUN(test_fetch_cancel);
		T_RUN(test_engine_cache);
		T_RUN(test_engine_merged);
		T_RUN(test_engine_errors);
		T_RUN(test_engine_refetch);
		T_RUN(test_engine_mode_none);
		T_RUN(test_engine_coalesce);
		T_RUN(test_engine_free_inside);
		T_RUN(test_live_get);
		T_RUN(test_live_refresh);
	} else {
		printf("FAIL https_world: the test server did not start\n");
		t_total_failed++;
	}
	world_stop();
	snprintf(path, sizeof(path), "rm -rf %s", tmpdir);
	if (system(path) != 0)
		printf("  cannot remove %s\n", tmpdir);
	T_EXIT();
}
