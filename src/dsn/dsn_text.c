/*
 * dsn_text: the part of a report a person reads. It speaks to whoever sent
 * the mail, not to an administrator: what happened to each recipient in
 * plain words, whether the fault is at the recipient's domain and who can
 * fix it, then the technical details and the command an administrator can
 * run to see the failure (`danerelay check DOMAIN`). docs/NDR.md has the
 * table of explanations.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "dsn/dsn_int.h"

#define WIDTH      72  /* columns of the text */
#define WORD_CHUNK 900 /* longest piece of a word on one line */
#define ADDR_MAX   512
#define HOST_MAX   255
#define DIAG_MAX   2048
#define LABEL_W    17 /* width of "  Remote server: " */

/*
 * One explanation. Matched first by RFC 8460 result type, then by the
 * subject and detail of the status ("7.323"), then by the class of the
 * status or of the remote reply. In the text, %D stands for " example.com"
 * (the recipient's domain) and %M for " mx.example.com" (the MX host), or
 * nothing when unknown, so each text reads well either way.
 */
struct explain {
	const char *rt;
	const char *code;
	const char *text;
};

enum {
	EX_SUCCESS,
	EX_REMOTE_PERM,
	EX_REMOTE_TEMP,
	EX_GENERIC,
	EX_TABLE, /* first entry matched by result type or code */
};

