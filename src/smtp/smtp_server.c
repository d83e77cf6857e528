/*
 * smtp_server: the inbound SMTP state machine, without I/O (see the
 * header for the contract and the choices).
 *
 * smtp_server_enter() is the only place the phase changes; it traces each
 * transition and turns the return to COMMAND into a 421 when a shutdown
 * is pending. Commands are parsed by smtp_cmd and dispatched through one
 * handler per verb, which checks sequence (503) and policy (relay, TLS,
 * limits) and replies. Message data is decoded by a five-state machine
 * that survives arbitrary splits of the input.
 */
#include "smtp/smtp_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/qid.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "smtp/smtp_reply.h"

/* Stop taking commands while this much output waits (RFC 2920 §3.2). */
#define SMTP_SRV_OUT_HIGH (16 * 1024)
#define SMTP_SRV_OUT_MAX  (1024 * 1024)
/* Syntax and sequence errors before we hang up (Postfix: 20). */
#define SMTP_SRV_ERRORS_MAX        20
#define SMTP_SRV_AUTH_FAILURES_MAX 3
/* RFC 5321 §6.3: a message with this many Received fields is looping. */
#define SMTP_SRV_HOPS_MAX 100
/* Room for our Received header in front of the message. */
#define SMTP_SRV_HEADER_MAX 4096
#define SMTP_SRV_USER_MAX   255
#define SMTP_SRV_PASS_MAX   1024
/* RFC 5322 §2.1.1: a header line is at most 998 characters. */
#define SMTP_SRV_MSGID_MAX 998
/* Decoded SASL responses: 3/4 of the RFC 4954 §4 line limit. */
#define SMTP_SRV_SASL_MAX (SMTP_CMD_AUTH_LINE_MAX / 4 * 3)

/* Where the data decoder is within a line (RFC 5321 §4.5.2). */
enum smtp_srv_ds {
	SMTP_DS_BOL,    /* at the start of a line */
	SMTP_DS_MID,    /* inside a line */
	SMTP_DS_CR,     /* after a CR inside a line */
	SMTP_DS_DOT,    /* after a '.' at the start of a line */
	SMTP_DS_DOT_CR, /* after ".\r" at the start of a line */
};

enum smtp_srv_sasl {
	SMTP_SASL_PLAIN,      /* waiting for the PLAIN response */
	SMTP_SASL_LOGIN_USER, /* waiting for the LOGIN user name */
	SMTP_SASL_LOGIN_PASS, /* waiting for the LOGIN password */
};

struct smtp_srv_rcpt {
	char *addr;
	char *orcpt;
	unsigned notify;
};

struct smtp_server {
	struct smtp_server_params p; /* strings point to our copies */
	char *id;
	char *hostname;
	char *client_ip;
	enum smtp_server_phase phase;
	bool entered; /* the phase changed during this step */
	time_t now;
	struct buf out;
	struct smtp_cmd cmd; /* scratch for the parser */
	size_t rest;         /* input behind the current line */

	/* session */
	char *helo;
	bool esmtp;
	bool tls;
	char *tls_info;
	char *auth_user;
	unsigned errors;
	unsigned auth_failures;
	bool shutdown;

	/* SASL exchange */
	enum smtp_srv_sasl sasl;
	char user[SMTP_SRV_USER_MAX + 1];
	char pass[SMTP_SRV_PASS_MAX + 1];

	/* mail transaction */
	bool in_txn;
	char *sender;
	char *envid;
	enum smtp_ret ret;
	bool body_8bit;
	bool smtputf8;
	struct smtp_srv_rcpt *rcpts;
	size_t nrcpt;
	char txn_id[QID_LEN];

	/* message data */
	struct buf msg;
	enum smtp_srv_ds ds;
	size_t body_len;
	size_t header_len;
	bool oversize;
	bool bare;
	char *message_id;
	struct smtp_server_txn txn;
	struct smtp_server_rcpt *txn_rcpts;
};

const char *
smtp_server_phase_str(enum smtp_server_phase p)
{
	switch (p) {
	case SMTP_SRV_CONNECT:
		return "connect";
	case SMTP_SRV_COMMAND:
		return "command";
	case SMTP_SRV_SASL:
		return "sasl";
	case SMTP_SRV_AUTH_CHECK:
		return "auth-check";
	case SMTP_SRV_TLS:
		return "tls";
	case SMTP_SRV_DATA:
		return "data";
	case SMTP_SRV_COMMIT:
		return "commit";
	case SMTP_SRV_DONE:
		return "done";
	}
	return "unknown";
}

struct smtp_server *
smtp_server_new(const struct smtp_server_params *p)
{
	struct smtp_server *m = xcalloc(1, sizeof(*m));

	/* A CR or LF in our own name would break every reply: a bug. */
	ASSERT(p->hostname != NULL && p->hostname[0] != '\0');
	ASSERT(strcspn(p->hostname, "\r\n") == strlen(p->hostname));
	ASSERT(strlen(p->hostname) <= SMTP_CMD_DOMAIN_MAX);
	ASSERT(p->client_ip != NULL && strlen(p->client_ip) < 64);
	m->p = *p;
	m->id = xstrdup(p->id != NULL ? p->id : "smtpd");
	m->hostname = xstrdup(p->hostname);
	m->client_ip = xstrdup(p->client_ip);
	m->p.id = m->id;
	m->p.hostname = m->hostname;
	m->p.client_ip = m->client_ip;
	m->phase = SMTP_SRV_CONNECT;
	buf_init(&m->out, SMTP_SRV_OUT_MAX);
	buf_init(&m->msg, 0);
	return m;
}

static void
smtp_server_txn_reset(struct smtp_server *m)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].orcpt);
	}
	free(m->rcpts);
	free(m->txn_rcpts);
	free(m->sender);
	free(m->envid);
	free(m->message_id);
	m->rcpts = NULL;
	m->txn_rcpts = NULL;
	m->sender = m->envid = m->message_id = NULL;
	m->nrcpt = 0;
	m->in_txn = false;
	m->ret = SMTP_RET_UNSET;
	m->body_8bit = m->smtputf8 = false;
	/* Messages are big: give the memory back between them. */
	buf_free(&m->msg);
	memset(&m->txn, 0, sizeof(m->txn));
}

