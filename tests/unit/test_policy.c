/*
 * test_policy: the per-destination policy (policy.c) built from config
 * text, domain by domain: security level, log-only mode, routes, exceptions
 * and the defaults they inherit; and how MTA-STS applies to one MX host
 * (policy_sts.c, RFC 8461 §2, §4.1, §4.2, §5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509_vfy.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/outcome.h"
#include "policy/policy.h"
#include "policy/policy_sts.h"
#include "smtp/smtp_session.h"
#include "sts/sts.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct policy *
policy_from(const char *text, struct conf **cp)
{
	char *err = NULL;
	struct conf *c = conf_parse(text, strlen(text), "test.conf", &err);

	if (c == NULL)
		printf("  conf_parse: %s\n", err);
	T_CHECK(c != NULL);
	free(err);
	*cp = c;
	return c != NULL ? policy_new(c) : NULL;
}

struct dest_case {
	const char *domain;
	enum policy_security security;
	bool log_only;
	const char *route_host; /* NULL: none */
	bool route_mx;
	unsigned port;
	const char *exception;
};

#define CONF_ALL                                               \
	"[policy]\nsecurity = dane\n"                          \
	"[delivery]\nport = 2525\n"                            \
	"[domain only.test]\nsecurity = dane-only\n"           \
	"[domain enc.test]\nsecurity = encrypt\n"              \
	"[domain may.test]\nsecurity = may\n"                  \
	"[domain lo.test]\nmode = log-only\n"                  \
	"[domain lit.test]\nroute = [Relay.Example.NET]:587\n" \
	"[domain mx.test]\nroute = hub.example.net:26\n"       \
	"[domain bare.test]\nroute = hub.example.net\n"        \
	"[domain exc.test]\nexception = ticket 42: broken\n"   \
	"[domain exc-enc.test]\nexception = ticket 43\n"       \
	"security = encrypt\n"

static const struct dest_case dest_cases[] = {
	/* no [domain] section: the [policy] and [delivery] defaults */
	{ "other.test", POLICY_DANE, false, NULL, false, 2525, NULL },
	{ "only.test", POLICY_DANE_ONLY, false, NULL, false, 2525, NULL },
	{ "enc.test", POLICY_ENCRYPT, false, NULL, false, 2525, NULL },
	{ "may.test", POLICY_MAY, false, NULL, false, 2525, NULL },
	{ "lo.test", POLICY_DANE, true, NULL, false, 2525, NULL },
	/* [host]:port: that host, no MX lookup, lowercased */
	{ "lit.test", POLICY_DANE, false, "relay.example.net", false, 587,
	    NULL },
	/* host:port: the MX hosts of host */
	{ "mx.test", POLICY_DANE, false, "hub.example.net", true, 26, NULL },
	{ "bare.test", POLICY_DANE, false, "hub.example.net", true, 2525,
	    NULL },
	/* an exception relaxes to may unless security says otherwise */
	{ "exc.test", POLICY_MAY, false, NULL, false, 2525,
	    "ticket 42: broken" },
	{ "exc-enc.test", POLICY_ENCRYPT, false, NULL, false, 2525,
	    "ticket 43" },
	/* exact match only: a subdomain gets the defaults */
	{ "sub.only.test", POLICY_DANE, false, NULL, false, 2525, NULL },
};

