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
	 * when negotiated). The caller either calls smtp_session_quit() or,
	 * in a later version, starts a transaction.
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

#endif
