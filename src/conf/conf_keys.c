/*
 * conf_keys: every configuration key, declared once (after Postfix's
 * parameter tables). Adding a key = one row here + one enum entry.
 */
#include "conf/conf_keys.h"

#include <string.h>

#include "core/str.h"

/* "ADDR[@PORT]" entries: an IPv4/IPv6 literal with an optional port. */
static const char *
check_addr_list(const char *value)
{
	char **v;
	size_t n, i;
	const char *err = NULL;

	v = str_split_list(value, &n);
	for (i = 0; i < n && err == NULL; i++) {
		const char *at = strchr(v[i], '@');
		uint64_t port;

		if (strspn(v[i], "0123456789abcdefABCDEF.:@") != strlen(v[i]))
			err = "expected ADDR[@PORT] (IP address literals)";
		else if (at != NULL &&
		    str_to_uint(at + 1, 1, 65535, &port) == -1)
			err = "bad port after '@'";
	}
	str_vec_free(v);
	return err;
}

/* A host name for EHLO: letters, digits, '-', '.', at most 255 octets. */
static const char *
check_hostname(const char *value)
{
	if (strlen(value) > 255)
		return "host name longer than 255 characters";
	if (strspn(value,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789-.") != strlen(value))
		return "host name with characters other than letters, digits, "
		       "'-' and '.'";
	return NULL;
}

/* RFC 7671 §9 digest agility: the order of preference of matching types. */
static const char *
check_digests(const char *value)
{
	char **v;
	size_t n, i;
	const char *err = NULL;

	v = str_split_list(value, &n);
	if (n == 0)
		err = "at least one digest is needed";
	for (i = 0; i < n && err == NULL; i++) {
		if (strcmp(v[i], "sha256") != 0 && strcmp(v[i], "sha512") != 0)
			err = "digests are sha256 and sha512";
	}
	if (err == NULL && n == 2 && strcmp(v[0], v[1]) == 0)
		err = "digest listed twice";
	str_vec_free(v);
	return err;
}

const struct conf_key_def conf_keys[CONF_KEY_COUNT] = {
	{ CONF_DNS_TRUST_ANCHOR_FILE, "dns", "trust_anchor_file", CONF_T_PATH,
	    NULL, 0, 0, NULL,
	    "DS or DNSKEY records for '.' (zone-file format) replacing the "
	    "built-in IANA root anchors" },
	{ CONF_DNS_ROOT_SERVERS, "dns", "root_servers", CONF_T_LIST, NULL, 0, 0,
	    check_addr_list,
	    "query these servers instead of the real root servers" },
	{ CONF_DNS_FORWARDERS, "dns", "forwarders", CONF_T_LIST, NULL, 0, 0,
	    check_addr_list,
	    "upstream resolvers; answers are still validated in-process" },
	{ CONF_DNS_TIMEOUT, "dns", "timeout", CONF_T_DURATION, "30s", 1, 600,
	    NULL, "deadline of one DNS lookup" },
	{ CONF_DANE_DIGESTS, "dane", "digests", CONF_T_LIST, "sha512 sha256", 0,
	    0, check_digests,
	    "TLSA digest preference, strongest first (RFC 7671 §9)" },
	{ CONF_DELIVERY_PORT, "delivery", "port", CONF_T_INT, "25", 1, 65535,
	    NULL, "destination SMTP port (also the _PORT._tcp TLSA prefix)" },
	{ CONF_DELIVERY_HELO_NAME, "delivery", "helo_name", CONF_T_STR, NULL, 0,
	    0, check_hostname, "name sent in EHLO (default: the host name)" },
	{ CONF_DELIVERY_CONNECT_TIMEOUT, "delivery", "connect_timeout",
	    CONF_T_DURATION, "30s", 1, 3600, NULL, "TCP connect deadline" },
	{ CONF_DELIVERY_GREETING_TIMEOUT, "delivery", "greeting_timeout",
	    CONF_T_DURATION, "5m", 1, 3600, NULL,
	    "wait for the 220 greeting (RFC 5321 §4.5.3.2.1)" },
	{ CONF_DELIVERY_COMMAND_TIMEOUT, "delivery", "command_timeout",
	    CONF_T_DURATION, "5m", 1, 3600, NULL,
	    "wait for a reply to EHLO, STARTTLS, MAIL, RCPT (RFC 5321 "
	    "§4.5.3.2)" },
};
