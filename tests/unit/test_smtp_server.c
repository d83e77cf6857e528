/*
 * test_smtp_server: the server side of the SMTP layer, without sockets.
 *
 * Two parts: the command parser (a table of lines and what they parse to,
 * summarised as one string, or the reply they earn), and the server state
 * machine replayed with scripted client input and caller events. Each
 * dialogue is data: the client's chunks and events in, the exact replies
 * and actions out. Every dialogue is replayed twice: in the chunks as
 * written and one octet at a time, which must not change a thing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_server.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- command parser ------------------------------------------------- */

struct cmd_case {
	const char *line;
	bool utf8;
	const char *want; /* summary, or "E<code> <esc>" */
};

static const struct cmd_case cmd_cases[] = {
	{ "HELO client.example", false, "HELO arg=client.example" },
	{ "ehlo client.example", false, "EHLO arg=client.example" },
	{ "EHLO [192.0.2.1]", false, "EHLO arg=[192.0.2.1]" },
	{ "EHLO [IPv6:2001:db8::1]", false, "EHLO arg=[IPv6:2001:db8::1]" },
	{ "EHLO my_host", false, "EHLO arg=my_host" },
	{ "EHLO", false, "E501 5.5.4" },
	{ "EHLO bad..name", false, "E501 5.5.4" },
	{ "EHLO -bad.example", false, "E501 5.5.4" },
	{ "EHLO [300.1.1.1]", false, "E501 5.5.4" },
	{ "EHLO [x-tag:abc]", false, "EHLO arg=[x-tag:abc]" },
	{ "EHLO a b", false, "E501 5.5.4" },
	{ "EHLO client.example   ", false, "EHLO arg=client.example" },
	{ "MAIL FROM:<a@b.example>", false, "MAIL path=a@b.example" },
	{ "mail from:<a@b.example>", false, "MAIL path=a@b.example" },
	{ "MAIL FROM: <a@b.example>", false, "MAIL path=a@b.example" },
	{ "MAIL FROM:<>", false, "MAIL path=" },
	{ "MAIL FROM:a@b.example", false, "E501 5.1.7" },
	{ "MAIL FROM:<a@b.example", false, "E501 5.1.7" },
	{ "MAIL TO:<a@b.example>", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example>x", false, "E501 5.5.4" },
	{ "MAIL FROM:<@r1.example,@r2.example:a@b.example>", false,
	    "MAIL path=a@b.example" },
	{ "MAIL FROM:<@r1.example:>", false, "E501 5.1.7" },
	{ "MAIL FROM:<@r1..example:a@b.example>", false, "E501 5.1.7" },
	{ "MAIL FROM:<\"john doe\"@b.example>", false,
	    "MAIL path=\"john doe\"@b.example" },
	{ "MAIL FROM:<\"a>b\"@b.example>", false,
	    "MAIL path=\"a>b\"@b.example" },
	{ "MAIL FROM:<\"a\\\"b\"@b.example>", false,
	    "MAIL path=\"a\\\"b\"@b.example" },
	{ "MAIL FROM:<\"unterminated@b.example>", false, "E501 5.1.7" },
	{ "MAIL FROM:<a@[192.0.2.1]>", false, "MAIL path=a@[192.0.2.1]" },
	{ "MAIL FROM:<a@[IPv6:::1]>", false, "MAIL path=a@[IPv6:::1]" },
	{ "MAIL FROM:<a@[IPv6:zz]>", false, "E501 5.1.7" },
	{ "MAIL FROM:<a..b@b.example>", false, "E501 5.1.7" },
	{ "MAIL FROM:<.a@b.example>", false, "E501 5.1.7" },
	{ "MAIL FROM:<a@b_c.example>", false, "E501 5.1.7" },
	{ "MAIL FROM:<a@>", false, "E501 5.1.7" },
	{ "MAIL FROM:<a>", false, "E501 5.1.7" },
	{ "MAIL FROM:<a b@c.example>", false, "E501 5.1.7" },
	{ "MAIL FROM:<a@b.example> SIZE=1000", false,
	    "MAIL path=a@b.example size=1000" },
	{ "MAIL FROM:<a@b.example> SIZE=99999999999999999999", false,
	    "MAIL path=a@b.example size=18446744073709551615" },
	{ "MAIL FROM:<a@b.example> SIZE=123456789012345678901", false,
	    "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> SIZE=", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> SIZE", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> SIZE=1x", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> BODY=8BITMIME", false,
	    "MAIL path=a@b.example body=8" },
	{ "MAIL FROM:<a@b.example> body=7bit", false,
	    "MAIL path=a@b.example body=7" },
	{ "MAIL FROM:<a@b.example> BODY=BINARYMIME", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ+2B1", false,
	    "MAIL path=a@b.example ret=HDRS envid=QQ+1" },
	{ "MAIL FROM:<a@b.example> RET=FULL", false,
	    "MAIL path=a@b.example ret=FULL" },
	{ "MAIL FROM:<a@b.example> RET=ALL", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> ENVID=a+2", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> ENVID=a+2b", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> ENVID=a+00", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> ENVID=a+0A", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> AUTH=<>", false, "MAIL path=a@b.example" },
	{ "MAIL FROM:<a@b.example> SMTPUTF8", false,
	    "MAIL path=a@b.example utf8" },
	{ "MAIL FROM:<a@b.example> SMTPUTF8=yes", false, "E501 5.5.4" },
	{ "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", false,
	    "MAIL path=j\xc3\xb6rg@b.example utf8" },
	{ "MAIL FROM:<a@\xc3\xa4.example> SMTPUTF8", false,
	    "MAIL path=a@\xc3\xa4.example utf8" },
	{ "MAIL FROM:<j\xc3\xb6rg@b.example>", false, "E553 5.6.7" },
	{ "MAIL FROM:<j\xc3rg@b.example> SMTPUTF8", false, "E501 5.1.7" },
	{ "MAIL FROM:<j\xed\xa0\x80@b.example> SMTPUTF8", false, "E501 5.1.7" },
	{ "MAIL FROM:<j\xc0\xaf@b.example> SMTPUTF8", false, "E501 5.1.7" },
	{ "MAIL FROM:<a@b.example> XFOO=1", false, "E555 5.5.4" },
	{ "MAIL FROM:<a@b.example> NOTIFY=NEVER", false, "E555 5.5.4" },
	{ "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example> =x", false, "E501 5.5.4" },
	{ "MAIL FROM:<a@b.example>  SIZE=5   BODY=7BIT", false,
	    "MAIL path=a@b.example size=5 body=7" },
	{ "RCPT TO:<c@d.example>", false, "RCPT path=c@d.example" },
	{ "RCPT TO:<>", false, "E501 5.1.3" },
	{ "RCPT TO:<Postmaster>", false, "RCPT path=Postmaster postmaster" },
	{ "RCPT TO:<bob>", false, "E501 5.1.3" },
	{ "RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE", false,
	    "RCPT path=c@d.example notify=SF" },
	{ "RCPT TO:<c@d.example> NOTIFY=delay", false,
	    "RCPT path=c@d.example notify=D" },
	{ "RCPT TO:<c@d.example> NOTIFY=NEVER", false,
	    "RCPT path=c@d.example notify=N" },
	{ "RCPT TO:<c@d.example> NOTIFY=NEVER,DELAY", false, "E501 5.5.4" },
	{ "RCPT TO:<c@d.example> NOTIFY=SUCCESS,", false, "E501 5.5.4" },
	{ "RCPT TO:<c@d.example> NOTIFY=SOMETIMES", false, "E501 5.5.4" },
	{ "RCPT TO:<c@d.example> ORCPT=rfc822;x+2By@d.example", false,
	    "RCPT path=c@d.example orcpt=rfc822;x+2By@d.example "
	    "orcpt_addr=x+y@d.example" },
	{ "RCPT TO:<c@d.example> ORCPT=rfc822", false, "E501 5.5.4" },
	{ "RCPT TO:<c@d.example> ORCPT=;x@y", false, "E501 5.5.4" },
	{ "RCPT TO:<c@d.example> ORCPT=rfc822;", false, "E501 5.5.4" },
	{ "RCPT TO:<c@d.example> ORCPT=rfc822;a+ZZ", false, "E501 5.5.4" },
	{ "RCPT TO:<c@d.example> RET=FULL", false, "E555 5.5.4" },
	{ "RCPT TO:<j\xc3\xb6rg@d.example>", false, "E553 5.6.7" },
	{ "RCPT TO:<j\xc3\xb6rg@d.example>", true,
	    "RCPT path=j\xc3\xb6rg@d.example" },
	{ "DATA", false, "DATA" },
	{ "DATA now", false, "E501 5.5.4" },
	{ "RSET", false, "RSET" },
	{ "NOOP", false, "NOOP" },
	{ "NOOP anything at all", false, "NOOP arg=anything at all" },
	{ "QUIT", false, "QUIT" },
	{ "VRFY bob", false, "VRFY arg=bob" },
	{ "VRFY", false, "E501 5.5.4" },
	{ "EXPN list", false, "EXPN arg=list" },
	{ "HELP", false, "HELP" },
	{ "STARTTLS", false, "STARTTLS" },
	{ "STARTTLS now", false, "E501 5.5.4" },
	{ "AUTH PLAIN", false, "AUTH mech=PLAIN" },
	{ "auth login dXNlcg==", false, "AUTH mech=LOGIN initial=dXNlcg==" },
	{ "AUTH PLAIN =", false, "AUTH mech=PLAIN initial==" },
	{ "AUTH", false, "E501 5.5.4" },
	{ "AUTH PL*IN", false, "E501 5.5.4" },
	{ "AUTH PLAIN a b", false, "E501 5.5.4" },
	{ "AUTH ABCDEFGHIJKLMNOPQRSTU", false, "E501 5.5.4" },
	{ "", false, "E500 5.5.1" },
	{ "BDAT 100 LAST", false, "E500 5.5.1" },
	{ "GET / HTTP/1.1", false, "E500 5.5.1" },
	{ "MAILFROM:<a@b>", false, "E500 5.5.1" },
	{ "NOOP\tx", false, "E500 5.5.2" },
	{ "NOOP \x7f", false, "E500 5.5.2" },
	{ "NOOP a\rb", false, "E500 5.5.2" },
};

/* One line that says what a parsed command holds. */
static void
cmd_summary(const struct smtp_cmd *c, int rc, struct buf *b)
{
	static const char *const bodies[] = { "", "7", "8" };
	static const char *const rets[] = { "", "FULL", "HDRS" };

	if (rc == -1) {
		buf_printf(b, "E%d %s", c->code, c->esc);
		return;
	}
	buf_adds(b, smtp_verb_str(c->verb));
	if (c->arg[0] != '\0')
		buf_printf(b, " arg=%s", c->arg);
	if (c->verb == SMTP_VERB_MAIL || c->verb == SMTP_VERB_RCPT)
		buf_printf(b, " path=%s", c->path);
	if (c->postmaster)
		buf_adds(b, " postmaster");
	if (c->has_size)
		buf_printf(b, " size=%llu", (unsigned long long)c->size);
	if (c->body != SMTP_BODY_UNSET)
		buf_printf(b, " body=%s", bodies[c->body]);
	if (c->smtputf8)
		buf_adds(b, " utf8");
	if (c->ret != SMTP_RET_UNSET)
		buf_printf(b, " ret=%s", rets[c->ret]);
	if (c->has_envid)
		buf_printf(b, " envid=%s", c->envid);
	if (c->notify != 0)
		buf_printf(b, " notify=%s%s%s%s",
		    c->notify & SMTP_NOTIFY_NEVER ? "N" : "",
		    c->notify & SMTP_NOTIFY_SUCCESS ? "S" : "",
		    c->notify & SMTP_NOTIFY_FAILURE ? "F" : "",
		    c->notify & SMTP_NOTIFY_DELAY ? "D" : "");
	if (c->has_orcpt)
		buf_printf(
		    b, " orcpt=%s orcpt_addr=%s", c->orcpt, c->orcpt_addr);
	if (c->mech[0] != '\0')
		buf_printf(b, " mech=%s", c->mech);
	if (c->has_initial)
		buf_printf(b, " initial=%s", c->initial);
}

static void
test_cmd_table(void)
{
	static struct smtp_cmd c;
	struct buf b;
	size_t i;
	int rc;

	buf_init(&b, 4096);
	for (i = 0; i < NELEM(cmd_cases); i++) {
		const struct cmd_case *k = &cmd_cases[i];

		buf_reset(&b);
		rc = smtp_cmd_parse(&c, k->line, strlen(k->line), k->utf8);
		cmd_summary(&c, rc, &b);
		if (strcmp(buf_cstr(&b), k->want) != 0) {
			printf("  line \"%s\": got \"%s\", want \"%s\"\n",
			    k->line, buf_cstr(&b), k->want);
			T_CHECK(0);
		}
	}
	buf_free(&b);
}

/* Lengths: the line cap, the path cap, the ENVID and ORCPT caps. */
static void
test_cmd_limits(void)
{
	static struct smtp_cmd c;
	char line[SMTP_CMD_LINE_MAX + 64];
	size_t n;

	/* A NOOP exactly at the cap parses; one octet more does not. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "NOOP ", 5);
	T_CHECK(smtp_cmd_parse(&c, line, SMTP_CMD_LINE_MAX, false) == 0);
	T_CHECK(smtp_cmd_parse(&c, line, SMTP_CMD_LINE_MAX + 1, false) == -1);
	T_CHECK(c.code == 500 && strcmp(c.esc, "5.5.2") == 0);
	/* A path of 256 octets with its brackets is fine, 257 is not. */
	n = (size_t)snprintf(
	    line, sizeof(line), "RCPT TO:<%0*d@d.example>", 256 - 2 - 10, 0);
	T_CHECK(smtp_cmd_parse(&c, line, n, false) == 0);
	n = (size_t)snprintf(line, sizeof(line), "RCPT TO:<%0*d@d.example>",
	    256 - 2 - 10 + 1, 0);
	T_CHECK(smtp_cmd_parse(&c, line, n, false) == -1 && c.code == 501);
	/* ENVID: 100 characters, not 101. */
	n = (size_t)snprintf(
	    line, sizeof(line), "MAIL FROM:<a@b.example> ENVID=%0*d", 100, 0);
	T_CHECK(smtp_cmd_parse(&c, line, n, false) == 0 && c.has_envid);
	n = (size_t)snprintf(
	    line, sizeof(line), "MAIL FROM:<a@b.example> ENVID=%0*d", 101, 0);
	T_CHECK(smtp_cmd_parse(&c, line, n, false) == -1 && c.code == 501);
	/* A label of 64 octets is too long. */
	n = (size_t)snprintf(line, sizeof(line), "EHLO %0*d.example", 64, 0);
	T_CHECK(smtp_cmd_parse(&c, line, n, false) == -1);
	/* The line need not be NUL-terminated: parse a prefix. */
	T_CHECK(smtp_cmd_parse(&c, "QUITTER", 4, false) == 0 &&
	    c.verb == SMTP_VERB_QUIT);
	/* A NUL in the line is a control character. */
	T_CHECK(
	    smtp_cmd_parse(&c, "NOOP a\0b", 8, false) == -1 && c.code == 500);
}

static void
test_xtext(void)
{
	char out[16];

	T_CHECK(smtp_xtext_decode(out, sizeof(out), "a+2Bb", 5) == 3);
	T_STREQ(out, "a+b");
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "+3D", 3) == 1);
	T_STREQ(out, "=");
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "", 0) == 0);
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "a=b", 3) == -1);
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "a b", 3) == -1);
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "+2b", 3) == -1);
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "+2", 2) == -1);
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "+", 1) == -1);
	T_CHECK(smtp_xtext_decode(out, sizeof(out), "+00", 3) == -1);
	T_CHECK(smtp_xtext_decode(out, 4, "abcd", 4) == -1);
	T_CHECK(smtp_xtext_decode(out, 4, "abc", 3) == 3);
}

