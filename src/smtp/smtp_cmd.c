/*
 * smtp_cmd: SMTP command line parser (see smtp_cmd.h).
 *
 * Two tables drive it: the verbs with the shape of their argument, and
 * the MAIL/RCPT parameters with the verb they belong to and their value
 * parser. Paths follow the ABNF of RFC 5321 §4.1.2, extended for UTF-8 by
 * RFC 6531 §3.3 only when SMTPUTF8 is in effect.
 */
#include "smtp/smtp_cmd.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Errors: the reply to give. */
static int
smtp_cmd_fail(struct smtp_cmd *c, int code, const char *esc, const char *text)
{
	c->code = code;
	c->esc = esc;
	c->text = text;
	return -1;
}

/* ---- character classes --------------------------------------------- */

static bool
smtp_cmd_alpha(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool
smtp_cmd_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool
smtp_cmd_letdig(unsigned char ch)
{
	return smtp_cmd_alpha(ch) || smtp_cmd_digit(ch);
}

/* RFC 5322 §3.2.3 atext. */
static bool
smtp_cmd_atext(unsigned char ch)
{
	return smtp_cmd_letdig(ch) ||
	    (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence at p (at most n octets), or 0
 * (RFC 3629 §4: no overlongs, no surrogates, nothing above U+10FFFF).
 */
static size_t
smtp_cmd_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Whether s[0..n) holds any octet >= 0x80. */
static bool
smtp_cmd_has_8bit(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * Skip one character of class ok, or (when utf8) one well-formed UTF-8
 * sequence. Returns octets skipped, 0 if none.
 */
static size_t
smtp_cmd_char(
    const char *p, const char *end, bool utf8, bool (*ok)(unsigned char))
{
	const unsigned char *u = (const unsigned char *)p;

	if (p >= end)
		return 0;
	if (*u < 0x80)
		return ok(*u) ? 1 : 0;
	return utf8 ? smtp_cmd_utf8_len(u, (size_t)(end - p)) : 0;
}

/* ---- domains and address literals (RFC 5321 §4.1.2, §4.1.3) --------- */

static bool
smtp_cmd_ldh(unsigned char ch)
{
	return smtp_cmd_letdig(ch) || ch == '-';
}

static bool
smtp_cmd_ldh_lax(unsigned char ch)
{
	return smtp_cmd_ldh(ch) || ch == '_';
}

/* One label: Let-dig [Ldh-str], 1-63 octets (U-label octets when utf8). */
static bool
smtp_cmd_label_ok(const char *s, size_t len, bool utf8, bool lax)
{
	const char *p = s, *end = s + len;
	size_t n;

	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	while (p < end) {
		n = smtp_cmd_char(
		    p, end, utf8, lax ? smtp_cmd_ldh_lax : smtp_cmd_ldh);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

bool
smtp_cmd_domain_ok(const char *s, size_t len, bool utf8, bool lax)
{
	const char *p = s, *end = s + len, *dot;

	if (len == 0 || len > SMTP_CMD_DOMAIN_MAX)
		return false;
	for (;;) {
		dot = memchr(p, '.', (size_t)(end - p));
		if (dot == NULL)
			return smtp_cmd_label_ok(
			    p, (size_t)(end - p), utf8, lax);
		if (!smtp_cmd_label_ok(p, (size_t)(dot - p), utf8, lax))
			return false;
		p = dot + 1;
	}
}

/* RFC 5321 §4.1.3 dcontent: %d33-90 / %d94-126. */
static bool
smtp_cmd_dcontent(unsigned char ch)
{
	return (ch >= 33 && ch <= 90) || (ch >= 94 && ch <= 126);
}

/* General-address-literal: Standardized-tag ":" 1*dcontent. */
static bool
smtp_cmd_general_literal_ok(const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	size_t i;

	if (colon == NULL || colon == s || colon == s + len - 1 ||
	    !smtp_cmd_label_ok(s, (size_t)(colon - s), false, false))
		return false;
	for (i = (size_t)(colon - s) + 1; i < len; i++)
		if (!smtp_cmd_dcontent((unsigned char)s[i]))
			return false;
	return true;
}

bool
smtp_cmd_literal_ok(const char *s, size_t len)
{
	char tmp[SMTP_CMD_DOMAIN_MAX + 1];
	unsigned char addr[16];

	if (len < 3 || len > SMTP_CMD_DOMAIN_MAX || s[0] != '[' ||
	    s[len - 1] != ']')
		return false;
	memcpy(tmp, s + 1, len - 2);
	tmp[len - 2] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		return inet_pton(AF_INET6, tmp + 5, addr) == 1;
	if (strspn(tmp, "0123456789.") == len - 2)
		return inet_pton(AF_INET, tmp, addr) == 1;
	return smtp_cmd_general_literal_ok(tmp, len - 2);
}

/* ---- paths (RFC 5321 §4.1.2) ---------------------------------------- */

/* Dot-string = Atom *("." Atom); returns its length, 0 if malformed. */
static size_t
smtp_cmd_dot_string(const char *p, const char *end, bool utf8)
{
	const char *s = p;
	size_t n;

	for (;;) {
		if ((n = smtp_cmd_char(p, end, utf8, smtp_cmd_atext)) == 0)
			return 0;
		while (n > 0) {
			p += n;
			n = smtp_cmd_char(p, end, utf8, smtp_cmd_atext);
		}
		if (p >= end || *p != '.')
			return (size_t)(p - s);
		p++;
	}
}

/* qtextSMTP: %d32-33 / %d35-91 / %d93-126. */
static bool
smtp_cmd_qtext(unsigned char ch)
{
	return ch == 32 || ch == 33 || (ch >= 35 && ch <= 91) ||
	    (ch >= 93 && ch <= 126);
}

/* Quoted-string; returns its length including the quotes, 0 if bad. */
static size_t
smtp_cmd_quoted(const char *p, const char *end, bool utf8)
{
	const char *s = p;
	size_t n;

	if (p >= end || *p++ != '"')
		return 0;
	while (p < end && *p != '"') {
		if (*p == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (p + 1 >= end || p[1] < 32 || p[1] > 126)
				return 0;
			p += 2;
		} else if ((n = smtp_cmd_char(p, end, utf8, smtp_cmd_qtext)) >
		    0)
			p += n;
		else
			return 0;
	}
	return p < end ? (size_t)(p + 1 - s) : 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ). */
static bool
smtp_cmd_mailbox_ok(const char *p, const char *end, bool utf8)
{
	size_t n;

	if (p >= end)
		return false;
	n = *p == '"' ? smtp_cmd_quoted(p, end, utf8) :
	                smtp_cmd_dot_string(p, end, utf8);
	if (n == 0 || p + n >= end || p[n] != '@')
		return false;
	p += n + 1;
	if (*p == '[')
		return smtp_cmd_literal_ok(p, (size_t)(end - p));
	return smtp_cmd_domain_ok(p, (size_t)(end - p), utf8, false);
}

/*
 * A-d-l ":" (RFC 5321 §4.1.2 source route, accepted and ignored as
 * Appendix C asks): returns how far to skip, 0 if there is none, -1 if
 * malformed.
 */
static int
smtp_cmd_source_route(const char *p, const char *end, size_t *skip)
{
	const char *s = p, *stop;

	*skip = 0;
	if (p >= end || *p != '@')
		return 0;
	for (;;) {
		p++; /* the '@' */
		stop = p;
		while (stop < end && *stop != ',' && *stop != ':')
			stop++;
		if (stop >= end ||
		    !smtp_cmd_domain_ok(p, (size_t)(stop - p), false, false))
			return -1;
		if (*stop == ':')
			break;
		p = stop + 1;
		if (p >= end || *p != '@')
			return -1;
	}
	*skip = (size_t)(stop + 1 - s);
	return 0;
}

/*
 * Check the text between the angle brackets and store the mailbox in
 * c->path. Returns 0, or -1 with the reply set.
 */
static int
smtp_cmd_path(struct smtp_cmd *c, const char *p, size_t len, bool utf8)
{
	bool mail = c->verb == SMTP_VERB_MAIL;
	const char *end = p + len;
	const char *esc = mail ? "5.1.7" : "5.1.3";
	const char *bad =
	    mail ? "Bad sender address syntax" : "Bad recipient address syntax";
	size_t skip;

	if (len + 2 > SMTP_CMD_PATH_MAX)
		return smtp_cmd_fail(c, 501, esc, "Path too long");
	if (len == 0)
		return mail ? 0 : smtp_cmd_fail(c, 501, esc, bad);
	if (!utf8 && smtp_cmd_has_8bit(p, len))
		return smtp_cmd_fail(c, 553, "5.6.7",
		    "Non-ASCII address needs SMTPUTF8 (RFC 6531)");
	/* RFC 5321 §4.1.1.3: <Postmaster> without a domain. */
	if (!mail && len == 10 && strncasecmp(p, "postmaster", 10) == 0) {
		c->postmaster = true;
	} else {
		if (smtp_cmd_source_route(p, end, &skip) == -1)
			return smtp_cmd_fail(c, 501, esc, bad);
		p += skip;
		if (!smtp_cmd_mailbox_ok(p, end, utf8))
			return smtp_cmd_fail(c, 501, esc, bad);
	}
	memcpy(c->path, p, (size_t)(end - p));
	c->path[end - p] = '\0';
	return 0;
}

/*
 * Find the end of "<...>" starting at p, honouring quoted strings (a
 * quoted local part may hold '>'). Returns the closing '>' or NULL.
 */
static char *
smtp_cmd_path_end(char *p)
{
	bool quoted = false;

	for (p++; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			return p;
	}
	return NULL;
}

/* ---- ESMTP parameters ----------------------------------------------- */

/* An upper-case hex digit's value, or -1 (RFC 3461 §4 hexchar). */
static int
smtp_cmd_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
smtp_xtext_decode(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t i, n = 0;
	unsigned char ch;
	int hi, lo;

	ASSERT(dstlen > 0);
	for (i = 0; i < len; i++) {
		ch = (unsigned char)src[i];
		if (ch == '+') {
			/* hexchar = "+" 2(%x30-39 / %x41-46) */
			if (i + 2 >= len ||
			    (hi = smtp_cmd_hexval(src[i + 1])) < 0 ||
			    (lo = smtp_cmd_hexval(src[i + 2])) < 0 ||
			    hi + lo == 0)
				return -1;
			ch = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (ch < 33 || ch > 126 || ch == '=')
			return -1;
		if (n + 1 >= dstlen)
			return -1;
		dst[n++] = (char)ch;
	}
	dst[n] = '\0';
	return (int)n;
}

char *
smtp_orcpt_decode(const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	size_t tlen, n;
	char *out;

	if (semi == NULL)
		return xstrdup(orcpt);
	tlen = (size_t)(semi - orcpt) + 1;
	n = strlen(semi + 1);
	out = xmalloc(tlen + n + 1);
	memcpy(out, orcpt, tlen);
	/* xtext never grows when decoded: n + 1 octets are enough. */
	if (smtp_xtext_decode(out + tlen, n + 1, semi + 1, n) < 0) {
		free(out);
		return xstrdup(orcpt);
	}
	return out;
}

static int
smtp_cmd_p_size(struct smtp_cmd *c, const char *v)
{
	size_t n = strlen(v), i;
	uint64_t size = 0;

	/* RFC 1870 §3: size-value ::= 1*20DIGIT */
	if (n == 0 || n > 20 || strspn(v, "0123456789") != n)
		return smtp_cmd_fail(c, 501, "5.5.4", "Bad SIZE value");
	for (i = 0; i < n; i++) {
		uint64_t d = (uint64_t)(v[i] - '0');

		size =
		    size > (UINT64_MAX - d) / 10 ? UINT64_MAX : size * 10 + d;
	}
	c->has_size = true;
	c->size = size;
	return 0;
}

static int
smtp_cmd_p_body(struct smtp_cmd *c, const char *v)
{
	if (strcasecmp(v, "7BIT") == 0)
		c->body = SMTP_BODY_7BIT;
	else if (strcasecmp(v, "8BITMIME") == 0)
		c->body = SMTP_BODY_8BITMIME;
	else
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "BODY must be 7BIT or 8BITMIME");
	return 0;
}

static int
smtp_cmd_p_smtputf8(struct smtp_cmd *c, const char *v)
{
	/* RFC 6531 §3.4: the parameter has no value. */
	if (v != NULL)
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "SMTPUTF8 takes no value");
	c->smtputf8 = true;
	return 0;
}

static int
smtp_cmd_p_ret(struct smtp_cmd *c, const char *v)
{
	if (strcasecmp(v, "FULL") == 0)
		c->ret = SMTP_RET_FULL;
	else if (strcasecmp(v, "HDRS") == 0)
		c->ret = SMTP_RET_HDRS;
	else
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "RET must be FULL or HDRS");
	return 0;
}

static int
smtp_cmd_p_envid(struct smtp_cmd *c, const char *v)
{
	size_t n = strlen(v), i;

	/* RFC 3461 §4.4: at most 100 characters, printable when decoded. */
	if (n > SMTP_CMD_ENVID_MAX ||
	    smtp_xtext_decode(c->envid, sizeof(c->envid), v, n) < 0)
		return smtp_cmd_fail(c, 501, "5.5.4", "Bad ENVID value");
	for (i = 0; c->envid[i] != '\0'; i++)
		if (c->envid[i] < 0x20 || c->envid[i] > 0x7e)
			return smtp_cmd_fail(
			    c, 501, "5.5.4", "Bad ENVID value");
	c->has_envid = true;
	return 0;
}

static int
smtp_cmd_p_auth(struct smtp_cmd *c, const char *v)
{
	/* RFC 4954 §5: AUTH=<> or an xtext mailbox; we do not use it. */
	return 0;
}

/* One NOTIFY keyword of n octets: its bit, or 0. */
static unsigned
smtp_cmd_notify_word(const char *w, size_t n)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
		{ "NEVER", SMTP_NOTIFY_NEVER },
		{ "SUCCESS", SMTP_NOTIFY_SUCCESS },
		{ "FAILURE", SMTP_NOTIFY_FAILURE },
		{ "DELAY", SMTP_NOTIFY_DELAY },
	};
	size_t i;

	for (i = 0; i < NELEM(words); i++)
		if (strlen(words[i].name) == n &&
		    strncasecmp(w, words[i].name, n) == 0)
			return words[i].bit;
	return 0;
}

static int
smtp_cmd_p_notify(struct smtp_cmd *c, const char *v)
{
	const char *p = v, *comma;
	unsigned bit, bits = 0;
	size_t n;

	/* RFC 3461 §4.1: "NEVER" or a list of SUCCESS, FAILURE, DELAY. */
	for (;;) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if ((bit = smtp_cmd_notify_word(p, n)) == 0)
			return smtp_cmd_fail(
			    c, 501, "5.5.4", "Bad NOTIFY value");
		bits |= bit;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "NOTIFY=NEVER excludes other values");
	c->notify = bits;
	return 0;
}

static int
smtp_cmd_p_orcpt(struct smtp_cmd *c, const char *v)
{
	const char *semi = strchr(v, ';');
	size_t n = strlen(v), i;

	/* RFC 3461 §4.2: addr-type ";" xtext, 500 characters at most. */
	if (n > SMTP_CMD_ORCPT_MAX || semi == NULL || semi == v)
		return smtp_cmd_fail(c, 501, "5.5.4", "Bad ORCPT value");
	for (i = 0; v + i < semi; i++)
		if (!smtp_cmd_atext((unsigned char)v[i]))
			return smtp_cmd_fail(
			    c, 501, "5.5.4", "Bad ORCPT address type");
	if (smtp_xtext_decode(c->orcpt_addr, sizeof(c->orcpt_addr), semi + 1,
	        strlen(semi + 1)) <= 0)
		return smtp_cmd_fail(c, 501, "5.5.4", "Bad ORCPT value");
	memcpy(c->orcpt, v, n + 1);
	c->has_orcpt = true;
	return 0;
}

/* The parameters we offer, by verb (RFC 5321 §4.1.1.11: others get 555). */
static const struct smtp_cmd_param {
	const char *key;
	enum smtp_verb verb;
	bool value; /* takes "=value" */
	int (*parse)(struct smtp_cmd *c, const char *value);
} smtp_cmd_params[] = {
	{ "SIZE", SMTP_VERB_MAIL, true, smtp_cmd_p_size },
	{ "BODY", SMTP_VERB_MAIL, true, smtp_cmd_p_body },
	{ "SMTPUTF8", SMTP_VERB_MAIL, false, smtp_cmd_p_smtputf8 },
	{ "RET", SMTP_VERB_MAIL, true, smtp_cmd_p_ret },
	{ "ENVID", SMTP_VERB_MAIL, true, smtp_cmd_p_envid },
	{ "AUTH", SMTP_VERB_MAIL, true, smtp_cmd_p_auth },
	{ "NOTIFY", SMTP_VERB_RCPT, true, smtp_cmd_p_notify },
	{ "ORCPT", SMTP_VERB_RCPT, true, smtp_cmd_p_orcpt },
};

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
smtp_cmd_keyword_ok(const char *k)
{
	size_t i;

	if (!smtp_cmd_letdig((unsigned char)k[0]))
		return false;
	for (i = 1; k[i] != '\0'; i++)
		if (!smtp_cmd_ldh((unsigned char)k[i]))
			return false;
	return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126) */
static bool
smtp_cmd_value_ok(const char *v)
{
	size_t i;

	if (v[0] == '\0')
		return false;
	for (i = 0; v[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)v[i];

		if (ch < 33 || ch > 126 || ch == '=')
			return false;
	}
	return true;
}

/* One "KEY[=VALUE]" word (modified in place); seen tracks duplicates. */
static int
smtp_cmd_param(struct smtp_cmd *c, char *word, unsigned *seen)
{
	char *eq = strchr(word, '=');
	const char *value = NULL;
	size_t i;

	if (eq != NULL) {
		*eq = '\0';
		value = eq + 1;
	}
	if (!smtp_cmd_keyword_ok(word) ||
	    (value != NULL && !smtp_cmd_value_ok(value)))
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "Syntax error in parameters");
	for (i = 0; i < NELEM(smtp_cmd_params); i++) {
		const struct smtp_cmd_param *p = &smtp_cmd_params[i];

		if (p->verb != c->verb || strcasecmp(p->key, word) != 0)
			continue;
		if (*seen & (1u << i))
			return smtp_cmd_fail(
			    c, 501, "5.5.4", "Duplicate parameter");
		*seen |= 1u << i;
		if (p->value && value == NULL)
			return smtp_cmd_fail(
			    c, 501, "5.5.4", "Parameter needs a value");
		c->params = true;
		return p->parse(c, value);
	}
	return smtp_cmd_fail(c, 555, "5.5.4", "Unsupported parameter");
}

