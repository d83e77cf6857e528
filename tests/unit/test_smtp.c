/*
 * test_smtp: the SMTP client layer.
 *
 * Four parts: the reply parser (tables of good, bad, endless, overlong and
 * mismatched replies), the EHLO capability parser, the state machine
 * replayed with scripted server lines (no sockets), and whole sessions
 * against scripted peers listening on 127.0.0.1 in the same event loop,
 * including STARTTLS with a certificate made here.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/log.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_ehlo.h"
#include "smtp/smtp_reply.h"
#include "smtp/smtp_session.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- reply parser ---------------------------------------------------- */

struct reply_case {
	const char *name;
	const char *lines[6];
	enum smtp_reply_state want;
	int code;
	size_t count;
	const char *esc; /* expected enhanced code, NULL for none */
	const char *err; /* substring of errstr */
};

static const struct reply_case reply_cases[] = {
	{ "single", { "250 ok" }, SMTP_REPLY_DONE, 250, 1, NULL, NULL },
	{ "bare code", { "250" }, SMTP_REPLY_DONE, 250, 1, NULL, NULL },
	{ "trailing space", { "250 " }, SMTP_REPLY_DONE, 250, 1, NULL, NULL },
	{ "multi", { "250-mx", "250-PIPELINING", "250 SIZE 10" },
	    SMTP_REPLY_DONE, 250, 3, NULL, NULL },
	{ "empty continuation", { "220-", "220 hi" }, SMTP_REPLY_DONE, 220, 2,
	    NULL, NULL },
	{ "unfinished", { "250-mx", "250-x" }, SMTP_REPLY_MORE, 250, 2, NULL,
	    NULL },
	{ "esc", { "550 5.7.1 denied" }, SMTP_REPLY_DONE, 550, 1, "5.7.1",
	    NULL },
	{ "esc only", { "250 2.0.0" }, SMTP_REPLY_DONE, 250, 1, "2.0.0", NULL },
	{ "esc 3 digits", { "451 4.123.999 later" }, SMTP_REPLY_DONE, 451, 1,
	    "4.123.999", NULL },
	{ "esc multi", { "550-5.1.1 no such", "550 5.1.1 user" },
	    SMTP_REPLY_DONE, 550, 2, "5.1.1", NULL },
	{ "esc class mismatch", { "550 4.7.1 x" }, SMTP_REPLY_DONE, 550, 1,
	    NULL, NULL },
	{ "esc junk after", { "250 2.0.0x" }, SMTP_REPLY_DONE, 250, 1, NULL,
	    NULL },
	{ "esc too long", { "250 2.1234.0 x" }, SMTP_REPLY_DONE, 250, 1, NULL,
	    NULL },
	{ "esc class 3", { "354 3.0.0 go" }, SMTP_REPLY_DONE, 354, 1, NULL,
	    NULL },
	{ "esc missing detail", { "250 2.0. x" }, SMTP_REPLY_DONE, 250, 1, NULL,
	    NULL },
	{ "empty", { "" }, SMTP_REPLY_ERROR, 0, 0, NULL, "three-digit" },
	{ "short", { "25" }, SMTP_REPLY_ERROR, 0, 0, NULL, "three-digit" },
	{ "letters", { "abc hi" }, SMTP_REPLY_ERROR, 0, 0, NULL,
	    "three-digit" },
	{ "code 1xx", { "150 x" }, SMTP_REPLY_ERROR, 0, 0, NULL, "range" },
	{ "code 6xx", { "650 x" }, SMTP_REPLY_ERROR, 0, 0, NULL, "range" },
	{ "separator", { "250_ok" }, SMTP_REPLY_ERROR, 0, 0, NULL,
	    "space or hyphen" },
	{ "four digits", { "2500 ok" }, SMTP_REPLY_ERROR, 0, 0, NULL,
	    "space or hyphen" },
	{ "code changes", { "250-a", "251 b" }, SMTP_REPLY_ERROR, 250, 1, NULL,
	    "changes" },
	{ "bad continuation", { "250-a", "hello" }, SMTP_REPLY_ERROR, 250, 1,
	    NULL, "three-digit" },
};

static enum smtp_reply_state
feed_lines(struct smtp_reply *r, const char *const *lines, size_t n,
    const char **errstr)
{
	enum smtp_reply_state st = SMTP_REPLY_MORE;
	size_t i;

	for (i = 0; i < n && lines[i] != NULL; i++) {
		st = smtp_reply_feed(r, lines[i], strlen(lines[i]), errstr);
		if (st != SMTP_REPLY_MORE)
			break;
	}
	return st;
}

static void
test_reply_table(void)
{
	size_t i;

	for (i = 0; i < NELEM(reply_cases); i++) {
		const struct reply_case *c = &reply_cases[i];
		struct smtp_reply *r = smtp_reply_new();
		const char *errstr = NULL, *esc;
		enum smtp_reply_state st;

		st = feed_lines(r, c->lines, NELEM(c->lines), &errstr);
		esc = smtp_reply_esc(r);
		if (st != c->want || smtp_reply_code(r) != c->code ||
		    smtp_reply_count(r) != c->count ||
		    (c->esc == NULL) != (esc == NULL) ||
		    (c->esc != NULL && strcmp(c->esc, esc) != 0) ||
		    (c->err != NULL &&
		        (errstr == NULL || strstr(errstr, c->err) == NULL))) {
			printf("  case \"%s\": state %d code %d count %zu "
			       "esc %s err %s\n",
			    c->name, (int)st, smtp_reply_code(r),
			    smtp_reply_count(r), esc ? esc : "-",
			    errstr ? errstr : "-");
			T_CHECK(0);
		}
		smtp_reply_free(r);
	}
}

static void
test_reply_text(void)
{
	struct smtp_reply *r = smtp_reply_new();
	const char *errstr;
	char out[64];

	T_CHECK(smtp_reply_feed(r, "250-mx.example Hi", 17, &errstr) ==
	    SMTP_REPLY_MORE);
	T_CHECK(
	    smtp_reply_feed(r, "250 STARTTLS", 12, &errstr) == SMTP_REPLY_DONE);
	T_STREQ(smtp_reply_text(r, 0), "mx.example Hi");
	T_STREQ(smtp_reply_text(r, 1), "STARTTLS");
	smtp_reply_join(r, out, sizeof(out));
	T_STREQ(out, "250-mx.example Hi / 250 STARTTLS");
	smtp_reply_join(r, out, 10);
	T_STREQ(out, "250-mx.ex");

	/* A new reply starts after DONE. */
	T_CHECK(smtp_reply_feed(r, "221 bye\tnow\x1b[2J\xc3\xa9", 17,
	            &errstr) == SMTP_REPLY_DONE);
	T_CHECK(smtp_reply_count(r) == 1 && smtp_reply_code(r) == 221);
	smtp_reply_join(r, out, sizeof(out));
	T_STREQ(out, "221 bye?now?[2J??");
	smtp_reply_free(r);
	smtp_reply_free(NULL);
}

