/*
 * smtp_session: the I/O half of the SMTP client (see smtp_session.h).
 *
 * Bytes come in through a libevent bufferevent (a socket one, then an
 * OpenSSL filter on top of it after STARTTLS), are cut into lines under the
 * RFC 5321 §4.5.3.1.5 cap (relaxed to SMTP_REPLY_LINE_MAX) and fed to the
 * pure machine in smtp_client.c, whose actions are carried out here: write a
 * command, arm the deadline of the phase (§4.5.3.2), start TLS, call the
 * caller back, close.
 *
 * Re-entrancy: every libevent callback of ours counts itself in s->depth.
 * smtp_session_free() inside a callback only marks the session dead; the
 * outermost callback frees it on the way out (nginx's c->destroyed).
 * on_done always comes from its own zero-delay event, at the top of the
 * loop, so the caller may free the session there; so does a transaction's
 * done(), and when both are due done() goes first.
 *
 * The message of a transaction is borrowed from the caller and never
 * copied whole: the output is topped up with dot-stuffed chunks from the
 * machine (smtp_client_body()) whenever the peer has taken enough of it,
 * below a write watermark (also set on the socket under the TLS filter).
 */
#include "smtp/smtp_session.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_ehlo.h"
#include "smtp/smtp_reply.h"
#include "tls/tls_gate.h"

/* Defaults for timeouts left at 0: RFC 5321 §4.5.3.2 (5 minutes). */
#define SMTP_SESSION_CONNECT_MS  30000u
#define SMTP_SESSION_GREETING_MS 300000u
#define SMTP_SESSION_COMMAND_MS  300000u
/* RFC 5321 §4.5.3.2.6: 10 minutes for the reply to the final dot. */
#define SMTP_SESSION_DATA_MS 600000u

/*
 * Stop reading from the socket while this much is buffered: more than a
 * line can ever need, so a line longer than the cap is always detected.
 */
#define SMTP_SESSION_READ_HIGH  (64 * 1024)
#define SMTP_SESSION_READ_CHUNK 1024 /* bytes per read from a peer */

/*
 * The message goes out in chunks of SMTP_SESSION_CHUNK, topped up to
 * SMTP_SESSION_WRITE_HIGH whenever the output has drained to
 * SMTP_SESSION_WRITE_LOW: a 25 MB message costs a few hundred kilobytes.
 */
#define SMTP_SESSION_CHUNK      (64 * 1024)
#define SMTP_SESSION_WRITE_LOW  (64 * 1024)
#define SMTP_SESSION_WRITE_HIGH (256 * 1024)

struct smtp_session {
	struct event_base *base;
	struct smtp_session_params p; /* strings point to our copies */
	struct sockaddr_storage addr;
	char *helo;
	char *id;
	struct smtp_client *fsm;
	struct bufferevent *bev;    /* socket, or the TLS filter over it */
	SSL *ssl;                   /* owned by bev once TLS is up */
	struct tls_gate_slot *slot; /* from STARTTLS to the handshake's end */
	struct event *timer;        /* deadline of the current wait */
	unsigned timer_ms;
	struct event *done_ev; /* delivers on_done from the top */
	int depth;             /* our callbacks on the stack */
	bool dead;             /* freed while depth > 0 */
	bool closed;           /* SMTP_ACT_CLOSE seen */

	struct smtp_txn *txn; /* running, or ended with done() due */
	smtp_txn_done *txn_done;
	void *txn_arg;
	bool txn_ended;       /* t's outputs are final; done() is due */
	struct event *txn_ev; /* delivers done() from the top */
	bool body;            /* sending the message */
	bool body_flush;      /* all of it queued; waiting for it to drain */
};

static void smtp_session_act(struct smtp_session *, const struct smtp_action *);

const char *
smtp_error_str(enum smtp_error e)
{
	switch (e) {
	case SMTP_ERR_NONE:
		return "none";
	case SMTP_ERR_CONNECT_REFUSED:
		return "connect-refused";
	case SMTP_ERR_CONNECT_TIMEOUT:
		return "connect-timeout";
	case SMTP_ERR_TIMEOUT:
		return "timeout";
	case SMTP_ERR_PROTOCOL:
		return "protocol";
	case SMTP_ERR_CLOSED:
		return "closed";
	case SMTP_ERR_REPLY:
		return "reply";
	case SMTP_ERR_STARTTLS_NOT_OFFERED:
		return "starttls-not-offered";
	case SMTP_ERR_STARTTLS_REFUSED:
		return "starttls-refused";
	case SMTP_ERR_TLS_HANDSHAKE:
		return "tls-handshake";
	case SMTP_ERR_ABORTED:
		return "aborted";
	}
	return "unknown";
}

