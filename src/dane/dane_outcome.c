/*
 * dane_outcome: classification of failures (docs/VERDICTS.md).
 */
#include "dane/dane_outcome.h"

#include <openssl/x509_vfy.h>

#include "dns/dns.h"
#include "smtp/smtp_session.h"
#include "tls/tls_client.h"

const char *
dane_level_str(enum dane_level level)
{
	switch (level) {
	case DANE_LEVEL_AUTH:
		return "dane";
	case DANE_LEVEL_ENCRYPT:
		return "encrypt";
	case DANE_LEVEL_OPPORTUNISTIC:
		return "opportunistic";
	case DANE_LEVEL_UNUSABLE:
		return "unusable";
	}
	return "?";
}

void
dane_outcome_dns(struct outcome *o, const struct dns_answer *a)
{
	const char *name = dns_answer_qname(a);
	const char *type = dns_type_str(dns_answer_qtype(a));

	if (dns_answer_status(a) == DNS_ERR_BOGUS) {
		const char *why = dns_answer_why_bogus(a);

		outcome_set(o, OUTCOME_TEMP, "4.7.324", RT_DNSSEC_INVALID,
		    "DNSSEC validation failed for %s %s: %s", name, type,
		    why != NULL ? why : "bogus or indeterminate answer");
		return;
	}
	outcome_set(o, OUTCOME_TEMP, "4.4.3", RT_NONE,
	    "DNS lookup of %s %s failed: %s", name, type, dns_answer_error(a));
}

void
dane_outcome_tlsa_lookup(struct outcome *o, const struct dns_answer *a)
{
	const char *why = dns_answer_status(a) == DNS_ERR_BOGUS ?
	    dns_answer_why_bogus(a) :
	    dns_answer_error(a);

	outcome_set(o, OUTCOME_TEMP, "4.7.324", RT_DNSSEC_INVALID,
	    "TLSA lookup of %s failed (%s): %s; the server must be treated as "
	    "unreachable (RFC 7672 §2.1.2)",
	    dns_answer_qname(a), dns_status_str(dns_answer_status(a)),
	    why != NULL ? why : "no answer");
}

static void
dane_outcome_starttls(struct outcome *o, const struct smtp_result *r,
    enum dane_level level, const char *host)
{
	const char *why = level == DANE_LEVEL_AUTH ?
	    "it publishes usable TLSA "
	    "records" :
	    "it publishes TLSA records (none usable)";

	if (r->error == SMTP_ERR_STARTTLS_NOT_OFFERED)
		outcome_set(o, OUTCOME_TEMP, "4.7.321",
		    RT_STARTTLS_NOT_SUPPORTED,
		    "%s does not offer STARTTLS, but TLS is required because "
		    "%s (RFC 7672 §2.2)",
		    host, why);
	else
		outcome_set(o, OUTCOME_TEMP, "4.7.321",
		    RT_STARTTLS_NOT_SUPPORTED,
		    "%s refused STARTTLS (%s), but TLS is required because %s "
		    "(RFC 7672 §2.2)",
		    host, r->reply_text, why);
}

void
dane_outcome_smtp(struct outcome *o, const struct smtp_result *r,
    enum dane_level level, const char *host)
{
	const char *phase = smtp_phase_str(r->phase);

	switch (r->error) {
	case SMTP_ERR_NONE:
	case SMTP_ERR_ABORTED:
		outcome_ok(o);
		break;
	case SMTP_ERR_CONNECT_REFUSED:
		outcome_set(o, OUTCOME_TEMP, "4.4.1", RT_NONE,
		    "cannot connect to %s: %s", host, r->error_text);
		break;
	case SMTP_ERR_CONNECT_TIMEOUT:
		outcome_set(o, OUTCOME_TEMP, "4.4.1", RT_NONE,
		    "connection to %s timed out", host);
		break;
	case SMTP_ERR_TIMEOUT:
		outcome_set(o, OUTCOME_TEMP, "4.4.2", RT_NONE,
		    "%s: timeout waiting for the reply to %s", host, phase);
		break;
	case SMTP_ERR_PROTOCOL:
		outcome_set(o, OUTCOME_TEMP, "4.4.2", RT_NONE,
		    "%s: malformed reply during %s: %s", host, phase,
		    r->error_text);
		break;
	case SMTP_ERR_CLOSED:
		outcome_set(o, OUTCOME_TEMP, "4.4.2", RT_NONE,
		    "%s closed the connection during %s", host, phase);
		break;
	case SMTP_ERR_REPLY:
		if (r->reply_code >= 500)
			outcome_set(o, OUTCOME_PERM, "5.0.0", RT_NONE,
			    "%s answered %s with: %s", host, phase,
			    r->reply_text);
		else
			outcome_set(o, OUTCOME_TEMP, "4.0.0", RT_NONE,
			    "%s answered %s with: %s", host, phase,
			    r->reply_text);
		break;
	case SMTP_ERR_STARTTLS_NOT_OFFERED:
	case SMTP_ERR_STARTTLS_REFUSED:
		dane_outcome_starttls(o, r, level, host);
		break;
	case SMTP_ERR_TLS_HANDSHAKE:
		outcome_set(o, OUTCOME_TEMP, "4.7.5", RT_VALIDATION_FAILURE,
		    "TLS handshake with %s failed: %s", host, r->error_text);
		break;
	}
}

void
dane_outcome_verify(struct outcome *o, long err, const char *host)
{
	switch (err) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
		outcome_set(o, OUTCOME_TEMP, "4.7.325",
		    RT_CERTIFICATE_HOST_MISMATCH,
		    "the certificate of %s chains "
		    "to its DANE-TA trust anchor but names none of the reference "
		    "identifiers (RFC 7672 §3.2.2)",
		    host);
		break;
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		outcome_set(o, OUTCOME_TEMP, "4.7.322", RT_CERTIFICATE_EXPIRED,
		    "the certificate chain of %s matches its DANE-TA record but "
		    "is not valid now: %s",
		    host, tls_verify_error_str(err));
		break;
	default:
		outcome_set(o, OUTCOME_TEMP, "4.7.323", RT_TLSA_INVALID,
		    "no TLSA record of %s matches the certificate chain it "
		    "presented (%s)",
		    host,
		    err == X509_V_OK ? "no match" : tls_verify_error_str(err));
		break;
	}
}