static void
smtp_server_wipe(struct smtp_server *m)
{
	OPENSSL_cleanse(m->pass, sizeof(m->pass));
	OPENSSL_cleanse(m->user, sizeof(m->user));
}

void
smtp_server_free(struct smtp_server *m)
{
	if (m == NULL)
		return;
	smtp_server_txn_reset(m);
	smtp_server_wipe(m);
	buf_free(&m->out);
	free(m->helo);
	free(m->tls_info);
	free(m->auth_user);
	free(m->id);
	free(m->hostname);
	free(m->client_ip);
	free(m);
}

enum smtp_server_phase
smtp_server_phase(const struct smtp_server *m)
{
	return m->phase;
}

const char *
smtp_server_helo(const struct smtp_server *m)
{
	return m->helo;
}

const char *
smtp_server_auth_user(const struct smtp_server *m)
{
	return m->auth_user;
}

const char *
smtp_server_output(const struct smtp_server *m, size_t *len)
{
	*len = m->out.len;
	return buf_cstr(&m->out);
}

void
smtp_server_output_clear(struct smtp_server *m)
{
	buf_reset(&m->out);
}

const struct smtp_server_txn *
smtp_server_txn(const struct smtp_server *m)
{
	return m->phase == SMTP_SRV_COMMIT ? &m->txn : NULL;
}

/* ---- replies -------------------------------------------------------- */

static void smtp_server_replyf(struct smtp_server *m, const char *fmt, ...)
    DR_PRINTF(2, 3);

/* Queue one reply line (CRLF added) for sending. */
static void
smtp_server_replyf(struct smtp_server *m, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Our replies are short; the caps of the input bound the rest. */
	ASSERT(n > 0 && (size_t)n < sizeof(line));
	log_trace(LOG_CAT_SMTP, "%s > %s", m->id, line);
	if (buf_add(&m->out, line, (size_t)n) == -1 ||
	    buf_add(&m->out, "\r\n", 2) == -1)
		panic("smtp_server: output over %d octets", SMTP_SRV_OUT_MAX);
}

static void
smtp_server_reply(
    struct smtp_server *m, int code, const char *esc, const char *text)
{
	smtp_server_replyf(m, "%d %s %s", code, esc, text);
}

static void
smtp_server_enter(struct smtp_server *m, enum smtp_server_phase phase)
{
	/* DONE is final, whatever a handler does after an error limit. */
	if (m->phase == SMTP_SRV_DONE)
		return;
	log_trace(LOG_CAT_SMTP, "%s: %s -> %s", m->id,
	    smtp_server_phase_str(m->phase), smtp_server_phase_str(phase));
	m->phase = phase;
	m->entered = true;
	/*
	 * Shutdown lets a message in flight finish; the next command would
	 * start new work, so the session ends here (RFC 5321 §3.8).
	 */
	if (phase == SMTP_SRV_COMMAND && m->shutdown) {
		smtp_server_replyf(
		    m, "421 4.3.2 %s Service shutting down", m->hostname);
		smtp_server_enter(m, SMTP_SRV_DONE);
	}
}

/* 421 and close (RFC 5321 §3.8). */
static void
smtp_server_close(struct smtp_server *m, const char *esc, const char *text)
{
	smtp_server_replyf(m, "421 %s %s %s", esc, m->hostname, text);
	smtp_server_enter(m, SMTP_SRV_DONE);
}

/*
 * A refused command. Many of them in one session mean a confused or
 * hostile client (an HTTP request, a scanner): hang up after
 * SMTP_SRV_ERRORS_MAX, like Postfix's smtpd_hard_error_limit.
 */
static void
smtp_server_error(
    struct smtp_server *m, int code, const char *esc, const char *text)
{
	smtp_server_reply(m, code, esc, text);
	if (++m->errors >= SMTP_SRV_ERRORS_MAX)
		smtp_server_close(m, "4.7.0", "Too many errors");
}

/* ---- session events ------------------------------------------------- */

static void
smtp_server_on_connected(struct smtp_server *m)
{
	if (m->phase != SMTP_SRV_CONNECT)
		return;
	switch (m->p.refuse) {
	case SMTP_SRV_REFUSE_BUSY:
		smtp_server_close(
		    m, "4.3.2", "Too many connections, try later");
		return;
	case SMTP_SRV_REFUSE_PER_IP:
		smtp_server_close(
		    m, "4.7.0", "Too many connections from your address");
		return;
	case SMTP_SRV_REFUSE_NONE:
		break;
	}
	/* RFC 5321 §4.2: no enhanced code in the greeting (RFC 2034 §3). */
	smtp_server_replyf(m, "220 %s ESMTP danerelay", m->hostname);
	smtp_server_enter(m, SMTP_SRV_COMMAND);
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3). */
static void
smtp_server_literal(const struct smtp_server *m, char *dst, size_t len)
{
	if (strchr(m->client_ip, ':') != NULL)
		snprintf(dst, len, "[IPv6:%s]", m->client_ip);
	else
		snprintf(dst, len, "[%s]", m->client_ip);
}

/* ---- HELO, EHLO, RSET, NOOP, QUIT, VRFY, EXPN, HELP ----------------- */

static void
smtp_server_set_helo(struct smtp_server *m, bool esmtp)
{
	/* RFC 5321 §4.1.4: EHLO/HELO mid-transaction acts as RSET. */
	smtp_server_txn_reset(m);
	free(m->helo);
	m->helo = xstrdup(m->cmd.arg);
	m->esmtp = esmtp;
}

static void
smtp_server_cmd_helo(struct smtp_server *m)
{
	smtp_server_set_helo(m, false);
	smtp_server_replyf(m, "250 %s", m->hostname);
}