/* RFC 3461 §4.2: ORCPT is kept as received and decoded once, for DSNs. */
static void
test_orcpt(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "rfc822;bob+2Bx@example.org", "rfc822;bob+x@example.org" },
		{ "rfc822;a+3Db@example.org", "rfc822;a=b@example.org" },
		{ "rfc822;plain@example.org", "rfc822;plain@example.org" },
		{ "rfc822;bad+2b", "rfc822;bad+2b" },
		{ "no-type", "no-type" },
		{ "x;", "x;" },
	};
	struct smtp_cmd c;
	const char *line = "RCPT TO:<bob+x@example.org> "
	                   "ORCPT=rfc822;bob+2Bx@example.org";
	size_t i;
	char *s;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = smtp_orcpt_decode(cases[i].in);
		T_STREQ(s, cases[i].want);
		free(s);
	}
	/* The parser keeps the value as given, and its address decoded. */
	T_CHECK(smtp_cmd_parse(&c, line, strlen(line), false) == 0);
	T_CHECK(c.has_orcpt);
	T_STREQ(c.orcpt, "rfc822;bob+2Bx@example.org");
	T_STREQ(c.orcpt_addr, "bob+x@example.org");
}

/* ---- server state machine ------------------------------------------ */

#define F_RELAY 0x1 /* client in relay_networks */
#define F_TLS   0x2 /* STARTTLS offered */
#define F_AUTH  0x4 /* AUTH offered (after TLS) */
/* The chunking is the point of the case: no octet-by-octet replay. */
#define F_CHUNKS 0x8

