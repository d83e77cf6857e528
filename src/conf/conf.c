/*
 * conf: parser of the INI-style configuration file, driven by conf_keys[].
 */
#include "conf/conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_keys.h"
#include "core/buf.h"
#include "core/str.h"
#include "core/xmalloc.h"

#define CONF_MAX_FILE (1024 * 1024)
#define CONF_MAX_LINE 4096

struct conf_val {
	bool set;      /* given in the file (else default) */
	unsigned line; /* where it was given, 0 = not in the file */
	char *raw;     /* text as given, or the default; NULL = unset */
	long long num; /* ints, bools, durations */
	char **list;   /* lists */
};

struct conf {
	struct conf_val v[CONF_KEY_COUNT];
	struct conf_domain *domains;
	size_t ndomain;
	unsigned lineno; /* while parsing */
	char *file;      /* the name it was read as, NULL = defaults */
};

static const struct conf_key_def *
conf_find(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < CONF_KEY_COUNT; i++) {
		if (strcmp(conf_keys[i].section, section) == 0 &&
		    strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	}
	return NULL;
}

static bool
conf_section_known(const char *section)
{
	size_t i;

	for (i = 0; i < CONF_KEY_COUNT; i++)
		if (strcmp(conf_keys[i].section, section) == 0)
			return true;
	return false;
}

static const char *
conf_parse_duration(const char *s, long long *out)
{
	uint64_t v;

	if (str_parse_duration(s, &v) == -1)
		return "expected a duration such as 30s, 5m, 1h or 2d";
	*out = (long long)v;
	return NULL;
}

static const char *
conf_parse_bool(const char *s, long long *out)
{
	if (str_eq_ci(s, "yes") || str_eq_ci(s, "true") || str_eq_ci(s, "on") ||
	    strcmp(s, "1") == 0)
		*out = 1;
	else if (str_eq_ci(s, "no") || str_eq_ci(s, "false") ||
	    str_eq_ci(s, "off") || strcmp(s, "0") == 0)
		*out = 0;
	else
		return "expected yes or no";
	return NULL;
}

/* Parse value into slot per def; NULL or a static error. */
static const char *
conf_set(
    struct conf_val *slot, const struct conf_key_def *def, const char *value)
{
	const char *err = NULL;
	uint64_t u;
	size_t n;

	switch (def->type) {
	case CONF_T_STR:
	case CONF_T_PATH:
		if (*value == '\0')
			err = "empty value";
		break;
	case CONF_T_INT:
		if (str_to_uint(value, 0, (uint64_t)def->max, &u) == -1 ||
		    (long long)u < def->min)
			err = "expected a number in range";
		else
			slot->num = (long long)u;
		break;
	case CONF_T_BOOL:
		err = conf_parse_bool(value, &slot->num);
		break;
	case CONF_T_DURATION:
		err = conf_parse_duration(value, &slot->num);
		if (err == NULL &&
		    (slot->num < def->min || slot->num > def->max))
			err = "duration out of range";
		break;
	case CONF_T_LIST:
		str_vec_free(slot->list);
		slot->list = str_split_list(value, &n);
		break;
	}
	if (err == NULL && def->check != NULL)
		err = def->check(value);
	if (err != NULL)
		return err;
	free(slot->raw);
	slot->raw = xstrdup(value);
	return NULL;
}

static struct conf *
conf_defaults(void)
{
	struct conf *c = xcalloc(1, sizeof(*c));
	size_t i;
	const char *err;

	for (i = 0; i < CONF_KEY_COUNT; i++) {
		ASSERT(conf_keys[i].key == (enum conf_key)i);
		if (conf_keys[i].def == NULL)
			continue;
		err = conf_set(&c->v[i], &conf_keys[i], conf_keys[i].def);
		if (err != NULL)
			panic("default of %s.%s: %s", conf_keys[i].section,
			    conf_keys[i].name, err);
	}
	return c;
}

/*
 * The name of a [domain NAME] section, lowercased and without its one
 * trailing dot (DNS names are case-insensitive and "example.org." is
 * "example.org"), checked as an RFC 5321 §4.1.2 Domain: labels of letters,
 * digits and inner hyphens, 1 to 63 octets each, 253 in all. NULL or a
 * static error.
 */
