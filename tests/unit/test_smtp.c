/*
 * test_smtp: the SMTP client layer.
 *
 * Four parts: the reply parser (tables of good, bad, endless, overlong and
 * mismatched replies), the EHLO capability parser, the state machine
 * replayed with scripted server lines (no sockets), and whole sessions
 * against scripted peers listening on 127.0.0.1 in the same event loop,
 * including STARTTLS with a certificate made here. Mail transactions get
 * both: replays of the machine (pipelined or not, refusals, RSET between
 * transactions, the dot-stuffed body in small pieces) and sessions whose
 * peer keeps the exact bytes of the message it received.
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

/* GCC says __SANITIZE_ADDRESS__, clang __has_feature(address_sanitizer). */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#if defined(TEST_ASAN)
/* From the ASan runtime (sanitizer/allocator_interface.h, not always there). */
size_t __sanitizer_get_current_allocated_bytes(void);
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

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

/* ---- transaction replays --------------------------------------------- */

/*
 * A transaction case: the EHLO reply the machine gets, up to two
 * transactions, and a script as above where "!txn" starts the next
 * transaction. Sent commands are logged '|'-joined, the commands of one
 * pipelined group '+'-joined; <body> is the message (produced here in
 * small pieces), <done> the end of a transaction. Each transaction's
 * outputs are summed up as "end mail=code rcpt=code,code data=code", a
 * code followed by "/status" when the reply had one.
 */
struct txn_spec {
	const char *from;
	const char *params;
	bool b8, utf8;
	const char *rcpts[3];
	const char *rparams[3];
};

struct txn_case {
	const char *name;
	const char *ehlo[8];
	struct txn_spec txn[2]; /* txn[1].from NULL: just one */
	const char *script[24];
	const char *actions;
	const char *result[2];
	enum smtp_error error;
};

#define TXN_MSG "Subject: t\r\n\r\nhi\r\n" /* 18 octets */

#define E_ALL                                                        \
	"250-mx.test", "250-PIPELINING", "250-SIZE 1000", "250-DSN", \
	    "250-8BITMIME", "250-SMTPUTF8", "250 X-PRIO"
#define E_NODSN "250-mx.test", "250-PIPELINING", "250 SIZE"
#define E_PLAIN "250-mx.test", "250 8BITMIME"
#define E_SMALL "250-mx.test", "250-PIPELINING", "250 SIZE 10"

#define T_AB                                          \
	{                                             \
		"a@x", NULL, false, false, { "b@y" }, \
		{                                     \
			NULL                          \
		}                                     \
	}
#define T_ABC                                                \
	{                                                    \
		"a@x", NULL, false, false, { "b@y", "c@y" }, \
		{                                            \
			NULL                                 \
		}                                            \
	}
#define M_AB    "MAIL FROM:<a@x> SIZE=18+RCPT TO:<b@y>+DATA"
#define M_ABC   "MAIL FROM:<a@x> SIZE=18+RCPT TO:<b@y>+RCPT TO:<c@y>+DATA"
#define BODY_OK "<body>|.|<done>"