const char *
smtp_phase_str(enum smtp_phase p)
{
	switch (p) {
	case SMTP_PHASE_CONNECT:
		return "connect";
	case SMTP_PHASE_GREETING:
		return "greeting";
	case SMTP_PHASE_EHLO:
		return "ehlo";
	case SMTP_PHASE_HELO:
		return "helo";
	case SMTP_PHASE_STARTTLS:
		return "starttls";
	case SMTP_PHASE_TLS_HANDSHAKE:
		return "tls-handshake";
	case SMTP_PHASE_EHLO_TLS:
		return "ehlo-tls";
	case SMTP_PHASE_READY:
		return "ready";
	case SMTP_PHASE_RSET:
		return "rset";
	case SMTP_PHASE_MAIL:
		return "mail";
	case SMTP_PHASE_RCPT:
		return "rcpt";
	case SMTP_PHASE_DATA:
		return "data";
	case SMTP_PHASE_BODY:
		return "body";
	case SMTP_PHASE_DOT:
		return "dot";
	case SMTP_PHASE_QUIT:
		return "quit";
	case SMTP_PHASE_DONE:
		return "done";
	}
	return "unknown";
}

const char *
smtp_txn_end_str(enum smtp_txn_end e)
{
	switch (e) {
	case SMTP_TXN_OK:
		return "ok";
	case SMTP_TXN_MAIL_REJECTED:
		return "mail-rejected";
	case SMTP_TXN_NO_RCPT:
		return "no-rcpt";
	case SMTP_TXN_DATA_REJECTED:
		return "data-rejected";
	case SMTP_TXN_FAILED:
		return "failed";
	}
	return "unknown";
}

static void
smtp_session_gate_leave(struct smtp_session *s)
{
	tls_gate_leave(s->slot);
	s->slot = NULL;
}

static void
smtp_session_destroy(struct smtp_session *s)
{
	smtp_session_gate_leave(s);
	if (s->bev != NULL)
		bufferevent_free(s->bev); /* closes the socket, frees SSL */
	event_free(s->timer);
	event_free(s->done_ev);
	event_free(s->txn_ev);
	smtp_client_free(s->fsm);
	free(s->helo);
	free(s->id);
	free(s);
}

static void
smtp_session_enter(struct smtp_session *s)
{
	s->depth++;
}

/* Leave one of our callbacks; free a session that died inside it. */
static void
smtp_session_leave(struct smtp_session *s)
{
	ASSERT(s->depth > 0);
	if (--s->depth == 0 && s->dead)
		smtp_session_destroy(s);
}

static void
smtp_session_step(struct smtp_session *s, const struct smtp_event *ev)
{
	struct smtp_action act;

	smtp_client_step(s->fsm, ev, &act);
	smtp_session_act(s, &act);
}

/* Feed an event that carries no line. */
static void
smtp_session_post(struct smtp_session *s, enum smtp_event_type type,
    enum smtp_error err, const char *text)
{
	struct smtp_event ev = { .type = type, .error = err, .text = text };

	smtp_session_step(s, &ev);
}

static void
smtp_session_arm(struct smtp_session *s, unsigned ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000 * 1000),
	};

	s->timer_ms = ms;
	evtimer_add(s->timer, &tv);
}

/*
 * Text of the OpenSSL errors libevent saw on bev, else of errno when what
 * says BEV_EVENT_ERROR (after an EOF errno is stale), else none.
 */
static void
smtp_session_io_text(
    struct smtp_session *s, short what, char *dst, size_t len, const char *none)
{
	unsigned long e;
	size_t used = 0;
	int err = (what & BEV_EVENT_ERROR) ? EVUTIL_SOCKET_ERROR() : 0;

