/*
 * smtp_reply: an incremental parser for SMTP replies (RFC 5321 §4.2).
 *
 * The caller feeds one line at a time, without its CRLF, and learns whether
 * the reply needs more lines, is complete, or is broken. The parser does no
 * I/O, so it can be fuzzed and table-tested; the session layer feeds it what
 * it reads from the network.
 *
 * Everything a hostile server controls is capped: the length of a line, the
 * number of lines and the total size of one reply. An endless multi-line
 * banner becomes a protocol error, never unbounded memory.
 */
#ifndef DR_SMTP_REPLY_H
#define DR_SMTP_REPLY_H

#include <stddef.h>

/*
 * RFC 5321 §4.5.3.1.5 allows 512 octets per reply line including CRLF; real
 * servers exceed it, so we accept 2048 octets (without CRLF) and refuse more.
 */
#define SMTP_REPLY_LINE_MAX 2048
/* At most this many lines and this many octets of text in one reply. */
#define SMTP_REPLY_LINES_MAX 200
#define SMTP_REPLY_SIZE_MAX  (64 * 1024)

struct smtp_reply;

enum smtp_reply_state {
	SMTP_REPLY_MORE,  /* a continuation line ("250-"): feed more */
	SMTP_REPLY_DONE,  /* the last line ("250 " or "250") arrived */
	SMTP_REPLY_ERROR, /* malformed or over a cap; see errstr */
};

/* An empty parser. Returns new, caller frees with smtp_reply_free(). */
struct smtp_reply *smtp_reply_new(void);

/* Free r. NULL is fine. */
void smtp_reply_free(struct smtp_reply *r);

/* Forget the current reply (and a sticky error): ready for a new one. */
void smtp_reply_reset(struct smtp_reply *r);

/*
 * Feed one line of len bytes, without its line ending. line need not be
 * NUL-terminated. Feeding after SMTP_REPLY_DONE starts a new reply. After
 * SMTP_REPLY_ERROR the parser stays in error (the stream is out of step)
 * until smtp_reply_reset(). On error *errstr (static text) says why; it is
 * not touched otherwise.
 */
enum smtp_reply_state smtp_reply_feed(
    struct smtp_reply *r, const char *line, size_t len, const char **errstr);

/* The reply code (200..599), or 0 before the first good line. */
int smtp_reply_code(const struct smtp_reply *r);

/*
 * The RFC 3463 enhanced status code of a complete reply ("5.7.1"), taken
 * from its first line (RFC 2034 §3), or NULL when it has none. A code whose
 * class disagrees with the reply code is not taken as one. Borrowed, valid
 * until the next feed or reset.
 */
const char *smtp_reply_esc(const struct smtp_reply *r);

/* Number of lines stored so far. */
size_t smtp_reply_count(const struct smtp_reply *r);

/*
 * Text of line i (0-based), after the code and the separator, as received
 * (NUL-terminated; may hold any byte but NUL). Borrowed, valid until the
 * next feed or reset.
 */
const char *smtp_reply_text(const struct smtp_reply *r, size_t i);

/*
 * The whole reply for humans and logs: lines as received ("250-a", "250 b")
 * joined by " / ", with bytes outside printable ASCII replaced by '?' and
 * truncated to fit dst (size dstlen > 0, always NUL-terminated).
 */
void smtp_reply_join(const struct smtp_reply *r, char *dst, size_t dstlen);

/*
 * Copy len bytes of src into dst (size dstlen > 0) as printable ASCII: bytes
 * outside 0x20..0x7e become '?'. Truncates; always NUL-terminates. Server
 * text passes through this before it reaches a log line or a report.
 */
void smtp_reply_sanitize(char *dst, size_t dstlen, const char *src, size_t len);

#endif
