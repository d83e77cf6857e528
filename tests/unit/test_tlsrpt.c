/*
 * test_tlsrpt: reading received TLS reports (src/tlsrpt/tlsrpt_parse.c).
 *
 * Every report here is written by the test itself, shaped like those that
 * big senders mail out (a Google-like sts report, a Microsoft-like one with
 * failures, smaller providers with their deviations from RFC 8460 §4.4),
 * then fed raw, gzipped, and inside report emails built here. Each
 * tolerated deviation has a case that checks both the normalized value and
 * the warning; each error (garbage, truncation, gzip bomb, no report part)
 * has a case that checks the message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_parse.h"

#include "t.h"

/* ---- helpers ---------------------------------------------------------------
 */

/* gzip (RFC 1952) of n octets. Returns new, *outlen its length. */
static uint8_t *
t_gzip(const void *p, size_t n, size_t *outlen)
{
	z_stream z;
	size_t cap = n + n / 100 + 1024;
	uint8_t *out = xmalloc(cap);

	memset(&z, 0, sizeof(z));
	ASSERT(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
	           Z_DEFAULT_STRATEGY) == Z_OK);
	z.next_in = (uint8_t *)(uintptr_t)p;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
	*outlen = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

/* base64 in lines of 76 (RFC 2045 §6.8), each ending in eol. */
static void
t_b64(struct buf *b, const uint8_t *p, size_t n, const char *eol)
{
	char line[80];
	size_t off, k;

	for (off = 0; off < n; off += 57) {
		k = n - off < 57 ? n - off : 57;
		EVP_EncodeBlock((uint8_t *)line, p + off, (int)k);
		buf_printf(b, "%s%s", line, eol);
	}
}

static struct tlsrpt_report *
t_parse_n(const void *p, size_t n, char **err)
{
	*err = NULL;
	return tlsrpt_parse(p, n, err);
}

/* Parse s, which must succeed. */
static struct tlsrpt_report *
t_ok(const char *s)
{
	char *err;
	struct tlsrpt_report *r = t_parse_n(s, strlen(s), &err);

	if (r == NULL)
		printf("  unexpected error: %s\n", err);
	T_CHECK(r != NULL);
	free(err);
	return r;
}

/* Parse n octets, which must fail with an error containing want. */
static void
t_fails_n(const void *p, size_t n, const char *want)
{
	char *err;
	struct tlsrpt_report *r = t_parse_n(p, n, &err);

	T_CHECK(r == NULL && err != NULL);
	if (err != NULL && strstr(err, want) == NULL) {
		printf("  error \"%s\" lacks \"%s\"\n", err, want);
		T_CHECK(0);
	}
	tlsrpt_report_free(r);
	free(err);
}

static void
t_fails(const char *s, const char *want)
{
	t_fails_n(s, strlen(s), want);
}

/* The value at path ("report/policies/0/summary") of the document. */
static json_t *
t_at(const struct tlsrpt_report *r, const char *path)
{
	json_t *v = (json_t *)(uintptr_t)tlsrpt_report_json(r);
	char key[128];
	size_t n;

	while (v != NULL && *path != '\0') {
		n = strcspn(path, "/");
		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		if (json_is_array(v))
			v = json_array_get(v, strtoul(key, NULL, 10));
		else
			v = json_object_get(v, key);
		path += n + (path[n] == '/' ? 1 : 0);
	}
	return v;
}

static const char *
t_str(const struct tlsrpt_report *r, const char *path)
{
	return json_string_value(t_at(r, path));
}

