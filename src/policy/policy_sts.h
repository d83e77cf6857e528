/*
 * policy_sts: how an MTA-STS policy (RFC 8461) is applied to one MX host,
 * decided in one place for the relay and the analyzer alike:
 *   - only when the host has no DANE policy: RFC 8461 §2, DANE wins, and a
 *     DNSSEC failure never falls back to MTA-STS;
 *   - enforce: an MX outside the policy's patterns is not used (§4.1), TLS
 *     is required and the certificate must pass PKIX validation for the MX
 *     name (§4.2); failures are 4.7.5 with the RFC 8460 result type;
 *   - testing: the same checks, but failures are only reported (§5);
 *   - none: nothing.
 */
#ifndef DR_POLICY_STS_H
#define DR_POLICY_STS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "core/outcome.h"
#include "dane/dane_outcome.h"

struct sts_policy;
struct smtp_result;

enum policy_sts_use {
	POLICY_STS_OFF,     /* no policy, mode none, or DANE applies */
	POLICY_STS_TESTING, /* check and report, deliver anyway */
	POLICY_STS_ENFORCE, /* check and refuse */
};

/*
 * Whether the policy p (NULL = none) applies to a host of DANE level
 * level: only to hosts without secure TLSA (DANE_LEVEL_OPPORTUNISTIC).
 */
enum policy_sts_use policy_sts_use(
    const struct sts_policy *p, enum dane_level level);

/* §4.1: is host in the policy? false with o filled (4.7.5) when not. */
bool policy_sts_mx_ok(
    const struct sts_policy *p, const char *host, struct outcome *o);

/* §4.2: prepare ssl for PKIX validation of the MX name. */
void policy_sts_ssl(SSL *ssl, const char *host);

/* RFC 8460 §4.3 result type of a PKIX verify error (X509_V_ERR_*, not
 * X509_V_OK): host mismatch, expired (or not yet valid), else not trusted. */
enum result_type policy_sts_result_type(long verify_err);

/* §4.2: judge the handshake; false with o filled (4.7.5) on failure. */
bool policy_sts_verify(SSL *ssl, const char *host, struct outcome *o);

/* A session that ended before TLS under an MTA-STS policy (4.7.5). */
void policy_sts_session(
    struct outcome *o, const struct smtp_result *r, const char *host);

#endif
