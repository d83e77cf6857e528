/*
 * dsn_mime: the small pieces of RFC 5322 and MIME a report needs: dates,
 * cleaning text from outside before it goes into a header, folding,
 * RFC 2047 encoded-words both ways, quoted-printable. Each keeps the two
 * promises of a report: CRLF lines of at most 998 octets, and nothing from
 * the inputs that could end a header or forge one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dsn/dsn_int.h"

#define FOLD_SOFT  78  /* RFC 5322 §2.1.1 SHOULD */
#define WORD_CHUNK 900 /* longest piece of a word on one line */
#define EW_TEXT    63  /* 75 - strlen("=?utf-8?q?") - strlen("?=") */
#define BUF_MAX    (SIZE_MAX / 4)

static const char hexdig[] = "0123456789ABCDEF";

void
dsn_mime_date(char *out, size_t len, time_t t)
{
	static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	/* A time gmtime cannot express is a caller's mistake: show the epoch.
	 */
	if (gmtime_r(&t, &tm) == NULL) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	snprintf(out, len, "%s, %02d %s %04ld %02d:%02d:%02d +0000",
	    wday[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12],
	    (long)tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool
dsn_mime_ascii(const void *p, size_t n)
{
	const uint8_t *s = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] >= 0x80)
			return false;
	return true;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 (RFC 3629 §4). */
static size_t
utf8_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	size_t k, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < k || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < k; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return k;
}

/* Controls, including C1 (U+0080..U+009F) that terminals obey. */
static bool
is_control(const uint8_t *p, size_t k)
{
	if (k == 1)
		return p[0] < 0x20 || p[0] == 0x7f;
	return k == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

/* Append one character of the cleaned text unless max would be passed. */
static bool
clean_put(struct buf *b, size_t max, bool *space, const void *p, size_t k)
{
	size_t need = k + (*space && b->len > 0);

	if (b->len + need > max)
		return false;
	if (*space && b->len > 0)
		buf_addc(b, ' ');
	*space = false;
	buf_add(b, p, k);
	return true;
}

char *
dsn_mime_clean_n(const void *v, size_t n, size_t max, bool ascii)
{
	static const uint8_t fffd[] = { 0xef, 0xbf, 0xbd };
	const uint8_t *p = v;
	struct buf b;
	bool space = false, ok = true;
	size_t i = 0, k;

	buf_init(&b, BUF_MAX);
	while (i < n && ok) {
		k = utf8_len(p + i, n - i);
		if (k > 0 && (p[i] == ' ' || is_control(p + i, k))) {
			space = true;
			i += k;
		} else if (k == 1) {
			ok = clean_put(&b, max, &space, p + i++, 1);
		} else if (ascii) {
			ok = clean_put(&b, max, &space, "?", 1);
			i += k > 0 ? k : 1;
		} else if (k == 0) {
			ok = clean_put(&b, max, &space, fffd, sizeof(fffd));
			i++;
		} else {
			ok = clean_put(&b, max, &space, p + i, k);
			i += k;
		}
	}
	return buf_steal(&b);
}

char *
dsn_mime_clean(const char *s, size_t max, bool ascii)
{
	if (s == NULL)
		return xstrdup("");
	return dsn_mime_clean_n(s, strlen(s), max, ascii);
}

size_t
dsn_mime_cut(const char *w, size_t lim)
{
	size_t k = lim;

	while (k > 0 && ((uint8_t)w[k] & 0xc0) == 0x80)
		k--;
	return k > 0 ? k : lim;
}

/*
 * One word of a folded field: fold before it when the line already holds
 * a word and it would pass FOLD_SOFT; split it when it alone would pass
 * WORD_CHUNK (the split inserts a space, acceptable for such garbage).
 */
static void
field_word(struct buf *b, size_t *col, bool *words, const char *w, size_t wl)
{
	size_t k;

	while (wl > 0) {
		k = wl > WORD_CHUNK ? dsn_mime_cut(w, WORD_CHUNK) : wl;
		if (*words && *col + 1 + k > FOLD_SOFT) {
			buf_adds(b, "\r\n");
			*col = 0;
		}
		buf_addc(b, ' ');
		buf_add(b, w, k);
		*col += 1 + k;
		*words = true;
		w += k;
		wl -= k;
	}
}

void
dsn_mime_field(struct buf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 1, wl;
	bool words = false;
	const char *w;

	buf_adds(b, name);
	buf_addc(b, ':');
	while (*value != '\0') {
		while (*value == ' ')
			value++;
		for (w = value; *value != '\0' && *value != ' '; value++)
			;
		if ((wl = (size_t)(value - w)) > 0)
			field_word(b, &col, &words, w, wl);
	}
	buf_adds(b, "\r\n");
}

/* RFC 2047 §5 (3): octets that may stand for themselves in a Q word. */
static bool
q_safe(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
	    c == '-' || c == '/';
}

/* Close the encoded-word being built in w, if any, into v. */
static void
q_flush(struct buf *v, struct buf *w)
{
	if (w->len == 0)
		return;
	buf_printf(v, " =?utf-8?q?%s?=", buf_cstr(w));
	buf_reset(w);
}

/* Encoded-words of clean UTF-8 text, each on its own, space-separated. */
static void
q_words(struct buf *v, const char *text)
{
	const uint8_t *p = (const uint8_t *)text;
	size_t n = strlen(text), i = 0, k, j, el;
	struct buf w;

	buf_init(&w, BUF_MAX);
	while (i < n) {
		if ((k = utf8_len(p + i, n - i)) == 0)
			k = 1;
		for (el = 0, j = 0; j < k; j++)
			el += q_safe(p[i + j]) || p[i + j] == ' ' ? 1 : 3;
		if (w.len + el > EW_TEXT)
			q_flush(v, &w);
		for (j = 0; j < k; j++, i++) {
			if (q_safe(p[i]))
				buf_addc(&w, (char)p[i]);
			else if (p[i] == ' ')
				buf_addc(&w, '_');
			else
				buf_printf(&w, "=%c%c", hexdig[p[i] >> 4],
				    hexdig[p[i] & 15]);
		}
	}
	q_flush(v, &w);
	buf_free(&w);
}

void
dsn_mime_field_2047(
    struct buf *b, const char *name, const char *prefix, const char *text)
{
	struct buf v;

	buf_init(&v, BUF_MAX);
	buf_adds(&v, prefix);
	if (dsn_mime_ascii(text, strlen(text))) {
		buf_addc(&v, ' ');
		buf_adds(&v, text);
	} else
		q_words(&v, text);
	dsn_mime_field(b, name, buf_cstr(&v));
	buf_free(&v);
}

/* Q text of an encoded-word into out; -1 on a bad escape. */
static int
ew_q(struct buf *out, const char *s, size_t n)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '_')
			buf_addc(out, ' ');
		else if (s[i] != '=')
			buf_addc(out, s[i]);
		else if (i + 2 < n && (hi = str_hex_value(s[i + 1])) >= 0 &&
		    (lo = str_hex_value(s[i + 2])) >= 0) {
			buf_addc(out, (char)(hi << 4 | lo));
			i += 2;
		} else
			return -1;
	}
	return 0;
}

