/*
 * sts_policy: the MTA-STS policy body (RFC 8461 §3.2) and MX host matching
 * (§4.1).
 *
 * The parser follows the ABNF of §3.2 to the letter, because a policy that
 * one sender reads differently from another defeats the point of a policy:
 * lines "key:" *WSP value *WSP separated by LF or CRLF, no empty lines,
 * case-sensitive keys and values, extension keys of at most 32 characters
 * and extension values of visible characters (UTF-8 allowed) with inner
 * spaces only. The original lines are kept for TLS-RPT's policy-string
 * (RFC 8460 §4.4).
 */
#include "sts/sts.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"

#define STS_MAX_AGE_MAX 31557600 /* §3.2: about one year */
#define STS_KEY_MAX     32       /* ext-name: 1 + *31 */
#define STS_DOMAIN_MAX  253
#define STS_LABEL_MAX   63

struct sts_policy {
	enum sts_mode mode;
	long max_age;
	char **mx;
	size_t nmx;
	char **lines;
	size_t nlines;
};

/* Which known fields have been seen (the first one counts, §3.2). */
struct sts_seen {
	bool version, mode, max_age;
};

/* Grows to the next power of two: linear time for long policies. */
static void
sts_vec_add(char ***v, size_t *n, const char *s, size_t len)
{
	if ((*n & (*n - 1)) == 0)
		*v = xreallocarray(*v, *n == 0 ? 1 : *n * 2, sizeof(**v));
	(*v)[(*n)++] = xstrndup(s, len);
}

static bool
sts_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* Length of one well-formed UTF8-2/3/4 sequence (RFC 3629 §4), else 0. */
static size_t
sts_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	/* The second octet's range excludes overlongs and surrogates. */
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/*
 * sts-policy-ext-value: vchar [*(SP / vchar) vchar]. Trailing WSP has been
 * cut already, so only the characters need checking.
 */
static bool
sts_value_ok(const unsigned char *v, size_t n)
{
	size_t i = 0, k;

	if (n == 0 || v[0] == ' ')
		return false;
	while (i < n) {
		if (v[i] >= 0x20 && v[i] <= 0x7e) {
			i++;
			continue;
		}
		if ((k = sts_utf8_len(v + i, n - i)) == 0)
			return false;
		i += k;
	}
	return true;
}