static void
test_reply_nul(void)
{
	struct smtp_reply *r = smtp_reply_new();
	const char *errstr = NULL;

	T_CHECK(smtp_reply_feed(r, "250 a\0b", 7, &errstr) == SMTP_REPLY_ERROR);
	T_CHECK(errstr != NULL && strstr(errstr, "NUL") != NULL);
	/* Sticky until reset: the stream is out of step. */
	errstr = NULL;
	T_CHECK(smtp_reply_feed(r, "250 ok", 6, &errstr) == SMTP_REPLY_ERROR);
	T_CHECK(errstr != NULL);
	smtp_reply_reset(r);
	T_CHECK(smtp_reply_feed(r, "250 ok", 6, &errstr) == SMTP_REPLY_DONE);
	smtp_reply_free(r);
}

static void
test_reply_line_cap(void)
{
	struct smtp_reply *r = smtp_reply_new();
	char *line = malloc(SMTP_REPLY_LINE_MAX + 2);
	const char *errstr = NULL;

	memset(line, 'x', SMTP_REPLY_LINE_MAX + 1);
	memcpy(line, "250 ", 4);
	T_CHECK(smtp_reply_feed(r, line, SMTP_REPLY_LINE_MAX, &errstr) ==
	    SMTP_REPLY_DONE);
	T_CHECK(strlen(smtp_reply_text(r, 0)) == SMTP_REPLY_LINE_MAX - 4);
	T_CHECK(smtp_reply_feed(r, line, SMTP_REPLY_LINE_MAX + 1, &errstr) ==
	    SMTP_REPLY_ERROR);
	T_CHECK(errstr != NULL && strstr(errstr, "too long") != NULL);
	free(line);
	smtp_reply_free(r);
}

static void
test_reply_endless(void)
{
	struct smtp_reply *r = smtp_reply_new();
	const char *errstr = NULL;
	enum smtp_reply_state st = SMTP_REPLY_MORE;
	size_t i;

	/* Exactly the cap is fine... */
	for (i = 0; i + 1 < SMTP_REPLY_LINES_MAX; i++)
		T_CHECK(smtp_reply_feed(r, "220-spam", 8, &errstr) ==
		    SMTP_REPLY_MORE);
	T_CHECK(smtp_reply_feed(r, "220 end", 7, &errstr) == SMTP_REPLY_DONE);
	T_CHECK(smtp_reply_count(r) == SMTP_REPLY_LINES_MAX);

	/* ...one more line is a protocol error, not more memory. */
	smtp_reply_reset(r);
	for (i = 0; i < 100000 && st == SMTP_REPLY_MORE; i++)
		st = smtp_reply_feed(r, "220-spam", 8, &errstr);
	T_CHECK(st == SMTP_REPLY_ERROR && i == SMTP_REPLY_LINES_MAX + 1);
	T_CHECK(errstr != NULL && strstr(errstr, "too many") != NULL);
	smtp_reply_free(r);
}

static void
test_reply_size_cap(void)
{
	struct smtp_reply *r = smtp_reply_new();
	char line[2000];
	const char *errstr = NULL;
	enum smtp_reply_state st = SMTP_REPLY_MORE;
	size_t i;

	memset(line, 'y', sizeof(line));
	memcpy(line, "220-", 4);
	for (i = 0; i < 100 && st == SMTP_REPLY_MORE; i++)
		st = smtp_reply_feed(r, line, sizeof(line), &errstr);
	T_CHECK(st == SMTP_REPLY_ERROR);
	T_CHECK(i * sizeof(line) > SMTP_REPLY_SIZE_MAX &&
	    i * sizeof(line) < SMTP_REPLY_SIZE_MAX + 2 * sizeof(line));
	T_CHECK(errstr != NULL && strstr(errstr, "too long") != NULL);
	smtp_reply_free(r);
}

/* ---- EHLO ------------------------------------------------------------ */

static struct smtp_ehlo *
ehlo_from(const char *const *lines)
{
	struct smtp_reply *r = smtp_reply_new();
	struct smtp_ehlo *e = smtp_ehlo_new();
	const char *errstr;
	size_t i;

	for (i = 0; lines[i] != NULL; i++)
		(void)smtp_reply_feed(r, lines[i], strlen(lines[i]), &errstr);
	smtp_ehlo_parse(e, r);
	smtp_reply_free(r);
	return e;
}

static void
test_ehlo_parse(void)
{
	static const char *const lines[] = {
		"250-mx.example.com Hello client [192.0.2.1]",
		"250-pipelining",
		"250-SIZE 52428800",
		"250-8BITMIME",
		"250-StartTLS",
		"250-ENHANCEDSTATUSCODES",
		"250-AUTH PLAIN LOGIN",
		"250-AUTH=CRAM-MD5",
		"250-DSN",
		"250-SMTPUTF8",
		"250-X-EXPERIMENTAL foo bar",
		"250-=bogus",
		"250-BAD!KEYWORD",
		"250 CHUNKING",
		NULL,
	};
	struct smtp_ehlo *e = ehlo_from(lines);

	T_STREQ(smtp_ehlo_domain(e), "mx.example.com");
	T_CHECK(smtp_ehlo_has(e,
	    SMTP_EXT_STARTTLS | SMTP_EXT_PIPELINING | SMTP_EXT_SIZE |
	        SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
	        SMTP_EXT_ENHANCEDSTATUSCODES | SMTP_EXT_DSN | SMTP_EXT_AUTH |
	        SMTP_EXT_CHUNKING));
	T_CHECK(smtp_ehlo_size(e) == 52428800);
	T_CHECK(smtp_ehlo_auth(e, "plain"));
	T_CHECK(smtp_ehlo_auth(e, "LOGIN"));
	T_CHECK(smtp_ehlo_auth(e, "CRAM-MD5"));
	T_CHECK(!smtp_ehlo_auth(e, "XOAUTH2"));
	T_CHECK(!smtp_ehlo_auth(e, "PLAI"));
	/* Two bad lines skipped, unknown keyword kept. */
	T_CHECK(smtp_ehlo_count(e) == 11);
	T_STREQ(smtp_ehlo_find(e, "x-experimental"), "foo bar");
	T_STREQ(smtp_ehlo_find(e, "8bitmime"), "");
	T_CHECK(smtp_ehlo_find(e, "XCLIENT") == NULL);
	T_STREQ(smtp_ehlo_keyword(e, 0), "PIPELINING");
	T_STREQ(smtp_ehlo_line(e, 3), "StartTLS");
	T_STREQ(smtp_ehlo_keyword(e, 6), "AUTH");
	T_STREQ(smtp_ehlo_params(e, 6), "CRAM-MD5");
	T_STREQ(smtp_ehlo_ext_str(SMTP_EXT_ENHANCEDSTATUSCODES),
	    "ENHANCEDSTATUSCODES");
	T_CHECK(smtp_ehlo_ext_str(SMTP_EXT_DSN | SMTP_EXT_AUTH) == NULL);

	/* RFC 3207 §4.2: forget everything. */
	smtp_ehlo_reset(e);
	T_CHECK(smtp_ehlo_exts(e) == 0 && smtp_ehlo_count(e) == 0);
	T_STREQ(smtp_ehlo_domain(e), "");
	smtp_ehlo_free(e);
	smtp_ehlo_free(NULL);
}