/* Parameters after the path, separated by spaces (s is modified). */
static int
smtp_cmd_params_parse(struct smtp_cmd *c, char *s)
{
	unsigned seen = 0;
	char *word;

	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return 0;
		word = s;
		while (*s != ' ' && *s != '\0')
			s++;
		if (*s == ' ')
			*s++ = '\0';
		if (smtp_cmd_param(c, word, &seen) == -1)
			return -1;
	}
}

/* ---- verbs ---------------------------------------------------------- */

/* MAIL FROM:<path> [params] / RCPT TO:<path> [params] */
static int
smtp_cmd_mail_rcpt(struct smtp_cmd *c, char *args, bool utf8)
{
	bool mail = c->verb == SMTP_VERB_MAIL;
	const char *kw = mail ? "FROM:" : "TO:";
	char *lt, *gt;

	if (strncasecmp(args, kw, strlen(kw)) != 0)
		return smtp_cmd_fail(c, 501, "5.5.4",
		    mail ? "Syntax: MAIL FROM:<address>" :
		           "Syntax: RCPT TO:<address>");
	/* Lenient: "MAIL FROM: <a@b>" is common. */
	lt = args + strlen(kw);
	while (*lt == ' ')
		lt++;
	if (*lt != '<' || (gt = smtp_cmd_path_end(lt)) == NULL)
		return smtp_cmd_fail(c, 501, mail ? "5.1.7" : "5.1.3",
		    mail ? "Bad sender address syntax" :
		           "Bad recipient address syntax");
	if (gt[1] != '\0' && gt[1] != ' ')
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "Syntax error in parameters");
	if (smtp_cmd_params_parse(c, gt + 1) == -1)
		return -1;
	return smtp_cmd_path(
	    c, lt + 1, (size_t)(gt - lt - 1), mail ? c->smtputf8 : utf8);
}

