/*
 * dsn_hdr: reading the header section of a returned message. See
 * dsn_hdr.h for what counts as the header section; everything here works
 * on (pointer, length) and never looks past the length.
 */
#include "dsn/dsn_hdr.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "dsn/dsn_int.h"

#define LINE_MAX_OCTETS 998 /* RFC 5322 §2.1.1, without CRLF */
#define LINE_SPLIT      990 /* where an overlong line is cut */

/* One line at off: its length without the line end; *next: the next line. */
static size_t
hdr_line(const uint8_t *p, size_t len, size_t off, size_t *next)
{
	const uint8_t *nl = memchr(p + off, '\n', len - off);
	size_t end = nl != NULL ? (size_t)(nl - p) : len;

	*next = nl != NULL ? end + 1 : len;
	if (end > off && p[end - 1] == '\r')
		end--;
	return end - off;
}

/* Length of the field name at p ("Name:"), or 0 when p is not a field. */
static size_t
hdr_name_len(const uint8_t *p, size_t n)
{
	size_t i = 0, j;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	for (j = i; j < n && (p[j] == ' ' || p[j] == '\t'); j++)
		;
	return i > 0 && j < n && p[j] == ':' ? i : 0;
}

static bool
hdr_is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

size_t
dsn_hdr_len(const uint8_t *msg, size_t len, size_t *body)
{
	size_t off = 0, next, n, end = 0;
	bool in_field = false;

	while (off < len) {
		n = hdr_line(msg, len, off, &next);
		if (n == 0) {
			*body = next;
			return end;
		}
		if (!((in_field && n > 0 && hdr_is_wsp(msg[off])) ||
		        hdr_name_len(msg + off, n) > 0))
			break;
		if (next > DSN_HDR_MAX)
			break;
		in_field = true;
		end = off = next;
	}
	*body = end;
	return end;
}

/* Append the value part of the field line at p (after the colon). */
static void
hdr_value(struct buf *v, const uint8_t *p, size_t n, size_t name_len)
{
	const uint8_t *colon = memchr(p + name_len, ':', n - name_len);

	buf_add(v, colon + 1, n - (size_t)(colon + 1 - p));
}

char *
dsn_hdr_get(const uint8_t *msg, size_t len, const char *name, size_t max)
{
	size_t hlen, body, off = 0, next, n, nl, want = strlen(name);
	bool found = false;
	struct buf v;
	char *r;

	hlen = dsn_hdr_len(msg, len, &body);
	buf_init(&v, DSN_HDR_MAX);
	while (off < hlen) {
		n = hdr_line(msg, hlen, off, &next);
		if (found && n > 0 && hdr_is_wsp(msg[off]))
			buf_add(&v, msg + off, n); /* unfold: drop the CRLF */
		else if (found)
			break;
		else if ((nl = hdr_name_len(msg + off, n)) == want &&
		    strncasecmp((const char *)msg + off, name, want) == 0) {
			found = true;
			hdr_value(&v, msg + off, n, nl);
		}
		off = next;
	}
	r = found ? dsn_mime_clean_n(v.data, v.len, max, false) : NULL;
	buf_free(&v);
	return r;
}

/* Copy one line (without its end), NUL and CR as spaces, split if long. */
static void
hdr_copy_line(struct buf *b, const uint8_t *p, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		if (n > LINE_MAX_OCTETS && col >= LINE_SPLIT &&
		    ((p[i] & 0xc0) != 0x80 || col >= LINE_MAX_OCTETS - 2)) {
			/* A continuation keeps the field one field; whole
			 * UTF-8 characters stay on one line, unless a run of
			 * stray continuation bytes would break the 998 limit
			 * (found by fuzz_dsn). */
			buf_adds(b, "\r\n ");
			col = 1;
		}
		buf_addc(b, p[i] == '\0' || p[i] == '\r' ? ' ' : (char)p[i]);
		col++;
	}
	buf_adds(b, "\r\n");
}

size_t
dsn_hdr_copy(struct buf *b, const uint8_t *msg, size_t len)
{
	size_t hlen, body, off = 0, next, n, start = b->len;

	hlen = dsn_hdr_len(msg, len, &body);
	while (off < hlen) {
		n = hdr_line(msg, hlen, off, &next);
		hdr_copy_line(b, msg + off, n);
		off = next;
	}
	return b->len - start;
}