#define GREET "220 mx.test ESMTP danerelay"
#define EHLO_BASE                                                     \
	"250-mx.test|250-PIPELINING|250-SIZE 10000|250-8BITMIME|250-" \
	"ENHANCEDSTATUSCODES|250-SMTPUTF8|"
#define EHLO_PLAIN    EHLO_BASE "250 DSN"
#define EHLO_STARTTLS EHLO_BASE "250-DSN|250 STARTTLS"
#define EHLO_AUTH     EHLO_BASE "250-DSN|250 AUTH PLAIN LOGIN"
#define OK_MAIL       "250 2.1.0 Ok"
#define OK_RCPT       "250 2.1.5 Ok"
#define GO_AHEAD      "354 End data with <CR><LF>.<CR><LF>"
#define QUEUED        "250 2.0.0 Ok: queued as Q1"
#define BYE           "221 2.0.0 Bye"
#define TXN \
	"MAIL FROM:<a@b.example>\r\n", "RCPT TO:<c@d.example>\r\n", "DATA\r\n"
#define TXN_R OK_MAIL "|" OK_RCPT "|" GO_AHEAD
/* base64 of "\0alice\0secret", "\0alice\0wrong", "alice", "secret" */
#define PLAIN_OK  "AGFsaWNlAHNlY3JldA=="
#define PLAIN_BAD "AGFsaWNlAHdyb25n"
#define B64_ALICE "YWxpY2U="
#define B64_PASS  "c2VjcmV0"

struct fsm_case {
	const char *name;
	unsigned flags;
	size_t max_rcpt; /* 0: 100 */
	const char *script[24];
	const char *want;
	const char *body; /* message after our Received header, or NULL */
};

