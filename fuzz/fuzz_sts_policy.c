/*
 * fuzz_sts_policy: libFuzzer target for the MTA-STS parsers of network
 * input: the policy body fetched over HTTPS (RFC 8461 §3.2) and the
 * _mta-sts TXT record (§3.1).
 *
 * The whole input is a policy (given without a terminator, so that ASan
 * sees any read past its end) and, as a C string up to its first NUL, a
 * TXT record; split on NUL bytes it is also a TXT RRset. A parsed policy
 * must keep its promises: a known mode, max_age in range, mx patterns that
 * match themselves, lines without terminators, a faithful copy.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sts/sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_policy_check(const struct sts_policy *p)
{
	struct sts_policy *d = sts_policy_dup(p);
	size_t i;

	ASSERT(sts_policy_max_age(p) >= 0 && sts_policy_max_age(p) <= 31557600);
	ASSERT(
	    sts_policy_mode(p) == STS_MODE_NONE || sts_policy_mx_count(p) > 0);
	ASSERT(sts_policy_line_count(p) >= 3);
	for (i = 0; i < sts_policy_mx_count(p); i++) {
		const char *mx = sts_policy_mx(p, i);

		/* A plain pattern names itself; "*.d" names "x.d". */
		if (mx[0] != '*')
			ASSERT(sts_policy_mx_match(p, mx));
		else if (sts_policy_mx_count(p) == 1)
			ASSERT(!sts_policy_mx_match(p, mx + 2));
	}
	for (i = 0; i < sts_policy_line_count(p); i++) {
		ASSERT(strchr(sts_policy_line(p, i), '\n') == NULL);
		ASSERT(
		    strcmp(sts_policy_line(p, i), sts_policy_line(d, i)) == 0);
	}
	ASSERT(sts_policy_mx_count(d) == sts_policy_mx_count(p));
	sts_policy_free(d);
}

/* The input as a TXT RRset: records separated by NUL bytes. */
static void
fuzz_txt(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *v[16], id[STS_ID_MAX + 1];
	const char *err;
	size_t n = 0, i = 0;

	memcpy(copy, data, size);
	copy[size] = '\0';
	while (i <= size && n < 16) {
		v[n++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	if (sts_txt_parse(copy, strlen(copy), id, &err) == 1)
		ASSERT(strlen(id) >= 1 && strlen(id) <= STS_ID_MAX);
	if (sts_txt_select(v, n, id, &err) == 0)
		ASSERT(strlen(id) >= 1 && strlen(id) <= STS_ID_MAX);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size > 0 ? size : 1);
	struct sts_policy *p;
	const char *err = NULL;

	memcpy(body, data, size);
	p = sts_policy_parse(body, size, &err);
	ASSERT((p == NULL) == (err != NULL));
	if (p != NULL)
		fuzz_policy_check(p);
	sts_policy_free(p);
	free(body);
	fuzz_txt(data, size);
	return 0;
}