struct ehlo_line_case {
	const char *line;
	int rc;
	unsigned exts;
	uint64_t size;
};

static const struct ehlo_line_case ehlo_line_cases[] = {
	{ "SIZE", 0, SMTP_EXT_SIZE, 0 },
	{ "SIZE 0", 0, SMTP_EXT_SIZE, 0 },
	{ "size 1000", 0, SMTP_EXT_SIZE, 1000 },
	{ "SIZE 99999999999999999999999", 0, SMTP_EXT_SIZE, 0 },
	{ "SIZE 12x", 0, SMTP_EXT_SIZE, 0 },
	{ "SIZEX 1", 0, 0, 0 },
	{ "STARTTLSX", 0, 0, 0 },
	{ "STARTTLS", 0, SMTP_EXT_STARTTLS, 0 },
	{ "", -1, 0, 0 },
	{ " STARTTLS", -1, 0, 0 },
	{ "-X", -1, 0, 0 },
	{ "STARTTLS\tx", -1, 0, 0 },
	{ "FOO=bar", -1, 0, 0 },
	{ "AUTH=PLAIN", 0, SMTP_EXT_AUTH, 0 },
};

static void
test_ehlo_lines(void)
{
	size_t i;

	for (i = 0; i < NELEM(ehlo_line_cases); i++) {
		const struct ehlo_line_case *c = &ehlo_line_cases[i];
		struct smtp_ehlo *e = smtp_ehlo_new();
		const char *errstr = NULL;
		int rc = smtp_ehlo_add(e, c->line, &errstr);

		if (rc != c->rc || smtp_ehlo_exts(e) != c->exts ||
		    smtp_ehlo_size(e) != c->size ||
		    (rc == -1) != (errstr != NULL)) {
			printf("  line \"%s\": rc %d exts %#x\n", c->line, rc,
			    smtp_ehlo_exts(e));
			T_CHECK(0);
		}
		smtp_ehlo_free(e);
	}
}

/* ---- state machine replays ------------------------------------------- */

/*
 * A script is server lines plus "!" events: !connect, !tls (handshake done,
 * accepted), !reject (handshake done, refused by the caller), !tlsfail,
 * !timeout, !closed, !quit. The harness answers READY with QUIT unless
 * the case says hold.
 */
struct fsm_case {
	const char *name;
	enum smtp_tls_mode mode;
	bool hold; /* do not QUIT on READY */
	const char *script[16];
	const char *actions; /* what the machine did, '|'-joined */
	enum smtp_error error;
	enum smtp_phase phase;
	int reply_code;
	bool esmtp, starttls, tls;
};

#define GREET      "!connect", "220 mx.test ESMTP"
#define EHLO_TLS   "250-mx.test", "250-PIPELINING", "250 STARTTLS"
#define EHLO_PLAIN "250-mx.test", "250 PIPELINING"
#define C_EHLO     "EHLO client.test"

static const struct fsm_case fsm_cases[] = {
	{ "starttls", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, EHLO_TLS, "220 go", "!tls", EHLO_PLAIN, "221 bye" },
	    C_EHLO "|STARTTLS|<tls>|" C_EHLO "|<ready>|QUIT|<close>",
	    SMTP_ERR_NONE, SMTP_PHASE_DONE, 250, true, true, true },
	{ "required starttls", SMTP_TLS_REQUIRED, false,
	    { GREET, EHLO_TLS, "220 go", "!tls", EHLO_PLAIN, "221 bye" },
	    C_EHLO "|STARTTLS|<tls>|" C_EHLO "|<ready>|QUIT|<close>",
	    SMTP_ERR_NONE, SMTP_PHASE_DONE, 250, true, true, true },
	{ "tls none", SMTP_TLS_NONE, false, { GREET, EHLO_TLS, "221 bye" },
	    C_EHLO "|<ready>|QUIT|<close>", SMTP_ERR_NONE, SMTP_PHASE_DONE, 250,
	    true, true, false },
	{ "opportunistic not offered", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, EHLO_PLAIN, "!closed" }, C_EHLO "|<ready>|QUIT|<close>",
	    SMTP_ERR_NONE, SMTP_PHASE_DONE, 250, true, false, false },
	{ "required not offered", SMTP_TLS_REQUIRED, false,
	    { GREET, EHLO_PLAIN, "221 bye" }, C_EHLO "|QUIT|<close>",
	    SMTP_ERR_STARTTLS_NOT_OFFERED, SMTP_PHASE_EHLO, 250, true, false,
	    false },
	{ "required 454", SMTP_TLS_REQUIRED, false,
	    { GREET, EHLO_TLS, "454 4.7.0 TLS not available", "221 bye" },
	    C_EHLO "|STARTTLS|QUIT|<close>", SMTP_ERR_STARTTLS_REFUSED,
	    SMTP_PHASE_STARTTLS, 454, true, true, false },
	{ "opportunistic 454", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, EHLO_TLS, "454 4.7.0 TLS not available", "221 bye" },
	    C_EHLO "|STARTTLS|<ready>|QUIT|<close>", SMTP_ERR_NONE,
	    SMTP_PHASE_DONE, 454, true, true, false },
	{ "starttls 421", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, EHLO_TLS, "421 going down" }, C_EHLO "|STARTTLS|<close>",
	    SMTP_ERR_STARTTLS_REFUSED, SMTP_PHASE_STARTTLS, 421, true, true,
	    false },
	{ "helo fallback", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, "502 5.5.1 what?", "250 mx.test", "221 bye" },
	    C_EHLO "|HELO client.test|<ready>|QUIT|<close>", SMTP_ERR_NONE,
	    SMTP_PHASE_DONE, 250, false, false, false },
	{ "helo rejected", SMTP_TLS_NONE, false,
	    { GREET, "500 no", "550 no either", "221 bye" },
	    C_EHLO "|HELO client.test|QUIT|<close>", SMTP_ERR_REPLY,
	    SMTP_PHASE_HELO, 550, false, false, false },
	{ "no helo when tls required", SMTP_TLS_REQUIRED, false,
	    { GREET, "502 5.5.1 what?", "221 bye" }, C_EHLO "|QUIT|<close>",
	    SMTP_ERR_REPLY, SMTP_PHASE_EHLO, 502, false, false, false },
	{ "ehlo 4xx", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, "450 busy", "221 bye" }, C_EHLO "|QUIT|<close>",
	    SMTP_ERR_REPLY, SMTP_PHASE_EHLO, 450, false, false, false },
	{ "ehlo 421", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, "421 4.3.2 shutting down" }, C_EHLO "|<close>",
	    SMTP_ERR_REPLY, SMTP_PHASE_EHLO, 421, false, false, false },
	{ "greeting 554", SMTP_TLS_OPPORTUNISTIC, false,
	    { "!connect", "554 5.7.1 go away", "221 bye" }, "QUIT|<close>",
	    SMTP_ERR_REPLY, SMTP_PHASE_GREETING, 554, false, false, false },
	{ "greeting 421", SMTP_TLS_OPPORTUNISTIC, false,
	    { "!connect", "421 too busy" }, "<close>", SMTP_ERR_REPLY,
	    SMTP_PHASE_GREETING, 421, false, false, false },
	{ "multi-line greeting", SMTP_TLS_NONE, false,
	    { "!connect", "220-mx.test", "220-more", "220 end", EHLO_PLAIN,
	        "221 bye" },
	    C_EHLO "|<ready>|QUIT|<close>", SMTP_ERR_NONE, SMTP_PHASE_DONE, 250,
	    true, false, false },
	{ "connect timeout", SMTP_TLS_OPPORTUNISTIC, false, { "!timeout" },
	    "<close>", SMTP_ERR_CONNECT_TIMEOUT, SMTP_PHASE_CONNECT, 0, false,
	    false, false },
	{ "greeting timeout", SMTP_TLS_OPPORTUNISTIC, false,
	    { "!connect", "220-slow", "!timeout" }, "<close>", SMTP_ERR_TIMEOUT,
	    SMTP_PHASE_GREETING, 0, false, false, false },
	{ "closed in ehlo", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, "250-mx.test", "!closed" }, C_EHLO "|<close>",
	    SMTP_ERR_CLOSED, SMTP_PHASE_EHLO, 220, false, false, false },
	{ "garbage", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, "HTTP/1.1 400 Bad Request" }, C_EHLO "|<close>",
	    SMTP_ERR_PROTOCOL, SMTP_PHASE_EHLO, 220, false, false, false },
	{ "tls rejected by caller", SMTP_TLS_REQUIRED, false,
	    { GREET, EHLO_TLS, "220 go", "!reject", "221 bye" },
	    C_EHLO "|STARTTLS|<tls>|QUIT|<close>", SMTP_ERR_ABORTED,
	    SMTP_PHASE_TLS_HANDSHAKE, 220, true, true, true },
	{ "tls handshake fails", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, EHLO_TLS, "220 go", "!tlsfail" },
	    C_EHLO "|STARTTLS|<tls>|<close>", SMTP_ERR_TLS_HANDSHAKE,
	    SMTP_PHASE_TLS_HANDSHAKE, 220, true, true, false },
	{ "ehlo over tls rejected", SMTP_TLS_OPPORTUNISTIC, false,
	    { GREET, EHLO_TLS, "220 go", "!tls", "554 no", "221 bye" },
	    C_EHLO "|STARTTLS|<tls>|" C_EHLO "|QUIT|<close>", SMTP_ERR_REPLY,
	    SMTP_PHASE_EHLO_TLS, 554, true, true, true },
	{ "quit timeout is fine", SMTP_TLS_NONE, false,
	    { GREET, EHLO_PLAIN, "!timeout", "221 late" },
	    C_EHLO "|<ready>|QUIT|<close>", SMTP_ERR_NONE, SMTP_PHASE_DONE, 250,
	    true, false, false },
	{ "caller quits mid-command", SMTP_TLS_NONE, false,
	    { GREET, "!quit", "250 late" }, C_EHLO "|<close>", SMTP_ERR_ABORTED,
	    SMTP_PHASE_EHLO, 220, false, false, false },
	{ "421 while ready", SMTP_TLS_NONE, true,
	    { GREET, EHLO_PLAIN, "421 idle too long" },
	    C_EHLO "|<ready>|<close>", SMTP_ERR_REPLY, SMTP_PHASE_READY, 421,
	    true, false, false },
	{ "unsolicited reply", SMTP_TLS_NONE, true,
	    { GREET, EHLO_PLAIN, "250 surprise" }, C_EHLO "|<ready>|<close>",
	    SMTP_ERR_PROTOCOL, SMTP_PHASE_READY, 250, true, false, false },
};

