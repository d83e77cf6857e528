/*
 * server_session: one inbound connection, the I/O half of smtp_server.
 *
 * Bytes come in through a libevent bufferevent (a socket one, then an
 * OpenSSL filter over it after STARTTLS) and go to the pure machine as
 * they are; its actions are carried out here: send the replies, arm the
 * deadline (RFC 5321 §4.5.3.2), run the TLS handshake, check credentials,
 * commit the message to the queue, close.
 *
 * Input is fed while the machine reads and the last feed used something
 * (it may stop early to let output drain); replies go out when the input
 * is used up (RFC 2920 §3.2), since libevent writes them once our callback
 * returns. Too much unsent output stops the feeding until the client reads
 * (backpressure by watermarks).
 *
 * A session never frees itself inside its own callbacks: it marks itself
 * dead and a zero-delay event frees it from the top of the loop. Closing
 * is graceful: the last replies are flushed, our side is shut down, and
 * the client gets a moment to read them before the socket is closed, so a
 * 421 or 500 is not lost to a TCP reset.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/queue.h"
#include "dkim/dkim.h"
#include "server/server_int.h"
#include "smtp/smtp_reply.h"

_Static_assert(SMTP_NOTIFY_NEVER == QUEUE_NOTIFY_NEVER &&
        SMTP_NOTIFY_SUCCESS == QUEUE_NOTIFY_SUCCESS &&
        SMTP_NOTIFY_FAILURE == QUEUE_NOTIFY_FAILURE &&
        SMTP_NOTIFY_DELAY == QUEUE_NOTIFY_DELAY,
    "NOTIFY bits differ between smtp_cmd.h and queue.h");

/* Stop reading at this much input: more than any line cap, so an
 * overlong line is always seen whole enough to be refused. */
#define SESSION_READ_HIGH (64 * 1024)
/* Unsent output that stops the feeding, and where it resumes. */
#define SESSION_OUT_HIGH (256 * 1024)
#define SESSION_OUT_LOW  (16 * 1024)
/* How long the last replies may take to leave, and the client to go. */
#define SESSION_LINGER_MS 5000u

struct server_session {
	struct server *srv;
	struct smtp_server *fsm;
	struct bufferevent *bev;         /* socket, or the TLS filter over it */
	struct bufferevent *sock;        /* the socket bufferevent */
	SSL_CTX *tls;                    /* referenced for the session's life */
	struct event *timer;             /* deadline, then linger */
	struct event *free_ev;           /* frees the session from the top */
	struct evbuffer_cb_entry *drain; /* on sock's output while closing */
	struct sockaddr_storage sa;
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	char client[INET6_ADDRSTRLEN + 16]; /* "[ip]:port" */
	char id[32];                        /* "smtpd.12" */
	bool refused;
	bool dead;    /* free_ev is pending */
	bool closing; /* flushing the last replies */
	bool shut;    /* our side is shut down, waiting for the client */
	bool eof;     /* the client is gone */
	bool reading; /* the machine waits for input */
	bool fresh;   /* input to feed (new, or not yet shown) */
	bool blocked; /* too much output unsent */
	bool in_tls;  /* handshake running */
	/*
	 * AUTH: the password check running (or NULL); the event that
	 * delivers a failed check's verdict late, and whether that verdict
	 * is 454 rather than 535; the user name, sanitized for the log.
	 */
	struct server_authpool_job *auth_job;
	struct event *auth_ev;
	bool auth_temp;
	char auth_user[64];
};

static void server_session_act(
    struct server_session *s, const struct smtp_server_action *act);
static void server_session_step(
    struct server_session *s, const struct smtp_server_event *ev);
static void server_session_pump(struct server_session *s);

/* ---- lifetime ------------------------------------------------------- */

static void
server_session_destroy(struct server_session *s)
{
	log_debug("%s: disconnect from %s", s->id, s->client);
	server_session_gone(s->srv, s);
	/* A check still running: its verdict must not find us. */
	server_authpool_cancel(server_auth_pool(s->srv), s->auth_job);
	/* libevent may free the buffer later than now: unhook from it. */
	if (s->drain != NULL)
		evbuffer_remove_cb_entry(
		    bufferevent_get_output(s->sock), s->drain);
	if (s->bev != NULL)
		bufferevent_free(s->bev); /* the filter frees sock and SSL */
	event_free(s->timer);
	event_free(s->auth_ev);
	event_free(s->free_ev);
	smtp_server_free(s->fsm);
	SSL_CTX_free(s->tls);
	free(s);
}