	dst[0] = '\0';
	while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		/* libevent also queues the SSL_get_error() code: no library. */
		if (ERR_GET_LIB(e) == 0)
			continue;
		if (used > 0 && used + 2 < len) {
			memcpy(dst + used, "; ", 3);
			used += 2;
		}
		if (used + 1 < len)
			ERR_error_string_n(e, dst + used, len - used);
		used += strlen(dst + used);
	}
	if (dst[0] != '\0')
		return;
	if (err != 0 && err != EAGAIN && err != EINPROGRESS)
		smtp_reply_sanitize(
		    dst, len, strerror(err), strlen(strerror(err)));
	else
		smtp_reply_sanitize(dst, len, none, strlen(none));
}

/*
 * Take the next complete line out of the input into line (without its line
 * end, NUL-terminated). Returns 1 with *n set, 0 when no complete line is
 * there yet, -1 when the line is over the cap, finished or not: a peer that
 * never sends CRLF must not make us buffer forever.
 */
static int
smtp_session_next_line(struct smtp_session *s, char *line, size_t *n)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr eol;
	size_t eol_len;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	*n = eol.pos < 0 ? evbuffer_get_length(in) : (size_t)eol.pos;
	if (*n > SMTP_REPLY_LINE_MAX)
		return -1;
	if (eol.pos < 0)
		return 0;
	evbuffer_remove(in, line, *n);
	evbuffer_drain(in, eol_len);
	line[*n] = '\0';
	return 1;
}

static void
smtp_session_trace_line(struct smtp_session *s, const char *line, size_t n)
{
	char safe[SMTP_REPLY_LINE_MAX + 1];

	if (!log_trace_on(LOG_CAT_SMTP))
		return;
	smtp_reply_sanitize(safe, sizeof(safe), line, n);
	log_trace(LOG_CAT_SMTP, "%s < %s", s->id, safe);
}

/* Feed complete lines to the machine until it stops wanting them. */
static void
smtp_session_read_lines(struct smtp_session *s)
{
	char line[SMTP_REPLY_LINE_MAX + 1];
	struct smtp_event ev = { .type = SMTP_EV_LINE, .line = line };
	int rc;

	while (!s->dead && !s->closed &&
	    smtp_client_phase(s->fsm) != SMTP_PHASE_TLS_HANDSHAKE) {
		if ((rc = smtp_session_next_line(s, line, &ev.len)) == 0)
			return;
		if (rc == -1) {
			smtp_session_post(s, SMTP_EV_ERROR, SMTP_ERR_PROTOCOL,
			    "reply line too long");
			return;
		}
		smtp_session_trace_line(s, line, ev.len);
		smtp_session_step(s, &ev);
	}
}

static void
smtp_session_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	smtp_session_enter(s);
	smtp_session_read_lines(s);
	/*
	 * Waiting for the next reply: give the TLS record buffers back. With
	 * SSL_MODE_RELEASE_BUFFERS OpenSSL does so itself after a record,
	 * except for the write buffer set up to read a TLS 1.3 session
	 * ticket (16 KiB per session; docs/PERFORMANCE.md). A no-op while
	 * either holds data.
	 */
	if (!s->dead && s->ssl != NULL)
		SSL_free_buffers(s->ssl);
	smtp_session_leave(s);
}

/*
 * OpenSSL's message callback: a session ticket arrived after the
 * handshake (RFC 8446 §4.6.1). We never resume, but reading it left the
 * write buffer allocated: have the read callback, which frees it, run
 * once OpenSSL is done (deferred, so not from inside SSL_read).
 */
static void
smtp_session_tls_msg(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct smtp_session *s = arg;

	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    *(const unsigned char *)buf == SSL3_MT_NEWSESSION_TICKET)
		bufferevent_trigger(s->bev, EV_READ,
		    BEV_OPT_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
}

