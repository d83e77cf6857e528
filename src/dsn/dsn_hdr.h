/*
 * dsn_hdr: a small, forgiving reader of the header section of a message
 * that is being returned to its sender. The message came from anywhere, so
 * nothing is assumed: folded fields, lines ending in LF only, a header
 * section with no empty line after it, binary garbage and huge headers all
 * give an answer, never a crash or a read past the end. A fuzz target
 * (fuzz/fuzz_dsn.c) drives it.
 *
 * The header section is the longest run of lines from the start that are
 * fields ("Name:" with Name of printable ASCII, RFC 5322 §2.2; white space
 * before the colon accepted, obs-FWS) or continuations of one (a line that
 * starts with a space or tab), at most DSN_HDR_MAX octets. It ends at an
 * empty line (the separator, RFC 5322 §2.1), at the first line that is
 * neither (a message with no separator), or at the cap.
 */
#ifndef DR_DSN_HDR_H
#define DR_DSN_HDR_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* Largest header section taken, in octets. */
#define DSN_HDR_MAX (256 * 1024)

/*
 * Length of the header section at the start of msg (len octets, not
 * NUL-terminated): up to and including the line end of its last line.
 * *body receives the offset of the body: after the empty line, or the
 * header length when there is none.
 */
size_t dsn_hdr_len(const uint8_t *msg, size_t len, size_t *body);

/*
 * Value of the first field called name (case-insensitive) in the header
 * section of msg: unfolded, control characters turned into spaces, runs of
 * white space made one space, trimmed, invalid UTF-8 replaced by U+FFFD,
 * cut to at most max octets on a character boundary. Returns new (caller
 * frees), or NULL when there is no such field.
 */
char *dsn_hdr_get(const uint8_t *msg, size_t len, const char *name, size_t max);

/*
 * Append the header section of msg to b as it should travel in a report:
 * every line ending in CRLF, NUL and bare CR made spaces, and lines longer
 * than 998 octets (RFC 5322 §2.1.1) split into a line and continuations.
 * Returns the number of octets appended (0: no header section).
 */
size_t dsn_hdr_copy(struct buf *b, const uint8_t *msg, size_t len);

#endif
