/*
 * smtp_cmd: a strict, table-driven parser for SMTP command lines, the
 * server's half of what smtp_reply is for the client (RFC 5321 §4.1).
 *
 * One line in (without its CRLF), one struct smtp_cmd out: the verb, its
 * argument, and for MAIL and RCPT the path (RFC 5321 §4.1.2) and the ESMTP
 * parameters this relay offers: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8
 * (RFC 6531), RET/ENVID/NOTIFY/ORCPT (RFC 3461) and AUTH (RFC 4954 §5).
 * A line that cannot be accepted yields the reply to give (code, RFC 3463
 * enhanced code, text), so the state machine only decides about sequence
 * and policy. No I/O, no allocation: a struct smtp_cmd is filled in place,
 * which makes the parser cheap to fuzz.
 *
 * Strict where it protects the relay, lenient where clients commonly err
 * harmlessly: several spaces between words, a space after "FROM:", trailing
 * spaces, lowercase verbs, an underscore or an address literal in HELO.
 * Control characters (CR, LF, NUL, TAB, DEL) in a command are refused.
 */
#ifndef DR_SMTP_CMD_H
#define DR_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Longest command line we accept, without its CRLF. RFC 5321 §4.5.3.1.4
 * allows 512 octets with CRLF and lets extensions raise it: RFC 3461 §5
 * adds 100 (ENVID) and 500 (ORCPT), RFC 1870 26 (SIZE), RFC 4954 §5 500
 * (AUTH=). 2048 covers all of them at once, like Postfix's line limit.
 */
#define SMTP_CMD_LINE_MAX 2048
/* RFC 4954 §4: a SASL response line may be 12288 octets. */
#define SMTP_CMD_AUTH_LINE_MAX 12288
/* RFC 5321 §4.5.3.1.3: a path, angle brackets included. */
#define SMTP_CMD_PATH_MAX 256
/* RFC 5321 §4.5.3.1.2. */
#define SMTP_CMD_DOMAIN_MAX 255
/* RFC 3461 §4.4 and §4.2: ENVID and ORCPT values, encoded. */
#define SMTP_CMD_ENVID_MAX 100
#define SMTP_CMD_ORCPT_MAX 500
/* RFC 4422 §3.1: SASL mechanism names are 1-20 characters. */
#define SMTP_CMD_MECH_MAX 20

enum smtp_verb {
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

/* RFC 3461 §4.1 NOTIFY bits; the values match QUEUE_NOTIFY_*. */
#define SMTP_NOTIFY_NEVER   0x1
#define SMTP_NOTIFY_SUCCESS 0x2
#define SMTP_NOTIFY_FAILURE 0x4
#define SMTP_NOTIFY_DELAY   0x8

/* RFC 3461 §4.3. */
enum smtp_ret {
	SMTP_RET_UNSET,
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* RFC 6152 BODY=. */
enum smtp_body {
	SMTP_BODY_UNSET,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

struct smtp_cmd {
	enum smtp_verb verb;

	/*
	 * HELO/EHLO: the domain or address literal. VRFY, EXPN, HELP, NOOP:
	 * the text after the verb (may be empty). Others: "".
	 */
	char arg[SMTP_CMD_LINE_MAX + 1];

	/* MAIL and RCPT */
	char path[SMTP_CMD_PATH_MAX + 1]; /* mailbox without <> and source
	                                     route; "" = null path <> */
	bool postmaster;                  /* RCPT TO:<Postmaster> (no domain) */
	bool params;                      /* any ESMTP parameter was given */
	bool has_size;
	uint64_t size; /* SIZE=; saturates at UINT64_MAX */
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	bool has_envid;
	char envid[SMTP_CMD_ENVID_MAX + 1]; /* xtext-decoded */
	unsigned notify;                    /* SMTP_NOTIFY_*, 0 = not given */
	bool has_orcpt;
	char orcpt[SMTP_CMD_ORCPT_MAX + 1]; /* as given: "rfc822;a+2Bb@c" */
	char orcpt_addr[SMTP_CMD_ORCPT_MAX + 1]; /* its address, decoded */

	/* AUTH */
	char mech[SMTP_CMD_MECH_MAX + 1];    /* uppercased */
	bool has_initial;                    /* an initial response was given */
	char initial[SMTP_CMD_LINE_MAX + 1]; /* as sent ("=" = empty) */

	/* When smtp_cmd_parse() fails: the reply to give (static strings). */
	int code;        /* 500, 501, 553, 555 */
	const char *esc; /* "5.5.2" */
	const char *text;
};

/*
 * Parse one command line of len octets, without its CRLF (need not be
 * NUL-terminated). utf8 says whether the mail transaction was opened with
 * SMTPUTF8, which lets RCPT carry a UTF-8 address (MAIL decides that from
 * its own parameters). Returns 0 with cmd filled, or -1 with cmd->code,
 * cmd->esc and cmd->text set to the reply to give.
 */
int smtp_cmd_parse(
    struct smtp_cmd *cmd, const char *line, size_t len, bool utf8);

/* "MAIL", "STARTTLS", ... (static). */
const char *smtp_verb_str(enum smtp_verb v);

/*
 * Decode RFC 3461 §4 xtext of len octets into dst (size dstlen > 0,
 * NUL-terminated). Returns the decoded length, or -1 for a character
 * outside xtext, a bad "+XX" escape (upper-case hex only), a decoded NUL,
 * or a result that does not fit.
 */
int smtp_xtext_decode(char *dst, size_t dstlen, const char *src, size_t len);

/*
 * An ORCPT value as received and queued ("rfc822;bob+2Bx", RFC 3461
 * §4.2: addr-type ";" xtext) with its xtext decoded ("rfc822;bob+x"),
 * the form a DSN's Original-Recipient field shows (RFC 3464 §2.3.1).
 * Returns new (caller frees); a value that is not addr-type ";" xtext is
 * returned unchanged.
 */
char *smtp_orcpt_decode(const char *orcpt);

/*
 * Whether s (len octets) is a domain (RFC 5321 §4.1.2: LDH labels of at
 * most 63 octets, 255 in all). utf8 admits U-labels (RFC 6531 §3.3), lax
 * admits '_' (seen in the HELO names of real clients).
 */
bool smtp_cmd_domain_ok(const char *s, size_t len, bool utf8, bool lax);

/* Whether s (len octets) is an RFC 5321 §4.1.3 address literal "[...]". */
bool smtp_cmd_literal_ok(const char *s, size_t len);

#endif
