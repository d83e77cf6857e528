/*
 * dns_name: syntax checks and canonical spelling of the names danerelay
 * asks about. Query names come from configuration, the command line and MX
 * targets; they are checked here before they reach libunbound so that a
 * bad name is a clear error, not a libunbound syntax code.
 */
#include "dns/dns.h"
#include "dns/dns_name.h"

#include <string.h>

#include "core/str.h"
#include "core/xmalloc.h"

#define NAME_WIRE_MAX 255 /* RFC 1035 §2.3.4 */
#define LABEL_MAX     63

/*
 * Escapes and the characters the packet parser would escape (zone-file
 * specials) are refused: every name we query is a host or domain name,
 * and answers are compared with the parser's canonical spelling.
 */
static const char *
name_label_check(const char *p, size_t n)
{
	if (n == 0)
		return "empty label in name";
	if (n > LABEL_MAX)
		return "label longer than 63 octets";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f || strchr("\\\"();$@", c) != NULL)
			return "invalid character in name";
	}
	return NULL;
}

const char *
dns_name_check(const char *name)
{
	size_t len, wire = 1;
	const char *p, *err;

	if (name == NULL || *name == '\0')
		return "empty name";
	if (strcmp(name, ".") == 0)
		return NULL;
	len = strlen(name);
	if (name[len - 1] == '.')
		len--;
	for (p = name; p <= name + len;) {
		const char *dot = memchr(p, '.', (size_t)(name + len - p));
		size_t n = dot ? (size_t)(dot - p) : (size_t)(name + len - p);

		if ((err = name_label_check(p, n)) != NULL)
			return err;
		wire += n + 1;
		if (wire > NAME_WIRE_MAX)
			return "name longer than 255 octets";
		p += n + 1;
	}
	return NULL;
}

char *
dns_name_normalize(const char *name)
{
	size_t len = strlen(name);
	char *s;

	if (len > 1 && name[len - 1] == '.')
		len--;
	s = xstrndup(name, len);
	str_lower(s);
	return s;
}