/* B text of an encoded-word into out; -1 on a character outside base64. */
static int
ew_b(struct buf *out, const char *s, size_t n)
{
	unsigned acc = 0;
	int bits = 0, v;
	size_t i;

	for (i = 0; i < n && s[i] != '='; i++) {
		if ((v = str_b64_value(s[i])) < 0)
			return -1;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		if ((bits += 6) >= 8) {
			bits -= 8;
			buf_addc(out, (char)((acc >> bits) & 0xff));
		}
	}
	for (; i < n; i++)
		if (s[i] != '=')
			return -1;
	return 0;
}

/* Latin-1 octets made UTF-8, in place in out from offset from. */
static void
latin1_to_utf8(struct buf *out, size_t from)
{
	char *tail;
	size_t n = out->len - from, i;
	uint8_t c;

	if (n == 0)
		return; /* also when nothing was ever added: data is NULL */
	tail = xmemdup(out->data + from, n);
	out->len = from;
	for (i = 0; i < n; i++) {
		c = (uint8_t)tail[i];
		if (c < 0x80)
			buf_addc(out, (char)c);
		else {
			buf_addc(out, (char)(0xc0 | c >> 6));
			buf_addc(out, (char)(0x80 | (c & 0x3f)));
		}
	}
	free(tail);
}

