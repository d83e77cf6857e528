/*
 * policy_sts: MTA-STS applied to one MX host (RFC 8461 §4, §5).
 */
#include "policy/policy_sts.h"

#include <openssl/x509_vfy.h>

#include "smtp/smtp_session.h"
#include "sts/sts.h"
#include "tls/tls_client.h"

enum policy_sts_use
policy_sts_use(const struct sts_policy *p, enum dane_level level)
{
	/* RFC 8461 §2: DANE first; a DANE (or DNSSEC) failure never falls
	 * back to MTA-STS, so only hosts without a DANE policy qualify. */
	if (p == NULL || level != DANE_LEVEL_OPPORTUNISTIC)
		return POLICY_STS_OFF;
	switch (sts_policy_mode(p)) {
	case STS_MODE_ENFORCE:
		return POLICY_STS_ENFORCE;
	case STS_MODE_TESTING:
		return POLICY_STS_TESTING;
	case STS_MODE_NONE:
		break;
	}
	return POLICY_STS_OFF;
}

bool
policy_sts_mx_ok(
    const struct sts_policy *p, const char *host, struct outcome *o)
{
	if (sts_policy_mx_match(p, host))
		return true;
	outcome_set(o, OUTCOME_TEMP, "4.7.5", RT_VALIDATION_FAILURE,
	    "MTA-STS: %s is not one of the MX hosts the policy allows "
	    "(RFC 8461 §4.1)",
	    host);
	return false;
}

void
policy_sts_ssl(SSL *ssl, const char *host)
{
	tls_pkix_setup(ssl, host);
}

enum result_type
policy_sts_result_type(long err)
{
	switch (err) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return RT_CERTIFICATE_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return RT_CERTIFICATE_EXPIRED;
	default:
		return RT_CERTIFICATE_NOT_TRUSTED;
	}
}

bool
policy_sts_verify(SSL *ssl, const char *host, struct outcome *o)
{
	long err = tls_verify_result(ssl);

	if (err == X509_V_OK)
		return true;
	outcome_set(o, OUTCOME_TEMP, "4.7.5", policy_sts_result_type(err),
	    "MTA-STS: the certificate of %s fails PKIX validation: %s "
	    "(RFC 8461 §4.2)",
	    host, tls_verify_error_str(err));
	return false;
}

void
policy_sts_session(
    struct outcome *o, const struct smtp_result *r, const char *host)
{
	if (r->error == SMTP_ERR_STARTTLS_NOT_OFFERED ||
	    r->error == SMTP_ERR_STARTTLS_REFUSED) {
		outcome_set(o, OUTCOME_TEMP, "4.7.5", RT_STARTTLS_NOT_SUPPORTED,
		    "MTA-STS: %s does not do STARTTLS, but its domain's "
		    "policy requires TLS (RFC 8461 §5)",
		    host);
		return;
	}
	if (r->error == SMTP_ERR_TLS_HANDSHAKE) {
		outcome_set(o, OUTCOME_TEMP, "4.7.5", RT_VALIDATION_FAILURE,
		    "MTA-STS: TLS handshake with %s failed: %s", host,
		    r->error_text);
		return;
	}
	dane_outcome_smtp(o, r, DANE_LEVEL_OPPORTUNISTIC, host);
}
