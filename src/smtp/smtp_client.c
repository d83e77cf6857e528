/*
 * smtp_client: the outbound SMTP state machine, without I/O.
 *
 * One function per phase handles the reply that ends it and picks the next
 * phase (after OpenSMTPD's mta_session.c); smtp_client_enter() is the only
 * place the phase changes, and it traces every transition. Failures are
 * written into the result where they are detected; a failure that leaves
 * the dialogue in step ends with QUIT, one that does not (timeout, closed,
 * garbage, TLS failure, 421) closes at once.
 */
#include "smtp/smtp_client.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/smtp_ehlo.h"
#include "smtp/smtp_reply.h"

/* Longest command we build: verb, SP, a domain of at most 255, CRLF. */
#define SMTP_CLIENT_CMD_MAX  512
#define SMTP_CLIENT_HELO_MAX 255

struct smtp_client {
	char *id;
	char *helo;
	enum smtp_tls_mode mode;
	enum smtp_phase phase;
	struct smtp_reply *reply;
	struct smtp_ehlo *ehlo;
	struct buf cmd; /* the command being sent */
	struct smtp_result res;
};

struct smtp_client *
smtp_client_new(const char *id, const char *helo_name, enum smtp_tls_mode mode)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	/* A CR or LF in our own name would inject commands: a caller's bug. */
	ASSERT(helo_name != NULL && helo_name[0] != '\0');
	ASSERT(strcspn(helo_name, "\r\n") == strlen(helo_name));
	ASSERT(strlen(helo_name) <= SMTP_CLIENT_HELO_MAX);
	c->id = xstrdup(id != NULL ? id : "smtp");
	c->helo = xstrdup(helo_name);
	c->mode = mode;
	c->phase = SMTP_PHASE_CONNECT;
	c->reply = smtp_reply_new();
	c->ehlo = smtp_ehlo_new();
	buf_init(&c->cmd, SMTP_CLIENT_CMD_MAX);
	c->res.phase = SMTP_PHASE_CONNECT;
	return c;
}

void
smtp_client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	smtp_reply_free(c->reply);
	smtp_ehlo_free(c->ehlo);
	buf_free(&c->cmd);
	free(c->id);
	free(c->helo);
	free(c);
}

enum smtp_phase
smtp_client_phase(const struct smtp_client *c)
{
	return c->phase;
}

const struct smtp_result *
smtp_client_result(const struct smtp_client *c)
{
	return &c->res;
}

const struct smtp_ehlo *
smtp_client_ehlo(const struct smtp_client *c)
{
	return c->ehlo;
}

static void
smtp_client_enter(struct smtp_client *c, enum smtp_phase phase)
{
	log_trace(LOG_CAT_SMTP, "%s: %s -> %s", c->id, smtp_phase_str(c->phase),
	    smtp_phase_str(phase));
	c->phase = phase;
	/* After an error the result keeps the phase it happened in. */
	if (c->res.error == SMTP_ERR_NONE)
		c->res.phase = phase;
}

static void
smtp_client_copy(char *dst, size_t dstlen, const char *text)
{
	if (text != NULL)
		smtp_reply_sanitize(dst, dstlen, text, strlen(text));
}

/* Record the failure, in the phase it happened, for the result. */
static void
smtp_client_set_error(
    struct smtp_client *c, enum smtp_error err, const char *text)
{
	c->res.error = err;
	c->res.phase = c->phase;
	smtp_client_copy(c->res.error_text, sizeof(c->res.error_text), text);
}

static void
smtp_client_finish(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_enter(c, SMTP_PHASE_DONE);
	act->type = SMTP_ACT_CLOSE;
	act->timer = SMTP_TIMER_NONE;
}

/* Queue "VERB[ arg]\r\n" for sending and enter the phase awaiting its reply. */
static void
smtp_client_send(struct smtp_client *c, struct smtp_action *act,
    enum smtp_phase next, const char *verb, const char *arg)
{
	int rc;

	buf_reset(&c->cmd);
	if (arg != NULL)
		rc = buf_printf(&c->cmd, "%s %s\r\n", verb, arg);
	else
		rc = buf_printf(&c->cmd, "%s\r\n", verb);
	/* smtp_client_new() bounds the only argument we use. */
	ASSERT(rc == 0);
	smtp_client_enter(c, next);
	act->type = SMTP_ACT_SEND;
	act->timer = SMTP_TIMER_COMMAND;
	act->data = c->cmd.data;
	act->len = c->cmd.len;
}

/* End politely (RFC 5321 §4.1.1.10): QUIT, then close on its reply. */
static void
smtp_client_quit_with(struct smtp_client *c, struct smtp_action *act,
    enum smtp_error err, const char *text)
{
	if (err != SMTP_ERR_NONE)
		smtp_client_set_error(c, err, text);
	smtp_client_send(c, act, SMTP_PHASE_QUIT, "QUIT", NULL);
}

/*
 * The server refused what we asked. A 421 means it is closing the channel
 * (RFC 5321 §3.8), so QUIT would only meet a closed socket.
 */