static void
fsm_log_action(struct buf *log, const struct smtp_action *a)
{
	if (a->type == SMTP_ACT_NONE || a->type == SMTP_ACT_WAIT)
		return;
	if (log->len > 0)
		buf_addc(log, '|');
	switch (a->type) {
	case SMTP_ACT_SEND:
		T_CHECK(a->len >= 2 && a->data[a->len - 2] == '\r' &&
		    a->data[a->len - 1] == '\n');
		buf_add(log, a->data, a->len - 2);
		break;
	case SMTP_ACT_START_TLS:
		buf_adds(log, "<tls>");
		break;
	case SMTP_ACT_READY:
		buf_adds(log, "<ready>");
		break;
	case SMTP_ACT_CLOSE:
		buf_adds(log, "<close>");
		break;
	default:
		break;
	}
}

static void
fsm_event(const char *s, struct smtp_event *ev)
{
	static const struct {
		const char *name;
		enum smtp_event_type type;
		enum smtp_error error;
	} evs[] = {
		{ "!connect", SMTP_EV_CONNECTED, SMTP_ERR_NONE },
		{ "!tls", SMTP_EV_TLS_DONE, SMTP_ERR_NONE },
		{ "!reject", SMTP_EV_TLS_REJECTED, SMTP_ERR_NONE },
		{ "!tlsfail", SMTP_EV_ERROR, SMTP_ERR_TLS_HANDSHAKE },
		{ "!timeout", SMTP_EV_TIMEOUT, SMTP_ERR_NONE },
		{ "!closed", SMTP_EV_CLOSED, SMTP_ERR_NONE },
		{ "!quit", SMTP_EV_QUIT, SMTP_ERR_NONE },
	};
	size_t i;

	memset(ev, 0, sizeof(*ev));
	ev->type = SMTP_EV_LINE;
	ev->line = s;
	ev->len = strlen(s);
	for (i = 0; i < NELEM(evs); i++) {
		if (strcmp(s, evs[i].name) == 0) {
			ev->type = evs[i].type;
			ev->error = evs[i].error;
		}
	}
}

static void
fsm_replay(const struct fsm_case *c)
{
	struct smtp_client *fsm =
	    smtp_client_new("test", "client.test", c->mode);
	const struct smtp_result *res = smtp_client_result(fsm);
	struct smtp_event ev, quit = { .type = SMTP_EV_QUIT };
	struct smtp_action act;
	struct buf log;
	size_t i;

	buf_init(&log, 4096);
	for (i = 0; i < NELEM(c->script) && c->script[i] != NULL; i++) {
		fsm_event(c->script[i], &ev);
		smtp_client_step(fsm, &ev, &act);
		fsm_log_action(&log, &act);
		if (act.type == SMTP_ACT_READY && !c->hold) {
			smtp_client_step(fsm, &quit, &act);
			fsm_log_action(&log, &act);
		}
	}
	if (strcmp(buf_cstr(&log), c->actions) != 0 || res->error != c->error ||
	    res->phase != c->phase || res->reply_code != c->reply_code ||
	    res->esmtp != c->esmtp || res->starttls_offered != c->starttls ||
	    res->tls != c->tls || smtp_client_phase(fsm) != SMTP_PHASE_DONE) {
		printf("  case \"%s\": %s; error %s phase %s code %d esmtp %d "
		       "starttls %d tls %d\n",
		    c->name, buf_cstr(&log), smtp_error_str(res->error),
		    smtp_phase_str(res->phase), res->reply_code, res->esmtp,
		    res->starttls_offered, res->tls);
		T_CHECK(0);
	}
	buf_free(&log);
	smtp_client_free(fsm);
}