static long long
t_int(const struct tlsrpt_report *r, const char *path)
{
	json_t *v = t_at(r, path);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* True when some warning contains s. */
static bool
t_warned(const struct tlsrpt_report *r, const char *s)
{
	size_t i;

	for (i = 0; i < tlsrpt_report_nwarnings(r); i++)
		if (strstr(tlsrpt_report_warning(r, i), s) != NULL)
			return true;
	return false;
}

static void
t_print_warnings(const struct tlsrpt_report *r)
{
	size_t i;

	for (i = 0; i < tlsrpt_report_nwarnings(r); i++)
		printf("  warning: %s\n", tlsrpt_report_warning(r, i));
}

/* ---- reports shaped like those of real senders ------------------------- */

/* Google-like: STS, every session fine, no failure-details at all. */
static const char google_ok[] =
    "{\"organization-name\":\"Google Inc.\","
    "\"date-range\":{\"start-datetime\":\"2026-11-27T00:00:00Z\","
    "\"end-datetime\":\"2026-11-27T23:59:59Z\"},"
    "\"contact-info\":\"smtp-tls-reporting@google.com\","
    "\"report-id\":\"2026-11-27T00:00:00Z_example.com\","
    "\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
    "\"policy-string\":[\"version: STSv1\",\"mode: enforce\","
    "\"mx: mx1.example.com\",\"mx: mx2.example.com\",\"max_age: 604800\"],"
    "\"policy-domain\":\"example.com\","
    "\"mx-host\":[\"mx1.example.com\",\"mx2.example.com\"]},"
    "\"summary\":{\"total-successful-session-count\":1532,"
    "\"total-failure-session-count\":0}}]}";

/* Microsoft-like: DANE policy with failures of two kinds, pretty JSON. */
static const char microsoft_fail[] =
    "{\n  \"organization-name\": \"Microsoft Corporation\",\n"
    "  \"date-range\": {\n"
    "    \"start-datetime\": \"2026-11-27T00:00:00Z\",\n"
    "    \"end-datetime\": \"2026-11-27T23:59:59Z\"\n  },\n"
    "  \"contact-info\": \"tlsrpt-noreply@microsoft.com\",\n"
    "  \"report-id\": \"134089344000000000+example.com\",\n"
    "  \"policies\": [\n    {\n      \"policy\": {\n"
    "        \"policy-type\": \"tlsa\",\n"
    "        \"policy-string\": [\"3 1 1 "
    "0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6\","
    " \"2 1 1 "
    "A9F3E1D2C4B5A69788796A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A7B6C5D\"],\n"
    "        \"policy-domain\": \"example.com\",\n"
    "        \"mx-host\": [\"mx1.example.com\"]\n      },\n"
    "      \"summary\": {\n"
    "        \"total-successful-session-count\": 210,\n"
    "        \"total-failure-session-count\": 7\n      },\n"
    "      \"failure-details\": [\n"
    "        {\"result-type\": \"tlsa-invalid\",\n"
    "         \"sending-mta-ip\": \"2603:10a6:20b:4::1\",\n"
    "         \"receiving-mx-hostname\": \"mx1.example.com\",\n"
    "         \"receiving-ip\": \"2001:db8::25\",\n"
    "         \"failed-session-count\": 5,\n"
    "         \"failure-reason-code\": \"X509_V_ERR_DANE_NO_MATCH\"},\n"
    "        {\"result-type\": \"starttls-not-supported\",\n"
    "         \"sending-mta-ip\": \"40.107.22.1\",\n"
    "         \"receiving-mx-hostname\": \"mx1.example.com\",\n"
    "         \"receiving-mx-helo\": \"mx1.example.com\",\n"
    "         \"receiving-ip\": \"192.0.2.25\",\n"
    "         \"failed-session-count\": 2}\n"
    "      ]\n    }\n  ]\n}\n";

static void
google_like(void)
{
	struct tlsrpt_report *r = t_ok(google_ok);

	if (r == NULL)
		return;
	if (tlsrpt_report_nwarnings(r) != 0)
		t_print_warnings(r);
	T_CHECK(tlsrpt_report_nwarnings(r) == 0);
	T_STREQ(t_str(r, "format"), "json");
	T_STREQ(t_str(r, "report/organization-name"), "Google Inc.");
	T_STREQ(t_str(r, "report/policies/0/policy/policy-string/4"),
	    "max_age: 604800");
	T_CHECK(
	    json_array_size(t_at(r, "report/policies/0/failure-details")) == 0);
	T_STREQ(t_str(r, "summary/0/policy-domain"), "example.com");
	T_CHECK(t_int(r, "summary/0/successful") == 1532);
	T_CHECK(t_int(r, "summary/0/failed") == 0);
	T_CHECK(json_array_size(t_at(r, "summary/0/failures")) == 0);
	T_CHECK(t_at(r, "email") == NULL);
	tlsrpt_report_free(r);
}

static void
microsoft_like(void)
{
	struct tlsrpt_report *r = t_ok(microsoft_fail);

	if (r == NULL)
		return;
	T_CHECK(tlsrpt_report_nwarnings(r) == 0);
	T_CHECK(t_int(r, "summary/0/successful") == 210);
	T_CHECK(t_int(r, "summary/0/failed") == 7);
	T_STREQ(t_str(r, "summary/0/failures/0/result-type"), "tlsa-invalid");
	T_CHECK(t_int(r, "summary/0/failures/0/sessions") == 5);
	T_STREQ(t_str(r, "summary/0/failures/0/details/0/receiving-ip"),
	    "2001:db8::25");
	T_STREQ(t_str(r, "summary/0/failures/1/result-type"),
	    "starttls-not-supported");
	T_STREQ(t_str(r, "summary/0/failures/1/details/0/receiving-mx-helo"),
	    "mx1.example.com");
	tlsrpt_report_free(r);
}

/* ---- deviations: each accepted, normalized and warned about ------------ */

/* A small report with one field replaced: "@P@" the policy object's
 * extra members, "@D@" the failure detail, "@S@" the summary, "@C@" the
 * contact-info member. */
static char *
t_report(const char *policy, const char *detail, const char *summary,
    const char *contact)
{
	return xasprintf("{\"organization-name\":\"Mail.example\","
	                 "\"date-range\":{\"start-datetime\":"
	                 "\"2026-11-27T00:00:00Z\",\"end-datetime\":"
	                 "\"2026-11-27T23:59:59Z\"},%s"
	                 "\"report-id\":\"r1\",\"policies\":[{\"policy\":{%s},"
	                 "\"summary\":{%s},\"failure-details\":[{%s}]}]}",
	    contact, policy, summary, detail);
}

#define POL_STS                                                           \
	"\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\"]," \
	"\"policy-domain\":\"example.com\",\"mx-host\":[\"mx.example.com\"]"
#define DETAIL                                          \
	"\"result-type\":\"certificate-expired\","      \
	"\"sending-mta-ip\":\"203.0.113.9\","           \
	"\"receiving-mx-hostname\":\"mx.example.com\"," \
	"\"receiving-ip\":\"192.0.2.1\",\"failed-session-count\":3"
#define SUMMARY                                  \
	"\"total-successful-session-count\":10," \
	"\"total-failure-session-count\":3"
#define CONTACT "\"contact-info\":\"tlsrpt@mail.example\","

struct dev_case {
	const char *name;
	const char *policy, *detail, *summary, *contact;
	const char *path;     /* a normalized value to check */
	const char *want_str; /* its string, or NULL */
	long long want_int;   /* or its integer (want_str NULL); -2: absent */
	const char *warning;  /* a warning that must be there */
};

static const struct dev_case dev_cases[] = {
	{ "policy_string_one_string",
	    "\"policy-type\":\"sts\",\"policy-string\":\"version: STSv1\\r\\n"
	    "mode: enforce\\r\\nmx: mx.example.com\\r\\nmax_age: 86400\\r\\n\","
	    "\"policy-domain\":\"example.com\"",
	    DETAIL, SUMMARY, CONTACT,
	    "report/policies/0/policy/policy-string/3", "max_age: 86400", 0,
	    "policy-string: a string, not an array" },
	{ "tlsa_policy_string_one_string",
	    "\"policy-type\":\"tlsa\",\"policy-string\":\"3 1 1 AABB; "
	    "2 0 1 CCDD\",\"policy-domain\":\"example.com\"",
	    DETAIL, SUMMARY, CONTACT,
	    "report/policies/0/policy/policy-string/1", "2 0 1 CCDD", 0,
	    "policy-string: a string" },
	{ "sending_mta_ip_empty", POL_STS,
	    "\"result-type\":\"starttls-not-supported\","
	    "\"sending-mta-ip\":\"\",\"receiving-mx-hostname\":\"mx.example.com\","
	    "\"receiving-ip\":\"192.0.2.1\",\"failed-session-count\":3",
	    SUMMARY, CONTACT,
	    "report/policies/0/failure-details/0/sending-mta-ip", NULL, -2,
	    "failure-details[0].sending-mta-ip: empty" },
	{ "sending_mta_ip_missing", POL_STS,
	    "\"result-type\":\"starttls-not-supported\","
	    "\"receiving-mx-hostname\":\"mx.example.com\","
	    "\"receiving-ip\":\"192.0.2.1\",\"failed-session-count\":3",
	    SUMMARY, CONTACT,
	    "report/policies/0/failure-details/0/sending-mta-ip", NULL, -2,
	    "sending-mta-ip: missing" },
	{ "contact_info_null", POL_STS, DETAIL, SUMMARY,
	    "\"contact-info\":null,", "report/contact-info", NULL, -2,
	    "contact-info: null" },
	{ "contact_info_missing", POL_STS, DETAIL, SUMMARY, "",
	    "report/contact-info", NULL, -2, "contact-info: missing" },
	{ "policy_domain_missing",
	    "\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\"]",
	    DETAIL, SUMMARY, CONTACT, "summary/0/policy-domain", NULL, -2,
	    "policy-domain: missing" },
	{ "mx_host_string",
	    "\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\"],"
	    "\"policy-domain\":\"example.com\",\"mx-host\":\"mx.example.com\"",
	    DETAIL, SUMMARY, CONTACT, "report/policies/0/policy/mx-host/0",
	    "mx.example.com", 0, "mx-host: a string, not an array" },
	{ "mx_host_string_list",
	    "\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\"],"
	    "\"policy-domain\":\"example.com\","
	    "\"mx-host\":\"mx1.example.com, *.example.com\"",
	    DETAIL, SUMMARY, CONTACT, "report/policies/0/policy/mx-host/1",
	    "*.example.com", 0, "mx-host: a string" },
	{ "count_as_string", POL_STS, DETAIL,
	    "\"total-successful-session-count\":\"12\","
	    "\"total-failure-session-count\":\"3\"",
	    CONTACT, "summary/0/successful", NULL, 12,
	    "total-successful-session-count: a string, not an integer" },
	{ "failed_count_as_string", POL_STS,
	    "\"result-type\":\"certificate-expired\","
	    "\"sending-mta-ip\":\"203.0.113.9\","
	    "\"receiving-mx-hostname\":\"mx.example.com\","
	    "\"receiving-ip\":\"192.0.2.1\",\"failed-session-count\":\"3\"",
	    SUMMARY, CONTACT,
	    "report/policies/0/failure-details/0/failed-session-count", NULL, 3,
	    "failed-session-count: a string" },
	{ "count_as_real", POL_STS, DETAIL,
	    "\"total-successful-session-count\":10.0,"
	    "\"total-failure-session-count\":3",
	    CONTACT, "summary/0/successful", NULL, 10,
	    "a number, not an integer" },
	{ "count_missing", POL_STS, DETAIL,
	    "\"total-successful-session-count\":10", CONTACT,
	    "summary/0/failed", NULL, 0,
	    "total-failure-session-count: missing; taken as 0" },
	{ "report_id_number", POL_STS, DETAIL, SUMMARY,
	    "\"contact-info\":\"a@b.example\",\"report-id\":12345,",
	    "report/report-id", "12345", 0, "report-id: a number" },
	{ "unknown_policy_type",
	    "\"policy-type\":\"mta-sts\",\"policy-string\":[\"x\"],"
	    "\"policy-domain\":\"example.com\"",
	    DETAIL, SUMMARY, CONTACT, "report/policies/0/policy/policy-type",
	    "mta-sts", 0, "policy-type: unknown type" },
	{ "no_policy_found",
	    "\"policy-type\":\"no-policy-found\","
	    "\"policy-domain\":\"example.com\"",
	    DETAIL, SUMMARY, CONTACT, "report/policies/0/policy/policy-string",
	    NULL, -2, NULL },
	{ "policy_string_non_strings",
	    "\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\",7,"
	    "\"mode: testing\"],\"policy-domain\":\"example.com\"",
	    DETAIL, SUMMARY, CONTACT,
	    "report/policies/0/policy/policy-string/1", "mode: testing", 0,
	    "policy-string[1]: a number" },
};

/* The report_id_number case moves report-id before the template's. */
static void
deviations(void)
{
	const struct dev_case *c;
	struct tlsrpt_report *r;
	json_t *v;
	char *s;
	size_t i;

	for (i = 0; i < sizeof(dev_cases) / sizeof(dev_cases[0]); i++) {
		c = &dev_cases[i];
		s = t_report(c->policy, c->detail, c->summary, c->contact);
		if (strcmp(c->name, "report_id_number") == 0) {
			char *p = strstr(s, "\"report-id\":\"r1\",");
			memmove(p, p + 17, strlen(p + 17) + 1);
		}
		r = t_ok(s);
		free(s);
		if (r == NULL) {
			printf("  case %s\n", c->name);
			continue;
		}
		v = t_at(r, c->path);
		if (c->want_str != NULL)
			T_STREQ(json_string_value(v), c->want_str);
		else if (c->want_int == -2)
			T_CHECK(v == NULL || json_is_null(v));
		else
			T_CHECK(json_is_integer(v) &&
			    json_integer_value(v) == c->want_int);
		if (c->warning != NULL && !t_warned(r, c->warning)) {
			printf("  case %s: no warning \"%s\"\n", c->name,
			    c->warning);
			t_print_warnings(r);
			T_CHECK(0);
		}
		if (c->warning == NULL && tlsrpt_report_nwarnings(r) != 0) {
			printf("  case %s: unexpected warnings\n", c->name);
			t_print_warnings(r);
			T_CHECK(0);
		}
		tlsrpt_report_free(r);
	}
}

/* A report that is one policy object, not an array; details likewise. */
static void
object_not_array(void)
{
	struct tlsrpt_report *r = t_ok(
	    "{\"organization-name\":\"x\",\"contact-info\":\"a@x.example\","
	    "\"report-id\":\"1\",\"date-range\":{\"start-datetime\":\"a\","
	    "\"end-datetime\":\"b\"},\"policies\":{\"policy\":{" POL_STS "},"
	    "\"summary\":{" SUMMARY "},\"failure-details\":{" DETAIL "}}}");

	if (r == NULL)
		return;
	T_CHECK(t_warned(r, "policies: an object, not an array"));
	T_CHECK(t_warned(r, "failure-details: an object"));
	T_CHECK(t_int(r, "summary/0/failures/0/sessions") == 3);
	tlsrpt_report_free(r);
}

/* Several deviations at once, the way a small provider might send. */
static void
small_provider(void)
{
	struct tlsrpt_report *r = t_ok(
	    "{\"organization-name\":\"Mail.example\",\"contact-info\":null,"
	    "\"report-id\":\"abc\",\"date-range\":{\"start-datetime\":"
	    "\"2026-11-27T00:00:00Z\",\"end-datetime\":\"2026-11-28T00:00:00Z\"},"
	    "\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
	    "\"policy-string\":\"version: STSv1\\nmode: testing\\n"
	    "mx: mx.example.com\\nmax_age: 86400\","
	    "\"mx-host\":\"mx.example.com\"},"
	    "\"summary\":{\"total-successful-session-count\":\"4\","
	    "\"total-failure-session-count\":\"1\"},"
	    "\"failure-details\":[{\"result-type\":\"certificate-host-mismatch\","
	    "\"sending-mta-ip\":\"\",\"receiving-mx-hostname\":\"mx.example.com\","
	    "\"receiving-ip\":\"192.0.2.7\",\"failed-session-count\":\"1\"}]}]}");

	if (r == NULL)
		return;
	T_CHECK(tlsrpt_report_nwarnings(r) == 8);
	if (tlsrpt_report_nwarnings(r) != 8)
		t_print_warnings(r);
	T_CHECK(json_array_size(
	            t_at(r, "report/policies/0/policy/policy-string")) == 4);
	T_CHECK(t_int(r, "summary/0/failures/0/sessions") == 1);
	T_CHECK(json_is_null(t_at(r, "summary/0/policy-domain")));
	tlsrpt_report_free(r);
}

/* ---- formats ------------------------------------------------------------- */

static void
json_bom_and_space(void)
{
	char *s = xasprintf("\xef\xbb\xbf \r\n\t%s\n\n", google_ok);
	struct tlsrpt_report *r = t_ok(s);

	T_CHECK(r != NULL && strcmp(t_str(r, "format"), "json") == 0);
	tlsrpt_report_free(r);
	free(s);
}

static void
gzip_raw(void)
{
	size_t n;
	uint8_t *gz = t_gzip(microsoft_fail, strlen(microsoft_fail), &n);
	char *err;
	struct tlsrpt_report *r = t_parse_n(gz, n, &err);

	T_CHECK(r != NULL);
	if (r != NULL) {
		T_STREQ(t_str(r, "format"), "gzip");
		T_CHECK(t_int(r, "summary/0/failed") == 7);
	}
	tlsrpt_report_free(r);
	free(err);
	free(gz);
}

/* A report email as RFC 8460 §5.3 shows it; the report part is gzip in
 * base64, or JSON in quoted-printable when qp. */
static char *
t_email(const char *json, const char *domain_hdr, bool qp, const char *eol)
{
	struct buf b;
	uint8_t *gz;
	size_t n;

	buf_init(&b, 1 << 24);
	buf_printf(&b,
	    "From: noreply-smtp-tls-reporting@google.com%s"
	    "Date: Sat, 28 Nov 2026 09:00:00 +0000%s"
	    "To: tlsrpt@example.com%s"
	    "Subject: Report Domain: example.com Submitter: google.com "
	    "Report-ID: <2026.11.27T00.00.00Z+example.com@google.com>%s"
	    "%s"
	    "TLS-Report-Submitter: google.com%s"
	    "DKIM-Signature: v=1; a=rsa-sha256; d=google.com; s=x; b=AAAA%s"
	    "MIME-Version: 1.0%s"
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";%s"
	    "\tboundary=\"000000000000c0ffee\"%s%s"
	    "--000000000000c0ffee%s"
	    "Content-Type: text/plain; charset=\"UTF-8\"%s%s"
	    "This is an aggregate TLS report from google.com%s"
	    "--000000000000c0ffee%s",
	    eol, eol, eol, eol, domain_hdr, eol, eol, eol, eol, eol, eol, eol,
	    eol, eol, eol, eol);
	if (qp) {
		buf_printf(&b,
		    "Content-Type: application/tlsrpt+json%s"
		    "Content-Transfer-Encoding: quoted-printable%s%s",
		    eol, eol, eol);
		for (; *json != '\0'; json++) {
			if (*json == '=')
				buf_adds(&b, "=3D");
			else if (*json == '\n')
				buf_printf(&b, "=%s", eol);
			else
				buf_addc(&b, *json);
		}
		buf_adds(&b, eol);
	} else {
		buf_printf(&b,
		    "Content-Type: application/tlsrpt+gzip%s"
		    "Content-Transfer-Encoding: base64%s"
		    "Content-Disposition: attachment;%s"
		    "\tfilename=\"google.com!example.com!1795737600!"
		    "1795823999!001.json.gz\"%s%s",
		    eol, eol, eol, eol, eol);
		gz = t_gzip(json, strlen(json), &n);
		t_b64(&b, gz, n, eol);
		free(gz);
	}
	buf_printf(&b, "--000000000000c0ffee--%s", eol);
	return buf_steal(&b);
}

#define DOMAIN_HDR "TLS-Report-Domain: example.com\r\n"

static void
email_gzip(void)
{
	char *m = t_email(google_ok, DOMAIN_HDR, false, "\r\n");
	struct tlsrpt_report *r = t_ok(m);

	if (r != NULL) {
		T_STREQ(t_str(r, "format"), "email/gzip");
		T_STREQ(t_str(r, "email/tls-report-submitter"), "google.com");
		T_STREQ(t_str(r, "email/tls-report-domain"), "example.com");
		T_CHECK(json_is_true(t_at(r, "email/dkim-signature")));
		T_CHECK(t_int(r, "summary/0/successful") == 1532);
		T_CHECK(tlsrpt_report_nwarnings(r) == 0);
		t_print_warnings(r);
	}
	tlsrpt_report_free(r);
	free(m);
}

static void
email_json_qp_lf(void)
{
	char *m = t_email(microsoft_fail, "", true, "\n");
	struct tlsrpt_report *r = t_ok(m);

	if (r != NULL) {
		T_STREQ(t_str(r, "format"), "email/json");
		T_CHECK(t_int(r, "summary/0/failed") == 7);
		T_CHECK(t_warned(r,
		    "TLS-Report-Submitter google.com is not "
		    "the domain of contact-info"));
	}
	tlsrpt_report_free(r);
	free(m);
}

/* policy-domain missing in the report: TLS-Report-Domain stands in. */
static void
email_domain_hint(void)
{
	char *json = t_report("\"policy-type\":\"sts\","
	                      "\"policy-string\":[\"version: STSv1\"]",
	    DETAIL, SUMMARY, "\"contact-info\":\"x@google.com\",");
	char *m = t_email(json, DOMAIN_HDR, false, "\r\n");
	struct tlsrpt_report *r = t_ok(m);

	if (r != NULL) {
		T_STREQ(t_str(r, "report/policies/0/policy/policy-domain"),
		    "example.com");
		T_STREQ(t_str(r, "summary/0/policy-domain"), "example.com");
		T_CHECK(t_warned(r, "taken from TLS-Report-Domain"));
	}
	tlsrpt_report_free(r);
	free(m);
	free(json);
}

/* A forwarded report: multipart/mixed, message/rfc822, then the report;
 * an mbox "From " line in front. The wrapper has no DKIM-Signature and
 * no TLS-Report-Submitter, the forwarded report has both. */
static void
email_nested(void)
{
	char *inner = t_email(google_ok, DOMAIN_HDR, false, "\r\n");
	char *m =
	    xasprintf("From postmaster@example.com Sat Nov 28 09:00:00 2026\r\n"
	              "From: postmaster@example.com\r\nSubject: Fwd: report\r\n"
	              "MIME-Version: 1.0\r\n"
	              "Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
	              "preamble\r\n--outer\r\nContent-Type: text/plain\r\n\r\n"
	              "see attached\r\n--outerless\r\n--outer  \r\n"
	              "Content-Type: message/rfc822\r\n\r\n%s\r\n--outer--\r\n",
	        inner);
	struct tlsrpt_report *r = t_ok(m);

	if (r != NULL) {
		T_STREQ(t_str(r, "format"), "email/gzip");
		T_CHECK(t_int(r, "summary/0/successful") == 1532);
		/* The fields of the forwarded report, not the wrapper's. */
		T_STREQ(t_str(r, "email/tls-report-submitter"), "google.com");
		T_CHECK(json_is_true(t_at(r, "email/dkim-signature")));
		T_CHECK(tlsrpt_report_nwarnings(r) == 0);
	}
	tlsrpt_report_free(r);
	free(m);
	free(inner);
}

/* A generic media type with a report file name is taken, with a warning. */
static void
email_generic_type(void)
{
	char *m = t_email(google_ok, DOMAIN_HDR, false, "\r\n"), *p;
	struct tlsrpt_report *r;

	p = strstr(m, "application/tlsrpt+gzip");
	memcpy(p, "application/gzip       ", 23);
	r = t_ok(m);
	if (r != NULL)
		T_CHECK(t_warned(r, "the report part is application/gzip"));
	tlsrpt_report_free(r);
	free(m);
}

/* ---- errors ----------------------------------------------------------------
 */

struct err_case {
	const char *name;
	const char *in;
	const char *want;
};

static const struct err_case err_cases[] = {
	{ "garbage", "hello world\x01\x02", "neither JSON, gzip nor an email" },
	{ "binary", "\x89PNG\r\n\x1a\n", "neither JSON" },
	{ "json_truncated", "{\"organization-name\":\"Google", "JSON: " },
	{ "json_trailing", "{\"policies\":[]} x", "JSON: " },
	{ "json_array", "[1, 2]", "the JSON is an array, not an object" },
	{ "no_policies", "{\"organization-name\":\"x\"}",
	    "no \"policies\" array" },
	{ "policies_string", "{\"policies\":\"none\"}", "no \"policies\"" },
	{ "policy_number", "{\"policies\":[1]}",
	    "policies[0]: a number, not an object" },
	{ "count_garbage",
	    "{\"policies\":[{\"policy\":{},\"summary\":{"
	    "\"total-successful-session-count\":\"many\"}}]}",
	    "total-successful-session-count: not a session count" },
	{ "count_negative",
	    "{\"policies\":[{\"summary\":{\"total-successful-session-count\":1,"
	    "\"total-failure-session-count\":-1}}]}",
	    "policies[0].summary.total-failure-session-count: not a session" },
	{ "detail_not_object",
	    "{\"policies\":[{\"summary\":{},\"failure-details\":[\"x\"]}]}",
	    "policies[0].failure-details[0]: a string, not an object" },
	{ "email_no_report",
	    "From: a@example.com\r\nContent-Type: text/plain\r\n\r\nhi\r\n",
	    "no application/tlsrpt+gzip or application/tlsrpt+json part" },
	{ "email_no_boundary",
	    "From: a@example.com\r\nContent-Type: multipart/report\r\n\r\n"
	    "--x\r\nContent-Type: application/tlsrpt+json\r\n\r\n{}\r\n--x--\r\n",
	    "no application/tlsrpt+gzip" },
	{ "email_part_not_json",
	    "From: a@example.com\r\nContent-Type: application/tlsrpt+json\r\n"
	    "\r\nnot json\r\n",
	    "email: the report part is not JSON or gzip" },
	{ "json_control_quoted", "{\"a\":\x1b[31m}", "JSON: " },
};

static void
errors(void)
{
	size_t i;

	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++)
		t_fails(err_cases[i].in, err_cases[i].want);
	t_fails_n("", 0, "empty input");
	t_fails_n(NULL, 0, "empty input");
}

