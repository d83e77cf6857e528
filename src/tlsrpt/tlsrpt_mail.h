/*
 * tlsrpt_mail: the email form of a TLS report (RFC 8460 §5.3): a
 * multipart/report; report-type="tlsrpt" message with a human-readable
 * text/plain part and the gzipped report as application/tlsrpt+gzip
 * (base64, with the §5.1 file name), the header fields TLS-Report-Domain
 * and TLS-Report-Submitter, and the Subject of §5.3 ("Report Domain: D
 * Submitter: S Report-ID: <ID>"). The message is returned unsigned; the
 * caller puts the DKIM-Signature (dkim_sign) in front of it.
 */
#ifndef DR_TLSRPT_MAIL_H
#define DR_TLSRPT_MAIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct tlsrpt_mail {
	const char *from;          /* header From address */
	const char *to;            /* the mailto: address of the rua */
	const char *policy_domain; /* TLS-Report-Domain */
	const char *submitter;     /* TLS-Report-Submitter */
	const char *report_id; /* id-left@id-right, Report-ID and Message-ID */
	const char *organization; /* for the text part */
	time_t begin, end;        /* the report's date-range */
	time_t now;               /* Date */
	const uint8_t *gz;        /* application/tlsrpt+gzip content */
	size_t gzlen;
};

/*
 * The message, CRLF line ends, lines of at most 78 octets. Returns new
 * (caller frees) with *len; NULL when a field is missing or a name or
 * address holds characters a header cannot carry.
 */
uint8_t *tlsrpt_mail_build(const struct tlsrpt_mail *m, size_t *len);

/*
 * The §5.1 file name "submitter!policy-domain!begin!end!unique.json.gz"
 * into out. unique is letters and digits (§5.1 unique-id).
 */
void tlsrpt_mail_filename(char *out, size_t len, const char *submitter,
    const char *policy_domain, time_t begin, time_t end, const char *unique);

#endif
