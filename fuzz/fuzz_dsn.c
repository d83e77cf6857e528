/*
 * fuzz_dsn: libFuzzer target for the reader of returned messages
 * (dsn/dsn_hdr.c) and for dsn_build with hostile inputs.
 *
 * Input: one flags octet, then a text up to the first NUL, then the
 * original message (the rest, given to the parsers without a terminator so
 * that ASan sees any read past its end). The flags pick the action, RET,
 * the number of recipients and where the text goes: the diagnostic, the
 * original subject, the recipient address, the envelope id, the remote
 * MTA. Every report must keep the promises of dsn.h: CRLF lines of at most
 * 998 octets, and a header in ASCII unless the report is global.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "dsn/dsn.h"
#include "dsn/dsn_hdr.h"
#include "dsn/dsn_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_rand(void *p, size_t n)
{
	memset(p, 0x5a, n);
}

/* CRLF only, lines of at most 998 octets. */
static void
fuzz_lines(const uint8_t *p, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r') {
			ASSERT(i + 1 < n && p[i + 1] == '\n');
			continue;
		}
		if (p[i] == '\n') {
			ASSERT(i > 0 && p[i - 1] == '\r');
			col = 0;
		} else
			ASSERT(++col <= 998);
	}
	ASSERT(n == 0 || (n >= 2 && p[n - 1] == '\n'));
}

static void
fuzz_hdr(const uint8_t *msg, size_t len, const char *text)
{
	size_t hlen, body;
	struct buf b;
	char *s;

	hlen = dsn_hdr_len(msg, len, &body);
	ASSERT(hlen <= len && body <= len && body >= hlen);
	ASSERT(hlen <= DSN_HDR_MAX);
	s = dsn_hdr_get(msg, len, "Subject", 200);
	ASSERT(s == NULL || strlen(s) <= 200);
	free(s);
	free(dsn_hdr_get(msg, len, text[0] != '\0' ? text : "X", 50));
	buf_init(&b, SIZE_MAX / 4);
	ASSERT(dsn_hdr_copy(&b, msg, len) == b.len);
	fuzz_lines((const uint8_t *)b.data, b.len);
	buf_free(&b);
	s = dsn_mime_decode_2047(text, 300);
	ASSERT(strlen(s) <= 300);
	free(s);
}

/* The report of the fuzzed inputs, checked. */
static void
fuzz_build(uint8_t flags, const char *text, const uint8_t *orig, size_t len)
{
	static const enum dsn_action actions[] = { DSN_ACTION_FAILED,
		DSN_ACTION_DELAYED, DSN_ACTION_DELIVERED, DSN_ACTION_RELAYED };
	struct dsn_rcpt r[2];
	struct dsn_msg m;
	uint8_t *p;
	size_t n, i, hlen;

	memset(&m, 0, sizeof(m));
	m.reporting_mta = "relay.example.org";
	m.to = (flags & 0x40) ? text : "alice@example.org";
	m.envid = (flags & 0x20) ? text : NULL;
	m.ret_full = (flags & 0x04) != 0;
	m.orig = orig;
	m.orig_len = len;
	m.orig_subject = (flags & 0x10) ? text : NULL;
	m.arrival = 1795856400;
	m.now = 1795860000;
	m.rcpts = r;
	m.nrcpt = (flags & 0x08) ? 2 : 1;
	for (i = 0; i < 2; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].addr = (flags & 0x80) && i == 0 ? text : "bob@example.com";
		r[i].orcpt = i == 1 ? text : NULL;
		r[i].action = actions[flags & 3];
		r[i].status = i == 0 ? "5.7.323" : text;
		r[i].result_type = i == 0 ? "tlsa-invalid" : text;
		r[i].remote_mta = i == 0 ? "mx.example.com" : text;
		r[i].diagnostic = text;
		r[i].last_attempt = 1795860000;
		r[i].will_retry_until = 1796288400;
	}
	p = dsn_build(&m, &n);
	fuzz_lines(p, n);
	for (hlen = 0; hlen + 3 < n && memcmp(p + hlen, "\r\n\r\n", 4) != 0;
	     hlen++)
		;
	/* RFC 6532 allows UTF-8 in the header of a global report only. */
	ASSERT(dsn_is_global(&m) || dsn_mime_ascii(p, hlen));
	free(p);
	free(dsn_explain_rcpt(&r[1]));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul;
	uint8_t *orig;
	char *text;
	size_t tlen;

	if (size < 1)
		return 0;
	dsn_set_random(fuzz_rand);
	nul = memchr(data + 1, '\0', size - 1);
	tlen = nul != NULL ? (size_t)(nul - data - 1) : size - 1;
	text = malloc(tlen + 1);
	memcpy(text, data + 1, tlen);
	text[tlen] = '\0';
	/* An exact-size copy: ASan sees reads past the end. */
	size -= 1 + tlen + (nul != NULL);
	orig = malloc(size > 0 ? size : 1);
	memcpy(orig, data + 1 + tlen + (nul != NULL), size);
	fuzz_hdr(orig, size, text);
	fuzz_build(data[0], text, orig, size);
	free(orig);
	free(text);
	return 0;
}