static void
server_session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	server_session_destroy(arg);
}

/* Free at the top of the loop, whatever called us. */
static void
server_session_finish(struct server_session *s)
{
	if (s->dead)
		return;
	s->dead = true;
	s->reading = false;
	evtimer_del(s->timer);
	evtimer_del(s->auth_ev);
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	event_active(s->free_ev, EV_TIMEOUT, 0);
}

void
server_session_free(struct server_session *s)
{
	if (s != NULL)
		server_session_destroy(s);
}

static void
server_session_arm(struct server_session *s, unsigned ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000 * 1000),
	};

	evtimer_add(s->timer, &tv);
}

/* ---- closing -------------------------------------------------------- */

static bool
server_session_drained(struct server_session *s)
{
	return evbuffer_get_length(bufferevent_get_output(s->bev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(s->sock)) == 0;
}

/*
 * Everything is sent: shut our side down and give the client a moment to
 * read and hang up (its EOF, or the linger timer, ends the session).
 */
static void
server_session_check_drained(struct server_session *s)
{
	if (s->dead || s->shut || !server_session_drained(s))
		return;
	s->shut = true;
	shutdown(bufferevent_getfd(s->sock), SHUT_WR);
}

static void
server_session_drain_cb(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct server_session *s = arg;

	if (s->closing && !s->dead)
		server_session_check_drained(s);
}

static void
server_session_close(struct server_session *s)
{
	s->reading = false;
	if (s->eof || s->in_tls) {
		server_session_finish(s);
		return;
	}
	s->closing = true;
	/* Whatever the client sends now is read and dropped (no RST). */
	bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
	bufferevent_enable(s->bev, EV_READ);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	s->drain = evbuffer_add_cb(
	    bufferevent_get_output(s->sock), server_session_drain_cb, s);
	server_session_arm(s, SESSION_LINGER_MS);
	server_session_check_drained(s);
}

/* ---- output --------------------------------------------------------- */

/* Hand the machine's replies to libevent. */
static void
server_session_flush(struct server_session *s)
{
	size_t len;
	const char *out = smtp_server_output(s->fsm, &len);

	if (len == 0)
		return;
	bufferevent_write(s->bev, out, len);
	smtp_server_output_clear(s->fsm);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
	    SESSION_OUT_HIGH) {
		/*
		 * Stop reading too: libevent re-runs the read callback
		 * while the input sits at its high-water mark.
		 */
		s->blocked = true;
		bufferevent_disable(s->bev, EV_READ);
		bufferevent_setwatermark(s->bev, EV_WRITE, SESSION_OUT_LOW, 0);
	}
}

/* ---- STARTTLS (RFC 3207) -------------------------------------------- */

static void server_session_setup_bev(struct server_session *s);

static void
server_session_starttls(struct server_session *s)
{
	struct bufferevent *tls;
	SSL *ssl;

	/* smtp_server refuses pipelined input; this is a second lock. */
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0 ||
	    s->tls == NULL || (ssl = SSL_new(s->tls)) == NULL) {
		log_warnx("%s: cannot start TLS for %s", s->id, s->client);
		server_session_finish(s);
		return;
	}
	/* The 220 is in sock's output already; TLS follows it. */
	tls = bufferevent_openssl_filter_new(bufferevent_get_base(s->sock),
	    s->sock, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL)
		panic("bufferevent_openssl_filter_new: out of memory");
	s->bev = tls;
	s->in_tls = true;
	server_session_setup_bev(s);
	server_session_arm(s, server_cfg(s->srv)->command_timeout_ms);
}

static void
server_session_tls_done(struct server_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_TLS_DONE,
		.now = time(NULL) };
	char info[128];

	s->in_tls = false;
	snprintf(info, sizeof(info), "%s with cipher %s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
	log_trace(LOG_CAT_TLS, "%s: TLS established: %s", s->id, info);
	ev.text = info;
	server_session_step(s, &ev);
}

/* OpenSSL's reasons for a failed handshake, for the log. */
static void
server_session_tls_error(struct server_session *s, char *dst, size_t len)
{
	unsigned long e;
	size_t used = 0;

	dst[0] = '\0';
	while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		if (ERR_GET_LIB(e) == 0 || used + 3 >= len)
			continue;
		if (used > 0) {
			memcpy(dst + used, "; ", 3);
			used += 2;
		}
		ERR_error_string_n(e, dst + used, len - used);
		used += strlen(dst + used);
	}
	if (dst[0] == '\0')
		snprintf(dst, len, "connection closed");
}