/* Error messages never carry control characters from the input. */
static void
error_clean(void)
{
	char *err;
	struct tlsrpt_report *r;
	const char *p;

	r = t_parse_n("{\"a\":\x1b[31m}", 12, &err);
	T_CHECK(r == NULL && err != NULL);
	for (p = err; p != NULL && *p != '\0'; p++)
		T_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	free(err);
}

static void
gzip_truncated(void)
{
	size_t n;
	uint8_t *gz = t_gzip(google_ok, strlen(google_ok), &n);

	t_fails_n(gz, n / 2, "gzip: truncated");
	t_fails_n(gz, n - 4, "gzip: truncated");
	t_fails_n(gz, 10, "gzip: truncated");
	free(gz);
}

static void
gzip_corrupt(void)
{
	size_t n;
	uint8_t *gz = t_gzip(google_ok, strlen(google_ok), &n);

	gz[n - 6] ^= 0xff; /* the CRC-32 */
	t_fails_n(gz, n, "gzip: corrupt data");
	free(gz);
	gz = t_gzip("hello, not json", 15, &n);
	t_fails_n(gz, n, "input is not JSON once inflated");
	free(gz);
}

/* 11 MiB of spaces in a few KiB: refused at the cap, not inflated whole. */
static void
gzip_bomb(void)
{
	size_t big = 11 * 1024 * 1024, n;
	char *blank = xmalloc(big);
	uint8_t *gz;
	struct buf b;
	char *m;

	memset(blank, ' ', big);
	blank[0] = '{';
	gz = t_gzip(blank, big, &n);
	T_CHECK(n < 64 * 1024);
	t_fails_n(gz, n, "inflates to more than 10 MiB");
	/* The same inside an email. */
	buf_init(&b, 1 << 22);
	buf_adds(&b,
	    "From: a@example.com\r\n"
	    "Content-Type: application/tlsrpt+gzip\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n");
	t_b64(&b, gz, n, "\r\n");
	m = buf_steal(&b);
	t_fails(m, "inflates to more than 10 MiB");
	free(m);
	free(gz);
	free(blank);
}