static const struct fsm_case fsm_cases[] = {
	{ "basic", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "Subject: hi\r\n\r\nbody\r\n.\r\n",
	        "!commit-ok", "QUIT\r\n" },
	    GREET "|" EHLO_PLAIN "|" TXN_R "|<commit>|" QUEUED "|" BYE
	          "|<close>",
	    "Subject: hi\r\n\r\nbody\r\n" },
	{ "pipelined", F_RELAY, 0,
	    { "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT "
	      "TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\nDATA\r\n",
	        "x\r\n.\r\nQUIT\r\n", "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL "|" OK_RCPT "|" OK_RCPT
	          "|" GO_AHEAD "|<commit>|" QUEUED "|" BYE "|<close>",
	    "x\r\n" },
	{ "helo", F_RELAY, 0,
	    { "HELO c.example\r\n", TXN, ".\r\n", "!commit-ok" },
	    GREET "|250 mx.test|" TXN_R "|<commit>|" QUEUED, "" },
	{ "no ehlo", F_RELAY, 0,
	    { "MAIL FROM:<a@b.example>\r\n", "RCPT TO:<c@d.example>\r\n",
	        "DATA\r\n" },
	    GREET "|503 5.5.1 Send HELO/EHLO first|503 5.5.1 Need MAIL "
	          "command|503 5.5.1 Need MAIL command",
	    NULL },
	{ "bad sequence", F_RELAY, 0,
	    { "EHLO c.example\r\n", "RCPT TO:<c@d.example>\r\n",
	        "MAIL FROM:<a@b.example>\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "DATA\r\n", "RSET\r\n", "DATA\r\n" },
	    GREET "|" EHLO_PLAIN "|503 5.5.1 Need MAIL command|" OK_MAIL
	          "|503 5.5.1 Nested MAIL command|554 5.5.1 No valid "
	          "recipients|250 2.0.0 Ok|503 5.5.1 Need MAIL command",
	    NULL },
	{ "relay denied", 0, 0,
	    { "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "RCPT TO:<c@d.example>\r\n", "DATA\r\n" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL
	          "|554 5.7.1 Relay access denied|554 5.5.1 No valid "
	          "recipients",
	    NULL },
	{ "relay denied with tls, no auth", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "RCPT TO:<c@d.example>\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH "|" OK_MAIL
	          "|554 5.7.1 Relay access denied",
	    NULL },
	{ "auth before tls", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "AUTH PLAIN " PLAIN_OK "\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|530 5.7.0 Must issue a STARTTLS command first",
	    NULL },
	{ "auth not configured", F_TLS, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH PLAIN " PLAIN_OK "\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_BASE
	          "250 DSN|502 5.5.1 AUTH not offered",
	    NULL },
	{ "auth plain after tls", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH PLAIN " PLAIN_OK "\r\n", "!auth-ok",
	        TXN, ".\r\n", "!commit-ok" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|<auth alice:secret>|235 2.7.0 Authentication "
	          "successful|" TXN_R "|<commit>|" QUEUED,
	    "" },
	{ "auth plain empty challenge", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH PLAIN\r\n", PLAIN_OK "\r\n",
	        "!auth-ok", "AUTH PLAIN\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|334 |<auth alice:secret>|235 2.7.0 Authentication "
	          "successful|503 5.5.1 Already authenticated",
	    NULL },
	{ "auth login", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH LOGIN\r\n", B64_ALICE "\r\n",
	        B64_PASS "\r\n", "!auth-ok" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|334 VXNlcm5hbWU6|334 UGFzc3dvcmQ6|<auth "
	          "alice:secret>|235 2.7.0 Authentication successful",
	    NULL },
	{ "auth login initial", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH LOGIN " B64_ALICE "\r\n",
	        B64_PASS "\r\n", "!auth-ok" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|334 UGFzc3dvcmQ6|<auth alice:secret>|235 2.7.0 "
	          "Authentication successful",
	    NULL },
	{ "auth fail three times", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH PLAIN " PLAIN_BAD "\r\n",
	        "!auth-fail", "AUTH PLAIN " PLAIN_BAD "\r\n", "!auth-fail",
	        "AUTH PLAIN " PLAIN_BAD "\r\n", "!auth-fail", "NOOP\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|<auth alice:wrong>|535 5.7.8 Authentication credentials "
	          "invalid|<auth alice:wrong>|535 5.7.8 Authentication "
	          "credentials invalid|<auth alice:wrong>|535 5.7.8 "
	          "Authentication credentials invalid|421 4.7.0 mx.test Too "
	          "many failed authentication attempts|<close>",
	    NULL },
	/* RFC 4954 §6: busy or locked out, 454; it counts as a failure. */
	{ "auth temporary failure", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH PLAIN " PLAIN_OK "\r\n",
	        "!auth-temp", "AUTH PLAIN " PLAIN_BAD "\r\n", "!auth-fail",
	        "AUTH PLAIN " PLAIN_OK "\r\n", "!auth-temp", "NOOP\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|<auth alice:secret>|454 4.7.0 Temporary authentication "
	          "failure|<auth alice:wrong>|535 5.7.8 Authentication "
	          "credentials invalid|<auth alice:secret>|454 4.7.0 "
	          "Temporary authentication failure|421 4.7.0 mx.test Too "
	          "many failed authentication attempts|<close>",
	    NULL },
	{ "auth cancel and garbage", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH LOGIN\r\n", "*\r\n",
	        "AUTH PLAIN\r\n", "!!!!\r\n", "AUTH PLAIN =\r\n",
	        "AUTH CRAM-MD5\r\n", "AUTH PLAIN AGFsaWNl\r\n",
	        "AUTH PLAIN " PLAIN_BAD "=\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|334 VXNlcm5hbWU6|501 5.0.0 Authentication "
	          "cancelled|334 |501 5.5.2 Cannot decode response|501 "
	          "5.5.2 Invalid PLAIN response|504 5.5.4 Unrecognized "
	          "authentication type|501 5.5.2 Invalid PLAIN "
	          "response|501 5.5.2 Cannot decode response",
	    NULL },
	{ "auth authzid", F_TLS | F_AUTH, 0,
	    /* "bob\0alice\0secret", then "alice\0alice\0secret" */
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n",
	        "AUTH PLAIN YWxpY2UAYWxpY2UAc2VjcmV0\r\n", "!auth-ok" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|535 5.7.8 Authentication credentials invalid|<auth "
	          "alice:secret>|235 2.7.0 Authentication successful",
	    NULL },
	{ "auth in transaction", F_TLS | F_AUTH | F_RELAY, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "AUTH PLAIN " PLAIN_OK "\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH "|" OK_MAIL
	          "|503 5.5.1 AUTH not allowed in a mail "
	          "transaction",
	    NULL },
	{ "starttls resets the session", F_TLS | F_RELAY, 0,
	    { "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "STARTTLS\r\n", "!tls", "MAIL FROM:<a@b.example>\r\n",
	        "STARTTLS\r\n" },
	    GREET "|" EHLO_STARTTLS "|" OK_MAIL
	          "|220 2.0.0 Ready to start TLS|<tls>|503 5.5.1 Send "
	          "HELO/EHLO first|503 5.5.1 TLS already active",
	    NULL },
	{ "starttls with pipelined junk", F_TLS | F_CHUNKS, 0,
	    { "EHLO c.example\r\n",
	        "STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n" },
	    GREET "|" EHLO_STARTTLS
	          "|421 4.7.0 mx.test Command pipelined after STARTTLS|<close>",
	    NULL },
	{ "starttls not offered", 0, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n" },
	    GREET "|" EHLO_PLAIN "|502 5.5.1 STARTTLS not offered", NULL },
	{ "starttls before ehlo", F_TLS, 0,
	    { "STARTTLS\r\n", "HELO c.example\r\n", "STARTTLS\r\n" },
	    GREET "|503 5.5.1 Send EHLO first|250 mx.test|503 5.5.1 Send EHLO "
	          "first",
	    NULL },
	{ "too many recipients", F_RELAY, 2,
	    { "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "RCPT TO:<r1@d.example>\r\nRCPT TO:<r2@d.example>\r\nRCPT "
	        "TO:<r3@d.example>\r\n",
	        "DATA\r\n", ".\r\n", "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL "|" OK_RCPT "|" OK_RCPT
	          "|452 4.5.3 Too many recipients|" GO_AHEAD
	          "|<commit>|" QUEUED,
	    "" },
	{ "duplicate recipient is kept once", F_RELAY, 2,
	    { "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "RCPT TO:<r1@d.example>\r\nRCPT TO:<r1@d.example>\r\nRCPT "
	        "TO:<r2@d.example>\r\n" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL "|" OK_RCPT "|" OK_RCPT
	          "|" OK_RCPT,
	    NULL },
	{ "size announced too big", F_RELAY, 0,
	    { "EHLO c.example\r\n", "MAIL FROM:<a@b.example> SIZE=10001\r\n",
	        "MAIL FROM:<a@b.example> SIZE=10000\r\n" },
	    GREET "|" EHLO_PLAIN
	          "|552 5.3.4 Message size exceeds fixed maximum message "
	          "size|" OK_MAIL,
	    NULL },
	{ "oversize message", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "!big", "more\r\n.\r\n", "NOOP\r\n" },
	    GREET "|" EHLO_PLAIN "|" TXN_R
	          "|552 5.3.4 Message size exceeds fixed maximum message "
	          "size|250 2.0.0 Ok",
	    NULL },
	{ "dot-stuffing", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN,
	        "..leading dot\r\n\r\n..\r\n. \r\nmid.dle\r\n.x\r\n.\r\n",
	        "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" TXN_R "|<commit>|" QUEUED,
	    ".leading dot\r\n\r\n.\r\n \r\nmid.dle\r\nx\r\n" },
	{ "end split over chunks", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "a\r", "\n", ".", "\r", "\n",
	        "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" TXN_R "|<commit>|" QUEUED, "a\r\n" },
	{ "empty message", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, ".\r\n", "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" TXN_R "|<commit>|" QUEUED, "" },
	{ "8-bit and NUL data kept as is", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "caf\xc3\xa9\r\n\x01x\r\n.\r\n",
	        "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" TXN_R "|<commit>|" QUEUED,
	    "caf\xc3\xa9\r\n\x01x\r\n" },
	{ "bare lf in data", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "a\nb\r\n.\r\n", "NOOP\r\n" },
	    GREET "|" EHLO_PLAIN "|" TXN_R
	          "|554 5.6.0 Message contains bare CR or LF; lines must end "
	          "with CRLF (RFC 5321 2.3.8)|250 2.0.0 Ok",
	    NULL },
	{ "smuggling: lf dot crlf does not end data", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN,
	        "a\n.\r\nMAIL FROM:<x@y.example>\r\n.\r\n" },
	    GREET "|" EHLO_PLAIN "|" TXN_R
	          "|554 5.6.0 Message contains bare CR or LF; lines must end "
	          "with CRLF (RFC 5321 2.3.8)",
	    NULL },
	{ "bare cr in data", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "a\rb\r\n.\r\n" },
	    GREET "|" EHLO_PLAIN "|" TXN_R
	          "|554 5.6.0 Message contains bare CR or LF; lines must end "
	          "with CRLF (RFC 5321 2.3.8)",
	    NULL },
	{ "dot cr x in data", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, ".\rx\r\n.\r\n" },
	    GREET "|" EHLO_PLAIN "|" TXN_R
	          "|554 5.6.0 Message contains bare CR or LF; lines must end "
	          "with CRLF (RFC 5321 2.3.8)",
	    NULL },
	{ "bare lf command", F_RELAY, 0, { "EHLO c.example\n", "NOOP\r\n" },
	    GREET "|500 5.5.2 Bare LF received; lines must end with CRLF|250 "
	          "2.0.0 Ok",
	    NULL },
	{ "line too long", F_RELAY, 0, { "!longline", "NOOP\r\n" },
	    GREET "|500 5.5.2 Line too long|<close>", NULL },
	{ "longest line", F_RELAY, 0, { "!longestline", "NOOP\r\n" },
	    GREET "|250 2.0.0 Ok|250 2.0.0 Ok", NULL },
	{ "sasl line too long", F_TLS | F_AUTH, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!tls",
	        "EHLO c.example\r\n", "AUTH PLAIN\r\n", "!longsasl" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|" EHLO_AUTH
	          "|334 |500 5.5.6 Authentication exchange line is too "
	          "long|<close>",
	    NULL },
	{ "endless line", F_RELAY, 0, { "!endless", "NOOP\r\n" },
	    GREET "|500 5.5.2 Line too long|<close>", NULL },
	{ "dsn and smtputf8", F_RELAY, 0,
	    { "EHLO c.example\r\n",
	        "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8 RET=HDRS "
	        "ENVID=E+2B1 BODY=8BITMIME\r\n",
	        "RCPT TO:<\xc3\xa5@d.example> NOTIFY=SUCCESS,DELAY "
	        "ORCPT=rfc822;x+2By@d.example\r\n",
	        "DATA\r\n", "Message-ID: <1@b.example>\r\n\r\nhi\r\n.\r\n",
	        "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL "|" OK_RCPT "|" GO_AHEAD
	          "|<commit>|" QUEUED,
	    "Message-ID: <1@b.example>\r\n\r\nhi\r\n" },
	{ "utf8 without smtputf8", F_RELAY, 0,
	    { "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "RCPT TO:<\xc3\xa5@d.example>\r\n" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL
	          "|553 5.6.7 Non-ASCII address needs SMTPUTF8 (RFC 6531)",
	    NULL },
	{ "params after helo", F_RELAY, 0,
	    { "HELO c.example\r\n", "MAIL FROM:<a@b.example> SIZE=10\r\n" },
	    GREET "|250 mx.test|555 5.5.4 Parameters need EHLO, not HELO",
	    NULL },
	{ "null sender and postmaster", F_RELAY, 0,
	    { "EHLO c.example\r\n", "MAIL FROM:<>\r\n",
	        "RCPT TO:<postmaster>\r\n", "RCPT TO:<>\r\n" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL
	          "|550 5.1.1 This relay has no local mailboxes|501 5.1.3 Bad "
	          "recipient address syntax",
	    NULL },
	/* RFC 7672 §2.2.2: no DANE for an address literal: refused at
	 * RCPT, never accepted and bounced later. */
	{ "address literal refused", F_RELAY, 0,
	    { "EHLO c.example\r\n", "MAIL FROM:<a@b.example>\r\n",
	        "RCPT TO:<u@[192.0.2.1]>\r\n",
	        "RCPT TO:<u@[IPv6:2001:db8::1]>\r\n",
	        "RCPT TO:<\"x@[192.0.2.1]\"@d.example>\r\n" },
	    GREET "|" EHLO_PLAIN "|" OK_MAIL
	          "|550 5.7.1 <u@[192.0.2.1]>: address literals are not "
	          "relayed: no DANE or MTA-STS authentication is possible for "
	          "them (RFC 7672 section 2.2.2)"
	          "|550 5.7.1 <u@[IPv6:2001:db8::1]>: address literals are not "
	          "relayed: no DANE or MTA-STS authentication is possible for "
	          "them (RFC 7672 section 2.2.2)|" OK_RCPT,
	    NULL },
	{ "misc commands", F_RELAY, 0,
	    { "NOOP\r\nVRFY bob\r\nEXPN list\r\nHELP\r\nFOO\r\n" },
	    GREET "|250 2.0.0 Ok|252 2.5.0 Cannot VRFY user, but will accept "
	          "message and attempt delivery|502 5.5.1 EXPN not "
	          "available|214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
	          "NOOP QUIT VRFY HELP STARTTLS AUTH|500 5.5.1 Command "
	          "unrecognized",
	    NULL },
	{ "commit fails", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "x\r\n.\r\n", "!commit-fail",
	        "RCPT TO:<c@d.example>\r\n" },
	    GREET "|" EHLO_PLAIN "|" TXN_R
	          "|<commit>|451 4.3.0 Message not stored, try again "
	          "later|503 5.5.1 Need MAIL command",
	    "x\r\n" },
	{ "second transaction", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "1\r\n.\r\n", "!commit-ok", TXN,
	        "2\r\n.\r\n", "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" TXN_R "|<commit>|" QUEUED "|" TXN_R
	          "|<commit>|" QUEUED,
	    "2\r\n" },
	{ "timeout", F_RELAY, 0, { "EHLO c.example\r\n", "!timeout" },
	    GREET "|" EHLO_PLAIN "|421 4.4.2 mx.test Timeout exceeded|<close>",
	    NULL },
	{ "timeout in tls handshake", F_TLS, 0,
	    { "EHLO c.example\r\n", "STARTTLS\r\n", "!timeout" },
	    GREET "|" EHLO_STARTTLS
	          "|220 2.0.0 Ready to start TLS|<tls>|<close>",
	    NULL },
	{ "shutdown while idle", F_RELAY, 0,
	    { "EHLO c.example\r\n", "!shutdown" },
	    GREET "|" EHLO_PLAIN "|421 4.3.2 mx.test Service shutting "
	          "down|<close>",
	    NULL },
	{ "shutdown during data", F_RELAY, 0,
	    { "EHLO c.example\r\n", TXN, "x\r\n", "!shutdown", ".\r\nQUIT\r\n",
	        "!commit-ok" },
	    GREET "|" EHLO_PLAIN "|" TXN_R "|<commit>|" QUEUED
	          "|421 4.3.2 mx.test Service shutting down|<close>",
	    "x\r\n" },
	{ "too many errors", F_RELAY, 0, { "!errors" },
	    GREET "|500 5.5.1 Command unrecognized|500 5.5.1 Command "
	          "unrecognized|500 5.5.1 Command unrecognized|500 5.5.1 "
	          "Command unrecognized|500 5.5.1 Command unrecognized|500 "
	          "5.5.1 Command unrecognized|500 5.5.1 Command "
	          "unrecognized|500 5.5.1 Command unrecognized|500 5.5.1 "
	          "Command unrecognized|500 5.5.1 Command unrecognized|500 "
	          "5.5.1 Command unrecognized|500 5.5.1 Command "
	          "unrecognized|500 5.5.1 Command unrecognized|500 5.5.1 "
	          "Command unrecognized|500 5.5.1 Command unrecognized|500 "
	          "5.5.1 Command unrecognized|500 5.5.1 Command "
	          "unrecognized|500 5.5.1 Command unrecognized|500 5.5.1 "
	          "Command unrecognized|500 5.5.1 Command unrecognized|421 "
	          "4.7.0 mx.test Too many errors|<close>",
	    NULL },
	{ "client closes", F_RELAY, 0,
	    { "EHLO c.example\r\n", "!closed", "NOOP\r\n" },
	    GREET "|" EHLO_PLAIN "|<close>", NULL },
};

struct replay {
	struct smtp_server *m;
	struct buf in;   /* client input not consumed yet */
	struct buf log;  /* replies and actions */
	struct buf body; /* message at the last commit */
	bool one_octet;  /* feed one octet at a time */
};

static void
replay_log(struct replay *r, const char *s, size_t n)
{
	if (r->log.len > 0)
		buf_addc(&r->log, '|');
	buf_add(&r->log, s, n);
}

/* Move the machine's output into the log, one entry per line. */
static void
replay_output(struct replay *r)
{
	size_t len;
	const char *out = smtp_server_output(r->m, &len), *end = out + len;
	const char *eol;

	while (out < end && (eol = strstr(out, "\r\n")) != NULL) {
		replay_log(r, out, (size_t)(eol - out));
		out = eol + 2;
	}
	T_CHECK(out == end);
	smtp_server_output_clear(r->m);
}

static void
replay_action(struct replay *r, const struct smtp_server_action *a)
{
	const struct smtp_server_txn *t;
	char auth[600];

	replay_output(r);
	switch (a->type) {
	case SMTP_SRV_ACT_START_TLS:
		replay_log(r, "<tls>", 5);
		break;
	case SMTP_SRV_ACT_AUTH:
		snprintf(
		    auth, sizeof(auth), "<auth %s:%s>", a->user, a->password);
		replay_log(r, auth, strlen(auth));
		break;
	case SMTP_SRV_ACT_COMMIT:
		t = smtp_server_txn(r->m);
		T_CHECK(t != NULL && t->len >= t->header_len);
		buf_reset(&r->body);
		buf_add(
		    &r->body, t->data + t->header_len, t->len - t->header_len);
		replay_log(r, "<commit>", 8);
		break;
	case SMTP_SRV_ACT_CLOSE:
		replay_log(r, "<close>", 7);
		break;
	default:
		break;
	}
}

static bool
replay_wants_input(const struct replay *r)
{
	enum smtp_server_phase p = smtp_server_phase(r->m);

	return p == SMTP_SRV_COMMAND || p == SMTP_SRV_SASL ||
	    p == SMTP_SRV_DATA;
}

/* Feed buffered input like the I/O layer does. */
static void
replay_pump(struct replay *r)
{
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_INPUT,
		.now = 1700000000 };
	struct smtp_server_action a;

	while (replay_wants_input(r) && r->in.len > 0) {
		ev.data = r->in.data;
		ev.len = r->in.len;
		smtp_server_step(r->m, &ev, &a);
		T_CHECK(a.consumed <= r->in.len);
		memmove(r->in.data, r->in.data + a.consumed,
		    r->in.len - a.consumed);
		r->in.len -= a.consumed;
		replay_action(r, &a);
		if (a.consumed == 0)
			break;
	}
}