/* The charsets decoded; 1 = UTF-8 compatible, 2 = Latin-1, 0 = other. */
static int
ew_charset(const char *cs, size_t n)
{
	static const char *const utf8[] = { "utf-8", "utf8", "us-ascii", NULL };
	static const char *const latin1[] = { "iso-8859-1", "latin1", NULL };
	const char *star = memchr(cs, '*', n);
	size_t i;

	/* RFC 2231 §5: a language may follow the charset after '*'. */
	if (star != NULL)
		n = (size_t)(star - cs);
	for (i = 0; utf8[i] != NULL; i++)
		if (strlen(utf8[i]) == n && strncasecmp(cs, utf8[i], n) == 0)
			return 1;
	for (i = 0; latin1[i] != NULL; i++)
		if (strlen(latin1[i]) == n &&
		    strncasecmp(cs, latin1[i], n) == 0)
			return 2;
	return 0;
}

/*
 * Decode the encoded-word at s ("=?cs?e?text?=") into out; returns its
 * length, or 0 (out unchanged) when s does not start a decodable one.
 */
static size_t
ew_decode(struct buf *out, const char *s)
{
	const char *cs = s + 2, *q1, *q2, *end;
	size_t from = out->len;
	int kind, r;

	if ((q1 = strchr(cs, '?')) == NULL || q1 == cs || q1 - cs > 40 ||
	    q1[1] == '\0' || q1[2] != '?')
		return 0;
	q2 = q1 + 2;
	if ((end = strstr(q2 + 1, "?=")) == NULL ||
	    strcspn(q2 + 1, " \t") < (size_t)(end - q2 - 1))
		return 0;
	if ((kind = ew_charset(cs, (size_t)(q1 - cs))) == 0)
		return 0;
	if (q1[1] == 'q' || q1[1] == 'Q')
		r = ew_q(out, q2 + 1, (size_t)(end - q2 - 1));
	else if (q1[1] == 'b' || q1[1] == 'B')
		r = ew_b(out, q2 + 1, (size_t)(end - q2 - 1));
	else
		r = -1;
	if (r == -1) {
		out->len = from;
		return 0;
	}
	if (kind == 2)
		latin1_to_utf8(out, from);
	return (size_t)(end + 2 - s);
}

static void
add_spaces(struct buf *b, size_t n)
{
	for (; n > 0; n--)
		buf_addc(b, ' ');
}

char *
dsn_mime_decode_2047(const char *s, size_t max)
{
	struct buf out, ew;
	size_t ws = 0, k;
	bool last_ew = false;
	char *r;

	buf_init(&out, BUF_MAX);
	buf_init(&ew, BUF_MAX);
	while (*s != '\0') {
		if (s[0] == '=' && s[1] == '?' && (k = ew_decode(&ew, s)) > 0) {
			/* RFC 2047 §6.2: space between two words is dropped. */
			if (!last_ew)
				add_spaces(&out, ws);
			buf_add(&out, ew.data, ew.len);
			buf_reset(&ew);
			ws = 0;
			last_ew = true;
			s += k;
		} else if (*s == ' ' || *s == '\t') {
			ws++;
			s++;
		} else {
			add_spaces(&out, ws);
			ws = 0;
			last_ew = false;
			buf_addc(&out, *s++);
		}
	}
	r = dsn_mime_clean_n(buf_cstr(&out), out.len, max, false);
	buf_free(&out);
	buf_free(&ew);
	return r;
}

/* Does the octet at p[i] end a line (the next octets are CRLF or end)? */
static bool
qp_at_eol(const char *p, size_t n, size_t i)
{
	return i + 1 == n ||
	    (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n');
}

void
dsn_mime_qp(struct buf *b, const char *p, size_t n)
{
	size_t i, col = 0, rep;
	uint8_t c;
	bool enc;

	for (i = 0; i < n; i++) {
		c = (uint8_t)p[i];
		if (c == '\r' && i + 1 < n && p[i + 1] == '\n') {
			buf_adds(b, "\r\n");
			col = 0;
			i++;
			continue;
		}
		enc = c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
		    ((c == ' ' || c == '\t') && qp_at_eol(p, n, i));
		rep = enc ? 3 : 1;
		if (col + rep > 75) {
			buf_adds(b, "=\r\n");
			col = 0;
		}
		if (enc)
			buf_printf(b, "=%c%c", hexdig[c >> 4], hexdig[c & 15]);
		else
			buf_addc(b, (char)c);
		col += rep;
	}
}