/* An email cut in the middle of the report part. */
static void
email_truncated(void)
{
	char *m = t_email(microsoft_fail, DOMAIN_HDR, false, "\r\n");
	char *cut = strstr(m, "json.gz\"\r\n\r\n") + 12 + 100;

	*cut = '\0';
	t_fails(m, "gzip: truncated");
	free(m);
}

/* "[{},{},...]" is small as text and huge as a tree: refused. */
static void
too_many_nodes(void)
{
	struct buf b;
	size_t i;

	buf_init(&b, 1 << 22);
	buf_adds(&b, "{\"policies\":[");
	for (i = 0; i < 250000; i++)
		buf_adds(&b, i ? ",{}" : "{}");
	buf_adds(&b, "]}");
	t_fails_n(b.data, b.len, "more than 200000 objects and arrays");
	buf_free(&b);
}

static void
input_too_large(void)
{
	size_t n = TLSRPT_INPUT_MAX + 1;
	char *p = xmalloc(n);

	memset(p, ' ', n);
	p[0] = '{';
	t_fails_n(p, n, "larger than 20 MiB");
	free(p);
}

/* ---- summary and printing --------------------------------------------------
 */

static const char multi[] =
    "{\"organization-name\":\"Other Mail \\u001b[31mCo\","
    "\"contact-info\":\"tlsrpt@other.example\",\"report-id\":\"m1\","
    "\"date-range\":{\"start-datetime\":\"2026-11-27T00:00:00Z\","
    "\"end-datetime\":\"2026-11-27T23:59:59Z\"},\"policies\":["
    "{\"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"v\"],"
    "\"policy-domain\":\"a.example\",\"mx-host\":[\"mx.a.example\"]},"
    "\"summary\":{\"total-successful-session-count\":5,"
    "\"total-failure-session-count\":2},\"failure-details\":["
    "{\"result-type\":\"certificate-expired\",\"sending-mta-ip\":\"192.0.2.1\","
    "\"receiving-mx-hostname\":\"mx.a.example\",\"receiving-ip\":\"198.51.100.1\","
    "\"failed-session-count\":2}]},"
    "{\"policy\":{\"policy-type\":\"no-policy-found\","
    "\"policy-domain\":\"b.example\"},"
    "\"summary\":{\"total-successful-session-count\":1,"
    "\"total-failure-session-count\":0}},"
    "{\"policy\":{\"policy-type\":\"tlsa\",\"policy-string\":[\"3 1 1 AA\"],"
    "\"policy-domain\":\"a.example\",\"mx-host\":[\"mx.a.example\"]},"
    "\"summary\":{\"total-successful-session-count\":3,"
    "\"total-failure-session-count\":4},\"failure-details\":["
    "{\"result-type\":\"tlsa-invalid\",\"sending-mta-ip\":\"192.0.2.1\","
    "\"receiving-mx-hostname\":\"mx.a.example\",\"receiving-ip\":\"198.51.100.1\","
    "\"failed-session-count\":1,\"failure-reason-code\":\"no match\\n\"},"
    "{\"result-type\":\"certificate-expired\",\"sending-mta-ip\":\"192.0.2.2\","
    "\"receiving-mx-hostname\":\"mx.a.example\",\"receiving-ip\":\"198.51.100.2\","
    "\"failed-session-count\":3}]}]}";

