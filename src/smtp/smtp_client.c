/*
 * smtp_client: the outbound SMTP state machine, without I/O.
 *
 * One function per phase handles the reply that ends it and picks the next
 * phase (after OpenSMTPD's mta_session.c); smtp_client_enter() is the only
 * place the phase changes, and it traces every transition. Failures are
 * written into the result where they are detected; a failure that leaves
 * the dialogue in step ends with QUIT, one that does not (timeout, closed,
 * garbage, TLS failure, 421) closes at once.
 *
 * A transaction writes its results straight into the caller's struct
 * smtp_txn (borrowed until SMTP_ACT_TXN_DONE or SMTP_ACT_CLOSE). Replies of
 * a pipelined group are matched by phase, in the order the commands went
 * out: MAIL, then each RCPT that was sent, then DATA (RFC 2920 §3.1).
 */
#include "smtp/smtp_client.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "smtp/smtp_ehlo.h"
#include "smtp/smtp_reply.h"

#define SMTP_CLIENT_HELO_MAX 255
/*
 * Longest command line we send, CRLF included. RFC 5321 §4.5.3.1.4 allows
 * 512 octets and lets extensions raise it; MAIL and RCPT with SIZE, BODY
 * and the DSN parameters (ORCPT alone may take 500) need more.
 */
#define SMTP_CLIENT_LINE_MAX 2048

struct smtp_client {
	char *id;
	char *helo;
	enum smtp_tls_mode mode;
	enum smtp_phase phase;
	struct smtp_reply *reply;
	struct smtp_ehlo *ehlo;
	struct buf cmd; /* the command being sent */
	struct smtp_result res;

