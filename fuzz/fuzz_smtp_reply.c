/*
 * fuzz_smtp_reply: libFuzzer target for what an SMTP server can send us.
 *
 * The input is split into lines on '\n' (a trailing '\r' dropped, as the
 * session does) and each line goes to the reply parser, to the EHLO line
 * parser, and to the client state machine, which is steered through
 * STARTTLS, up to three mail transactions and QUIT as the I/O layer would.
 * Lines are passed without a NUL terminator so that ASan sees any read
 * past their end. The input is also the message of the transactions: its
 * dot-stuffed form, taken in small pieces, must hold no line that is a
 * lone dot, no bare LF, and end with CRLF.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_ehlo.h"
#include "smtp/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_check_reply(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	char joined[512];
	const char *esc;
	size_t i;

	ASSERT(smtp_reply_code(r) >= 200 && smtp_reply_code(r) <= 599);
	ASSERT(smtp_reply_count(r) >= 1 &&
	    smtp_reply_count(r) <= SMTP_REPLY_LINES_MAX);
	for (i = 0; i < smtp_reply_count(r); i++)
		ASSERT(strlen(smtp_reply_text(r, i)) < SMTP_REPLY_LINE_MAX);
	esc = smtp_reply_esc(r);
	ASSERT(esc == NULL || esc[0] == (char)('0' + smtp_reply_code(r) / 100));
	smtp_reply_join(r, joined, sizeof(joined));
	for (i = 0; joined[i] != '\0'; i++)
		ASSERT(joined[i] >= 0x20 && joined[i] < 0x7f);
	smtp_ehlo_parse(e, r);
	for (i = 0; i < smtp_ehlo_count(e); i++)
		ASSERT(smtp_ehlo_find(e, smtp_ehlo_keyword(e, i)) != NULL);
	(void)smtp_ehlo_auth(e, "PLAIN");
}

/* The transactions of one input. */
struct fuzz_txn {
	struct smtp_txn t;
	char *rcpts[2];
	char *params[2];
	struct smtp_rcpt_reply replies[2];
	int left; /* transactions still to start */
};

static void
fuzz_txn_init(struct fuzz_txn *f, const uint8_t *data, size_t size)
{
	static char r1[] = "b@example.org", r2[] = "c@example.org";
	static char p1[] = "NOTIFY=FAILURE ORCPT=rfc822;b@example.org";

	memset(f, 0, sizeof(*f));
	f->rcpts[0] = r1;
	f->rcpts[1] = r2;
	f->params[0] = p1;
	f->t.mail_from = size % 5 == 0 ? "" : "a@example.net";
	f->t.mail_params = "RET=HDRS ENVID=fuzz";
	f->t.body_8bit = size % 2 == 0;
	f->t.smtputf8 = size % 7 == 0;
	f->t.rcpts = f->rcpts;
	f->t.rcpt_params = f->params;
	f->t.nrcpt = 1 + size % 2;
	f->t.rcpt_reply = f->replies;
	f->t.data = data;
	f->t.len = size;
	f->left = 3;
}

/* The body as the session would send it, with the invariants of §4.5.2. */
static void
fuzz_body(struct smtp_client *c, size_t cap)
{
	char piece[16];
	char prev[2] = { '\n', '\n' }; /* the last two bytes out */
	bool any = false;
	size_t n, i;

	while ((n = smtp_client_body(c, piece, cap)) > 0) {
		ASSERT(n <= cap);
		for (i = 0; i < n; i++) {
			/* Every LF ends a CRLF... */
			ASSERT(piece[i] != '\n' || prev[1] == '\r');
			/* ...and no line is a lone dot. */
			ASSERT(!(prev[0] == '\n' && prev[1] == '.' &&
			    piece[i] == '\r'));
			prev[0] = prev[1];
			prev[1] = piece[i];
		}
		any = true;
	}
	ASSERT(!any || (prev[0] == '\r' && prev[1] == '\n'));
}

/* Carry out what the machine asks for that needs no peer. */
static void
fuzz_act(struct smtp_client *c, struct fuzz_txn *f, struct smtp_action *act)
{
	struct smtp_event ev = { .type = SMTP_EV_QUIT };

	for (;;) {
		if (act->type == SMTP_ACT_START_TLS)
			ev.type = SMTP_EV_TLS_DONE;
		else if (act->type == SMTP_ACT_BODY) {
			fuzz_body(c, 2 + f->t.len % 14);
			ev.type = SMTP_EV_BODY_DONE;
		} else if (act->type == SMTP_ACT_READY ||
		    act->type == SMTP_ACT_TXN_DONE) {
			ASSERT(smtp_client_phase(c) == SMTP_PHASE_READY);
			ASSERT(f->t.end <= SMTP_TXN_FAILED);
			ev.type = f->left-- > 0 ? SMTP_EV_TXN : SMTP_EV_QUIT;
			ev.txn = &f->t;
		} else
			return;
		smtp_client_step(c, &ev, act);
	}
}

/* Drive the machine the way smtp_session.c would. */
static void
fuzz_step(
    struct smtp_client *c, struct fuzz_txn *f, const char *line, size_t len)
{
	struct smtp_event ev = {
		.type = SMTP_EV_LINE, .line = line, .len = len
	};
	struct smtp_action act;

	smtp_client_step(c, &ev, &act);
	fuzz_act(c, f, &act);
}

static void
fuzz_line(struct smtp_reply *r, struct smtp_ehlo *e, struct smtp_ehlo *e2,
    struct smtp_client *c, struct fuzz_txn *f, const char *line, size_t len)
{
	const char *errstr = NULL;
	char *copy = malloc(len + 1);
	char *exact = malloc(len > 0 ? len : 1);

	/* A copy that ends where the line does, so ASan sees overreads. */
	memcpy(exact, line, len);
	line = exact;
	switch (smtp_reply_feed(r, line, len, &errstr)) {
	case SMTP_REPLY_MORE:
		break;
	case SMTP_REPLY_DONE:
		fuzz_check_reply(r, e);
		break;
	case SMTP_REPLY_ERROR:
		ASSERT(errstr != NULL);
		smtp_reply_reset(r);
		break;
	}
	memcpy(copy, line, len);
	copy[len] = '\0';
	errstr = NULL;
	if (smtp_ehlo_add(e2, copy, &errstr) == -1)
		ASSERT(errstr != NULL);
	free(copy);
	fuzz_step(c, f, line, len);
	free(exact);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum smtp_tls_mode modes[] = { SMTP_TLS_NONE,
		SMTP_TLS_OPPORTUNISTIC, SMTP_TLS_REQUIRED };
	const char *p = (const char *)data, *end = p + size, *nl;
	struct smtp_reply *r = smtp_reply_new();
	struct smtp_ehlo *e = smtp_ehlo_new(), *e2 = smtp_ehlo_new();
	struct smtp_client *c =
	    smtp_client_new("fuzz", "fuzz.example", modes[size % 3]);
	struct smtp_event ev = { .type = SMTP_EV_CONNECTED };
	struct smtp_action act;
	struct fuzz_txn f;
	size_t len;

	fuzz_txn_init(&f, data, size);
	smtp_client_step(c, &ev, &act);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		fuzz_line(r, e, e2, c, &f, p, len);
		p = nl != NULL ? nl + 1 : end;
	}
	ASSERT(smtp_client_result(c)->phase <= SMTP_PHASE_DONE);
	smtp_client_free(c);
	smtp_ehlo_free(e2);
	smtp_ehlo_free(e);
	smtp_reply_free(r);
	return 0;
}
