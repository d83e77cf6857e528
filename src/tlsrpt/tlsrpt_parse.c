/*
 * tlsrpt_parse: from bytes to a normalized TLS report. Three stages, each
 * with its own cap: find the report (sniff JSON, gzip or a message; in a
 * message walk the MIME tree to the report part and undo its transfer
 * encoding), inflate it when it is gzip (at most TLSRPT_INFLATE_MAX), then
 * read the JSON with jansson and rebuild it field by field with the types
 * of RFC 8460 §4.4, noting every deviation that was let through.
 */
#include "tlsrpt/tlsrpt_parse.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ZLIB_CONST
#include <zlib.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dsn/dsn_hdr.h"

#define TR_WARN_MAX    50 /* then one line saying how many more */
#define TR_MIME_DEPTH  8  /* nested multiparts followed */
#define TR_HDR_MAX     1024
#define TR_PATH_MAX    96
#define TR_MSG_MAX     1024
#define TR_INFLATE_BUF 16384
#define TR_REAL_MAX    9007199254740992.0 /* 2^53: exact in a double */
#define TR_NODES_MAX   200000 /* JSON objects and arrays in one report */

struct tlsrpt_report {
	json_t *doc;
};

struct tr_ctx {
	json_t *warnings;        /* array of strings */
	size_t nwarn;            /* including those not kept */
	char *error;             /* the first fatal error, new */
	const char *domain_hint; /* TLS-Report-Domain of the email, or NULL */
	const uint8_t *holder;   /* the (innermost) message with the report */
	size_t holder_len;
};

static void tr_warn(struct tr_ctx *c, const char *fmt, ...) DR_PRINTF(2, 3);
static void tr_fail(struct tr_ctx *c, const char *fmt, ...) DR_PRINTF(2, 3);

/* Messages quote the input (jansson's errors do too): controls become
 * '?', and so does non-ASCII where a cut may have split a character. */
static void
tr_msg_clean(char *msg, bool ascii)
{
	for (; *msg != '\0'; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f ||
		    (ascii && (unsigned char)*msg >= 0x80))
			*msg = '?';
}

