/*
 * smtp_session: one outbound SMTP connection, the I/O half of the client.
 *
 * It connects (with a deadline), reads the greeting, sends EHLO (HELO if EHLO
 * is refused with 5xx), upgrades with STARTTLS when the caller's TLS mode asks
 * for it, sends EHLO again over TLS, and then hands control to the caller
 * (on_ready). The protocol decisions are made by the pure state machine in
 * smtp_client.c; this file only moves bytes (libevent bufferevents, OpenSSL
 * through bufferevent_openssl) and enforces the timeouts of RFC 5321
 * §4.5.3.2 and the line limits of §4.5.3.1.
 *
 * Failures are reported, not logged: on_done receives an smtp_result saying
 * where and why the session ended. The caller (the dane/check layer, later
 * the delivery layer) turns it into an outcome.
 */
#ifndef DR_SMTP_SESSION_H
#define DR_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct smtp_ehlo;
struct smtp_session;

enum smtp_tls_mode {
	SMTP_TLS_NONE,          /* never STARTTLS */
	SMTP_TLS_OPPORTUNISTIC, /* STARTTLS if offered; go on in cleartext if
	                           not */
	SMTP_TLS_REQUIRED,      /* STARTTLS must be offered and succeed */
};

/* Where a session ended. */
enum smtp_error {
	SMTP_ERR_NONE,            /* QUIT done / still fine */
	SMTP_ERR_CONNECT_REFUSED, /* ECONNREFUSED, EHOSTUNREACH, ... */
	SMTP_ERR_CONNECT_TIMEOUT,
	SMTP_ERR_TIMEOUT,  /* no complete reply within the state's deadline */
	SMTP_ERR_PROTOCOL, /* malformed, overlong or endless reply */
	SMTP_ERR_CLOSED,   /* peer closed the connection unexpectedly */
	SMTP_ERR_REPLY,    /* peer answered 4xx/5xx where 2xx/3xx was needed */
	SMTP_ERR_STARTTLS_NOT_OFFERED, /* TLS required, EHLO lacked STARTTLS */
	SMTP_ERR_STARTTLS_REFUSED,     /* STARTTLS answered with non-220 */
	SMTP_ERR_TLS_HANDSHAKE,        /* handshake failed (not verification) */
	SMTP_ERR_ABORTED, /* the caller aborted (e.g. DANE check failed) */
};

/* Protocol phase, for results and logs. */
enum smtp_phase {
	SMTP_PHASE_CONNECT,
	SMTP_PHASE_GREETING,
	SMTP_PHASE_EHLO,
	SMTP_PHASE_HELO,
	SMTP_PHASE_STARTTLS,
	SMTP_PHASE_TLS_HANDSHAKE,
	SMTP_PHASE_EHLO_TLS,
	SMTP_PHASE_READY,
	SMTP_PHASE_RSET, /* added: transaction phases, entered from READY */
	SMTP_PHASE_MAIL,
	SMTP_PHASE_RCPT,
	SMTP_PHASE_DATA, /* awaiting the reply to DATA (354) */
	SMTP_PHASE_BODY, /* sending the message */
	SMTP_PHASE_DOT,  /* awaiting the reply to the final dot */
	SMTP_PHASE_QUIT,
	SMTP_PHASE_DONE,
};

struct smtp_result {
	enum smtp_error error;
	enum smtp_phase phase; /* phase in which it ended */
	int reply_code;        /* last reply code, 0 if none */
	char reply_text[512]; /* last reply, lines joined by " / ", truncated */
	char error_text[256]; /* human detail: strerror, OpenSSL error, ... */
	bool connected;
	char banner[512]; /* greeting text (first line), "" if none */
	bool esmtp;       /* EHLO accepted */
	bool starttls_offered;
	bool tls; /* TLS established */
};

struct smtp_session_params {
	const struct sockaddr *addr;
	socklen_t addrlen;
	const char *helo_name; /* our EHLO name */
	unsigned connect_timeout_ms;
	unsigned greeting_timeout_ms; /* RFC 5321 §4.5.3.2.1: 5 min */
	unsigned command_timeout_ms;  /* EHLO, STARTTLS, handshake, QUIT */
	unsigned data_timeout_ms;     /* reply to the final dot (RFC 5321
	                                 §4.5.3.2.6: 10 min); 0 = default */
	enum smtp_tls_mode tls_mode;

