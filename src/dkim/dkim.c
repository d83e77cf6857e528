/*
 * dkim: signing with DKIM (RFC 6376 §5): find the header fields, hash the
 * relaxed body (§3.7 step 1), write the DKIM-Signature field with b= empty,
 * hash the signed fields bottom-up and that field (step 2), sign with
 * OpenSSL and append b=. The field is folded as it is written, and it is
 * that very text, canonicalized, that is hashed, so what a verifier
 * rebuilds is what was signed whatever the folding.
 */
#include "dkim/dkim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"

#define DKIM_BUF_MAX   (SIZE_MAX / 4) /* the message is already in memory */
#define DKIM_NAME_MAX  253
#define DKIM_LINE_MAX  78 /* RFC 5322 §2.1.1 SHOULD */
#define DKIM_TXT_CHUNK 255
#define DKIM_OUT_CHUNK 4096

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
};

struct dkim_signer {
	char *domain;
	char *selector;
	EVP_PKEY *key;
	enum dkim_alg alg;
};

/* One header field of the message: "Name: value" with its continuations. */
struct dkim_field {
	const uint8_t *p;
	size_t n;        /* up to the end of its last line, without CRLF */
	size_t name_len; /* "Name", without white space before the colon */
	bool used;       /* already hashed for an earlier h= entry */
};

struct dkim_msg {
	struct dkim_field *fields;
	size_t nfields;
	size_t body; /* offset of the body */
};

/* Where canonical output goes: a buffer (tests) or a digest (signing). */
struct dkim_out {
	struct buf *b;
	EVP_MD_CTX *md;
	uint8_t chunk[DKIM_OUT_CHUNK];
	size_t n;
};

/* Fields signed when present, in h= order (RFC 6376 §5.4.1). */
static const char *const dkim_signed_fields[] = {
	"from",
	"reply-to",
	"subject",
	"date",
	"to",
	"cc",
	"in-reply-to",
	"references",
	"message-id",
	"mime-version",
	"content-type",
	"tls-report-domain",
	"tls-report-submitter",
	NULL,
};

static bool
dkim_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* ---- canonicalization (RFC 6376 §3.4) ---------------------------------- */

static void
dkim_out_write(struct dkim_out *o, const void *p, size_t n)
{
	if (o->b != NULL)
		buf_add(o->b, p, n);
	else
		EVP_DigestUpdate(o->md, p, n);
}

static void
dkim_out_flush(struct dkim_out *o)
{
	dkim_out_write(o, o->chunk, o->n);
	o->n = 0;
}

/* Small pieces are gathered so the digest sees few, large updates. */
static void
dkim_out_add(struct dkim_out *o, const void *p, size_t n)
{
	if (o->n + n > sizeof(o->chunk))
		dkim_out_flush(o);
	if (n > sizeof(o->chunk)) {
		dkim_out_write(o, p, n);
		return;
	}
	memcpy(o->chunk + o->n, p, n);
	o->n += n;
}

/* One body line (without its line end), §3.4.4 a: WSP runs become one SP,
 * WSP at the end goes. Returns false when nothing is left of it. */
static bool
dkim_body_line(struct dkim_out *o, const uint8_t *p, size_t n, size_t *empty)
{
	size_t i = 0, run;
	bool space = false, any = false;

	while (i < n) {
		if (dkim_wsp(p[i])) {
			space = true;
			i++;
			continue;
		}
		for (run = i; run < n && !dkim_wsp(p[run]); run++)
			;
		if (!any) {
			/* Empty lines before this one were not the end. */
			for (; *empty > 0; (*empty)--)
				dkim_out_add(o, "\r\n", 2);
			any = true;
		}
		if (space)
			dkim_out_add(o, " ", 1);
		dkim_out_add(o, p + i, run - i);
		space = false;
		i = run;
	}
	if (any)
		dkim_out_add(o, "\r\n", 2);
	return any;
}

/* §3.4.4 b: empty lines at the end are dropped, so they are only counted
 * until a line with content shows they were not at the end. */
static void
dkim_body_canon(struct dkim_out *o, const uint8_t *p, size_t n)
{
	const uint8_t *nl;
	size_t off = 0, end, next, empty = 0;

	while (off < n) {
		nl = memchr(p + off, '\n', n - off);
		end = nl != NULL ? (size_t)(nl - p) : n;
		next = nl != NULL ? end + 1 : n;
		/* A CR ending the last line is a line end too: the client
		 * completes it to CRLF. */
		if (end > off && p[end - 1] == '\r')
			end--;
		if (!dkim_body_line(o, p + off, end - off, &empty))
			empty++;
		off = next;
	}
	dkim_out_flush(o);
}

