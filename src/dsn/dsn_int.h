/*
 * dsn_int: what the files of src/dsn/dsn*.c share and nothing else
 * includes (tests do, to check the pieces): the MIME helpers of
 * dsn_mime.c and the human part of dsn_text.c.
 */
#ifndef DR_DSN_INT_H
#define DR_DSN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dsn/dsn.h"

struct buf;

/* Room for an RFC 5322 date ("Sat, 28 Nov 2026 09:00:00 +0000"). */
#define DSN_DATE_LEN 64

/* RFC 5322 §3.3 date-time of t, in UTC, into out (DSN_DATE_LEN). */
void dsn_mime_date(char *out, size_t len, time_t t);

/* True when the n octets at p are all ASCII (< 0x80). */
bool dsn_mime_ascii(const void *p, size_t n);

/*
 * A cleaned copy of s for a header field or a line of text: control
 * characters (CR, LF and tab included) become spaces, runs of spaces one,
 * both ends trimmed; with ascii, every non-ASCII octet becomes '?', else
 * invalid UTF-8 becomes U+FFFD. Cut to at most max octets on a character
 * boundary. Returns new (caller frees); "" for s NULL.
 */
char *dsn_mime_clean(const char *s, size_t max, bool ascii);

/*
 * Largest k <= lim, k > 0, such that w[k] does not continue a UTF-8
 * character: where to split a word of more than lim octets.
 */
size_t dsn_mime_cut(const char *w, size_t lim);

/* dsn_mime_clean() of n octets that may hold NUL. */
char *dsn_mime_clean_n(const void *p, size_t n, size_t max, bool ascii);

/*
 * Append the field "Name: value" and CRLF to b, folded at spaces so lines
 * stay within 78 octets where the words allow and never exceed 998 (a
 * longer word is split). value must be clean (dsn_mime_clean).
 */
void dsn_mime_field(struct buf *b, const char *name, const char *value);

/*
 * Append "Name: prefix text" like dsn_mime_field, with text (clean UTF-8)
 * as RFC 2047 encoded-words ("=?utf-8?q?...?=", whole characters, at most
 * 75 octets each) unless it is printable ASCII.
 */
void dsn_mime_field_2047(
    struct buf *b, const char *name, const char *prefix, const char *text);

/*
 * Decode the RFC 2047 encoded-words in s (charsets utf-8, us-ascii,
 * iso-8859-1; B and Q; others are left as they are) for display, dropping
 * the white space between adjacent encoded-words. Returns new clean UTF-8
 * (dsn_mime_clean, at most max octets).
 */
char *dsn_mime_decode_2047(const char *s, size_t max);

/*
 * Append the n octets at p (lines ending in CRLF) to b as quoted-printable
 * (RFC 2045 §6.7): encoded lines of at most 76 octets.
 */
void dsn_mime_qp(struct buf *b, const char *p, size_t n);

/* What part 3 of the report holds. */
enum dsn_return {
	DSN_RETURN_NONE, /* nothing to return */
	DSN_RETURN_HDRS, /* the header section */
	DSN_RETURN_FULL, /* the whole message */
};

/* What dsn.c decided, for the human part. */
struct dsn_info {
	const struct dsn_msg *m;
	bool global;         /* RFC 6533 report: UTF-8 allowed */
	enum dsn_return ret; /* what is attached */
	bool ret_cut;        /* the whole message was asked, headers sent */
	char *subject;       /* original subject decoded for display, or NULL */
};

/*
 * Append the human-readable part (text/plain; charset=utf-8, before any
 * transfer encoding: UTF-8, CRLF lines of at most 998 octets) to b.
 */
void dsn_text_human(struct buf *b, const struct dsn_info *in);

/*
 * The domain of address addr (after the last '@') when it is fit to be
 * shown in a command line (letters, digits, '-', '.', or non-ASCII octets
 * of an IDN); NULL otherwise. Returns new.
 */
char *dsn_text_domain(const char *addr);

/* Room for a status ("5.123.123"). */
#define DSN_STATUS_LEN 16

/*
 * The status of r as reported: its class made to agree with the action
 * (failed 5, delayed 4, delivered/relayed 2), "x.0.0" when r->status is
 * malformed. out has at least DSN_STATUS_LEN octets.
 */
void dsn_text_status(const struct dsn_rcpt *r, char *out, size_t len);

#endif
