/*
 * fuzz_tlsrpt_rua: libFuzzer target for the _smtp._tls TXT record parser
 * (RFC 8460 §3), network input from DNS. The input split on NUL bytes is
 * the TXT RRset. A result must keep its promises: 1..TLSRPT_RUA_MAX
 * destinations, mail addresses with one usable '@' and printable ASCII,
 * https URLs that start so, no duplicate; or an error text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_rua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_rua_check(const struct tlsrpt_rua *v, size_t n)
{
	size_t i, k;

	ASSERT(n >= 1 && n <= TLSRPT_RUA_MAX);
	for (i = 0; i < n; i++) {
		const char *t = v[i].target;

		for (k = 0; t[k] != '\0'; k++)
			ASSERT((unsigned char)t[k] > 0x20 &&
			    (unsigned char)t[k] < 0x7f);
		if (v[i].kind == TLSRPT_RUA_HTTPS)
			ASSERT(strncasecmp(t, "https://", 8) == 0);
		else
			ASSERT(strrchr(t, '@') != NULL && t[0] != '@');
		for (k = 0; k < i; k++)
			ASSERT(v[k].kind != v[i].kind ||
			    strcmp(v[k].target, t) != 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = xmalloc(size + 1), *why = NULL, *p;
	const char *recs[16];
	struct tlsrpt_rua *v = NULL;
	size_t n = 0;
	int got;

	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy; n < 16 && p <= copy + size; p += strlen(p) + 1)
		recs[n++] = p;
	got = tlsrpt_rua_parse(recs, n, &v, &why);
	if (got > 0) {
		fuzz_rua_check(v, (size_t)got);
		tlsrpt_rua_free(v, (size_t)got);
	} else {
		ASSERT(got == -1 && why != NULL && why[0] != '\0');
		free(why);
	}
	free(copy);
	return 0;
}
