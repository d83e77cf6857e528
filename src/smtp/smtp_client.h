/*
 * smtp_client: the pure state machine of an outbound SMTP session.
 *
 * Events go in (connected, a reply line, TLS done, timeout, closed, ...),
 * one action comes out (send this command, start TLS, hand over, close).
 * It does no I/O and reads no clock, so scripted replies can replay a whole
 * dialogue in a unit test; smtp_session.c is the I/O half that obeys it.
 *
 * Phases follow enum smtp_phase: greeting (RFC 5321 §3.1), EHLO with HELO
 * fallback on 5xx (§3.2, §4.1.1.1, not when TLS is required), STARTTLS by
 * the TLS mode (RFC 3207), EHLO again over TLS, READY, QUIT (§4.1.1.10).
 * The machine fills the struct smtp_result the session hands to on_done.
 *
 * A mail transaction (RFC 5321 §3.3) runs as further phases entered from
 * READY: RSET (only when the previous transaction left the server with an
 * open one), MAIL, RCPT, DATA, BODY (the I/O half sends the message, asking
 * smtp_client_body() for dot-stuffed chunks), DOT, and back to READY. With
 * PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out as one group and
 * the replies are matched in order; without it one command at a time.
 */
#ifndef DR_SMTP_CLIENT_H
#define DR_SMTP_CLIENT_H

#include <stddef.h>

#include "smtp/smtp_session.h"

struct smtp_client;
struct smtp_ehlo;

enum smtp_event_type {
	SMTP_EV_CONNECTED,    /* TCP connection established */
	SMTP_EV_LINE,         /* one reply line, without CRLF: line, len */
	SMTP_EV_TLS_DONE,     /* handshake done and the caller accepts it */
	SMTP_EV_TLS_REJECTED, /* handshake done, the caller refuses the peer */
	SMTP_EV_QUIT,         /* the caller wants to end the session */
	SMTP_EV_TIMEOUT,      /* the deadline of the current action passed */
	SMTP_EV_CLOSED,       /* the peer closed the connection */
	SMTP_EV_ERROR,        /* I/O failure classified by the I/O layer */
	SMTP_EV_TXN,          /* added: start transaction txn (from READY) */
	SMTP_EV_BODY_DONE,    /* added: the whole body has been written */
};

struct smtp_event {
	enum smtp_event_type type;
	const char *line; /* SMTP_EV_LINE: borrowed for the call */
	size_t len;
	enum smtp_error error; /* SMTP_EV_ERROR: CONNECT_REFUSED, PROTOCOL,
	                          TLS_HANDSHAKE, ... */
	const char *text;      /* optional detail for result.error_text */
	struct smtp_txn *txn;  /* SMTP_EV_TXN: borrowed until the transaction
	                          ends (SMTP_ACT_TXN_DONE or SMTP_ACT_CLOSE) */
};

enum smtp_action_type {
	SMTP_ACT_NONE,      /* keep waiting; the deadline is unchanged */
	SMTP_ACT_WAIT,      /* arm the timer, wait for a reply */
	SMTP_ACT_SEND,      /* send data, arm the timer, wait for a reply */
	SMTP_ACT_START_TLS, /* start the TLS handshake, arm the timer */
	SMTP_ACT_READY,     /* hand the session to the caller, no timer */
	SMTP_ACT_CLOSE,     /* close the connection; the result is final */
	SMTP_ACT_BODY,      /* added: send smtp_client_body() until it returns
	                       0, then feed SMTP_EV_BODY_DONE; the timer is
	                       re-armed whenever the peer takes more data */
	SMTP_ACT_TXN_DONE,  /* added: the transaction's outputs are final and
	                       the machine is READY again; no timer */
};

/* Which deadline to arm (RFC 5321 §4.5.3.2). */
enum smtp_timer {
	SMTP_TIMER_NONE,
	SMTP_TIMER_GREETING,
	SMTP_TIMER_COMMAND, /* also MAIL, RCPT, DATA and each data block */
	SMTP_TIMER_DATA,    /* added: the reply to the final dot (10 min) */
};

struct smtp_action {
	enum smtp_action_type type;
	enum smtp_timer timer;
	const char *data; /* SEND: bytes with CRLF, valid until next step */
	size_t len;
};

/*
 * A machine in SMTP_PHASE_CONNECT. helo_name is our EHLO/HELO argument
 * (copied; must hold no CR or LF). id prefixes trace lines (copied; NULL is
 * fine). Returns new, caller frees with smtp_client_free().
 */
struct smtp_client *smtp_client_new(
    const char *id, const char *helo_name, enum smtp_tls_mode mode);

/* Free c. NULL is fine. */
void smtp_client_free(struct smtp_client *c);

/*
 * Feed one event; *act receives what to do next. After SMTP_ACT_CLOSE the
 * machine is in SMTP_PHASE_DONE and ignores further events (SMTP_ACT_NONE).
 */
void smtp_client_step(struct smtp_client *c, const struct smtp_event *ev,
    struct smtp_action *act);

/* The current phase. */
enum smtp_phase smtp_client_phase(const struct smtp_client *c);

/*
 * The result so far; final once SMTP_ACT_CLOSE was returned. Borrowed,
 * valid until smtp_client_free().
 */
const struct smtp_result *smtp_client_result(const struct smtp_client *c);

/*
 * The capabilities of the last successful EHLO (empty after HELO, and
 * between STARTTLS and the EHLO over TLS). Borrowed, valid until the next
 * step or free.
 */
const struct smtp_ehlo *smtp_client_ehlo(const struct smtp_client *c);

/*
 * Added. In SMTP_PHASE_BODY: write the next bytes of the message into dst
 * (cap >= 2 bytes): dot-stuffed (RFC 5321 §4.5.2), every line end sent as
 * CRLF (a bare LF becomes CRLF, so no line can hide a dot behind it) and a
 * CRLF added when the message does not end with one; not the final dot,
 * which the machine sends on SMTP_EV_BODY_DONE. Returns the number of
 * bytes written, 0 once everything has been produced (or outside BODY).
 */
size_t smtp_client_body(struct smtp_client *c, char *dst, size_t cap);

#endif