static void
replay_input(struct replay *r, const char *s, size_t n)
{
	size_t i;

	if (!r->one_octet) {
		buf_add(&r->in, s, n);
		replay_pump(r);
		return;
	}
	for (i = 0; i < n; i++) {
		buf_addc(&r->in, s[i]);
		replay_pump(r);
	}
}

static void
replay_event(struct replay *r, enum smtp_server_event_type type, bool ok,
    const char *text)
{
	struct smtp_server_event ev = {
		.type = type, .ok = ok, .text = text, .now = 1700000000
	};
	struct smtp_server_action a;

	smtp_server_step(r->m, &ev, &a);
	replay_action(r, &a);
	replay_pump(r);
}

/* Generated input that would not fit the table. */
static bool
replay_special(struct replay *r, const char *s)
{
	struct buf b;
	bool done;
	int i;

	buf_init(&b, 64 * 1024);
	if (strcmp(s, "!big") == 0) {
		for (i = 0; i < 200; i++)
			buf_adds(&b,
			    "0123456789012345678901234567890123456789"
			    "012345678901234567890123456789\r\n");
	} else if (strcmp(s, "!longline") == 0) {
		buf_adds(&b, "NOOP ");
		for (i = 0; i < SMTP_CMD_LINE_MAX; i++)
			buf_addc(&b, 'x');
		buf_adds(&b, "\r\n");
	} else if (strcmp(s, "!longsasl") == 0) {
		for (i = 0; i < SMTP_CMD_AUTH_LINE_MAX + 4; i++)
			buf_addc(&b, 'A');
		buf_adds(&b, "\r\n");
	} else if (strcmp(s, "!longestline") == 0) {
		buf_adds(&b, "NOOP ");
		for (i = 0; i < SMTP_CMD_LINE_MAX - 5; i++)
			buf_addc(&b, 'x');
		buf_adds(&b, "\r\n");
	} else if (strcmp(s, "!endless") == 0) {
		for (i = 0; i < SMTP_CMD_LINE_MAX + 10; i++)
			buf_addc(&b, 'x');
	} else if (strcmp(s, "!errors") == 0) {
		for (i = 0; i < 25; i++)
			buf_adds(&b, "FOO\r\n");
	}
	done = b.len > 0;
	if (done)
		replay_input(r, b.data, b.len);
	buf_free(&b);
	return done;
}