/* ---- AUTH and commit ------------------------------------------------ */

/*
 * AUTH runs in three steps, none of which blocks the loop: the check is
 * handed to the password workers (server_authpool.c); their verdict comes
 * back to server_session_auth_done(); a failure is counted for the client
 * network and answered after a growing delay (server_session_auth_cb).
 * A network over [server] auth_max_failures is not checked at all: 454
 * (RFC 4954 §6: "temporary authentication failure"), as when the
 * workers' queue is full. Meanwhile the machine waits in AUTH_CHECK and
 * input stays buffered.
 */
static void
server_session_auth_reply(struct server_session *s, bool temp, unsigned ms)
{
	struct timeval tv = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000 * 1000),
	};

	s->auth_temp = temp;
	evtimer_add(s->auth_ev, &tv);
}

static void
server_session_auth_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_session *s = arg;
	struct smtp_server_event ev = { .type = s->auth_temp ?
		    SMTP_SRV_EV_AUTH_TEMPFAIL :
		    SMTP_SRV_EV_AUTH_RESULT,
		.now = time(NULL) };

	if (s->dead || s->closing)
		return;
	server_session_step(s, &ev);
	server_session_pump(s);
}

static void
server_session_auth_done(bool ok, void *arg)
{
	struct server_session *s = arg;
	struct smtp_server_event ev = {
		.type = SMTP_SRV_EV_AUTH_RESULT, .ok = true, .now = time(NULL)
	};
	const struct server_config *cfg = server_cfg(s->srv);
	const struct sockaddr *sa = (const struct sockaddr *)&s->sa;
	unsigned n, ms;

	s->auth_job = NULL;
	if (s->dead || s->closing)
		return;
	/* The user name helps fail2ban and the admin; never the password. */
	if (ok) {
		log_info("%s: AUTH ok user=%s client=%s", s->id, s->auth_user,
		    s->client);
		server_session_step(s, &ev);
		server_session_pump(s);
		return;
	}
	n = server_auth_failed(s->srv, sa, &ms);
	log_warnx("%s: AUTH failed user=%s client=%s failures=%u", s->id,
	    s->auth_user, s->client, n);
	if (n == cfg->auth_max_failures)
		log_warnx(
		    "%s: AUTH lockout client=%s for %us after %u failures",
		    s->id, s->ip, cfg->auth_lockout, n);
	server_session_auth_reply(s, false, ms);
}

static void
server_session_auth(
    struct server_session *s, const char *user, const char *password)
{
	const struct server_config *cfg = server_cfg(s->srv);
	struct server_auth_try *t;
	unsigned n;

	smtp_reply_sanitize(
	    s->auth_user, sizeof(s->auth_user), user, strlen(user));
	if (server_auth_locked(s->srv, (const struct sockaddr *)&s->sa, &n)) {
		log_info("%s: AUTH locked out user=%s client=%s failures=%u",
		    s->id, s->auth_user, s->client, n);
		server_session_auth_reply(s, true, SERVER_AUTH_DELAY_MS);
		return;
	}
	/* NULL after a reload that dropped auth_file. */
	if ((t = server_auth_try_new(cfg->auth, user, password)) == NULL) {
		log_warnx("%s: AUTH not checked user=%s client=%s: no "
		          "credentials loaded",
		    s->id, s->auth_user, s->client);
		server_session_auth_reply(s, true, 0);
		return;
	}
	s->auth_job = server_authpool_submit(
	    server_auth_pool(s->srv), t, server_session_auth_done, s);
	if (s->auth_job == NULL) {
		log_warnx(
		    "%s: AUTH not checked user=%s client=%s: the password "
		    "workers are busy",
		    s->id, s->auth_user, s->client);
		server_session_auth_reply(s, true, 0);
	}
}

static enum queue_ret
server_session_ret(enum smtp_ret r)
{
	return r == SMTP_RET_FULL ? QUEUE_RET_FULL :
	    r == SMTP_RET_HDRS    ? QUEUE_RET_HDRS :
	                            QUEUE_RET_UNSET;
}

/*
 * [dkim] sign_outbound: the message with a DKIM-Signature in front when
 * its From: is in the signer's domain (new, length in *len), else NULL.
 * A message that cannot be signed goes out unsigned, with a warning.
 */
