/*
 * dsn: assembling a delivery status notification (RFC 3464 inside an
 * RFC 6522 multipart/report): the header of the report, the human part
 * (dsn_text.c), the machine-readable delivery-status part, the returned
 * content, and a boundary that occurs in none of them. The notes in dsn.h
 * say what is decided here; docs/NDR.md shows the result.
 */
#include "dsn/dsn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dsn/dsn_hdr.h"
#include "dsn/dsn_int.h"

#define BUF_MAX         (SIZE_MAX / 4) /* inputs are capped; see dsn.h */
#define ADDR_MAX        512
#define HOST_MAX        255
#define ENVID_MAX       100 /* RFC 3461 §4.4 */
#define DIAG_MAX        2048
#define SUBJECT_MAX     256
#define MSGID_MAX       250
#define LINE_MAX_OCTETS 998

static void (*dsn_rand)(void *, size_t);

void
dsn_set_random(void (*fn)(void *p, size_t n))
{
	dsn_rand = fn;
}

static void
dsn_random(void *p, size_t n)
{
	if (dsn_rand != NULL)
		dsn_rand(p, n);
	else if (getentropy(p, n) == -1)
		panic("getentropy: %s", strerror(errno));
}

bool
dsn_ret_default(size_t orig_len)
{
	return orig_len <= DSN_RET_DEFAULT_MAX;
}

static bool
ascii_str(const char *s)
{
	return s == NULL || dsn_mime_ascii(s, strlen(s));
}

bool
dsn_is_global(const struct dsn_msg *m)
{
	size_t i, body;

	if (!ascii_str(m->to))
		return true;
	for (i = 0; i < m->nrcpt; i++)
		if (!ascii_str(m->rcpts[i].addr) ||
		    !ascii_str(m->rcpts[i].orcpt))
			return true;
	return m->orig != NULL &&
	    !dsn_mime_ascii(m->orig, dsn_hdr_len(m->orig, m->orig_len, &body));
}

/* Append "Name: value" with value cleaned (max octets, ASCII unless global). */
static void
field_clean(struct buf *b, const char *name, const char *prefix,
    const char *value, size_t max, bool global)
{
	char *v = dsn_mime_clean(value, max, !global);
	char *pv = xasprintf("%s%s", prefix, v);

	dsn_mime_field(b, name, pv);
	free(pv);
	free(v);
}

static void
field_date(struct buf *b, const char *name, time_t t)
{
	char d[DSN_DATE_LEN];

	dsn_mime_date(d, sizeof(d), t);
	dsn_mime_field(b, name, d);
}

/* RFC 3464 §2.2: the per-message fields. */
static void
status_msg(struct buf *b, const struct dsn_msg *m, bool global)
{
	if (m->envid != NULL)
		field_clean(
		    b, "Original-Envelope-Id", "", m->envid, ENVID_MAX, global);
	field_clean(
	    b, "Reporting-MTA", "dns; ", m->reporting_mta, HOST_MAX, false);
	if (m->arrival != 0)
		field_date(b, "Arrival-Date", m->arrival);
}

/* Original-Recipient: the ORCPT with its address type (RFC 3464 §2.3.1). */
static void
status_orcpt(struct buf *b, const char *orcpt, bool global)
{
	char *v = dsn_mime_clean(orcpt, ADDR_MAX, !global);

	field_clean(b, "Original-Recipient", strchr(v, ';') ? "" : "rfc822;", v,
	    ADDR_MAX, global);
	free(v);
}

/* Diagnostic-Code: an SMTP reply as "smtp;", our own text otherwise. */
static void
status_diag(struct buf *b, const struct dsn_rcpt *r, bool global)
{
	char *v = dsn_mime_clean(r->diagnostic, DIAG_MAX, !global), *pv;

	if (dsn_text_is_reply(v))
		pv = xasprintf("smtp; %s", v);
	else if (r->result_type != NULL && strstr(v, r->result_type) == NULL)
		pv = xasprintf("X-Danerelay; %s: %s", r->result_type, v);
	else
		pv = xasprintf("X-Danerelay; %s", v);
	field_clean(b, "Diagnostic-Code", "", pv, DIAG_MAX + 64, global);
	free(pv);
	free(v);
}

