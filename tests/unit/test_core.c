/*
 * test_core: buf caps, cursor parsers, hex, lists, outcomes.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/outcome.h"
#include "core/qid.h"
#include "core/roff.h"
#include "core/str.h"
#include "core/txtrec.h"
#include "t.h"

static void
buf_cap_refuses_overflow(void)
{
	struct buf b;

	buf_init(&b, 8);
	T_CHECK(buf_adds(&b, "1234") == 0);
	T_CHECK(buf_adds(&b, "5678") == 0);
	T_CHECK(buf_addc(&b, '9') == -1);
	T_CHECK(b.len == 8);
	T_STREQ(buf_cstr(&b), "12345678");
	T_CHECK(buf_printf(&b, "%d", 1) == -1);
	buf_reset(&b);
	T_CHECK(buf_printf(&b, "%s-%d", "ab", 7) == 0);
	T_STREQ(buf_cstr(&b), "ab-7");
	buf_free(&b);
	T_STREQ(buf_cstr(&b), "");
}

static void
buf_printf_long(void)
{
	struct buf b;
	char big[600];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 1000);
	T_CHECK(buf_printf(&b, "%s", big) == 0);
	T_CHECK(b.len == sizeof(big) - 1);
	T_CHECK(buf_printf(&b, "%s", big) == -1);
	free(buf_steal(&b));
}

static void
str_uint_table(void)
{
	static const struct {
		const char *in;
		uint64_t min, max;
		int rc;
		uint64_t out;
	} cases[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, -1, 0 },
		{ "", 0, 10, -1, 0 },
		{ "-1", 0, 10, -1, 0 },
		{ "5x", 0, 10, -1, 0 },
		{ "65535", 1, 65535, 0, 65535 },
		{ "99999999999999999999999", 0, UINT64_MAX, -1, 0 },
		{ "0", 1, 5, -1, 0 },
	};
	size_t i;
	uint64_t v;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 0;
		T_CHECK(str_to_uint(cases[i].in, cases[i].min, cases[i].max,
		            &v) == cases[i].rc);
		if (cases[i].rc == 0)
			T_CHECK(v == cases[i].out);
	}
}

static void
str_list_split(void)
{
	size_t n;
	char **v = str_split_list(" a, b  c,,d ", &n);

	T_CHECK(n == 4);
	T_STREQ(v[0], "a");
	T_STREQ(v[3], "d");
	T_CHECK(v[4] == NULL);
	str_vec_free(v);
	v = str_split_list("", &n);
	T_CHECK(n == 0 && v[0] == NULL);
	str_vec_free(v);
}

static void
str_hex_roundtrip(void)
{
	static const uint8_t bytes[] = { 0x00, 0xab, 0xff, 0x10 };
	char *hex = str_hex(bytes, sizeof(bytes));
	uint8_t *back;
	size_t n;

	T_STREQ(hex, "00abff10");
	back = str_unhex("00ABff10", &n);
	T_CHECK(back != NULL && n == 4 && memcmp(back, bytes, 4) == 0);
	free(back);
	T_CHECK(str_unhex("abc", &n) == NULL);
	T_CHECK(str_unhex("zz", &n) == NULL);
	free(hex);
}

static void
str_duration_table(void)
{
	static const struct {
		const char *in;
		int rc;
		uint64_t secs;
	} cases[] = {
		{ "90", 0, 90 },
		{ "30s", 0, 30 },
		{ "5m", 0, 300 },
		{ "1h", 0, 3600 },
		{ "2d", 0, 172800 },
		{ "1w", 0, 604800 },
		{ "0", 0, 0 },
		{ "", -1, 0 },
		{ "m", -1, 0 },
		{ "5x", -1, 0 },
		{ "5mm", -1, 0 },
		{ "-5m", -1, 0 },
		{ "5 m", -1, 0 },
		{ "1000000001", -1, 0 },
	};
	size_t i;
	uint64_t v;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		T_CHECK(str_parse_duration(cases[i].in, &v) == cases[i].rc);
		if (cases[i].rc == 0)
			T_CHECK(v == cases[i].secs);
	}
}

static void
str_digit_values(void)
{
	T_CHECK(str_hex_value('0') == 0 && str_hex_value('f') == 15);
	T_CHECK(str_hex_value('F') == 15 && str_hex_value('g') == -1);
	T_CHECK(str_hex_value(-61) == -1);
	T_CHECK(str_b64_value('A') == 0 && str_b64_value('z') == 51);
	T_CHECK(str_b64_value('9') == 61 && str_b64_value('/') == 63);
	T_CHECK(str_b64_value('=') == -1 && str_b64_value('-') == -1);
}

static void
outcome_classes(void)
{
	struct outcome o;

	outcome_ok(&o);
	T_CHECK(outcome_is_ok(&o));
	T_STREQ(o.status, "2.0.0");
	outcome_set(&o, OUTCOME_TEMP, "4.7.324", RT_DNSSEC_INVALID, "x %d", 1);
	T_STREQ(result_type_str(o.rt), "dnssec-invalid");
	T_STREQ(o.text, "x 1");
	outcome_make_permanent(&o);
	T_STREQ(o.status, "5.7.324");
	T_CHECK(o.cls == OUTCOME_PERM);
	T_CHECK(result_type_str(RT_NONE) == NULL);
	T_STREQ(result_type_str(RT_TLSA_INVALID), "tlsa-invalid");
	T_STREQ(result_type_str(RT_CERTIFICATE_HOST_MISMATCH),
	    "certificate-host-mismatch");
}

/* Queue ids: 16 hex digits, the time first (so later ids sort after
 * earlier ones), all distinct within a second. */