static void
smtp_client_refused(struct smtp_client *c, struct smtp_action *act,
    enum smtp_error err, const char *text)
{
	if (smtp_reply_code(c->reply) == 421) {
		smtp_client_set_error(c, err, text);
		smtp_client_finish(c, act);
	} else
		smtp_client_quit_with(c, act, err, text);
}

/* The dialogue is broken or gone: close without QUIT. */
static void
smtp_client_fail(struct smtp_client *c, struct smtp_action *act,
    enum smtp_error err, const char *text)
{
	/*
	 * Trouble after QUIT does not change the outcome: whatever we came
	 * for is already decided, and many servers close without a 221.
	 */
	if (c->phase != SMTP_PHASE_QUIT)
		smtp_client_set_error(c, err, text);
	smtp_client_finish(c, act);
}

static void
smtp_client_ready(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_enter(c, SMTP_PHASE_READY);
	act->type = SMTP_ACT_READY;
	act->timer = SMTP_TIMER_NONE;
}

static int
smtp_client_class(const struct smtp_client *c)
{
	return smtp_reply_code(c->reply) / 100;
}

/* RFC 5321 §3.1: 220 greets, 554 (or anything else) refuses service. */
static void
smtp_client_on_greeting(struct smtp_client *c, struct smtp_action *act)
{
	const char *t = smtp_reply_text(c->reply, 0);

	smtp_reply_sanitize(c->res.banner, sizeof(c->res.banner), t, strlen(t));
	if (smtp_client_class(c) == 2)
		smtp_client_send(c, act, SMTP_PHASE_EHLO, "EHLO", c->helo);
	else
		smtp_client_refused(
		    c, act, SMTP_ERR_REPLY, "greeting refuses service");
}

/* After EHLO in cleartext: STARTTLS or not, by the TLS mode. */
static void
smtp_client_tls_decide(struct smtp_client *c, struct smtp_action *act)
{
	bool offered = smtp_ehlo_has(c->ehlo, SMTP_EXT_STARTTLS);

	if (c->mode == SMTP_TLS_NONE ||
	    (c->mode == SMTP_TLS_OPPORTUNISTIC && !offered))
		smtp_client_ready(c, act);
	else if (!offered)
		smtp_client_quit_with(c, act, SMTP_ERR_STARTTLS_NOT_OFFERED,
		    "STARTTLS not offered");
	else
		smtp_client_send(c, act, SMTP_PHASE_STARTTLS, "STARTTLS", NULL);
}

/*
 * RFC 5321 §3.2, §4.1.1.1: a server that does not know EHLO answers 5xx, and
 * the client falls back to HELO. Not when TLS is required: HELO cannot lead
 * to STARTTLS.
 */
static void
smtp_client_on_ehlo(struct smtp_client *c, struct smtp_action *act)
{
	if (smtp_client_class(c) == 2) {
		c->res.esmtp = true;
		smtp_ehlo_parse(c->ehlo, c->reply);
		c->res.starttls_offered =
		    smtp_ehlo_has(c->ehlo, SMTP_EXT_STARTTLS);
		smtp_client_tls_decide(c, act);
	} else if (smtp_client_class(c) == 5 && c->mode != SMTP_TLS_REQUIRED)
		smtp_client_send(c, act, SMTP_PHASE_HELO, "HELO", c->helo);
	else
		smtp_client_refused(c, act, SMTP_ERR_REPLY, "EHLO rejected");
}

static void
smtp_client_on_helo(struct smtp_client *c, struct smtp_action *act)
{
	if (smtp_client_class(c) == 2)
		smtp_client_ready(c, act);
	else
		smtp_client_refused(c, act, SMTP_ERR_REPLY, "HELO rejected");
}

/*
 * RFC 3207 §4: 220 means go ahead. Anything else under opportunistic TLS
 * leaves the cleartext session as it was (§4: the client decides whether
 * to go on); under required TLS it is a failure.
 */
static void
smtp_client_on_starttls(struct smtp_client *c, struct smtp_action *act)
{
	if (smtp_reply_code(c->reply) == 220) {
		/* RFC 3207 §4.2: forget all the server told us before TLS. */
		smtp_ehlo_reset(c->ehlo);
		smtp_client_enter(c, SMTP_PHASE_TLS_HANDSHAKE);
		act->type = SMTP_ACT_START_TLS;
		act->timer = SMTP_TIMER_COMMAND;
	} else if (c->mode == SMTP_TLS_OPPORTUNISTIC &&
	    smtp_reply_code(c->reply) != 421)
		smtp_client_ready(c, act);
	else
		smtp_client_refused(
		    c, act, SMTP_ERR_STARTTLS_REFUSED, "STARTTLS refused");
}

static void
smtp_client_on_ehlo_tls(struct smtp_client *c, struct smtp_action *act)
{
	if (smtp_client_class(c) == 2) {
		smtp_ehlo_parse(c->ehlo, c->reply);
		smtp_client_ready(c, act);
	} else
		smtp_client_refused(
		    c, act, SMTP_ERR_REPLY, "EHLO rejected after STARTTLS");
}

