/*
 * dns: names of the module's enums and of RR types, for logs and reports.
 */
#include "dns/dns.h"

#include <stdio.h>

const char *
dns_sec_str(enum dns_sec sec)
{
	switch (sec) {
	case DNS_SEC_SECURE:
		return "secure";
	case DNS_SEC_INSECURE:
		return "insecure";
	case DNS_SEC_BOGUS:
		return "bogus";
	case DNS_SEC_INDETERMINATE:
		return "indeterminate";
	}
	return "unknown";
}

const char *
dns_status_str(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "ok";
	case DNS_ERR_BOGUS:
		return "bogus";
	case DNS_ERR_SERVFAIL:
		return "servfail";
	case DNS_ERR_TIMEOUT:
		return "timeout";
	case DNS_ERR_MALFORMED:
		return "malformed";
	case DNS_ERR_OTHER:
		return "other";
	}
	return "unknown";
}

static const struct {
	uint16_t type;
	const char *name;
} dns_types[] = {
	{ DNS_TYPE_A, "A" },
	{ DNS_TYPE_NS, "NS" },
	{ DNS_TYPE_CNAME, "CNAME" },
	{ DNS_TYPE_SOA, "SOA" },
	{ 12, "PTR" },
	{ DNS_TYPE_MX, "MX" },
	{ DNS_TYPE_TXT, "TXT" },
	{ DNS_TYPE_AAAA, "AAAA" },
	{ 33, "SRV" },
	{ 39, "DNAME" },
	{ 41, "OPT" },
	{ DNS_TYPE_DS, "DS" },
	{ 46, "RRSIG" },
	{ 47, "NSEC" },
	{ DNS_TYPE_DNSKEY, "DNSKEY" },
	{ 50, "NSEC3" },
	{ 51, "NSEC3PARAM" },
	{ DNS_TYPE_TLSA, "TLSA" },
	{ 64, "SVCB" },
	{ 65, "HTTPS" },
	{ 255, "ANY" },
	{ 257, "CAA" },
};

const char *
dns_type_str(uint16_t type)
{
	/* RFC 3597 §5 generic form; one static buffer, as documented. */
	static char generic[sizeof("TYPE65535")];

	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (dns_types[i].type == type)
			return dns_types[i].name;
	snprintf(generic, sizeof(generic), "TYPE%u", (unsigned)type);
	return generic;
}