static void
replay_step(struct replay *r, const char *s)
{
	static const struct {
		const char *name;
		enum smtp_server_event_type type;
		bool ok;
		const char *text;
	} evs[] = {
		{ "!tls", SMTP_SRV_EV_TLS_DONE, true, "TLSv1.3 with cipher X" },
		{ "!auth-ok", SMTP_SRV_EV_AUTH_RESULT, true, NULL },
		{ "!auth-fail", SMTP_SRV_EV_AUTH_RESULT, false, NULL },
		{ "!auth-temp", SMTP_SRV_EV_AUTH_TEMPFAIL, false, NULL },
		{ "!commit-ok", SMTP_SRV_EV_COMMITTED, true, "Q1" },
		{ "!commit-fail", SMTP_SRV_EV_COMMITTED, false, NULL },
		{ "!timeout", SMTP_SRV_EV_TIMEOUT, false, NULL },
		{ "!shutdown", SMTP_SRV_EV_SHUTDOWN, false, NULL },
		{ "!closed", SMTP_SRV_EV_CLOSED, false, NULL },
	};
	size_t i;

	for (i = 0; i < NELEM(evs); i++) {
		if (strcmp(s, evs[i].name) == 0) {
			replay_event(r, evs[i].type, evs[i].ok, evs[i].text);
			return;
		}
	}
	if (!replay_special(r, s))
		replay_input(r, s, strlen(s));
}

