/*
 * tlsrpt_rua: the _smtp._tls TXT record of RFC 8460 §3, parsed after its
 * ABNF (tlsrpt-record, field-delim, tlsrpt-rua, tlsrpt-extension).
 */
#include "tlsrpt/tlsrpt_rua.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/txtrec.h"
#include "core/xmalloc.h"

#define RUA_VERSION  "v=TLSRPTv1"
#define RUA_ADDR_MAX 254 /* RFC 5321 §4.5.3.1.3 path limit, less <> */

struct rua_list {
	struct tlsrpt_rua v[TLSRPT_RUA_MAX];
	size_t n;
};

const char *
tlsrpt_rua_kind_str(enum tlsrpt_rua_kind k)
{
	return k == TLSRPT_RUA_MAILTO ? "mailto" : "https";
}

static bool
rua_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool
rua_addr_ok(const char *a)
{
	const char *at = strchr(a, '@');
	size_t i;

	/* local@domain, one '@' (quoted local parts are not taken) */
	if (at == NULL || at == a || at[1] == '\0' || strrchr(a, '@') != at ||
	    strlen(a) > RUA_ADDR_MAX)
		return false;
	for (i = 0; a[i] != '\0'; i++)
		if ((unsigned char)a[i] <= 0x20 ||
		    (unsigned char)a[i] >= 0x7f ||
		    strchr("<>()[]\\,;:\"", a[i]) != NULL)
			return false;
	return true;
}

static void
rua_add(struct rua_list *l, enum tlsrpt_rua_kind kind, const char *target)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].kind == kind && strcmp(l->v[i].target, target) == 0)
			return;
	if (l->n == TLSRPT_RUA_MAX)
		return;
	l->v[l->n].kind = kind;
	l->v[l->n].target = xstrdup(target);
	l->n++;
}

/* RFC 6068: to = addr-spec *("," addr-spec), percent-encoded. */
static int
rua_mailto(struct rua_list *l, const char *uri, size_t n)
{
	struct buf b;
	char **addrs;
	size_t i, na;
	int h1, h2, rc = 0;

	buf_init(&b, 4096);
	for (i = 0; i < n && uri[i] != '?'; i++) {
		if (uri[i] == '%' && i + 2 < n &&
		    (h1 = str_hex_value(uri[i + 1])) >= 0 &&
		    (h2 = str_hex_value(uri[i + 2])) >= 0) {
			buf_addc(&b, (char)(h1 * 16 + h2));
			i += 2;
		} else
			buf_addc(&b, uri[i]);
	}
	addrs = str_split_list(buf_cstr(&b), &na);
	for (i = 0; i < na; i++) {
		if (!rua_addr_ok(addrs[i]))
			rc = -1;
		else
			rua_add(l, TLSRPT_RUA_MAILTO, addrs[i]);
	}
	str_vec_free(addrs);
	buf_free(&b);
	return na > 0 ? rc : -1;
}

/* RFC 3986 §3.1: scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") ":" */
static bool
rua_has_scheme(const char *uri, size_t n)
{
	size_t i;

	if (n == 0 ||
	    !((uri[0] >= 'a' && uri[0] <= 'z') ||
	        (uri[0] >= 'A' && uri[0] <= 'Z')))
		return false;
	for (i = 1; i < n && uri[i] != ':'; i++)
		if (!((uri[i] >= 'a' && uri[i] <= 'z') ||
		        (uri[i] >= 'A' && uri[i] <= 'Z') ||
		        (uri[i] >= '0' && uri[i] <= '9') ||
		        strchr("+-.", uri[i]) != NULL))
			return false;
	return i < n;
}

/* One tlsrpt-uri of n octets. Unknown schemes are skipped (0); what is
 * not a URI at all (no scheme) is malformed (-1). */
static int
rua_uri(struct rua_list *l, const char *uri, size_t n)
{
	char *u;
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)uri[i] <= 0x20 ||
		    (unsigned char)uri[i] >= 0x7f)
			return -1;
	if (!rua_has_scheme(uri, n))
		return -1;
	if (n > 7 && strncasecmp(uri, "mailto:", 7) == 0)
		return rua_mailto(l, uri + 7, n - 7);
	if (n > 8 && strncasecmp(uri, "https://", 8) == 0) {
		u = xstrndup(uri, n);
		rua_add(l, TLSRPT_RUA_HTTPS, u);
		free(u);
	}
	return 0;
}

/*
 * tlsrpt-rua value: tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri); txtrec has
 * already refused whitespace at its ends.
 */
static int
rua_list(struct rua_list *l, struct str v)
{
	const char *s = v.p;
	size_t n = v.len, i = 0, start, end;

	while (i <= n) {
		while (i < n && rua_wsp(s[i]))
			i++;
		start = i;
		while (i < n && s[i] != ',')
			i++;
		end = i;
		while (end > start && rua_wsp(s[end - 1]))
			end--;
		if (end == start || rua_uri(l, s + start, end - start) == -1)
			return -1;
		i++; /* past the comma, or past the end */
	}
	return 0;
}

/*
 * The one v=TLSRPTv1 record, read by the grammar shared with _mta-sts
 * (core/txtrec.h). Every rua field counts: §3 lets a record "declare more
 * than one rua" and its ABNF lets the field repeat (docs/TLSRPT.md).
 * Returns NULL or a static complaint.
 */
static const char *
rua_fields(struct rua_list *l, const char *rec)
{
	struct txtrec r;
	struct str name, value;
	const char *err = NULL;
	bool have_rua = false;

	if (!txtrec_begin(&r, rec, strlen(rec), RUA_VERSION))
		return "no v=TLSRPTv1";
	while (txtrec_next(&r, &name, &value, &err) == 1) {
		if (txtrec_is(name, "rua")) {
			have_rua = true;
			if (rua_list(l, value) == -1)
				return "malformed rua URI";
		} else if (!txtrec_ext_value_ok(value))
			return "malformed field value";
	}
	if (err != NULL)
		return err;
	return have_rua ? NULL : "no rua field";
}

int
tlsrpt_rua_parse(
    const char *const *records, size_t n, struct tlsrpt_rua **out, char **why)
{
	struct rua_list l = { .n = 0 };
	const char *body = NULL, *err;
	size_t i, nv = 0;

	for (i = 0; i < n; i++) {
		struct txtrec r;

		/* §3: records not beginning with "v=TLSRPTv1;" are discarded */
		if (txtrec_begin(
		        &r, records[i], strlen(records[i]), RUA_VERSION)) {
			body = records[i];
			nv++;
		}
	}
	if (nv != 1) {
		*why = nv == 0 ? xstrdup("no v=TLSRPTv1 record") :
		                 xasprintf("%zu v=TLSRPTv1 records, RFC 8460 "
		                           "§3 wants exactly one",
		                     nv);
		return -1;
	}
	if ((err = rua_fields(&l, body)) != NULL || l.n == 0) {
		*why = xasprintf("malformed record (%s)",
		    err != NULL ? err : "no mailto: or https: destination");
		for (i = 0; i < l.n; i++)
			free(l.v[i].target);
		return -1;
	}
	*out = xcalloc(l.n, sizeof(**out));
	memcpy(*out, l.v, l.n * sizeof(**out));
	return (int)l.n;
}

void
tlsrpt_rua_free(struct tlsrpt_rua *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i].target);
	free(v);
}