const char *
dsn_action_str(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed";
	}
	return "unknown";
}

/* RFC 3464 §2.3: the fields of one recipient, after an empty line. */
static void
status_rcpt(struct buf *b, const struct dsn_rcpt *r, bool global)
{
	char status[DSN_STATUS_LEN];

	buf_adds(b, "\r\n");
	if (r->orcpt != NULL)
		status_orcpt(b, r->orcpt, global);
	/* RFC 6533 §3: the "utf-8" type for an address that needs it. */
	field_clean(b, "Final-Recipient",
	    ascii_str(r->addr) ? "rfc822; " : "utf-8; ", r->addr, ADDR_MAX,
	    global);
	dsn_mime_field(b, "Action", dsn_action_str(r->action));
	dsn_text_status(r, status, sizeof(status));
	dsn_mime_field(b, "Status", status);
	if (r->remote_mta != NULL)
		field_clean(
		    b, "Remote-MTA", "dns; ", r->remote_mta, HOST_MAX, global);
	if (r->diagnostic != NULL)
		status_diag(b, r, global);
	if (r->last_attempt != 0)
		field_date(b, "Last-Attempt-Date", r->last_attempt);
	if (r->action == DSN_ACTION_DELAYED && r->will_retry_until != 0)
		field_date(b, "Will-Retry-Until", r->will_retry_until);
}

/*
 * Can p be returned whole in a message/rfc822 part: only CRLF line ends,
 * no NUL, lines of at most 998 octets (RFC 5322 §2.1.1, RFC 2046 §5.2.1)?
 */
static bool
msg_clean(const uint8_t *p, size_t n)
{
	size_t i, col = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\0' ||
		    (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')))
			return false;
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			return false;
		if (p[i] == '\n')
			col = 0;
		else if (p[i] != '\r' && ++col > LINE_MAX_OCTETS)
			return false;
	}
	return true;
}

/* Part 3: the whole message or its header section (see dsn.h). */
static void
build_return(struct buf *b, const struct dsn_msg *m, struct dsn_info *in)
{
	bool full = m->ret_full && m->rcpts[0].action == DSN_ACTION_FAILED;

	in->ret = DSN_RETURN_NONE;
	if (m->orig == NULL || m->orig_len == 0)
		return;
	if (full && m->orig_len <= DSN_RET_FULL_MAX &&
	    msg_clean(m->orig, m->orig_len)) {
		buf_add(b, m->orig, m->orig_len);
		if (m->orig[m->orig_len - 1] != '\n')
			buf_adds(b, "\r\n");
		in->ret = DSN_RETURN_FULL;
	} else if (dsn_hdr_copy(b, m->orig, m->orig_len) > 0) {
		in->ret = DSN_RETURN_HDRS;
		in->ret_cut = full;
	}
}

/* The original subject as found, cleaned (may hold encoded-words). */
static char *
orig_field(
    const struct dsn_msg *m, const char *given, const char *name, size_t max)
{
	if (given != NULL)
		return dsn_mime_clean(given, max, false);
	if (m->orig == NULL)
		return NULL;
	return dsn_hdr_get(m->orig, m->orig_len, name, max);
}

/* The human part, transfer-encoded; *cte receives the encoding's name. */
static void
build_human(struct buf *b, const struct dsn_info *in, const char **cte)
{
	struct buf t;

	buf_init(&t, BUF_MAX);
	dsn_text_human(&t, in);
	if (dsn_mime_ascii(t.data, t.len)) {
		*cte = "7bit";
		buf_add(b, t.data, t.len);
	} else if (in->global) {
		*cte = "8bit";
		buf_add(b, t.data, t.len);
	} else {
		*cte = "quoted-printable";
		dsn_mime_qp(b, t.data, t.len);
	}
	buf_free(&t);
}

static bool
occurs(const struct buf *b, const char *s)
{
	return b->len > 0 && memmem(b->data, b->len, s, strlen(s)) != NULL;
}