static void
test_fsm_table(void)
{
	size_t i;

	for (i = 0; i < NELEM(fsm_cases); i++)
		fsm_replay(&fsm_cases[i]);
}

static void
fsm_feed(struct smtp_client *fsm, const char *s, struct smtp_action *act)
{
	struct smtp_event ev;

	fsm_event(s, &ev);
	smtp_client_step(fsm, &ev, act);
}

/* Details the table does not show: timers, banner, texts, EHLO reset. */
static void
test_fsm_details(void)
{
	struct smtp_client *fsm =
	    smtp_client_new(NULL, "client.test", SMTP_TLS_OPPORTUNISTIC);
	const struct smtp_result *res = smtp_client_result(fsm);
	struct smtp_action act;

	fsm_feed(fsm, "!connect", &act);
	T_CHECK(act.type == SMTP_ACT_WAIT && act.timer == SMTP_TIMER_GREETING);
	T_CHECK(res->connected);
	fsm_feed(fsm, "220-mx.test ESMTP \x01 ready", &act);
	T_CHECK(act.type == SMTP_ACT_NONE);
	fsm_feed(fsm, "220 second line", &act);
	T_CHECK(act.type == SMTP_ACT_SEND && act.timer == SMTP_TIMER_COMMAND);
	T_STREQ(res->banner, "mx.test ESMTP ? ready");
	T_STREQ(res->reply_text, "220-mx.test ESMTP ? ready / 220 second line");
	fsm_feed(fsm, "250-mx.test", &act);
	fsm_feed(fsm, "250-SIZE 1000", &act);
	fsm_feed(fsm, "250 STARTTLS", &act);
	T_CHECK(smtp_ehlo_count(smtp_client_ehlo(fsm)) == 2);
	fsm_feed(fsm, "220 2.0.0 go", &act);
	T_CHECK(
	    act.type == SMTP_ACT_START_TLS && act.timer == SMTP_TIMER_COMMAND);
	/* RFC 3207 §4.2: nothing from before TLS survives. */
	T_CHECK(smtp_ehlo_count(smtp_client_ehlo(fsm)) == 0);
	T_CHECK(smtp_ehlo_exts(smtp_client_ehlo(fsm)) == 0);
	fsm_feed(fsm, "!tls", &act);
	fsm_feed(fsm, "250-mx.test", &act);
	fsm_feed(fsm, "250 SIZE 2000", &act);
	T_CHECK(act.type == SMTP_ACT_READY && act.timer == SMTP_TIMER_NONE);
	T_CHECK(smtp_ehlo_size(smtp_client_ehlo(fsm)) == 2000);
	T_CHECK(!smtp_ehlo_has(smtp_client_ehlo(fsm), SMTP_EXT_STARTTLS));
	T_CHECK(res->starttls_offered && res->tls);
	fsm_feed(fsm, "!timeout", &act);
	T_CHECK(act.type == SMTP_ACT_CLOSE);
	T_CHECK(res->error == SMTP_ERR_TIMEOUT);
	/* Done means done. */
	fsm_feed(fsm, "250 more", &act);
	T_CHECK(act.type == SMTP_ACT_NONE);
	fsm_feed(fsm, "!quit", &act);
	T_CHECK(act.type == SMTP_ACT_NONE);
	smtp_client_free(fsm);
	smtp_client_free(NULL);
}

static void
test_fsm_error_text(void)
{
	struct smtp_client *fsm =
	    smtp_client_new(NULL, "c.test", SMTP_TLS_NONE);
	struct smtp_event ev = { .type = SMTP_EV_ERROR,
		.error = SMTP_ERR_CONNECT_REFUSED,
		.text = "Connection refused" };
	struct smtp_action act;

	smtp_client_step(fsm, &ev, &act);
	T_CHECK(act.type == SMTP_ACT_CLOSE);
	T_CHECK(smtp_client_result(fsm)->error == SMTP_ERR_CONNECT_REFUSED);
	T_STREQ(smtp_client_result(fsm)->error_text, "Connection refused");
	T_CHECK(!smtp_client_result(fsm)->connected);
	smtp_client_free(fsm);

	fsm = smtp_client_new(NULL, "c.test", SMTP_TLS_NONE);
	fsm_feed(fsm, "!connect", &act);
	fsm_feed(fsm, "220 x", &act);
	fsm_feed(fsm, "25O typo", &act);
	T_CHECK(act.type == SMTP_ACT_CLOSE);
	T_CHECK(smtp_client_result(fsm)->error == SMTP_ERR_PROTOCOL);
	T_CHECK(
	    strstr(smtp_client_result(fsm)->error_text, "three-digit") != NULL);
	smtp_client_free(fsm);
}

/* ---- sessions against scripted peers --------------------------------- */

enum peer_op {
	P_SEND,  /* write arg */
	P_READ,  /* read one command line, record it */
	P_TLS,   /* become a TLS server (ACCEPTING) */
	P_CLOSE, /* close the connection */
	P_FLOOD, /* write arg again and again */
	P_STALL, /* do nothing more; keep the connection */
	P_DRAIN, /* wait for any bytes (a ClientHello), discard them */
};

struct peer_step {
	enum peer_op op;
	const char *arg;
};

struct peer {
	struct event_base *base;
	struct evconnlistener *lis;
	struct bufferevent *bev;
	const struct peer_step *steps;
	size_t i;
	SSL_CTX *ctx;
	struct buf got; /* commands received, '|'-joined */
	size_t flooded;
	unsigned short port;
};

#define PEER_FLOOD_MAX (8u << 20)

static void peer_run(struct peer *p);

static void
peer_close(struct peer *p)
{
	if (p->bev != NULL)
		bufferevent_free(p->bev);
	p->bev = NULL;
}

static void
peer_read_cb(struct bufferevent *bev, void *arg)
{
	peer_run(arg);
}

static void
peer_write_cb(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;

	if (p->steps[p->i].op == P_FLOOD)
		peer_run(p);
}

static void
peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		peer_close(arg);
}