static const struct explain explain[] = {
	[EX_SUCCESS] = { NULL, NULL,
	    "The mail server%M of the receiving domain%D accepted the "
	    "message." },
	[EX_REMOTE_PERM] = { NULL, NULL,
	    "The mail server%M of the receiving domain%D refused the message "
	    "permanently; its reply, shown below, says why. The decision was "
	    "made at the recipient's domain: if the reply does not help, "
	    "contact the recipient in another way." },
	[EX_REMOTE_TEMP] = { NULL, NULL,
	    "The mail server%M of the receiving domain%D turned the message "
	    "away for the time being (a temporary refusal); its reply is shown "
	    "below. The cause is at the recipient's domain, for example a full "
	    "mailbox or a busy server." },
	[EX_GENERIC] = { NULL, NULL,
	    "This mail system could not deliver the message to the receiving "
	    "domain%D; the technical details below say why. This error does "
	    "not show whether the fault is at the recipient's domain: your "
	    "mail administrator can tell." },
	{ "dane-required", NULL,
	    "This mail system is configured to send mail to the receiving "
	    "domain%D only over connections verified with DANE, but the "
	    "domain publishes no usable DANE (TLSA) records for its mail "
	    "server%M, so the message was not sent. This is not a fault at the "
	    "recipient's domain, which may simply not use DANE: the "
	    "requirement is set here, and your mail administrator can change "
	    "it." },
	{ "starttls-not-supported", "7.321",
	    "The receiving domain%D publishes DANE (TLSA) records in DNS, "
	    "which require its mail server to accept encrypted connections, "
	    "but its mail server%M did not offer encryption (STARTTLS) or "
	    "refused it, so the message was not sent to it. This is a problem "
	    "at the recipient's domain: its administrator must enable STARTTLS "
	    "on the mail server or remove the TLSA records." },
	{ "certificate-expired", "7.322",
	    "The certificate that the mail server%M of the receiving domain%D "
	    "presents has expired or is not valid yet, so the server could not "
	    "be verified and the message was not sent to it. This is a problem "
	    "at the recipient's domain: its administrator must renew the "
	    "certificate." },
	{ "tlsa-invalid", "7.323",
	    "The receiving domain%D publishes DANE (TLSA) records in DNS that "
	    "do not match the certificate its mail server%M presents, so the "
	    "server could not be verified and the message was not sent to it. "
	    "This is a problem at the recipient's domain: its administrator "
	    "must update the TLSA records or the certificate." },
	{ "dnssec-invalid", "7.324",
	    "The DNS records of the receiving domain%D (its mail servers, "
	    "their addresses or their DANE records) could not be verified with "
	    "DNSSEC: the signatures are wrong or the lookup failed, so it "
	    "cannot be known safely where to deliver the message. This is a "
	    "problem at the recipient's domain or its DNS provider: its "
	    "administrator must repair the DNSSEC signing of the domain." },
	{ "certificate-host-mismatch", "7.325",
	    "The certificate that the mail server%M of the receiving domain%D "
	    "presents is not issued for the server's name, so the server could "
	    "not be verified and the message was not sent to it. This is a "
	    "problem at the recipient's domain: its administrator must install "
	    "a certificate that names the mail server, or publish a TLSA record "
	    "of the certificate itself (DANE-EE, \"3 1 1\")." },
	{ "validation-failure", "7.5",
	    "An encrypted connection to the mail server%M of the receiving "
	    "domain%D could not be set up (the TLS handshake failed), and the "
	    "domain requires one, so the message was not sent to it. This is "
	    "most likely a problem at the recipient's domain: its "
	    "administrator must check the TLS setup of the mail server." },
	{ "certificate-not-trusted", NULL,
	    "The certificate that the mail server%M of the receiving domain%D "
	    "presents is not issued by a trusted certificate authority, and "
	    "the domain requires a verified connection, so the message was not "
	    "sent to it. This is a problem at the recipient's domain: its "
	    "administrator must install a certificate from a trusted "
	    "authority." },
	{ "sts-webpki-invalid", NULL,
	    "The receiving domain%D requires verified encryption through its "
	    "MTA-STS policy, but the certificate of its mail server%M could "
	    "not be verified, so the message was not sent to it. This is a "
	    "problem at the recipient's domain: its administrator must fix the "
	    "certificate of the mail server." },
	{ "sts-policy-invalid", NULL,
	    "The receiving domain%D publishes an MTA-STS policy that is not "
	    "valid or does not list its mail server%M, so the message was not "
	    "sent to it. This is a problem at the recipient's domain: its "
	    "administrator must correct the MTA-STS policy." },
	{ "sts-policy-fetch-error", NULL,
	    "The receiving domain%D announces an MTA-STS policy, but the policy "
	    "could not be fetched, so it is not known how to deliver the "
	    "message safely. This is a problem at the recipient's domain: its "
	    "administrator must make the policy reachable." },
	{ NULL, "4.1",
	    "The mail server%M of the receiving domain%D could not be reached: "
	    "the connection was refused or there is no network path to it. "
	    "This is usually a problem at the recipient's domain (the server "
	    "is down or refuses connections)." },
	{ NULL, "4.2",
	    "The mail server%M of the receiving domain%D stopped answering: "
	    "the connection timed out or was lost. This is usually a passing "
	    "problem at the recipient's domain." },
	{ NULL, "4.3",
	    "The DNS servers of the receiving domain%D did not say where to "
	    "deliver its mail: the lookup failed or timed out. This is usually "
	    "a passing problem at the recipient's domain or its DNS provider." },
	{ NULL, "4.4",
	    "The mail server%M named by the receiving domain%D has no address "
	    "in DNS, so it cannot be reached. This is a problem at the "
	    "recipient's domain: its administrator must correct the MX records "
	    "or the addresses of the mail server." },
	{ NULL, "4.7",
	    "The message could not be delivered in the time this mail system "
	    "keeps trying; the technical details below show the last problem. "
	    "The fault is most likely at the recipient's domain." },
	{ NULL, "1.10",
	    "The domain%D declares that it does not accept email at all (it "
	    "publishes a \"null MX\" record, RFC 7505). This is the choice of "
	    "the recipient's domain, not a fault: check the address for typing "
	    "mistakes, or reach the recipient in another way." },
	{ NULL, "1.2",
	    "The domain%D does not exist in DNS. Check the address for typing "
	    "mistakes. If it is right, the problem is at the recipient's "
	    "domain: its registration or DNS may have lapsed." },
	{ NULL, "1.1",
	    "The mail server%M of the receiving domain%D says that the address "
	    "does not exist there. Check the address for typing mistakes; "
	    "otherwise this is decided at the recipient's domain, and only its "
	    "administrator can create the address." },
};

#define NEXPLAIN (sizeof(explain) / sizeof(explain[0]))
#define NO_REPLY 'n'

/* The "subject.detail" of "c.s.d" ("7.323"), or NULL when malformed. */
static const char *
status_code(const char *status)
{
	size_t i = 1, d;

	if (status == NULL || status[0] < '2' || status[0] > '5' ||
	    status[1] != '.')
		return NULL;
	for (d = 0; d < 2; d++) {
		size_t start = ++i;

		while (status[i] >= '0' && status[i] <= '9' && i - start < 3)
			i++;
		if (i == start || status[i] != (d == 0 ? '.' : '\0'))
			return NULL;
	}
	return status + 2;
}