/* RFC 5321 §4.1.1.1: a multi-line 250 naming our extensions. */
static void
smtp_server_cmd_ehlo(struct smtp_server *m)
{
	const char *ext[10];
	char size[32];
	size_t n = 0, i;

	smtp_server_set_helo(m, true);
	snprintf(size, sizeof(size), "SIZE %zu", m->p.max_message_size);
	ext[n++] = "PIPELINING";
	ext[n++] = size;
	ext[n++] = "8BITMIME";
	ext[n++] = "ENHANCEDSTATUSCODES";
	ext[n++] = "SMTPUTF8";
	ext[n++] = "DSN";
	/* RFC 3207 §4.2: not again once TLS is up. */
	if (m->p.tls_available && !m->tls)
		ext[n++] = "STARTTLS";
	/* Passwords only travel encrypted (RFC 4954 §4, RFC 8314 §3). */
	if (m->p.auth_available && m->tls)
		ext[n++] = "AUTH PLAIN LOGIN";
	smtp_server_replyf(m, "250-%s", m->hostname);
	for (i = 0; i < n; i++)
		smtp_server_replyf(m, "250%c%s", i + 1 < n ? '-' : ' ', ext[i]);
}

static void
smtp_server_cmd_rset(struct smtp_server *m)
{
	smtp_server_txn_reset(m);
	smtp_server_reply(m, 250, "2.0.0", "Ok");
}

static void
smtp_server_cmd_noop(struct smtp_server *m)
{
	smtp_server_reply(m, 250, "2.0.0", "Ok");
}

static void
smtp_server_cmd_quit(struct smtp_server *m)
{
	smtp_server_reply(m, 221, "2.0.0", "Bye");
	smtp_server_enter(m, SMTP_SRV_DONE);
}