static void
peer_setcb(struct peer *p)
{
	bufferevent_setcb(
	    p->bev, peer_read_cb, peer_write_cb, peer_event_cb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
}

static void
peer_flood(struct peer *p, const char *arg)
{
	size_t i, n = strlen(arg);

	if (p->flooded > PEER_FLOOD_MAX)
		return;
	for (i = 0; i < 256; i++)
		bufferevent_write(p->bev, arg, n);
	p->flooded += 256 * n;
}

/* Run steps until one has to wait; returns false to stop. */
static bool
peer_step(struct peer *p, const struct peer_step *st)
{
	char *line;
	size_t n;

	switch (st->op) {
	case P_SEND:
		bufferevent_write(p->bev, st->arg, strlen(st->arg));
		break;
	case P_READ:
		line = evbuffer_readln(bufferevent_get_input(p->bev), &n,
		    EVBUFFER_EOL_CRLF_STRICT);
		if (line == NULL)
			return false;
		if (p->got.len > 0)
			buf_addc(&p->got, '|');
		buf_adds(&p->got, line);
		free(line);
		break;
	case P_TLS:
		p->bev = bufferevent_openssl_filter_new(p->base, p->bev,
		    SSL_new(p->ctx), BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
		peer_setcb(p);
		break;
	case P_CLOSE:
		peer_close(p);
		return false;
	case P_FLOOD:
		peer_flood(p, st->arg);
		return false;
	case P_STALL:
		return false;
	case P_DRAIN:
		n = evbuffer_get_length(bufferevent_get_input(p->bev));
		if (n == 0)
			return false;
		evbuffer_drain(bufferevent_get_input(p->bev), n);
		break;
	}
	return true;
}

static void
peer_run(struct peer *p)
{
	while (p->bev != NULL && p->steps[p->i].op != P_STALL &&
	    peer_step(p, &p->steps[p->i]))
		p->i++;
}

static void
peer_accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct peer *p = arg;

	if (p->bev != NULL) {
		close(fd);
		return;
	}
	p->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
	peer_setcb(p);
	peer_run(p);
}

static void
peer_start(struct peer *p, struct event_base *base,
    const struct peer_step *steps, SSL_CTX *ctx)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(p, 0, sizeof(*p));
	p->base = base;
	p->steps = steps;
	p->ctx = ctx;
	buf_init(&p->got, 4096);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lis = evconnlistener_new_bind(base, peer_accept_cb, p,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sin, sizeof(sin));
	T_CHECK(p->lis != NULL);
	getsockname(
	    evconnlistener_get_fd(p->lis), (struct sockaddr *)&sin, &len);
	p->port = ntohs(sin.sin_port);
}

static void
peer_stop(struct peer *p)
{
	peer_close(p);
	if (p->lis != NULL)
		evconnlistener_free(p->lis);
	buf_free(&p->got);
}

/* A self-signed P-256 certificate for CN=localhost, made for this run. */
static SSL_CTX *
tls_server_ctx(bool with_cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key;
	X509 *x;
	X509_NAME *name;

	if (!with_cert)
		return ctx;
	key = EVP_EC_gen("P-256");
	x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, key);
	X509_sign(x, key, EVP_sha256());
	T_CHECK(SSL_CTX_use_certificate(ctx, x) == 1);
	T_CHECK(SSL_CTX_use_PrivateKey(ctx, key) == 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

struct run {
	struct event_base *base;
	struct peer peer;
	struct smtp_session *s;
	struct smtp_result res;
	char got[1024]; /* the peer's got, kept past peer_stop */
	SSL_CTX *client_ctx;
	int done_calls;
	bool in_start;
	bool free_in_done;
	bool reject_tls;
	bool free_in_ready;
	bool tls_seen;
	bool ssl_in_ready;
	size_t ehlo_count;
	char ehlo_first[64];
	struct timeval t0;
	long elapsed_ms;
};

static SSL *
run_tls_new(void *arg)
{
	struct run *r = arg;
	SSL *ssl = SSL_new(r->client_ctx);

	SSL_set_tlsext_host_name(ssl, "localhost");
	return ssl;
}

static bool
run_on_tls(struct smtp_session *s, SSL *ssl, void *arg)
{
	struct run *r = arg;

	r->tls_seen = ssl != NULL && smtp_session_ssl(s) == ssl;
	return !r->reject_tls;
}

static void
run_on_ready(struct smtp_session *s, void *arg)
{
	struct run *r = arg;
	const char *l;

	r->ehlo_count = smtp_session_ehlo_count(s);
	l = smtp_session_ehlo_line(s, 0);
	snprintf(r->ehlo_first, sizeof(r->ehlo_first), "%s", l ? l : "");
	T_CHECK(smtp_session_ehlo_line(s, r->ehlo_count) == NULL);
	r->ssl_in_ready = smtp_session_ssl(s) != NULL;
	if (r->free_in_ready) {
		smtp_session_free(s);
		r->s = NULL;
		event_base_loopexit(r->base, NULL);
		return;
	}
	smtp_session_quit(s);
}

static long
ms_since(const struct timeval *t0)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_usec - t0->tv_usec) / 1000;
}

static void
run_on_done(struct smtp_session *s, const struct smtp_result *res, void *arg)
{
	struct run *r = arg;

	T_CHECK(!r->in_start);
	T_CHECK(s == r->s);
	r->done_calls++;
	r->res = *res;
	r->elapsed_ms = ms_since(&r->t0);
	if (r->free_in_done) {
		smtp_session_free(s);
		r->s = NULL;
	}
	/* Linger a little: a second on_done would show up. */
	event_base_loopexit(r->base, &(struct timeval){ 0, 100000 });
}

struct run_opts {
	const struct sockaddr *addr; /* NULL: 127.0.0.1 and port below */
	socklen_t addrlen;
	enum smtp_tls_mode mode;
	unsigned timeout_ms;
	bool server_cert;  /* false: TLS handshake must fail */
	bool keep_in_done; /* free after the loop instead */
	bool reject_tls;
	bool free_in_ready;
	unsigned short port; /* 0: the peer's */
};

static void
run_print(const struct run *r)
{
	printf("  got \"%s\" error %s phase %s code %d text \"%s\" "
	       "detail \"%s\" %ld ms\n",
	    r->got, smtp_error_str(r->res.error), smtp_phase_str(r->res.phase),
	    r->res.reply_code, r->res.reply_text, r->res.error_text,
	    r->elapsed_ms);
}

static void
run_session(
    struct run *r, const struct peer_step *steps, const struct run_opts *o)
{
	struct smtp_session_params p;
	struct sockaddr_in sin;
	SSL_CTX *sctx = tls_server_ctx(o->server_cert);
	struct timeval watchdog = { 10, 0 };

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	r->client_ctx = SSL_CTX_new(TLS_client_method());
	r->free_in_done = !o->keep_in_done;
	r->reject_tls = o->reject_tls;
	r->free_in_ready = o->free_in_ready;
	peer_start(&r->peer, r->base, steps, sctx);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(o->port != 0 ? o->port : r->peer.port);
	memset(&p, 0, sizeof(p));
	p.addr = o->addr != NULL ? o->addr : (struct sockaddr *)&sin;
	p.addrlen = o->addr != NULL ? o->addrlen : sizeof(sin);
	p.helo_name = "client.test";
	p.connect_timeout_ms = o->timeout_ms;
	p.greeting_timeout_ms = o->timeout_ms;
	p.command_timeout_ms = o->timeout_ms;
	p.tls_mode = o->mode;
	p.tls_new = run_tls_new;
	p.on_tls = run_on_tls;
	p.on_ready = run_on_ready;
	p.on_done = run_on_done;
	p.arg = r;
	gettimeofday(&r->t0, NULL);
	r->in_start = true;
	r->s = smtp_session_start(r->base, &p);
	r->in_start = false;
	event_base_loopexit(r->base, &watchdog);
	event_base_dispatch(r->base);
	smtp_session_free(r->s);
	snprintf(r->got, sizeof(r->got), "%s", buf_cstr(&r->peer.got));
	peer_stop(&r->peer);
	SSL_CTX_free(sctx);
	SSL_CTX_free(r->client_ctx);
	event_base_free(r->base);
	if (getenv("TEST_VERBOSE") != NULL)
		run_print(r);
	if (!o->free_in_ready)
		T_CHECK(r->done_calls == 1);
}

