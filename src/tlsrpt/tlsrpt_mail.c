/*
 * tlsrpt_mail: RFC 8460 §5.3 report messages (example in §5.3.1). The
 * boundary is derived from the report id, so the same report gives the
 * same message (golden tests), and cannot occur in base64 or in the text.
 */
#include "tlsrpt/tlsrpt_mail.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "dsn/dsn_int.h"

#define MAIL_MAX  (16u * 1024 * 1024)
#define B64_LINE  57 /* octets per base64 line: 76 characters */
#define FIELD_MAX 254

/* Printable ASCII without the characters that would break a field. */
static bool
mail_token_ok(const char *s)
{
	size_t i, n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > FIELD_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("<>\"\\", s[i]))
			return false;
	return true;
}

void
tlsrpt_mail_filename(char *out, size_t len, const char *submitter,
    const char *policy_domain, time_t begin, time_t end, const char *unique)
{
	snprintf(out, len, "%s!%s!%lld!%lld!%s.json.gz", submitter,
	    policy_domain, (long long)begin, (long long)end, unique);
}

static void
mail_base64(struct buf *b, const uint8_t *p, size_t n)
{
	char line[80];
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = n - i < B64_LINE ? n - i : B64_LINE;
		EVP_EncodeBlock((unsigned char *)line, p + i, (int)k);
		buf_printf(b, "%s\r\n", line);
	}
}

/* The letters and digits of the report id: unique-id and boundary. */
static void
mail_unique(char *out, size_t len, const char *id)
{
	size_t i, k = 0;

	for (i = 0; id[i] != '\0' && id[i] != '@' && k + 1 < len; i++)
		if ((id[i] >= 'a' && id[i] <= 'z') ||
		    (id[i] >= 'A' && id[i] <= 'Z') ||
		    (id[i] >= '0' && id[i] <= '9'))
			out[k++] = id[i];
	out[k] = '\0';
}

static void
mail_header(struct buf *b, const struct tlsrpt_mail *m, const char *bound)
{
	char date[64], *v;

	dsn_mime_date(date, sizeof(date), m->now);
	buf_printf(b, "From: <%s>\r\n", m->from);
	buf_printf(b, "Date: %s\r\n", date);
	buf_printf(b, "To: <%s>\r\n", m->to);
	v = xasprintf("Report Domain: %s Submitter: %s Report-ID: <%s>",
	    m->policy_domain, m->submitter, m->report_id);
	dsn_mime_field(b, "Subject", v);
	free(v);
	buf_printf(b, "Message-ID: <%s>\r\n", m->report_id);
	buf_printf(b, "TLS-Report-Domain: %s\r\n", m->policy_domain);
	buf_printf(b, "TLS-Report-Submitter: %s\r\n", m->submitter);
	buf_printf(b, "Auto-Submitted: auto-generated\r\n"); /* RFC 3834 */
	buf_printf(b, "MIME-Version: 1.0\r\n");
	buf_printf(b,
	    "Content-Type: multipart/report; report-type=\"tlsrpt\";"
	    "\r\n\tboundary=\"%s\"\r\n",
	    bound);
}

static void
mail_text(struct buf *b, const struct tlsrpt_mail *m, const char *bound)
{
	char from[64], to[64];

	dsn_mime_date(from, sizeof(from), m->begin);
	dsn_mime_date(to, sizeof(to), m->end);
	buf_printf(b, "--%s\r\n", bound);
	buf_printf(b,
	    "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n\r\n");
	buf_printf(b,
	    "This is an aggregate TLS report (RFC 8460) from %s\r\n"
	    "about the mail it sent to %s\r\n"
	    "from %s\r\n"
	    "to   %s.\r\n\r\n"
	    "The report is attached as application/tlsrpt+gzip.\r\n\r\n",
	    m->submitter, m->policy_domain, from, to);
}

static void
mail_report(struct buf *b, const struct tlsrpt_mail *m, const char *bound,
    const char *unique)
{
	char name[700];

	tlsrpt_mail_filename(name, sizeof(name), m->submitter, m->policy_domain,
	    m->begin, m->end, unique);
	buf_printf(b, "--%s\r\n", bound);
	buf_printf(b,
	    "Content-Type: application/tlsrpt+gzip\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment;\r\n"
	    "\tfilename=\"%s\"\r\n\r\n",
	    name);
	mail_base64(b, m->gz, m->gzlen);
	buf_printf(b, "\r\n--%s--\r\n", bound);
}

uint8_t *
tlsrpt_mail_build(const struct tlsrpt_mail *m, size_t *len)
{
	char unique[128], bound[160];
	struct buf b;
	uint8_t *out;

	if (!mail_token_ok(m->from) || !mail_token_ok(m->to) ||
	    !mail_token_ok(m->policy_domain) || !mail_token_ok(m->submitter) ||
	    !mail_token_ok(m->report_id) || m->gz == NULL)
		return NULL;
	mail_unique(unique, sizeof(unique), m->report_id);
	snprintf(bound, sizeof(bound), "=_tlsrpt_%.60s", unique);
	buf_init(&b, MAIL_MAX);
	mail_header(&b, m, bound);
	buf_printf(&b,
	    "\r\nThis is a multipart message in MIME format.\r\n"
	    "\r\n");
	mail_text(&b, m, bound);
	mail_report(&b, m, bound, unique);
	*len = b.len;
	out = xmalloc(b.len + 1);
	memcpy(out, b.data, b.len + 1);
	buf_free(&b);
	return out;
}
