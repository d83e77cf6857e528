/*
 * conf: the configuration file and the one table that declares every key.
 *
 * Format (INI style): `[section]` headers, `key = value` lines, comments
 * starting with '#' or ';'. Each key is declared once in conf_keys.c with its
 * type, default and bounds; unknown, duplicate or malformed keys are errors
 * reported as "file:line: ...". `danerelay check-config` prints the effective
 * configuration from the same table.
 */
#ifndef DR_CONF_H
#define DR_CONF_H

#include <stdbool.h>
#include <stdio.h>

struct conf;

/* Every key, in table order. Keep in step with conf_keys.c. */
enum conf_key {
	CONF_DNS_TRUST_ANCHOR_FILE,
	CONF_DNS_ROOT_SERVERS,
	CONF_DNS_FORWARDERS,
	CONF_DNS_TIMEOUT,
	CONF_DANE_DIGESTS,
	CONF_DELIVERY_PORT,
	CONF_DELIVERY_HELO_NAME,
	CONF_DELIVERY_CONNECT_TIMEOUT,
	CONF_DELIVERY_GREETING_TIMEOUT,
	CONF_DELIVERY_COMMAND_TIMEOUT,
	CONF_DELIVERY_DATA_TIMEOUT,
	CONF_DELIVERY_RETRY_SCHEDULE,
	CONF_DELIVERY_MAX_QUEUE_LIFETIME,
	CONF_DELIVERY_DELAY_WARNING,
	CONF_DELIVERY_CONCURRENCY,
	CONF_DELIVERY_INITIAL_CONCURRENCY,
	CONF_DELIVERY_DEAD_AFTER,
	CONF_DELIVERY_DEAD_TIME,
	CONF_DELIVERY_MAX_MESSAGES_PER_CONNECTION,
	CONF_DELIVERY_CONNECTION_IDLE_TIME,
	CONF_DELIVERY_HOLD,
	CONF_DELIVERY_TLS_HANDSHAKES,
	CONF_DELIVERY_RELAYHOST,
	CONF_SERVER_LISTEN,
	CONF_SERVER_RELAY_NETWORKS,
	CONF_SERVER_HOSTNAME,
	CONF_SERVER_TLS_CERT,
	CONF_SERVER_TLS_KEY,
	CONF_SERVER_AUTH_FILE,
	CONF_SERVER_AUTH_MAX_FAILURES,
	CONF_SERVER_AUTH_LOCKOUT,
	CONF_SERVER_MAX_MESSAGE_SIZE,
	CONF_SERVER_MAX_RECIPIENTS,
	CONF_SERVER_MAX_CONNECTIONS,
	CONF_SERVER_MAX_CONNECTIONS_PER_IP,
	CONF_SERVER_COMMAND_TIMEOUT,
	CONF_SERVER_DATA_TIMEOUT,
	CONF_SERVER_USER,
	CONF_SERVER_TLSA_GUARD,
	CONF_SERVER_ALLOW_ROOT,
	CONF_LOG_TARGET,
	CONF_LOG_FORMAT,
	CONF_LOG_LEVEL,
	CONF_LOG_FACILITY,
	CONF_LOG_SYSLOG_SOCKET,
	CONF_QUEUE_DIRECTORY,
	CONF_QUEUE_MIN_FREE_SPACE,
	CONF_QUEUE_STORE,
	CONF_QUEUE_LEASE,
	CONF_POLICY_MODE,
	CONF_POLICY_SECURITY,
	CONF_POLICY_LOG_ONLY_CLEARTEXT,
	CONF_MTA_STS_ENABLED,
	CONF_MTA_STS_CA_FILE,
	CONF_MTA_STS_HTTPS_PORT,
	CONF_MTA_STS_FETCH_TIMEOUT,
	CONF_TLSRPT_ENABLED,
	CONF_TLSRPT_ORGANIZATION,
	CONF_TLSRPT_CONTACT,
	CONF_TLSRPT_SENDER_ADDRESS,
	CONF_TLSRPT_SEND,
	CONF_TLSRPT_MAX_DELAY,
	CONF_TLSRPT_CA_FILE,
	CONF_TLSRPT_POST_TIMEOUT,
	CONF_TLSRPT_RECEIVED,
	CONF_TLSRPT_LEASE,
	CONF_DKIM_DOMAIN,
	CONF_DKIM_SELECTOR,
	CONF_DKIM_KEY_FILE,
	CONF_DKIM_SIGN_OUTBOUND,
	CONF_ADMIN_LISTEN,
	CONF_ADMIN_TLS_CERT,
	CONF_ADMIN_TLS_KEY,
	CONF_ADMIN_AUTH_FILE,
	CONF_ADMIN_CHART_JS,
	CONF_ADMIN_METRICS_OPEN,
	CONF_FLEET_POSTGRES,
	CONF_FLEET_NODE,
	CONF_FLEET_SYNC_INTERVAL,
	CONF_KEY_COUNT
};