static void
smtp_session_tls_connected(struct smtp_session *s)
{
	bool ok = true;

	smtp_session_gate_leave(s);
	s->ssl = bufferevent_openssl_get_ssl(s->bev);
	log_trace(LOG_CAT_SMTP, "%s: TLS established: %s %s", s->id,
	    SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
	if (s->p.on_tls != NULL)
		ok = s->p.on_tls(s, s->ssl, s->p.arg);
	if (s->dead)
		return;
	smtp_session_post(s, ok ? SMTP_EV_TLS_DONE : SMTP_EV_TLS_REJECTED,
	    SMTP_ERR_NONE, NULL);
}

/* EOF or error on the connection: classify it by where we were. */
static void
smtp_session_io_error(struct smtp_session *s, short what)
{
	char text[256];

	switch (smtp_client_phase(s->fsm)) {
	case SMTP_PHASE_CONNECT:
		smtp_session_io_text(
		    s, what, text, sizeof(text), "connect failed");
		smtp_session_post(
		    s, SMTP_EV_ERROR, SMTP_ERR_CONNECT_REFUSED, text);
		break;
	case SMTP_PHASE_TLS_HANDSHAKE:
		smtp_session_io_text(s, what, text, sizeof(text),
		    "connection closed during the TLS handshake");
		smtp_session_post(
		    s, SMTP_EV_ERROR, SMTP_ERR_TLS_HANDSHAKE, text);
		break;
	default:
		smtp_session_io_text(s, what, text, sizeof(text),
		    "connection closed by the peer");
		smtp_session_post(s, SMTP_EV_CLOSED, SMTP_ERR_CLOSED, text);
		break;
	}
}

static void
smtp_session_on_event(struct smtp_session *s, short what)
{
	if (s->dead || s->closed)
		return;
	if ((what & BEV_EVENT_CONNECTED) &&
	    smtp_client_phase(s->fsm) == SMTP_PHASE_CONNECT) {
		log_trace(LOG_CAT_SMTP, "%s: connected", s->id);
		smtp_session_post(s, SMTP_EV_CONNECTED, SMTP_ERR_NONE, NULL);
	} else if (what & BEV_EVENT_CONNECTED)
		smtp_session_tls_connected(s);
	else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		/* Lines that came with the EOF still count. */
		if (what & BEV_EVENT_EOF)
			smtp_session_read_lines(s);
		if (!s->dead && !s->closed)
			smtp_session_io_error(s, what);
	}
}

static void
smtp_session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	smtp_session_enter(s);
	smtp_session_on_event(s, what);
	smtp_session_leave(s);
}

static void
smtp_session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	char text[128];

	smtp_session_enter(s);
	snprintf(text, sizeof(text), "no progress in %s within %u ms",
	    smtp_phase_str(smtp_client_phase(s->fsm)), s->timer_ms);
	smtp_session_post(s, SMTP_EV_TIMEOUT, SMTP_ERR_TIMEOUT, text);
	smtp_session_leave(s);
}

/* Hand an ended transaction back; the caller may start the next one. */
static void
smtp_session_txn_deliver(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	smtp_txn_done *done = s->txn_done;
	void *arg = s->txn_arg;

	s->txn = NULL;
	s->txn_done = NULL;
	s->txn_arg = NULL;
	s->txn_ended = false;
	log_trace(LOG_CAT_SMTP, "%s: transaction done: %s", s->id,
	    smtp_txn_end_str(t->end));
	done(s, t, arg);
}

static void
smtp_session_txn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	smtp_session_enter(s);
	if (s->txn != NULL && s->txn_ended)
		smtp_session_txn_deliver(s);
	smtp_session_leave(s);
}

static void
smtp_session_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	const struct smtp_result *res = smtp_client_result(s->fsm);

	smtp_session_enter(s);
	/*
	 * done() of the transaction the failure cut short comes first, and
	 * of any the caller starts from there on the closed session.
	 */
	while (!s->dead && s->txn != NULL && s->txn_ended)
		smtp_session_txn_deliver(s);
	if (!s->dead) {
		log_trace(LOG_CAT_SMTP, "%s: done: error=%s phase=%s", s->id,
		    smtp_error_str(res->error), smtp_phase_str(res->phase));
		if (s->p.on_done != NULL)
			s->p.on_done(s, res, s->p.arg);
	}
	smtp_session_leave(s);
}

static void smtp_session_pump(struct smtp_session *s);

/* The peer took some of the message: a new data block deadline, more. */
static void
smtp_session_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	smtp_session_enter(s);
	if (s->body && !s->dead && !s->closed) {
		/* RFC 5321 §4.5.3.2.5: the deadline is per data block. */
		smtp_session_arm(s, s->p.command_timeout_ms);
		smtp_session_pump(s);
	}
	smtp_session_leave(s);
}