static const char *
conf_domain_name(char *name)
{
	size_t len, n;
	char *p, *dot;

	str_lower(name);
	len = strlen(name);
	if (len > 1 && name[len - 1] == '.')
		name[--len] = '\0';
	if (len == 0 || strcmp(name, ".") == 0)
		return "expected [domain NAME] with a domain name";
	if (name[0] == '.')
		return "a domain name does not start with '.' (a section "
		       "matches one domain exactly: write [domain example.org])";
	if (len > 253)
		return "domain name longer than 253 characters";
	if (name[len - 1] == '.')
		return "empty label in domain name ('..')";
	for (p = name; *p != '\0'; p = *dot != '\0' ? dot + 1 : dot) {
		dot = p + strcspn(p, ".");
		n = (size_t)(dot - p);
		if (n == 0)
			return "empty label in domain name ('..')";
		if (n > 63)
			return "label of more than 63 characters in domain name";
		if (strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-") < n)
			return "domain name with characters other than letters, "
			       "digits, '-' and '.'";
		if (p[0] == '-' || p[n - 1] == '-')
			return "domain name label that starts or ends with '-'";
	}
	return NULL;
}

/* "[domain NAME]": start a per-destination section. */
static const char *
conf_domain_begin(struct conf *c, char *line, char *section, size_t seclen,
    char *errbuf, size_t errlen)
{
	char *name = str_trim(line + 6); /* after "domain" */
	const char *err;
	size_t i;

	if ((err = conf_domain_name(name)) != NULL) {
		snprintf(errbuf, errlen, "[domain %s]: %s", name, err);
		return errbuf;
	}
	for (i = 0; i < c->ndomain; i++) {
		if (strcmp(c->domains[i].name, name) == 0) {
			snprintf(errbuf, errlen,
			    "duplicate section [domain %s] "
			    "(first at line %u)",
			    name, c->domains[i].line);
			return errbuf;
		}
	}
	c->domains =
	    xreallocarray(c->domains, c->ndomain + 1, sizeof(*c->domains));
	memset(&c->domains[c->ndomain], 0, sizeof(*c->domains));
	c->domains[c->ndomain].name = xstrdup(name);
	c->domains[c->ndomain].line = c->lineno;
	c->ndomain++;
	snprintf(section, seclen, "domain %s", name);
	return NULL;
}

/* A key inside the current [domain NAME] section. */
static const char *
conf_domain_set(struct conf *c, const char *key, const char *value,
    char *errbuf, size_t errlen)
{
	struct conf_domain *d = &c->domains[c->ndomain - 1];
	const struct conf_domain_key_def *def = NULL;
	const char *err;
	char **slot;
	size_t i;

	for (i = 0; i < conf_domain_key_count; i++)
		if (strcmp(conf_domain_keys[i].name, key) == 0)
			def = &conf_domain_keys[i];
	if (def == NULL) {
		snprintf(errbuf, errlen,
		    "unknown key '%s' in [domain %s] "
		    "(security, mode, route, exception)",
		    key, d->name);
		return errbuf;
	}
	slot = (char **)(void *)((char *)d + def->offset);
	if (*slot != NULL) {
		snprintf(errbuf, errlen, "duplicate key '%s' in [domain %s]",
		    key, d->name);
		return errbuf;
	}
	err = *value == '\0'   ? "empty value" :
	    def->check != NULL ? def->check(value) :
	                         NULL;
	if (err != NULL) {
		snprintf(errbuf, errlen, "domain %s: %s = %s: %s", d->name, key,
		    value, err);
		return errbuf;
	}
	*slot = xstrdup(value);
	return NULL;
}

size_t
conf_domain_count(const struct conf *c)
{
	return c->ndomain;
}

const struct conf_domain *
conf_domain_at(const struct conf *c, size_t i)
{
	ASSERT(i < c->ndomain);
	return &c->domains[i];
}

/* Handle one line; NULL or an error text (static or in errbuf). */
static const char *
conf_line(struct conf *c, char *line, char *section, size_t seclen,
    char *errbuf, size_t errlen)
{
	const struct conf_key_def *def;
	char *eq, *key, *value, *end;
	const char *err;

	line = str_trim(line);
	if (*line == '\0' || *line == '#' || *line == ';')
		return NULL;
	if (*line == '[') {
		end = strchr(line, ']');
		if (end == NULL || end[1] != '\0')
			return "malformed section header (expected [name])";
		*end = '\0';
		line = str_trim(line + 1);
		if (strncmp(line, "domain ", 7) == 0 ||
		    strcmp(line, "domain") == 0)
			return conf_domain_begin(
			    c, line, section, seclen, errbuf, errlen);
		if (!conf_section_known(line)) {
			snprintf(errbuf, errlen, "unknown section [%s]", line);
			return errbuf;
		}
		snprintf(section, seclen, "%s", line);
		return NULL;
	}
	eq = strchr(line, '=');
	if (eq == NULL)
		return "expected 'key = value'";
	*eq = '\0';
	key = str_trim(line);
	value = str_trim(eq + 1);
	if (*section == '\0')
		return "key outside of a [section]";
	if (strncmp(section, "domain ", 7) == 0)
		return conf_domain_set(c, key, value, errbuf, errlen);
	def = conf_find(section, key);
	if (def == NULL) {
		snprintf(
		    errbuf, errlen, "unknown key '%s' in [%s]", key, section);
		return errbuf;
	}
	if (c->v[def->key].set) {
		snprintf(
		    errbuf, errlen, "duplicate key '%s' in [%s]", key, section);
		return errbuf;
	}
	err = conf_set(&c->v[def->key], def, value);
	if (err != NULL) {
		/* The one mistake the format invites: "key = v  # why". */
		snprintf(errbuf, errlen, "%s.%s = %s: %s%s", section, key,
		    value, err,
		    strstr(value, " #") != NULL || strstr(value, " ;") != NULL ?
		        " (comments go on lines of their own)" :
		        "");
		return errbuf;
	}
	c->v[def->key].set = true;
	c->v[def->key].line = c->lineno;
	return NULL;
}

struct conf *
conf_parse(const char *text, size_t len, const char *name, char **errstr)
{
	struct conf *c = conf_defaults();
	char section[64] = "", line[CONF_MAX_LINE + 1], errbuf[512];
	const char *p = text, *end = text + len, *nl, *err;
	size_t lineno = 0, n;

	c->file = xstrdup(name);

	while (p < end) {
		lineno++;
		c->lineno = (unsigned)lineno;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		if (n > CONF_MAX_LINE)
			err = "line too long";
		else if (memchr(p, '\0', n) != NULL)
			err = "NUL byte in line";
		else {
			memcpy(line, p, n);
			line[n] = '\0';
			err = conf_line(c, line, section, sizeof(section),
			    errbuf, sizeof(errbuf));
		}
		if (err != NULL) {
			*errstr = xasprintf("%s:%zu: %s", name, lineno, err);
			conf_free(c);
			return NULL;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	return c;
}

struct conf *
conf_load(const char *path, char **errstr)
{
	struct conf *c;
	struct buf b;
	char chunk[8192];
	size_t n;
	FILE *fp;

	if (path == NULL)
		return conf_defaults();
	if ((fp = fopen(path, "r")) == NULL) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, CONF_MAX_FILE);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (buf_add(&b, chunk, n) == -1) {
			fclose(fp);
			buf_free(&b);
			*errstr =
			    xasprintf("%s: file too large (over %d bytes)",
			        path, CONF_MAX_FILE);
			return NULL;
		}
	}
	if (ferror(fp)) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		fclose(fp);
		buf_free(&b);
		return NULL;
	}
	fclose(fp);
	c = conf_parse(buf_cstr(&b), b.len, path, errstr);
	buf_free(&b);
	return c;
}