void
dkim_canon_body(struct buf *b, const uint8_t *body, size_t n)
{
	struct dkim_out *o = xcalloc(1, sizeof(*o));

	o->b = b;
	dkim_body_canon(o, body, n);
	free(o);
}

/* A line end inside a field: LF, or the CR of a CRLF. */
static bool
dkim_eol_at(const uint8_t *p, size_t n, size_t i)
{
	return p[i] == '\n' || (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n');
}

void
dkim_canon_header(struct buf *b, const uint8_t *field, size_t n, bool crlf)
{
	const uint8_t *colon = memchr(field, ':', n);
	size_t name, i;
	bool space = false, any = false;

	ASSERT(colon != NULL);
	for (name = (size_t)(colon - field);
	     name > 0 && dkim_wsp(field[name - 1]); name--)
		;
	for (i = 0; i < name; i++)
		buf_addc(b,
		    (char)(field[i] >= 'A' && field[i] <= 'Z' ?
		            field[i] + ('a' - 'A') :
		            field[i]));
	buf_addc(b, ':');
	/* Unfold, one SP for each WSP run, none at either end (§3.4.2). */
	for (i = (size_t)(colon - field) + 1; i < n; i++) {
		if (dkim_eol_at(field, n, i))
			continue;
		if (dkim_wsp(field[i])) {
			space = true;
			continue;
		}
		if (space && any)
			buf_addc(b, ' ');
		buf_addc(b, (char)field[i]);
		space = false;
		any = true;
	}
	if (crlf)
		buf_adds(b, "\r\n");
}

/* ---- the header section ------------------------------------------------ */

/* Length of the field name at p ("Name:" or "Name :"), 0 if not a field. */
static size_t
dkim_name_len(const uint8_t *p, size_t n)
{
	size_t i = 0, j;

	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	for (j = i; j < n && dkim_wsp(p[j]); j++)
		;
	return i > 0 && j < n && p[j] == ':' ? i : 0;
}

/* Take the header line [off, end) into m. -1: neither field nor
 * continuation of one. */
static int
dkim_header_line(struct dkim_msg *m, const uint8_t *msg, size_t off, size_t end)
{
	struct dkim_field *f;
	size_t nl;

	if (dkim_wsp(msg[off])) {
		if (m->nfields == 0)
			return -1;
		f = &m->fields[m->nfields - 1];
		f->n = end - (size_t)(f->p - msg);
		return 0;
	}
	if ((nl = dkim_name_len(msg + off, end - off)) == 0)
		return -1;
	m->fields = xreallocarray(m->fields, m->nfields + 1, sizeof(*f));
	f = &m->fields[m->nfields++];
	f->p = msg + off;
	f->n = end - off;
	f->name_len = nl;
	f->used = false;
	return 0;
}

/* Split the header section of msg into fields. 0, or -1 when a line is
 * not a header line (the verifier would not read it either). */
static int
dkim_msg_parse(struct dkim_msg *m, const uint8_t *msg, size_t len)
{
	const uint8_t *nl;
	size_t off = 0, end, next;

	memset(m, 0, sizeof(*m));
	m->body = len;
	while (off < len) {
		nl = memchr(msg + off, '\n', len - off);
		end = nl != NULL ? (size_t)(nl - msg) : len;
		next = nl != NULL ? end + 1 : len;
		if (end > off && msg[end - 1] == '\r')
			end--;
		if (end == off) {
			m->body = next;
			return 0;
		}
		if (dkim_header_line(m, msg, off, end) == -1)
			return -1;
		off = next;
	}
	return 0;
}

static bool
dkim_field_is(const struct dkim_field *f, const char *name)
{
	return f->name_len == strlen(name) &&
	    strncasecmp((const char *)f->p, name, f->name_len) == 0;
}

static size_t
dkim_count(const struct dkim_msg *m, const char *name)
{
	size_t i, c = 0;

	for (i = 0; i < m->nfields; i++)
		c += dkim_field_is(&m->fields[i], name) ? 1 : 0;
	return c;
}

/* The next instance of name for h=, from the bottom up (§5.4.2); NULL
 * when all are taken, and then nothing is hashed (an oversigned name). */
static struct dkim_field *
dkim_take(struct dkim_msg *m, const char *name)
{
	size_t i;

	for (i = m->nfields; i > 0; i--) {
		struct dkim_field *f = &m->fields[i - 1];

		if (!f->used && dkim_field_is(f, name)) {
			f->used = true;
			return f;
		}
	}
	return NULL;
}

/* ---- writing the field ------------------------------------------------- */

/* A field being written, folded before an atom that would pass the line
 * limit. glue goes between atoms on one line: " " between tags, "" in a
 * list or a base64 value, where FWS is allowed but no space is needed. */
struct dkim_fold {
	struct buf *b;
	size_t col;
};

static void
dkim_fold_add(struct dkim_fold *f, const char *glue, const char *atom)
{
	size_t n = strlen(atom);

	if (f->col + strlen(glue) + n > DKIM_LINE_MAX && f->col > 1) {
		buf_adds(f->b, "\r\n\t");
		f->col = 1;
	} else {
		buf_adds(f->b, glue);
		f->col += strlen(glue);
	}
	buf_adds(f->b, atom);
	f->col += n;
}

/* A base64 value, cut where the line is full. */
static void
dkim_fold_b64(struct dkim_fold *f, const char *v)
{
	size_t n = strlen(v), room, take;
	char piece[DKIM_LINE_MAX + 1];

	while (n > 0) {
		if (f->col + 8 > DKIM_LINE_MAX) {
			buf_adds(f->b, "\r\n\t");
			f->col = 1;
		}
		room = DKIM_LINE_MAX - f->col;
		take = n < room ? n : room;
		memcpy(piece, v, take);
		piece[take] = '\0';
		dkim_fold_add(f, "", piece);
		v += take;
		n -= take;
	}
}

static char *
dkim_b64(const uint8_t *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* The h= list: every present instance of the signed fields, and From once
 * more than it occurs. */
static void
dkim_h_list(struct dkim_fold *f, const struct dkim_msg *m, char ***names)
{
	size_t i, k, c, nn = 0;
	char atom[64];

	*names = NULL;
	for (i = 0; dkim_signed_fields[i] != NULL; i++) {
		c = dkim_count(m, dkim_signed_fields[i]);
		c += strcmp(dkim_signed_fields[i], "from") == 0 ? 1 : 0;
		for (k = 0; k < c; k++) {
			*names = xreallocarray(*names, nn + 2, sizeof(char *));
			(*names)[nn++] = xstrdup(dkim_signed_fields[i]);
			(*names)[nn] = NULL;
		}
	}
	for (i = 0; i < nn; i++) {
		snprintf(atom, sizeof(atom), "%s%s%s", i == 0 ? "h=" : "",
		    (*names)[i], i + 1 < nn ? ":" : ";");
		dkim_fold_add(f, i == 0 ? " " : "", atom);
	}
}

/* ---- signing ----------------------------------------------------------- */

static char *
dkim_body_hash(const uint8_t *body, size_t n)
{
	struct dkim_out *o = xcalloc(1, sizeof(*o));
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char *r;

	o->md = EVP_MD_CTX_new();
	if (o->md == NULL || EVP_DigestInit_ex(o->md, EVP_sha256(), NULL) != 1)
		panic("dkim: SHA-256 unavailable");
	dkim_body_canon(o, body, n);
	EVP_DigestFinal_ex(o->md, md, &mdlen);
	EVP_MD_CTX_free(o->md);
	free(o);
	r = dkim_b64(md, mdlen);
	return r;
}

/* The signature over data in base64, or NULL. Ed25519 signs the SHA-256
 * of the data, not the data (RFC 8463 §3). */
static char *
dkim_sig(const struct dkim_signer *s, const struct buf *data)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = s->alg == DKIM_ALG_RSA_SHA256 ? EVP_sha256() : NULL;
	uint8_t hash[32], *sig = NULL;
	const uint8_t *in = (const uint8_t *)data->data;
	size_t inlen = data->len, siglen = 0;
	char *r = NULL;

	if (s->alg == DKIM_ALG_ED25519_SHA256) {
		if (EVP_Digest(in, inlen, hash, NULL, EVP_sha256(), NULL) != 1)
			goto done;
		in = hash;
		inlen = sizeof(hash);
	}
	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, md, NULL, s->key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, in, inlen) != 1)
		goto done;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(ctx, sig, &siglen, in, inlen) == 1)
		r = dkim_b64(sig, siglen);