void
dsn_text_status(const struct dsn_rcpt *r, char *out, size_t len)
{
	char cls = r->action == DSN_ACTION_FAILED ? '5' :
	    r->action == DSN_ACTION_DELAYED       ? '4' :
	                                            '2';

	ASSERT(len >= DSN_STATUS_LEN);
	if (status_code(r->status) != NULL)
		snprintf(out, len, "%c%s", cls, r->status + 1);
	else
		snprintf(out, len, "%c.0.0", cls);
}

/*
 * The explanation for status and result type rt. reply_class is the first
 * digit of the remote reply, NO_REPLY when it is known that no server
 * replied (an unknown status is then ours, not a refusal), 0 when unknown.
 */
static size_t
explain_find(const char *status, const char *rt, char reply_class)
{
	const char *code = status_code(status);
	size_t i;

	for (i = EX_TABLE; rt != NULL && i < NEXPLAIN; i++)
		if (explain[i].rt != NULL && strcmp(explain[i].rt, rt) == 0)
			return i;
	for (i = EX_TABLE; code != NULL && i < NEXPLAIN; i++)
		if (explain[i].code != NULL &&
		    strcmp(explain[i].code, code) == 0)
			return i;
	if (code == NULL)
		return EX_GENERIC;
	if (status[0] == '2')
		return EX_SUCCESS;
	if (reply_class == '5' || reply_class == '4')
		return reply_class == '5' ? EX_REMOTE_PERM : EX_REMOTE_TEMP;
	if (reply_class == NO_REPLY)
		return EX_GENERIC;
	return status[0] == '5' ? EX_REMOTE_PERM : EX_REMOTE_TEMP;
}

/* The template with %D and %M replaced by " name" or nothing. */
static void
explain_expand(struct buf *b, const char *t, const char *dom, const char *mx)
{
	const char *v;

	for (; *t != '\0'; t++) {
		if (t[0] != '%' || (t[1] != 'D' && t[1] != 'M')) {
			buf_addc(b, *t);
			continue;
		}
		v = *++t == 'D' ? dom : mx;
		if (v != NULL && *v != '\0')
			buf_printf(b, " %s", v);
	}
}

const char *
dsn_explain(const char *status, const char *result_type)
{
	/* Expanded once, on first use; the daemon has one thread. */
	static char generic[NEXPLAIN][1024];
	size_t i = explain_find(status, result_type, 0);
	struct buf b;

	if (generic[i][0] == '\0') {
		buf_init(&b, sizeof(generic[i]) - 1);
		explain_expand(&b, explain[i].text, NULL, NULL);
		ASSERT(b.len > 0 && b.len < sizeof(generic[i]));
		memcpy(generic[i], b.data, b.len + 1);
		buf_free(&b);
	}
	return generic[i];
}

bool
dsn_text_is_reply(const char *s)
{
	return s != NULL && s[0] >= '2' && s[0] <= '5' && s[1] >= '0' &&
	    s[1] <= '9' && s[2] >= '0' && s[2] <= '9' &&
	    (s[3] == '\0' || s[3] == ' ' || s[3] == '-');
}

char *
dsn_text_domain(const char *addr)
{
	const char *at = addr != NULL ? strrchr(addr, '@') : NULL;
	const uint8_t *p;

	if (at == NULL || at[1] == '\0' || strlen(at + 1) > HOST_MAX)
		return NULL;
	for (p = (const uint8_t *)at + 1; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		        *p >= 0x80))
			return NULL;
	return dsn_mime_clean(at + 1, HOST_MAX, false);
}

/* Explanation for r with names filled in, appended to b. */
static void
explain_rcpt(struct buf *b, const struct dsn_rcpt *r)
{
	char *dom = dsn_text_domain(r->addr);
	char *mx = dsn_mime_clean(r->remote_mta, HOST_MAX, false);
	char cls =
	    dsn_text_is_reply(r->diagnostic) ? r->diagnostic[0] : NO_REPLY;
	size_t i = explain_find(r->status, r->result_type, cls);

	explain_expand(b, explain[i].text, dom, mx);
	free(dom);
	free(mx);
}

