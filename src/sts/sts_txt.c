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

#include "core/txtrec.h"

#define STS_TXT_VERSION "v=STSv1"

/* sts-id = "id=" 1*32(ALPHA / DIGIT): copy the value to id. */
static const char *
sts_txt_id(struct str v, char *id)
{
	size_t i;

	if (v.len == 0 || v.len > STS_ID_MAX)
		return "id not 1 to 32 letters and digits";
	for (i = 0; i < v.len; i++)
		if (!((v.p[i] >= 'a' && v.p[i] <= 'z') ||
		        (v.p[i] >= 'A' && v.p[i] <= 'Z') ||
		        (v.p[i] >= '0' && v.p[i] <= '9')))
			return "id not 1 to 32 letters and digits";
	memcpy(id, v.p, v.len);
	id[v.len] = '\0';
	return NULL;
}

int
sts_txt_parse(const char *txt, size_t len, char *id, const char **errstr)
{
	struct txtrec r;
	struct str name, value;
	const char *err = NULL;
	bool have_id = false;
	int rc;

	if (!txtrec_begin(&r, txt, len, STS_TXT_VERSION))
		return 0;
	while ((rc = txtrec_next(&r, &name, &value, &err)) == 1) {
		/* The first id counts, later ones are ignored (§3.2, last
		 * paragraph, read as applying to the record too). */
		if (txtrec_is(name, "id") && !have_id) {
			if ((err = sts_txt_id(value, id)) != NULL)
				break;
			have_id = true;
		} else if (!txtrec_ext_value_ok(value)) {
			/* a later id is an sts-extension by the ABNF */
			err = "malformed field value";
			break;
		}
	}
	if (err == NULL && !have_id)
		err = "id missing";
	if (err != NULL) {
		*errstr = err;
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