	/*
	 * Create the SSL object for STARTTLS, fully configured by the caller
	 * (SNI, DANE records and names). Return NULL to fail the session with
	 * SMTP_ERR_TLS_HANDSHAKE. The session takes ownership.
	 */
	SSL *(*tls_new)(void *arg);

	/*
	 * After a successful handshake. The SSL is borrowed (valid until
	 * on_done). Return true to go on (EHLO over TLS), false to abort:
	 * the session sends QUIT and ends with SMTP_ERR_ABORTED.
	 */
	bool (*on_tls)(struct smtp_session *s, SSL *ssl, void *arg);

	/*
	 * The session is ready for a mail transaction (after EHLO, over TLS
	 * when negotiated). The caller either calls smtp_session_quit() or
	 * starts a transaction (smtp_session_transaction(), below). Called
	 * once per session, not again after each transaction.
	 */
	void (*on_ready)(struct smtp_session *s, void *arg);

	/*
	 * The session has ended (after QUIT or on error); called exactly once,
	 * never from within smtp_session_start(). The result is borrowed; the
	 * caller must call smtp_session_free() (allowed inside this callback).
	 */
	void (*on_done)(
	    struct smtp_session *s, const struct smtp_result *res, void *arg);

	void *arg;

	/*
	 * Optional (NULL: none): the TLS handshake gate the session queues at
	 * before its ClientHello (tls/tls_gate.h). Borrowed; must outlive
	 * the session.
	 */
	struct tls_gate *tls_gate;

	/*
	 * Added: prefix of trace lines (copied), e.g. "check mx1.example";
	 * NULL: "smtp [address]:port".
	 */
	const char *log_id;
};

/* Start a session. Returns new; params are copied (strings too). */
struct smtp_session *smtp_session_start(
    struct event_base *base, const struct smtp_session_params *p);

/* Send QUIT (politely, with a deadline) and end the session. */
void smtp_session_quit(struct smtp_session *s);

/*
 * The EHLO capability lines received last (after TLS when negotiated).
 * Capability lines only, not line 0 (the server's name); printable ASCII;
 * NULL when i is out of range. Borrowed, like smtp_session_ehlo().
 */
size_t smtp_session_ehlo_count(const struct smtp_session *s);
const char *smtp_session_ehlo_line(const struct smtp_session *s, size_t i);

/*
 * Added: the parsed capabilities behind smtp_session_ehlo_line() (see
 * smtp/smtp_ehlo.h). Borrowed, valid until the session moves on or is freed.
 */
const struct smtp_ehlo *smtp_session_ehlo(const struct smtp_session *s);

/*
 * Added: the result so far (banner, esmtp, starttls_offered, tls, ...),
 * e.g. for on_tls or on_ready; final once on_done runs. Borrowed, valid
 * until smtp_session_free().
 */
const struct smtp_result *smtp_session_result(const struct smtp_session *s);

/* The SSL object while TLS is up, else NULL. Borrowed. */
SSL *smtp_session_ssl(const struct smtp_session *s);

/* Free the session, closing the connection. NULL is fine. */
void smtp_session_free(struct smtp_session *s);

const char *smtp_error_str(enum smtp_error e);
const char *smtp_phase_str(enum smtp_phase p);

/*
 * Mail transactions (RFC 5321 §3.3), added for the relay. While the session
 * is READY the caller may run one transaction at a time; afterwards the
 * session is READY again (connection reuse: RSET is sent first when the
 * previous transaction did not end cleanly) and the caller runs another or
 * calls smtp_session_quit().
 */

/* Per-recipient reply. */
struct smtp_rcpt_reply {
	int code;        /* 250, 550, ... ; 0 if never answered */
	char status[12]; /* enhanced code from the reply, or "" */
	char text[512];  /* the reply, lines joined by " / " */
};

enum smtp_txn_end {
	SMTP_TXN_OK,            /* DATA accepted (250) for the accepted rcpts */
	SMTP_TXN_MAIL_REJECTED, /* MAIL FROM refused: see mail_reply */
	SMTP_TXN_NO_RCPT,       /* every RCPT refused */
	SMTP_TXN_DATA_REJECTED, /* DATA or the final dot refused */
	SMTP_TXN_FAILED,        /* the session failed (timeout, closed, ...);
	                         * on_done follows with the reason */
};