#define S_GREET                                       \
	{                                             \
		P_SEND, "220 mx.test ESMTP ready\r\n" \
	}
#define S_READ               \
	{                    \
		P_READ, NULL \
	}
#define S_EHLO_TLS                                      \
	{                                               \
		P_SEND,                                 \
		    "250-mx.test\r\n250-PIPELINING\r\n" \
		    "250-SIZE 1000\r\n250 STARTTLS\r\n" \
	}
#define S_EHLO_PLAIN                                        \
	{                                                   \
		P_SEND, "250-mx.test\r\n250 PIPELINING\r\n" \
	}
#define S_BYE                         \
	{                             \
		P_SEND, "221 bye\r\n" \
	}

static void
test_session_starttls(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 2.0.0 go ahead\r\n" },
		{ P_TLS, NULL },
		S_READ,
		{ P_SEND, "250-mx.test\r\n250 8BITMIME\r\n" },
		S_READ,
		S_BYE,
		{ P_CLOSE, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_REQUIRED,
		.timeout_ms = 5000,
		.server_cert = true };
	struct run r;

	run_session(&r, steps, &o);
	if (r.res.error != SMTP_ERR_NONE)
		run_print(&r);
	T_STREQ(r.got, "EHLO client.test|STARTTLS|EHLO client.test|QUIT");
	T_CHECK(r.res.error == SMTP_ERR_NONE);
	T_CHECK(r.res.phase == SMTP_PHASE_DONE);
	T_CHECK(r.res.connected && r.res.esmtp && r.res.starttls_offered);
	T_CHECK(r.res.tls && r.tls_seen && r.ssl_in_ready);
	T_STREQ(r.res.banner, "mx.test ESMTP ready");
	T_CHECK(r.ehlo_count == 1);
	T_STREQ(r.ehlo_first, "8BITMIME");
}

static void
test_session_plain(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PLAIN,
		S_READ,
		/* Many servers hang up right after QUIT without a 221. */
		{ P_CLOSE, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 5000,
		.keep_in_done = true };
	struct run r;

	run_session(&r, steps, &o);
	T_STREQ(r.got, "EHLO client.test|QUIT");
	T_CHECK(r.res.error == SMTP_ERR_NONE && !r.res.tls);
	T_CHECK(r.ehlo_count == 1 && !r.ssl_in_ready);
}

static void
test_session_not_offered(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PLAIN,
		S_READ,
		S_BYE,
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_REQUIRED, .timeout_ms = 5000 };
	struct run r;

	run_session(&r, steps, &o);
	T_STREQ(r.got, "EHLO client.test|QUIT");
	T_CHECK(r.res.error == SMTP_ERR_STARTTLS_NOT_OFFERED);
	T_CHECK(r.res.phase == SMTP_PHASE_EHLO);
	T_CHECK(r.res.esmtp && !r.res.starttls_offered && !r.res.tls);
}

static void
test_session_starttls_454(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "454 4.7.0 TLS not available\r\n" },
		S_READ,
		S_BYE,
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_REQUIRED, .timeout_ms = 5000 };
	struct run r;

	run_session(&r, steps, &o);
	T_STREQ(r.got, "EHLO client.test|STARTTLS|QUIT");
	T_CHECK(r.res.error == SMTP_ERR_STARTTLS_REFUSED);
	T_CHECK(r.res.phase == SMTP_PHASE_STARTTLS);
	T_CHECK(r.res.reply_code == 454);
	T_STREQ(r.res.reply_text, "454 4.7.0 TLS not available");
}

static void
test_session_endless_banner(void)
{
	static const struct peer_step steps[] = {
		{ P_FLOOD, "220-and on and on\r\n" },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 5000 };
	struct run r;

	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_PROTOCOL);
	T_CHECK(r.res.phase == SMTP_PHASE_GREETING);
	T_CHECK(strstr(r.res.error_text, "too many lines") != NULL);
	T_CHECK(r.elapsed_ms < 2000);
}

static void
test_session_endless_line(void)
{
	static const struct peer_step steps[] = {
		{ P_SEND, "220 " },
		{ P_FLOOD, "xxxxxxxxxxxxxxxx" },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 5000 };
	struct run r;

	run_session(&r, steps, &o);
	if (r.res.error != SMTP_ERR_PROTOCOL)
		run_print(&r);
	T_CHECK(r.res.error == SMTP_ERR_PROTOCOL);
	T_CHECK(r.res.phase == SMTP_PHASE_GREETING);
	T_CHECK(strstr(r.res.error_text, "too long") != NULL);
	T_CHECK(r.elapsed_ms < 2000);
	/* Refused after a few kilobytes, not megabytes. */
	T_CHECK(r.peer.flooded < PEER_FLOOD_MAX);
}

static void
test_session_banner_no_crlf(void)
{
	static const struct peer_step steps[] = {
		{ P_SEND, "220 mx.test but no line end" },
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 300 };
	struct run r;

	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_TIMEOUT);
	T_CHECK(r.res.phase == SMTP_PHASE_GREETING);
	T_CHECK(r.res.connected);
	T_CHECK(r.elapsed_ms >= 250 && r.elapsed_ms < 2000);
}

static void
test_session_stall(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 300 };
	struct run r;

	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_TIMEOUT);
	T_CHECK(r.res.phase == SMTP_PHASE_EHLO);
	T_CHECK(r.elapsed_ms >= 250 && r.elapsed_ms < 2000);
	T_CHECK(strstr(r.res.error_text, "300 ms") != NULL);
}

static void
test_session_refused(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	static const struct peer_step steps[] = { { P_STALL, NULL } };
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 2000 };
	struct run r;

	/* A port that was just free: bound, never listening, closed. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	o.port = ntohs(sin.sin_port);
	run_session(&r, steps, &o);
	if (r.res.error != SMTP_ERR_CONNECT_REFUSED)
		run_print(&r);
	T_CHECK(r.res.error == SMTP_ERR_CONNECT_REFUSED);
	T_CHECK(r.res.phase == SMTP_PHASE_CONNECT && !r.res.connected);
	T_CHECK(r.res.error_text[0] != '\0');
}

/*
 * A connect that fails at once: libevent runs the event callback inside
 * bufferevent_socket_connect(), yet on_done must wait for the loop.
 */