static const struct txn_case txn_cases[] = {
	{ "pipelined", { E_ALL }, { T_ABC },
	    { "!txn", "250 2.1.0 ok", "250 2.1.5 ok", "250 2.1.5 ok", "354 go",
	        "250 2.0.0 queued" },
	    M_ABC "|" BODY_OK,
	    { "ok mail=250/2.1.0 rcpt=250/2.1.5,250/2.1.5 data=250/2.0.0" },
	    SMTP_ERR_NONE },
	{ "not pipelined", { E_PLAIN }, { T_ABC },
	    { "!txn", "250 ok", "250 ok", "250 ok", "354 go", "250 queued" },
	    "MAIL FROM:<a@x>|RCPT TO:<b@y>|RCPT TO:<c@y>|DATA|" BODY_OK,
	    { "ok mail=250 rcpt=250,250 data=250" }, SMTP_ERR_NONE },
	{ "one rcpt refused", { E_ALL }, { T_ABC },
	    { "!txn", "250 ok", "550 5.1.1 no such user", "250 ok", "354 go",
	        "250 queued" },
	    M_ABC "|" BODY_OK, { "ok mail=250 rcpt=550/5.1.1,250 data=250" },
	    SMTP_ERR_NONE },
	{ "one rcpt refused, not pipelined", { E_PLAIN }, { T_ABC },
	    { "!txn", "250 ok", "250 ok", "550 5.1.1 no", "354 go", "250 ok" },
	    "MAIL FROM:<a@x>|RCPT TO:<b@y>|RCPT TO:<c@y>|DATA|" BODY_OK,
	    { "ok mail=250 rcpt=250,550/5.1.1 data=250" }, SMTP_ERR_NONE },
	{ "all refused, DATA 554", { E_ALL }, { T_ABC },
	    { "!txn", "250 ok", "550 no", "550 no",
	        "554 5.5.1 no valid recipients" },
	    M_ABC "|<done>", { "no-rcpt mail=250 rcpt=550,550 data=554/5.5.1" },
	    SMTP_ERR_NONE },
	{ "all refused, DATA 354 gets a lone dot", { E_ALL }, { T_ABC },
	    { "!txn", "250 ok", "550 no", "550 no", "354 go",
	        "554 5.5.1 no recipients" },
	    M_ABC "|.|<done>",
	    { "no-rcpt mail=250 rcpt=550,550 data=554/5.5.1" }, SMTP_ERR_NONE },
	{ "all refused, not pipelined: no DATA", { E_PLAIN }, { T_ABC },
	    { "!txn", "250 ok", "550 no", "450 later" },
	    "MAIL FROM:<a@x>|RCPT TO:<b@y>|RCPT TO:<c@y>|<done>",
	    { "no-rcpt mail=250 rcpt=550,450 data=0" }, SMTP_ERR_NONE },
	{ "MAIL refused, pipelined", { E_ALL }, { T_AB },
	    { "!txn", "550 5.7.1 go away", "503 5.5.1 MAIL first",
	        "503 5.5.1 MAIL first" },
	    M_AB "|<done>",
	    { "mail-rejected mail=550/5.7.1 rcpt=503/5.5.1 data=503/5.5.1" },
	    SMTP_ERR_NONE },
	{ "MAIL refused, DATA 354 anyway", { E_ALL }, { T_AB },
	    { "!txn", "451 later", "503 no", "354 go", "554 nothing" },
	    M_AB "|.|<done>", { "mail-rejected mail=451 rcpt=503 data=554" },
	    SMTP_ERR_NONE },
	{ "MAIL refused, not pipelined", { E_PLAIN }, { T_AB },
	    { "!txn", "452 4.3.1 full" }, "MAIL FROM:<a@x>|<done>",
	    { "mail-rejected mail=452/4.3.1 rcpt=0 data=0" }, SMTP_ERR_NONE },
	{ "DATA refused", { E_ALL }, { T_AB },
	    { "!txn", "250 ok", "250 ok", "451 4.3.0 try later" },
	    M_AB "|<done>",
	    { "data-rejected mail=250 rcpt=250 data=451/4.3.0" },
	    SMTP_ERR_NONE },
	{ "dot refused 554", { E_ALL }, { T_AB },
	    { "!txn", "250 ok", "250 ok", "354 go", "554 5.7.1 spam" },
	    M_AB "|" BODY_OK,
	    { "data-rejected mail=250 rcpt=250 data=554/5.7.1" },
	    SMTP_ERR_NONE },
	{ "452 on a rcpt", { E_PLAIN }, { T_ABC },
	    { "!txn", "250 ok", "250 ok", "452 4.5.3 too many recipients",
	        "354 go", "250 ok" },
	    "MAIL FROM:<a@x>|RCPT TO:<b@y>|RCPT TO:<c@y>|DATA|" BODY_OK,
	    { "ok mail=250 rcpt=250,452/4.5.3 data=250" }, SMTP_ERR_NONE },
	{ "SIZE too big: nothing sent", { E_SMALL }, { T_AB }, { "!txn" },
	    "<done>", { "data-rejected mail=0 rcpt=552/5.3.4 data=552/5.3.4" },
	    SMTP_ERR_NONE },
	{ "SIZE without a limit", { E_NODSN }, { T_AB },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    M_AB "|" BODY_OK, { "ok mail=250 rcpt=250 data=250" },
	    SMTP_ERR_NONE },
	{ "SMTPUTF8 not offered", { E_NODSN },
	    { { "a@x", NULL, false, true, { "b@y" }, { NULL } } }, { "!txn" },
	    "<done>", { "data-rejected mail=0 rcpt=553/5.6.7 data=553/5.6.7" },
	    SMTP_ERR_NONE },
	{ "SMTPUTF8 offered", { E_ALL },
	    { { "\xc3\xa9@x", NULL, false, true, { "\xc3\xbc@y" }, { NULL } } },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    "MAIL FROM:<\xc3\xa9@x> SIZE=18 SMTPUTF8+RCPT TO:<\xc3\xbc@y>+"
	    "DATA|" BODY_OK,
	    { "ok mail=250 rcpt=250 data=250" }, SMTP_ERR_NONE },
	{ "8-bit address without smtputf8", { E_ALL },
	    { { "a@x", NULL, false, false, { "\xc3\xbc@y", "b@y" },
	        { NULL } } },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    M_AB "|" BODY_OK, { "ok mail=250 rcpt=553/5.6.7,250 data=250" },
	    SMTP_ERR_NONE },
	{ "DSN params dropped without DSN", { E_NODSN },
	    { { "a@x", "RET=HDRS ENVID=q1", false, false, { "b@y" },
	        { "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y" } } },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    M_AB "|" BODY_OK, { "ok mail=250 rcpt=250 data=250" },
	    SMTP_ERR_NONE },
	{ "DSN params sent with DSN", { E_ALL },
	    { { "a@x", " RET=HDRS  SIZE=1 BODY=7BIT X-PRIO=1 X-NO=2 ENVID=q1",
	        false, false, { "b@y" },
	        { "NOTIFY=NEVER ORCPT=rfc822;b@y" } } },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    "MAIL FROM:<a@x> SIZE=18 RET=HDRS X-PRIO=1 ENVID=q1+RCPT TO:<b@y> "
	    "NOTIFY=NEVER ORCPT=rfc822;b@y+DATA|" BODY_OK,
	    { "ok mail=250 rcpt=250 data=250" }, SMTP_ERR_NONE },
	{ "8BITMIME offered", { E_ALL },
	    { { "", NULL, true, false, { "b@y" }, { NULL } } },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    "MAIL FROM:<> SIZE=18 BODY=8BITMIME+RCPT TO:<b@y>+DATA|" BODY_OK,
	    { "ok mail=250 rcpt=250 data=250" }, SMTP_ERR_NONE },
	{ "8BITMIME not offered: sent as is", { E_NODSN },
	    { { "a@x", NULL, true, false, { "b@y" }, { NULL } } },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    M_AB "|" BODY_OK, { "ok mail=250 rcpt=250 data=250" },
	    SMTP_ERR_NONE },
	{ "two in a row: RSET after DATA refused", { E_ALL }, { T_AB, T_AB },
	    { "!txn", "250 ok", "250 ok", "450 no", "!txn", "250 reset",
	        "250 ok", "250 ok", "354 go", "250 ok" },
	    M_AB "|<done>|RSET|" M_AB "|" BODY_OK,
	    { "data-rejected mail=250 rcpt=250 data=450",
	        "ok mail=250 rcpt=250 data=250" },
	    SMTP_ERR_NONE },
	{ "two in a row: no RSET after a dot", { E_ALL }, { T_AB, T_ABC },
	    { "!txn", "250 ok", "250 ok", "354 go", "554 no", "!txn", "250 ok",
	        "250 ok", "250 ok", "354 go", "250 ok" },
	    M_AB "|" BODY_OK "|" M_ABC "|" BODY_OK,
	    { "data-rejected mail=250 rcpt=250 data=554",
	        "ok mail=250 rcpt=250,250 data=250" },
	    SMTP_ERR_NONE },
	{ "two in a row: RSET after no rcpt, not pipelined", { E_PLAIN },
	    { T_AB, T_AB },
	    { "!txn", "250 ok", "550 no", "!txn", "250 ok", "250 ok", "250 ok",
	        "354 go", "250 ok" },
	    "MAIL FROM:<a@x>|RCPT TO:<b@y>|<done>|RSET|MAIL FROM:<a@x>|"
	    "RCPT TO:<b@y>|DATA|" BODY_OK,
	    { "no-rcpt mail=250 rcpt=550 data=0",
	        "ok mail=250 rcpt=250 data=250" },
	    SMTP_ERR_NONE },
	{ "RSET refused", { E_ALL }, { T_AB, T_AB },
	    { "!txn", "250 ok", "250 ok", "451 no", "!txn", "500 what?",
	        "221 bye" },
	    M_AB "|<done>|RSET|QUIT|<close>",
	    { "data-rejected mail=250 rcpt=250 data=451",
	        "failed mail=0 rcpt=0 data=0" },
	    SMTP_ERR_REPLY },
	{ "421 on a rcpt", { E_ALL }, { T_ABC },
	    { "!txn", "250 ok", "421 4.3.2 shutting down" }, M_ABC "|<close>",
	    { "failed mail=250 rcpt=421/4.3.2,0 data=0" }, SMTP_ERR_REPLY },
	{ "timeout after the dot", { E_ALL }, { T_AB },
	    { "!txn", "250 ok", "250 ok", "354 go", "!timeout" },
	    M_AB "|<body>|.|<close>", { "failed mail=250 rcpt=250 data=354" },
	    SMTP_ERR_TIMEOUT },
	{ "closed after RCPT", { E_ALL }, { T_AB },
	    { "!txn", "250 ok", "250 ok", "!closed" }, M_AB "|<close>",
	    { "failed mail=250 rcpt=250 data=0" }, SMTP_ERR_CLOSED },
	{ "control bytes refused unsent", { E_ALL },
	    { { "a@x", NULL, false, false, { "b@y\r\nDATA", "b@y" },
	        { NULL } } },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok" },
	    M_AB "|" BODY_OK, { "ok mail=250 rcpt=553/5.1.3,250 data=250" },
	    SMTP_ERR_NONE },
	{ "bad sender refused unsent", { E_ALL },
	    { { "a@x>\r\nRSET", NULL, false, false, { "b@y" }, { NULL } } },
	    { "!txn" }, "<done>",
	    { "mail-rejected mail=553/5.1.7 rcpt=0 data=0" }, SMTP_ERR_NONE },
	{ "every rcpt refused unsent", { E_ALL },
	    { { "a@x", NULL, false, false, { "b\ty" }, { NULL } } }, { "!txn" },
	    "<done>", { "no-rcpt mail=0 rcpt=553/5.1.3 data=0" },
	    SMTP_ERR_NONE },
	{ "quit after a transaction", { E_ALL }, { T_AB },
	    { "!txn", "250 ok", "250 ok", "354 go", "250 ok", "!quit",
	        "221 bye" },
	    M_AB "|" BODY_OK "|QUIT|<close>",
	    { "ok mail=250 rcpt=250 data=250" }, SMTP_ERR_NONE },
	{ "quit in the middle", { E_ALL }, { T_AB },
	    { "!txn", "250 ok", "!quit" }, M_AB "|<close>",
	    { "failed mail=250 rcpt=0 data=0" }, SMTP_ERR_ABORTED },
};