/* HELO/EHLO: a domain (RFC 5321 §4.1.1.1) or an address literal. */
static int
smtp_cmd_helo(struct smtp_cmd *c, char *args, bool utf8)
{
	size_t n = strlen(args);

	if (n == 0)
		return smtp_cmd_fail(c, 501, "5.5.4",
		    c->verb == SMTP_VERB_EHLO ? "Syntax: EHLO hostname" :
		                                "Syntax: HELO hostname");
	if (args[0] == '[' ? !smtp_cmd_literal_ok(args, n) :
	                     !smtp_cmd_domain_ok(args, n, false, true))
		return smtp_cmd_fail(c, 501, "5.5.4", "Invalid domain name");
	memcpy(c->arg, args, n + 1);
	return 0;
}

/* SASL mechanism names (RFC 4422 §3.1): upper-case letters, digits, -_. */
static bool
smtp_cmd_mech_char(unsigned char ch)
{
	return smtp_cmd_letdig(ch) || ch == '-' || ch == '_';
}

/* AUTH mechanism [initial-response] (RFC 4954 §4). */
static int
smtp_cmd_auth(struct smtp_cmd *c, char *args, bool utf8)
{
	size_t i, n = strcspn(args, " ");
	char *resp = args + n;

	if (n == 0 || n > SMTP_CMD_MECH_MAX)
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "Syntax: AUTH mechanism [response]");
	for (i = 0; i < n; i++) {
		if (!smtp_cmd_mech_char((unsigned char)args[i]))
			return smtp_cmd_fail(c, 501, "5.5.4",
			    "Syntax: AUTH mechanism [response]");
		c->mech[i] = (char)(args[i] >= 'a' && args[i] <= 'z' ?
		        args[i] - 'a' + 'A' :
		        args[i]);
	}
	c->mech[n] = '\0';
	while (*resp == ' ')
		resp++;
	if (*resp == '\0')
		return 0;
	if (strchr(resp, ' ') != NULL)
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "Syntax: AUTH mechanism [response]");
	c->has_initial = true;
	memcpy(c->initial, resp, strlen(resp) + 1);
	return 0;
}