static void
tr_warn(struct tr_ctx *c, const char *fmt, ...)
{
	va_list ap;
	char msg[TR_MSG_MAX];
	json_t *s;

	if (c->nwarn++ >= TR_WARN_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tr_msg_clean(msg, false);
	if ((s = json_string(msg)) == NULL) {
		tr_msg_clean(msg, true);
		s = json_string(msg);
	}
	json_array_append_new(c->warnings, s);
}

static void
tr_fail(struct tr_ctx *c, const char *fmt, ...)
{
	va_list ap;
	char msg[TR_MSG_MAX];

	if (c->error != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tr_msg_clean(msg, false);
	c->error = xstrdup(msg);
}

static const char *
tr_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

/* ---- fields of the report ---------------------------------------------- */

/*
 * Copy the string field key of in to out. A number becomes its string, an
 * empty string or null is left out; each with a warning, as is a missing
 * field when the schema wants it (expected).
 */
static void
tr_str(struct tr_ctx *c, const json_t *in, json_t *out, const char *key,
    const char *path, bool expected)
{
	json_t *v = json_object_get(in, key);

	if (v == NULL) {
		if (expected)
			tr_warn(c, "%s%s: missing", path, key);
	} else if (json_is_string(v) && json_string_length(v) > 0) {
		json_object_set(out, key, v);
	} else if (json_is_string(v) || json_is_null(v)) {
		tr_warn(c, "%s%s: %s; left out", path, key,
		    json_is_null(v) ? "null" : "empty");
	} else if (json_is_integer(v)) {
		tr_warn(c, "%s%s: a number, not a string", path, key);
		json_object_set_new(out, key,
		    json_sprintf(
		        "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
	} else {
		tr_warn(c, "%s%s: a %s, not a string; left out", path, key,
		    tr_type_name(v));
	}
}

/* A count given as a string ("12"), or an integral real (12.0). */
static int
tr_count_lenient(const json_t *v, json_int_t *out)
{
	uint64_t u;
	double d;

	if (json_is_string(v) &&
	    str_to_uint(json_string_value(v), 0, LLONG_MAX, &u) == 0) {
		*out = (json_int_t)u;
		return 0;
	}
	if (json_is_real(v)) {
		d = json_real_value(v);
		if (d >= 0 && d <= TR_REAL_MAX && (double)(json_int_t)d == d) {
			*out = (json_int_t)d;
			return 0;
		}
	}
	return -1;
}

/*
 * The session count key of in into out: a JSON integer >= 0, or (with a
 * warning) a decimal string or integral real; missing or null is 0 with a
 * warning. -1 (fatal) for anything else.
 */
static int
tr_count(struct tr_ctx *c, const json_t *in, json_t *out, const char *key,
    const char *path)
{
	json_t *v = json_object_get(in, key);
	json_int_t n = 0;

	if (v == NULL || json_is_null(v)) {
		tr_warn(c, "%s%s: missing; taken as 0", path, key);
	} else if (json_is_integer(v) && json_integer_value(v) >= 0) {
		n = json_integer_value(v);
	} else if (tr_count_lenient(v, &n) == 0) {
		tr_warn(c, "%s%s: a %s, not an integer", path, key,
		    tr_type_name(v));
	} else {
		tr_fail(c, "%s%s: not a session count", path, key);
		return -1;
	}
	json_object_set_new(out, key, json_integer(n));
	return 0;
}

/* Append the pieces of s, cut at any of seps, trimmed, empty ones not. */
static void
tr_split_into(json_t *arr, const char *s, const char *seps)
{
	size_t n;

	while (*s != '\0') {
		n = strcspn(s, seps);
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n > 0)
			json_array_append_new(arr, json_stringn(s, n));
		s += n;
		s += strspn(s, seps);
		while (*s == ' ' || *s == '\t')
			s++;
	}
}

/*
 * The list field key (policy-string, mx-host): an array of strings. One
 * string instead is cut at seps into one (warning). Non-strings in the
 * array are dropped (warning). Missing: left out, warned when expected.
 */
static void
tr_list(struct tr_ctx *c, const json_t *in, json_t *out, const char *key,
    const char *path, const char *seps, bool expected)
{
	json_t *v = json_object_get(in, key), *arr, *e;
	size_t i;

	if (v == NULL || json_is_null(v)) {
		if (expected)
			tr_warn(c, "%s%s: missing", path, key);
		return;
	}
	arr = json_array();
	if (json_is_string(v)) {
		tr_warn(
		    c, "%s%s: a string, not an array of strings", path, key);
		tr_split_into(arr, json_string_value(v), seps);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (json_is_string(e))
				json_array_append(arr, e);
			else
				tr_warn(c,
				    "%s%s[%zu]: a %s, not a string; "
				    "left out",
				    path, key, i, tr_type_name(e));
		}
	} else {
		tr_warn(c, "%s%s: a %s, not an array; left out", path, key,
		    tr_type_name(v));
	}
	json_object_set_new(out, key, arr);
}

/* ---- the report -------------------------------------------------------- */

/* The "policy" object of policies[i]. */
static json_t *
tr_policy_desc(struct tr_ctx *c, const json_t *in, const char *path)
{
	json_t *out = json_object();
	const char *type;
	bool tlsa;

	if (!json_is_object(in))
		return out;
	tr_str(c, in, out, "policy-type", path, true);
	type = json_string_value(json_object_get(out, "policy-type"));
	if (type != NULL && strcmp(type, "sts") != 0 &&
	    strcmp(type, "tlsa") != 0 && strcmp(type, "no-policy-found") != 0)
		tr_warn(c, "%spolicy-type: unknown type", path);
	/* One string: an STS policy is cut into its lines, a TLSA RRset at
	 * the semicolons that §4 says separate its records. */
	tlsa = type != NULL && strcmp(type, "tlsa") == 0;
	tr_list(c, in, out, "policy-string", path, tlsa ? ";\r\n" : "\r\n",
	    type == NULL || strcmp(type, "no-policy-found") != 0);
	tr_str(c, in, out, "policy-domain", path, c->domain_hint == NULL);
	if (json_object_get(out, "policy-domain") == NULL &&
	    c->domain_hint != NULL) {
		tr_warn(c,
		    "%spolicy-domain: missing; taken from "
		    "TLS-Report-Domain",
		    path);
		json_object_set_new(
		    out, "policy-domain", json_string(c->domain_hint));
	}
	tr_list(c, in, out, "mx-host", path, ", \t\r\n", false);
	return out;
}

/* One entry of failure-details (an object). NULL on a fatal error. */
static json_t *
tr_detail(struct tr_ctx *c, const json_t *in, const char *path)
{
	json_t *out = json_object();

	tr_str(c, in, out, "result-type", path, true);
	tr_str(c, in, out, "sending-mta-ip", path, true);
	tr_str(c, in, out, "receiving-mx-hostname", path, true);
	tr_str(c, in, out, "receiving-mx-helo", path, false);
	tr_str(c, in, out, "receiving-ip", path, true);
	tr_str(c, in, out, "additional-information", path, false);
	tr_str(c, in, out, "failure-reason-code", path, false);
	if (tr_count(c, in, out, "failed-session-count", path) == -1) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* json_array_get(v), or v itself (warning) when it is an object. */
static size_t
tr_array_len(struct tr_ctx *c, const json_t *v, const char *what)
{
	if (json_is_array(v))
		return json_array_size(v);
	if (json_is_object(v)) {
		tr_warn(c, "%s: an object, not an array of them", what);
		return 1;
	}
	return 0;
}

static const json_t *
tr_array_at(const json_t *v, size_t i)
{
	return json_is_array(v) ? json_array_get(v, i) : v;
}

static int
tr_details(struct tr_ctx *c, const json_t *in, json_t *out, size_t idx)
{
	json_t *v = json_object_get(in, "failure-details"), *arr, *d;
	char where[TR_PATH_MAX], p[TR_PATH_MAX];
	size_t i, n;

	snprintf(where, sizeof(where), "policies[%zu].failure-details", idx);
	if (v != NULL && !json_is_null(v) && !json_is_array(v) &&
	    !json_is_object(v))
		tr_warn(c, "%s: a %s, not an array; left out", where,
		    tr_type_name(v));
	arr = json_array();
	json_object_set_new(out, "failure-details", arr);
	n = v != NULL ? tr_array_len(c, v, where) : 0;
	for (i = 0; i < n; i++) {
		if (!json_is_object(tr_array_at(v, i))) {
			tr_fail(c, "%s[%zu]: a %s, not an object", where, i,
			    tr_type_name(tr_array_at(v, i)));
			return -1;
		}
		snprintf(p, sizeof(p), "policies[%zu].failure-details[%zu].",
		    idx, i);
		if ((d = tr_detail(c, tr_array_at(v, i), p)) == NULL)
			return -1;
		json_array_append_new(arr, d);
	}
	return 0;
}

static int
tr_summary_counts(struct tr_ctx *c, const json_t *in, json_t *out, size_t idx)
{
	const json_t *sum_in = json_object_get(in, "summary");
	json_t *sum = json_object();
	char p[TR_PATH_MAX];

	json_object_set_new(out, "summary", sum);
	if (!json_is_object(sum_in))
		tr_warn(
		    c, "policies[%zu].summary: missing or not an object", idx);
	snprintf(p, sizeof(p), "policies[%zu].summary.", idx);
	if (tr_count(c, sum_in, sum, "total-successful-session-count", p) ==
	        -1 ||
	    tr_count(c, sum_in, sum, "total-failure-session-count", p) == -1)
		return -1;
	return 0;
}

static json_t *
tr_policy(struct tr_ctx *c, const json_t *in, size_t idx)
{
	const json_t *desc;
	json_t *out;
	char p[TR_PATH_MAX];

	if (!json_is_object(in)) {
		tr_fail(c, "policies[%zu]: a %s, not an object", idx,
		    tr_type_name(in));
		return NULL;
	}
	out = json_object();
	desc = json_object_get(in, "policy");
	if (!json_is_object(desc))
		tr_warn(
		    c, "policies[%zu].policy: missing or not an object", idx);
	snprintf(p, sizeof(p), "policies[%zu].policy.", idx);
	json_object_set_new(out, "policy", tr_policy_desc(c, desc, p));
	if (tr_summary_counts(c, in, out, idx) == -1 ||
	    tr_details(c, in, out, idx) == -1) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static int
tr_policies(struct tr_ctx *c, const json_t *in, json_t *out)
{
	json_t *v = json_object_get(in, "policies"), *arr, *p;
	size_t i, n;

	if (!json_is_array(v) && !json_is_object(v)) {
		tr_fail(c, "no \"policies\" array: not a TLS report");
		return -1;
	}
	arr = json_array();
	json_object_set_new(out, "policies", arr);
	n = tr_array_len(c, v, "policies");
	for (i = 0; i < n; i++) {
		if ((p = tr_policy(c, tr_array_at(v, i), i)) == NULL)
			return -1;
		json_array_append_new(arr, p);
	}
	return 0;
}

static void
tr_date_range(struct tr_ctx *c, const json_t *in, json_t *out)
{
	json_t *v = json_object_get(in, "date-range"), *dr;

	if (!json_is_object(v)) {
		tr_warn(c, "date-range: missing or not an object");
		return;
	}
	dr = json_object();
	tr_str(c, v, dr, "start-datetime", "date-range.", true);
	tr_str(c, v, dr, "end-datetime", "date-range.", true);
	json_object_set_new(out, "date-range", dr);
}

/* The report rebuilt with the types of §4.4; NULL (c->error) if hopeless. */
static json_t *
tr_normalize(struct tr_ctx *c, const json_t *in)
{
	json_t *out;

	if (!json_is_object(in)) {
		tr_fail(c,
		    "the JSON is a%s %s, not an object: not a TLS report",
		    json_is_array(in) || json_is_object(in) ? "n" : "",
		    tr_type_name(in));
		return NULL;
	}
	out = json_object();
	tr_str(c, in, out, "organization-name", "", true);
	tr_date_range(c, in, out);
	tr_str(c, in, out, "contact-info", "", true);
	tr_str(c, in, out, "report-id", "", true);
	if (tr_policies(c, in, out) == -1) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- the summary, one entry per policy ------------------------------------
 */

/*
 * RFC 8460 §4: "Reporters may report multiple applied policies (for
 * example, an MTA-STS policy and a DANE TLSA record for the same domain and
 * MX)". Microsoft does, listing the same sessions under its "sts" and its
 * "tlsa" policy, so policies are never added up: each keeps its own counts.
 */

static void
tr_sum(json_t *obj, const char *key, json_int_t n)
{
	json_int_t v = json_integer_value(json_object_get(obj, key));

	json_object_set_new(
	    obj, key, json_integer(v > LLONG_MAX - n ? LLONG_MAX : v + n));
}

/* The entry for key in list, found through index or made by make(). */
static json_t *
tr_group(json_t *index, json_t *list, const char *key,
    json_t *(*make)(const char *key))
{
	json_t *e = json_object_get(index, key);

	if (e == NULL) {
		e = make(key);
		json_array_append_new(list, e);
		json_object_set(index, key, e);
	}
	return e;
}

static json_t *
tr_make_failure(const char *key)
{
	return json_pack("{s:o, s:I, s:[]}", "result-type",
	    *key != '\0' ? json_string(key) : json_null(), "sessions",
	    (json_int_t)0, "details");
}

/* Group the failure details of one policy by result type into its entry;
 * returns their failed-session-count summed. */
static json_int_t
tr_summary_failures(json_t *ent, const json_t *details)
{
	json_t *rt_index = json_object(), *d, *f;
	json_int_t n, total = 0;
	const char *rt;
	size_t i;

	json_array_foreach(details, i, d)
	{
		rt = json_string_value(json_object_get(d, "result-type"));
		f = tr_group(rt_index, json_object_get(ent, "failures"),
		    rt != NULL ? rt : "", tr_make_failure);
		n = json_integer_value(
		    json_object_get(d, "failed-session-count"));
		tr_sum(f, "sessions", n);
		total = total > LLONG_MAX - n ? LLONG_MAX : total + n;
		json_array_append(json_object_get(f, "details"), d);
	}
	json_decref(rt_index);
	return total;
}

/*
 * The entry of one policy: its type, domain and mx-host, its own counts,
 * its failures by result type, and whether its total-failure-session-count
 * is the sum of its failure-details' failed-session-count (RFC 8460 §4.4
 * gives both; real reports, e.g. from Mail.ru, disagree).
 */
static json_t *
tr_summary_entry(const json_t *pol)
{
	const json_t *desc = json_object_get(pol, "policy");
	const json_t *sum = json_object_get(pol, "summary");
	const json_t *dom = json_object_get(desc, "policy-domain");
	json_int_t bad, det;
	json_t *e;

	bad = json_integer_value(
	    json_object_get(sum, "total-failure-session-count"));
	e = json_pack("{s:O*, s:O, s:O*, s:I, s:I, s:[]}", "policy-type",
	    json_object_get(desc, "policy-type"), "policy-domain",
	    dom != NULL ? dom : json_null(), "mx-host",
	    json_object_get(desc, "mx-host"), "successful",
	    json_integer_value(
	        json_object_get(sum, "total-successful-session-count")),
	    "failed", bad, "failures");
	det = tr_summary_failures(e, json_object_get(pol, "failure-details"));
	json_object_set_new(e, "failure-details-sessions", json_integer(det));
	json_object_set_new(e, "consistent", json_boolean(det == bad));
	return e;
}

/* One entry per policy, in the order of the report. */
static json_t *
tr_summary(const json_t *report)
{
	json_t *list = json_array(), *pol;
	size_t i;

	json_array_foreach(json_object_get(report, "policies"), i, pol)
	    json_array_append_new(list, tr_summary_entry(pol));
	return list;
}

/* Whether some policy's totals disagree with its failure details. */
static bool
tr_inconsistent(const json_t *summary)
{
	const json_t *e;
	size_t i;

	json_array_foreach(summary, i,
	    e) if (json_is_false(json_object_get(e, "consistent"))) return true;
	return false;
}

/* ---- finding the report: transfer encodings, gzip, MIME ------------------ */

/* Base64 (RFC 2045 §6.8): line breaks and other junk skipped, stop at
 * '='. -1 when the output passes the cap. */
static int
tr_b64_decode(const uint8_t *p, size_t n, struct buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i;
	int v;

	for (i = 0; i < n && p[i] != '='; i++) {
		if ((v = str_b64_value(p[i])) < 0)
			continue;
		acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (buf_addc(out, (char)((acc >> bits) & 0xff)) == -1)
				return -1;
		}
	}
	return 0;
}

/* Quoted-printable (RFC 2045 §6.7); a malformed '=' is kept as it is. */
static int
tr_qp_decode(const uint8_t *p, size_t n, struct buf *out)
{
	size_t i;
	int hi, lo, rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		if (p[i] != '=') {
			rc = buf_addc(out, (char)p[i]);
		} else if (i + 1 < n && p[i + 1] == '\n') {
			i++;
		} else if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 2;
		} else if (i + 2 < n && (hi = str_hex_value(p[i + 1])) >= 0 &&
		    (lo = str_hex_value(p[i + 2])) >= 0) {
			rc = buf_addc(out, (char)(hi * 16 + lo));
			i += 2;
		} else {
			rc = buf_addc(out, '=');
		}
	}
	return rc;
}

/* Inflate gzip data into out (at most TLSRPT_INFLATE_MAX octets). */
static int
tr_gunzip(struct tr_ctx *c, const uint8_t *p, size_t n, struct buf *out)
{
	z_stream z;
	uint8_t chunk[TR_INFLATE_BUF];
	int rc;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		panic("tlsrpt: inflateInit2 failed");
	z.next_in = p;
	z.avail_in = (uInt)(n > UINT_MAX ? UINT_MAX : n);
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = inflate(&z, Z_NO_FLUSH);
		if ((rc == Z_OK || rc == Z_STREAM_END) &&
		    buf_add(out, chunk, sizeof(chunk) - z.avail_out) == -1) {
			tr_fail(c,
			    "gzip: inflates to more than %d MiB (a gzip "
			    "bomb?)",
			    TLSRPT_INFLATE_MAX / (1024 * 1024));
			rc = Z_MEM_ERROR;
		}
	} while (rc == Z_OK);
	if (rc == Z_STREAM_END && z.avail_in > 0)
		tr_warn(c,
		    "gzip: %u octets after the end of the stream "
		    "ignored",
		    z.avail_in);
	if (rc == Z_BUF_ERROR)
		tr_fail(c, "gzip: truncated data (the stream ends early)");
	else if (rc != Z_STREAM_END)
		tr_fail(c, "gzip: corrupt data (%s)",
		    z.msg != NULL ? z.msg : "inflate failed");
	inflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

/* The media type of a Content-Type value, lowercase ("text/plain" when
 * absent). Returns new. */
static char *
tr_mime_type(const char *ct)
{
	char *t, *r;

	if (ct == NULL)
		return xstrdup("text/plain");
	t = xstrndup(ct, strcspn(ct, ";"));
	r = xstrdup(str_trim(t));
	free(t);
	str_lower(r);
	return r;
}

/* Length of a MIME token at s (RFC 2045 §5.1). */
static size_t
tr_token_len(const char *s)
{
	return strcspn(s, " \t;=\"");
}

/* A quoted-string at s (after the quote) into out; returns the end. */
static const char *
tr_quoted(const char *s, struct buf *out)
{
	for (; *s != '\0' && *s != '"'; s++) {
		if (*s == '\\' && s[1] != '\0')
			s++;
		buf_addc(out, *s);
	}
	return *s == '"' ? s + 1 : s;
}

/* The value of parameter name in a Content-Type or Content-Disposition
 * value, unquoted. Returns new, or NULL. */
static char *
tr_mime_param(const char *v, const char *name)
{
	const char *s = strchr(v, ';');
	struct buf val;
	size_t n;
	bool match;

	buf_init(&val, TR_HDR_MAX);
	while (s != NULL && *s != '\0') {
		s += strspn(s, "; \t");
		n = tr_token_len(s);
		match = n == strlen(name) && strncasecmp(s, name, n) == 0;
		s += n;
		s += strspn(s, " \t");
		if (*s != '=') {
			s = strchr(s, ';'); /* not a parameter: skip it */
			continue;
		}
		s += 1 + strspn(s + 1, " \t");
		buf_reset(&val);
		if (*s == '"') {
			s = tr_quoted(s + 1, &val);
		} else {
			n = tr_token_len(s);
			buf_add(&val, s, n);
			s += n;
		}
		if (match)
			return buf_steal(&val);
		s = strchr(s, ';');
	}
	buf_free(&val);
	return NULL;
}

static bool
tr_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Is a part of this type and file name the report? The registered types,
 * or a generic type whose file name says report (with a warning). */
static bool
tr_is_report(
    struct tr_ctx *c, const char *type, const uint8_t *part, size_t len)
{
	char *cd, *fn = NULL, *ct;
	bool yes = false;

	if (strcmp(type, "application/tlsrpt+gzip") == 0 ||
	    strcmp(type, "application/tlsrpt+json") == 0)
		return true;
	if (strncmp(type, "application/", 12) != 0)
		return false;
	cd = dsn_hdr_get(part, len, "Content-Disposition", TR_HDR_MAX);
	if (cd != NULL)
		fn = tr_mime_param(cd, "filename");
	if (fn == NULL &&
	    (ct = dsn_hdr_get(part, len, "Content-Type", TR_HDR_MAX)) != NULL) {
		fn = tr_mime_param(ct, "name");
		free(ct);
	}
	if (fn != NULL &&
	    (tr_ends_with(fn, ".json") || tr_ends_with(fn, ".json.gz"))) {
		tr_warn(c,
		    "email: the report part is %s, not "
		    "application/tlsrpt+gzip or +json",
		    type);
		yes = true;
	}
	free(cd);
	free(fn);
	return yes;
}

/* Undo the Content-Transfer-Encoding of the part body into out. */
static int
tr_part_decode(struct tr_ctx *c, const uint8_t *part, size_t len, size_t body,
    struct buf *out)
{
	char *cte = dsn_hdr_get(part, len, "Content-Transfer-Encoding", 64);
	int rc;

	if (cte != NULL && str_eq_ci(cte, "base64"))
		rc = tr_b64_decode(part + body, len - body, out);
	else if (cte != NULL && str_eq_ci(cte, "quoted-printable"))
		rc = tr_qp_decode(part + body, len - body, out);
	else
		rc = buf_add(out, part + body, len - body);
	free(cte);
	if (rc == -1)
		tr_fail(c, "email: the report part is larger than %d MiB",
		    TLSRPT_INFLATE_MAX / (1024 * 1024));
	return rc;
}

static int tr_mime_find(struct tr_ctx *c, const uint8_t *msg, size_t len,
    int depth, struct buf *out);

/* Is the line [p, p+n) the delimiter "--boundary" (close: "--boundary--"),
 * transport padding allowed after it (RFC 2046 §5.1.1)? */
static bool
tr_delimiter(const uint8_t *p, size_t n, const char *bd, bool *close)
{
	size_t bl = strlen(bd), i;

	if (n < bl + 2 || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, bd, bl) != 0)
		return false;
	i = bl + 2;
	*close = i + 1 < n && p[i] == '-' && p[i + 1] == '-';
	for (i += *close ? 2 : 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* Look for the report in the parts of a multipart body. An unclosed last
 * part (a truncated message) is still looked at. */
static int
tr_mime_parts(struct tr_ctx *c, const uint8_t *p, size_t n, const char *bd,
    int depth, struct buf *out)
{
	const uint8_t *nl;
	size_t off = 0, next, start = SIZE_MAX, end;
	bool close = false;
	int rc;

	while (off < n && !close) {
		nl = memchr(p + off, '\n', n - off);
		next = nl != NULL ? (size_t)(nl - p) + 1 : n;
		if (tr_delimiter(
		        p + off, next - off - (nl ? 1 : 0), bd, &close)) {
			if (start != SIZE_MAX) {
				/* The line end before it belongs to it. */
				end = off > start && p[off - 1] == '\n' ?
				    off - 1 :
				    off;
				end -=
				    end > start && p[end - 1] == '\r' ? 1 : 0;
				rc = tr_mime_find(
				    c, p + start, end - start, depth + 1, out);
				if (rc != 0)
					return rc;
			}
			start = next;
		}
		off = next;
	}
	if (!close && start != SIZE_MAX && start < n)
		return tr_mime_find(c, p + start, n - start, depth + 1, out);
	return 0;
}

/*
 * Find the report in the message or part msg: 1 and the decoded part in
 * out, 0 when it has none, -1 on a fatal error (c->error).
 */
static int
tr_mime_find(struct tr_ctx *c, const uint8_t *msg, size_t len, int depth,
    struct buf *out)
{
	char *ct = dsn_hdr_get(msg, len, "Content-Type", TR_HDR_MAX);
	char *type = tr_mime_type(ct), *bd;
	size_t body;
	int rc = 0;

	dsn_hdr_len(msg, len, &body);
	if (depth > TR_MIME_DEPTH) {
		rc = 0;
	} else if (strncmp(type, "multipart/", 10) == 0) {
		if ((bd = tr_mime_param(ct, "boundary")) != NULL && *bd != '\0')
			rc = tr_mime_parts(
			    c, msg + body, len - body, bd, depth, out);
		free(bd);
	} else if (strcmp(type, "message/rfc822") == 0) {
		rc = tr_mime_find(c, msg + body, len - body, depth + 1, out);
		if (rc == 1 && c->holder == NULL) {
			/* The deepest message holding the report. */
			c->holder = msg + body;
			c->holder_len = len - body;
		}
	} else if (tr_is_report(c, type, msg, len)) {
		rc = tr_part_decode(c, msg, len, body, out) == -1 ? -1 : 1;
	}
	free(ct);
	free(type);
	return rc;
}

/* ---- sniffing and the whole ---------------------------------------------- */

enum tr_kind {
	TR_KIND_NONE,
	TR_KIND_JSON,
	TR_KIND_GZIP,
	TR_KIND_EMAIL,
};

/* Skip a UTF-8 byte order mark and white space. */
static size_t
tr_skip_ws(const uint8_t *p, size_t n)
{
	size_t i = 0;

	if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		i = 3;
	while (i < n &&
	    (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
		i++;
	return i;
}

/* What the data is, from its first octets. An mbox "From " line before a
 * message is skipped (*off). */
static enum tr_kind
tr_sniff(const uint8_t *p, size_t n, size_t *off)
{
	size_t i = tr_skip_ws(p, n), body;
	const uint8_t *nl;

	*off = 0;
	if (n == 0)
		return TR_KIND_NONE;
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return TR_KIND_GZIP;
	if (i < n && (p[i] == '{' || p[i] == '['))
		return TR_KIND_JSON;
	if (n > 5 && memcmp(p, "From ", 5) == 0 &&
	    (nl = memchr(p, '\n', n)) != NULL)
		*off = (size_t)(nl - p) + 1;
	if (dsn_hdr_len(p + *off, n - *off, &body) > 0)
		return TR_KIND_EMAIL;
	return TR_KIND_NONE;
}

/* The header fields of the report email, for the normalized form. */
static json_t *
tr_email_meta(struct tr_ctx *c, const uint8_t *msg, size_t len)
{
	static const char *const names[] = { "From", "Date", "Subject",
		"Message-ID", "TLS-Report-Domain", "TLS-Report-Submitter",
		NULL };
	json_t *m = json_object();
	char *v, *key;
	size_t i;

	for (i = 0; names[i] != NULL; i++) {
		if ((v = dsn_hdr_get(msg, len, names[i], TR_HDR_MAX)) == NULL)
			continue;
		key = xstrdup(names[i]);
		str_lower(key);
		json_object_set_new(m, key, json_string(v));
		free(key);
		free(v);
	}
	v = dsn_hdr_get(msg, len, "DKIM-Signature", 8);
	json_object_set_new(m, "dkim-signature", json_boolean(v != NULL));
	if (v == NULL)
		tr_warn(c,
		    "email: no DKIM-Signature (RFC 8460 §3: such "
		    "reports are to be ignored)");
	free(v);
	return m;
}

/* The report part of an email, its transfer encoding undone, into out. */
static int
tr_from_email(struct tr_ctx *c, const uint8_t *msg, size_t len, struct buf *out)
{
	int rc = tr_mime_find(c, msg, len, 0, out);

	if (rc == 0)
		tr_fail(c,
		    "email: no application/tlsrpt+gzip or "
		    "application/tlsrpt+json part");
	return rc == 1 ? 0 : -1;
}

/*
 * An upper bound of the objects and arrays in JSON text. jansson needs a
 * few hundred octets for each, so "[{},{},...]" of 10 MiB would take
 * gigabytes; real reports aggregate and stay far below the cap.
 */
static size_t
tr_nodes(const uint8_t *p, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += p[i] == '{' || p[i] == '[';
	return k;
}

/* JSON text to the normalized report. */
static json_t *
tr_from_json(struct tr_ctx *c, const uint8_t *p, size_t n)
{
	json_error_t jerr;
	json_t *in, *out;

	/* jansson takes no byte order mark; some writers put one. */
	if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
		p += 3;
		n -= 3;
	}
	if (tr_nodes(p, n) > TR_NODES_MAX) {
		tr_fail(
		    c, "JSON: more than %d objects and arrays", TR_NODES_MAX);
		return NULL;
	}
	if ((in = json_loadb((const char *)p, n, 0, &jerr)) == NULL) {
		tr_fail(c, "JSON: %s (line %d, column %d)", jerr.text,
		    jerr.line, jerr.column);
		return NULL;
	}
	out = tr_normalize(c, in);
	json_decref(in);
	return out;
}

/* Inflate when it is gzip (*gz), then read the JSON. what names the
 * data in errors. */
static json_t *
tr_unwrap(struct tr_ctx *c, const uint8_t *p, size_t n, const char *what,
    struct buf *inf, bool *gz)
{
	enum tr_kind kind;
	size_t off;

	kind = tr_sniff(p, n, &off);
	if ((*gz = kind == TR_KIND_GZIP)) {
		if (tr_gunzip(c, p, n, inf) == -1)
			return NULL;
		p = (const uint8_t *)buf_cstr(inf);
		n = inf->len;
		kind = tr_sniff(p, n, &off);
	}
	if (kind != TR_KIND_JSON) {
		tr_fail(c, "%s is not JSON%s", what,
		    *gz ? " once inflated" : " or gzip");
		return NULL;
	}
	return tr_from_json(c, p, n);
}

/* Checks across the email and the report: RFC 8460 §5.3 wants the
 * submitter to be the domain of contact-info. */
static void
tr_cross_check(struct tr_ctx *c, const json_t *email, const json_t *report)
{
	const char *sub, *ci, *at;

	sub = json_string_value(json_object_get(email, "tls-report-submitter"));
	ci = json_string_value(json_object_get(report, "contact-info"));
	if (email != NULL && sub == NULL)
		tr_warn(c, "email: no TLS-Report-Submitter field");
	if (sub == NULL || ci == NULL)
		return;
	at = strrchr(ci, '@');
	if (at == NULL || !str_eq_ci(at + 1, sub))
		tr_warn(c,
		    "email: TLS-Report-Submitter %s is not the domain "
		    "of contact-info",
		    sub);
}

/*
 * The report part of an email into dec, and the header fields of the
 * message that holds it (the forwarded one for a message/rfc822 part).
 * NULL on a fatal error.
 */
static json_t *
tr_email(struct tr_ctx *c, const uint8_t *p, size_t n, struct buf *dec)
{
	json_t *email;

	if (tr_from_email(c, p, n, dec) == -1)
		return NULL;
	if (c->holder == NULL) {
		c->holder = p;
		c->holder_len = n;
	}
	email = tr_email_meta(c, c->holder, c->holder_len);
	c->domain_hint =
	    json_string_value(json_object_get(email, "tls-report-domain"));
	return email;
}

static json_t *
tr_document(struct tr_ctx *c, const uint8_t *p, size_t n, enum tr_kind kind)
{
	struct buf dec, inf;
	json_t *email = NULL, *report = NULL, *doc = NULL;
	const char *what = "input", *format;
	bool gz = false;

	buf_init(&dec, TLSRPT_INFLATE_MAX);
	buf_init(&inf, TLSRPT_INFLATE_MAX);
	if (kind == TR_KIND_EMAIL) {
		email = tr_email(c, p, n, &dec);
		p = (const uint8_t *)buf_cstr(&dec);
		n = dec.len;
		what = "email: the report part";
	}
	if (kind != TR_KIND_EMAIL || email != NULL)
		report = tr_unwrap(c, p, n, what, &inf, &gz);
	if (report != NULL) {
		tr_cross_check(c, email, report);
		if (kind == TR_KIND_EMAIL)
			format = gz ? "email/gzip" : "email/json";
		else
			format = gz ? "gzip" : "json";
		doc =
		    json_pack("{s:s, s:O*}", "format", format, "email", email);
		json_object_set_new(doc, "report", report);
		json_object_set_new(doc, "summary", tr_summary(report));
		json_object_set_new(doc, "inconsistent",
		    json_boolean(
		        tr_inconsistent(json_object_get(doc, "summary"))));
	}
	json_decref(email);
	buf_free(&dec);
	buf_free(&inf);
	return doc;
}

struct tlsrpt_report *
tlsrpt_parse(const uint8_t *p, size_t len, char **errstr)
{
	struct tr_ctx c;
	struct tlsrpt_report *r;
	enum tr_kind kind;
	size_t off;
	json_t *doc = NULL;

	*errstr = NULL;
	memset(&c, 0, sizeof(c));
	c.warnings = json_array();
	if (len == 0)
		tr_fail(&c, "empty input");
	else if (len > TLSRPT_INPUT_MAX)
		tr_fail(&c, "larger than %d MiB", TLSRPT_INPUT_MAX / 1048576);
	else if ((kind = tr_sniff(p, len, &off)) == TR_KIND_NONE)
		tr_fail(&c,
		    "not a TLS report: neither JSON, gzip nor an email "
		    "message");
	else
		doc = tr_document(&c, p + off, len - off, kind);
	if (doc == NULL) {
		*errstr = c.error != NULL ? c.error : xstrdup("unreadable");
		json_decref(c.warnings);
		return NULL;
	}
	if (c.nwarn > TR_WARN_MAX)
		json_array_append_new(c.warnings,
		    json_sprintf(
		        "... and %zu more warnings", c.nwarn - TR_WARN_MAX));
	json_object_set_new(doc, "warnings", c.warnings);
	free(c.error);
	r = xcalloc(1, sizeof(*r));
	r->doc = doc;
	return r;
}

void
tlsrpt_report_free(struct tlsrpt_report *r)
{
	if (r == NULL)
		return;
	json_decref(r->doc);
	free(r);
}

const json_t *
tlsrpt_report_json(const struct tlsrpt_report *r)
{
	return r->doc;
}

size_t
tlsrpt_report_nwarnings(const struct tlsrpt_report *r)
{
	return json_array_size(json_object_get(r->doc, "warnings"));
}

const char *
tlsrpt_report_warning(const struct tlsrpt_report *r, size_t i)
{
	return json_string_value(
	    json_array_get(json_object_get(r->doc, "warnings"), i));
}

/* ---- printing ------------------------------------------------------------ */

void
tlsrpt_fputs_clean(FILE *fp, const char *s)
{
	const uint8_t *p = (const uint8_t *)(s != NULL ? s : "-");

	for (; *p != '\0'; p++) {
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fputc('?', fp);
			p++;
		} else {
			fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, fp);
		}
	}
}

static const char *
tr_get(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_int_t
tr_int(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void
tr_print_head(FILE *fp, const json_t *doc)
{
	const json_t *rep = json_object_get(doc, "report");
	const json_t *dr = json_object_get(rep, "date-range");
	const json_t *em = json_object_get(doc, "email");

	fprintf(fp, "  format:       %s\n", tr_get(doc, "format"));
	fputs("  organization: ", fp);
	tlsrpt_fputs_clean(fp, tr_get(rep, "organization-name"));
	fputs(" <", fp);
	tlsrpt_fputs_clean(fp, tr_get(rep, "contact-info"));
	fputs(">\n  report-id:    ", fp);
	tlsrpt_fputs_clean(fp, tr_get(rep, "report-id"));
	fputs("\n  period:       ", fp);
	tlsrpt_fputs_clean(fp, tr_get(dr, "start-datetime"));
	fputs(" to ", fp);
	tlsrpt_fputs_clean(fp, tr_get(dr, "end-datetime"));
	fputc('\n', fp);
	if (em == NULL)
		return;
	fputs("  email:        TLS-Report-Submitter ", fp);
	tlsrpt_fputs_clean(fp, tr_get(em, "tls-report-submitter"));
	fputs(", TLS-Report-Domain ", fp);
	tlsrpt_fputs_clean(fp, tr_get(em, "tls-report-domain"));
	fprintf(fp, ", DKIM-Signature %s\n",
	    json_is_true(json_object_get(em, "dkim-signature")) ?
	        "present (not verified here)" :
	        "ABSENT");
}

static void
tr_print_policy(FILE *fp, const json_t *p)
{
	const json_t *mx = json_object_get(p, "mx-host"), *h;
	const char *dom = tr_get(p, "policy-domain");
	size_t i;

	fputs("\n  policy ", fp);
	tlsrpt_fputs_clean(fp, tr_get(p, "policy-type"));
	fputc(' ', fp);
	tlsrpt_fputs_clean(fp, dom != NULL ? dom : "(no policy-domain)");
	if (json_array_size(mx) > 0) {
		fputs(" (mx-host", fp);
		json_array_foreach(mx, i, h)
		{
			fputs(i == 0 ? " " : ", ", fp);
			tlsrpt_fputs_clean(fp, json_string_value(h));
		}
		fputc(')', fp);
	}
	fprintf(fp,
	    ": %" JSON_INTEGER_FORMAT " successful, %" JSON_INTEGER_FORMAT
	    " failed sessions\n",
	    tr_int(p, "successful"), tr_int(p, "failed"));
}

static void
tr_print_detail(FILE *fp, const json_t *d)
{
	const char *reason = tr_get(d, "failure-reason-code");

	fprintf(fp, "      %6" JSON_INTEGER_FORMAT "  ",
	    tr_int(d, "failed-session-count"));
	tlsrpt_fputs_clean(fp, tr_get(d, "receiving-mx-hostname"));
	fputs(" [", fp);
	tlsrpt_fputs_clean(fp, tr_get(d, "receiving-ip"));
	fputs("] from ", fp);
	tlsrpt_fputs_clean(fp, tr_get(d, "sending-mta-ip"));
	if (reason != NULL) {
		fputs(": ", fp);
		tlsrpt_fputs_clean(fp, reason);
	}
	fputc('\n', fp);
}

/* One policy: its own counts, never added to another's (RFC 8460 §4). */
static void
tr_print_entry(FILE *fp, const json_t *e)
{
	const json_t *f, *d;
	size_t i, j;

	tr_print_policy(fp, e);
	json_array_foreach(json_object_get(e, "failures"), i, f)
	{
		fputs("    ", fp);
		tlsrpt_fputs_clean(fp,
		    tr_get(f, "result-type") != NULL ?
		        tr_get(f, "result-type") :
		        "(no result-type)");
		fprintf(fp, ": %" JSON_INTEGER_FORMAT " session%s\n",
		    tr_int(f, "sessions"),
		    tr_int(f, "sessions") == 1 ? "" : "s");
		json_array_foreach(json_object_get(f, "details"), j, d)
		{
			tr_print_detail(fp, d);
		}
	}
	if (json_is_false(json_object_get(e, "consistent")))
		fprintf(fp,
		    "    WARNING: inconsistent report: "
		    "total-failure-session-count is %" JSON_INTEGER_FORMAT
		    " but the failure-details add up to %" JSON_INTEGER_FORMAT
		    "\n",
		    tr_int(e, "failed"), tr_int(e, "failure-details-sessions"));
}

/* A note for each domain reported under more than one policy: those
 * counts may be the same sessions twice, so they are not added up. */
static void
tr_print_notes(FILE *fp, const json_t *summary)
{
	json_t *count = json_object(), *e;
	const char *dom;
	json_int_t n;
	size_t i;

	json_array_foreach(summary, i, e)
	{
		if ((dom = tr_get(e, "policy-domain")) == NULL)
			continue;
		n = json_integer_value(json_object_get(count, dom));
		json_object_set_new(count, dom, json_integer(n + 1));
	}
	json_array_foreach(summary, i, e)
	{
		if ((dom = tr_get(e, "policy-domain")) == NULL ||
		    (n = json_integer_value(json_object_get(count, dom))) < 2)
			continue;
		fputs("  note:         ", fp);
		tlsrpt_fputs_clean(fp, dom);
		fprintf(fp,
		    " is reported under %" JSON_INTEGER_FORMAT
		    " policies; a sender may count the same sessions under "
		    "each (RFC 8460 §4), so they are not added up\n",
		    n);
		json_object_set_new(count, dom, json_integer(0));
	}
	json_decref(count);
}

void
tlsrpt_report_print(FILE *fp, const struct tlsrpt_report *r)
{
	const json_t *v, *sum = json_object_get(r->doc, "summary");
	size_t i;

	tr_print_head(fp, r->doc);
	json_array_foreach(json_object_get(r->doc, "warnings"), i, v)
	{
		fputs("  warning:      ", fp);
		tlsrpt_fputs_clean(fp, json_string_value(v));
		fputc('\n', fp);
	}
	if (json_is_true(json_object_get(r->doc, "inconsistent")))
		fputs("  WARNING:      inconsistent report: the session totals "
		      "of a policy disagree with its failure-details\n",
		    fp);
	tr_print_notes(fp, sum);
	json_array_foreach(sum, i, v) tr_print_entry(fp, v);
}