static void
txn_log_send(struct buf *log, const struct smtp_action *a)
{
	size_t i;

	T_CHECK(a->len >= 2 && a->data[a->len - 2] == '\r' &&
	    a->data[a->len - 1] == '\n');
	for (i = 0; i + 2 < a->len; i++) {
		if (a->data[i] == '\r' && a->data[i + 1] == '\n') {
			buf_addc(log, '+');
			i++;
		} else
			buf_addc(log, a->data[i]);
	}
}

/*
 * Log one action as above. SMTP_ACT_BODY is carried out here like the
 * session would, the body taken in pieces of 7 bytes into *body.
 */
static void
txn_log_action(struct smtp_client *fsm, struct buf *log,
    const struct smtp_action *a, struct buf *body)
{
	struct smtp_event done = { .type = SMTP_EV_BODY_DONE };
	struct smtp_action next;
	char piece[7];
	size_t n;

	if (a->type == SMTP_ACT_NONE || a->type == SMTP_ACT_WAIT)
		return;
	if (log->len > 0)
		buf_addc(log, '|');
	switch (a->type) {
	case SMTP_ACT_SEND:
		txn_log_send(log, a);
		break;
	case SMTP_ACT_BODY:
		buf_adds(log, "<body>");
		while ((n = smtp_client_body(fsm, piece, sizeof(piece))) > 0)
			buf_add(body, piece, n);
		smtp_client_step(fsm, &done, &next);
		txn_log_action(fsm, log, &next, body);
		break;
	case SMTP_ACT_TXN_DONE:
		buf_adds(log, "<done>");
		break;
	case SMTP_ACT_CLOSE:
		buf_adds(log, "<close>");
		break;
	default:
		buf_printf(log, "<action %d>", (int)a->type);
		break;
	}
}

static void
txn_reply_sum(struct buf *b, const struct smtp_rcpt_reply *r)
{
	buf_printf(b, "%d", r->code);
	if (r->status[0] != '\0')
		buf_printf(b, "/%s", r->status);
}

static void
txn_sum(const struct smtp_txn *t, char *dst, size_t len)
{
	struct buf b;
	size_t i;

	buf_init(&b, 1024);
	buf_printf(&b, "%s mail=", smtp_txn_end_str(t->end));
	txn_reply_sum(&b, &t->mail_reply);
	buf_adds(&b, " rcpt=");
	for (i = 0; i < t->nrcpt; i++) {
		if (i > 0)
			buf_addc(&b, ',');
		txn_reply_sum(&b, &t->rcpt_reply[i]);
	}
	buf_adds(&b, " data=");
	txn_reply_sum(&b, &t->data_reply);
	snprintf(dst, len, "%s", buf_cstr(&b));
	buf_free(&b);
}

/* Storage for one transaction built from a spec. */
struct txn_store {
	struct smtp_txn t;
	char *rcpts[3];
	char *rparams[3];
	struct smtp_rcpt_reply replies[3];
};

static void
txn_build(struct txn_store *st, const struct txn_spec *sp, const char *msg)
{
	size_t i;

	memset(st, 0, sizeof(*st));
	st->t.mail_from = sp->from;
	st->t.mail_params = sp->params;
	st->t.body_8bit = sp->b8;
	st->t.smtputf8 = sp->utf8;
	for (i = 0; i < 3 && sp->rcpts[i] != NULL; i++) {
		/* The struct wants char **: point at our copies. */
		st->rcpts[i] = strdup(sp->rcpts[i]);
		st->rparams[i] =
		    sp->rparams[i] != NULL ? strdup(sp->rparams[i]) : NULL;
	}
	st->t.nrcpt = i;
	st->t.rcpts = st->rcpts;
	st->t.rcpt_params = sp->rparams[0] != NULL ? st->rparams : NULL;
	st->t.rcpt_reply = st->replies;
	st->t.data = (const uint8_t *)msg;
	st->t.len = strlen(msg);
	/* Garbage the machine must clear. */
	st->t.mail_reply.code = 999;
	st->replies[0].code = 999;
	st->t.end = SMTP_TXN_OK;
}

