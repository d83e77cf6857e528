/*
 * smtp_reply: incremental SMTP reply parser (RFC 5321 §4.2, RFC 3463).
 *
 * Lines are kept in one capped buffer, each followed by a NUL, with their
 * offsets in a fixed array; the caps in smtp_reply.h bound both.
 */
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"

struct smtp_reply {
	enum smtp_reply_state state;
	const char *errstr; /* sticky while state is ERROR */
	int code;
	struct buf text; /* line texts, each NUL-terminated */
	size_t off[SMTP_REPLY_LINES_MAX];
	size_t count;
	char esc[16]; /* "5.7.1", "" if none */
};

struct smtp_reply *
smtp_reply_new(void)
{
	struct smtp_reply *r = xcalloc(1, sizeof(*r));

	buf_init(&r->text, SMTP_REPLY_SIZE_MAX);
	smtp_reply_reset(r);
	return r;
}

void
smtp_reply_free(struct smtp_reply *r)
{
	if (r == NULL)
		return;
	buf_free(&r->text);
	free(r);
}

void
smtp_reply_reset(struct smtp_reply *r)
{
	r->state = SMTP_REPLY_MORE;
	r->errstr = NULL;
	r->code = 0;
	r->count = 0;
	r->esc[0] = '\0';
	buf_reset(&r->text);
}

static bool
smtp_reply_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

/* Count 1..max digits at p (bounded by end); 0 if none or too many. */
static size_t
smtp_reply_digits(const char *p, const char *end, size_t max)
{
	size_t n = 0;

	while (p + n < end && smtp_reply_isdigit(p[n]))
		n++;
	return n > max ? 0 : n;
}

/*
 * RFC 3463 §2: status-code = class "." subject "." detail, class 2/4/5,
 * subject and detail 1-3 digits; RFC 2034 §3 puts it first in the text,
 * followed by a space. The class must agree with the reply code's first
 * digit, otherwise the text merely starts with something code-like.
 */
static void
smtp_reply_find_esc(struct smtp_reply *r)
{
	const char *t = r->text.data + r->off[0];
	const char *end = t + strlen(t);
	const char *p = t;
	size_t n;

	if (end - p < 5 || p[0] != (char)('0' + r->code / 100) || p[1] != '.')
		return;
	if (p[0] != '2' && p[0] != '4' && p[0] != '5')
		return;
	p += 2;
	if ((n = smtp_reply_digits(p, end, 3)) == 0 || p + n >= end ||
	    p[n] != '.')
		return;
	p += n + 1;
	if ((n = smtp_reply_digits(p, end, 3)) == 0)
		return;
	p += n;
	if (p != end && *p != ' ')
		return;
	memcpy(r->esc, t, (size_t)(p - t));
	r->esc[p - t] = '\0';
}

static enum smtp_reply_state
smtp_reply_fail(struct smtp_reply *r, const char *why, const char **errstr)
{
	r->state = SMTP_REPLY_ERROR;
	r->errstr = why;
	*errstr = why;
	return SMTP_REPLY_ERROR;
}

/* Check the code and separator of one line; NULL or why it is bad. */
static const char *
smtp_reply_check_line(
    const struct smtp_reply *r, const char *line, size_t len, int *code)
{
	if (len > SMTP_REPLY_LINE_MAX)
		return "reply line too long";
	if (memchr(line, '\0', len) != NULL)
		return "NUL byte in reply";
	if (len < 3 || !smtp_reply_isdigit(line[0]) ||
	    !smtp_reply_isdigit(line[1]) || !smtp_reply_isdigit(line[2]))
		return "reply does not start with a three-digit code";
	/* §4.2: the first digit is 2..5 (1yz is not used by SMTP). */
	if (line[0] < '2' || line[0] > '5')
		return "reply code out of range";
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return "reply code not followed by space or hyphen";
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	/* §4.2.1: all lines of a multi-line reply carry the same code. */
	if (r->count > 0 && *code != r->code)
		return "reply code changes within a multi-line reply";
	if (r->count == SMTP_REPLY_LINES_MAX)
		return "too many lines in reply";
	return NULL;
}

enum smtp_reply_state
smtp_reply_feed(
    struct smtp_reply *r, const char *line, size_t len, const char **errstr)
{
	const char *why;
	size_t start;
	int code = 0;

	if (r->state == SMTP_REPLY_ERROR)
		return smtp_reply_fail(r, r->errstr, errstr);
	if (r->state == SMTP_REPLY_DONE)
		smtp_reply_reset(r);
	if ((why = smtp_reply_check_line(r, line, len, &code)) != NULL)
		return smtp_reply_fail(r, why, errstr);
	start = r->text.len;
	if (buf_add(&r->text, len > 4 ? line + 4 : "", len > 4 ? len - 4 : 0) ==
	        -1 ||
	    buf_addc(&r->text, '\0') == -1)
		return smtp_reply_fail(r, "reply too long", errstr);
	r->code = code;
	r->off[r->count++] = start;
	if (len > 3 && line[3] == '-')
		return SMTP_REPLY_MORE;
	r->state = SMTP_REPLY_DONE;
	smtp_reply_find_esc(r);
	return SMTP_REPLY_DONE;
}

int
smtp_reply_code(const struct smtp_reply *r)
{
	return r->code;
}

const char *
smtp_reply_esc(const struct smtp_reply *r)
{
	return r->esc[0] == '\0' ? NULL : r->esc;
}

size_t
smtp_reply_count(const struct smtp_reply *r)
{
	return r->count;
}

const char *
smtp_reply_text(const struct smtp_reply *r, size_t i)
{
	ASSERT(i < r->count);
	return r->text.data + r->off[i];
}

void
smtp_reply_sanitize(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t i;

	ASSERT(dstlen > 0);
	for (i = 0; i < len && i < dstlen - 1; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[i] = '\0';
}

/* Append "250-text" for line i at dst + *used, sanitized and truncated. */
static void
smtp_reply_join_line(const struct smtp_reply *r, size_t i, char *dst,
    size_t dstlen, size_t *used)
{
	const char *t = smtp_reply_text(r, i);
	char head[8];
	bool last = i + 1 == r->count;

	head[0] = (char)('0' + r->code / 100);
	head[1] = (char)('0' + r->code / 10 % 10);
	head[2] = (char)('0' + r->code % 10);
	head[3] = last ? ' ' : '-';
	head[4] = '\0';
	if (i > 0) {
		smtp_reply_sanitize(dst + *used, dstlen - *used, " / ", 3);
		*used += strlen(dst + *used);
	}
	smtp_reply_sanitize(
	    dst + *used, dstlen - *used, head, last && *t == '\0' ? 3 : 4);
	*used += strlen(dst + *used);
	smtp_reply_sanitize(dst + *used, dstlen - *used, t, strlen(t));
	*used += strlen(dst + *used);
}

void
smtp_reply_join(const struct smtp_reply *r, char *dst, size_t dstlen)
{
	size_t i, used = 0;

	ASSERT(dstlen > 0);
	dst[0] = '\0';
	for (i = 0; i < r->count && used + 1 < dstlen; i++)
		smtp_reply_join_line(r, i, dst, dstlen, &used);
}