/* One summary entry per policy, in report order, never added up: a.example
 * has an sts and a tlsa policy, each with its own counts. */
static void
summary_groups(void)
{
	struct tlsrpt_report *r = t_ok(multi);

	if (r == NULL)
		return;
	T_CHECK(json_array_size(t_at(r, "summary")) == 3);
	T_STREQ(t_str(r, "summary/0/policy-domain"), "a.example");
	T_STREQ(t_str(r, "summary/0/policy-type"), "sts");
	T_STREQ(t_str(r, "summary/0/mx-host/0"), "mx.a.example");
	T_CHECK(t_int(r, "summary/0/successful") == 5);
	T_CHECK(t_int(r, "summary/0/failed") == 2);
	T_STREQ(t_str(r, "summary/0/failures/0/result-type"),
	    "certificate-expired");
	T_CHECK(t_int(r, "summary/0/failures/0/sessions") == 2);
	T_STREQ(t_str(r, "summary/1/policy-domain"), "b.example");
	T_CHECK(t_int(r, "summary/1/successful") == 1);
	T_STREQ(t_str(r, "summary/2/policy-type"), "tlsa");
	T_CHECK(t_int(r, "summary/2/successful") == 3);
	T_CHECK(t_int(r, "summary/2/failed") == 4);
	T_STREQ(t_str(r, "summary/2/failures/0/result-type"), "tlsa-invalid");
	T_STREQ(t_str(r, "summary/2/failures/1/result-type"),
	    "certificate-expired");
	T_CHECK(t_int(r, "summary/2/failures/1/sessions") == 3);
	T_CHECK(t_int(r, "summary/2/failure-details-sessions") == 4);
	T_CHECK(json_is_true(t_at(r, "summary/2/consistent")));
	T_CHECK(json_is_false(t_at(r, "inconsistent")));
	tlsrpt_report_free(r);
}