static void
txn_store_free(struct txn_store *st)
{
	size_t i;

	for (i = 0; i < 3; i++) {
		free(st->rcpts[i]);
		free(st->rparams[i]);
	}
}

/* Bring a machine to READY with the EHLO reply lines given. */
static struct smtp_client *
txn_fsm_ready(const char *const *ehlo, size_t n)
{
	struct smtp_client *fsm =
	    smtp_client_new("test", "client.test", SMTP_TLS_NONE);
	struct smtp_action act;
	size_t i;

	fsm_feed(fsm, "!connect", &act);
	fsm_feed(fsm, "220 mx.test ESMTP", &act);
	for (i = 0; i < n && ehlo[i] != NULL; i++)
		fsm_feed(fsm, ehlo[i], &act);
	T_CHECK(act.type == SMTP_ACT_READY);
	return fsm;
}

static bool
txn_check(const struct txn_case *c, const char *log, const struct txn_store *st,
    size_t ntxn, struct smtp_client *fsm)
{
	bool ok = strcmp(log, c->actions) == 0 &&
	    smtp_client_result(fsm)->error == c->error;
	char sum[1024];
	size_t k;

	if (!ok)
		printf("  case \"%s\": %s; error %s\n", c->name, log,
		    smtp_error_str(smtp_client_result(fsm)->error));
	for (k = 0; k < ntxn; k++) {
		txn_sum(&st[k].t, sum, sizeof(sum));
		if (c->result[k] == NULL || strcmp(sum, c->result[k]) != 0) {
			printf("  case \"%s\" txn %zu: %s\n", c->name, k, sum);
			ok = false;
		}
	}
	return ok;
}

static void
txn_replay(const struct txn_case *c)
{
	struct smtp_client *fsm = txn_fsm_ready(c->ehlo, NELEM(c->ehlo));
	struct txn_store st[2];
	struct smtp_event ev;
	struct smtp_action act;
	struct buf log, body;
	size_t i, ntxn = c->txn[1].from != NULL ? 2 : 1, k = 0;

	buf_init(&log, 4096);
	buf_init(&body, 4096);
	for (i = 0; i < ntxn; i++)
		txn_build(&st[i], &c->txn[i], TXN_MSG);
	for (i = 0; i < NELEM(c->script) && c->script[i] != NULL; i++) {
		fsm_event(c->script[i], &ev);
		if (strcmp(c->script[i], "!txn") == 0) {
			T_CHECK(k < ntxn);
			ev.type = SMTP_EV_TXN;
			ev.txn = &st[k++].t;
		}
		smtp_client_step(fsm, &ev, &act);
		txn_log_action(fsm, &log, &act, &body);
	}
	if (!txn_check(c, buf_cstr(&log), st, ntxn, fsm))
		T_CHECK(0);
	for (i = 0; i < ntxn; i++)
		txn_store_free(&st[i]);
	buf_free(&log);
	buf_free(&body);
	smtp_client_free(fsm);
}

static void
test_txn_table(void)
{
	size_t i;

	for (i = 0; i < NELEM(txn_cases); i++)
		txn_replay(&txn_cases[i]);
}

/* Details: timers, phases, texts of our own refusals, the body. */
static void
test_txn_details(void)
{
	static const char *const ehlo[] = { E_SMALL, NULL };
	static const char *const ehlo2[] = { E_ALL, NULL };
	struct smtp_client *fsm = txn_fsm_ready(ehlo, NELEM(ehlo));
	struct smtp_event ev = { .type = SMTP_EV_TXN };
	static const struct txn_spec sp = T_AB;
	struct txn_store st;
	struct smtp_action act;
	char out[64];

	txn_build(&st, &sp, TXN_MSG);
	ev.txn = &st.t;
	smtp_client_step(fsm, &ev, &act);
	T_CHECK(act.type == SMTP_ACT_TXN_DONE && act.timer == SMTP_TIMER_NONE);
	T_CHECK(smtp_client_phase(fsm) == SMTP_PHASE_READY);
	T_STREQ(st.t.data_reply.text,
	    "552 5.3.4 message of 18 octets over the server's limit of 10 "
	    "(not sent)");
	T_CHECK(st.t.mail_reply.code == 0);
	/* Each recipient gets the reply that stands for all. */
	T_STREQ(st.replies[0].text, st.t.data_reply.text);
	smtp_client_free(fsm);

	fsm = txn_fsm_ready(ehlo2, NELEM(ehlo2));
	smtp_client_step(fsm, &ev, &act);
	T_CHECK(act.type == SMTP_ACT_SEND && act.timer == SMTP_TIMER_COMMAND);
	T_CHECK(smtp_client_phase(fsm) == SMTP_PHASE_MAIL);
	/* Outside BODY there is no body to take. */
	T_CHECK(smtp_client_body(fsm, out, sizeof(out)) == 0);
	fsm_feed(fsm, "250 ok", &act);
	T_CHECK(act.type == SMTP_ACT_WAIT && act.timer == SMTP_TIMER_COMMAND);
	T_CHECK(smtp_client_phase(fsm) == SMTP_PHASE_RCPT);
	fsm_feed(fsm, "250 ok", &act);
	T_CHECK(smtp_client_phase(fsm) == SMTP_PHASE_DATA);
	fsm_feed(fsm, "354-go", &act);
	T_CHECK(act.type == SMTP_ACT_NONE);
	fsm_feed(fsm, "354 on", &act);
	T_CHECK(act.type == SMTP_ACT_BODY && act.timer == SMTP_TIMER_COMMAND);
	T_CHECK(smtp_client_phase(fsm) == SMTP_PHASE_BODY);
	T_CHECK(smtp_client_body(fsm, out, 5) == 5);
	/* A reply while the message is still going out breaks the session. */
	fsm_feed(fsm, "554 5.7.1 stop", &act);
	T_CHECK(act.type == SMTP_ACT_CLOSE);
	T_CHECK(st.t.end == SMTP_TXN_FAILED && st.t.data_reply.code == 554);
	T_CHECK(smtp_client_result(fsm)->error == SMTP_ERR_PROTOCOL);
	T_CHECK(smtp_client_result(fsm)->phase == SMTP_PHASE_BODY);
	txn_store_free(&st);
	smtp_client_free(fsm);
}