void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < CONF_KEY_COUNT; i++) {
		free(c->v[i].raw);
		str_vec_free(c->v[i].list);
	}
	free(c->file);
	for (i = 0; i < c->ndomain; i++) {
		free(c->domains[i].name);
		free(c->domains[i].security);
		free(c->domains[i].mode);
		free(c->domains[i].route);
		free(c->domains[i].exception);
	}
	free(c->domains);
	free(c);
}

const char *
conf_str(const struct conf *c, enum conf_key k)
{
	ASSERT(conf_keys[k].type == CONF_T_STR ||
	    conf_keys[k].type == CONF_T_PATH);
	return c->v[k].raw;
}

long long
conf_int(const struct conf *c, enum conf_key k)
{
	ASSERT(conf_keys[k].type == CONF_T_INT ||
	    conf_keys[k].type == CONF_T_DURATION);
	return c->v[k].num;
}

bool
conf_bool(const struct conf *c, enum conf_key k)
{
	ASSERT(conf_keys[k].type == CONF_T_BOOL);
	return c->v[k].num != 0;
}

char **
conf_list(const struct conf *c, enum conf_key k)
{
	static char *empty[] = { NULL };

	ASSERT(conf_keys[k].type == CONF_T_LIST);
	return c->v[k].list != NULL ? c->v[k].list : empty;
}

