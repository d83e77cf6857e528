/*
 * conf_keys: every configuration key, declared once (after Postfix's
 * parameter tables). Adding a key = one row here + one enum entry.
 */
#include "conf/conf_keys.h"

#include <stddef.h>
#include <string.h>

#include "core/log.h"
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

/* A mail address local@domain, printable ASCII, no spaces. */
static const char *
check_address(const char *value)
{
	const char *at = strrchr(value, '@');
	size_t i;

	if (at == NULL || at == value || at[1] == '\0')
		return "expected an address local@domain";
	for (i = 0; value[i] != '\0'; i++)
		if ((unsigned char)value[i] <= 0x20 ||
		    (unsigned char)value[i] >= 0x7f ||
		    strchr("<>()[]\\,;:\"", value[i]) != NULL)
			return "the address holds a character that needs "
			       "quoting";
	return strlen(value) > 254 ? "address longer than 254 characters" :
	                             NULL;
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

/* "ADDR:PORT" listeners; IPv6 as "[::1]:PORT". */
static const char *
check_listen(const char *value)
{
	char **v;
	size_t n, i;
	const char *err = NULL, *colon;
	uint64_t port;

	v = str_split_list(value, &n);
	for (i = 0; i < n && err == NULL; i++) {
		colon = strrchr(v[i], ':');
		if (colon == NULL ||
		    str_to_uint(colon + 1, 1, 65535, &port) == -1)
			err = "expected ADDR:PORT (IPv6 as [ADDR]:PORT)";
	}
	str_vec_free(v);
	return err;
}

/* CIDR networks: "ADDR/LEN" or a bare address. */
static const char *
check_cidrs(const char *value)
{
	char **v;
	size_t n, i;
	const char *err = NULL;

	v = str_split_list(value, &n);
	for (i = 0; i < n && err == NULL; i++)
		if (strspn(v[i], "0123456789abcdefABCDEF.:/") != strlen(v[i]))
			err = "expected networks as ADDR/LEN";
	str_vec_free(v);
	return err;
}

static const char *
check_durations(const char *value)
{
	char **v;
	size_t n, i;
	const char *err = NULL;
	uint64_t num;

	v = str_split_list(value, &n);
	if (n == 0)
		err = "at least one duration is needed";
	for (i = 0; i < n && err == NULL; i++)
		if (str_parse_duration(v[i], &num) == -1 || num == 0)
			err = "expected durations such as 5m 10m 20m 40m 1h";
	str_vec_free(v);
	return err;
}

static const char *
check_mode(const char *value)
{
	if (strcmp(value, "enforce") != 0 && strcmp(value, "log-only") != 0)
		return "expected enforce or log-only";
	return NULL;
}

static const char *
check_queue_store(const char *value)
{
	if (strcmp(value, "sqlite") != 0 && strcmp(value, "postgres") != 0)
		return "expected sqlite or postgres";
	return NULL;
}

/*
 * A fleet node's name: it is written beside every trace event and claim,
 * so printable ASCII without spaces, at most 63 octets.
 */
static const char *
check_node(const char *value)
{
	size_t i;

	if (value[0] == '\0' || strlen(value) > 63)
		return "expected 1 to 63 characters";
	for (i = 0; value[i] != '\0'; i++)
		if ((unsigned char)value[i] <= 0x20 ||
		    (unsigned char)value[i] >= 0x7f)
			return "expected printable ASCII without spaces";
	return NULL;
}

static const char *
check_security(const char *value)
{
	static const char *const levels[] = { "dane", "dane-only", "encrypt",
		"may", NULL };
	size_t i;

	for (i = 0; levels[i] != NULL; i++)
		if (strcmp(value, levels[i]) == 0)
			return NULL;
	return "expected dane, dane-only, encrypt or may";
}

static const char *check_route(const char *value);

/* A route, but not "direct" (that is what no relayhost means). */
static const char *
check_relayhost(const char *value)
{
	if (strcmp(value, "direct") == 0)
		return "direct is for [domain] route; leave relayhost unset";
	return check_route(value);
}

/* A unix socket's path: absolute, and it fits in sockaddr_un (108). */
static const char *
check_socket_path(const char *value)
{
	if (value[0] != '/')
		return "expected an absolute path";
	if (strlen(value) >= 108)
		return "socket path longer than 107 characters";
	return NULL;
}

/*
 * Rows that end in CONF_RELOAD are applied by SIGHUP (relay_reload); a
 * change of any other key is named in a warning as needing a restart.
 */
const struct conf_key_def conf_keys[CONF_KEY_COUNT] = {
	{ CONF_DNS_TRUST_ANCHOR_FILE, "dns", "trust_anchor_file", CONF_T_PATH,
	    NULL, 0, 0, NULL,
	    "DS or DNSKEY records for '.' (zone-file format) replacing the "
	    "built-in IANA root anchors",
	    CONF_RESTART },
	{ CONF_DNS_ROOT_SERVERS, "dns", "root_servers", CONF_T_LIST, NULL, 0, 0,
	    check_addr_list,
	    "query these servers instead of the real root servers",
	    CONF_RESTART },
	{ CONF_DNS_FORWARDERS, "dns", "forwarders", CONF_T_LIST, NULL, 0, 0,
	    check_addr_list,
	    "upstream resolvers; answers are still validated in-process",
	    CONF_RESTART },
	{ CONF_DNS_TIMEOUT, "dns", "timeout", CONF_T_DURATION, "30s", 1, 600,
	    NULL, "deadline of one DNS lookup", CONF_RESTART },
	{ CONF_DANE_DIGESTS, "dane", "digests", CONF_T_LIST, "sha512 sha256", 0,
	    0, check_digests,
	    "TLSA digest preference, strongest first (RFC 7671 §9)",
	    CONF_RESTART },
	{ CONF_DELIVERY_PORT, "delivery", "port", CONF_T_INT, "25", 1, 65535,
	    NULL, "destination SMTP port (also the _PORT._tcp TLSA prefix)",
	    CONF_RELOAD },
	{ CONF_DELIVERY_HELO_NAME, "delivery", "helo_name", CONF_T_STR, NULL, 0,
	    0, check_hostname, "name sent in EHLO (default: the host name)",
	    CONF_RESTART },
	{ CONF_DELIVERY_CONNECT_TIMEOUT, "delivery", "connect_timeout",
	    CONF_T_DURATION, "30s", 1, 3600, NULL, "TCP connect deadline",
	    CONF_RESTART },
	{ CONF_DELIVERY_GREETING_TIMEOUT, "delivery", "greeting_timeout",
	    CONF_T_DURATION, "5m", 1, 3600, NULL,
	    "wait for the 220 greeting (RFC 5321 §4.5.3.2.1)", CONF_RESTART },
	{ CONF_DELIVERY_COMMAND_TIMEOUT, "delivery", "command_timeout",
	    CONF_T_DURATION, "5m", 1, 3600, NULL,
	    "wait for a reply to EHLO, STARTTLS, MAIL, RCPT (RFC 5321 "
	    "§4.5.3.2)",
	    CONF_RESTART },
	{ CONF_DELIVERY_DATA_TIMEOUT, "delivery", "data_timeout",
	    CONF_T_DURATION, "10m", 1, 3600, NULL,
	    "wait for the reply to the final dot (RFC 5321 §4.5.3.2.6)",
	    CONF_RESTART },
	{ CONF_DELIVERY_RETRY_SCHEDULE, "delivery", "retry_schedule",
	    CONF_T_LIST, "5m 10m 20m 40m 1h", 0, 0, check_durations,
	    "waits between attempts; the last one repeats", CONF_RESTART },
	{ CONF_DELIVERY_MAX_QUEUE_LIFETIME, "delivery", "max_queue_lifetime",
	    CONF_T_DURATION, "5d", 1, 100 * 86400, NULL,
	    "after this, temporary failures become final (bounce)",
	    CONF_RESTART },
	{ CONF_DELIVERY_DELAY_WARNING, "delivery", "delay_warning",
	    CONF_T_DURATION, "4h", 0, 100 * 86400, NULL,
	    "send a delay DSN after this long in the queue; 0 = never",
	    CONF_RESTART },
	{ CONF_DELIVERY_CONCURRENCY, "delivery", "concurrency", CONF_T_INT,
	    "20", 1, 1000, NULL, "most parallel connections per destination",
	    CONF_RESTART },
	{ CONF_DELIVERY_INITIAL_CONCURRENCY, "delivery", "initial_concurrency",
	    CONF_T_INT, "2", 1, 1000, NULL,
	    "connections per destination at first (slow start)", CONF_RESTART },
	{ CONF_DELIVERY_DEAD_AFTER, "delivery", "dead_after", CONF_T_INT, "5",
	    1, 1000, NULL,
	    "connection failures in a row that mark a destination dead",
	    CONF_RESTART },
	{ CONF_DELIVERY_DEAD_TIME, "delivery", "dead_time", CONF_T_DURATION,
	    "5m", 1, 86400, NULL, "how long a dead destination is left alone",
	    CONF_RESTART },
	{ CONF_DELIVERY_MAX_MESSAGES_PER_CONNECTION, "delivery",
	    "max_messages_per_connection", CONF_T_INT, "100", 1, 100000, NULL,
	    "messages sent over one reused connection", CONF_RESTART },
	{ CONF_DELIVERY_CONNECTION_IDLE_TIME, "delivery",
	    "connection_idle_time", CONF_T_DURATION, "5s", 0, 300, NULL,
	    "an open connection waits this long for more mail to its "
	    "destination; 0 = close after each batch",
	    CONF_RESTART },
	{ CONF_DELIVERY_HOLD, "delivery", "hold", CONF_T_BOOL, "no", 0, 0, NULL,
	    "accept and queue mail but start no delivery (maintenance)",
	    CONF_RELOAD },
	{ CONF_DELIVERY_TLS_HANDSHAKES, "delivery", "tls_handshakes",
	    CONF_T_INT, "128", 1, 100000, NULL,
	    "outbound TLS handshakes in progress at once; more wait their "
	    "turn (memory at bursts)",
	    CONF_RESTART },
	{ CONF_DELIVERY_RELAYHOST, "delivery", "relayhost", CONF_T_STR, NULL, 0,
	    0, check_relayhost,
	    "next hop of all mail to domains without their own route: "
	    "[host]:port (no MX lookup) or host:port",
	    CONF_RELOAD },
	{ CONF_SERVER_LISTEN, "server", "listen", CONF_T_LIST, "127.0.0.1:2525",
	    0, 0, check_listen, "addresses to accept mail on, ADDR:PORT",
	    CONF_RELOAD },
	{ CONF_SERVER_RELAY_NETWORKS, "server", "relay_networks", CONF_T_LIST,
	    "127.0.0.0/8 ::1/128", 0, 0, check_cidrs,
	    "clients that may relay without AUTH", CONF_RELOAD },
	{ CONF_SERVER_HOSTNAME, "server", "hostname", CONF_T_STR, NULL, 0, 0,
	    check_hostname, "our host name (default: the system's)",
	    CONF_RESTART },
	{ CONF_SERVER_TLS_CERT, "server", "tls_cert", CONF_T_PATH, NULL, 0, 0,
	    NULL, "certificate chain (PEM) for STARTTLS", CONF_RELOAD },
	{ CONF_SERVER_TLS_KEY, "server", "tls_key", CONF_T_PATH, NULL, 0, 0,
	    NULL, "private key (PEM) for STARTTLS", CONF_RELOAD },
	{ CONF_SERVER_AUTH_FILE, "server", "auth_file", CONF_T_PATH, NULL, 0, 0,
	    NULL, "user:hash lines (danerelay passwd); AUTH only after TLS",
	    CONF_RELOAD },
	{ CONF_SERVER_AUTH_MAX_FAILURES, "server", "auth_max_failures",
	    CONF_T_INT, "5", 1, 1000, NULL,
	    "failed AUTH from one client network (IPv4 address, IPv6 /64) "
	    "that lock it out",
	    CONF_RELOAD },
	{ CONF_SERVER_AUTH_LOCKOUT, "server", "auth_lockout", CONF_T_DURATION,
	    "10m", 1, 86400, NULL,
	    "how long failures count, and a lockout lasts after the last one",
	    CONF_RELOAD },
	{ CONF_SERVER_MAX_MESSAGE_SIZE, "server", "max_message_size",
	    CONF_T_INT, "26214400", 1024, 2147483647LL, NULL,
	    "largest message in octets (SIZE, RFC 1870)", CONF_RELOAD },
	{ CONF_SERVER_MAX_RECIPIENTS, "server", "max_recipients", CONF_T_INT,
	    "1000", 1, 100000, NULL,
	    "recipients per message (RFC 5321 §4.5.3.1.8 asks for >= 100)",
	    CONF_RELOAD },
	{ CONF_SERVER_MAX_CONNECTIONS, "server", "max_connections", CONF_T_INT,
	    "1000", 1, 1000000, NULL, "sessions at once", CONF_RELOAD },
	{ CONF_SERVER_MAX_CONNECTIONS_PER_IP, "server",
	    "max_connections_per_ip", CONF_T_INT, "50", 1, 1000000, NULL,
	    "sessions at once from one client address", CONF_RELOAD },
	{ CONF_SERVER_COMMAND_TIMEOUT, "server", "command_timeout",
	    CONF_T_DURATION, "5m", 1, 3600, NULL,
	    "wait for the next command (RFC 5321 §4.5.3.2.7)", CONF_RELOAD },
	{ CONF_SERVER_DATA_TIMEOUT, "server", "data_timeout", CONF_T_DURATION,
	    "3m", 1, 3600, NULL,
	    "wait for more message data (RFC 5321 §4.5.3.2.5)", CONF_RELOAD },
	{ CONF_SERVER_USER, "server", "user", CONF_T_STR, NULL, 0, 0, NULL,
	    "when started as root: drop to this user after binding",
	    CONF_RESTART },
	{ CONF_SERVER_TLSA_GUARD, "server", "tlsa_guard", CONF_T_BOOL, "yes", 0,
	    0, NULL,
	    "refuse a certificate that matches none of our own secure TLSA "
	    "records (no = serve it anyway)",
	    CONF_RELOAD },
	{ CONF_SERVER_ALLOW_ROOT, "server", "allow_root", CONF_T_BOOL, "no", 0,
	    0, NULL, "yes: run as root without [server] user", CONF_RESTART },
	{ CONF_LOG_TARGET, "log", "target", CONF_T_STR, "auto", 0, 0,
	    log_check_target,
	    "auto (journal under systemd, stderr on a terminal, file or pipe, "
	    "else syslog), stderr, syslog or journal",
	    CONF_RESTART },
	{ CONF_LOG_FORMAT, "log", "format", CONF_T_STR, "text", 0, 0,
	    log_check_format, "text, or json: one object per line",
	    CONF_RELOAD },
	{ CONF_LOG_LEVEL, "log", "level", CONF_T_STR, "info", 0, 0,
	    log_check_level, "warning, info or debug", CONF_RELOAD },
	{ CONF_LOG_FACILITY, "log", "facility", CONF_T_STR, "mail", 0, 0,
	    log_check_facility, "syslog facility: mail, daemon, local0..7",
	    CONF_RESTART },
	{ CONF_LOG_SYSLOG_SOCKET, "log", "syslog_socket", CONF_T_PATH,
	    "/dev/log", 0, 0, check_socket_path,
	    "the syslog daemon's datagram socket (target syslog)",
	    CONF_RESTART },
	{ CONF_QUEUE_DIRECTORY, "queue", "directory", CONF_T_PATH,
	    "/var/spool/danerelay", 0, 0, NULL,
	    "where the queue database lives", CONF_RESTART },
	{ CONF_QUEUE_MIN_FREE_SPACE, "queue", "min_free_space", CONF_T_INT,
	    "100", 0, 1048576, NULL,
	    "MB the queue filesystem keeps free: below it new mail gets 452 "
	    "4.3.1",
	    CONF_RELOAD },
	{ CONF_QUEUE_STORE, "queue", "store", CONF_T_STR, "sqlite", 0, 0,
	    check_queue_store,
	    "sqlite: the queue on this node's disk; postgres: in [fleet] "
	    "postgres, delivered by any node (docs/FLEET.md)",
	    CONF_RESTART },
	{ CONF_QUEUE_LEASE, "queue", "lease", CONF_T_DURATION, "10m", 10, 86400,
	    NULL,
	    "store = postgres: how long a node's claim on a recipient lasts "
	    "without renewal; a dead node's mail goes to others after it",
	    CONF_RESTART },
	{ CONF_POLICY_MODE, "policy", "mode", CONF_T_STR, "enforce", 0, 0,
	    check_mode,
	    "enforce, or log-only: record would-be failures, deliver anyway",
	    CONF_RELOAD },
	{ CONF_POLICY_SECURITY, "policy", "security", CONF_T_STR, "dane", 0, 0,
	    check_security,
	    "default security level: dane, dane-only, encrypt, "
	    "may",
	    CONF_RELOAD },
	{ CONF_POLICY_LOG_ONLY_CLEARTEXT, "policy", "log_only_cleartext",
	    CONF_T_BOOL, "no", 0, 0, NULL,
	    "in log-only mode, allow cleartext when STARTTLS is missing",
	    CONF_RELOAD },
	{ CONF_MTA_STS_ENABLED, "mta_sts", "enabled", CONF_T_BOOL, "yes", 0, 0,
	    NULL, "apply MTA-STS (RFC 8461) to domains without DANE",
	    CONF_RESTART },
	{ CONF_MTA_STS_CA_FILE, "mta_sts", "ca_file", CONF_T_PATH, NULL, 0, 0,
	    NULL,
	    "CA bundle (PEM) for MTA-STS: the policy fetch and the MX "
	    "certificates (default: the system store)",
	    CONF_RESTART },
	{ CONF_MTA_STS_HTTPS_PORT, "mta_sts", "https_port", CONF_T_INT, "443",
	    1, 65535, NULL,
	    "port of https://mta-sts.DOMAIN/ (only private test "
	    "worlds change it)",
	    CONF_RESTART },
	{ CONF_MTA_STS_FETCH_TIMEOUT, "mta_sts", "fetch_timeout",
	    CONF_T_DURATION, "60s", 1, 600, NULL,
	    "deadline of one policy fetch (RFC 8461 §3.3)", CONF_RESTART },
	{ CONF_TLSRPT_ENABLED, "tlsrpt", "enabled", CONF_T_BOOL, "yes", 0, 0,
	    NULL,
	    "record the outcome of every TLS negotiation for SMTP TLS "
	    "reports (RFC 8460)",
	    CONF_RESTART },
	{ CONF_TLSRPT_ORGANIZATION, "tlsrpt", "organization", CONF_T_STR, NULL,
	    0, 0, NULL, "organization-name of our reports", CONF_RELOAD },
	{ CONF_TLSRPT_CONTACT, "tlsrpt", "contact", CONF_T_STR, NULL, 0, 0,
	    NULL, "contact-info of our reports", CONF_RELOAD },
	{ CONF_TLSRPT_SENDER_ADDRESS, "tlsrpt", "sender_address", CONF_T_STR,
	    NULL, 0, 0, check_address,
	    "From: and envelope sender of report mail (default: "
	    "noreply-tlsrpt@ the [dkim] domain, else the host name)",
	    CONF_RELOAD },
	{ CONF_TLSRPT_SEND, "tlsrpt", "send", CONF_T_BOOL, "yes", 0, 0, NULL,
	    "send the daily reports to the domains that ask for them",
	    CONF_RESTART },
	{ CONF_TLSRPT_MAX_DELAY, "tlsrpt", "max_delay", CONF_T_DURATION, "4h",
	    0, 86400, NULL,
	    "reports go out at a random time up to this long after the UTC "
	    "day ends (RFC 8460 §4.1)",
	    CONF_RESTART },
	{ CONF_TLSRPT_CA_FILE, "tlsrpt", "ca_file", CONF_T_PATH, NULL, 0, 0,
	    NULL,
	    "CA bundle (PEM) for https: report destinations (default: the "
	    "system store)",
	    CONF_RESTART },
	{ CONF_TLSRPT_POST_TIMEOUT, "tlsrpt", "post_timeout", CONF_T_DURATION,
	    "60s", 1, 600, NULL, "deadline of one https report POST",
	    CONF_RESTART },
	{ CONF_TLSRPT_RECEIVED, "tlsrpt", "received", CONF_T_PATH, NULL, 0, 0,
	    NULL,
	    "directory or maildir of the TLS reports we receive, for "
	    "`tlsrpt received` and the console's /tlsrpt",
	    CONF_RESTART },
	{ CONF_TLSRPT_LEASE, "tlsrpt", "lease", CONF_T_DURATION, "10m", 2,
	    86400, NULL,
	    "[fleet] postgres: how long a node's claim on a day's report or "
	    "on one destination lasts (a POST is given half of it); a node "
	    "that dies leaves its claims to the others after it",
	    CONF_RESTART },
	{ CONF_DKIM_DOMAIN, "dkim", "domain", CONF_T_STR, NULL, 0, 0,
	    check_hostname, "d= of our DKIM signatures (RFC 6376)",
	    CONF_RELOAD },
	{ CONF_DKIM_SELECTOR, "dkim", "selector", CONF_T_STR, NULL, 0, 0,
	    check_hostname, "s=: the key is at SELECTOR._domainkey.DOMAIN",
	    CONF_RELOAD },
	{ CONF_DKIM_KEY_FILE, "dkim", "key_file", CONF_T_PATH, NULL, 0, 0, NULL,
	    "private key (PEM): RSA of 1024 bits or more, or Ed25519",
	    CONF_RELOAD },
	{ CONF_DKIM_SIGN_OUTBOUND, "dkim", "sign_outbound", CONF_T_BOOL, "no",
	    0, 0, NULL,
	    "also sign accepted mail whose From: is in the [dkim] domain or "
	    "below it",
	    CONF_RELOAD },
	{ CONF_ADMIN_LISTEN, "admin", "listen", CONF_T_STR, NULL, 0, 0,
	    check_listen,
	    "ADDR:PORT of the web console and /metrics (IPv6 as [ADDR]:PORT; "
	    "unset: no console); not loopback: needs tls_cert, tls_key and "
	    "auth_file",
	    CONF_RESTART },
	{ CONF_ADMIN_TLS_CERT, "admin", "tls_cert", CONF_T_PATH, NULL, 0, 0,
	    NULL, "certificate chain (PEM): the console speaks HTTPS",
	    CONF_RESTART },
	{ CONF_ADMIN_TLS_KEY, "admin", "tls_key", CONF_T_PATH, NULL, 0, 0, NULL,
	    "private key (PEM) of [admin] tls_cert", CONF_RESTART },
	{ CONF_ADMIN_AUTH_FILE, "admin", "auth_file", CONF_T_PATH, NULL, 0, 0,
	    NULL,
	    "user:hash lines (danerelay passwd) of the console's users; "
	    "set: every page needs a login, loopback too",
	    CONF_RESTART },
	{ CONF_ADMIN_CHART_JS, "admin", "chart_js", CONF_T_PATH,
	    "/usr/share/javascript/chart.js/chart.min.js", 0, 0, NULL,
	    "Chart.js served to the console's pages (Debian: libjs-chart.js)",
	    CONF_RESTART },
	{ CONF_ADMIN_METRICS_OPEN, "admin", "metrics_open", CONF_T_BOOL, "no",
	    0, 0, NULL, "yes: /metrics needs no login even when the pages do",
	    CONF_RESTART },
	{ CONF_FLEET_POSTGRES, "fleet", "postgres", CONF_T_STR, NULL, 0, 0,
	    NULL,
	    "libpq connection string of the fleet's shared database: trace, "
	    "reports, TLS-RPT counters and MTA-STS cache of all nodes "
	    "(docs/FLEET.md); unset: this node alone",
	    CONF_RESTART },
	{ CONF_FLEET_NODE, "fleet", "node", CONF_T_STR, NULL, 0, 0, check_node,
	    "this node's name in the fleet (default: the host name)",
	    CONF_RESTART },
	{ CONF_FLEET_SYNC_INTERVAL, "fleet", "sync_interval", CONF_T_DURATION,
	    "2s", 1, 3600, NULL,
	    "how often a node with a local queue copies its new trace events, "
	    "TLS-RPT counters and MTA-STS policies to the fleet database",
	    CONF_RESTART },
};

/* "[host]:port", "host:port", "[host]" or "host" (RFC 7672 §2.2.2 routes). */
static const char *
check_route(const char *value)
{
	const char *p = value, *host, *colon;
	size_t hostlen;
	uint64_t port;

	if (*p == '[') {
		host = p + 1;
		p = strchr(host, ']');
		if (p == NULL)
			return "missing ']' in route";
		hostlen = (size_t)(p - host);
		p++;
	} else {
		host = p;
		colon = strchr(p, ':');
		hostlen = colon != NULL ? (size_t)(colon - p) : strlen(p);
		p += hostlen;
	}
	if (hostlen == 0 || hostlen > 253)
		return "route needs a host name";
	if (*p == ':' && str_to_uint(p + 1, 1, 65535, &port) == -1)
		return "bad port in route";
	if (*p != '\0' && *p != ':')
		return "expected [host]:port or host:port";
	return NULL;
}

const struct conf_domain_key_def conf_domain_keys[] = {
	{ "security", offsetof(struct conf_domain, security), check_security,
	    "dane, dane-only (mandatory DANE), encrypt, may" },
	{ "mode", offsetof(struct conf_domain, mode), check_mode,
	    "enforce or log-only for this destination" },
	{ "route", offsetof(struct conf_domain, route), check_route,
	    "next hop: [host]:port (no MX lookup) or host:port; direct: "
	    "the domain's own MX, not [delivery] relayhost" },
	{ "exception", offsetof(struct conf_domain, exception), NULL,
	    "deliver to this broken domain anyway (security = may); the "
	    "reason is logged with every delivery" },
};

const size_t conf_domain_key_count =
    sizeof(conf_domain_keys) / sizeof(conf_domain_keys[0]);