/* A machine in BODY for message msg (len bytes). */
static struct smtp_client *
body_fsm(struct txn_store *st, const char *msg, size_t len)
{
	static const char *const ehlo[] = { E_NODSN, NULL };
	static const struct txn_spec sp = T_AB;
	struct smtp_client *fsm = txn_fsm_ready(ehlo, NELEM(ehlo));
	struct smtp_event ev = { .type = SMTP_EV_TXN, .txn = &st->t };
	struct smtp_action act;

	txn_build(st, &sp, "");
	st->t.data = (const uint8_t *)msg;
	st->t.len = len;
	smtp_client_step(fsm, &ev, &act);
	fsm_feed(fsm, "250 ok", &act);
	fsm_feed(fsm, "250 ok", &act);
	fsm_feed(fsm, "354 go", &act);
	T_CHECK(act.type == SMTP_ACT_BODY);
	return fsm;
}

struct body_case {
	const char *in;
	const char *out;
};

static const struct body_case body_cases[] = {
	{ "", "" },
	{ "a", "a\r\n" },
	{ "a\r\n", "a\r\n" },
	{ ".", "..\r\n" },
	{ ".\r\n", "..\r\n" },
	{ "\r\n.\r\n", "\r\n..\r\n" },
	{ "a\r\n.b\r\n..c\r\nd.\r\n", "a\r\n..b\r\n...c\r\nd.\r\n" },
	/* A bare LF is a line end too: no dot hides behind it. */
	{ "a\n.\nb", "a\r\n..\r\nb\r\n" },
	{ "\n\n", "\r\n\r\n" },
	{ "a\r", "a\r\n" },
	{ "a\rb\r\n", "a\rb\r\n" },
	{ "a\r.\r\n", "a\r.\r\n" },
	{ "x\r\n.", "x\r\n..\r\n" },
	{ "Subject: x\r\n\r\n.\r\n..\r\n", "Subject: x\r\n\r\n..\r\n...\r\n" },
};

/* Every case, taken in pieces of every size from 2 to 9 and at once. */
static void
test_body_stuffing(void)
{
	static const size_t caps[] = { 2, 3, 4, 5, 6, 7, 8, 9, 4096 };
	char piece[4096];
	struct txn_store st;
	struct buf out;
	size_t i, j, n;

	buf_init(&out, 4096);
	for (i = 0; i < NELEM(body_cases); i++) {
		for (j = 0; j < NELEM(caps); j++) {
			struct smtp_client *fsm = body_fsm(
			    &st, body_cases[i].in, strlen(body_cases[i].in));

			buf_reset(&out);
			while ((n = smtp_client_body(fsm, piece, caps[j])) > 0)
				buf_add(&out, piece, n);
			T_CHECK(smtp_client_body(fsm, piece, caps[j]) == 0);
			if (strcmp(buf_cstr(&out), body_cases[i].out) != 0) {
				printf("  case %zu cap %zu: got \"%s\"\n", i,
				    caps[j], buf_cstr(&out));
				T_CHECK(0);
			}
			txn_store_free(&st);
			smtp_client_free(fsm);
		}
	}
	buf_free(&out);
}

/* ---- sessions against scripted peers --------------------------------- */

/*
 * Bytes on the heap now, to show that a big message is never copied whole;
 * HEAP_UNKNOWN where we cannot tell (neither ASan nor glibc): the check
 * that uses it then FAILs, it never passes for nothing.
 */
#define HEAP_UNKNOWN ((size_t)-1)

static size_t
heap_bytes(void)
{
#if defined(TEST_ASAN)
	return __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__)
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#else
	return HEAP_UNKNOWN;
#endif
}

