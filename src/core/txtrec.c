/*
 * txtrec: one reading of the "v=VERSION; name=value; ..." TXT records of
 * MTA-STS (RFC 8461 §3.1) and TLS-RPT (RFC 8460 §3). Both ABNFs have the
 * same skeleton (version, field-delim, fields, optional final delimiter)
 * and the same extension production; reading them with two parsers let
 * one accept ";;" that the other refused. Here the skeleton is read once;
 * each record type only judges the values of the fields it knows.
 */
#include "core/txtrec.h"

#include <string.h>

#define TXTREC_NAME_MAX 32 /* (ALPHA / DIGIT) *31(...) */

static bool
txtrec_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
txtrec_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* field-delim = *WSP ";" *WSP; false (cursor unchanged) without ";". */
static bool
txtrec_delim(struct txtrec *r)
{
	const char *p = r->p;

	while (p < r->end && txtrec_wsp(*p))
		p++;
	if (p == r->end || *p != ';')
		return false;
	for (p++; p < r->end && txtrec_wsp(*p); p++)
		;
	r->p = p;
	return true;
}

bool
txtrec_begin(struct txtrec *r, const char *txt, size_t len, const char *version)
{
	size_t vlen = strlen(version);

	if (len < vlen || memcmp(txt, version, vlen) != 0)
		return false;
	r->p = txt + vlen;
	r->end = txt + len;
	r->nfields = 0;
	return txtrec_delim(r);
}

/* ext-name "=": the name's length, 0 when malformed (cursor unchanged). */
static size_t
txtrec_name(struct txtrec *r)
{
	const char *s = r->p;
	size_t n;

	if (s == r->end || !txtrec_alnum(*s))
		return 0;
	for (s++; s < r->end &&
	     (txtrec_alnum(*s) || *s == '_' || *s == '-' || *s == '.');
	     s++)
		;
	n = (size_t)(s - r->p);
	if (n > TXTREC_NAME_MAX || s == r->end || *s != '=')
		return 0;
	return n;
}

int
txtrec_next(
    struct txtrec *r, struct str *name, struct str *value, const char **errstr)
{
	const char *v, *e, *t;
	size_t n;

	if (r->p == r->end) {
		/* 1*(field-delim field): "v=STSv1;" alone has no field. */
		if (r->nfields > 0)
			return 0;
		*errstr = "no field";
		return -1;
	}
	if (*r->p == ';') {
		*errstr = "empty field";
		return -1;
	}
	if ((n = txtrec_name(r)) == 0) {
		*errstr = "malformed field name";
		return -1;
	}
	name->p = r->p;
	name->len = n;
	v = r->p + n + 1;
	for (e = v; e < r->end && *e != ';'; e++)
		;
	/* Whitespace before the ";" is the delimiter's, not the value's. */
	for (t = e; t > v && txtrec_wsp(t[-1]); t--)
		;
	if (t == v || txtrec_wsp(*v)) {
		*errstr = "empty field value";
		return -1;
	}
	if (e == r->end && t != e) {
		/* Trailing whitespace is a field-delim only with its ";". */
		*errstr = "malformed field separator";
		return -1;
	}
	value->p = v;
	value->len = (size_t)(t - v);
	r->p = e;
	if (e != r->end)
		txtrec_delim(r);
	r->nfields++;
	return 1;
}

bool
txtrec_ext_value_ok(struct str v)
{
	size_t i;

	if (v.len == 0)
		return false;
	for (i = 0; i < v.len; i++)
		if (v.p[i] < 0x21 || v.p[i] > 0x7e || v.p[i] == '=' ||
		    v.p[i] == ';')
			return false;
	return true;
}

bool
txtrec_is(struct str s, const char *w)
{
	return strlen(w) == s.len && memcmp(s.p, w, s.len) == 0;
}
