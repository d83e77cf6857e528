/*
 * smtp_server: the pure state machine of one inbound ESMTP session.
 *
 * The mirror of smtp_client: events go in (connected, input bytes, TLS
 * done, credentials checked, message committed, timeout, shutdown), one
 * action comes out (wait for input, start TLS, check credentials, commit
 * the message, close), and the replies to send pile up in an output
 * buffer. It does no I/O, reads no clock and checks no password, so a test
 * can replay a whole dialogue; server/server_session.c is the I/O half.
 *
 * The machine takes raw input, not lines: it cuts command lines itself
 * (RFC 5321 §2.3.8: CRLF only), so pipelining (RFC 2920), STARTTLS with
 * pipelined junk behind it (RFC 3207 §5) and the message data with its
 * dot-stuffing (RFC 5321 §4.5.2) are all decided here, where the tests see
 * them. Every input event is told all buffered input; the action says how
 * many octets were used.
 *
 * Choices (docs/SERVER.md): commands must end with CRLF, a bare LF in a
 * command is answered with 500; message data is stored byte for byte
 * after the Received header we prepend (RFC 5321 §4.4), and a message
 * holding a bare CR or LF is refused at the final dot (554 5.6.0) rather
 * than altered, since ambiguous line ends are what SMTP smuggling abuses;
 * only CRLF.CRLF ends the data.
 */
#ifndef DR_SMTP_SERVER_H
#define DR_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "smtp/smtp_cmd.h"

struct smtp_server;

enum smtp_server_phase {
	SMTP_SRV_CONNECT,    /* before the greeting */
	SMTP_SRV_COMMAND,    /* waiting for a command */
	SMTP_SRV_SASL,       /* waiting for a SASL response line */
	SMTP_SRV_AUTH_CHECK, /* the caller checks the credentials */
	SMTP_SRV_TLS,        /* the caller runs the TLS handshake */
	SMTP_SRV_DATA,       /* reading message data */
	SMTP_SRV_COMMIT,     /* the caller stores the message */
	SMTP_SRV_DONE,       /* closed; events are ignored */
};

/* Why a connection is refused at once (RFC 5321 §3.1: 421 greeting). */
enum smtp_server_refuse {
	SMTP_SRV_REFUSE_NONE,
	SMTP_SRV_REFUSE_BUSY,   /* max_connections: 421 4.3.2 */
	SMTP_SRV_REFUSE_PER_IP, /* max_connections_per_ip: 421 4.7.0 */
};

struct smtp_server_params {
	const char *id;          /* prefix of trace lines (copied) */
	const char *hostname;    /* our name (copied; no CR/LF) */
	const char *client_ip;   /* "192.0.2.1" or "2001:db8::1" (copied) */
	bool relay_allowed;      /* client address in relay_networks */
	bool tls_available;      /* offer STARTTLS */
	bool auth_available;     /* offer AUTH PLAIN LOGIN (after TLS only) */
	size_t max_message_size; /* octets, as received (SIZE, RFC 1870) */
	size_t max_recipients;
	enum smtp_server_refuse refuse;
	/*
	 * Whether the queue lacks room for a message of size octets (0:
	 * unknown), asked at MAIL and RCPT; NULL: never. The machine stays
	 * pure: the caller measures.
	 */
	bool (*storage_low)(size_t size, void *arg);
	/*
	 * Whether the queue cannot store a message now (store = postgres:
	 * the database is away), asked at MAIL with storage_arg; NULL:
	 * never. Refused with 451 4.3.0 before the client sends the data.
	 */
	bool (*queue_down)(void *arg);
	void *storage_arg;
};

enum smtp_server_event_type {
	SMTP_SRV_EV_CONNECTED,   /* send the greeting */
	SMTP_SRV_EV_INPUT,       /* data, len: all input buffered so far */
	SMTP_SRV_EV_TLS_DONE,    /* handshake done; text: "TLSv1.3 with ..." */
	SMTP_SRV_EV_AUTH_RESULT, /* ok: the credentials are good */
	SMTP_SRV_EV_COMMITTED,   /* ok: stored as text (the queue id) */
	SMTP_SRV_EV_TIMEOUT,     /* the current wait's deadline passed */
	SMTP_SRV_EV_SHUTDOWN,    /* the server is going down */
	SMTP_SRV_EV_CLOSED,      /* the peer is gone: nothing more to send */
	/* The credentials were not checked: busy or locked out (454). */
	SMTP_SRV_EV_AUTH_TEMPFAIL,
};

