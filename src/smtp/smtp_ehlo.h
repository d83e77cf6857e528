/*
 * smtp_ehlo: what a server offers in its EHLO reply (RFC 5321 §4.1.1.1).
 *
 * Each capability line is "keyword *(SP param)"; keywords are matched
 * case-insensitively. The extensions the relay acts on become flags; every
 * line, known or not, is kept so reports can show what the server said.
 * After STARTTLS the client must forget all of this and ask again
 * (RFC 3207 §4.2): that is smtp_ehlo_reset().
 */
#ifndef DR_SMTP_EHLO_H
#define DR_SMTP_EHLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smtp_reply;
struct smtp_ehlo;

/* Extensions the relay knows; bit flags. */
enum smtp_ext {
	SMTP_EXT_STARTTLS = 1 << 0,            /* RFC 3207 */
	SMTP_EXT_PIPELINING = 1 << 1,          /* RFC 2920 */
	SMTP_EXT_SIZE = 1 << 2,                /* RFC 1870 */
	SMTP_EXT_8BITMIME = 1 << 3,            /* RFC 6152 */
	SMTP_EXT_SMTPUTF8 = 1 << 4,            /* RFC 6531 */
	SMTP_EXT_ENHANCEDSTATUSCODES = 1 << 5, /* RFC 2034 */
	SMTP_EXT_DSN = 1 << 6,                 /* RFC 3461 */
	SMTP_EXT_AUTH = 1 << 7,                /* RFC 4954 */
	SMTP_EXT_CHUNKING = 1 << 8,            /* RFC 3030 */
};

/* An empty capability set. Returns new, caller frees with smtp_ehlo_free(). */
struct smtp_ehlo *smtp_ehlo_new(void);

/* Free e. NULL is fine. */
void smtp_ehlo_free(struct smtp_ehlo *e);

/* Forget everything (RFC 3207 §4.2, after STARTTLS). */
void smtp_ehlo_reset(struct smtp_ehlo *e);

/*
 * Replace the content of e with the complete EHLO reply r (borrowed, only
 * read during the call): line 0 names the server, lines 1.. are
 * capabilities. Lines that are not keyword syntax are skipped.
 */
void smtp_ehlo_parse(struct smtp_ehlo *e, const struct smtp_reply *r);

/*
 * Add one capability line (the text after "250-", NUL-terminated). Returns
 * 0, or -1 with *errstr (static) when the line does not start with an
 * ehlo-keyword or e is full (SMTP_REPLY_LINES_MAX lines); e is then unchanged.
 */
int smtp_ehlo_add(struct smtp_ehlo *e, const char *line, const char **errstr);

/* Set the server name from the first line of the reply ("mx.example Hi"). */
void smtp_ehlo_set_domain(struct smtp_ehlo *e, const char *line);

/* True when every extension in the mask exts was offered. */
bool smtp_ehlo_has(const struct smtp_ehlo *e, unsigned exts);

/* All known extensions offered, as a mask of enum smtp_ext. */
unsigned smtp_ehlo_exts(const struct smtp_ehlo *e);

/* The SIZE limit in octets; 0 when absent, unlimited or unparseable. */
uint64_t smtp_ehlo_size(const struct smtp_ehlo *e);

/* True when AUTH offers mechanism mech (case-insensitive). */
bool smtp_ehlo_auth(const struct smtp_ehlo *e, const char *mech);

/* The server's name from line 0 (printable ASCII), "" if none. Borrowed. */
const char *smtp_ehlo_domain(const struct smtp_ehlo *e);

/* Number of capability lines kept. */
size_t smtp_ehlo_count(const struct smtp_ehlo *e);

/*
 * Capability line i: the whole line as printable ASCII ("SIZE 10240000"),
 * its keyword in upper case ("SIZE") and its parameters ("10240000", "" if
 * none). Borrowed, valid until the next reset/parse/add or free.
 */
const char *smtp_ehlo_line(const struct smtp_ehlo *e, size_t i);
const char *smtp_ehlo_keyword(const struct smtp_ehlo *e, size_t i);
const char *smtp_ehlo_params(const struct smtp_ehlo *e, size_t i);

/*
 * Parameters of the first line whose keyword is kw (case-insensitive),
 * "" when it has none, NULL when the keyword was not offered. Borrowed.
 */
const char *smtp_ehlo_find(const struct smtp_ehlo *e, const char *kw);

/* "STARTTLS" for SMTP_EXT_STARTTLS; NULL for anything but a single flag. */
const char *smtp_ehlo_ext_str(enum smtp_ext ext);

#endif
