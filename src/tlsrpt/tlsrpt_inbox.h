/*
 * tlsrpt_inbox: the TLS reports we received (RFC 8460 §4), read from a
 * directory of report files (raw JSON, gzip, or whole report emails, as
 * tlsrpt_parse() reads them) or from a maildir (its cur/ and new/), and
 * added up per reporting organisation, policy (type and domain) and day.
 *
 * Policies are never added up together: RFC 8460 §4 lets a sender list the
 * same sessions under an sts and a tlsa policy (Microsoft does), so each
 * (sender, policy-type, policy-domain, day) is its own row. A report whose
 * session totals disagree with its failure details is counted and listed.
 *
 * The scan is bounded (TLSRPT_INBOX_FILES_MAX files, TLSRPT_INPUT_MAX each,
 * TLSRPT_INBOX_BYTES_MAX in all) and never follows a symbolic link; what it
 * cannot read or parse is listed as skipped with the reason. One code for
 * `danerelay tlsrpt received` and the console's /tlsrpt page.
 */
#ifndef DR_TLSRPT_INBOX_H
#define DR_TLSRPT_INBOX_H

#include <jansson.h>
#include <stdio.h>

struct tlsrpt_inbox;

#define TLSRPT_INBOX_FILES_MAX   5000 /* files read by one scan */
#define TLSRPT_INBOX_BYTES_MAX   (256L * 1024 * 1024) /* octets in all */
#define TLSRPT_INBOX_SKIPPED_MAX 200 /* skipped files listed (all counted) */
#define TLSRPT_INBOX_FLAGGED_MAX 200 /* inconsistent policies listed */

/*
 * Scan dir (a directory of report files, or a maildir: dir/cur and
 * dir/new). Returns new (free with tlsrpt_inbox_free), or NULL with
 * *errstr a new message (caller frees) when dir cannot be opened.
 */
struct tlsrpt_inbox *tlsrpt_inbox_scan(const char *dir, char **errstr);

/* Free b; NULL is fine. */
void tlsrpt_inbox_free(struct tlsrpt_inbox *b);

/*
 * The result, borrowed (valid until tlsrpt_inbox_free):
 *   "directory", "maildir" (bool), "files" (looked at), "reports" (read),
 *   "truncated" (a cap stopped the scan),
 *   "skipped":  [{"file", "reason"}] (at most TLSRPT_INBOX_SKIPPED_MAX;
 *               "nskipped" counts them all),
 *   "rows":     [{"sender", "policy-type", "policy-domain", "day",
 *               "reports", "successful", "failed", "failures":
 *               {result-type: sessions}, "inconsistent": reports}], sorted
 *               by sender, policy-domain, policy-type, day,
 *   "inconsistent": [{"file", "sender", "report-id", "day", "policy-type",
 *               "policy-domain", "failed", "failure-details-sessions"}]
 *               (at most TLSRPT_INBOX_FLAGGED_MAX).
 * Strings from the reports are as sent: escape them where they are shown.
 */
const json_t *tlsrpt_inbox_json(const struct tlsrpt_inbox *b);

/* The result as text for a terminal (control characters replaced). */
void tlsrpt_inbox_print(FILE *fp, const struct tlsrpt_inbox *b);

#endif