struct smtp_server_event {
	enum smtp_server_event_type type;
	const char *data; /* INPUT: borrowed for the call */
	size_t len;
	bool ok;
	const char *text;
	time_t now; /* wall clock, used for the Received header */
};

enum smtp_server_action_type {
	SMTP_SRV_ACT_NONE,      /* nothing to do (machine done already) */
	SMTP_SRV_ACT_READ,      /* send the output, wait for input */
	SMTP_SRV_ACT_START_TLS, /* send the output, then the handshake */
	SMTP_SRV_ACT_AUTH,      /* check user/password, feed AUTH_RESULT
	                         * (or AUTH_TEMPFAIL), maybe later */
	SMTP_SRV_ACT_COMMIT,    /* store smtp_server_txn(), feed COMMITTED */
	SMTP_SRV_ACT_CLOSE,     /* send the output, then close */
};

/* Which deadline applies to a READ (RFC 5321 §4.5.3.2). */
enum smtp_server_timer {
	SMTP_SRV_TIMER_NONE,
	SMTP_SRV_TIMER_COMMAND, /* §4.5.3.2.7 */
	SMTP_SRV_TIMER_DATA,    /* §4.5.3.2.5, per chunk of data */
};

struct smtp_server_action {
	enum smtp_server_action_type type;
	enum smtp_server_timer timer;
	/*
	 * INPUT: octets used from the front of the input; drain them. The
	 * rest is an incomplete line: feed it again when more arrives, or
	 * at once if something was consumed (the machine may have stopped
	 * early to let the output drain).
	 */
	size_t consumed;
	/* AUTH: NUL-terminated, borrowed until the next step. */
	const char *user;
	const char *password;
};

/* A recipient of the transaction being committed. */
struct smtp_server_rcpt {
	const char *addr;  /* local@domain, no angle brackets */
	const char *orcpt; /* RFC 3461 ORCPT as given, or NULL */
	unsigned notify;   /* SMTP_NOTIFY_* bits, 0 = not given */
};

/* The transaction to store, valid from COMMIT until the next step. */
struct smtp_server_txn {
	const char *id;     /* ours, as in the Received header */
	const char *sender; /* "" = null reverse-path */
	const char *envid;  /* decoded, or NULL */
	enum smtp_ret ret;
	bool body_8bit; /* BODY=8BITMIME */
	bool smtputf8;
	const char *helo;
	const char *auth_user;  /* or NULL */
	const char *message_id; /* Message-ID header value, or NULL */
	const struct smtp_server_rcpt *rcpts;
	size_t nrcpt;
	const uint8_t *data; /* Received header + message, CRLF line ends, */
	size_t len;          /* not dot-stuffed */
	size_t header_len;   /* octets of our Received header in data */
};

/*
 * A machine in SMTP_SRV_CONNECT; params are copied. Returns new, caller
 * frees with smtp_server_free().
 */
struct smtp_server *smtp_server_new(const struct smtp_server_params *p);

/* Free m (wiping any password it holds). NULL is fine. */
void smtp_server_free(struct smtp_server *m);

/*
 * Feed one event; *act receives what to do next. After SMTP_ACT_CLOSE the
 * machine is in SMTP_SRV_DONE and further events give SMTP_SRV_ACT_NONE.
 */
void smtp_server_step(struct smtp_server *m, const struct smtp_server_event *ev,
    struct smtp_server_action *act);

/*
 * Replies produced so far and not yet taken (CRLF-terminated lines).
 * Borrowed until the next step or smtp_server_output_clear(); the caller
 * sends them and then clears them.
 */
const char *smtp_server_output(const struct smtp_server *m, size_t *len);
void smtp_server_output_clear(struct smtp_server *m);

/* The transaction, while in SMTP_SRV_COMMIT; else NULL. Borrowed. */
const struct smtp_server_txn *smtp_server_txn(const struct smtp_server *m);

enum smtp_server_phase smtp_server_phase(const struct smtp_server *m);
const char *smtp_server_phase_str(enum smtp_server_phase p);

/* Facts for logs: the HELO name (or NULL), the AUTH user (or NULL). */
const char *smtp_server_helo(const struct smtp_server *m);
const char *smtp_server_auth_user(const struct smtp_server *m);

#endif