static uint8_t *
server_session_dkim(const struct server_config *cfg,
    const struct smtp_server_txn *t, size_t *len)
{
	uint8_t *out;
	char *sig;
	size_t n;

	if (cfg->dkim == NULL ||
	    !dkim_signs_for(cfg->dkim, (const uint8_t *)t->data, t->len))
		return NULL;
	sig =
	    dkim_sign(cfg->dkim, (const uint8_t *)t->data, t->len, time(NULL));
	if (sig == NULL) {
		log_warnx("%s: cannot DKIM-sign the message; it goes unsigned",
		    t->id);
		return NULL;
	}
	n = strlen(sig);
	out = xmalloc(n + t->len);
	memcpy(out, sig, n);
	memcpy(out + n, t->data, t->len);
	*len = n + t->len;
	free(sig);
	return out;
}

/* Store the message; 0 with id filled, or -1 with *errstr. */
static int
server_session_store(struct server_session *s, const struct smtp_server_txn *t,
    char id[QUEUE_ID_LEN], char **errstr)
{
	const struct server_config *cfg = server_cfg(s->srv);
	struct queue_rcpt_in *r = xcalloc(t->nrcpt, sizeof(*r));
	struct queue_msg_in m = {
		.kind = QUEUE_KIND_MAIL,
		.sender = t->sender,
		.envid = t->envid,
		.ret = server_session_ret(t->ret),
		.body_8bit = t->body_8bit,
		.smtputf8 = t->smtputf8,
		.client = s->client,
		.helo = t->helo,
		.auth_user = t->auth_user,
		.message_id = t->message_id,
		.data = t->data,
		.len = t->len,
		.rcpts = r,
		.nrcpt = t->nrcpt,
	};
	uint8_t *signed_data;
	size_t i;
	int rc = -1;

	for (i = 0; i < t->nrcpt; i++) {
		r[i].addr = t->rcpts[i].addr;
		r[i].orcpt = t->rcpts[i].orcpt;
		r[i].notify = t->rcpts[i].notify;
	}
	signed_data = server_session_dkim(cfg, t, &m.len);
	if (signed_data != NULL)
		m.data = signed_data;
	/* Our id, as in the Received header, in case the queue keeps it. */
	snprintf(id, QUEUE_ID_LEN, "%s", t->id);
	if (cfg->queue == NULL)
		*errstr = xstrdup("no queue configured");
	else
		rc = queue_add(cfg->queue, &m, id, errstr);
	free(signed_data);
	free(r);
	return rc;
}

static void
server_session_log_queued(
    struct server_session *s, const struct smtp_server_txn *t, const char *id)
{
	const char *mid = t->message_id != NULL ? t->message_id : "-";
	char user[64] = "-";
	/* The line's values, named, for [log] format = json. */
	struct log_field f[] = {
		LOG_STR("queue_id", id),
		LOG_STR("from", t->sender),
		LOG_NUM("size", t->len - t->header_len),
		LOG_NUM("nrcpt", t->nrcpt),
		LOG_STR("client", s->client),
		LOG_STR("helo", t->helo),
		LOG_STR("auth", user),
		LOG_STR("message_id", mid),
		LOG_STR("received_id", t->id),
		LOG_STR("session", s->id),
		LOG_STR("status", "queued"),
	};

	if (t->auth_user != NULL)
		smtp_reply_sanitize(
		    user, sizeof(user), t->auth_user, strlen(t->auth_user));
	log_fields(LOG_LEVEL_INFO, f, sizeof(f) / sizeof(f[0]),
	    "%s: queued from=<%s> size=%zu nrcpt=%zu client=%s helo=%s "
	    "auth=%s message-id=%s received-id=%s session=%s",
	    id, t->sender, t->len - t->header_len, t->nrcpt, s->client, t->helo,
	    user, mid, t->id, s->id);
}

/*
 * The final dot: only a committed message earns its 250 (the queue's
 * fsync is the durability point); a failure earns 451 and the client
 * keeps the message.
 */