static void
qid_format_order_unique(void)
{
	static char ids[2000][QID_LEN];
	char later[QID_LEN];
	size_t i, j;
	int bad = 0;

	for (i = 0; i < 2000; i++)
		qid_make(1764400000, ids[i]);
	for (i = 0; i < 2000; i++) {
		if (strlen(ids[i]) != 16 ||
		    strspn(ids[i], "0123456789abcdef") != 16 ||
		    strncmp(ids[i], "692a9b80", 8) != 0)
			bad++;
		for (j = i + 1; j < 2000; j++)
			if (strcmp(ids[i], ids[j]) == 0)
				bad++;
	}
	T_CHECK(bad == 0);
	T_CHECK(strcmp(ids[0], ids[1]) != 0);
	qid_make(1764400001, later);
	for (i = 0; i < 2000; i++)
		if (strcmp(later, ids[i]) <= 0)
			bad++;
	T_CHECK(bad == 0);
}

/*
 * txtrec: the fields of a record, as slices, and where the grammar of
 * RFC 8461 §3.1 / RFC 8460 §3 stops a record (the per-record tables are
 * in test_sts.c and test_tlsrpt_send.c).
 */
static const struct {
	const char *rec;
	const char *fields; /* "name=value|..." of the fields read */
	const char *err;    /* NULL: well-formed */
} txtrec_cases[] = {
	{ "v=X; a=1 ;b=c d, e;", "a=1|b=c d, e|", NULL },
	{ "v=X\t;\ta=1\t;\t", "a=1|", NULL },
	{ "v=X;a=1", "a=1|", NULL },
	{ "v=X;", "", "no field" },
	{ "v=X; a=1;;", "a=1|", "empty field" },
	{ "v=X; a=1; ; b=2", "a=1|", "empty field" },
	{ "v=X; a=1 ", "", "separator" },
	{ "v=X; a=", "", "empty field value" },
	{ "v=X; a= 1", "", "empty field value" },
	{ "v=X; a", "", "malformed field name" },
	{ "v=X; -a=1", "", "malformed field name" },
	{ "v=X; abcdefghijabcdefghijabcdefghijab=1",
	    "abcdefghijabcdefghijabcdefghijab=1|", NULL },
	{ "v=X; abcdefghijabcdefghijabcdefghijabc=1", "",
	    "malformed field name" },
};