static struct smtp_server *
fsm_new(unsigned flags, size_t max_rcpt)
{
	struct smtp_server_params p = {
		.id = "test",
		.hostname = "mx.test",
		.client_ip = "192.0.2.7",
		.relay_allowed = (flags & F_RELAY) != 0,
		.tls_available = (flags & F_TLS) != 0,
		.auth_available = (flags & F_AUTH) != 0,
		.max_message_size = 10000,
		.max_recipients = max_rcpt != 0 ? max_rcpt : 100,
	};

	return smtp_server_new(&p);
}

static void
fsm_replay(const struct fsm_case *c, bool one_octet)
{
	struct replay r = { .one_octet = one_octet };
	struct smtp_server_event conn = { .type = SMTP_SRV_EV_CONNECTED };
	struct smtp_server_action a;
	size_t i;

	r.m = fsm_new(c->flags, c->max_rcpt);
	buf_init(&r.in, 1024 * 1024);
	buf_init(&r.log, 64 * 1024);
	buf_init(&r.body, 64 * 1024);
	smtp_server_step(r.m, &conn, &a);
	replay_action(&r, &a);
	for (i = 0; i < NELEM(c->script) && c->script[i] != NULL; i++)
		replay_step(&r, c->script[i]);
	if (strcmp(buf_cstr(&r.log), c->want) != 0 ||
	    (c->body != NULL && strcmp(buf_cstr(&r.body), c->body) != 0)) {
		printf("  case \"%s\"%s:\n    got  %s\n    want %s\n", c->name,
		    one_octet ? " (octet by octet)" : "", buf_cstr(&r.log),
		    c->want);
		if (c->body != NULL)
			printf("    body \"%s\"\n", buf_cstr(&r.body));
		T_CHECK(0);
	}
	smtp_server_free(r.m);
	buf_free(&r.in);
	buf_free(&r.log);
	buf_free(&r.body);
}

static void
test_fsm_table(void)
{
	size_t i;

	for (i = 0; i < NELEM(fsm_cases); i++)
		fsm_replay(&fsm_cases[i], false);
}

static void
test_fsm_octets(void)
{
	size_t i;

	for (i = 0; i < NELEM(fsm_cases); i++)
		if (!(fsm_cases[i].flags & F_CHUNKS))
			fsm_replay(&fsm_cases[i], true);
}

/* Feed a whole dialogue; return the machine sitting in COMMIT. */
static struct smtp_server *
fsm_to_commit(unsigned flags, const char *input)
{
	struct smtp_server *m = fsm_new(flags, 0);
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CONNECTED,
		.now = 1700000000 };
	struct smtp_server_action a;

	smtp_server_step(m, &ev, &a);
	ev.type = SMTP_SRV_EV_INPUT;
	ev.data = input;
	ev.len = strlen(input);
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_COMMIT);
	T_CHECK(a.consumed == ev.len);
	return m;
}

/* The envelope and the Received header handed to the queue. */
static void
test_fsm_txn(void)
{
	struct smtp_server *m = fsm_to_commit(F_RELAY,
	    "EHLO c.example\r\n"
	    "MAIL FROM:<j\xc3\xb6rg@b.example> SMTPUTF8 RET=HDRS ENVID=E+2B1 "
	    "BODY=8BITMIME\r\n"
	    "RCPT TO:<x@d.example> NOTIFY=SUCCESS,DELAY "
	    "ORCPT=rfc822;x+2By@d.example\r\n"
	    "RCPT TO:<y@d.example> NOTIFY=NEVER\r\n"
	    "DATA\r\n"
	    "From: a\r\nmessage-id:\r\n <abc@b.example>  \r\nReceived: x\r\n"
	    "\r\nMessage-ID: <not@this>\r\n.\r\n");
	const struct smtp_server_txn *t = smtp_server_txn(m);
	char want[512];

	T_CHECK(t != NULL);
	if (t == NULL)
		return;
	T_STREQ(t->sender, "j\xc3\xb6rg@b.example");
	T_STREQ(t->envid, "E+1");
	T_CHECK(t->ret == SMTP_RET_HDRS && t->body_8bit && t->smtputf8);
	T_STREQ(t->helo, "c.example");
	T_CHECK(t->auth_user == NULL);
	T_STREQ(t->message_id, "<abc@b.example>");
	T_CHECK(t->nrcpt == 2);
	T_STREQ(t->rcpts[0].addr, "x@d.example");
	T_STREQ(t->rcpts[0].orcpt, "rfc822;x+2By@d.example");
	T_CHECK(
	    t->rcpts[0].notify == (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY));
	T_STREQ(t->rcpts[1].addr, "y@d.example");
	T_CHECK(t->rcpts[1].orcpt == NULL);
	T_CHECK(t->rcpts[1].notify == SMTP_NOTIFY_NEVER);
	T_CHECK(strlen(t->id) == 16 && strspn(t->id, "0123456789abcdef") == 16);
	snprintf(want, sizeof(want),
	    "Received: from c.example ([192.0.2.7])\r\n"
	    "\tby mx.test (danerelay) with UTF8SMTP id %s; "
	    "Tue, 14 Nov 2023 22:13:20 +0000\r\n",
	    t->id);
	T_CHECK(t->header_len == strlen(want));
	T_CHECK(t->len > t->header_len &&
	    memcmp(t->data, want, t->header_len) == 0);
	if (t->header_len != strlen(want))
		printf("  got %.*s", (int)t->header_len, (const char *)t->data);
	smtp_server_free(m);
}

/* One recipient: "for" it; after TLS and AUTH: ESMTPSA and the cipher. */
static void
test_fsm_received_tls(void)
{
	struct smtp_server *m = fsm_new(F_TLS | F_AUTH, 0);
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CONNECTED,
		.now = 1700000000 };
	struct smtp_server_action a;
	const struct smtp_server_txn *t;
	char want[512];
	const char *in1 = "EHLO c.example\r\nSTARTTLS\r\n";
	const char *in2 = "EHLO c.example\r\nAUTH PLAIN " PLAIN_OK "\r\n";
	const char *in3 = "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
	                  "DATA\r\nx\r\n.\r\n";

	smtp_server_step(m, &ev, &a);
	ev = (struct smtp_server_event){ .type = SMTP_SRV_EV_INPUT,
		.data = in1,
		.len = strlen(in1),
		.now = 1700000000 };
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_START_TLS);
	ev = (struct smtp_server_event){ .type = SMTP_SRV_EV_TLS_DONE,
		.text = "TLSv1.3 with cipher (odd)\r\n" };
	smtp_server_step(m, &ev, &a);
	ev = (struct smtp_server_event){
		.type = SMTP_SRV_EV_INPUT, .data = in2, .len = strlen(in2)
	};
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_AUTH);
	ev = (struct smtp_server_event){ .type = SMTP_SRV_EV_AUTH_RESULT,
		.ok = true };
	smtp_server_step(m, &ev, &a);
	T_STREQ(smtp_server_auth_user(m), "alice");
	ev = (struct smtp_server_event){ .type = SMTP_SRV_EV_INPUT,
		.data = in3,
		.len = strlen(in3),
		.now = 1700000000 };
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_COMMIT);
	t = smtp_server_txn(m);
	T_CHECK(t != NULL);
	if (t == NULL)
		return;
	T_STREQ(t->auth_user, "alice");
	snprintf(want, sizeof(want),
	    "Received: from c.example ([192.0.2.7])\r\n"
	    "\t(using TLSv1.3 with cipher ?odd?\?\?)\r\n"
	    "\tby mx.test (danerelay) with ESMTPSA id %s\r\n"
	    "\tfor <c@d.example>; Tue, 14 Nov 2023 22:13:20 +0000\r\n",
	    t->id);
	T_CHECK(t->header_len == strlen(want) &&
	    memcmp(t->data, want, t->header_len) == 0);
	if (t->header_len != strlen(want) ||
	    memcmp(t->data, want, t->header_len) != 0)
		printf("  got %.*s", (int)t->header_len, (const char *)t->data);
	smtp_server_free(m);
}

