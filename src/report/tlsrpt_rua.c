/*
 * tlsrpt_rua: the _smtp._tls TXT record of RFC 8460 §3, parsed after its
 * ABNF (tlsrpt-record, field-delim, tlsrpt-rua, tlsrpt-extension).
 */
#include "report/tlsrpt_rua.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"

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

/* tlsrpt-version field-delim: "v=TLSRPTv1" *WSP ";" (§3). */
static const char *
rua_versioned(const char *rec)
{
	static const char v[] = "v=TLSRPTv1";

	if (strncmp(rec, v, sizeof(v) - 1) != 0)
		return NULL;
	rec += sizeof(v) - 1;
	while (rua_wsp(*rec))
		rec++;
	return *rec == ';' ? rec + 1 : NULL;
}

/* tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / "."). */
static bool
rua_ext_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 32 || strchr("_-.", s[0]) != NULL)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || strchr("_-.", s[i])))
			return false;
	return true;
}

/* tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E). */
static bool
rua_ext_value_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ';' || s[i] == '=')
			return false;
	return n > 0;
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

/* One tlsrpt-uri of n octets. Unknown schemes are skipped (0). */
static int
rua_uri(struct rua_list *l, const char *uri, size_t n)
{
	char *u;
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)uri[i] <= 0x20 ||
		    (unsigned char)uri[i] >= 0x7f)
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

/* tlsrpt-rua value: tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri). */
static int
rua_list(struct rua_list *l, const char *s, size_t n)
{
	size_t i = 0, start, end;

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

/* The fields after the version. Returns NULL or a static complaint. */
static const char *
rua_fields(struct rua_list *l, const char *p)
{
	bool have_rua = false;
	const char *f, *eq, *end;
	size_t n;

	while (*p != '\0') {
		while (rua_wsp(*p))
			p++;
		f = p;
		end = f + strcspn(f, ";");
		p = *end == ';' ? end + 1 : end;
		while (end > f && rua_wsp(end[-1]))
			end--;
		if (end == f) {
			if (*p == '\0')
				break; /* the optional final field-delim */
			return "empty field";
		}
		if ((eq = memchr(f, '=', (size_t)(end - f))) == NULL)
			return "field without '='";
		n = (size_t)(eq - f);
		if (n == 3 && strncmp(f, "rua", 3) == 0) {
			if (have_rua)
				return "rua given twice";
			have_rua = true;
			if (rua_list(l, eq + 1, (size_t)(end - eq - 1)) == -1)
				return "malformed rua URI";
		} else if (!rua_ext_name_ok(f, n) ||
		    !rua_ext_value_ok(eq + 1, (size_t)(end - eq - 1)))
			return "malformed field";
	}
	return have_rua ? NULL : "no rua field";
}

int
tlsrpt_rua_parse(
    const char *const *records, size_t n, struct tlsrpt_rua **out, char **why)
{
	struct rua_list l = { .n = 0 };
	const char *body = NULL, *err;
	size_t i, nv = 0;

	for (i = 0; i < n; i++)
		if (rua_versioned(records[i]) != NULL) {
			body = rua_versioned(records[i]);
			nv++;
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