static void
test_session_connect_fails_at_once(void)
{
	struct sockaddr_un sun;
	static const struct peer_step steps[] = { { P_STALL, NULL } };
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 2000 };
	struct run r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path),
	    "/nonexistent/danerelay-test.sock");
	o.addr = (struct sockaddr *)&sun;
	o.addrlen = sizeof(sun);
	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_CONNECT_REFUSED);
	T_CHECK(r.res.phase == SMTP_PHASE_CONNECT && !r.res.connected);
	T_STREQ(r.res.error_text, "No such file or directory");
}

static void
test_session_peer_closes(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		{ P_SEND, "250-mx.test\r\n" },
		{ P_CLOSE, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 5000 };
	struct run r;

	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_CLOSED);
	T_CHECK(r.res.phase == SMTP_PHASE_EHLO);
	T_CHECK(r.elapsed_ms < 2000);
}

static void
test_session_tls_rejected(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 go ahead\r\n" },
		{ P_TLS, NULL },
		S_READ,
		S_BYE,
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_REQUIRED,
		.timeout_ms = 5000,
		.server_cert = true,
		.reject_tls = true };
	struct run r;

	run_session(&r, steps, &o);
	/* QUIT went over TLS: the peer read it through its TLS filter. */
	T_STREQ(r.got, "EHLO client.test|STARTTLS|QUIT");
	T_CHECK(r.res.error == SMTP_ERR_ABORTED);
	T_CHECK(r.res.phase == SMTP_PHASE_TLS_HANDSHAKE);
	T_CHECK(r.res.tls && r.tls_seen);
}

static void
test_session_tls_fails(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 go ahead\r\n" },
		{ P_DRAIN, NULL },
		{ P_SEND, "HTTP/1.1 400 Bad Request\r\n\r\n" },
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 5000 };
	struct run r;

	run_session(&r, steps, &o);
	if (r.res.error != SMTP_ERR_TLS_HANDSHAKE ||
	    strstr(r.res.error_text, "SSL routines") == NULL)
		run_print(&r);
	T_CHECK(r.res.error == SMTP_ERR_TLS_HANDSHAKE);
	T_CHECK(r.res.phase == SMTP_PHASE_TLS_HANDSHAKE && !r.res.tls);
	/* The OpenSSL reason reaches the result. */
	T_CHECK(strstr(r.res.error_text, "SSL routines") != NULL);
	T_CHECK(!r.tls_seen);
}

static void
test_session_tls_peer_gives_up(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 go ahead\r\n" },
		{ P_TLS, NULL },
		{ P_STALL, NULL },
	};
	/* A server without a certificate cannot complete a handshake. */
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 5000 };
	struct run r;

	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_TLS_HANDSHAKE);
	T_CHECK(r.res.phase == SMTP_PHASE_TLS_HANDSHAKE && !r.res.tls);
	T_CHECK(r.res.error_text[0] != '\0');
	T_CHECK(!r.tls_seen);
}

static void
test_session_tls_stall(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 go ahead\r\n" },
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 300 };
	struct run r;

	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_TIMEOUT);
	T_CHECK(r.res.phase == SMTP_PHASE_TLS_HANDSHAKE);
}

static void
test_session_injection(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 go ahead\r\n250-mx.test\r\n250 injected\r\n" },
		{ P_STALL, NULL },
	};
	struct run_opts o = { .mode = SMTP_TLS_REQUIRED,
		.timeout_ms = 5000,
		.server_cert = true };
	struct run r;

	run_session(&r, steps, &o);
	T_CHECK(r.res.error == SMTP_ERR_PROTOCOL);
	T_CHECK(r.res.phase == SMTP_PHASE_TLS_HANDSHAKE);
	T_CHECK(strstr(r.res.error_text, "after the 220") != NULL);
}

static void
test_session_free_in_ready(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PLAIN,
		{ P_STALL, NULL },
	};
	struct run_opts o = {
		.mode = SMTP_TLS_NONE, .timeout_ms = 5000, .free_in_ready = true
	};
	struct run r;

	run_session(&r, steps, &o);
	/* Freed by the caller: no on_done, no crash, no leak. */
	T_CHECK(r.done_calls == 0 && r.s == NULL);
	T_CHECK(r.ehlo_count == 1);
}

/*
 * Connect timeout without leaving 127.0.0.1: a listener with a full accept
 * queue drops further SYNs, so the connect neither succeeds nor fails.
 */
static void
test_session_connect_timeout(void)
{
	static const struct peer_step steps[] = { { P_STALL, NULL } };
	struct run_opts o = { .mode = SMTP_TLS_OPPORTUNISTIC,
		.timeout_ms = 300 };
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), fds[8];
	struct run r;
	size_t i;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_CHECK(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	T_CHECK(listen(lfd, 0) == 0);
	getsockname(lfd, (struct sockaddr *)&sin, &len);
	for (i = 0; i < NELEM(fds); i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fds[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(50000);
	o.port = ntohs(sin.sin_port);
	run_session(&r, steps, &o);
	if (r.res.connected) {
		/* This kernel accepted anyway; the greeting timed out. */
		printf("  note: accept queue not full, connect succeeded\n");
		T_CHECK(r.res.error == SMTP_ERR_TIMEOUT);
	} else {
		T_CHECK(r.res.error == SMTP_ERR_CONNECT_TIMEOUT);
		T_CHECK(r.res.phase == SMTP_PHASE_CONNECT);
		T_CHECK(r.elapsed_ms >= 250 && r.elapsed_ms < 2000);
	}
	for (i = 0; i < NELEM(fds); i++)
		close(fds[i]);
	close(lfd);
}

int
main(void)
{
	const char *errstr;

	if (getenv("TEST_TRACE") != NULL)
		(void)log_trace_enable("smtp", &errstr);
	T_RUN(test_reply_table);
	T_RUN(test_reply_text);
	T_RUN(test_reply_nul);
	T_RUN(test_reply_line_cap);
	T_RUN(test_reply_endless);
	T_RUN(test_reply_size_cap);
	T_RUN(test_ehlo_parse);
	T_RUN(test_ehlo_lines);
	T_RUN(test_fsm_table);
	T_RUN(test_fsm_details);
	T_RUN(test_fsm_error_text);
	T_RUN(test_session_starttls);
	T_RUN(test_session_plain);
	T_RUN(test_session_not_offered);
	T_RUN(test_session_starttls_454);
	T_RUN(test_session_endless_banner);
	T_RUN(test_session_endless_line);
	T_RUN(test_session_banner_no_crlf);
	T_RUN(test_session_stall);
	T_RUN(test_session_refused);
	T_RUN(test_session_connect_fails_at_once);
	T_RUN(test_session_peer_closes);
	T_RUN(test_session_tls_rejected);
	T_RUN(test_session_tls_fails);
	T_RUN(test_session_tls_peer_gives_up);
	T_RUN(test_session_tls_stall);
	T_RUN(test_session_injection);
	T_RUN(test_session_free_in_ready);
	T_RUN(test_session_connect_timeout);
	T_EXIT();
}
