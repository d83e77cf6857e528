/*
 * smtp_ehlo: EHLO capability parsing (RFC 5321 §4.1.1.1).
 *
 * ehlo-line = ehlo-keyword *( SP ehlo-param ); the keyword is
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). Some old servers still write
 * "AUTH=LOGIN PLAIN" (before RFC 4954), so '=' after AUTH is taken as a
 * separator. Parameters are kept as received (sanitized to printable ASCII).
 */
#include "smtp/smtp_ehlo.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/str.h"
#include "core/xmalloc.h"
#include "smtp/smtp_reply.h"

struct smtp_ehlo_cap {
	char *line;    /* printable copy of the whole line */
	char *keyword; /* upper case */
	char *params;  /* points into line; "" if none */
};

struct smtp_ehlo {
	struct smtp_ehlo_cap *caps;
	size_t count;
	unsigned exts;
	uint64_t size;
	char *domain;
};

static const struct {
	const char *kw;
	enum smtp_ext ext;
} smtp_ehlo_known[] = {
	{ "STARTTLS", SMTP_EXT_STARTTLS },
	{ "PIPELINING", SMTP_EXT_PIPELINING },
	{ "SIZE", SMTP_EXT_SIZE },
	{ "8BITMIME", SMTP_EXT_8BITMIME },
	{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
	{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
	{ "DSN", SMTP_EXT_DSN },
	{ "AUTH", SMTP_EXT_AUTH },
	{ "CHUNKING", SMTP_EXT_CHUNKING },
};

#define SMTP_EHLO_NKNOWN (sizeof(smtp_ehlo_known) / sizeof(smtp_ehlo_known[0]))

struct smtp_ehlo *
smtp_ehlo_new(void)
{
	return xcalloc(1, sizeof(struct smtp_ehlo));
}

void
smtp_ehlo_reset(struct smtp_ehlo *e)
{
	size_t i;

	for (i = 0; i < e->count; i++) {
		free(e->caps[i].line);
		free(e->caps[i].keyword);
	}
	free(e->caps);
	free(e->domain);
	e->caps = NULL;
	e->domain = NULL;
	e->count = 0;
	e->exts = 0;
	e->size = 0;
}

void
smtp_ehlo_free(struct smtp_ehlo *e)
{
	if (e == NULL)
		return;
	smtp_ehlo_reset(e);
	free(e);
}

/* Length of the ehlo-keyword at the start of s, 0 if there is none. */
static size_t
smtp_ehlo_keyword_len(const char *s)
{
	size_t n = 0;

	if (!isalnum((unsigned char)s[0]))
		return 0;
	while (isalnum((unsigned char)s[n]) || s[n] == '-')
		n++;
	return n;
}

/* Record what a known keyword means; params is the text after it. */
static void
smtp_ehlo_note(struct smtp_ehlo *e, const char *kw, const char *params)
{
	const char *p = params;
	uint64_t v;
	size_t i;

	for (i = 0; i < SMTP_EHLO_NKNOWN; i++) {
		if (strcmp(kw, smtp_ehlo_known[i].kw) == 0)
			e->exts |= (unsigned)smtp_ehlo_known[i].ext;
	}
	/* RFC 1870 §4: "SIZE" alone or "SIZE 0" means no fixed limit. */
	if (strcmp(kw, "SIZE") == 0 &&
	    str_parse_uint(&p, UINT64_MAX, &v) == 0 &&
	    (*p == '\0' || *p == ' '))
		e->size = v;
}

int
smtp_ehlo_add(struct smtp_ehlo *e, const char *line, const char **errstr)
{
	struct smtp_ehlo_cap *cap;
	size_t n = smtp_ehlo_keyword_len(line), len = strlen(line), i;
	bool legacy_auth;

	if (n == 0) {
		*errstr = "EHLO line does not start with a keyword";
		return -1;
	}
	legacy_auth =
	    n == 4 && strncasecmp(line, "AUTH", 4) == 0 && line[n] == '=';
	if (line[n] != '\0' && line[n] != ' ' && !legacy_auth) {
		*errstr = "EHLO keyword followed by junk";
		return -1;
	}
	if (e->count == SMTP_REPLY_LINES_MAX) {
		*errstr = "too many EHLO lines";
		return -1;
	}
	e->caps = xreallocarray(e->caps, e->count + 1, sizeof(*e->caps));
	cap = &e->caps[e->count++];
	cap->line = xmalloc(len + 1);
	smtp_reply_sanitize(cap->line, len + 1, line, len);
	cap->keyword = xstrndup(line, n);
	for (i = 0; i < n; i++)
		cap->keyword[i] = (char)toupper((unsigned char)line[i]);
	cap->params = cap->line + n + (legacy_auth ? 1 : 0);
	while (*cap->params == ' ')
		cap->params++;
	smtp_ehlo_note(e, cap->keyword, cap->params);
	return 0;
}

void
smtp_ehlo_set_domain(struct smtp_ehlo *e, const char *line)
{
	size_t n = strcspn(line, " ");

	free(e->domain);
	e->domain = xmalloc(n + 1);
	smtp_reply_sanitize(e->domain, n + 1, line, n);
}

void
smtp_ehlo_parse(struct smtp_ehlo *e, const struct smtp_reply *r)
{
	const char *errstr;
	size_t i;

	smtp_ehlo_reset(e);
	if (smtp_reply_count(r) == 0)
		return;
	smtp_ehlo_set_domain(e, smtp_reply_text(r, 0));
	/* Bad lines are skipped: one odd extension must not spoil the rest. */
	for (i = 1; i < smtp_reply_count(r); i++)
		(void)smtp_ehlo_add(e, smtp_reply_text(r, i), &errstr);
}

bool
smtp_ehlo_has(const struct smtp_ehlo *e, unsigned exts)
{
	return (e->exts & exts) == exts;
}

unsigned
smtp_ehlo_exts(const struct smtp_ehlo *e)
{
	return e->exts;
}

uint64_t
smtp_ehlo_size(const struct smtp_ehlo *e)
{
	return e->size;
}

/* True when the space-separated list has word w (case-insensitive). */
static bool
smtp_ehlo_list_has(const char *list, const char *w)
{
	size_t wlen = strlen(w), n;

	for (;;) {
		while (*list == ' ')
			list++;
		if (*list == '\0')
			return false;
		n = strcspn(list, " ");
		if (n == wlen && strncasecmp(list, w, n) == 0)
			return true;
		list += n;
	}
}

bool
smtp_ehlo_auth(const struct smtp_ehlo *e, const char *mech)
{
	size_t i;

	/* Servers may send both "AUTH a b" and "AUTH=a b": look at all. */
	for (i = 0; i < e->count; i++) {
		if (strcmp(e->caps[i].keyword, "AUTH") == 0 &&
		    smtp_ehlo_list_has(e->caps[i].params, mech))
			return true;
	}
	return false;
}

const char *
smtp_ehlo_domain(const struct smtp_ehlo *e)
{
	return e->domain == NULL ? "" : e->domain;
}

size_t
smtp_ehlo_count(const struct smtp_ehlo *e)
{
	return e->count;
}

const char *
smtp_ehlo_line(const struct smtp_ehlo *e, size_t i)
{
	ASSERT(i < e->count);
	return e->caps[i].line;
}

const char *
smtp_ehlo_keyword(const struct smtp_ehlo *e, size_t i)
{
	ASSERT(i < e->count);
	return e->caps[i].keyword;
}

const char *
smtp_ehlo_params(const struct smtp_ehlo *e, size_t i)
{
	ASSERT(i < e->count);
	return e->caps[i].params;
}

const char *
smtp_ehlo_find(const struct smtp_ehlo *e, const char *kw)
{
	size_t i;

	for (i = 0; i < e->count; i++) {
		if (str_eq_ci(e->caps[i].keyword, kw))
			return e->caps[i].params;
	}
	return NULL;
}

const char *
smtp_ehlo_ext_str(enum smtp_ext ext)
{
	size_t i;

	for (i = 0; i < SMTP_EHLO_NKNOWN; i++) {
		if (smtp_ehlo_known[i].ext == ext)
			return smtp_ehlo_known[i].kw;
	}
	return NULL;
}