done:
	ERR_clear_error();
	free(sig);
	EVP_MD_CTX_free(ctx);
	return r;
}

/* Everything up to and including "b=". */
static char **
dkim_head(const struct dkim_signer *s, const struct dkim_msg *m, const char *bh,
    time_t now, struct dkim_fold *f)
{
	char atom[DKIM_NAME_MAX + 16];
	char **names;

	dkim_fold_add(f, "", "DKIM-Signature: v=1;");
	snprintf(atom, sizeof(atom), "a=%s;", dkim_signer_algorithm(s));
	dkim_fold_add(f, " ", atom);
	dkim_fold_add(f, " ", "c=relaxed/relaxed;");
	snprintf(atom, sizeof(atom), "d=%s;", s->domain);
	dkim_fold_add(f, " ", atom);
	snprintf(atom, sizeof(atom), "s=%s;", s->selector);
	dkim_fold_add(f, " ", atom);
	snprintf(atom, sizeof(atom), "t=%lld;", (long long)now);
	dkim_fold_add(f, " ", atom);
	dkim_h_list(f, m, &names);
	snprintf(atom, sizeof(atom), "bh=%s;", bh);
	dkim_fold_add(f, " ", atom);
	dkim_fold_add(f, " ", "b=");
	return names;
}

/* §3.7 step 2: the signed fields, then this field without its b= value. */
static void
dkim_header_data(
    struct buf *data, struct dkim_msg *m, char **names, const struct buf *head)
{
	struct dkim_field *fld;
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if ((fld = dkim_take(m, names[i])) != NULL)
			dkim_canon_header(data, fld->p, fld->n, true);
	dkim_canon_header(data, (const uint8_t *)head->data, head->len, false);
}