static void
smtp_session_setup_bev(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, smtp_session_read_cb, smtp_session_write_cb,
	    smtp_session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_SESSION_READ_HIGH);
	/*
	 * SMTP replies are short: read in small pieces, so that each of
	 * thousands of open sessions does not hold a 16 KiB chunk per buffer
	 * (docs/PERFORMANCE.md, memory per session).
	 */
	bufferevent_set_max_single_read(s->bev, SMTP_SESSION_READ_CHUNK);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void smtp_session_starttls(struct smtp_session *s);

/* Our turn at the handshake gate came. */
static void
smtp_session_gate_cb(void *arg)
{
	struct smtp_session *s = arg;

	smtp_session_enter(s);
	if (!s->dead && !s->closed)
		smtp_session_starttls(s);
	smtp_session_leave(s);
}

/* RFC 3207 §4: the server said 220; the next bytes are TLS. */
static void
smtp_session_starttls(struct smtp_session *s)
{
	struct bufferevent *tls;
	SSL *ssl;

	/*
	 * Anything after the 220 was sent before TLS but would be read as if
	 * it came over TLS: a response injection (CVE-2011-0411 style).
	 */
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		smtp_session_post(s, SMTP_EV_ERROR, SMTP_ERR_PROTOCOL,
		    "data after the 220 reply to STARTTLS");
		return;
	}
	/* Reading goes on while we wait: the check above runs again. */
	if (s->p.tls_gate != NULL && s->slot == NULL) {
		s->slot =
		    tls_gate_enter(s->p.tls_gate, smtp_session_gate_cb, s);
		if (!tls_gate_granted(s->slot)) {
			log_trace(LOG_CAT_SMTP,
			    "%s: waiting for a TLS handshake slot", s->id);
			return;
		}
	}
	ssl = s->p.tls_new != NULL ? s->p.tls_new(s->p.arg) : NULL;
	if (s->dead) {
		SSL_free(ssl);
		return;
	}
	if (ssl == NULL) {
		smtp_session_post(s, SMTP_EV_ERROR, SMTP_ERR_TLS_HANDSHAKE,
		    "no TLS context for STARTTLS");
		return;
	}
	/*
	 * The filter moves data down only while the socket's output is under
	 * its high watermark; without one it would encrypt a whole message
	 * into memory at once.
	 */
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, SMTP_SESSION_WRITE_HIGH);
	SSL_set_msg_callback(ssl, smtp_session_tls_msg);
	SSL_set_msg_callback_arg(ssl, s);
	/* With CLOSE_ON_FREE the filter owns ssl and the socket bufferevent. */
	tls = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL)
		panic("bufferevent_openssl_filter_new: out of memory");
	/* Servers often close without close_notify after QUIT. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	smtp_session_setup_bev(s);
}

/* One trace line per command: a pipelined group holds several. */
static void
smtp_session_trace_cmds(struct smtp_session *s, const char *p, size_t len)
{
	const char *end = p + len, *eol;
	size_t n;

	if (!log_trace_on(LOG_CAT_SMTP))
		return;
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		n = eol != NULL ? (size_t)(eol - p) : (size_t)(end - p);
		log_trace(LOG_CAT_SMTP, "%s > %.*s", s->id,
		    (int)(n > 0 && p[n - 1] == '\r' ? n - 1 : n), p);
		p += n + 1;
	}
}

static void
smtp_session_send(struct smtp_session *s, const struct smtp_action *a)
{
	smtp_session_trace_cmds(s, a->data, a->len);
	bufferevent_write(s->bev, a->data, a->len);
}

static unsigned
smtp_session_timer_ms(const struct smtp_session *s, enum smtp_timer t)
{
	switch (t) {
	case SMTP_TIMER_GREETING:
		return s->p.greeting_timeout_ms;
	case SMTP_TIMER_DATA:
		return s->p.data_timeout_ms;
	default:
		return s->p.command_timeout_ms;
	}
}

/*
 * Top the output up with the next dot-stuffed chunks of the message, up to
 * the high watermark; the write callback brings us back once it has
 * drained to the low one. When all of it is queued, wait until it has
 * left too (low watermark 0), so that the final dot's deadline
 * (SMTP_TIMER_DATA) covers the dot only.
 */
