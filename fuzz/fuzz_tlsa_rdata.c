/*
 * fuzz_tlsa_rdata: arbitrary bytes as the rdata of a secure TLSA RRset,
 * through the DNS answer accessors and the SMTP usability rules of
 * dane_tlsa (including the DER parsing of Full(0) records).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dane/dane_tlsa.h"
#include "dns/dns.h"
#include "dns/dns_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t head[] =
	    "\x00\x00\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
	    "\x03_25\x04_tcp\x02mx\x07"
	    "example\x00\x00\x34\x00\x01"
	    "\xc0\x0c\x00\x34\x00\x01\x00\x00\x0e\x10";
	char *digests[] = { "sha512", "sha256", NULL };
	uint8_t pkt[sizeof(head) + 2 + 65535];
	struct dns_answer *a;
	struct dane_tlsa *t;
	size_t i, off = sizeof(head) - 1;

	if (size > 65535)
		return 0;
	memcpy(pkt, head, off);
	pkt[off++] = (uint8_t)(size >> 8);
	pkt[off++] = (uint8_t)size;
	memcpy(pkt + off, data, size);
	off += size;
	a = dns_answer_new_unbound(
	    "_25._tcp.mx.example", DNS_TYPE_TLSA, 0, pkt, (int)off, 2, NULL);
	if (dns_answer_status(a) == DNS_OK) {
		t = dane_tlsa_new(a, digests);
		for (i = 0; i < dane_tlsa_count(t); i++)
			free(dane_tlsa_str(t, i));
		dane_tlsa_free(t);
	}
	dns_answer_free(a);
	return 0;
}