/* IPv6 clients appear as an IPv6 address literal; refusals at connect. */
static void
test_fsm_connect(void)
{
	struct smtp_server_params p = { .hostname = "mx.test",
		.client_ip = "2001:db8::1",
		.relay_allowed = true,
		.max_message_size = 100,
		.max_recipients = 1 };
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CONNECTED };
	const char *in =
	    "EHLO [IPv6:2001:db8::1]\r\nMAIL FROM:<a@b.example>\r\n"
	    "RCPT TO:<c@d.example>\r\nDATA\r\n.\r\n";
	struct smtp_server_action a;
	struct smtp_server *m;
	const char *out;
	size_t len;

	m = smtp_server_new(&p);
	smtp_server_step(m, &ev, &a);
	ev = (struct smtp_server_event){
		.type = SMTP_SRV_EV_INPUT, .data = in, .len = strlen(in)
	};
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_COMMIT);
	T_CHECK(smtp_server_txn(m) != NULL &&
	    strncmp((const char *)smtp_server_txn(m)->data,
	        "Received: from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])\r\n",
	        56) == 0);
	smtp_server_free(m);

	p.refuse = SMTP_SRV_REFUSE_PER_IP;
	m = smtp_server_new(&p);
	ev = (struct smtp_server_event){ .type = SMTP_SRV_EV_CONNECTED };
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_CLOSE);
	out = smtp_server_output(m, &len);
	T_STREQ(out,
	    "421 4.7.0 mx.test Too many connections from your address\r\n");
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_NONE);
	smtp_server_free(m);

	p.refuse = SMTP_SRV_REFUSE_BUSY;
	m = smtp_server_new(&p);
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_CLOSE);
	out = smtp_server_output(m, &len);
	T_STREQ(out, "421 4.3.2 mx.test Too many connections, try later\r\n");
	smtp_server_free(m);
}

/* Timers, consumed counts and the output high-water mark. */
static void
test_fsm_details(void)
{
	struct smtp_server *m = fsm_new(F_RELAY, 0);
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CONNECTED };
	struct smtp_server_action a;
	struct buf in;
	size_t len, i;

	smtp_server_step(m, &ev, &a);
	T_CHECK(
	    a.type == SMTP_SRV_ACT_READ && a.timer == SMTP_SRV_TIMER_COMMAND);
	smtp_server_output_clear(m);
	/* A partial line is left for later. */
	ev = (struct smtp_server_event){
		.type = SMTP_SRV_EV_INPUT, .data = "NOOP\r\nNO", .len = 8
	};
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.consumed == 6 && a.type == SMTP_SRV_ACT_READ);
	smtp_server_output_clear(m);
	/* Many pipelined EHLOs: the machine stops to let output drain. */
	buf_init(&in, 1024 * 1024);
	for (i = 0; i < 1000; i++)
		buf_adds(&in, "EHLO c.example\r\n");
	ev.data = in.data;
	ev.len = in.len;
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.consumed > 0 && a.consumed < in.len);
	smtp_server_output(m, &len);
	T_CHECK(len > 16 * 1024 && len < 20 * 1024);
	smtp_server_output_clear(m);
	/* In DATA the timer is the data timer. */
	ev.data = "MAIL FROM:<>\r\nRCPT TO:<a@b.example>\r\nDATA\r\n";
	ev.len = strlen(ev.data);
	smtp_server_step(m, &ev, &a);
	T_CHECK(a.type == SMTP_SRV_ACT_READ && a.timer == SMTP_SRV_TIMER_DATA);
	T_CHECK(a.consumed == ev.len);
	T_CHECK(smtp_server_txn(m) == NULL);
	buf_free(&in);
	smtp_server_free(m);
}

/* What storage_low was asked, and what it answers. */
struct storage {
	bool low;
	size_t asked;
	int calls;
};

static bool
storage_low(size_t size, void *arg)
{
	struct storage *st = arg;

	st->asked = size;
	st->calls++;
	return st->low;
}

/* The output of one input line fed to m. */
static const char *
fsm_say(struct smtp_server *m, const char *line)
{
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_INPUT,
		.now = 1700000000 };
	struct smtp_server_action a;
	size_t len;

	smtp_server_output_clear(m);
	ev.data = line;
	ev.len = strlen(line);
	smtp_server_step(m, &ev, &a);
	return smtp_server_output(m, &len);
}

/* [queue] min_free_space: 452 4.3.1 at MAIL (with SIZE) and at RCPT. */
static void
test_fsm_storage(void)
{
	struct storage st = { true, 0, 0 };
	struct smtp_server_params p = { .id = "test",
		.hostname = "mx.test",
		.client_ip = "192.0.2.7",
		.relay_allowed = true,
		.max_message_size = 10000,
		.max_recipients = 10,
		.storage_low = storage_low,
		.storage_arg = &st };
	struct smtp_server *m = smtp_server_new(&p);
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CONNECTED };
	struct smtp_server_action a;

	smtp_server_step(m, &ev, &a);
	fsm_say(m, "EHLO c.example\r\n");
	T_CHECK(strncmp(fsm_say(m, "MAIL FROM:<a@b.example> SIZE=5000\r\n"),
	            "452 4.3.1 ", 10) == 0);
	T_CHECK(st.calls == 1 && st.asked == 5000);
	st.low = false;
	T_CHECK(
	    strncmp(fsm_say(m, "MAIL FROM:<a@b.example>\r\n"), "250 ", 4) == 0);
	st.low = true;
	T_CHECK(strncmp(fsm_say(m, "RCPT TO:<c@d.example>\r\n"), "452 4.3.1 ",
	            10) == 0);
	T_CHECK(st.asked == 0);
	smtp_server_free(m);
}

int
main(void)
{
	T_RUN(test_cmd_table);
	T_RUN(test_cmd_limits);
	T_RUN(test_xtext);
	T_RUN(test_orcpt);
	T_RUN(test_fsm_table);
	T_RUN(test_fsm_octets);
	T_RUN(test_fsm_txn);
	T_RUN(test_fsm_received_tls);
	T_RUN(test_fsm_connect);
	T_RUN(test_fsm_details);
	T_RUN(test_fsm_storage);
	T_EXIT();
}