/* One RFC 5321 sub-domain: Let-dig [*(ALPHA / DIGIT / "-") Let-dig]. */
static bool
sts_label_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > STS_LABEL_MAX || !sts_alnum((unsigned char)s[0]) ||
	    !sts_alnum((unsigned char)s[n - 1]))
		return false;
	for (i = 1; i + 1 < n; i++)
		if (!sts_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 5321 §4.1.2 Domain: labels, no trailing dot. */
static bool
sts_domain_ok(const char *s, size_t n)
{
	size_t start = 0, i;

	if (n == 0 || n > STS_DOMAIN_MAX)
		return false;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!sts_label_ok(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

/* sts-policy-mx-value: ["*."] Domain */
static bool
sts_mx_pattern_ok(const char *v, size_t n)
{
	if (n >= 2 && v[0] == '*' && v[1] == '.') {
		v += 2;
		n -= 2;
	}
	return sts_domain_ok(v, n);
}

static bool
sts_value_is(const char *v, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(v, want, n) == 0;
}

/* sts-policy-max-age-value: 1*10(DIGIT), at most 31557600. */
static const char *
sts_max_age(const char *v, size_t n, long *out)
{
	long age = 0;
	size_t i;

	if (n == 0 || n > 10)
		return "max_age not a number of at most 10 digits";
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return "max_age not a number of at most 10 digits";
		age = age * 10 + (v[i] - '0');
	}
	if (age > STS_MAX_AGE_MAX)
		return "max_age out of range";
	*out = age;
	return NULL;
}

static const char *
sts_mode_value(const char *v, size_t n, enum sts_mode *out)
{
	if (sts_value_is(v, n, "enforce"))
		*out = STS_MODE_ENFORCE;
	else if (sts_value_is(v, n, "testing"))
		*out = STS_MODE_TESTING;
	else if (sts_value_is(v, n, "none"))
		*out = STS_MODE_NONE;
	else
		return "unknown mode";
	return NULL;
}

/* A known field; the first of version, mode and max_age counts (§3.2). */
static const char *
sts_field(struct sts_policy *p, struct sts_seen *seen, const char *k,
    size_t klen, const char *v, size_t vlen)
{
	if (sts_value_is(k, klen, "mx")) {
		if (!sts_mx_pattern_ok(v, vlen))
			return "mx pattern malformed";
		sts_vec_add(&p->mx, &p->nmx, v, vlen);
		return NULL;
	}
	if (sts_value_is(k, klen, "version") && !seen->version) {
		seen->version = true;
		return sts_value_is(v, vlen, "STSv1") ? NULL :
		                                        "unsupported version";
	}
	if (sts_value_is(k, klen, "mode") && !seen->mode) {
		seen->mode = true;
		return sts_mode_value(v, vlen, &p->mode);
	}
	if (sts_value_is(k, klen, "max_age") && !seen->max_age) {
		seen->max_age = true;
		return sts_max_age(v, vlen, &p->max_age);
	}
	return NULL; /* an extension or a repeated field: ignored */
}

/* sts-policy-ext-name: alphanum *31(alphanum / "_" / "-" / "."), then ":" */
static size_t
sts_key_len(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !sts_alnum((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n && i < STS_KEY_MAX; i++)
		if (!sts_alnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && s[i] != '.')
			break;
	return i < n && s[i] == ':' ? i : 0;
}

/* One line without its terminator: key ":" *WSP value *WSP. */
static const char *
sts_line(struct sts_policy *p, struct sts_seen *seen, const char *s, size_t n)
{
	size_t klen, v;

	if (n == 0)
		return "empty line";
	if ((klen = sts_key_len(s, n)) == 0)
		return "malformed line (not key: value)";
	v = klen + 1;
	while (v < n && (s[v] == ' ' || s[v] == '\t'))
		v++;
	while (n > v && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (!sts_value_ok((const unsigned char *)s + v, n - v))
		return "malformed value";
	return sts_field(p, seen, s, klen, s + v, n - v);
}

static const char *
sts_policy_complete(const struct sts_policy *p, const struct sts_seen *seen)
{
	if (!seen->version)
		return "missing version";
	if (!seen->mode)
		return "missing mode";
	if (!seen->max_age)
		return "missing max_age";
	if (p->nmx == 0 && p->mode != STS_MODE_NONE)
		return "no mx pattern";
	return NULL;
}

/* Lines end in LF or CRLF; the last terminator is optional. */
static const char *
sts_policy_lines(struct sts_policy *p, const char *body, size_t len)
{
	struct sts_seen seen = { false, false, false };
	const char *err, *nl;
	size_t pos = 0, n;

	/*
	 * Be liberal with blank lines after the last field: the ABNF of
	 * §3.2 has none, but a policy file ending in an empty line is a
	 * common editing slip, not an attack; interior empty lines stay errors.
	 */
	while (len > 0 && body[len - 1] == '\n') {
		len--;
		if (len > 0 && body[len - 1] == '\r')
			len--;
	}
	if (len == 0)
		return "empty policy";
	while (pos < len) {
		nl = memchr(body + pos, '\n', len - pos);
		n = nl != NULL ? (size_t)(nl - (body + pos)) : len - pos;
		/* A control character; checked first, lines are C strings. */
		if (memchr(body + pos, '\0', n) != NULL)
			return "NUL in line";
		if (nl != NULL && n > 0 && body[pos + n - 1] == '\r')
			n--; /* CRLF */
		sts_vec_add(&p->lines, &p->nlines, body + pos, n);
		if ((err = sts_line(p, &seen, body + pos, n)) != NULL)
			return err;
		pos = nl != NULL ? (size_t)(nl - body) + 1 : len;
	}
	return sts_policy_complete(p, &seen);
}

struct sts_policy *
sts_policy_parse(const char *body, size_t len, const char **errstr)
{
	struct sts_policy *p = xcalloc(1, sizeof(*p));
	const char *err;

	if ((err = sts_policy_lines(p, body, len)) != NULL) {
		sts_policy_free(p);
		*errstr = err;
		return NULL;
	}
	return p;
}

static void
sts_vec_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
sts_policy_free(struct sts_policy *p)
{
	if (p == NULL)
		return;
	sts_vec_free(p->mx, p->nmx);
	sts_vec_free(p->lines, p->nlines);
	free(p);
}

struct sts_policy *
sts_policy_dup(const struct sts_policy *p)
{
	struct sts_policy *d = xcalloc(1, sizeof(*d));
	size_t i;

	d->mode = p->mode;
	d->max_age = p->max_age;
	for (i = 0; i < p->nmx; i++)
		sts_vec_add(&d->mx, &d->nmx, p->mx[i], strlen(p->mx[i]));
	for (i = 0; i < p->nlines; i++)
		sts_vec_add(
		    &d->lines, &d->nlines, p->lines[i], strlen(p->lines[i]));
	return d;
}

enum sts_mode
sts_policy_mode(const struct sts_policy *p)
{
	return p->mode;
}

const char *
sts_mode_str(enum sts_mode m)
{
	switch (m) {
	case STS_MODE_NONE:
		return "none";
	case STS_MODE_TESTING:
		return "testing";
	case STS_MODE_ENFORCE:
		return "enforce";
	}
	return "?";
}

long
sts_policy_max_age(const struct sts_policy *p)
{
	return p->max_age;
}

size_t
sts_policy_mx_count(const struct sts_policy *p)
{
	return p->nmx;
}

const char *
sts_policy_mx(const struct sts_policy *p, size_t i)
{
	ASSERT(i < p->nmx);
	return p->mx[i];
}

size_t
sts_policy_line_count(const struct sts_policy *p)
{
	return p->nlines;
}

const char *
sts_policy_line(const struct sts_policy *p, size_t i)
{
	ASSERT(i < p->nlines);
	return p->lines[i];
}

/* §4.1: "*.example.com" stands for exactly one whole leftmost label. */
static bool
sts_mx_match_one(const char *pat, const char *host, size_t hlen)
{
	size_t plen = strlen(pat), first;

	if (pat[0] != '*')
		return plen == hlen && strncasecmp(pat, host, hlen) == 0;
	plen--; /* ".example.com" */
	if (hlen <= plen || strncasecmp(host + hlen - plen, pat + 1, plen) != 0)
		return false;
	first = hlen - plen;
	return memchr(host, '.', first) == NULL;
}

bool
sts_policy_mx_match(const struct sts_policy *p, const char *host)
{
	size_t hlen = strlen(host), i;

	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	if (hlen == 0)
		return false;
	for (i = 0; i < p->nmx; i++)
		if (sts_mx_match_one(p->mx[i], host, hlen))
			return true;
	return false;
}