char *
dkim_sign(
    const struct dkim_signer *s, const uint8_t *msg, size_t len, time_t now)
{
	struct dkim_msg m;
	struct dkim_fold f;
	struct buf head, data;
	char **names = NULL, *bh, *sig = NULL;

	if (dkim_msg_parse(&m, msg, len) == -1 || dkim_count(&m, "from") != 1) {
		free(m.fields);
		return NULL;
	}
	bh = dkim_body_hash(msg + m.body, len - m.body);
	buf_init(&head, DKIM_BUF_MAX);
	buf_init(&data, DKIM_BUF_MAX);
	f.b = &head;
	f.col = 0;
	names = dkim_head(s, &m, bh, now, &f);
	dkim_header_data(&data, &m, names, &head);
	if ((sig = dkim_sig(s, &data)) != NULL) {
		dkim_fold_b64(&f, sig);
		buf_adds(&head, "\r\n");
	}
	str_vec_free(names);
	free(bh);
	free(m.fields);
	buf_free(&data);
	if (sig == NULL) {
		buf_free(&head);
		return NULL;
	}
	free(sig);
	return buf_steal(&head);
}

/* The domain of the one address in a From field, lower case, into out. */
static bool
dkim_from_domain(const struct dkim_field *f, char *out, size_t outlen)
{
	const uint8_t *at = NULL, *p = f->p + f->name_len, *end = f->p + f->n;
	size_t k = 0;

	for (; p < end; p++)
		if (*p == '@') {
			if (at != NULL)
				return false; /* several addresses: not ours */
			at = p;
		}
	if (at == NULL)
		return false;
	for (p = at + 1; p < end && k + 1 < outlen; p++) {
		if (*p == '>' || *p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n' || *p == ')' || *p == '(' || *p == ';')
			break;
		out[k++] = (char)tolower(*p);
	}
	out[k] = '\0';
	return k > 0 && k + 1 < outlen;
}

bool
dkim_signs_for(const struct dkim_signer *s, const uint8_t *msg, size_t len)
{
	struct dkim_msg m;
	char dom[DKIM_NAME_MAX + 2];
	size_t i, dl, sl = strlen(s->domain);
	bool ok = false;

	if (dkim_msg_parse(&m, msg, len) == 0 && dkim_count(&m, "from") == 1)
		for (i = 0; i < m.nfields; i++)
			if (dkim_field_is(&m.fields[i], "from") &&
			    dkim_from_domain(&m.fields[i], dom, sizeof(dom))) {
				dl = strlen(dom);
				ok = strcasecmp(dom, s->domain) == 0 ||
				    (dl > sl + 1 && dom[dl - sl - 1] == '.' &&
				        strcasecmp(dom + dl - sl, s->domain) ==
				            0);
			}
	free(m.fields);
	return ok;
}

/* ---- the signer -------------------------------------------------------- */

/* A host name: labels of letters, digits, '-' and '_', dots between. */
static bool
dkim_name_ok(const char *name)
{
	size_t i, label = 0, n = strlen(name);

	if (n == 0 || n > DKIM_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* No prompt on the terminal for an encrypted key: it just fails. */
static int
dkim_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

static EVP_PKEY *
dkim_key_load(const char *path, char **errstr)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *k;
	unsigned long e;

	if (fp == NULL) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	k = PEM_read_PrivateKey(fp, NULL, dkim_no_passphrase, NULL);
	fclose(fp);
	if (k == NULL) {
		e = ERR_peek_last_error();
		*errstr = xasprintf(
		    "%s: not a PEM private key (or an encrypted "
		    "one): %s",
		    path, e != 0 ? ERR_reason_error_string(e) : "no key found");
	}
	ERR_clear_error();
	return k;
}

static int
dkim_key_check(struct dkim_signer *s, const char *path, char **errstr)
{
	int bits;

	switch (EVP_PKEY_get_base_id(s->key)) {
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(s->key);
		if (bits < DKIM_RSA_MIN_BITS) {
			*errstr =
			    xasprintf("%s: RSA key of %d bits; DKIM needs "
			              "at least %d (RFC 8301)",
			        path, bits, DKIM_RSA_MIN_BITS);
			return -1;
		}
		s->alg = DKIM_ALG_RSA_SHA256;
		return 0;
	case EVP_PKEY_ED25519:
		s->alg = DKIM_ALG_ED25519_SHA256;
		return 0;
	default:
		*errstr = xasprintf("%s: a %s key; DKIM signs with RSA "
		                    "(rsa-sha256) or Ed25519 (ed25519-sha256)",
		    path, EVP_PKEY_get0_type_name(s->key));
		return -1;
	}
}

struct dkim_signer *
dkim_signer_new(const char *domain, const char *selector, const char *key_file,
    char **errstr)
{
	struct dkim_signer *s;
	size_t n = strlen(domain);

	*errstr = NULL;
	if (n > 1 && domain[n - 1] == '.')
		n--;
	s = xcalloc(1, sizeof(*s));
	s->domain = xstrndup(domain, n);
	s->selector = xstrdup(selector);
	if (!dkim_name_ok(s->domain))
		*errstr =
		    xasprintf("DKIM domain '%s': not a host name", domain);
	else if (!dkim_name_ok(s->selector))
		*errstr = xasprintf("DKIM selector '%s': not a host name "
		                    "(letters, digits, '-', '_', dots)",
		    selector);
	else if ((s->key = dkim_key_load(key_file, errstr)) != NULL)
		dkim_key_check(s, key_file, errstr);
	if (*errstr != NULL) {
		dkim_signer_free(s);
		return NULL;
	}
	return s;
}

void
dkim_signer_free(struct dkim_signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s->domain);
	free(s->selector);
	free(s);
}

const char *
dkim_signer_algorithm(const struct dkim_signer *s)
{
	return s->alg == DKIM_ALG_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256";
}

/* The p= value: base64 of the SubjectPublicKeyInfo (RSA) or raw key. */
static char *
dkim_pubkey(const struct dkim_signer *s)
{
	uint8_t raw[32], *der = NULL;
	size_t rawlen = sizeof(raw);
	int n;
	char *r;

	if (s->alg == DKIM_ALG_ED25519_SHA256) {
		if (EVP_PKEY_get_raw_public_key(s->key, raw, &rawlen) != 1)
			panic("dkim: no raw Ed25519 public key");
		return dkim_b64(raw, rawlen);
	}
	if ((n = i2d_PUBKEY(s->key, &der)) <= 0)
		panic("dkim: cannot encode the RSA public key");
	r = dkim_b64(der, (size_t)n);
	OPENSSL_free(der);
	return r;
}

static bool
dkim_service_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		        *s == ':' || *s == '*'))
			return false;
	return true;
}

char *
dkim_signer_dns_record(const struct dkim_signer *s, const char *service)
{
	struct buf b;
	char *pub = dkim_pubkey(s), *txt;
	size_t off, n, len;

	ASSERT(service == NULL || dkim_service_ok(service));
	txt = xasprintf("v=DKIM1; k=%s; %s%s%sp=%s",
	    s->alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519",
	    service != NULL ? "s=" : "", service != NULL ? service : "",
	    service != NULL ? "; " : "", pub);
	buf_init(&b, DKIM_BUF_MAX);
	buf_printf(&b, "%s._domainkey.%s. IN TXT", s->selector, s->domain);
	len = strlen(txt);
	for (off = 0; off < len; off += n) {
		n = len - off < DKIM_TXT_CHUNK ? len - off : DKIM_TXT_CHUNK;
		buf_printf(&b, " \"%.*s\"", (int)n, txt + off);
	}
	free(pub);
	free(txt);
	return buf_steal(&b);
}
