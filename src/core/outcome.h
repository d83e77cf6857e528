/*
 * outcome: why something failed, carried from where it happened to the one
 * module that decides what to do about it (after Postfix's DSN_BUF).
 *
 * Lower layers fill an outcome and return an error; they do not log it.
 * The class (ok / temporary / permanent), the RFC 3463 enhanced status code,
 * the RFC 8460 §4.3 result type and a human text travel together, so a
 * failure is classified exactly once. docs/VERDICTS.md lists the table.
 */
#ifndef DR_OUTCOME_H
#define DR_OUTCOME_H

#include <stdbool.h>

#include "log.h"

enum outcome_class {
	OUTCOME_OK,
	OUTCOME_TEMP,
	OUTCOME_PERM,
};

/* RFC 8460 §4.3 result types (TLS negotiation and policy failures). */
enum result_type {
	RT_NONE, /* not a TLS/policy failure */
	RT_STARTTLS_NOT_SUPPORTED,
	RT_CERTIFICATE_HOST_MISMATCH,
	RT_CERTIFICATE_EXPIRED,
	RT_CERTIFICATE_NOT_TRUSTED,
	RT_VALIDATION_FAILURE,
	RT_TLSA_INVALID,
	RT_DNSSEC_INVALID,
	RT_DANE_REQUIRED,
	RT_STS_POLICY_FETCH_ERROR,
	RT_STS_POLICY_INVALID,
	RT_STS_WEBPKI_INVALID,
};

struct outcome {
	enum outcome_class cls;
	enum result_type rt;
	char status[12]; /* "4.7.324"; "2.0.0" when ok */
	char text[400];
};

/* RFC 8460 name of a result type ("tlsa-invalid"); NULL for RT_NONE. */
const char *result_type_str(enum result_type rt);

/* "ok", "temp", "perm". */
const char *outcome_class_str(enum outcome_class cls);

/* Reset to OK / 2.0.0 / no text. */
void outcome_ok(struct outcome *o);

/*
 * Fill o. status is "4.7.324"-style; its first digit must agree with cls
 * (2 ok, 4 temp, 5 perm). The text is printf-formatted and truncated.
 */
void outcome_set(struct outcome *o, enum outcome_class cls, const char *status,
    enum result_type rt, const char *fmt, ...) DR_PRINTF(5, 6);

/* Turn a temporary outcome into the permanent one (4.x.y -> 5.x.y). */
void outcome_make_permanent(struct outcome *o);

bool outcome_is_ok(const struct outcome *o);

#endif