static void
txtrec_table(void)
{
	struct txtrec r;
	struct str name, value;
	char got[256];
	size_t i, len;
	int rc;

	T_CHECK(!txtrec_begin(&r, "v=XY; a=1", 9, "v=X"));
	T_CHECK(!txtrec_begin(&r, "v=X", 3, "v=X"));
	T_CHECK(!txtrec_begin(&r, "v=X a=1", 7, "v=X"));
	for (i = 0; i < sizeof(txtrec_cases) / sizeof(txtrec_cases[0]); i++) {
		const char *err = NULL, *rec = txtrec_cases[i].rec;

		got[0] = '\0';
		T_CHECK(txtrec_begin(&r, rec, strlen(rec), "v=X"));
		while ((rc = txtrec_next(&r, &name, &value, &err)) == 1) {
			len = strlen(got);
			snprintf(got + len, sizeof(got) - len, "%.*s=%.*s|",
			    (int)name.len, name.p, (int)value.len, value.p);
		}
		if (strcmp(got, txtrec_cases[i].fields) != 0)
			printf("  \"%s\": fields \"%s\"\n", rec, got);
		T_STREQ(got, txtrec_cases[i].fields);
		T_CHECK((rc == 0) == (txtrec_cases[i].err == NULL));
		if (rc == -1 && txtrec_cases[i].err != NULL)
			T_CHECK(strstr(err, txtrec_cases[i].err) != NULL);
	}
	T_CHECK(txtrec_ext_value_ok((struct str){ "a:b<>", 5 }));
	T_CHECK(!txtrec_ext_value_ok((struct str){ "a=b", 3 }));
	T_CHECK(!txtrec_ext_value_ok((struct str){ "a b", 3 }));
	T_CHECK(!txtrec_ext_value_ok((struct str){ "", 0 }));
}

/* roff_puts: what the man pages are made of (src/core/roff.h). */
static const struct {
	const char *in;
	int line_start;
	const char *out;
} roff_cases[] = {
	{ "--json", 0, "\\-\\-json" },
	{ "a\\b", 0, "a\\eb" },
	{ ".dot", 1, "\\&.dot" },
	{ ".dot", 0, ".dot" },
	{ "'quote", 1, "\\&'quote" },
	{ "RFC 7671 §9", 0, "RFC 7671 \\[u00A7]9" },
	{ "\xe2\x80\x94", 0, "\\[u2014]" },
	{ "\xf0\x9f\x99\x82", 0, "\\[u1F642]" },
	{ "\x80x", 0, "\\[uFFFD]x" },
	{ "\xc2", 0, "\\[uFFFD]" },
	{ "", 1, "" },
};

static void
roff_table(void)
{
	char *got;
	size_t i, len;
	FILE *fp;

	for (i = 0; i < sizeof(roff_cases) / sizeof(roff_cases[0]); i++) {
		got = NULL;
		if ((fp = open_memstream(&got, &len)) == NULL) {
			T_FAIL("open_memstream");
			return;
		}
		roff_puts(fp, roff_cases[i].in, roff_cases[i].line_start);
		fclose(fp);
		T_STREQ(got, roff_cases[i].out);
		free(got);
	}
}

int
main(void)
{
	T_RUN(buf_cap_refuses_overflow);
	T_RUN(buf_printf_long);
	T_RUN(str_uint_table);
	T_RUN(str_list_split);
	T_RUN(str_hex_roundtrip);
	T_RUN(str_duration_table);
	T_RUN(str_digit_values);
	T_RUN(outcome_classes);
	T_RUN(qid_format_order_unique);
	T_RUN(txtrec_table);
	T_RUN(roff_table);
	T_EXIT();
}