/*
 * A boundary found in no part (RFC 2046 §5.1.1). "=_" cannot occur in
 * quoted-printable text; the random part makes a clash with returned
 * content unlikely, and the counter makes it impossible.
 */
static char *
boundary_pick(const struct buf *parts[], size_t n)
{
	uint8_t r[12];
	char *hex, *bnd = NULL;
	unsigned i;
	size_t j;

	dsn_random(r, sizeof(r));
	hex = str_hex(r, sizeof(r));
	for (i = 0; bnd == NULL; i++) {
		bnd = i == 0 ? xasprintf("=_danerelay_%s", hex) :
		               xasprintf("=_danerelay_%s_%u", hex, i);
		for (j = 0; j < n && bnd != NULL; j++)
			if (occurs(parts[j], bnd)) {
				free(bnd);
				bnd = NULL;
			}
	}
	free(hex);
	return bnd;
}

static const char *
subject_phrase(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "Undelivered Mail Returned to Sender";
	case DSN_ACTION_DELAYED:
		return "Delayed Mail (still being retried)";
	case DSN_ACTION_DELIVERED:
	case DSN_ACTION_RELAYED:
		break;
	}
	return "Successful Mail Delivery Report";
}

/* "<...@...>" without spaces: fit for In-Reply-To and References. */
static bool
msgid_ok(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n > 4 && n <= MSGID_MAX && s[0] == '<' && s[n - 1] == '>' &&
	    strchr(s, '@') != NULL && strchr(s, ' ') == NULL &&
	    strchr(s + 1, '<') == NULL && strchr(s, '>') == s + n - 1 &&
	    dsn_mime_ascii(s, n);
}

/* From and To. */
static void
header_from_to(struct buf *b, const struct dsn_msg *m, bool global)
{
	char *host = dsn_mime_clean(m->reporting_mta, HOST_MAX, true);
	char *from = m->from != NULL ? dsn_mime_clean(m->from, ADDR_MAX, true) :
	                               xasprintf("MAILER-DAEMON@%s", host);
	char *to = dsn_mime_clean(m->to, ADDR_MAX, !global), *v;

	v = xasprintf("Mail Delivery System <%s>", from);
	dsn_mime_field(b, "From", v);
	dsn_mime_field(b, "To", *to != '\0' ? to : "undisclosed-recipients:;");
	free(v);
	free(to);
	free(from);
	free(host);
}

/* Date and a Message-ID of random octets at the reporting MTA. */
static void
header_date_id(struct buf *b, const struct dsn_msg *m)
{
	char *host = dsn_mime_clean(m->reporting_mta, HOST_MAX, true);
	uint8_t r[16];
	char *hex, *v;

	dsn_random(r, sizeof(r));
	hex = str_hex(r, sizeof(r));
	v = xasprintf("<%s@%s>", hex, host);
	field_date(b, "Date", m->now != 0 ? m->now : time(NULL));
	dsn_mime_field(b, "Message-ID", v);
	free(v);
	free(hex);
	free(host);
}

/* The header of the report, up to and including the empty line. */
static void
build_header(struct buf *b, const struct dsn_msg *m, const struct dsn_info *in,
    const char *raw_subject, const char *bnd)
{
	char *msgid = orig_field(m, m->orig_message_id, "Message-ID", 998);
	const char *phrase = subject_phrase(m->rcpts[0].action);
	char *v;

	header_from_to(b, m, in->global);
	if (raw_subject != NULL && *raw_subject != '\0') {
		v = xasprintf("%s:", phrase);
		dsn_mime_field_2047(b, "Subject", v, raw_subject);
		free(v);
	} else
		dsn_mime_field(b, "Subject", phrase);
	header_date_id(b, m);
	if (msgid_ok(msgid)) {
		dsn_mime_field(b, "In-Reply-To", msgid);
		dsn_mime_field(b, "References", msgid);
	}
	dsn_mime_field(b, "Auto-Submitted", "auto-replied");
	dsn_mime_field(b, "MIME-Version", "1.0");
	v = xasprintf("multipart/report; report-type=%s; boundary=\"%s\"",
	    in->global ? "global-delivery-status" : "delivery-status", bnd);
	dsn_mime_field(b, "Content-Type", v);
	buf_adds(b, "\r\n");
	free(v);
	free(msgid);
}

