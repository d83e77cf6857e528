/*
 * sts_txt: the "_mta-sts" TXT record (RFC 8461 §3.1).
 *
 * The record is checked against the ABNF exactly: a record that is
 * syntactically invalid means "no available policy", so being lenient here
 * would make us enforce what the domain did not publish, and being strict
 * beyond the ABNF would drop what it did. Where the RFC says records not
 * beginning with "v=STSv1;" are discarded, we read the ";" as the ABNF's
 * sts-field-delim (*WSP ";" *WSP), the only reading under which every
 * ABNF-valid record is kept.
 */
#include "sts/sts.h"

#include <string.h>

#define STS_TXT_VERSION "v=STSv1"
#define STS_TXT_NAME    32 /* sts-ext-name: 1 + *31 */

struct sts_txt_cur {
	const char *p, *end;
};

static bool
sts_txt_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* sts-ext-value: 1*(%x21-3A / %x3C / %x3E-7E) */
static bool
sts_txt_value_char(char c)
{
	return c >= 0x21 && c <= 0x7e && c != '=' && c != ';';
}

static void
sts_txt_wsp(struct sts_txt_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* sts-field-delim = *WSP ";" *WSP; -1 (cursor unchanged) without ";". */
static int
sts_txt_delim(struct sts_txt_cur *c)
{
	struct sts_txt_cur save = *c;

	sts_txt_wsp(c);
	if (c->p == c->end || *c->p != ';') {
		*c = save;
		return -1;
	}
	c->p++;
	sts_txt_wsp(c);
	return 0;
}

/* sts-ext-name; returns its length, 0 when malformed. */
static size_t
sts_txt_name(struct sts_txt_cur *c)
{
	const char *start = c->p, *s = c->p;

	if (s == c->end || !sts_txt_alnum(*s))
		return 0;
	for (s++; s < c->end && s - start < STS_TXT_NAME; s++)
		if (!sts_txt_alnum(*s) && *s != '_' && *s != '-' && *s != '.')
			break;
	if (s == c->end || *s != '=')
		return 0;
	c->p = s + 1;
	return (size_t)(s - start);
}

/* sts-id = "id=" 1*32(ALPHA / DIGIT): copy the value to id. */
static const char *
sts_txt_id(const char *v, size_t n, char *id)
{
	size_t i;

	if (n == 0 || n > STS_ID_MAX)
		return "id not 1 to 32 letters and digits";
	for (i = 0; i < n; i++)
		if (!sts_txt_alnum(v[i]))
			return "id not 1 to 32 letters and digits";
	memcpy(id, v, n);
	id[n] = '\0';
	return NULL;
}

/* One sts-field; the first "id" is the record's id (§3.2 duplicates). */
static const char *
sts_txt_field(struct sts_txt_cur *c, char *id, bool *have_id)
{
	const char *name = c->p, *v;
	size_t nlen;

	if ((nlen = sts_txt_name(c)) == 0)
		return "malformed field name";
	v = c->p;
	while (c->p < c->end && sts_txt_value_char(*c->p))
		c->p++;
	if (c->p == v)
		return "empty field value";
	if (nlen != 2 || memcmp(name, "id", 2) != 0 || *have_id)
		return NULL;
	*have_id = true;
	return sts_txt_id(v, (size_t)(c->p - v), id);
}

/* Whether txt begins with sts-version followed by sts-field-delim. */
static bool
sts_txt_is_sts(const char *txt, size_t len, struct sts_txt_cur *c)
{
	size_t vlen = strlen(STS_TXT_VERSION);

	if (len < vlen || memcmp(txt, STS_TXT_VERSION, vlen) != 0)
		return false;
	c->p = txt + vlen;
	c->end = txt + len;
	return sts_txt_delim(c) == 0;
}

int
sts_txt_parse(const char *txt, size_t len, char *id, const char **errstr)
{
	struct sts_txt_cur c;
	const char *err;
	bool have_id = false;

	if (!sts_txt_is_sts(txt, len, &c))
		return 0;
	/* sts-version 1*(sts-field-delim sts-field) [sts-field-delim] */
	do {
		if (c.p == c.end)
			break; /* the optional trailing delimiter */
		if ((err = sts_txt_field(&c, id, &have_id)) != NULL) {
			*errstr = err;
			return -1;
		}
	} while (sts_txt_delim(&c) == 0);
	if (c.p != c.end) {
		*errstr = "malformed field separator";
		return -1;
	}
	if (!have_id) {
		*errstr = "id missing";
		return -1;
	}
	return 1;
}

int
sts_txt_select(char *const *txt, size_t n, char *id, const char **errstr)
{
	const char *err = NULL;
	size_t i, found = 0;
	int rc = 0;

	for (i = 0; i < n; i++) {
		char tmp[STS_ID_MAX + 1];
		const char *e = NULL;
		int r;

		if (txt[i] == NULL)
			continue;
		r = sts_txt_parse(txt[i], strlen(txt[i]), tmp, &e);
		if (r == 0)
			continue;
		if (found++ == 0) {
			rc = r;
			err = e;
			if (r == 1)
				memcpy(id, tmp, strlen(tmp) + 1);
		}
	}
	if (found == 0)
		*errstr = "no STSv1 TXT record";
	else if (found > 1)
		*errstr = "more than one STSv1 TXT record";
	else if (rc == -1)
		*errstr = err;
	return found == 1 && rc == 1 ? 0 : -1;
}