/* A reply nobody asked for: only 421 (§3.8) is legitimate. */
static void
smtp_client_on_unexpected(struct smtp_client *c, struct smtp_action *act)
{
	if (smtp_reply_code(c->reply) == 421)
		smtp_client_fail(
		    c, act, SMTP_ERR_REPLY, "server closing the channel");
	else
		smtp_client_fail(
		    c, act, SMTP_ERR_PROTOCOL, "reply without a command");
}

/* A complete reply: remember it and let the phase decide. */
static void
smtp_client_on_reply(struct smtp_client *c, struct smtp_action *act)
{
	/* The 221 to QUIT would hide the reply that explains a failure. */
	if (c->phase != SMTP_PHASE_QUIT) {
		c->res.reply_code = smtp_reply_code(c->reply);
		smtp_reply_join(
		    c->reply, c->res.reply_text, sizeof(c->res.reply_text));
	}
	switch (c->phase) {
	case SMTP_PHASE_GREETING:
		smtp_client_on_greeting(c, act);
		break;
	case SMTP_PHASE_EHLO:
		smtp_client_on_ehlo(c, act);
		break;
	case SMTP_PHASE_HELO:
		smtp_client_on_helo(c, act);
		break;
	case SMTP_PHASE_STARTTLS:
		smtp_client_on_starttls(c, act);
		break;
	case SMTP_PHASE_EHLO_TLS:
		smtp_client_on_ehlo_tls(c, act);
		break;
	case SMTP_PHASE_QUIT:
		smtp_client_finish(c, act);
		break;
	default:
		smtp_client_on_unexpected(c, act);
		break;
	}
}

static void
smtp_client_on_line(
    struct smtp_client *c, const struct smtp_event *ev, struct smtp_action *act)
{
	const char *errstr = NULL;

	switch (smtp_reply_feed(c->reply, ev->line, ev->len, &errstr)) {
	case SMTP_REPLY_MORE:
		break;
	case SMTP_REPLY_DONE:
		smtp_client_on_reply(c, act);
		break;
	case SMTP_REPLY_ERROR:
		smtp_client_fail(c, act, SMTP_ERR_PROTOCOL, errstr);
		break;
	}
}

static void
smtp_client_on_connected(struct smtp_client *c, struct smtp_action *act)
{
	if (c->phase != SMTP_PHASE_CONNECT)
		return;
	c->res.connected = true;
	smtp_client_enter(c, SMTP_PHASE_GREETING);
	act->type = SMTP_ACT_WAIT;
	act->timer = SMTP_TIMER_GREETING;
}

/* RFC 3207 §4.2: EHLO again, the first thing said over TLS. */
static void
smtp_client_on_tls(
    struct smtp_client *c, bool accepted, struct smtp_action *act)
{
	if (c->phase != SMTP_PHASE_TLS_HANDSHAKE)
		return;
	c->res.tls = true;
	if (accepted)
		smtp_client_send(c, act, SMTP_PHASE_EHLO_TLS, "EHLO", c->helo);
	else
		smtp_client_quit_with(c, act, SMTP_ERR_ABORTED,
		    "TLS peer rejected by the caller");
}

/* QUIT needs a quiet channel: from READY only; elsewhere just hang up. */
static void
smtp_client_on_quit(struct smtp_client *c, struct smtp_action *act)
{
	if (c->phase == SMTP_PHASE_READY)
		smtp_client_quit_with(c, act, SMTP_ERR_NONE, NULL);
	else if (c->phase != SMTP_PHASE_QUIT)
		smtp_client_fail(
		    c, act, SMTP_ERR_ABORTED, "aborted by the caller");
}

void
smtp_client_step(
    struct smtp_client *c, const struct smtp_event *ev, struct smtp_action *act)
{
	memset(act, 0, sizeof(*act));
	act->type = SMTP_ACT_NONE;
	if (c->phase == SMTP_PHASE_DONE)
		return;
	switch (ev->type) {
	case SMTP_EV_CONNECTED:
		smtp_client_on_connected(c, act);
		break;
	case SMTP_EV_LINE:
		smtp_client_on_line(c, ev, act);
		break;
	case SMTP_EV_TLS_DONE:
	case SMTP_EV_TLS_REJECTED:
		smtp_client_on_tls(c, ev->type == SMTP_EV_TLS_DONE, act);
		break;
	case SMTP_EV_QUIT:
		smtp_client_on_quit(c, act);
		break;
	case SMTP_EV_TIMEOUT:
		smtp_client_fail(c, act,
		    c->phase == SMTP_PHASE_CONNECT ? SMTP_ERR_CONNECT_TIMEOUT :
		                                     SMTP_ERR_TIMEOUT,
		    ev->text);
		break;
	case SMTP_EV_CLOSED:
		smtp_client_fail(c, act, SMTP_ERR_CLOSED, ev->text);
		break;
	case SMTP_EV_ERROR:
		smtp_client_fail(c, act, ev->error, ev->text);
		break;
	}
}