static int
smtp_cmd_none(struct smtp_cmd *c, char *args, bool utf8)
{
	if (*args != '\0')
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "Syntax error: no arguments allowed");
	return 0;
}

/* NOOP, HELP: any text, ignored but kept. */
static int
smtp_cmd_text(struct smtp_cmd *c, char *args, bool utf8)
{
	memcpy(c->arg, args, strlen(args) + 1);
	return 0;
}

/* VRFY, EXPN: a string is required (RFC 5321 §4.1.1.6). */
static int
smtp_cmd_text_required(struct smtp_cmd *c, char *args, bool utf8)
{
	if (*args == '\0')
		return smtp_cmd_fail(
		    c, 501, "5.5.4", "Syntax error: argument required");
	return smtp_cmd_text(c, args, utf8);
}

static const struct smtp_cmd_def {
	const char *name;
	enum smtp_verb verb;
	int (*parse)(struct smtp_cmd *c, char *args, bool utf8);
} smtp_cmd_defs[] = {
	{ "HELO", SMTP_VERB_HELO, smtp_cmd_helo },
	{ "EHLO", SMTP_VERB_EHLO, smtp_cmd_helo },
	{ "MAIL", SMTP_VERB_MAIL, smtp_cmd_mail_rcpt },
	{ "RCPT", SMTP_VERB_RCPT, smtp_cmd_mail_rcpt },
	{ "DATA", SMTP_VERB_DATA, smtp_cmd_none },
	{ "RSET", SMTP_VERB_RSET, smtp_cmd_none },
	{ "NOOP", SMTP_VERB_NOOP, smtp_cmd_text },
	{ "QUIT", SMTP_VERB_QUIT, smtp_cmd_none },
	{ "VRFY", SMTP_VERB_VRFY, smtp_cmd_text_required },
	{ "EXPN", SMTP_VERB_EXPN, smtp_cmd_text_required },
	{ "HELP", SMTP_VERB_HELP, smtp_cmd_text },
	{ "STARTTLS", SMTP_VERB_STARTTLS, smtp_cmd_none },
	{ "AUTH", SMTP_VERB_AUTH, smtp_cmd_auth },
};