static void
server_session_commit(struct server_session *s)
{
	const struct smtp_server_txn *t = smtp_server_txn(s->fsm);
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_COMMITTED,
		.now = time(NULL) };
	const struct server_config *cfg = server_cfg(s->srv);
	char id[QUEUE_ID_LEN], *errstr = NULL;

	ASSERT(t != NULL);
	ev.ok = server_session_store(s, t, id, &errstr) == 0;
	if (ev.ok) {
		server_session_log_queued(s, t, id);
		ev.text = id;
	} else
		log_warnx("%s: message from %s not queued: %s", s->id,
		    s->client, errstr != NULL ? errstr : "?");
	free(errstr);
	server_session_step(s, &ev);
	if (ev.ok && cfg->on_queued != NULL)
		cfg->on_queued(id, cfg->arg);
}

/* ---- the machine ---------------------------------------------------- */

static unsigned
server_session_timer_ms(
    const struct server_session *s, enum smtp_server_timer t)
{
	const struct server_config *cfg = server_cfg(s->srv);

	return t == SMTP_SRV_TIMER_DATA ? cfg->data_timeout_ms :
	                                  cfg->command_timeout_ms;
}

/* Carry out what the machine decided. */
static void
server_session_act(
    struct server_session *s, const struct smtp_server_action *act)
{
	s->reading = act->type == SMTP_SRV_ACT_READ;
	switch (act->type) {
	case SMTP_SRV_ACT_NONE:
	case SMTP_SRV_ACT_READ:
		break;
	case SMTP_SRV_ACT_START_TLS:
		server_session_starttls(s);
		break;
	case SMTP_SRV_ACT_AUTH:
		server_session_auth(s, act->user, act->password);
		break;
	case SMTP_SRV_ACT_COMMIT:
		server_session_commit(s);
		break;
	case SMTP_SRV_ACT_CLOSE:
		server_session_close(s);
		break;
	}
}

static void
server_session_step(
    struct server_session *s, const struct smtp_server_event *ev)
{
	struct smtp_server_action act;
	bool progress;

	smtp_server_step(s->fsm, ev, &act);
	progress = ev->type != SMTP_SRV_EV_INPUT || act.consumed > 0;
	if (ev->type == SMTP_SRV_EV_INPUT)
		evbuffer_drain(bufferevent_get_input(s->bev), act.consumed);
	/* After a feed that used nothing, wait for more; else try again. */
	s->fresh = progress;
	server_session_flush(s);
	/*
	 * Only progress re-arms the deadline: a client dribbling a line
	 * an octet at a time still has to finish it in time.
	 */
	if (act.type == SMTP_SRV_ACT_READ && progress)
		server_session_arm(s, server_session_timer_ms(s, act.timer));
	server_session_act(s, &act);
}

/* Feed buffered input while the machine takes it. */
static void
server_session_pump(struct server_session *s)
{
	struct evbuffer *in;
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_INPUT };

	while (
	    !s->dead && !s->closing && s->reading && s->fresh && !s->blocked) {
		in = bufferevent_get_input(s->bev);
		if ((ev.len = evbuffer_get_length(in)) == 0)
			break;
		ev.data = (const char *)evbuffer_pullup(in, -1);
		ev.now = time(NULL);
		server_session_step(s, &ev);
	}
}

/* ---- libevent callbacks --------------------------------------------- */

static void
server_session_read_cb(struct bufferevent *bev, void *arg)
{
	struct server_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (s->dead)
		return;
	if (s->closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	s->fresh = true;
	server_session_pump(s);
}

static void
server_session_write_cb(struct bufferevent *bev, void *arg)
{
	struct server_session *s = arg;

	if (s->dead)
		return;
	if (s->closing) {
		server_session_check_drained(s);
		return;
	}
	if (s->blocked &&
	    evbuffer_get_length(bufferevent_get_output(bev)) <=
	        SESSION_OUT_LOW) {
		s->blocked = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_READ);
		server_session_pump(s);
	}
}

static void
server_session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct server_session *s = arg;
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CLOSED };
	char why[256];

	if (s->dead)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		server_session_tls_done(s);
		server_session_pump(s);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (s->in_tls) {
		server_session_tls_error(s, why, sizeof(why));
		log_info("%s: TLS handshake with %s failed: %s", s->id,
		    s->client, why);
	}
	s->eof = true;
	if (s->closing)
		server_session_finish(s);
	else
		server_session_step(s, &ev);
}

static void
server_session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_session *s = arg;
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_TIMEOUT,
		.now = time(NULL) };

	if (s->dead)
		return;
	if (s->closing) {
		server_session_finish(s);
		return;
	}
	log_info("%s: timeout (%s) for %s", s->id,
	    smtp_server_phase_str(smtp_server_phase(s->fsm)), s->client);
	server_session_step(s, &ev);
	server_session_pump(s);
}

