/*
 * dsn: delivery status notifications (RFC 3464) for the sender: failures
 * (Action: failed), delay warnings (Action: delayed) and, when asked with
 * NOTIFY=SUCCESS, successes (Action: relayed/delivered).
 *
 * The human-readable part speaks to the person who sent the mail: what
 * happened in plain words, which domain failed which check, that the fault
 * is at the recipient's domain and what its administrator must fix, and the
 * command an administrator can run to see it (`danerelay check DOMAIN`).
 */
#ifndef DR_DSN_H
#define DR_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
};

struct dsn_rcpt {
	const char *addr;  /* final recipient (rfc822) */
	const char *orcpt; /* ORCPT as given ("rfc822;x@y") or NULL */
	enum dsn_action action;
	const char *status;      /* "5.7.323" */
	const char *result_type; /* RFC 8460 name or NULL */
	const char *remote_mta;  /* host name of the MX, or NULL */
	const char *diagnostic;  /* remote reply ("550 5.1.1 no such user") or
	                          * our text when no server answered */
	time_t last_attempt;     /* 0 = none */
	time_t will_retry_until; /* delayed: when we give up, else 0 */
};

struct dsn_msg {
	const char *reporting_mta; /* our host name */
	const char *from;          /* "MAILER-DAEMON@host" */
	const char *to;            /* the original envelope sender */
	const char *envid;         /* or NULL */
	bool ret_full;             /* RET=FULL: return the whole message */
	const uint8_t *orig;       /* the original message (CRLF) */
	size_t orig_len;
	const char *orig_message_id; /* or NULL */
	const char *orig_subject;    /* or NULL */
	time_t arrival;
	time_t now; /* Date: of the report */
	const struct dsn_rcpt *rcpts;
	size_t nrcpt;
};

/*
 * Build the complete report message (RFC 5322 header + multipart/report;
 * report-type=delivery-status, RFC 3464 §2), CRLF line ends, lines under
 * 998 octets. All recipients must share one action. Returns new bytes
 * (caller frees), *len their length.
 */
uint8_t *dsn_build(const struct dsn_msg *m, size_t *len);

/* Plain-words explanation of a status/result type for the human part. */
const char *dsn_explain(const char *status, const char *result_type);

/*
 * Notes on dsn_build (docs/NDR.md shows the result):
 *  - The report goes to m->to with a null reverse-path (MAIL FROM:<>,
 *    RFC 3461 §6.2); never build one for a message whose sender was null.
 *  - Subject: the phrase of the action, then ": " and the original subject
 *    (from orig_subject, else from the original's header), RFC 2047
 *    encoded when it is not plain ASCII.
 *  - Returned content (part 3): the whole message (message/rfc822) only
 *    for Action: failed with ret_full, at most DSN_RET_FULL_MAX octets and
 *    clean (CRLF lines of at most 998 octets, no NUL); otherwise the
 *    header section (text/rfc822-headers), line ends made CRLF. RFC 3461
 *    §4.3 allows headers only for a large message even with RET=FULL.
 *    Delay and success reports always return headers only.
 *  - Internationalised originals (RFC 6533): when an address or the
 *    original's header holds a non-ASCII octet (dsn_is_global), the parts
 *    are message/global-delivery-status and message/global(-headers), and
 *    non-ASCII addresses use the "utf-8" address type; the report must
 *    then be sent with SMTPUTF8. Otherwise the report is 7-bit except a
 *    returned 8-bit body (Content-Transfer-Encoding: 8bit, needs 8BITMIME).
 *  - orcpt and envid are the values after xtext decoding (RFC 3461 §4);
 *    orcpt keeps its address type ("rfc822;bob@example.com"), a value
 *    without one is taken as rfc822.
 *  - Statuses are made to agree with the action (failed 5.x.x, delayed
 *    4.x.x, delivered/relayed 2.x.x); a malformed one becomes x.0.0.
 *  - A diagnostic that is an SMTP reply ("550 5.1.1 ...") is reported as
 *    "smtp; ...", anything else as our own text "X-Danerelay; ..."; CR/LF
 *    of multi-line replies become spaces.
 *  - Every text taken from the inputs is cleaned: control characters
 *    become spaces, invalid UTF-8 becomes U+FFFD (or '?' where only ASCII
 *    is allowed), lengths are capped.
 * m->reporting_mta and at least one recipient are required.
 */

/* RFC 3464 §2.3.3 name of an action: "failed", "delayed", ... */
const char *dsn_action_str(enum dsn_action a);

/* Largest original returned in full (RFC 3461 §4.3), in octets. */
#define DSN_RET_FULL_MAX (10 * 1024 * 1024)
/* Largest original returned in full when the sender gave no RET. */
#define DSN_RET_DEFAULT_MAX (64 * 1024)

/*
 * What to put in ret_full when the sender gave no RET parameter: true
 * (the whole message) up to DSN_RET_DEFAULT_MAX octets, false (headers
 * only) above, as Postfix and others do.
 */
bool dsn_ret_default(size_t orig_len);

/*
 * True when the report for m uses the RFC 6533 internationalised types and
 * must be sent with SMTPUTF8 (see the notes above).
 */
bool dsn_is_global(const struct dsn_msg *m);

/*
 * The explanation of dsn_explain() for one recipient, with the recipient's
 * domain and the MX host (r->remote_mta) named, and the remote reply code
 * used to tell a temporary from a permanent refusal. Returns new (caller
 * frees).
 */
char *dsn_explain_rcpt(const struct dsn_rcpt *r);

/*
 * True when s starts like an SMTP reply: "[2-5]xx" then space, '-' or end.
 * The report then calls a diagnostic "Remote reply", else "Reason" (our
 * own text, when no server answered); the console's /trace does the same.
 */
bool dsn_text_is_reply(const char *s);

/*
 * For tests: the source of random octets (Message-ID, MIME boundary).
 * NULL restores the default (getentropy(3)).
 */
void dsn_set_random(void (*fn)(void *p, size_t n));

#endif
