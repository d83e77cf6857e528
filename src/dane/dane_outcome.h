/*
 * dane_outcome: the one table that turns what went wrong (a DNS status, an
 * SMTP session result, an X509 verification error) into an outcome: class,
 * enhanced status code and RFC 8460 result type. docs/VERDICTS.md is the
 * same table in prose. Nothing else in danerelay picks status codes for
 * DANE/DNSSEC failures.
 */
#ifndef DR_DANE_OUTCOME_H
#define DR_DANE_OUTCOME_H

#include "core/outcome.h"

struct dns_answer;
struct smtp_result;

/* What RFC 7672 §2.2 asks of the connection to one SMTP server. */
enum dane_level {
	DANE_LEVEL_AUTH,          /* secure usable TLSA: TLS + authentication */
	DANE_LEVEL_ENCRYPT,       /* secure TLSA, all unusable: TLS, no auth */
	DANE_LEVEL_OPPORTUNISTIC, /* no secure TLSA: TLS if offered */
	DANE_LEVEL_UNUSABLE,      /* lookup error: this server cannot be used */
};

const char *dane_level_str(enum dane_level level);

/*
 * A failed lookup (status != DNS_OK) of an MX or address RRset:
 * bogus -> 4.7.324 dnssec-invalid, others -> 4.4.3 (RFC 7672 §2.1.2).
 */
void dane_outcome_dns(struct outcome *o, const struct dns_answer *a);

/*
 * A failed TLSA lookup: always 4.7.324 dnssec-invalid. RFC 7672 §2.1.2:
 * the server MUST be treated as unreachable whatever the kind of failure,
 * and the TLSA query only happens in signed zones, so it is the DANE policy
 * that could not be obtained.
 */
void dane_outcome_tlsa_lookup(struct outcome *o, const struct dns_answer *a);

/* An SMTP session that ended in error, under the given level. */
void dane_outcome_smtp(struct outcome *o, const struct smtp_result *r,
    enum dane_level level, const char *host);

/*
 * A completed handshake under DANE_LEVEL_AUTH whose verification failed
 * with X509 error err (X509_V_OK with no TLSA match is also a failure).
 */
void dane_outcome_verify(struct outcome *o, long err, const char *host);

#endif