static bool
streq_null(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* Each row of cases holds for the policy of text. */
static void
policy_check_table(
    const char *text, const struct dest_case *cases, size_t ncases)
{
	struct conf *c;
	struct policy *p = policy_from(text, &c);
	struct policy_dest d;
	size_t i;

	if (p == NULL) {
		conf_free(c);
		return;
	}
	for (i = 0; i < ncases; i++) {
		const struct dest_case *w = &cases[i];

		memset(&d, 0xa5, sizeof(d));
		policy_for(p, w->domain, &d);
		if (d.security != w->security || d.log_only != w->log_only ||
		    !streq_null(d.route_host, w->route_host) ||
		    (w->route_host != NULL && d.route_mx != w->route_mx) ||
		    d.port != w->port ||
		    !streq_null(d.exception, w->exception)) {
			printf("  %s: %s log_only=%d route=%s mx=%d port=%u "
			       "exception=%s\n",
			    w->domain, policy_security_str(d.security),
			    d.log_only, d.route_host ? d.route_host : "-",
			    d.route_mx, d.port,
			    d.exception ? d.exception : "-");
			T_FAIL("policy as in the table");
		}
	}
	policy_free(p);
	conf_free(c);
}

static void
test_policy_table(void)
{
	policy_check_table(CONF_ALL, dest_cases, NELEM(dest_cases));
}

/* [delivery] relayhost: every domain's route but those with their own. */
#define CONF_RELAYHOST                                    \
	"[delivery]\nport = 2525\n"                       \
	"relayhost = [Smart.Example.NET]:587\n"           \
	"[domain own.test]\nroute = hub.example.net:26\n" \
	"[domain direct.test]\nroute = direct\n"          \
	"[domain only.test]\nsecurity = dane-only\n"      \
	"[domain exc.test]\nexception = ticket 44\n"

static const struct dest_case relayhost_cases[] = {
	{ "other.test", POLICY_DANE, false, "smart.example.net", false, 587,
	    NULL },
	/* a route of its own wins, with its own port */
	{ "own.test", POLICY_DANE, false, "hub.example.net", true, 26, NULL },
	/* direct: its own MX at [delivery] port */
	{ "direct.test", POLICY_DANE, false, NULL, false, 2525, NULL },
	/* a section without a route still goes through the relayhost */
	{ "only.test", POLICY_DANE_ONLY, false, "smart.example.net", false, 587,
	    NULL },
	{ "exc.test", POLICY_MAY, false, "smart.example.net", false, 587,
	    "ticket 44" },
};

static void
test_policy_relayhost(void)
{
	policy_check_table(
	    CONF_RELAYHOST, relayhost_cases, NELEM(relayhost_cases));
}

/* Global log-only and cleartext: every domain inherits them, and a
 * domain may go back to enforce. */
static void
test_policy_log_only(void)
{
	struct conf *c;
	struct policy *p = policy_from("[policy]\nsecurity = dane-only\n"
	                               "mode = log-only\n"
	                               "log_only_cleartext = yes\n"
	                               "[domain strict.test]\nmode = enforce\n",
	    &c);
	struct policy_dest d;

	if (p == NULL) {
		conf_free(c);
		return;
	}
	policy_for(p, "any.test", &d);
	T_CHECK(d.security == POLICY_DANE_ONLY && d.log_only &&
	    d.log_only_cleartext && d.port == 25 && d.route_host == NULL &&
	    d.exception == NULL);
	policy_for(p, "strict.test", &d);
	T_CHECK(d.security == POLICY_DANE_ONLY && !d.log_only &&
	    d.log_only_cleartext);
	policy_free(p);
	conf_free(c);
	/* The defaults of an empty configuration. */
	p = policy_from("", &c);
	if (p == NULL) {
		conf_free(c);
		return;
	}
	policy_for(p, "any.test", &d);
	T_CHECK(d.security == POLICY_DANE && !d.log_only &&
	    !d.log_only_cleartext && d.port == 25);
	policy_free(p);
	conf_free(c);
}

static void
test_policy_security_str(void)
{
	T_STREQ(policy_security_str(POLICY_DANE), "dane");
	T_STREQ(policy_security_str(POLICY_DANE_ONLY), "dane-only");
	T_STREQ(policy_security_str(POLICY_ENCRYPT), "encrypt");
	T_STREQ(policy_security_str(POLICY_MAY), "may");
}

/* ---- MTA-STS per MX host -------------------------------------------- */

static struct sts_policy *
sts_from(const char *mode)
{
	char body[256];
	const char *err = NULL;
	struct sts_policy *p;

	snprintf(body, sizeof(body),
	    "version: STSv1\nmode: %s\nmx: mx1.b.test\nmx: *.c.test\n"
	    "max_age: 86400\n",
	    mode);
	p = sts_policy_parse(body, strlen(body), &err);
	if (p == NULL)
		printf("  sts_policy_parse: %s\n", err);
	T_CHECK(p != NULL);
	return p;
}

/* RFC 8461 §2: DANE first; MTA-STS only for hosts without a DANE policy. */
static void
test_sts_use(void)
{
	static const struct {
		const char *mode; /* NULL: no policy */
		enum dane_level level;
		enum policy_sts_use want;
	} cases[] = {
		{ NULL, DANE_LEVEL_OPPORTUNISTIC, POLICY_STS_OFF },
		{ "enforce", DANE_LEVEL_OPPORTUNISTIC, POLICY_STS_ENFORCE },
		{ "testing", DANE_LEVEL_OPPORTUNISTIC, POLICY_STS_TESTING },
		{ "none", DANE_LEVEL_OPPORTUNISTIC, POLICY_STS_OFF },
		{ "enforce", DANE_LEVEL_AUTH, POLICY_STS_OFF },
		{ "enforce", DANE_LEVEL_ENCRYPT, POLICY_STS_OFF },
		/* a DNSSEC failure never falls back to MTA-STS */
		{ "enforce", DANE_LEVEL_UNUSABLE, POLICY_STS_OFF },
		{ "testing", DANE_LEVEL_AUTH, POLICY_STS_OFF },
	};
	struct sts_policy *p;
	enum policy_sts_use got;
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		p = cases[i].mode != NULL ? sts_from(cases[i].mode) : NULL;
		got = policy_sts_use(p, cases[i].level);
		if (got != cases[i].want) {
			printf("  mode %s level %d: %d, want %d\n",
			    cases[i].mode ? cases[i].mode : "(none)",
			    cases[i].level, got, cases[i].want);
			T_FAIL("use as in the table");
		}
		sts_policy_free(p);
	}
}