static void
print_text(void)
{
	struct tlsrpt_report *r = t_ok(multi);
	char *out = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&out, &n);

	if (r == NULL || fp == NULL)
		return;
	tlsrpt_report_print(fp, r);
	fclose(fp);
	T_CHECK(strstr(out,
	            "organization: Other Mail ?[31mCo "
	            "<tlsrpt@other.example>") != NULL);
	T_CHECK(strchr(out, '\x1b') == NULL);
	T_CHECK(strstr(out, "8 successful") == NULL);
	T_CHECK(strstr(out,
	            "  policy sts a.example (mx-host mx.a.example): "
	            "5 successful, 2 failed sessions\n") != NULL);
	T_CHECK(strstr(out,
	            "  policy tlsa a.example (mx-host mx.a.example): "
	            "3 successful, 4 failed sessions\n") != NULL);
	T_CHECK(strstr(out, "    certificate-expired: 3 sessions\n") != NULL);
	T_CHECK(strstr(out, "    tlsa-invalid: 1 session\n") != NULL);
	T_CHECK(strstr(out,
	            "           3  mx.a.example [198.51.100.2] from "
	            "192.0.2.2\n") != NULL);
	T_CHECK(
	    strstr(out, "[198.51.100.1] from 192.0.2.1: no match?\n") != NULL);
	T_CHECK(strstr(out,
	            "  policy no-policy-found b.example: 1 successful, "
	            "0 failed sessions\n") != NULL);
	T_CHECK(strstr(out,
	            "note:         a.example is reported under 2 "
	            "policies") != NULL);
	T_CHECK(strstr(out, "inconsistent") == NULL);
	if (t_failed_now)
		printf("%s", out);
	free(out);
	tlsrpt_report_free(r);
}