/* RFC 5321 §3.5.3: 252 when we cannot verify but will try to deliver. */
static void
smtp_server_cmd_vrfy(struct smtp_server *m)
{
	smtp_server_reply(m, 252, "2.5.0",
	    "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
smtp_server_cmd_expn(struct smtp_server *m)
{
	smtp_server_error(m, 502, "5.5.1", "EXPN not available");
}

static void
smtp_server_cmd_help(struct smtp_server *m)
{
	smtp_server_reply(m, 214, "2.0.0",
	    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP "
	    "STARTTLS AUTH");
}

/* ---- MAIL, RCPT ----------------------------------------------------- */

/*
 * The queue is short of room: 452 (RFC 5321 §4.5.3.1.10, RFC 1870 §6.2
 * "insufficient system storage") with RFC 3463 4.3.1 "mail system full":
 * the client keeps the message and retries later.
 */
static bool
smtp_server_storage_low(struct smtp_server *m, size_t size)
{
	if (m->p.storage_low == NULL ||
	    !m->p.storage_low(size, m->p.storage_arg))
		return false;
	smtp_server_reply(m, 452, "4.3.1", "Insufficient system storage");
	return true;
}

static void
smtp_server_cmd_mail(struct smtp_server *m)
{
	const struct smtp_cmd *c = &m->cmd;

	if (m->helo == NULL) {
		smtp_server_error(m, 503, "5.5.1", "Send HELO/EHLO first");
		return;
	}
	if (m->in_txn) {
		smtp_server_error(m, 503, "5.5.1", "Nested MAIL command");
		return;
	}
	/* RFC 5321 §4.1.1.11: parameters only after EHLO. */
	if (c->params && !m->esmtp) {
		smtp_server_error(
		    m, 555, "5.5.4", "Parameters need EHLO, not HELO");
		return;
	}
	if (c->has_size && c->size > m->p.max_message_size) {
		smtp_server_reply(m, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size");
		return;
	}
	if (smtp_server_storage_low(m, c->has_size ? c->size : 0))
		return;
	/* RFC 5321 section 4.2.2: 451, local error in processing; the
	 * client keeps the message and tries again (or another node). */
	if (m->p.queue_down != NULL && m->p.queue_down(m->p.storage_arg)) {
		smtp_server_reply(
		    m, 451, "4.3.0", "Queue unavailable, try again later");
		return;
	}
	m->in_txn = true;
	m->sender = xstrdup(c->path);
	m->envid = c->has_envid ? xstrdup(c->envid) : NULL;
	m->ret = c->ret;
	m->body_8bit = c->body == SMTP_BODY_8BITMIME;
	m->smtputf8 = c->smtputf8;
	smtp_server_reply(m, 250, "2.1.0", "Ok");
}

static bool
smtp_server_has_rcpt(const struct smtp_server *m, const char *addr)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (strcmp(m->rcpts[i].addr, addr) == 0)
			return true;
	return false;
}

static void
smtp_server_add_rcpt(struct smtp_server *m)
{
	const struct smtp_cmd *c = &m->cmd;
	struct smtp_srv_rcpt *r;

	m->rcpts = xreallocarray(m->rcpts, m->nrcpt + 1, sizeof(*m->rcpts));
	r = &m->rcpts[m->nrcpt++];
	r->addr = xstrdup(c->path);
	r->orcpt = c->has_orcpt ? xstrdup(c->orcpt) : NULL;
	r->notify = c->notify;
}

/* Whether the domain of a parsed path is an address literal ("[...]"). */
static bool
smtp_server_is_literal(const char *path)
{
	const char *at = strrchr(path, '@');

	return at != NULL && at[1] == '[';
}

static void
smtp_server_cmd_rcpt(struct smtp_server *m)
{
	const struct smtp_cmd *c = &m->cmd;

	if (!m->in_txn) {
		smtp_server_error(m, 503, "5.5.1", "Need MAIL command");
		return;
	}
	if (c->params && !m->esmtp) {
		smtp_server_error(
		    m, 555, "5.5.4", "Parameters need EHLO, not HELO");
		return;
	}
	if (c->postmaster) {
		smtp_server_reply(
		    m, 550, "5.1.1", "This relay has no local mailboxes");
		return;
	}
	/* Never an open relay: a known network or a login (RFC 5321 §3.6). */
	if (!m->p.relay_allowed && m->auth_user == NULL) {
		smtp_server_error(m, 554, "5.7.1", "Relay access denied");
		return;
	}
	/*
	 * RFC 7672 §2.2.2: an address literal names no DNS domain, so
	 * neither DANE nor MTA-STS (RFC 8461 §3.4) can authenticate its
	 * server. Refused here, with the reason, rather than accepted and
	 * bounced later (RFC 3463: X.7.1, delivery not authorized).
	 */
	if (smtp_server_is_literal(c->path)) {
		smtp_server_replyf(m,
		    "550 5.7.1 <%s>: address literals are not relayed: no "
		    "DANE or MTA-STS authentication is possible for them "
		    "(RFC 7672 section 2.2.2)",
		    c->path);
		return;
	}
	if (smtp_server_storage_low(m, 0))
		return;
	/* RFC 5321 §4.5.3.1.10: 452, the client retries the rest later. */
	if (m->nrcpt >= m->p.max_recipients) {
		smtp_server_reply(m, 452, "4.5.3", "Too many recipients");
		return;
	}
	/* A repeated recipient would get the message twice. */
	if (!smtp_server_has_rcpt(m, c->path))
		smtp_server_add_rcpt(m);
	smtp_server_reply(m, 250, "2.1.5", "Ok");
}

/* ---- DATA ----------------------------------------------------------- */

/* RFC 5322 §3.3 date-time in UTC, without locale. */
static void
smtp_server_date(time_t t, char *dst, size_t len)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11) {
		snprintf(dst, len, "Thu, 1 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(dst, len, "%s, %d %s %d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * RFC 3848 and RFC 6531 §3.7.3: the "with" protocol names the session:
 * ESMTP, plus S over TLS and A when authenticated; UTF8SMTP... when the
 * transaction used SMTPUTF8; SMTP after HELO.
 */
static void
smtp_server_protocol(const struct smtp_server *m, char *dst, size_t len)
{
	if (!m->esmtp) {
		snprintf(dst, len, "SMTP");
		return;
	}
	snprintf(dst, len, "%s%s%s", m->smtputf8 ? "UTF8SMTP" : "ESMTP",
	    m->tls ? "S" : "", m->auth_user != NULL ? "A" : "");
}

/*
 * Our trace field (RFC 5321 §4.4): from the HELO name and the client's
 * address (we do no reverse lookup), by us, with the protocol, our id, and
 * the recipient only when there is one (more would disclose Bcc).
 */
static void
smtp_server_received(struct smtp_server *m)
{
	char lit[80], proto[16], date[64];
	int rc = 0;

	smtp_server_literal(m, lit, sizeof(lit));
	smtp_server_protocol(m, proto, sizeof(proto));
	smtp_server_date(m->now, date, sizeof(date));
	rc |= buf_printf(&m->msg, "Received: from %s (%s)\r\n", m->helo, lit);
	if (m->tls && m->tls_info != NULL)
		rc |= buf_printf(&m->msg, "\t(using %s)\r\n", m->tls_info);
	rc |= buf_printf(&m->msg, "\tby %s (danerelay) with %s id %s",
	    m->hostname, proto, m->txn_id);
	if (m->nrcpt == 1)
		rc |= buf_printf(&m->msg, "\r\n\tfor <%s>", m->rcpts[0].addr);
	rc |= buf_printf(&m->msg, "; %s\r\n", date);
	ASSERT(rc == 0);
	m->header_len = m->msg.len;
}

static void
smtp_server_cmd_data(struct smtp_server *m)
{
	if (!m->in_txn) {
		smtp_server_error(m, 503, "5.5.1", "Need MAIL command");
		return;
	}
	/* RFC 2920 §3.1: with pipelining, DATA may follow refused RCPTs. */
	if (m->nrcpt == 0) {
		smtp_server_reply(m, 554, "5.5.1", "No valid recipients");
		return;
	}
	/* The queue keeps this id: time-ordered, unique in the process. */
	qid_make(m->now, m->txn_id);
	buf_free(&m->msg);
	buf_init(&m->msg, m->p.max_message_size + SMTP_SRV_HEADER_MAX);
	smtp_server_received(m);
	m->ds = SMTP_DS_BOL;
	m->body_len = 0;
	m->oversize = m->bare = false;
	/* RFC 2034 §3: enhanced codes are for 2xx, 4xx and 5xx only. */
	smtp_server_replyf(m, "354 End data with <CR><LF>.<CR><LF>");
	smtp_server_enter(m, SMTP_SRV_DATA);
}

/* ---- STARTTLS (RFC 3207) -------------------------------------------- */

static void
smtp_server_cmd_starttls(struct smtp_server *m)
{
	if (!m->p.tls_available) {
		smtp_server_error(m, 502, "5.5.1", "STARTTLS not offered");
		return;
	}
	if (m->tls) {
		smtp_server_error(m, 503, "5.5.1", "TLS already active");
		return;
	}
	if (!m->esmtp) {
		smtp_server_error(m, 503, "5.5.1", "Send EHLO first");
		return;
	}
	/*
	 * RFC 3207 §5 (and CVE-2011-0411): commands pipelined behind
	 * STARTTLS were sent in clear text but would be answered as if
	 * they came over TLS. A client that does this is broken or an
	 * attacker is injecting: hang up.
	 */
	if (m->rest > 0) {
		smtp_server_close(
		    m, "4.7.0", "Command pipelined after STARTTLS");
		return;
	}
	smtp_server_reply(m, 220, "2.0.0", "Ready to start TLS");
	smtp_server_enter(m, SMTP_SRV_TLS);
}

/* ---- AUTH (RFC 4954, PLAIN RFC 4616, LOGIN) ------------------------- */

/*
 * Strict base64 (RFC 4648 §4) of n octets into dst (dstlen > n/4*3);
 * "=" alone is the empty response (RFC 4954 §4). Returns the length or -1.
 */
static int
smtp_server_b64(char *dst, size_t dstlen, const char *s, size_t n)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                            "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, pad = 0;
	int r;

	if (n == 1 && s[0] == '=')
		return 0;
	if (n == 0 || n % 4 != 0 || n / 4 * 3 >= dstlen)
		return -1;
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	for (i = 0; i < n - pad; i++)
		if (s[i] == '\0' || strchr(alpha, s[i]) == NULL)
			return -1;
	r = EVP_DecodeBlock(
	    (unsigned char *)dst, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r < pad)
		return -1;
	r -= (int)pad;
	dst[r] = '\0';
	return r;
}

static void
smtp_server_auth_check(struct smtp_server *m)
{
	smtp_server_enter(m, SMTP_SRV_AUTH_CHECK);
}

/*
 * A failed AUTH: 535 (RFC 4954 §6) or, when the credentials could not be
 * checked, 454 4.7.0 "Temporary authentication failure"; both count.
 */
static void
smtp_server_auth_failed(struct smtp_server *m, bool temp)
{
	smtp_server_wipe(m);
	m->auth_failures++;
	if (temp)
		smtp_server_reply(
		    m, 454, "4.7.0", "Temporary authentication failure");
	else
		smtp_server_reply(
		    m, 535, "5.7.8", "Authentication credentials invalid");
	if (m->auth_failures >= SMTP_SRV_AUTH_FAILURES_MAX)
		smtp_server_close(
		    m, "4.7.0", "Too many failed authentication attempts");
	else
		smtp_server_enter(m, SMTP_SRV_COMMAND);
}

/* A credential we cannot use: same reply as a wrong password. */
static void
smtp_server_auth_fail(struct smtp_server *m)
{
	smtp_server_auth_failed(m, false);
}

/* Copy n octets of text (no NUL inside) into a field of size dstlen. */
static bool
smtp_server_take(char *dst, size_t dstlen, const char *s, size_t n)
{
	if (n == 0 || n >= dstlen || memchr(s, '\0', n) != NULL)
		return false;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

/* RFC 4616 §2: [authzid] NUL authcid NUL passwd. */
static void
smtp_server_sasl_plain(struct smtp_server *m, const char *msg, size_t n)
{
	const char *end = msg + n, *cid, *pw;
	size_t zlen, clen;

	if ((cid = memchr(msg, '\0', n)) == NULL ||
	    (pw = memchr(cid + 1, '\0', (size_t)(end - cid - 1))) == NULL) {
		smtp_server_reply(m, 501, "5.5.2", "Invalid PLAIN response");
		smtp_server_enter(m, SMTP_SRV_COMMAND);
		return;
	}
	zlen = (size_t)(cid - msg);
	clen = (size_t)(pw - cid - 1);
	cid++;
	pw++;
	/* We act for nobody else: authzid empty or the same user. */
	if (zlen > 0 && (zlen != clen || memcmp(msg, cid, clen) != 0)) {
		smtp_server_auth_fail(m);
		return;
	}
	if (!smtp_server_take(m->user, sizeof(m->user), cid, clen) ||
	    !smtp_server_take(
	        m->pass, sizeof(m->pass), pw, (size_t)(end - pw))) {
		smtp_server_auth_fail(m);
		return;
	}
	smtp_server_auth_check(m);
}

/* One decoded SASL response for the mechanism in progress. */
static void
smtp_server_sasl_step(struct smtp_server *m, const char *msg, size_t n)
{
	switch (m->sasl) {
	case SMTP_SASL_PLAIN:
		smtp_server_sasl_plain(m, msg, n);
		break;
	case SMTP_SASL_LOGIN_USER:
		if (!smtp_server_take(m->user, sizeof(m->user), msg, n)) {
			smtp_server_auth_fail(m);
			return;
		}
		m->sasl = SMTP_SASL_LOGIN_PASS;
		/* base64 of "Password:" */
		smtp_server_replyf(m, "334 UGFzc3dvcmQ6");
		smtp_server_enter(m, SMTP_SRV_SASL);
		break;
	case SMTP_SASL_LOGIN_PASS:
		if (!smtp_server_take(m->pass, sizeof(m->pass), msg, n)) {
			smtp_server_auth_fail(m);
			return;
		}
		smtp_server_auth_check(m);
		break;
	}
}

/* A base64 response, from the AUTH line or a line of its own. */
static void
smtp_server_sasl_response(struct smtp_server *m, const char *s, size_t n)
{
	char msg[SMTP_SRV_SASL_MAX + 1];
	int len;

	/* RFC 4954 §4: "*" cancels the exchange. */
	if (n == 1 && s[0] == '*') {
		smtp_server_reply(m, 501, "5.0.0", "Authentication cancelled");
		smtp_server_enter(m, SMTP_SRV_COMMAND);
		return;
	}
	if ((len = smtp_server_b64(msg, sizeof(msg), s, n)) < 0) {
		smtp_server_reply(m, 501, "5.5.2", "Cannot decode response");
		smtp_server_enter(m, SMTP_SRV_COMMAND);
		return;
	}
	smtp_server_sasl_step(m, msg, (size_t)len);
	OPENSSL_cleanse(msg, sizeof(msg));
}

static void
smtp_server_sasl_start(struct smtp_server *m, enum smtp_srv_sasl sasl)
{
	const struct smtp_cmd *c = &m->cmd;

	m->sasl = sasl;
	if (c->has_initial) {
		smtp_server_sasl_response(m, c->initial, strlen(c->initial));
		return;
	}
	/* RFC 4954 §4: an empty challenge is "334 "; LOGIN asks for a user. */
	smtp_server_replyf(
	    m, sasl == SMTP_SASL_PLAIN ? "334 " : "334 VXNlcm5hbWU6");
	smtp_server_enter(m, SMTP_SRV_SASL);
}

static void
smtp_server_cmd_auth(struct smtp_server *m)
{
	if (!m->p.auth_available) {
		smtp_server_error(m, 502, "5.5.1", "AUTH not offered");
		return;
	}
	if (!m->tls) {
		smtp_server_reply(
		    m, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (!m->esmtp) {
		smtp_server_error(m, 503, "5.5.1", "Send EHLO first");
		return;
	}
	if (m->auth_user != NULL) {
		smtp_server_error(m, 503, "5.5.1", "Already authenticated");
		return;
	}
	/* RFC 4954 §4: not within a mail transaction. */
	if (m->in_txn) {
		smtp_server_error(
		    m, 503, "5.5.1", "AUTH not allowed in a mail transaction");
		return;
	}
	if (strcmp(m->cmd.mech, "PLAIN") == 0)
		smtp_server_sasl_start(m, SMTP_SASL_PLAIN);
	else if (strcmp(m->cmd.mech, "LOGIN") == 0)
		smtp_server_sasl_start(m, SMTP_SASL_LOGIN_USER);
	else
		smtp_server_error(
		    m, 504, "5.5.4", "Unrecognized authentication type");
}

/* ---- command dispatch ----------------------------------------------- */

static const struct {
	enum smtp_verb verb;
	void (*run)(struct smtp_server *m);
} smtp_server_cmds[] = {
	{ SMTP_VERB_HELO, smtp_server_cmd_helo },
	{ SMTP_VERB_EHLO, smtp_server_cmd_ehlo },
	{ SMTP_VERB_MAIL, smtp_server_cmd_mail },
	{ SMTP_VERB_RCPT, smtp_server_cmd_rcpt },
	{ SMTP_VERB_DATA, smtp_server_cmd_data },
	{ SMTP_VERB_RSET, smtp_server_cmd_rset },
	{ SMTP_VERB_NOOP, smtp_server_cmd_noop },
	{ SMTP_VERB_QUIT, smtp_server_cmd_quit },
	{ SMTP_VERB_VRFY, smtp_server_cmd_vrfy },
	{ SMTP_VERB_EXPN, smtp_server_cmd_expn },
	{ SMTP_VERB_HELP, smtp_server_cmd_help },
	{ SMTP_VERB_STARTTLS, smtp_server_cmd_starttls },
	{ SMTP_VERB_AUTH, smtp_server_cmd_auth },
};

static void
smtp_server_trace_line(struct smtp_server *m, const char *line, size_t n)
{
	char safe[256];

	if (!log_trace_on(LOG_CAT_SMTP))
		return;
	/* Never a password in a log: AUTH lines lose their response. */
	if (n > 5 && strncasecmp(line, "AUTH ", 5) == 0)
		n = 5 + strcspn(line + 5, " ");
	smtp_reply_sanitize(safe, sizeof(safe), line, n);
	log_trace(LOG_CAT_SMTP, "%s < %s", m->id, safe);
}

static void
smtp_server_command(struct smtp_server *m, const char *line, size_t n)
{
	struct smtp_cmd *c = &m->cmd;
	size_t i;

	smtp_server_trace_line(m, line, n);
	if (smtp_cmd_parse(c, line, n, m->smtputf8) == -1) {
		smtp_server_error(m, c->code, c->esc, c->text);
		return;
	}
	for (i = 0; i < sizeof(smtp_server_cmds) / sizeof(smtp_server_cmds[0]);
	     i++)
		if (smtp_server_cmds[i].verb == c->verb) {
			smtp_server_cmds[i].run(m);
			return;
		}
	panic("smtp_server: verb %d without handler", (int)c->verb);
}

/* ---- input: lines --------------------------------------------------- */

/* The longest line the current phase takes, without CRLF. */
static size_t
smtp_server_line_max(const struct smtp_server *m)
{
	return m->phase == SMTP_SRV_SASL ? SMTP_CMD_AUTH_LINE_MAX :
	                                   SMTP_CMD_LINE_MAX;
}

/* A complete line (without LF, under the cap) in COMMAND or SASL. */
static void
smtp_server_line(struct smtp_server *m, const char *line, size_t n)
{
	/* RFC 5321 §2.3.8: lines end with CRLF, and only CRLF. */
	if (n == 0 || line[n - 1] != '\r') {
		smtp_server_error(m, 500, "5.5.2",
		    "Bare LF received; lines must end with CRLF");
		if (m->phase == SMTP_SRV_SASL)
			smtp_server_enter(m, SMTP_SRV_COMMAND);
		return;
	}
	if (m->phase == SMTP_SRV_SASL)
		smtp_server_sasl_response(m, line, n - 1);
	else
		smtp_server_command(m, line, n - 1);
}

/*
 * Take the next line from p..end and act on it. Returns octets used, 0
 * when the line is not complete yet. A line over the cap (RFC 5321
 * §4.5.3.1.4, RFC 4954 §4) ends the session with 500, complete or not:
 * an endless line cannot be told from a long one without buffering it,
 * and buffering is what the cap is there to prevent.
 */
static size_t
smtp_server_take_line(struct smtp_server *m, const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	size_t n = lf != NULL ? (size_t)(lf - p) : (size_t)(end - p);

	/* The cap does not count the CR of the line end. */
	if (n > smtp_server_line_max(m) + 1 ||
	    (lf != NULL && n == smtp_server_line_max(m) + 1 &&
	        p[n - 1] != '\r')) {
		if (m->phase == SMTP_SRV_SASL)
			smtp_server_reply(m, 500, "5.5.6",
			    "Authentication exchange line is too long");
		else
			smtp_server_reply(m, 500, "5.5.2", "Line too long");
		smtp_server_enter(m, SMTP_SRV_DONE);
		return (size_t)(end - p);
	}
	if (lf == NULL)
		return 0;
	m->rest = (size_t)(end - lf - 1);
	smtp_server_line(m, p, n);
	return n + 1;
}

/* ---- input: message data (RFC 5321 §4.5.2) -------------------------- */

/* Keep n octets of the message, or only count them once over the cap. */
static void
smtp_server_data_put(struct smtp_server *m, const char *p, size_t n)
{
	if (m->oversize)
		return;
	if (n > m->p.max_message_size - m->body_len) {
		/* Keep reading to the dot, then 552 (RFC 1870 §6.3). */
		m->oversize = true;
		buf_free(&m->msg);
		return;
	}
	m->body_len += n;
	if (buf_add(&m->msg, p, n) == -1)
		panic("smtp_server: message buffer under its own cap");
}

/* Inside a line: copy up to the next CR or LF. Returns octets used. */
static size_t
smtp_server_data_mid(struct smtp_server *m, const char *p, const char *end)
{
	const char *q = p;

	while (q < end && *q != '\r' && *q != '\n')
		q++;
	smtp_server_data_put(m, p, (size_t)(q - p));
	if (q == end)
		return (size_t)(q - p);
	if (*q == '\r') {
		m->ds = SMTP_DS_CR;
	} else {
		/* A bare LF ends no line: CRLF.CRLF alone ends the data. */
		m->bare = true;
		smtp_server_data_put(m, "\n", 1);
	}
	return (size_t)(q + 1 - p);
}

/*
 * One step of the decoder at p (p < end). Returns octets used (0 when
 * only the state changed); *done when the final CRLF.CRLF was completed.
 */
static size_t
smtp_server_data_step(
    struct smtp_server *m, const char *p, const char *end, bool *done)
{
	switch (m->ds) {
	case SMTP_DS_MID:
		return smtp_server_data_mid(m, p, end);
	case SMTP_DS_BOL:
		m->ds = *p == '.' ? SMTP_DS_DOT : SMTP_DS_MID;
		return *p == '.' ? 1 : 0;
	case SMTP_DS_CR:
		if (*p == '\n') {
			smtp_server_data_put(m, "\r\n", 2);
			m->ds = SMTP_DS_BOL;
			return 1;
		}
		m->bare = true;
		smtp_server_data_put(m, "\r", 1);
		m->ds = SMTP_DS_MID;
		return 0;
	case SMTP_DS_DOT:
		/* A leading dot is dropped: it was stuffed (or it ends). */
		m->ds = *p == '\r' ? SMTP_DS_DOT_CR : SMTP_DS_MID;
		return *p == '\r' ? 1 : 0;
	case SMTP_DS_DOT_CR:
		if (*p == '\n') {
			*done = true;
			return 1;
		}
		m->bare = true;
		smtp_server_data_put(m, "\r", 1);
		m->ds = SMTP_DS_MID;
		return 0;
	}
	return 0;
}

/* Keep a Message-ID value when it is text a log line can carry. */
static void
smtp_server_set_message_id(struct smtp_server *m, struct buf *id)
{
	char *s = buf_steal(id), *t = str_trim(s);
	size_t i;

	for (i = 0; t[i] != '\0'; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			break;
	if (t[0] != '\0' && t[i] == '\0')
		m->message_id = xstrdup(t);
	free(s);
}

/*
 * Look through the message header (up to the first empty line) for the
 * Message-ID value, unfolded, and count the Received fields. Runs after
 * the data was checked for bare CR/LF, so every line ends with CRLF.
 */
static size_t
smtp_server_scan_header(struct smtp_server *m)
{
	const char *p = m->msg.data + m->header_len;
	const char *end = m->msg.data + m->msg.len, *eol;
	size_t hops = 1, n; /* ours counts */
	bool in_id = false, seen_id = false, cont, bad = false;
	struct buf id;

	buf_init(&id, SMTP_SRV_MSGID_MAX);
	while (p < end && (eol = memchr(p, '\n', (size_t)(end - p))) != NULL &&
	    eol - p > 1) {
		n = (size_t)(eol - p - 1);
		cont = *p == ' ' || *p == '\t';
		if (cont && in_id) {
			bad |= buf_add(&id, p, n) == -1;
		} else if (!cont) {
			in_id = !seen_id && n >= 11 &&
			    strncasecmp(p, "Message-ID:", 11) == 0;
			if (in_id) {
				seen_id = true;
				bad |= buf_add(&id, p + 11, n - 11) == -1;
			} else if (n >= 9 &&
			    strncasecmp(p, "Received:", 9) == 0)
				hops++;
		}
		p = eol + 1;
	}
	if (seen_id && !bad)
		smtp_server_set_message_id(m, &id);
	buf_free(&id);
	return hops;
}

/* Hand the transaction to the caller (smtp_server_txn()). */
static void
smtp_server_commit(struct smtp_server *m)
{
	struct smtp_server_txn *t = &m->txn;
	size_t i;

	m->txn_rcpts = xcalloc(m->nrcpt, sizeof(*m->txn_rcpts));
	for (i = 0; i < m->nrcpt; i++) {
		m->txn_rcpts[i].addr = m->rcpts[i].addr;
		m->txn_rcpts[i].orcpt = m->rcpts[i].orcpt;
		m->txn_rcpts[i].notify = m->rcpts[i].notify;
	}
	t->id = m->txn_id;
	t->sender = m->sender;
	t->envid = m->envid;
	t->ret = m->ret;
	t->body_8bit = m->body_8bit;
	t->smtputf8 = m->smtputf8;
	t->helo = m->helo;
	t->auth_user = m->auth_user;
	t->message_id = m->message_id;
	t->rcpts = m->txn_rcpts;
	t->nrcpt = m->nrcpt;
	t->data = (const uint8_t *)m->msg.data;
	t->len = m->msg.len;
	t->header_len = m->header_len;
	smtp_server_enter(m, SMTP_SRV_COMMIT);
}

/* The final dot: refuse what we read to the end, or commit. */
static void
smtp_server_data_end(struct smtp_server *m)
{
	if (m->oversize) {
		smtp_server_reply(m, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size");
	} else if (m->bare) {
		smtp_server_reply(m, 554, "5.6.0",
		    "Message contains bare CR or LF; lines must end with "
		    "CRLF (RFC 5321 2.3.8)");
	} else if (smtp_server_scan_header(m) > SMTP_SRV_HOPS_MAX) {
		smtp_server_reply(m, 554, "5.4.6", "Too many hops: mail loop?");
	} else {
		smtp_server_commit(m);
		return;
	}
	smtp_server_txn_reset(m);
	smtp_server_enter(m, SMTP_SRV_COMMAND);
}

/* Message data from p..end; returns octets used. */
static size_t
smtp_server_data(struct smtp_server *m, const char *p, const char *end)
{
	const char *start = p;
	bool done = false;

	while (p < end && !done)
		p += smtp_server_data_step(m, p, end, &done);
	if (done)
		smtp_server_data_end(m);
	return (size_t)(p - start);
}

/* ---- events --------------------------------------------------------- */

/*
 * All buffered input: take lines and data in order (RFC 2920 §3.2) until
 * the input runs out, the machine waits for the caller, or enough output
 * waits to be sent.
 */
static void
smtp_server_on_input(struct smtp_server *m, const struct smtp_server_event *ev,
    struct smtp_server_action *act)
{
	const char *p = ev->data, *end = ev->data + ev->len;
	size_t n;

	for (;;) {
		if (p >= end || m->out.len > SMTP_SRV_OUT_HIGH)
			break;
		if (m->phase == SMTP_SRV_COMMAND || m->phase == SMTP_SRV_SASL)
			n = smtp_server_take_line(m, p, end);
		else if (m->phase == SMTP_SRV_DATA)
			n = smtp_server_data(m, p, end);
		else
			break;
		if (n == 0)
			break;
		p += n;
	}
	act->consumed = (size_t)(p - ev->data);
}

static void
smtp_server_on_tls_done(struct smtp_server *m, const char *info)
{
	char safe[128];
	size_t i;

	if (m->phase != SMTP_SRV_TLS)
		return;
	/* RFC 3207 §4.2: forget everything the client said before TLS. */
	smtp_server_txn_reset(m);
	free(m->helo);
	m->helo = NULL;
	m->esmtp = false;
	m->tls = true;
	free(m->tls_info);
	m->tls_info = NULL;
	if (info != NULL) {
		/* It goes into a header comment: no parentheses or escapes. */
		smtp_reply_sanitize(safe, sizeof(safe), info, strlen(info));
		for (i = 0; safe[i] != '\0'; i++)
			if (strchr("()\\", safe[i]) != NULL)
				safe[i] = '?';
		m->tls_info = xstrdup(safe);
	}
	smtp_server_enter(m, SMTP_SRV_COMMAND);
}

static void
smtp_server_on_auth_result(struct smtp_server *m, bool ok, bool temp)
{
	if (m->phase != SMTP_SRV_AUTH_CHECK)
		return;
	if (!ok) {
		smtp_server_auth_failed(m, temp);
		return;
	}
	m->auth_user = xstrdup(m->user);
	smtp_server_wipe(m);
	smtp_server_reply(m, 235, "2.7.0", "Authentication successful");
	smtp_server_enter(m, SMTP_SRV_COMMAND);
}

/* Only now may the client hear 250: the message is stored. */
static void
smtp_server_on_committed(struct smtp_server *m, bool ok, const char *id)
{
	char safe[64];

	if (m->phase != SMTP_SRV_COMMIT)
		return;
	if (ok) {
		smtp_reply_sanitize(safe, sizeof(safe), id != NULL ? id : "?",
		    id != NULL ? strlen(id) : 1);
		smtp_server_replyf(m, "250 2.0.0 Ok: queued as %s", safe);
	} else
		smtp_server_reply(
		    m, 451, "4.3.0", "Message not stored, try again later");
	smtp_server_txn_reset(m);
	smtp_server_enter(m, SMTP_SRV_COMMAND);
}

static void
smtp_server_on_timeout(struct smtp_server *m)
{
	/* Mid-handshake nothing can be said in clear text. */
	if (m->phase == SMTP_SRV_TLS) {
		smtp_server_enter(m, SMTP_SRV_DONE);
		return;
	}
	smtp_server_close(m, "4.4.2", "Timeout exceeded");
}

/*
 * Waiting sessions end now; one that is reading or storing a message
 * finishes it first (smtp_server_enter() ends it on the way back).
 */
static void
smtp_server_on_shutdown(struct smtp_server *m)
{
	m->shutdown = true;
	if (m->phase == SMTP_SRV_COMMAND || m->phase == SMTP_SRV_SASL)
		smtp_server_enter(m, SMTP_SRV_COMMAND);
	else if (m->phase == SMTP_SRV_CONNECT)
		smtp_server_enter(m, SMTP_SRV_DONE);
}

/* What the caller should do, given where the step left us. */
static void
smtp_server_action(struct smtp_server *m, struct smtp_server_action *act)
{
	switch (m->phase) {
	case SMTP_SRV_COMMAND:
	case SMTP_SRV_SASL:
		act->type = SMTP_SRV_ACT_READ;
		act->timer = SMTP_SRV_TIMER_COMMAND;
		break;
	case SMTP_SRV_DATA:
		act->type = SMTP_SRV_ACT_READ;
		act->timer = SMTP_SRV_TIMER_DATA;
		break;
	case SMTP_SRV_TLS:
		if (m->entered) {
			act->type = SMTP_SRV_ACT_START_TLS;
			act->timer = SMTP_SRV_TIMER_COMMAND;
		}
		break;
	case SMTP_SRV_AUTH_CHECK:
		if (m->entered) {
			act->type = SMTP_SRV_ACT_AUTH;
			act->user = m->user;
			act->password = m->pass;
		}
		break;
	case SMTP_SRV_COMMIT:
		if (m->entered)
			act->type = SMTP_SRV_ACT_COMMIT;
		break;
	case SMTP_SRV_DONE:
		if (m->entered)
			act->type = SMTP_SRV_ACT_CLOSE;
		break;
	case SMTP_SRV_CONNECT:
		break;
	}
}

void
smtp_server_step(struct smtp_server *m, const struct smtp_server_event *ev,
    struct smtp_server_action *act)
{
	memset(act, 0, sizeof(*act));
	act->type = SMTP_SRV_ACT_NONE;
	if (m->phase == SMTP_SRV_DONE)
		return;
	m->entered = false;
	m->now = ev->now;
	switch (ev->type) {
	case SMTP_SRV_EV_CONNECTED:
		smtp_server_on_connected(m);
		break;
	case SMTP_SRV_EV_INPUT:
		smtp_server_on_input(m, ev, act);
		break;
	case SMTP_SRV_EV_TLS_DONE:
		smtp_server_on_tls_done(m, ev->text);
		break;
	case SMTP_SRV_EV_AUTH_RESULT:
		smtp_server_on_auth_result(m, ev->ok, false);
		break;
	case SMTP_SRV_EV_AUTH_TEMPFAIL:
		smtp_server_on_auth_result(m, false, true);
		break;
	case SMTP_SRV_EV_COMMITTED:
		smtp_server_on_committed(m, ev->ok, ev->text);
		break;
	case SMTP_SRV_EV_TIMEOUT:
		smtp_server_on_timeout(m);
		break;
	case SMTP_SRV_EV_SHUTDOWN:
		smtp_server_on_shutdown(m);
		break;
	case SMTP_SRV_EV_CLOSED:
		smtp_server_enter(m, SMTP_SRV_DONE);
		break;
	}
	smtp_server_action(m, act);
}