/* One body part: the delimiter, its header, its content. */
static void
build_part(struct buf *b, const char *bnd, const char *desc, const char *type,
    const char *cte, const struct buf *content)
{
	buf_printf(b, "\r\n--%s\r\n", bnd);
	dsn_mime_field(b, "Content-Description", desc);
	dsn_mime_field(b, "Content-Type", type);
	if (cte != NULL)
		dsn_mime_field(b, "Content-Transfer-Encoding", cte);
	buf_adds(b, "\r\n");
	buf_add(b, content->data, content->len);
}

/* Part 3's description and type. */
static void
return_kind(const struct dsn_msg *m, const struct dsn_info *in,
    const char **desc, const char **type)
{
	bool failed = m->rcpts[0].action == DSN_ACTION_FAILED;

	if (in->ret == DSN_RETURN_FULL) {
		*desc = "Undelivered Message";
		*type = in->global ? "message/global" : "message/rfc822";
	} else {
		*desc =
		    failed ? "Undelivered Message Headers" : "Message Headers";
		*type = in->global ? "message/global-headers" :
		                     "text/rfc822-headers";
	}
}

/* The parts built, the boundary, the whole report. */
static void
build_all(struct buf *out, const struct dsn_msg *m, struct dsn_info *in,
    const char *raw_subject)
{
	struct buf human, status, ret;
	const struct buf *parts[] = { &human, &status, &ret };
	const char *cte, *desc, *type;
	char *bnd;
	size_t i;

	buf_init(&human, BUF_MAX);
	buf_init(&status, BUF_MAX);
	buf_init(&ret, BUF_MAX);
	build_return(&ret, m, in);
	build_human(&human, in, &cte);
	status_msg(&status, m, in->global);
	for (i = 0; i < m->nrcpt; i++)
		status_rcpt(&status, &m->rcpts[i], in->global);
	bnd = boundary_pick(parts, 3);
	build_header(out, m, in, raw_subject, bnd);
	buf_adds(out,
	    "This is a MIME-encapsulated delivery status "
	    "notification.\r\n");
	build_part(
	    out, bnd, "Notification", "text/plain; charset=utf-8", cte, &human);
	build_part(out, bnd, "Delivery report",
	    in->global ? "message/global-delivery-status" :
	                 "message/delivery-status",
	    in->global ? "8bit" : NULL, &status);
	if (in->ret != DSN_RETURN_NONE) {
		return_kind(m, in, &desc, &type);
		build_part(out, bnd, desc, type,
		    dsn_mime_ascii(ret.data, ret.len) ? "7bit" : "8bit", &ret);
	}
	buf_printf(out, "\r\n--%s--\r\n", bnd);
	free(bnd);
	buf_free(&human);
	buf_free(&status);
	buf_free(&ret);
}

uint8_t *
dsn_build(const struct dsn_msg *m, size_t *len)
{
	struct dsn_info in = { 0 };
	struct buf out;
	char *raw_subject;
	size_t i;

	ASSERT(m->reporting_mta != NULL && m->rcpts != NULL && m->nrcpt > 0);
	for (i = 1; i < m->nrcpt; i++)
		ASSERT(m->rcpts[i].action == m->rcpts[0].action);
	in.m = m;
	in.global = dsn_is_global(m);
	raw_subject = orig_field(m, m->orig_subject, "Subject", SUBJECT_MAX);
	if (raw_subject != NULL)
		in.subject = dsn_mime_decode_2047(raw_subject, SUBJECT_MAX);
	buf_init(&out, BUF_MAX);
	build_all(&out, m, &in, raw_subject);
	free(raw_subject);
	free(in.subject);
	*len = out.len;
	return (uint8_t *)buf_steal(&out);
}
