/*
 * str: cursor parsers and small string helpers.
 */
#include "str.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

void
str_skip_ws(const char **cp)
{
	while (**cp == ' ' || **cp == '\t')
		(*cp)++;
}

int
str_parse_uint(const char **cp, uint64_t max, uint64_t *out)
{
	const char *p = *cp;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		uint64_t d = (uint64_t)(*p - '0');

		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
		p++;
	}
	*out = v;
	*cp = p;
	return 0;
}

int
str_to_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *p = s;
	uint64_t v;

	if (str_parse_uint(&p, max, &v) == -1 || *p != '\0' || v < min)
		return -1;
	*out = v;
	return 0;
}

int
str_match_ci(const char **cp, const char *w)
{
	size_t n = strlen(w);

	if (strncasecmp(*cp, w, n) != 0)
		return -1;
	*cp += n;
	return 0;
}

bool
str_eq_ci(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

char *
str_trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 &&
	    (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
	        s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

char **
str_split_list(const char *s, size_t *n)
{
	char **v = xcalloc(1, sizeof(*v));
	size_t count = 0, len;

	for (;;) {
		while (*s == ',' || *s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		len = strcspn(s, ", \t");
		v = xreallocarray(v, count + 2, sizeof(*v));
		v[count++] = xstrndup(s, len);
		s += len;
	}
	v[count] = NULL;
	*n = count;
	return v;
}

void
str_vec_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

char **
str_vec_dup(char *const *v)
{
	size_t n = 0, i;
	char **out;

	while (v != NULL && v[n] != NULL)
		n++;
	out = xcalloc(n + 1, sizeof(*out));
	for (i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

void
str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

char *
str_hex(const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *s = xmalloc(n * 2 + 1);
	size_t i;

	for (i = 0; i < n; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

int
str_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint8_t *
str_unhex(const char *s, size_t *n)
{
	size_t len = strlen(s), i;
	uint8_t *out;

	if (len % 2 != 0)
		return NULL;
	out = xmalloc(len / 2 + 1);
	for (i = 0; i < len / 2; i++) {
		int hi = str_hex_value(s[2 * i]),
		    lo = str_hex_value(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*n = len / 2;
	return out;
}

int
str_b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
str_parse_duration(const char *s, uint64_t *secs)
{
	static const struct {
		char unit;
		uint64_t mult;
	} units[] = { { '\0', 1 }, { 's', 1 }, { 'm', 60 }, { 'h', 3600 },
		{ 'd', 86400 }, { 'w', 7 * 86400 } };
	const char *p = s;
	uint64_t v;
	size_t i;

	if (str_parse_uint(&p, 1000000000, &v) == -1)
		return -1;
	if (*p != '\0' && p[1] != '\0')
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (units[i].unit == *p) {
			*secs = v * units[i].mult;
			return 0;
		}
	}
	return -1;
}