static void
server_session_setup_bev(struct server_session *s)
{
	bufferevent_setcb(s->bev, server_session_read_cb,
	    server_session_write_cb, server_session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_READ_HIGH);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* ---- the contract --------------------------------------------------- */

/* [queue] min_free_space, and room for the declared SIZE on top. */
static bool
server_session_storage_low(size_t size, void *arg)
{
	struct server_session *s = arg;
	const struct server_config *cfg = server_cfg(s->srv);
	static time_t said;
	time_t now = time(NULL);

	if (cfg->queue == NULL ||
	    !queue_space_low(cfg->queue, cfg->min_free_space + size))
		return false;
	if (now - said >= 60) { /* once a minute, not once a client */
		said = now;
		log_warnx("queue filesystem below [queue] min_free_space "
		          "(%llu octets): new mail refused with 452 4.3.1",
		    (unsigned long long)cfg->min_free_space);
	}
	return true;
}

/* store = postgres: the database is away (queue_available). */
static bool
server_session_queue_down(void *arg)
{
	struct server_session *s = arg;
	const struct server_config *cfg = server_cfg(s->srv);
	static time_t said;
	time_t now = time(NULL);

	if (cfg->queue == NULL || queue_available(cfg->queue))
		return false;
	if (now - said >= 60) { /* once a minute, not once a client */
		said = now;
		log_warnx("queue unavailable (%s): new mail refused with 451 "
		          "4.3.0",
		    queue_error(cfg->queue));
	}
	return true;
}

static struct smtp_server *
server_session_fsm(struct server_session *s, enum smtp_server_refuse refuse)
{
	const struct server_config *cfg = server_cfg(s->srv);
	struct smtp_server_params p = {
		.id = s->id,
		.hostname = cfg->hostname,
		.client_ip = s->ip,
		.relay_allowed = server_relay_allowed(
		    s->srv, (const struct sockaddr *)&s->sa),
		.tls_available = cfg->tls != NULL,
		.auth_available = cfg->auth != NULL,
		.max_message_size = cfg->max_message_size,
		.max_recipients = cfg->max_recipients,
		.refuse = refuse,
		.storage_low = server_session_storage_low,
		.queue_down = server_session_queue_down,
		.storage_arg = s,
	};

	return smtp_server_new(&p);
}

struct server_session *
server_session_new(struct server *srv, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen, enum smtp_server_refuse refuse,
    unsigned long long n)
{
	struct server_session *s = xcalloc(1, sizeof(*s));
	struct event_base *base = server_base(srv);

	ASSERT(salen <= sizeof(s->sa));
	s->srv = srv;
	memcpy(&s->sa, sa, salen);
	server_net_ntop(sa, s->ip, sizeof(s->ip), &s->port);
	snprintf(s->client, sizeof(s->client), "[%s]:%u", s->ip, s->port);
	snprintf(s->id, sizeof(s->id), "smtpd.%llu", n);
	s->refused = refuse != SMTP_SRV_REFUSE_NONE;
	if ((s->tls = server_cfg(srv)->tls) != NULL)
		SSL_CTX_up_ref(s->tls);
	s->fsm = server_session_fsm(s, refuse);
	s->sock = s->bev =
	    bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->timer = evtimer_new(base, server_session_timer_cb, s);
	s->free_ev = event_new(base, -1, 0, server_session_free_cb, s);
	s->auth_ev = evtimer_new(base, server_session_auth_cb, s);
	if (s->bev == NULL || s->timer == NULL || s->free_ev == NULL ||
	    s->auth_ev == NULL)
		panic("server_session_new: out of memory");
	server_session_setup_bev(s);
	return s;
}

void
server_session_start(struct server_session *s)
{
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CONNECTED,
		.now = time(NULL) };

	if (s->refused)
		log_info(
		    "%s: refused %s: too many connections", s->id, s->client);
	else
		log_debug("%s: connect from %s", s->id, s->client);
	server_session_step(s, &ev);
}

void
server_session_shutdown(struct server_session *s)
{
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_SHUTDOWN,
		.now = time(NULL) };

	if (s->dead || s->closing)
		return;
	server_session_step(s, &ev);
}

const struct sockaddr *
server_session_addr(const struct server_session *s)
{
	return (const struct sockaddr *)&s->sa;
}

bool
server_session_refused(const struct server_session *s)
{
	return s->refused;
}