struct smtp_txn {
	/* input, borrowed until done() */
	const char *mail_from;   /* reverse-path without <>, "" = null */
	const char *mail_params; /* e.g. "RET=HDRS ENVID=x" or NULL; SIZE=,
	                          * BODY=8BITMIME and SMTPUTF8 are added by the
	                          * session when the server offers them and
	                          * the flags below ask for them */
	bool body_8bit;
	bool smtputf8;
	char **rcpts;       /* forward-paths without <> */
	char **rcpt_params; /* per rcpt "NOTIFY=... ORCPT=..." or NULL;
	                     * sent only when the server offers DSN */
	size_t nrcpt;
	const uint8_t *data; /* message: CRLF lines, not dot-stuffed */
	size_t len;

	/* output */
	enum smtp_txn_end end;
	struct smtp_rcpt_reply mail_reply;
	struct smtp_rcpt_reply *rcpt_reply; /* caller allocates nrcpt */
	struct smtp_rcpt_reply data_reply;  /* reply to DATA or to the dot */
};

/*
 * Run transaction t on a READY session (with PIPELINING when offered,
 * RFC 2920). done is called exactly once, never from inside this call;
 * the session is READY again after it unless end == SMTP_TXN_FAILED.
 * The message is dot-stuffed on the fly (RFC 5321 §4.5.2); the DATA
 * deadline of RFC 5321 §4.5.3.2 (data_timeout_ms, default 10 min for the
 * final reply) applies.
 *
 * Added detail of the contract:
 * - t needs nrcpt >= 1 and rcpt_reply with room for nrcpt replies. t, its
 *   strings and its data are borrowed until done() (the data is read in
 *   chunks while it is sent, never copied whole).
 * - Outputs are reset at the start; a reply never received has code 0.
 * - Refusals decided here, before anything is sent, carry a made-up reply
 *   whose text ends in "(not sent)": a message over the server's SIZE
 *   limit ends SMTP_TXN_DATA_REJECTED with 552 5.3.4 in data_reply;
 *   smtputf8 without SMTPUTF8 offered ends SMTP_TXN_DATA_REJECTED with
 *   553 5.6.7 in data_reply (RFC 6531, RFC 3463); in both cases the
 *   reply applies to all recipients and is copied into every rcpt_reply,
 *   while mail_reply keeps code 0.
 *   A sender with control bytes, 8-bit bytes without smtputf8, or too long
 *   a command ends SMTP_TXN_MAIL_REJECTED with 553 5.1.7 (5.6.7) in
 *   mail_reply; such a recipient gets 553 5.1.3 (5.6.7) in its rcpt_reply
 *   and is not sent (all of them: SMTP_TXN_NO_RCPT, nothing sent).
 * - Parameters: SIZE=n is added when SIZE is offered, BODY=8BITMIME when
 *   body_8bit and 8BITMIME is offered, SMTPUTF8 when smtputf8 (and
 *   offered, see above). A body_8bit message to a server without 8BITMIME
 *   is sent as it is, without BODY= (no MIME downgrade; nearly every
 *   server takes 8-bit data, and a bounce would be worse). In mail_params
 *   and rcpt_params, RET, ENVID, NOTIFY and ORCPT go out only when DSN is
 *   offered, any other keyword only when the server offers that keyword
 *   as an extension; SIZE, BODY and SMTPUTF8 given there are dropped
 *   (the session adds its own).
 * - With every RCPT refused the transaction ends SMTP_TXN_NO_RCPT; under
 *   PIPELINING the DATA already sent is answered first: a refusal
 *   (503/554) is kept in data_reply, a 354 gets a lone "." (RFC 2920
 *   §3.1) whose reply is kept in data_reply.
 * - A reply during the message body, a 421, a timeout or a closed
 *   connection end the session: done() with SMTP_TXN_FAILED (the reply,
 *   if any, in the field of the command it answered), then on_done.
 * - After smtp_session_free() done is not called.
 */
typedef void smtp_txn_done(
    struct smtp_session *s, struct smtp_txn *t, void *arg);
void smtp_session_transaction(
    struct smtp_session *s, struct smtp_txn *t, smtp_txn_done *done, void *arg);

/*
 * Whether the server's EHLO (last one) offered an extension keyword
 * (case-insensitive; false after HELO).
 */
bool smtp_session_offers(const struct smtp_session *s, const char *keyword);

/* Added: "ok", "mail-rejected", ... for logs. */
const char *smtp_txn_end_str(enum smtp_txn_end e);

#endif