static void
smtp_session_pump(struct smtp_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct evbuffer_iovec v;
	size_t n;

	while (!s->body_flush &&
	    evbuffer_get_length(out) < SMTP_SESSION_WRITE_HIGH) {
		if (evbuffer_reserve_space(out, SMTP_SESSION_CHUNK, &v, 1) != 1)
			panic("evbuffer_reserve_space: out of memory");
		n = smtp_client_body(s->fsm, v.iov_base, v.iov_len);
		v.iov_len = n;
		if (evbuffer_commit_space(out, &v, 1) != 0)
			panic("evbuffer_commit_space failed");
		s->body_flush = n == 0;
	}
	if (s->body_flush && evbuffer_get_length(out) == 0) {
		s->body = false;
		bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
		smtp_session_post(s, SMTP_EV_BODY_DONE, SMTP_ERR_NONE, NULL);
	} else
		bufferevent_setwatermark(s->bev, EV_WRITE,
		    s->body_flush ? 0 : SMTP_SESSION_WRITE_LOW, 0);
}

static void
smtp_session_body_start(struct smtp_session *s)
{
	log_trace(LOG_CAT_SMTP, "%s > (message: %zu octets, dot-stuffed)",
	    s->id, s->txn->len);
	s->body = true;
	s->body_flush = false;
	smtp_session_pump(s);
}

/* done() is due; it comes from the top of the loop. */
static void
smtp_session_txn_ended(struct smtp_session *s)
{
	s->txn_ended = true;
	event_active(s->txn_ev, EV_TIMEOUT, 0);
}

/* Carry out what the machine decided. */
static void
smtp_session_act(struct smtp_session *s, const struct smtp_action *a)
{
	if (a->timer != SMTP_TIMER_NONE)
		smtp_session_arm(s, smtp_session_timer_ms(s, a->timer));
	switch (a->type) {
	case SMTP_ACT_NONE:
	case SMTP_ACT_WAIT:
		break;
	case SMTP_ACT_SEND:
		smtp_session_send(s, a);
		break;
	case SMTP_ACT_START_TLS:
		smtp_session_starttls(s);
		break;
	case SMTP_ACT_READY:
		evtimer_del(s->timer);
		if (s->p.on_ready != NULL)
			s->p.on_ready(s, s->p.arg);
		break;
	case SMTP_ACT_CLOSE:
		evtimer_del(s->timer);
		smtp_session_gate_leave(s);
		s->closed = true;
		s->body = false;
		/* FAILED by the machine: done() goes before on_done. */
		if (s->txn != NULL)
			s->txn_ended = true;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		event_active(s->done_ev, EV_TIMEOUT, 0);
		break;
	case SMTP_ACT_BODY:
		smtp_session_body_start(s);
		break;
	case SMTP_ACT_TXN_DONE:
		evtimer_del(s->timer);
		smtp_session_txn_ended(s);
		break;
	}
}

/* "smtp [192.0.2.1]:25" for trace lines. */
static char *
smtp_session_default_id(const struct sockaddr *sa, socklen_t len)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
	        NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return xstrdup("smtp [?]");
	return xasprintf("smtp [%s]:%s", host, serv);
}

static void
smtp_session_copy_params(
    struct smtp_session *s, const struct smtp_session_params *p)
{
	ASSERT(p->addr != NULL && p->addrlen <= sizeof(s->addr));
	s->p = *p;
	memcpy(&s->addr, p->addr, p->addrlen);
	s->p.addr = (const struct sockaddr *)&s->addr;
	s->helo = xstrdup(p->helo_name != NULL ? p->helo_name : "localhost");
	s->p.helo_name = s->helo;
	s->id = p->log_id != NULL ?
	    xstrdup(p->log_id) :
	    smtp_session_default_id(p->addr, p->addrlen);
	s->p.log_id = s->id;
	/* Every wait has a deadline: 0 means the default, never "forever". */
	if (s->p.connect_timeout_ms == 0)
		s->p.connect_timeout_ms = SMTP_SESSION_CONNECT_MS;
	if (s->p.greeting_timeout_ms == 0)
		s->p.greeting_timeout_ms = SMTP_SESSION_GREETING_MS;
	if (s->p.command_timeout_ms == 0)
		s->p.command_timeout_ms = SMTP_SESSION_COMMAND_MS;
	if (s->p.data_timeout_ms == 0)
		s->p.data_timeout_ms = SMTP_SESSION_DATA_MS;
}