	/* The transaction under way (borrowed), NULL when none. */
	struct smtp_txn *txn;
	struct buf group; /* a pipelined MAIL, RCPTs, DATA */
	bool pipelining;  /* this transaction pipelines (RFC 2920) */
	bool need_rset;   /* MAIL went out and no dot was answered since */
	bool mail_ok;
	bool lone_dot;   /* "." sent only to end a 354 nobody can use */
	size_t rcpt_i;   /* the recipient whose reply is due */
	size_t rcpt_ok;  /* recipients accepted */
	size_t body_pos; /* next byte of txn->data to send */
	bool body_bol;   /* at the start of a line */
	bool body_cr;    /* the last byte sent was CR */
	bool body_end;   /* everything but the final dot produced */
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
	buf_init(&c->cmd, SMTP_CLIENT_LINE_MAX);
	buf_init(&c->group, SMTP_CLIENT_LINE_MAX);
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
	buf_free(&c->group);
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

/* The session is ending under a transaction: the caller learns FAILED. */
static void
smtp_client_txn_abort(struct smtp_client *c)
{
	if (c->txn == NULL)
		return;
	c->txn->end = SMTP_TXN_FAILED;
	c->txn = NULL;
	log_trace(LOG_CAT_SMTP, "%s: transaction %s", c->id,
	    smtp_txn_end_str(SMTP_TXN_FAILED));
}

/* Record the failure, in the phase it happened, for the result. */
static void
smtp_client_set_error(
    struct smtp_client *c, enum smtp_error err, const char *text)
{
	smtp_client_txn_abort(c);
	c->res.error = err;
	c->res.phase = c->phase;
	smtp_client_copy(c->res.error_text, sizeof(c->res.error_text), text);
}

static void
smtp_client_finish(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_txn_abort(c);
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

/* ---- mail transactions (RFC 5321 §3.3) ------------------------------ */

static void smtp_client_local(struct smtp_rcpt_reply *r, int code,
    const char *status, const char *fmt, ...) DR_PRINTF(4, 5);

/* A reply of ours, for a refusal decided before anything was sent. */
static void
smtp_client_local(struct smtp_rcpt_reply *r, int code, const char *status,
    const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	r->code = code;
	snprintf(r->status, sizeof(r->status), "%s", status);
	snprintf(
	    r->text, sizeof(r->text), "%d %s %s (not sent)", code, status, why);
}

/* Keep the reply just completed for the caller. */
static void
smtp_client_record(const struct smtp_client *c, struct smtp_rcpt_reply *r)
{
	const char *esc = smtp_reply_esc(c->reply);

	r->code = smtp_reply_code(c->reply);
	snprintf(r->status, sizeof(r->status), "%s", esc != NULL ? esc : "");
	smtp_reply_join(c->reply, r->text, sizeof(r->text));
}

static void
smtp_client_reply_clear(struct smtp_rcpt_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* What may not go into a command line. */
enum smtp_client_chars {
	SMTP_CHARS_OK,
	SMTP_CHARS_CONTROL, /* CR, LF, NUL, ...: would forge commands */
	SMTP_CHARS_8BIT,    /* needs SMTPUTF8 (RFC 6531) */
};

static enum smtp_client_chars
smtp_client_chars(const char *s, bool utf8)
{
	const unsigned char *p;

	if (s == NULL)
		return SMTP_CHARS_OK;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return SMTP_CHARS_CONTROL;
		if (*p >= 0x80 && !utf8)
			return SMTP_CHARS_8BIT;
	}
	return SMTP_CHARS_OK;
}

/*
 * Whether parameter keyword kw (n bytes) may go to this server. SIZE, BODY
 * and SMTPUTF8 are ours to add; the DSN ones need DSN (RFC 3461 §4); any
 * other needs its keyword among the server's extensions.
 */
static bool
smtp_client_param_ok(const struct smtp_client *c, const char *kw, size_t n)
{
	static const char *const ours[] = { "SIZE", "BODY", "SMTPUTF8" };
	static const char *const dsn[] = { "RET", "ENVID", "NOTIFY", "ORCPT" };
	char k[32];
	size_t i;

	if (n == 0 || n >= sizeof(k))
		return false;
	memcpy(k, kw, n);
	k[n] = '\0';
	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		if (str_eq_ci(k, ours[i]))
			return false;
	}
	for (i = 0; i < sizeof(dsn) / sizeof(dsn[0]); i++) {
		if (str_eq_ci(k, dsn[i]))
			return smtp_ehlo_has(c->ehlo, SMTP_EXT_DSN);
	}
	return smtp_ehlo_find(c->ehlo, k) != NULL;
}

/* Append " param" for each parameter of list the server may see. */
static int
smtp_client_params(const struct smtp_client *c, struct buf *b, const char *list)
{
	const char *p = list, *tok;
	size_t n;
	int rc = 0;

	while (p != NULL && *p != '\0') {
		p += strspn(p, " ");
		tok = p;
		n = strcspn(p, " ");
		p += n;
		if (n > 0 && smtp_client_param_ok(c, tok, strcspn(tok, "= "))) {
			rc |= buf_addc(b, ' ');
			rc |= buf_add(b, tok, n);
		}
	}
	return rc;
}

/* "MAIL FROM:<...> params CRLF" into b; -1 when over the line cap. */
static int
smtp_client_mail_line(const struct smtp_client *c, struct buf *b)
{
	const struct smtp_txn *t = c->txn;
	size_t start = b->len;
	int rc;

	rc = buf_printf(b, "MAIL FROM:<%s>", t->mail_from);
	/* RFC 1870 §6: the size we are about to send, before stuffing. */
	if (smtp_ehlo_has(c->ehlo, SMTP_EXT_SIZE))
		rc |= buf_printf(b, " SIZE=%zu", t->len);
	if (t->body_8bit && smtp_ehlo_has(c->ehlo, SMTP_EXT_8BITMIME))
		rc |= buf_adds(b, " BODY=8BITMIME");
	if (t->smtputf8)
		rc |= buf_adds(b, " SMTPUTF8");
	rc |= smtp_client_params(c, b, t->mail_params);
	rc |= buf_adds(b, "\r\n");
	return rc != 0 || b->len - start > SMTP_CLIENT_LINE_MAX ? -1 : 0;
}

/* "RCPT TO:<...> params CRLF" for recipient i into b; -1 when too long. */
static int
smtp_client_rcpt_line(const struct smtp_client *c, size_t i, struct buf *b)
{
	const struct smtp_txn *t = c->txn;
	size_t start = b->len;
	int rc;

	rc = buf_printf(b, "RCPT TO:<%s>", t->rcpts[i]);
	if (t->rcpt_params != NULL)
		rc |= smtp_client_params(c, b, t->rcpt_params[i]);
	rc |= buf_adds(b, "\r\n");
	return rc != 0 || b->len - start > SMTP_CLIENT_LINE_MAX ? -1 : 0;
}

/* The first recipient from i on that goes to the server (code 0 yet). */
static size_t
smtp_client_next_rcpt(const struct smtp_client *c, size_t i)
{
	while (i < c->txn->nrcpt && c->txn->rcpt_reply[i].code != 0)
		i++;
	return i;
}

static void
smtp_client_txn_end(
    struct smtp_client *c, struct smtp_action *act, enum smtp_txn_end end)
{
	c->txn->end = end;
	c->txn = NULL;
	log_trace(
	    LOG_CAT_SMTP, "%s: transaction %s", c->id, smtp_txn_end_str(end));
	smtp_client_enter(c, SMTP_PHASE_READY);
	act->type = SMTP_ACT_TXN_DONE;
	act->timer = SMTP_TIMER_NONE;
}

/* How a transaction ends that did not deliver. */
static enum smtp_txn_end
smtp_client_txn_failure(const struct smtp_client *c)
{
	if (!c->mail_ok)
		return SMTP_TXN_MAIL_REJECTED;
	return c->rcpt_ok == 0 ? SMTP_TXN_NO_RCPT : SMTP_TXN_DATA_REJECTED;
}

/*
 * Refuse, unsent, the recipients no server could take; returns how many
 * are left to send.
 */
static size_t
smtp_client_rcpts_check(struct smtp_client *c)
{
	struct smtp_txn *t = c->txn;
	enum smtp_client_chars ch;
	size_t i, left = 0;

	for (i = 0; i < t->nrcpt; i++) {
		ASSERT(t->rcpts[i] != NULL);
		ch = smtp_client_chars(t->rcpts[i], t->smtputf8);
		if (ch == SMTP_CHARS_OK && t->rcpt_params != NULL)
			ch = smtp_client_chars(t->rcpt_params[i], t->smtputf8);
		buf_reset(&c->cmd);
		if (ch == SMTP_CHARS_8BIT)
			smtp_client_local(&t->rcpt_reply[i], 553, "5.6.7",
			    "non-ASCII recipient without SMTPUTF8");
		else if (ch == SMTP_CHARS_CONTROL)
			smtp_client_local(&t->rcpt_reply[i], 553, "5.1.3",
			    "control character in the recipient");
		else if (smtp_client_rcpt_line(c, i, &c->cmd) == -1)
			smtp_client_local(&t->rcpt_reply[i], 553, "5.1.3",
			    "RCPT command too long");
		else
			left++;
	}
	return left;
}

/* The sender, checked like the recipients; false when refused. */
static bool
smtp_client_sender_check(struct smtp_client *c)
{
	struct smtp_txn *t = c->txn;
	enum smtp_client_chars ch =
	    smtp_client_chars(t->mail_from, t->smtputf8);

	if (ch == SMTP_CHARS_OK)
		ch = smtp_client_chars(t->mail_params, t->smtputf8);
	buf_reset(&c->cmd);
	if (ch == SMTP_CHARS_8BIT)
		smtp_client_local(&t->mail_reply, 553, "5.6.7",
		    "non-ASCII sender without SMTPUTF8");
	else if (ch == SMTP_CHARS_CONTROL)
		smtp_client_local(&t->mail_reply, 553, "5.1.7",
		    "control character in the sender");
	else if (smtp_client_mail_line(c, &c->cmd) == -1)
		smtp_client_local(
		    &t->mail_reply, 553, "5.1.7", "MAIL command too long");
	else
		return true;
	return false;
}

/*
 * The message as a whole is refused before sending: the reply in
 * data_reply stands for every recipient, so each gets a copy.
 */
static void
smtp_client_txn_refuse(struct smtp_client *c, struct smtp_action *act)
{
	struct smtp_txn *t = c->txn;
	size_t i;

	for (i = 0; i < t->nrcpt; i++)
		t->rcpt_reply[i] = t->data_reply;
	smtp_client_txn_end(c, act, SMTP_TXN_DATA_REJECTED);
}

/*
 * Refusals that need no server, decided from its EHLO: true when the
 * transaction ended here, with nothing sent.
 */
static bool
smtp_client_txn_local(struct smtp_client *c, struct smtp_action *act)
{
	struct smtp_txn *t = c->txn;
	uint64_t max = smtp_ehlo_size(c->ehlo);

	if (t->smtputf8 && !smtp_ehlo_has(c->ehlo, SMTP_EXT_SMTPUTF8)) {
		smtp_client_local(&t->data_reply, 553, "5.6.7",
		    "SMTPUTF8 is required but not offered by the server");
		smtp_client_txn_refuse(c, act);
	} else if (smtp_ehlo_has(c->ehlo, SMTP_EXT_SIZE) && max > 0 &&
	    t->len > max) {
		/* RFC 1870 §6: do not send what the server said it refuses. */
		smtp_client_local(&t->data_reply, 552, "5.3.4",
		    "message of %zu octets over the server's limit of %llu",
		    t->len, (unsigned long long)max);
		smtp_client_txn_refuse(c, act);
	} else if (!smtp_client_sender_check(c))
		smtp_client_txn_end(c, act, SMTP_TXN_MAIL_REJECTED);
	else if (smtp_client_rcpts_check(c) == 0)
		smtp_client_txn_end(c, act, SMTP_TXN_NO_RCPT);
	else
		return false;
	return true;
}

/* Send what b holds and wait in phase next for the first reply. */
static void
smtp_client_emit(struct smtp_client *c, struct smtp_action *act,
    enum smtp_phase next, const struct buf *b)
{
	smtp_client_enter(c, next);
	act->type = SMTP_ACT_SEND;
	act->timer =
	    next == SMTP_PHASE_DOT ? SMTP_TIMER_DATA : SMTP_TIMER_COMMAND;
	act->data = b->data;
	act->len = b->len;
}

/* A reply of a pipelined group arrived; the next one gets a fresh deadline. */
static void
smtp_client_wait(
    struct smtp_client *c, struct smtp_action *act, enum smtp_phase next)
{
	if (c->phase != next)
		smtp_client_enter(c, next);
	act->type = SMTP_ACT_WAIT;
	act->timer = SMTP_TIMER_COMMAND;
}

static void
smtp_client_send_rcpt(struct smtp_client *c, struct smtp_action *act)
{
	int rc;

	buf_reset(&c->cmd);
	rc = smtp_client_rcpt_line(c, c->rcpt_i, &c->cmd);
	ASSERT(rc == 0); /* smtp_client_rcpts_check() tried it */
	smtp_client_emit(c, act, SMTP_PHASE_RCPT, &c->cmd);
}

static void
smtp_client_send_line(struct smtp_client *c, struct smtp_action *act,
    enum smtp_phase next, const char *line)
{
	buf_reset(&c->cmd);
	buf_adds(&c->cmd, line);
	smtp_client_emit(c, act, next, &c->cmd);
}

/*
 * RFC 2920 §3.1: MAIL and RCPT may stand anywhere in a group, DATA only
 * last; so the whole envelope and DATA go out at once.
 */
static void
smtp_client_send_group(struct smtp_client *c, struct smtp_action *act)
{
	const struct smtp_txn *t = c->txn;
	size_t i;
	int rc;

	buf_free(&c->group);
	buf_init(&c->group, (t->nrcpt + 2) * SMTP_CLIENT_LINE_MAX);
	rc = smtp_client_mail_line(c, &c->group);
	for (i = smtp_client_next_rcpt(c, 0); i < t->nrcpt;
	     i = smtp_client_next_rcpt(c, i + 1))
		rc |= smtp_client_rcpt_line(c, i, &c->group);
	rc |= buf_adds(&c->group, "DATA\r\n");
	ASSERT(rc == 0); /* every line was tried against the same cap */
	smtp_client_emit(c, act, SMTP_PHASE_MAIL, &c->group);
}

/* MAIL (and with PIPELINING the rest of the envelope and DATA). */
static void
smtp_client_send_mail(struct smtp_client *c, struct smtp_action *act)
{
	int rc;

	c->need_rset = true;
	c->rcpt_i = smtp_client_next_rcpt(c, 0);
	if (c->pipelining) {
		smtp_client_send_group(c, act);
		return;
	}
	buf_reset(&c->cmd);
	rc = smtp_client_mail_line(c, &c->cmd);
	ASSERT(rc == 0); /* smtp_client_sender_check() tried it */
	smtp_client_emit(c, act, SMTP_PHASE_MAIL, &c->cmd);
}

static void
smtp_client_txn_reset(struct smtp_client *c, struct smtp_txn *t)
{
	size_t i;

	c->txn = t;
	c->pipelining = smtp_ehlo_has(c->ehlo, SMTP_EXT_PIPELINING);
	c->mail_ok = false;
	c->lone_dot = false;
	c->rcpt_i = 0;
	c->rcpt_ok = 0;
	t->end = SMTP_TXN_FAILED;
	smtp_client_reply_clear(&t->mail_reply);
	smtp_client_reply_clear(&t->data_reply);
	for (i = 0; i < t->nrcpt; i++)
		smtp_client_reply_clear(&t->rcpt_reply[i]);
}

static void
smtp_client_on_txn(
    struct smtp_client *c, struct smtp_txn *t, struct smtp_action *act)
{
	/* One at a time, from READY, well formed: else the caller's bug. */
	ASSERT(c->phase == SMTP_PHASE_READY && c->txn == NULL);
	ASSERT(t != NULL && t->mail_from != NULL && t->rcpts != NULL);
	ASSERT(t->nrcpt > 0 && t->rcpt_reply != NULL);
	ASSERT(t->nrcpt < SIZE_MAX / SMTP_CLIENT_LINE_MAX - 2);
	ASSERT(t->data != NULL || t->len == 0);
	smtp_client_txn_reset(c, t);
	if (smtp_client_txn_local(c, act))
		return;
	/* The previous transaction may still be open on the server. */
	if (c->need_rset)
		smtp_client_send_line(c, act, SMTP_PHASE_RSET, "RSET\r\n");
	else
		smtp_client_send_mail(c, act);
}

/* RFC 5321 §3.8: 421 anywhere means the server is going away. */
static bool
smtp_client_closing(struct smtp_client *c, struct smtp_action *act)
{
	if (smtp_reply_code(c->reply) != 421)
		return false;
	smtp_client_fail(c, act, SMTP_ERR_REPLY, "server closing the channel");
	return true;
}

static void
smtp_client_on_rset(struct smtp_client *c, struct smtp_action *act)
{
	if (smtp_client_class(c) == 2) {
		c->need_rset = false;
		smtp_client_send_mail(c, act);
	} else
		smtp_client_refused(c, act, SMTP_ERR_REPLY, "RSET refused");
}

static void
smtp_client_on_mail(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_record(c, &c->txn->mail_reply);
	if (smtp_client_closing(c, act))
		return;
	c->mail_ok = smtp_client_class(c) == 2;
	/* Pipelined: RCPT replies follow whatever MAIL got (RFC 2920). */
	if (c->pipelining)
		smtp_client_wait(c, act, SMTP_PHASE_RCPT);
	else if (!c->mail_ok)
		smtp_client_txn_end(c, act, SMTP_TXN_MAIL_REJECTED);
	else
		smtp_client_send_rcpt(c, act);
}

static void
smtp_client_on_rcpt(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_record(c, &c->txn->rcpt_reply[c->rcpt_i]);
	if (smtp_client_closing(c, act))
		return;
	if (smtp_client_class(c) == 2)
		c->rcpt_ok++;
	c->rcpt_i = smtp_client_next_rcpt(c, c->rcpt_i + 1);
	if (c->rcpt_i < c->txn->nrcpt) {
		if (c->pipelining)
			smtp_client_wait(c, act, SMTP_PHASE_RCPT);
		else
			smtp_client_send_rcpt(c, act);
	} else if (c->pipelining)
		smtp_client_wait(c, act, SMTP_PHASE_DATA);
	else if (c->rcpt_ok > 0)
		smtp_client_send_line(c, act, SMTP_PHASE_DATA, "DATA\r\n");
	else
		smtp_client_txn_end(c, act, SMTP_TXN_NO_RCPT);
}

static void
smtp_client_start_body(struct smtp_client *c, struct smtp_action *act)
{
	c->body_pos = 0;
	c->body_bol = true;
	c->body_cr = false;
	c->body_end = false;
	smtp_client_enter(c, SMTP_PHASE_BODY);
	act->type = SMTP_ACT_BODY;
	act->timer = SMTP_TIMER_COMMAND;
}

/*
 * RFC 2920 §3.1: with no recipient accepted the DATA reply still has to be
 * read; a refusal ends it, and a 354 gets a lone "." so that no message
 * can come out of it.
 */
static void
smtp_client_on_data(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_record(c, &c->txn->data_reply);
	if (smtp_client_closing(c, act))
		return;
	if (smtp_reply_code(c->reply) != 354)
		smtp_client_txn_end(c, act, smtp_client_txn_failure(c));
	else if (c->mail_ok && c->rcpt_ok > 0)
		smtp_client_start_body(c, act);
	else {
		c->lone_dot = true;
		smtp_client_send_line(c, act, SMTP_PHASE_DOT, ".\r\n");
	}
}

/* RFC 5321 §4.1.1.4: whatever the answer, the server's transaction ends. */
static void
smtp_client_on_dot(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_record(c, &c->txn->data_reply);
	c->need_rset = false;
	if (smtp_client_closing(c, act))
		return;
	if (c->lone_dot)
		smtp_client_txn_end(c, act, smtp_client_txn_failure(c));
	else
		smtp_client_txn_end(c, act,
		    smtp_client_class(c) == 2 ? SMTP_TXN_OK :
		                                SMTP_TXN_DATA_REJECTED);
}

/* The server spoke while we were still sending the message. */
static void
smtp_client_on_body_reply(struct smtp_client *c, struct smtp_action *act)
{
	smtp_client_record(c, &c->txn->data_reply);
	if (!smtp_client_closing(c, act))
		smtp_client_fail(c, act, SMTP_ERR_PROTOCOL,
		    "reply before the end of the message");
}

static void
smtp_client_on_body_done(struct smtp_client *c, struct smtp_action *act)
{
	if (c->phase != SMTP_PHASE_BODY)
		return;
	ASSERT(c->body_end);
	smtp_client_send_line(c, act, SMTP_PHASE_DOT, ".\r\n");
}

/* ---- the message body (RFC 5321 §4.5.2) ----------------------------- */

/* A line end: CRLF, with the CR a bare LF lacks. */
static size_t
smtp_client_body_eol(struct smtp_client *c, char *dst, size_t room)
{
	size_t n = 0;

	if (room < (c->body_cr ? 1u : 2u))
		return 0;
	if (!c->body_cr)
		dst[n++] = '\r';
	dst[n++] = '\n';
	c->body_bol = true;
	c->body_cr = false;
	return n;
}

/* After the last byte: end the last line if it is open, then stop. */
static size_t
smtp_client_body_tail(struct smtp_client *c, char *dst, size_t room)
{
	size_t n = 0;

	if (!c->body_bol && (n = smtp_client_body_eol(c, dst, room)) == 0)
		return 0;
	c->body_end = true;
	return n;
}

/*
 * One piece of the body into dst (room bytes): a line end, a stuffed dot,
 * or a run of other bytes up to the next LF. Returns its length; 0 when it
 * does not fit (body_end still false) or nothing is left (body_end set).
 */
static size_t
smtp_client_body_piece(struct smtp_client *c, char *dst, size_t room)
{
	const uint8_t *p = c->txn->data + c->body_pos, *nl;
	size_t left = c->txn->len - c->body_pos, n;

	if (left == 0)
		return smtp_client_body_tail(c, dst, room);
	if (room == 0)
		return 0;
	if (*p == '\n') {
		n = smtp_client_body_eol(c, dst, room);
		c->body_pos += n > 0 ? 1 : 0;
		return n;
	}
	if (c->body_bol && *p == '.') {
		if (room < 2)
			return 0;
		memcpy(dst, "..", 2);
		c->body_pos++;
		c->body_bol = false;
		c->body_cr = false;
		return 2;
	}
	n = left < room ? left : room;
	if ((nl = memchr(p, '\n', n)) != NULL)
		n = (size_t)(nl - p);
	memcpy(dst, p, n);
	c->body_pos += n;
	c->body_bol = false;
	c->body_cr = p[n - 1] == '\r';
	return n;
}

size_t
smtp_client_body(struct smtp_client *c, char *dst, size_t cap)
{
	size_t n = 0, k;

	ASSERT(cap >= 2);
	if (c->phase != SMTP_PHASE_BODY || c->txn == NULL)
		return 0;
	while (!c->body_end) {
		k = smtp_client_body_piece(c, dst + n, cap - n);
		if (k == 0 && !c->body_end)
			break;
		n += k;
	}
	return n;
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
	case SMTP_PHASE_RSET:
		smtp_client_on_rset(c, act);
		break;
	case SMTP_PHASE_MAIL:
		smtp_client_on_mail(c, act);
		break;
	case SMTP_PHASE_RCPT:
		smtp_client_on_rcpt(c, act);
		break;
	case SMTP_PHASE_DATA:
		smtp_client_on_data(c, act);
		break;
	case SMTP_PHASE_BODY:
		smtp_client_on_body_reply(c, act);
		break;
	case SMTP_PHASE_DOT:
		smtp_client_on_dot(c, act);
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
	case SMTP_EV_TXN:
		smtp_client_on_txn(c, ev->txn, act);
		break;
	case SMTP_EV_BODY_DONE:
		smtp_client_on_body_done(c, act);
		break;
	}
}