char *
dsn_explain_rcpt(const struct dsn_rcpt *r)
{
	struct buf b;

	buf_init(&b, SIZE_MAX / 4);
	explain_rcpt(&b, r);
	return buf_steal(&b);
}

/* Columns of UTF-8 text: characters, not octets. */
static size_t
text_cols(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		if (((uint8_t)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/* One word of a wrapped paragraph (see text_wrap). */
static void
text_word(struct buf *b, size_t *col, bool *words, const char *indent,
    const char *w, size_t wl)
{
	size_t k, cols;

	while (wl > 0) {
		k = wl > WORD_CHUNK ? dsn_mime_cut(w, WORD_CHUNK) : wl;
		cols = text_cols(w, k);
		if (*words && *col + 1 + cols > WIDTH) {
			buf_printf(b, "\r\n%s", indent);
			*col = strlen(indent);
			*words = false;
		}
		if (*words)
			buf_addc(b, ' ');
		buf_add(b, w, k);
		*col += cols + (*words ? 1 : 0);
		*words = true;
		w += k;
		wl -= k;
	}
}

/*
 * Append lead, then the clean one-line text s wrapped at WIDTH columns,
 * continuation lines starting with indent, then CRLF. A word longer than a
 * line stands alone on one, split only past WORD_CHUNK octets.
 */
static void
text_wrap(struct buf *b, const char *lead, const char *indent, const char *s)
{
	size_t col = text_cols(lead, strlen(lead)), wl;
	bool words = false;
	const char *w;

	buf_adds(b, lead);
	while (*s != '\0') {
		while (*s == ' ')
			s++;
		for (w = s; *s != '\0' && *s != ' '; s++)
			;
		if ((wl = (size_t)(s - w)) > 0)
			text_word(b, &col, &words, indent, w, wl);
	}
	buf_adds(b, "\r\n");
}

/* "  Label:        value", the value cleaned and wrapped under itself. */
static void
text_detail(struct buf *b, const char *label, const char *value, size_t max)
{
	char lead[LABEL_W + 8], indent[LABEL_W + 1];
	char *v = dsn_mime_clean(value, max, false);

	snprintf(lead, sizeof(lead), "  %-*s", LABEL_W - 2, label);
	memset(indent, ' ', LABEL_W);
	indent[LABEL_W] = '\0';
	text_wrap(b, lead, indent, v);
	free(v);
}

static void
text_date(struct buf *b, const char *label, time_t t)
{
	char d[DSN_DATE_LEN];

	dsn_mime_date(d, sizeof(d), t);
	text_detail(b, label, d, sizeof(d));
}

static const char *
text_class(const char *status)
{
	if (status[0] == '5')
		return "permanent failure";
	if (status[0] == '4')
		return "temporary failure";
	return "success";
}

/* The first sentence about one recipient. */
static void
text_rcpt_head(struct buf *b, const struct dsn_rcpt *r, const char *addr)
{
	char until[DSN_DATE_LEN], *mx;
	struct buf s;

	buf_init(&s, SIZE_MAX / 4);
	switch (r->action) {
	case DSN_ACTION_FAILED:
		buf_printf(
		    &s, "Your message to %s could not be delivered.", addr);
		break;
	case DSN_ACTION_DELAYED:
		buf_printf(&s,
		    "Your message to %s has not been delivered yet; ", addr);
		if (r->will_retry_until != 0) {
			dsn_mime_date(
			    until, sizeof(until), r->will_retry_until);
			buf_printf(&s, "we will keep trying until %s.", until);
		} else
			buf_adds(&s, "we will keep trying.");
		break;
	case DSN_ACTION_DELIVERED:
	case DSN_ACTION_RELAYED:
		mx = dsn_mime_clean(r->remote_mta, HOST_MAX, false);
		buf_printf(&s, "Your message to %s was delivered%s%s.", addr,
		    *mx != '\0' ? " to the mail server " : "", mx);
		if (r->action == DSN_ACTION_RELAYED)
			buf_adds(&s,
			    " That server does not send delivery "
			    "reports, so this is the last report about "
			    "it.");
		free(mx);
		break;
	}
	text_wrap(b, "", "", buf_cstr(&s));
	buf_free(&s);
}

/* Status, result type, remote server, reply or reason, dates. */
static void
text_rcpt_details(struct buf *b, const struct dsn_rcpt *r, const char *status)
{
	char line[64];

	buf_adds(b, "\r\nTechnical details:\r\n");
	snprintf(line, sizeof(line), "%s (%s)", status, text_class(status));
	text_detail(b, "Status:", line, sizeof(line));
	if (r->result_type != NULL)
		text_detail(b, "Result type:", r->result_type, HOST_MAX);
	if (r->remote_mta != NULL)
		text_detail(b, "Remote server:", r->remote_mta, HOST_MAX);
	if (r->diagnostic != NULL)
		text_detail(b,
		    dsn_text_is_reply(r->diagnostic) ? "Remote reply:" :
		                                       "Reason:",
		    r->diagnostic, DIAG_MAX);
	if (r->last_attempt != 0)
		text_date(b, "Last attempt:", r->last_attempt);
	if (r->action == DSN_ACTION_DELAYED && r->will_retry_until != 0)
		text_date(b, "Retry until:", r->will_retry_until);
}

/* Everything about one recipient. status: as reported in part 2. */
static void
text_rcpt(struct buf *b, const struct dsn_rcpt *r, const char *status)
{
	struct dsn_rcpt fixed = *r;
	char *addr = dsn_mime_clean(r->addr, ADDR_MAX, false), *dom;
	struct buf e;

	fixed.status = status;
	buf_adds(b,
	    "\r\n--------------------------------------------------"
	    "--------------------\r\n");
	text_rcpt_head(b, r, addr);
	buf_adds(b, "\r\n");
	buf_init(&e, SIZE_MAX / 4);
	explain_rcpt(&e, &fixed);
	text_wrap(b, "", "", buf_cstr(&e));
	buf_free(&e);
	text_rcpt_details(b, r, status);
	if (r->action != DSN_ACTION_DELIVERED &&
	    r->action != DSN_ACTION_RELAYED &&
	    (dom = dsn_text_domain(r->addr)) != NULL) {
		buf_adds(b, "\r\n");
		buf_printf(b,
		    "An administrator can see the details with: danerelay "
		    "check %s\r\n",
		    dom);
		free(dom);
	}
	free(addr);
}

static void
text_intro(struct buf *b, const struct dsn_info *in)
{
	static const char *const what[] = {
		[DSN_ACTION_FAILED] = "Your message could not be delivered to "
		                      "one or more of its recipients.",
		[DSN_ACTION_DELAYED] =
		    "Your message has not been delivered yet "
		    "to one or more of its recipients. This "
		    "is only a warning: you do not need to "
		    "send it again.",
		[DSN_ACTION_DELIVERED] = "Your message was delivered to the "
		                         "recipients listed below, as you "
		                         "asked to be told.",
		[DSN_ACTION_RELAYED] = "Your message was delivered to the "
		                       "recipients listed below, as you asked "
		                       "to be told.",
	};
	char *host = dsn_mime_clean(in->m->reporting_mta, HOST_MAX, false);

	buf_printf(b, "This is the mail system at %s.\r\n\r\n", host);
	text_wrap(b, "", "", what[in->m->rcpts[0].action]);
	if (in->subject != NULL || in->m->arrival != 0)
		buf_adds(b, "\r\n");
	if (in->subject != NULL)
		text_detail(b, "Subject:", in->subject, 1024);
	if (in->m->arrival != 0)
		text_date(b, "Received:", in->m->arrival);
	free(host);
}

static void
text_outro(struct buf *b, const struct dsn_info *in)
{
	const char *s = NULL;

	if (in->ret_cut)
		s = "Your message was too large, or not in a form that can be "
		    "returned whole, so only its headers are attached.";
	else if (in->ret == DSN_RETURN_FULL)
		s = "Your message is attached.";
	else if (in->ret == DSN_RETURN_HDRS)
		s = "The headers of your message are attached.";
	if (s == NULL)
		return;
	buf_adds(b,
	    "\r\n--------------------------------------------------"
	    "--------------------\r\n");
	text_wrap(b, "", "", s);
}

void
dsn_text_human(struct buf *b, const struct dsn_info *in)
{
	char status[16];
	size_t i;

	text_intro(b, in);
	for (i = 0; i < in->m->nrcpt; i++) {
		dsn_text_status(&in->m->rcpts[i], status, sizeof(status));
		text_rcpt(b, &in->m->rcpts[i], status);
	}
	text_outro(b, in);
}