static void
conf_dump_domain(const struct conf_domain *d, FILE *fp)
{
	size_t i;

	fprintf(fp, "\n[domain %s]\n", d->name);
	for (i = 0; i < conf_domain_key_count; i++) {
		char *const *slot =
		    (char *const *)(const void *)((const char *)d +
		        conf_domain_keys[i].offset);

		if (*slot != NULL)
			fprintf(
			    fp, "%s = %s\n", conf_domain_keys[i].name, *slot);
	}
}

long long *
conf_durations(const struct conf *c, enum conf_key k, size_t *n)
{
	char **v = conf_list(c, k);
	long long *out;
	size_t i;

	for (*n = 0; v[*n] != NULL; (*n)++)
		;
	out = xcalloc(*n + 1, sizeof(*out));
	for (i = 0; i < *n; i++)
		if (conf_parse_duration(v[i], &out[i]) != NULL)
			out[i] = 300;
	return out;
}

void
conf_dump(const struct conf *c, FILE *fp)
{
	const char *section = "";
	size_t i;

	fprintf(fp, "# Keys commented out have their default value.\n");

	for (i = 0; i < CONF_KEY_COUNT; i++) {
		if (strcmp(section, conf_keys[i].section) != 0) {
			section = conf_keys[i].section;
			fprintf(fp, "%s[%s]\n", i == 0 ? "" : "\n", section);
		}
		/* Comments on lines of their own: the output is valid input
		 * again, and reading it back prints the same text. */
		fprintf(fp, "# %s%s\n", conf_keys[i].help,
		    conf_keys[i].reload ? "" : " (restart to change)");
		if (c->v[i].raw == NULL)
			fprintf(fp, "# %s = (unset)\n", conf_keys[i].name);
		else
			fprintf(fp, "%s%s = %s\n", c->v[i].set ? "" : "# ",
			    conf_keys[i].name, c->v[i].raw);
	}
	for (i = 0; i < c->ndomain; i++)
		conf_dump_domain(&c->domains[i], fp);
}

const char *
conf_key_section(enum conf_key k)
{
	return conf_keys[k].section;
}

const char *
conf_key_name(enum conf_key k)
{
	return conf_keys[k].name;
}

bool
conf_key_reloadable(enum conf_key k)
{
	return conf_keys[k].reload;
}

const char *
conf_raw(const struct conf *c, enum conf_key k)
{
	return c->v[k].raw;
}

const char *
conf_file(const struct conf *c)
{
	return c->file != NULL ? c->file : "(built-in defaults)";
}

unsigned
conf_key_line(const struct conf *c, enum conf_key k)
{
	return c->v[k].line;
}

char *
conf_errorf(const struct conf *c, enum conf_key k, const char *fmt, ...)
{
	char text[1024], where[64] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (c->v[k].line != 0)
		snprintf(where, sizeof(where), ":%u", c->v[k].line);
	return xasprintf("%s%s: [%s] %s: %s", conf_file(c), where,
	    conf_keys[k].section, conf_keys[k].name, text);
}