struct smtp_session *
smtp_session_start(struct event_base *base, const struct smtp_session_params *p)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->base = base;
	smtp_session_copy_params(s, p);
	s->fsm = smtp_client_new(s->id, s->helo, p->tls_mode);
	s->timer = evtimer_new(base, smtp_session_timer_cb, s);
	s->done_ev = evtimer_new(base, smtp_session_done_cb, s);
	s->txn_ev = evtimer_new(base, smtp_session_txn_cb, s);
	s->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (s->timer == NULL || s->done_ev == NULL || s->txn_ev == NULL ||
	    s->bev == NULL)
		panic("smtp_session_start: out of memory");
	smtp_session_setup_bev(s);
	smtp_session_arm(s, s->p.connect_timeout_ms);
	log_trace(LOG_CAT_SMTP, "%s: connecting", s->id);
	/*
	 * An immediate failure may already have run the event callback; the
	 * machine then ignores this second report. Either way on_done waits
	 * for the loop (done_ev), never runs from here.
	 */
	smtp_session_enter(s);
	if (bufferevent_socket_connect(s->bev, s->p.addr, (int)s->p.addrlen) ==
	        -1 &&
	    !s->closed) {
		char text[256];

		smtp_session_io_text(
		    s, BEV_EVENT_ERROR, text, sizeof(text), "connect failed");
		smtp_session_post(
		    s, SMTP_EV_ERROR, SMTP_ERR_CONNECT_REFUSED, text);
	}
	/* No caller code ran, so nobody can have freed s. */
	ASSERT(!s->dead);
	s->depth--;
	return s;
}

void
smtp_session_quit(struct smtp_session *s)
{
	if (s->dead || s->closed)
		return;
	smtp_session_enter(s);
	smtp_session_post(s, SMTP_EV_QUIT, SMTP_ERR_NONE, NULL);
	smtp_session_leave(s);
}

/* Outputs of a transaction that never reached the machine. */
static void
smtp_session_txn_void(struct smtp_txn *t)
{
	size_t i;

	t->end = SMTP_TXN_FAILED;
	memset(&t->mail_reply, 0, sizeof(t->mail_reply));
	memset(&t->data_reply, 0, sizeof(t->data_reply));
	for (i = 0; i < t->nrcpt; i++)
		memset(&t->rcpt_reply[i], 0, sizeof(t->rcpt_reply[i]));
}

void
smtp_session_transaction(
    struct smtp_session *s, struct smtp_txn *t, smtp_txn_done *done, void *arg)
{
	struct smtp_event ev = { .type = SMTP_EV_TXN, .txn = t };

	/* One at a time, on a live session: anything else is a bug. */
	ASSERT(!s->dead && s->txn == NULL);
	ASSERT(t != NULL && done != NULL);
	s->txn = t;
	s->txn_done = done;
	s->txn_arg = arg;
	if (s->closed) {
		/* It ended before the caller heard: on_done is on its way. */
		smtp_session_txn_void(t);
		smtp_session_txn_ended(s);
		return;
	}
	smtp_session_enter(s);
	smtp_session_step(s, &ev);
	smtp_session_leave(s);
}

bool
smtp_session_offers(const struct smtp_session *s, const char *keyword)
{
	return smtp_ehlo_find(smtp_client_ehlo(s->fsm), keyword) != NULL;
}

const struct smtp_ehlo *
smtp_session_ehlo(const struct smtp_session *s)
{
	return smtp_client_ehlo(s->fsm);
}

size_t
smtp_session_ehlo_count(const struct smtp_session *s)
{
	return smtp_ehlo_count(smtp_client_ehlo(s->fsm));
}

const char *
smtp_session_ehlo_line(const struct smtp_session *s, size_t i)
{
	const struct smtp_ehlo *e = smtp_client_ehlo(s->fsm);

	return i < smtp_ehlo_count(e) ? smtp_ehlo_line(e, i) : NULL;
}

const struct smtp_result *
smtp_session_result(const struct smtp_session *s)
{
	return smtp_client_result(s->fsm);
}

SSL *
smtp_session_ssl(const struct smtp_session *s)
{
	return s->ssl;
}

void
smtp_session_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	if (s->depth > 0) {
		/* Inside one of our callbacks: the outermost one frees it. */
		s->dead = true;
		smtp_session_gate_leave(s);
		evtimer_del(s->timer);
		event_del(s->done_ev);
		event_del(s->txn_ev);
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		return;
	}
	smtp_session_destroy(s);
}