enum peer_op {
	P_SEND,       /* write arg */
	P_READ,       /* read one command line, record it */
	P_TLS,        /* become a TLS server (ACCEPTING) */
	P_CLOSE,      /* close the connection */
	P_FLOOD,      /* write arg again and again */
	P_STALL,      /* do nothing more; keep the connection */
	P_DRAIN,      /* wait for any bytes (a ClientHello), discard them */
	P_DATA,       /* take a message up to its final dot into data */
	P_FREEZE,     /* stop reading from the socket */
	P_SEND_CLOSE, /* write arg to the socket at once, then close */
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
	struct buf got;  /* commands received, '|'-joined */
	struct buf data; /* messages received, exact bytes with their dots */
	size_t msg_start;
	bool in_data;
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

/* Take the input into p->data until the end of the message is there. */
static bool
peer_data(struct peer *p)
{
	struct evbuffer *in = bufferevent_get_input(p->bev);
	char chunk[16384];
	const char *m, *end;
	size_t scan, mlen, rest;
	int n;

	if (!p->in_data) {
		p->in_data = true;
		p->msg_start = p->data.len;
	}
	scan = p->data.len - p->msg_start;
	while ((n = evbuffer_remove(in, chunk, sizeof(chunk))) > 0)
		T_CHECK(buf_add(&p->data, chunk, (size_t)n) == 0);
	mlen = p->data.len - p->msg_start;
	if (mlen == 0)
		return false;
	m = p->data.data + p->msg_start;
	scan = scan >= 4 ? scan - 4 : 0;
	if (mlen >= 3 && memcmp(m, ".\r\n", 3) == 0)
		end = m + 3; /* an empty message */
	else if ((end = memmem(m + scan, mlen - scan, "\r\n.\r\n", 5)) != NULL)
		end += 5;
	else
		return false;
	/* Whatever follows the dot is the next command: put it back. */
	rest = mlen - (size_t)(end - m);
	if (rest > 0) {
		evbuffer_prepend(in, end, rest);
		p->data.len -= rest;
		p->data.data[p->data.len] = '\0';
	}
	p->in_data = false;
	return true;
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
	case P_DATA:
		return peer_data(p);
	case P_FREEZE:
		bufferevent_disable(p->bev, EV_READ);
		return false;
	case P_SEND_CLOSE:
		/* bufferevent_free() would drop what is still buffered. */
		T_CHECK(write(bufferevent_getfd(p->bev), st->arg,
		            strlen(st->arg)) == (ssize_t)strlen(st->arg));
		peer_close(p);
		return false;
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
	buf_init(&p->data, 64u << 20);
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
	buf_free(&p->data);
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

	/* transactions */
	struct smtp_txn *txns; /* run one after the other from on_ready */
	size_t ntxn, txn_i;
	bool in_txn_call;
	bool offers_pipe, offers_size;
	char events[256]; /* txn:<end> per transaction, done:<error> */
	struct buf data;  /* the peer's data, kept past peer_stop */
	size_t heap_at_done;
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
run_event(struct run *r, const char *what, const char *detail)
{
	size_t n = strlen(r->events);

	snprintf(r->events + n, sizeof(r->events) - n, "%s%s:%s",
	    n > 0 ? "|" : "", what, detail);
}

static void run_txn_done(struct smtp_session *, struct smtp_txn *, void *);

static void
run_next_txn(struct run *r, struct smtp_session *s)
{
	r->in_txn_call = true;
	smtp_session_transaction(s, &r->txns[r->txn_i], run_txn_done, r);
	r->in_txn_call = false;
}

/* The next transaction, or QUIT after the last one. */
static void
run_txn_done(struct smtp_session *s, struct smtp_txn *t, void *arg)
{
	struct run *r = arg;

	T_CHECK(!r->in_txn_call);
	T_CHECK(s == r->s && t == &r->txns[r->txn_i]);
	run_event(r, "txn", smtp_txn_end_str(t->end));
	r->txn_i++;
	if (t->end == SMTP_TXN_FAILED)
		return;
	if (r->txn_i < r->ntxn)
		run_next_txn(r, s);
	else
		smtp_session_quit(s);
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
	r->offers_pipe = smtp_session_offers(s, "Pipelining");
	r->offers_size = smtp_session_offers(s, "SIZE");
	if (r->ntxn > 0)
		run_next_txn(r, s);
	else
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
	r->heap_at_done = heap_bytes();
	run_event(r, "done", smtp_error_str(res->error));
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
	struct smtp_txn *txns;
	size_t ntxn;
	unsigned data_timeout_ms;
};

static void
run_print(const struct run *r)
{
	printf("  got \"%s\" error %s phase %s code %d text \"%s\" "
	       "detail \"%s\" %ld ms events \"%s\"\n",
	    r->got, smtp_error_str(r->res.error), smtp_phase_str(r->res.phase),
	    r->res.reply_code, r->res.reply_text, r->res.error_text,
	    r->elapsed_ms, r->events);
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
	r->txns = o->txns;
	r->ntxn = o->ntxn;
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
	p.data_timeout_ms = o->data_timeout_ms;
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
	r->data = r->peer.data;
	buf_init(&r->peer.data, 0);
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

/* ---- transactions against scripted peers ------------------------------ */

/* RFC 5321 §4.5.2 the slow way, to check the session against. */
static void
ref_stuff(struct buf *out, const char *in, size_t len)
{
	bool bol = true;
	size_t i;

	for (i = 0; i < len; i++) {
		if (bol && in[i] == '.')
			buf_addc(out, '.');
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			buf_addc(out, '\r');
		buf_addc(out, in[i]);
		bol = in[i] == '\n';
	}
	if (!bol)
		buf_adds(out, len > 0 && in[len - 1] == '\r' ? "\n" : "\r\n");
	buf_adds(out, ".\r\n");
}

/* One transaction for run_session: a@x to the recipients given. */
struct run_txn {
	struct smtp_txn t;
	char *rcpts[2];
	struct smtp_rcpt_reply replies[2];
};

static void
run_txn_init(struct run_txn *rt, const char *msg, size_t len, size_t nrcpt)
{
	static char r1[] = "b@y", r2[] = "c@y";

	memset(rt, 0, sizeof(*rt));
	rt->rcpts[0] = r1;
	rt->rcpts[1] = r2;
	rt->t.mail_from = "a@x";
	rt->t.rcpts = rt->rcpts;
	rt->t.nrcpt = nrcpt;
	rt->t.rcpt_reply = rt->replies;
	rt->t.data = (const uint8_t *)msg;
	rt->t.len = len;
}

#define S_EHLO_PIPE                                                    \
	{                                                              \
		P_SEND, "250-mx.test\r\n250-PIPELINING\r\n250 DSN\r\n" \
	}
#define S_EHLO_PLAIN_NOPIPE                               \
	{                                                 \
		P_SEND, "250-mx.test\r\n250 8BITMIME\r\n" \
	}
#define S_DATA               \
	{                    \
		P_DATA, NULL \
	}
#define S_QUIT_BYE            \
	S_READ, S_BYE,        \
	{                     \
		P_CLOSE, NULL \
	}

/* Pipelined MAIL, one RCPT, DATA; the message; QUIT. */
#define S_TXN1(reply)                                                   \
	S_READ, S_READ, S_READ,                                         \
	    { P_SEND, "250 ok\r\n250 ok\r\n354 go ahead\r\n" }, S_DATA, \
	{                                                               \
		P_SEND, reply                                           \
	}

static void
run_txn_expect(const struct run *r, const char *events, const char *got)
{
	if (strcmp(r->events, events) != 0 || strcmp(r->got, got) != 0)
		run_print(r);
	T_STREQ(r->events, events);
	T_STREQ(r->got, got);
}

static void
test_session_txn_stuffing(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PIPE,
		S_TXN1("250 2.0.0 queued as X\r\n"),
		S_QUIT_BYE,
	};
	static const char msg[] =
	    "Subject: dots\r\n\r\n.\r\n..two\r\n.three\r\nmid.dle\r\n.";
	struct run_txn rt;
	struct run_opts o = { .mode = SMTP_TLS_NONE,
		.timeout_ms = 5000,
		.txns = &rt.t,
		.ntxn = 1 };
	struct run r;

	run_txn_init(&rt, msg, strlen(msg), 1);
	run_session(&r, steps, &o);
	run_txn_expect(&r, "txn:ok|done:none",
	    "EHLO client.test|MAIL FROM:<a@x>|RCPT TO:<b@y>|DATA|QUIT");
	T_STREQ(buf_cstr(&r.data),
	    "Subject: dots\r\n\r\n..\r\n...two\r\n..three\r\nmid.dle\r\n"
	    "..\r\n.\r\n");
	T_CHECK(rt.t.end == SMTP_TXN_OK && rt.replies[0].code == 250);
	T_CHECK(r.offers_pipe && !r.offers_size);
	T_STREQ(rt.t.data_reply.text, "250 2.0.0 queued as X");
	T_STREQ(rt.t.data_reply.status, "2.0.0");
	buf_free(&r.data);
}

/* Not pipelined, and a message without a final line end. */
static void
test_session_txn_no_crlf(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PLAIN_NOPIPE,
		S_READ,
		{ P_SEND, "250 ok\r\n" },
		S_READ,
		{ P_SEND, "250 ok\r\n" },
		S_READ,
		{ P_SEND, "354 go ahead\r\n" },
		S_DATA,
		{ P_SEND, "250 queued\r\n" },
		S_QUIT_BYE,
	};
	struct run_txn rt;
	struct run_opts o = { .mode = SMTP_TLS_NONE,
		.timeout_ms = 5000,
		.txns = &rt.t,
		.ntxn = 1 };
	struct run r;

	run_txn_init(&rt, "hello", 5, 1);
	run_session(&r, steps, &o);
	run_txn_expect(&r, "txn:ok|done:none",
	    "EHLO client.test|MAIL FROM:<a@x>|RCPT TO:<b@y>|DATA|QUIT");
	T_STREQ(buf_cstr(&r.data), "hello\r\n.\r\n");
	buf_free(&r.data);
}

/*
 * Lines of 0 to 200 octets, one in seven starting with a dot, one in
 * eleven ending in a bare LF; the end falls wherever len says.
 */
static char *
big_message(size_t len)
{
	char *m = malloc(len);
	size_t i = 0, line = 0, n;

	while (i < len) {
		n = (line * 37) % 201;
		if (line % 7 == 0)
			m[i++] = '.';
		for (; n > 0 && i < len; n--, i++)
			m[i] = (char)('a' + (line + i) % 26);
		if (i < len && line % 11 != 0)
			m[i++] = '\r';
		if (i < len)
			m[i++] = '\n';
		line++;
	}
	return m;
}

static void
run_big(size_t len, bool tls)
{
	static const struct peer_step plain[] = {
		S_GREET,
		S_READ,
		S_EHLO_PIPE,
		S_TXN1("250 ok\r\n"),
		S_QUIT_BYE,
	};
	static const struct peer_step with_tls[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 go ahead\r\n" },
		{ P_TLS, NULL },
		S_READ,
		S_EHLO_PIPE,
		S_TXN1("250 ok\r\n"),
		S_QUIT_BYE,
	};
	char *msg = big_message(len);
	struct run_txn rt;
	struct run_opts o = { .mode = tls ? SMTP_TLS_REQUIRED : SMTP_TLS_NONE,
		.server_cert = tls,
		.timeout_ms = 5000,
		.txns = &rt.t,
		.ntxn = 1 };
	struct run r;
	struct buf want;

	run_txn_init(&rt, msg, len, 1);
	run_session(&r, tls ? with_tls : plain, &o);
	buf_init(&want, 2 * len + 16);
	ref_stuff(&want, msg, len);
	T_STREQ(r.events, "txn:ok|done:none");
	T_CHECK(r.data.len == want.len);
	T_CHECK(r.data.len == want.len &&
	    memcmp(r.data.data, want.data, want.len) == 0);
	buf_free(&want);
	buf_free(&r.data);
	free(msg);
}

static void
test_session_txn_5mb(void)
{
	run_big(5 * 1024 * 1024 + 3, false);
}

static void
test_session_txn_5mb_tls(void)
{
	run_big(5 * 1024 * 1024, true);
}

/* The peer says 354 and then nothing: the final dot's deadline fires. */
static void
test_session_txn_stall_after_354(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PIPE,
		S_READ,
		S_READ,
		S_READ,
		{ P_SEND, "250 ok\r\n250 ok\r\n354 go ahead\r\n" },
		{ P_STALL, NULL },
	};
	struct run_txn rt;
	struct run_opts o = { .mode = SMTP_TLS_NONE,
		.timeout_ms = 5000,
		.data_timeout_ms = 300,
		.txns = &rt.t,
		.ntxn = 1 };
	struct run r;

