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
	CONF_KEY_COUNT
};

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

/* Print the effective configuration, one `key = value` per line by section. */
void conf_dump(const struct conf *c, FILE *fp);

#endif