const char *
smtp_verb_str(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < NELEM(smtp_cmd_defs); i++)
		if (smtp_cmd_defs[i].verb == v)
			return smtp_cmd_defs[i].name;
	return "?";
}

static void
smtp_cmd_reset(struct smtp_cmd *c)
{
	c->arg[0] = c->path[0] = c->envid[0] = c->orcpt[0] = '\0';
	c->orcpt_addr[0] = c->mech[0] = c->initial[0] = '\0';
	c->postmaster = c->params = c->has_size = c->smtputf8 = false;
	c->has_envid = c->has_orcpt = c->has_initial = false;
	c->size = 0;
	c->body = SMTP_BODY_UNSET;
	c->ret = SMTP_RET_UNSET;
	c->notify = 0;
	c->code = 0;
	c->esc = c->text = NULL;
}

static const struct smtp_cmd_def *
smtp_cmd_lookup(const char *verb, size_t n)
{
	size_t i;

	for (i = 0; i < NELEM(smtp_cmd_defs); i++)
		if (strlen(smtp_cmd_defs[i].name) == n &&
		    strncasecmp(smtp_cmd_defs[i].name, verb, n) == 0)
			return &smtp_cmd_defs[i];
	return NULL;
}

int
smtp_cmd_parse(struct smtp_cmd *c, const char *line, size_t len, bool utf8)
{
	char tmp[SMTP_CMD_LINE_MAX + 1], *args;
	const struct smtp_cmd_def *def;
	size_t i, n;

	smtp_cmd_reset(c);
	if (len > SMTP_CMD_LINE_MAX)
		return smtp_cmd_fail(c, 500, "5.5.2", "Line too long");
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return smtp_cmd_fail(
			    c, 500, "5.5.2", "Control character in command");
	memcpy(tmp, line, len);
	/* Trailing spaces are a common, harmless slip. */
	while (len > 0 && tmp[len - 1] == ' ')
		len--;
	tmp[len] = '\0';
	n = strcspn(tmp, " ");
	if ((def = smtp_cmd_lookup(tmp, n)) == NULL)
		return smtp_cmd_fail(c, 500, "5.5.1", "Command unrecognized");
	c->verb = def->verb;
	args = tmp + n;
	while (*args == ' ')
		args++;
	return def->parse(c, args, utf8);
}
