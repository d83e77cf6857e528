/*
 * tlsrpt_parse: reading the TLS reports (RFC 8460 §4) that other MTAs
 * send about their sessions to our MX hosts, for `danerelay tlsrpt parse`.
 *
 * A report comes as raw JSON (application/tlsrpt+json), as gzip
 * (application/tlsrpt+gzip, §5.2) or as the whole report email (§5.3: the
 * first such part of the MIME tree, base64 or quoted-printable). The
 * format is found from the content, never from a file name.
 *
 * Real senders deviate from the schema, so the reader is lenient where the
 * meaning is still clear and says so: every tolerated deviation adds a
 * warning (policy-string or mx-host as one string instead of an array,
 * counts as strings, an empty or missing sending-mta-ip, a null
 * contact-info, a missing policy-domain taken from TLS-Report-Domain, ...).
 * What cannot be read is an error: input that is neither JSON, gzip nor a
 * message, invalid JSON, truncated or corrupt gzip, more than
 * TLSRPT_INFLATE_MAX octets once inflated (a gzip bomb), no "policies"
 * array, a count that is not a number, more JSON objects and arrays than
 * a real report has (a report built to exhaust memory).
 *
 * The result is a normalized JSON document (the fields of §4.4, each of
 * the type the schema says, missing ones left out) plus a summary per
 * policy and result type, and a flag for a report whose totals disagree
 * with its failure details. A fuzz target (fuzz/fuzz_tlsrpt_parse.c)
 * drives the whole reader.
 */
#ifndef DR_TLSRPT_PARSE_H
#define DR_TLSRPT_PARSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tlsrpt_report;

/* Largest input taken (an email carries the report in base64: 4/3). */
#define TLSRPT_INPUT_MAX (20 * 1024 * 1024)

/* Largest report once decoded and inflated (RFC 8460 §5.2 mentions ten
 * megabytes as a common receiver limit). */
#define TLSRPT_INFLATE_MAX (10 * 1024 * 1024)

/*
 * Read one report from the len octets at p. Returns new (caller frees with
 * tlsrpt_report_free), or NULL with *errstr a new one-line message (caller
 * frees).
 */
struct tlsrpt_report *tlsrpt_parse(const uint8_t *p, size_t len, char **errstr);

/* Free r; NULL is fine. */
void tlsrpt_report_free(struct tlsrpt_report *r);

/*
 * The normalized form, borrowed (valid until tlsrpt_report_free):
 *   "format":   "json", "gzip", "email/json" or "email/gzip"
 *   "email":    (email only) from, date, subject, message-id,
 *               tls-report-domain, tls-report-submitter as found in the
 *               message that holds the report (the forwarded one when it
 *               came in a message/rfc822 part), and dkim-signature (true
 *               when that message has one; it is not verified here)
 *   "warnings": array of strings, one per tolerated deviation
 *   "report":   the report with the RFC 8460 §4.4 field names; counts are
 *               integers, policy-string and mx-host arrays of strings,
 *               failure-details an array
 *   "summary":  array, one object per policy in the order of the report
 *               (never added up: RFC 8460 §4 lets a sender list the same
 *               sessions under an sts and a tlsa policy): policy-type,
 *               policy-domain (null when unknown), mx-host, successful,
 *               failed (its summary's totals), failures: one object per
 *               result-type with sessions and the details
 *               (receiving-mx-hostname, receiving-ip, sending-mta-ip,
 *               failed-session-count, failure-reason-code ... as in the
 *               report), failure-details-sessions (their
 *               failed-session-count summed) and consistent (whether that
 *               sum is the policy's failed total)
 *   "inconsistent": true when some policy is not consistent
 */
const json_t *tlsrpt_report_json(const struct tlsrpt_report *r);

/* Number of warnings, and warning i (borrowed). */
size_t tlsrpt_report_nwarnings(const struct tlsrpt_report *r);
const char *tlsrpt_report_warning(const struct tlsrpt_report *r, size_t i);

/*
 * Print the human summary of r to fp: who sent it and for when, a warning
 * when it is inconsistent, then per policy (type, domain, mx-host) its
 * successful and failed session counts and its failures grouped by result
 * type with receiving MX, IP and count.
 * Text from the report is printed with control characters replaced, so a
 * report cannot drive the terminal.
 */
void tlsrpt_report_print(FILE *fp, const struct tlsrpt_report *r);

/* s to fp with C0 and C1 controls and DEL as '?' (NULL: "-"). */
void tlsrpt_fputs_clean(FILE *fp, const char *s);

#endif
