/*
 * fuzz_smtp_cmd: libFuzzer target for what an SMTP client can send us.
 *
 * Two parts. The input is split into lines on '\n' (a trailing '\r'
 * dropped) and each line goes to the command parser, with and without
 * SMTPUTF8 in effect, and to the xtext decoder; lines are copied to
 * buffers of their exact size so that ASan sees any read past their end.
 * Then the whole input is the client side of a session with the server
 * state machine, cut into chunks whose sizes come from the input itself,
 * with TLS, AUTH and commits answered as the I/O layer would. Checked:
 * every reply is a well-formed CRLF line, the machine never claims more
 * input than it was given, and a committed message starts with our
 * Received header and holds no bare CR or LF.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
fuzz_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void
fuzz_check_cmd(const struct smtp_cmd *c, int rc)
{
	if (rc == -1) {
		ASSERT(c->code >= 500 && c->code <= 555);
		ASSERT(c->esc != NULL && c->esc[0] == '5');
		ASSERT(c->text != NULL && fuzz_printable(c->text));
		return;
	}
	ASSERT(rc == 0);
	ASSERT(strlen(c->path) <= SMTP_CMD_PATH_MAX);
	ASSERT(strcspn(c->path, "\r\n") == strlen(c->path));
	ASSERT(fuzz_printable(c->arg));
	ASSERT(!c->has_envid || fuzz_printable(c->envid));
	ASSERT((c->notify & SMTP_NOTIFY_NEVER) == 0 ||
	    c->notify == SMTP_NOTIFY_NEVER);
	ASSERT(strcmp(smtp_verb_str(c->verb), "?") != 0);
}

static void
fuzz_line(const char *line, size_t n)
{
	static struct smtp_cmd c;
	char *copy = xmemdup(line, n > 0 ? n : 1);
	char out[SMTP_CMD_LINE_MAX + 1];
	int len;

	fuzz_check_cmd(&c, smtp_cmd_parse(&c, copy, n, false));
	fuzz_check_cmd(&c, smtp_cmd_parse(&c, copy, n, true));
	len = smtp_xtext_decode(out, sizeof(out), copy, n);
	ASSERT(len < 0 || ((size_t)len <= n && strlen(out) == (size_t)len));
	free(copy);
}

/* Every reply: "NNN" or "NNN-text"/"NNN text", CRLF-terminated. */
static void
fuzz_check_output(struct smtp_server *m)
{
	size_t len;
	const char *out = smtp_server_output(m, &len), *end = out + len;
	const char *eol;

	while (out < end) {
		eol = memchr(out, '\n', (size_t)(end - out));
		ASSERT(eol != NULL && eol - out >= 4 && eol[-1] == '\r');
		ASSERT(out[0] >= '2' && out[0] <= '5');
		ASSERT(out[3] == ' ' || out[3] == '-');
		ASSERT(eol - out <= 1024);
		out = eol + 1;
	}
	smtp_server_output_clear(m);
}

static void
fuzz_check_txn(const struct smtp_server_txn *t)
{
	size_t i;

	ASSERT(t != NULL && t->nrcpt > 0 && t->len >= t->header_len);
	ASSERT(memcmp(t->data, "Received: from ", 15) == 0);
	for (i = 0; i < t->len; i++) {
		if (t->data[i] == '\n')
			ASSERT(i > 0 && t->data[i - 1] == '\r');
		if (t->data[i] == '\r')
			ASSERT(i + 1 < t->len && t->data[i + 1] == '\n');
	}
	ASSERT(t->message_id == NULL || fuzz_printable(t->message_id));
}

/* Answer what the machine asks for; returns the follow-up action. */
static void
fuzz_answer(struct smtp_server *m, struct smtp_server_action *a, int *n)
{
	struct smtp_server_event ev = { .now = 1700000000 };

	for (;;) {
		fuzz_check_output(m);
		switch (a->type) {
		case SMTP_SRV_ACT_START_TLS:
			ev.type = SMTP_SRV_EV_TLS_DONE;
			ev.text = "TLSv1.3 with cipher (fuzz)";
			break;
		case SMTP_SRV_ACT_AUTH:
			/* "bob" stands for a busy or locked-out check. */
			ev.type = strcmp(a->user, "bob") == 0 ?
			    SMTP_SRV_EV_AUTH_TEMPFAIL :
			    SMTP_SRV_EV_AUTH_RESULT;
			ev.ok = strcmp(a->user, "alice") == 0;
			break;
		case SMTP_SRV_ACT_COMMIT:
			fuzz_check_txn(smtp_server_txn(m));
			ev.type = SMTP_SRV_EV_COMMITTED;
			ev.ok = (++*n % 2) == 1;
			ev.text = "0123456789abcdef";
			break;
		default:
			return;
		}
		smtp_server_step(m, &ev, a);
	}
}

static void
fuzz_session(const uint8_t *data, size_t size)
{
	struct smtp_server_params p = { .id = "fuzz",
		.hostname = "mx.test",
		.client_ip = "192.0.2.1",
		.relay_allowed = size > 0 && (data[0] & 1),
		.tls_available = true,
		.auth_available = true,
		.max_message_size = 4096,
		.max_recipients = 5 };
	struct smtp_server *m = smtp_server_new(&p);
	struct smtp_server_event ev = { .type = SMTP_SRV_EV_CONNECTED };
	struct smtp_server_action a;
	size_t off = 0, have = 0, chunk;
	int commits = 0;

	smtp_server_step(m, &ev, &a);
	fuzz_answer(m, &a, &commits);
	while (a.type == SMTP_SRV_ACT_READ) {
		/* Let more input arrive, in input-chosen pieces. */
		chunk = off + have < size ? 1 + data[off + have] % 64 : 0;
		if (chunk == 0 && have == 0)
			break;
		have += chunk;
		if (off + have > size)
			have = size - off;
		ev = (struct smtp_server_event){ .type = SMTP_SRV_EV_INPUT,
			.data = (const char *)data + off,
			.len = have,
			.now = 1700000000 };
		smtp_server_step(m, &ev, &a);
		ASSERT(a.consumed <= have);
		off += a.consumed;
		have -= a.consumed;
		if (a.consumed == 0 && off + have >= size)
			break;
		fuzz_answer(m, &a, &commits);
	}
	ev = (struct smtp_server_event){ .type = SMTP_SRV_EV_TIMEOUT };
	smtp_server_step(m, &ev, &a);
	fuzz_check_output(m);
	smtp_server_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	size_t n;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		fuzz_line(p, n > 0 && p[n - 1] == '\r' ? n - 1 : n);
		p += n + 1;
	}
	fuzz_session(data, size);
	return 0;
}