/*
 * Per-destination overrides: `[domain example.com]` sections with the keys
 * of conf_domain_keys (security, mode, route, exception). Read-only.
 */
struct conf_domain {
	char *name;     /* lowercase domain */
	char *security; /* dane|dane-only|encrypt|may, or NULL = [policy] */
	char *mode;     /* enforce|log-only, or NULL = [policy] */
	char *route;    /* "[host]:port", "host:port", "[host]", or NULL */
	char *
	    exception; /* why this broken domain is delivered anyway, or NULL */
	unsigned line; /* where the section starts, for messages */
};

/* The [domain NAME] sections, in file order. */
size_t conf_domain_count(const struct conf *c);
const struct conf_domain *conf_domain_at(const struct conf *c, size_t i);

/*
 * Load path (NULL: defaults only). Returns new (conf_free), or NULL with
 * *errstr = new "file:line: what" text (caller frees).
 */
struct conf *conf_load(const char *path, char **errstr);

/* Parse text as if read from a file called name. Same contract. */
struct conf *conf_parse(
    const char *text, size_t len, const char *name, char **errstr);

void conf_free(struct conf *c);

/* Value accessors; the key's declared type must match (ASSERTed). */
const char *conf_str(const struct conf *c, enum conf_key k); /* NULL if unset */
long long conf_int(
    const struct conf *c, enum conf_key k); /* ints, seconds for durations */
bool conf_bool(const struct conf *c, enum conf_key k);
char **conf_list(
    const struct conf *c, enum conf_key k); /* NULL-terminated, borrowed */

/*
 * A list of durations ("5m 10m 1h") as seconds: returns a new array (*n
 * entries, caller frees) of a CONF_T_LIST key validated as durations.
 */
long long *conf_durations(const struct conf *c, enum conf_key k, size_t *n);

/*
 * Print the effective configuration by section: each key after a comment
 * line with its help; keys at their default are commented out, unset ones
 * shown as "# key = (unset)". The output is valid input, and reading it
 * back prints the same text.
 */
void conf_dump(const struct conf *c, FILE *fp);

/*
 * Print the key reference of danerelay.conf(5) in man(7) format, from
 * the key table: per section, each key with its type, default, bounds,
 * reload or restart, and help (conf_man.c).
 */
void conf_man_keys(FILE *fp);

/* The section and name of k as declared (static). */
const char *conf_key_section(enum conf_key k);
const char *conf_key_name(enum conf_key k);

/*
 * Whether SIGHUP applies k (the table's reload flag); a change of any
 * other key needs a restart.
 */
bool conf_key_reloadable(enum conf_key k);

/* The value of k as written, or its default; NULL when unset. Borrowed. */
const char *conf_raw(const struct conf *c, enum conf_key k);

/* The name c was read as ("(built-in defaults)" for none). Borrowed. */
const char *conf_file(const struct conf *c);

/* The line k was set on, 0 when the file does not set it. */
unsigned conf_key_line(const struct conf *c, enum conf_key k);

/*
 * A configuration error about k, in the one form they all take:
 * "FILE:LINE: [section] key: TEXT" (no ":LINE" when k is not in the
 * file). Returns new, caller frees.
 */
char *conf_errorf(const struct conf *c, enum conf_key k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
