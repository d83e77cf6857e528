/*
 * outcome: the failure record shared by all layers.
 */
#include "outcome.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const result_type_names[] = {
	[RT_NONE] = NULL,
	[RT_STARTTLS_NOT_SUPPORTED] = "starttls-not-supported",
	[RT_CERTIFICATE_HOST_MISMATCH] = "certificate-host-mismatch",
	[RT_CERTIFICATE_EXPIRED] = "certificate-expired",
	[RT_CERTIFICATE_NOT_TRUSTED] = "certificate-not-trusted",
	[RT_VALIDATION_FAILURE] = "validation-failure",
	[RT_TLSA_INVALID] = "tlsa-invalid",
	[RT_DNSSEC_INVALID] = "dnssec-invalid",
	[RT_DANE_REQUIRED] = "dane-required",
	[RT_STS_POLICY_FETCH_ERROR] = "sts-policy-fetch-error",
	[RT_STS_POLICY_INVALID] = "sts-policy-invalid",
	[RT_STS_WEBPKI_INVALID] = "sts-webpki-invalid",
};

const char *
result_type_str(enum result_type rt)
{
	if ((unsigned)rt >=
	    sizeof(result_type_names) / sizeof(result_type_names[0]))
		return NULL;
	return result_type_names[rt];
}

const char *
outcome_class_str(enum outcome_class cls)
{
	switch (cls) {
	case OUTCOME_OK:
		return "ok";
	case OUTCOME_TEMP:
		return "temp";
	case OUTCOME_PERM:
		return "perm";
	}
	return "?";
}

void
outcome_ok(struct outcome *o)
{
	o->cls = OUTCOME_OK;
	o->rt = RT_NONE;
	snprintf(o->status, sizeof(o->status), "2.0.0");
	o->text[0] = '\0';
}

void
outcome_set(struct outcome *o, enum outcome_class cls, const char *status,
    enum result_type rt, const char *fmt, ...)
{
	va_list ap;
	char want = cls == OUTCOME_OK ? '2' : cls == OUTCOME_TEMP ? '4' : '5';

	ASSERT(status[0] == want);
	o->cls = cls;
	o->rt = rt;
	snprintf(o->status, sizeof(o->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(o->text, sizeof(o->text), fmt, ap);
	va_end(ap);
}

void
outcome_make_permanent(struct outcome *o)
{
	if (o->cls != OUTCOME_TEMP)
		return;
	o->cls = OUTCOME_PERM;
	o->status[0] = '5';
}

bool
outcome_is_ok(const struct outcome *o)
{
	return o->cls == OUTCOME_OK;
}