/* §4.1: an MX outside the policy is refused with 4.7.5. */
static void
test_sts_mx(void)
{
	static const struct {
		const char *host;
		bool ok;
	} cases[] = {
		{ "mx1.b.test", true },
		{ "mx2.b.test", false },
		{ "a.c.test", true },
		{ "a.b.c.test", false }, /* the wildcard is one label */
		{ "c.test", false },
	};
	struct sts_policy *p = sts_from("enforce");
	struct outcome o;
	size_t i;
	bool ok;

	for (i = 0; p != NULL && i < NELEM(cases); i++) {
		outcome_ok(&o);
		ok = policy_sts_mx_ok(p, cases[i].host, &o);
		if (ok != cases[i].ok ||
		    (!ok &&
		        (o.cls != OUTCOME_TEMP ||
		            strcmp(o.status, "4.7.5") != 0 ||
		            o.rt != RT_VALIDATION_FAILURE ||
		            strstr(o.text, cases[i].host) == NULL)) ||
		    (ok && !outcome_is_ok(&o))) {
			printf("  %s: %d %s %s\n", cases[i].host, ok, o.status,
			    o.text);
			T_FAIL("mx as in the table");
		}
	}
	sts_policy_free(p);
}

/* §4.2: PKIX verify errors as RFC 8460 result types. */
static void
test_sts_result_type(void)
{
	static const struct {
		long err;
		enum result_type want;
	} cases[] = {
		{ X509_V_ERR_HOSTNAME_MISMATCH, RT_CERTIFICATE_HOST_MISMATCH },
		{ X509_V_ERR_CERT_HAS_EXPIRED, RT_CERTIFICATE_EXPIRED },
		{ X509_V_ERR_CERT_NOT_YET_VALID, RT_CERTIFICATE_EXPIRED },
		{ X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
		    RT_CERTIFICATE_NOT_TRUSTED },
		{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
		    RT_CERTIFICATE_NOT_TRUSTED },
		{ X509_V_ERR_UNSPECIFIED, RT_CERTIFICATE_NOT_TRUSTED },
	};
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		if (policy_sts_result_type(cases[i].err) != cases[i].want) {
			printf("  verify error %ld: %s\n", cases[i].err,
			    result_type_str(
			        policy_sts_result_type(cases[i].err)));
			T_FAIL("result type as in the table");
		}
	}
}

/* §5: a session that ended before TLS under an enforced policy. */
static void
test_sts_session(void)
{
	static const struct {
		enum smtp_error error;
		const char *status;
		enum result_type rt;
	} cases[] = {
		{ SMTP_ERR_STARTTLS_NOT_OFFERED, "4.7.5",
		    RT_STARTTLS_NOT_SUPPORTED },
		{ SMTP_ERR_STARTTLS_REFUSED, "4.7.5",
		    RT_STARTTLS_NOT_SUPPORTED },
		{ SMTP_ERR_TLS_HANDSHAKE, "4.7.5", RT_VALIDATION_FAILURE },
		/* not about TLS: as without MTA-STS */
		{ SMTP_ERR_CONNECT_REFUSED, "4.4.1", RT_NONE },
	};
	struct smtp_result r;
	struct outcome o;
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		memset(&r, 0, sizeof(r));
		r.error = cases[i].error;
		snprintf(r.error_text, sizeof(r.error_text), "detail");
		outcome_ok(&o);
		policy_sts_session(&o, &r, "mx1.b.test");
		if (o.cls != OUTCOME_TEMP ||
		    strcmp(o.status, cases[i].status) != 0 ||
		    o.rt != cases[i].rt) {
			printf("  error %d: %s %s \"%s\"\n", cases[i].error,
			    o.status, result_type_str(o.rt), o.text);
			T_FAIL("outcome as in the table");
		}
	}
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_LEVEL_WARN);
	T_RUN(test_policy_table);
	T_RUN(test_policy_relayhost);
	T_RUN(test_policy_log_only);
	T_RUN(test_policy_security_str);
	T_RUN(test_sts_use);
	T_RUN(test_sts_mx);
	T_RUN(test_sts_result_type);
	T_RUN(test_sts_session);
	T_EXIT();
}