	run_txn_init(&rt, TXN_MSG, strlen(TXN_MSG), 1);
	run_session(&r, steps, &o);
	run_txn_expect(&r, "txn:failed|done:timeout",
	    "EHLO client.test|MAIL FROM:<a@x>|RCPT TO:<b@y>|DATA");
	T_CHECK(r.res.phase == SMTP_PHASE_DOT);
	T_CHECK(r.elapsed_ms >= 250 && r.elapsed_ms < 2000);
	T_CHECK(strstr(r.res.error_text, "300 ms") != NULL);
	buf_free(&r.data);
}

/*
 * The peer stops reading in the middle of a message bigger than the socket
 * buffers: the per-block deadline (the command timeout) fires, and the
 * session holds a few chunks of the message, not all of it (over TLS
 * too: the socket under the TLS filter has a write watermark).
 */
static void
run_block(bool tls)
{
	static const struct peer_step plain[] = {
		S_GREET,
		S_READ,
		S_EHLO_PIPE,
		S_READ,
		S_READ,
		S_READ,
		{ P_SEND, "250 ok\r\n250 ok\r\n354 go ahead\r\n" },
		{ P_FREEZE, NULL },
	};
	static const struct peer_step with_tls[] = {
		S_GREET,
		S_READ,
		S_EHLO_TLS,
		S_READ,
		{ P_SEND, "220 go ahead\r\n" },
		{ P_TLS, NULL },
		S_READ,
		S_EHLO_PIPE,
		S_READ,
		S_READ,
		S_READ,
		{ P_SEND, "250 ok\r\n250 ok\r\n354 go ahead\r\n" },
		{ P_FREEZE, NULL },
	};
	size_t len = 48u << 20, held;
	char *msg = malloc(len);
	struct run_txn rt;
	struct run_opts o = { .mode = tls ? SMTP_TLS_REQUIRED : SMTP_TLS_NONE,
		.server_cert = tls,
		.timeout_ms = 300,
		.txns = &rt.t,
		.ntxn = 1 };
	struct run r;
	size_t before;

	memset(msg, 'x', len);
	run_txn_init(&rt, msg, len, 1);
	before = heap_bytes();
	run_session(&r, tls ? with_tls : plain, &o);
	if (r.res.phase != SMTP_PHASE_BODY)
		run_print(&r);
	T_STREQ(r.events, "txn:failed|done:timeout");
	T_CHECK(r.res.phase == SMTP_PHASE_BODY);
	if (before == HEAP_UNKNOWN || r.heap_at_done == HEAP_UNKNOWN) {
		printf("  heap use cannot be measured here (no ASan, no "
		       "glibc mallinfo2)\n");
		T_FAIL("heap use measurable");
	} else {
		held = r.heap_at_done - before;
		if (held > (2u << 20) || getenv("TEST_VERBOSE") != NULL)
			printf("  %zu bytes held\n", held);
		T_CHECK(held < (2u << 20));
	}
	buf_free(&r.data);
	free(msg);
}

static void
test_session_txn_block_timeout(void)
{
	run_block(false);
}