/* A fixture file of tests/unit/golden (the tests run in tests/unit). */
static struct tlsrpt_report *
t_golden(const char *name)
{
	char path[256], *err = NULL;
	struct tlsrpt_report *r = NULL;
	struct buf b;
	FILE *fp;
	size_t k;
	char chunk[4096];

	snprintf(path, sizeof(path), "golden/%s", name);
	if ((fp = fopen(path, "rb")) == NULL) {
		T_FAIL("cannot open the fixture");
		return NULL;
	}
	buf_init(&b, 1 << 20);
	while ((k = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, k);
	fclose(fp);
	r = t_parse_n(buf_cstr(&b), b.len, &err);
	if (r == NULL)
		printf("  %s: %s\n", name, err);
	T_CHECK(r != NULL);
	free(err);
	buf_free(&b);
	return r;
}

static char *
t_print(const struct tlsrpt_report *r)
{
	char *out = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&out, &n);

	tlsrpt_report_print(fp, r);
	fclose(fp);
	return out;
}

/* Microsoft-shaped: the same 215 sessions under the sts and the tlsa
 * policy of example.com. The counts stay per policy (212 + 3 each), never
 * 424 + 6 for the domain (RFC 8460 §4: "multiple applied policies"). */
static void
microsoft_sts_tlsa(void)
{
	struct tlsrpt_report *r = t_golden("tlsrpt_microsoft_sts_tlsa.json");
	char *out;

	if (r == NULL)
		return;
	T_CHECK(tlsrpt_report_nwarnings(r) == 0);
	T_CHECK(json_array_size(t_at(r, "summary")) == 2);
	T_STREQ(t_str(r, "summary/0/policy-type"), "sts");
	T_STREQ(t_str(r, "summary/1/policy-type"), "tlsa");
	T_STREQ(t_str(r, "summary/1/policy-domain"), "example.com");
	T_CHECK(t_int(r, "summary/0/successful") == 212);
	T_CHECK(t_int(r, "summary/0/failed") == 3);
	T_CHECK(t_int(r, "summary/1/successful") == 212);
	T_CHECK(t_int(r, "summary/1/failed") == 3);
	T_CHECK(t_int(r, "summary/1/failures/0/sessions") == 3);
	T_CHECK(json_is_false(t_at(r, "inconsistent")));
	out = t_print(r);
	T_CHECK(strstr(out, "424") == NULL && strstr(out, "6 failed") == NULL);
	T_CHECK(strstr(out,
	            "  policy tlsa example.com (mx-host mx1.example.com): "
	            "212 successful, 3 failed sessions\n") != NULL);
	T_CHECK(strstr(out, "WARNING") == NULL);
	if (t_failed_now)
		printf("%s", out);
	free(out);
	tlsrpt_report_free(r);
}