static void
test_session_txn_block_timeout_tls(void)
{
	run_block(true);
}

/* The peer answers MAIL and RCPT, then hangs up: FAILED, then on_done. */
static void
test_session_txn_close_after_rcpt(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PIPE,
		S_READ,
		S_READ,
		S_READ,
		{ P_SEND_CLOSE, "250 ok\r\n250 2.1.5 ok\r\n" },
	};
	struct run_txn rt;
	struct run_opts o = { .mode = SMTP_TLS_NONE,
		.timeout_ms = 5000,
		.txns = &rt.t,
		.ntxn = 1 };
	struct run r;

	run_txn_init(&rt, TXN_MSG, strlen(TXN_MSG), 1);
	run_session(&r, steps, &o);
	run_txn_expect(&r, "txn:failed|done:closed",
	    "EHLO client.test|MAIL FROM:<a@x>|RCPT TO:<b@y>|DATA");
	T_CHECK(r.res.error == SMTP_ERR_CLOSED);
	if (r.res.phase != SMTP_PHASE_DATA)
		run_print(&r);
	T_CHECK(r.res.phase == SMTP_PHASE_DATA);
	T_CHECK(rt.t.mail_reply.code == 250 && rt.replies[0].code == 250);
	T_STREQ(rt.replies[0].status, "2.1.5");
	T_CHECK(rt.t.data_reply.code == 0);
	T_CHECK(r.elapsed_ms < 2000);
	buf_free(&r.data);
}

/*
 * Two transactions on one connection: the first ends at a refused DATA,
 * so the second starts with RSET; the third follows a dot, so no RSET.
 */
static void
test_session_txn_reuse(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PIPE,
		S_READ,
		S_READ,
		S_READ,
		S_READ,
		{ P_SEND, "250 ok\r\n250 ok\r\n550 no\r\n451 4.3.0 later\r\n" },
		S_READ,
		{ P_SEND, "250 2.0.0 reset\r\n" },
		S_TXN1("250 ok\r\n"),
		S_TXN1("554 5.7.1 no\r\n"),
		S_QUIT_BYE,
	};
	struct run_txn rt[3];
	struct run_opts o = { .mode = SMTP_TLS_NONE,
		.timeout_ms = 5000,
		.txns = NULL,
		.ntxn = 3 };
	struct smtp_txn txns[3];
	struct run r;
	size_t i;

	run_txn_init(&rt[0], TXN_MSG, strlen(TXN_MSG), 2);
	run_txn_init(&rt[1], "one\r\n", 5, 1);
	run_txn_init(&rt[2], "two\r\n", 5, 1);
	for (i = 0; i < 3; i++)
		txns[i] = rt[i].t;
	o.txns = txns;
	run_session(&r, steps, &o);
	run_txn_expect(&r,
	    "txn:data-rejected|txn:ok|txn:data-rejected|done:none",
	    "EHLO client.test|MAIL FROM:<a@x>|RCPT TO:<b@y>|RCPT TO:<c@y>|"
	    "DATA|RSET|MAIL FROM:<a@x>|RCPT TO:<b@y>|DATA|MAIL FROM:<a@x>|"
	    "RCPT TO:<b@y>|DATA|QUIT");
	T_STREQ(buf_cstr(&r.data), "one\r\n.\r\ntwo\r\n.\r\n");
	T_CHECK(txns[0].rcpt_reply[1].code == 550);
	T_STREQ(txns[0].data_reply.status, "4.3.0");
	T_STREQ(txns[2].data_reply.status, "5.7.1");
	buf_free(&r.data);
}

/*
 * The dot's 250 and a 421 arrive together: done() says ok, the caller
 * starts another transaction on what is by then a closed session, and
 * learns FAILED for it before on_done.
 */
static void
test_session_txn_then_421(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		S_EHLO_PIPE,
		S_TXN1("250 ok\r\n421 4.3.2 going down\r\n"),
		{ P_STALL, NULL },
	};
	struct run_txn rt[2];
	struct smtp_txn txns[2];
	struct run_opts o = { .mode = SMTP_TLS_NONE,
		.timeout_ms = 5000,
		.txns = txns,
		.ntxn = 2 };
	struct run r;

	run_txn_init(&rt[0], TXN_MSG, strlen(TXN_MSG), 1);
	run_txn_init(&rt[1], TXN_MSG, strlen(TXN_MSG), 1);
	txns[0] = rt[0].t;
	txns[1] = rt[1].t;
	rt[1].replies[0].code = 999;
	run_session(&r, steps, &o);
	run_txn_expect(&r, "txn:ok|txn:failed|done:reply",
	    "EHLO client.test|MAIL FROM:<a@x>|RCPT TO:<b@y>|DATA");
	T_CHECK(r.res.reply_code == 421 && r.res.phase == SMTP_PHASE_READY);
	T_CHECK(rt[1].replies[0].code == 0);
	buf_free(&r.data);
}

/* Refused before sending: done() still comes from the loop. */
static void
test_session_txn_local_refusal(void)
{
	static const struct peer_step steps[] = {
		S_GREET,
		S_READ,
		{ P_SEND, "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n" },
		S_QUIT_BYE,
	};
	struct run_txn rt;
	struct run_opts o = { .mode = SMTP_TLS_NONE,
		.timeout_ms = 5000,
		.txns = &rt.t,
		.ntxn = 1 };
	struct run r;

	run_txn_init(&rt, TXN_MSG, strlen(TXN_MSG), 1);
	run_session(&r, steps, &o);
	run_txn_expect(
	    &r, "txn:data-rejected|done:none", "EHLO client.test|QUIT");
	T_CHECK(rt.t.data_reply.code == 552 && rt.replies[0].code == 552);
	T_STREQ(rt.t.data_reply.status, "5.3.4");
	buf_free(&r.data);
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
	T_RUN(test_txn_table);
	T_RUN(test_txn_details);
	T_RUN(test_body_stuffing);
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
	T_RUN(test_session_txn_stuffing);
	T_RUN(test_session_txn_no_crlf);
	T_RUN(test_session_txn_5mb);
	T_RUN(test_session_txn_5mb_tls);
	T_RUN(test_session_txn_stall_after_354);
	T_RUN(test_session_txn_block_timeout);
	T_RUN(test_session_txn_block_timeout_tls);
	T_RUN(test_session_txn_close_after_rcpt);
	T_RUN(test_session_txn_reuse);
	T_RUN(test_session_txn_local_refusal);
	T_RUN(test_session_txn_then_421);
	T_EXIT();
}