/* Mail.Ru-shaped (an email with the gzip part): the sts policy says 12
 * failed sessions, its failure-details add up to 3 + 2. */
static void
mailru_inconsistent(void)
{
	struct tlsrpt_report *r = t_golden("tlsrpt_mailru_inconsistent.eml");
	char *out;

	if (r == NULL)
		return;
	T_STREQ(t_str(r, "format"), "email/gzip");
	T_CHECK(tlsrpt_report_nwarnings(r) == 0);
	T_CHECK(t_int(r, "summary/0/successful") == 1034);
	T_CHECK(t_int(r, "summary/0/failed") == 12);
	T_CHECK(t_int(r, "summary/0/failure-details-sessions") == 5);
	T_CHECK(json_is_false(t_at(r, "summary/0/consistent")));
	T_CHECK(json_is_true(t_at(r, "inconsistent")));
	out = t_print(r);
	T_CHECK(strstr(out, "WARNING:      inconsistent report") != NULL);
	T_CHECK(strstr(out,
	            "    WARNING: inconsistent report: "
	            "total-failure-session-count is 12 but the "
	            "failure-details add up to 5\n") != NULL);
	if (t_failed_now)
		printf("%s", out);
	free(out);
	tlsrpt_report_free(r);
}

/* Thousands of deviations give a bounded list of warnings. */
static void
warnings_capped(void)
{
	struct buf b;
	struct tlsrpt_report *r;
	size_t i, n;
	char *s;

	buf_init(&b, 1 << 22);
	buf_adds(&b,
	    "{\"policies\":[{\"policy\":{},\"summary\":{},"
	    "\"failure-details\":[");
	for (i = 0; i < 2000; i++)
		buf_printf(&b, "%s{\"sending-mta-ip\":\"\"}", i ? "," : "");
	buf_adds(&b, "]}]}");
	s = buf_steal(&b);
	r = t_ok(s);
	n = r != NULL ? tlsrpt_report_nwarnings(r) : 0;
	T_CHECK(n == 51);
	T_CHECK(r != NULL &&
	    strstr(tlsrpt_report_warning(r, 50),
	        "more "
	        "warnings"));
	tlsrpt_report_free(r);
	free(s);
}

int
main(void)
{
	T_RUN(google_like);
	T_RUN(microsoft_like);
	T_RUN(deviations);
	T_RUN(object_not_array);
	T_RUN(small_provider);
	T_RUN(json_bom_and_space);
	T_RUN(gzip_raw);
	T_RUN(email_gzip);
	T_RUN(email_json_qp_lf);
	T_RUN(email_domain_hint);
	T_RUN(email_nested);
	T_RUN(email_generic_type);
	T_RUN(errors);
	T_RUN(error_clean);
	T_RUN(gzip_truncated);
	T_RUN(gzip_corrupt);
	T_RUN(gzip_bomb);
	T_RUN(email_truncated);
	T_RUN(too_many_nodes);
	T_RUN(input_too_large);
	T_RUN(summary_groups);
	T_RUN(microsoft_sts_tlsa);
	T_RUN(mailru_inconsistent);
	T_RUN(print_text);
	T_RUN(warnings_capped);
	T_EXIT();
}
