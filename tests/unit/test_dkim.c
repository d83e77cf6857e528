/*
 * test_dkim: the DKIM signer (src/dkim/dkim.c).
 *
 * Canonicalization is pinned by table-driven cases, starting with the
 * examples of RFC 6376 §3.4.5. Signing runs with an RSA and an Ed25519 key
 * generated at start; every signature is checked here with OpenSSL over
 * the data a verifier rebuilds from the DKIM-Signature field, so a
 * tampered message must fail. The independent verifier is python-dkim:
 * with "--emit DIR" this program writes signed messages and their DNS
 * records to DIR for tests/integration/test_dkim_verify.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "dkim/dkim.h"

#include "t.h"

#define NOW ((time_t)1795856400) /* Sat, 28 Nov 2026 09:00:00 UTC */

static struct {
	char dir[64];
	char rsa[96], ed[96], ec[96], rsa512[96];
	EVP_PKEY *rsa_key, *ed_key;
} g;

/* ---- keys made at start ---------------------------------------------------
 */

static void
t_write_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	ASSERT(f != NULL);
	ASSERT(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1);
	fclose(f);
}

static void
t_keys(void)
{
	EVP_PKEY *ec, *small;

	snprintf(g.dir, sizeof(g.dir), "/tmp/test_dkim.XXXXXX");
	ASSERT(mkdtemp(g.dir) != NULL);
	g.rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	g.ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	ASSERT(g.rsa_key && g.ed_key && ec && small);
	snprintf(g.rsa, sizeof(g.rsa), "%s/rsa.pem", g.dir);
	snprintf(g.ed, sizeof(g.ed), "%s/ed25519.pem", g.dir);
	snprintf(g.ec, sizeof(g.ec), "%s/ec.pem", g.dir);
	snprintf(g.rsa512, sizeof(g.rsa512), "%s/rsa512.pem", g.dir);
	t_write_key(g.rsa, g.rsa_key);
	t_write_key(g.ed, g.ed_key);
	t_write_key(g.ec, ec);
	t_write_key(g.rsa512, small);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(small);
}

static void
t_keys_free(void)
{
	unlink(g.rsa);
	unlink(g.ed);
	unlink(g.ec);
	unlink(g.rsa512);
	rmdir(g.dir);
	EVP_PKEY_free(g.rsa_key);
	EVP_PKEY_free(g.ed_key);
}

/* ---- canonicalization ------------------------------------------------------
 */

struct canon_case {
	const char *name;
	const char *in;
	const char *want;
};

static const struct canon_case header_cases[] = {
	/* RFC 6376 §3.4.5 example 1, the two fields. */
	{ "rfc_a", "A: X\r\n", "a:X\r\n" },
	{ "rfc_b", "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n" },
	/* §3.4.2: only the name is lowercased. */
	{ "name_case", "SUBJect: AbC", "subject:AbC\r\n" },
	{ "wsp_runs", "Subject:   many \t  spaces\there  ",
	    "subject:many spaces here\r\n" },
	{ "lf_fold", "To: a@example.org,\n  b@example.org\n",
	    "to:a@example.org, b@example.org\r\n" },
	{ "fold_only", "To:\r\n b@example.org", "to:b@example.org\r\n" },
	{ "empty_value", "X-Empty:   \r\n", "x-empty:\r\n" },
	{ "tab_colon", "Name\t :\tv", "name:v\r\n" },
	{ "bare_cr_kept", "X: a\rb", "x:a\rb\r\n" },
	{ "colon_in_value", "Date: Sat, 28 Nov 2026 09:00:00 +0000",
	    "date:Sat, 28 Nov 2026 09:00:00 +0000\r\n" },
	{ "utf8_value", "Subject: \xc3\xa9t\xc3\xa9  ok",
	    "subject:\xc3\xa9t\xc3\xa9 ok\r\n" },
};

static const struct canon_case body_cases[] = {
	/* RFC 6376 §3.4.5 example 1, the body. */
	{ "rfc_body", " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" },
	/* §3.4.4: an empty body is the null input. */
	{ "empty", "", "" },
	{ "only_empty_lines", "\r\n\r\n\r\n", "" },
	{ "only_blank_lines", " \r\n\t\r\n", "" },
	{ "no_final_crlf", "abc", "abc\r\n" },
	{ "no_final_crlf_wsp", "abc \t ", "abc\r\n" },
	{ "lf_lines", "a\nb\n\n", "a\r\nb\r\n" },
	{ "inner_empty_kept", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
	{ "inner_blank_emptied", "a\r\n  \r\nb\r\n", "a\r\n\r\nb\r\n" },
	{ "trailing_blank", "a\r\n \t\r\n\r\n", "a\r\n" },
	{ "leading_wsp", "\t\tx  y\r\n", " x y\r\n" },
	{ "bare_cr", "a\rb \r\n", "a\rb\r\n" },
	{ "crlf_in_mid", "x\r\ny", "x\r\ny\r\n" },
	{ "final_cr", "abc\r", "abc\r\n" },
};

static void
canon_header_cases(void)
{
	struct buf b;
	size_t i;

	buf_init(&b, 4096);
	for (i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		const struct canon_case *c = &header_cases[i];

		buf_reset(&b);
		dkim_canon_header(
		    &b, (const uint8_t *)c->in, strlen(c->in), true);
		if (strcmp(buf_cstr(&b), c->want) != 0)
			printf("  header case %s: got \"%s\"\n", c->name,
			    buf_cstr(&b));
		T_STREQ(buf_cstr(&b), c->want);
	}
	buf_reset(&b);
	dkim_canon_header(&b, (const uint8_t *)"A: X", 4, false);
	T_STREQ(buf_cstr(&b), "a:X");
	buf_free(&b);
}

static void
canon_body_cases(void)
{
	struct buf b;
	size_t i;

	buf_init(&b, 4096);
	for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const struct canon_case *c = &body_cases[i];

		buf_reset(&b);
		dkim_canon_body(&b, (const uint8_t *)c->in, strlen(c->in));
		if (strcmp(buf_cstr(&b), c->want) != 0)
			printf("  body case %s: got \"%s\"\n", c->name,
			    buf_cstr(&b));
		T_STREQ(buf_cstr(&b), c->want);
	}
	buf_free(&b);
}

/* Long runs go past the output chunk: the canonical form is unchanged. */
static void
canon_body_large(void)
{
	size_t n = 300000, i;
	char *in = xmalloc(n + 1), *want = xmalloc(n + 1);
	struct buf b;

	for (i = 0; i < n; i++)
		in[i] = (char)('a' + i % 26);
	memcpy(in + n - 4, "  \r\n", 4);
	memcpy(want, in, n - 4);
	memcpy(want + n - 4, "\r\n", 3);
	buf_init(&b, 2 * n);
	dkim_canon_body(&b, (const uint8_t *)in, n);
	T_CHECK(b.len == n - 2);
	T_CHECK(strcmp(buf_cstr(&b), want) == 0);
	buf_free(&b);
	free(in);
	free(want);
}

/* ---- a small verifier, to check what was signed ----------------------------
 */

/* The value of tag t in the DKIM-Signature field sig, white space removed.
 * Returns new, or NULL. */
static char *
t_tag(const char *sig, const char *t)
{
	const char *p = strchr(sig, ':') + 1, *e;
	size_t tl = strlen(t);
	struct buf v;

	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t\r\n;");
		if (strncmp(p, t, tl) == 0 && p[tl] == '=') {
			buf_init(&v, 8192);
			for (e = p + tl + 1; *e != '\0' && *e != ';'; e++)
				if (*e != ' ' && *e != '\t' && *e != '\r' &&
				    *e != '\n')
					buf_addc(&v, *e);
			return buf_steal(&v);
		}
		p = strchr(p, ';');
	}
	return NULL;
}

/* The last field called name not yet used (bit in *used), with its
 * continuation lines; false when there is none. */
static bool
t_field(const char *msg, const char *name, unsigned *used, const char **fp,
    size_t *fn)
{
	const char *lines[64], *p = msg, *end;
	size_t n = 0, i, nl = strlen(name);

	while (*p != '\0' && *p != '\r' && *p != '\n' && n < 64) {
		if (*p != ' ' && *p != '\t')
			lines[n++] = p;
		p = strchr(p, '\n') + 1;
	}
	for (i = n; i > 0; i--) {
		if (strncasecmp(lines[i - 1], name, nl) != 0 ||
		    lines[i - 1][nl] != ':' || (*used & (1u << (i - 1))))
			continue;
		*used |= 1u << (i - 1);
		*fp = lines[i - 1];
		for (end = strchr(*fp, '\n') + 1; *end == ' ' || *end == '\t';)
			end = strchr(end, '\n') + 1;
		*fn = (size_t)(end - *fp);
		return true;
	}
	return false;
}

/* The DKIM-Signature field with the b= value taken out (RFC 6376 §3.7). */
static char *
t_sig_without_b(const char *sig)
{
	const char *b = strstr(sig, " b=");
	char *r;

	if (b == NULL)
		b = strstr(sig, "\tb=");
	ASSERT(b != NULL);
	r = xstrndup(sig, (size_t)(b - sig) + 3);
	return r;
}

/* Verify the signature sig of msg with key, the way a verifier would. */
static bool
t_verify(const char *sig, const char *msg, EVP_PKEY *key)
{
	char *h = t_tag(sig, "h"), *b = t_tag(sig, "b"), *a = t_tag(sig, "a");
	char *head = t_sig_without_b(sig), **names;
	size_t nn, i, fn, slen;
	unsigned used = 0;
	const char *fp;
	uint8_t sigbin[1024], hash[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct buf data;
	bool ok, ed = strcmp(a, "ed25519-sha256") == 0;

	buf_init(&data, 1 << 20);
	for (i = 0; h[i] != '\0'; i++)
		if (h[i] == ':')
			h[i] = ' ';
	names = str_split_list(h, &nn);
	for (i = 0; i < nn; i++)
		if (t_field(msg, names[i], &used, &fp, &fn))
			dkim_canon_header(&data, (const uint8_t *)fp, fn, true);
	dkim_canon_header(&data, (const uint8_t *)head, strlen(head), false);
	slen =
	    (size_t)EVP_DecodeBlock(sigbin, (const uint8_t *)b, (int)strlen(b));
	slen -= b[strlen(b) - 1] == '=' ? (b[strlen(b) - 2] == '=' ? 2 : 1) : 0;
	if (ed)
		EVP_Digest(data.data, data.len, hash, NULL, EVP_sha256(), NULL);
	ok = EVP_DigestVerifyInit(
	         ctx, NULL, ed ? NULL : EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(ctx, sigbin, slen,
	        ed ? hash : (const uint8_t *)data.data,
	        ed ? sizeof(hash) : data.len) == 1;
	ERR_clear_error();
	EVP_MD_CTX_free(ctx);
	str_vec_free(names);
	buf_free(&data);
	free(h);
	free(b);
	free(a);
	free(head);
	return ok;
}

/* ---- signing ------------------------------------------------------------- */

static const char report_msg[] =
    "From: TLS reporting <tlsrpt@mail.example.org>\r\n"
    "Date: Sat, 28 Nov 2026 09:00:00 +0000\r\n"
    "To: tlsrpt@example.net\r\n"
    "Subject: Report Domain: example.net\r\n"
    "    Submitter: mail.example.org\r\n"
    "    Report-ID: <2026-11-27T00:00:00Z!example.net@mail.example.org>\r\n"
    "TLS-Report-Domain: example.net\r\n"
    "TLS-Report-Submitter: mail.example.org\r\n"
    "Message-ID: <tlsrpt-42@mail.example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n"
    "\tboundary=\"b1\"\r\n"
    "X-Unsigned: not in h=\r\n"
    "\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "This is an aggregate TLS report from mail.example.org  \r\n"
    "--b1--\r\n"
    "\r\n";

static struct dkim_signer *
t_signer(const char *key)
{
	char *err = NULL;
	struct dkim_signer *s =
	    dkim_signer_new("example.org", "sel2026", key, &err);

	if (s == NULL)
		printf("  signer: %s\n", err);
	free(err);
	return s;
}

static char *
t_sign(const struct dkim_signer *s, const char *msg)
{
	return dkim_sign(s, (const uint8_t *)msg, strlen(msg), NOW);
}

/* Lines of at most 78 octets, continuations start with a tab, one CRLF
 * at the end and only CRLF line ends. */
static bool
t_folded_ok(const char *sig)
{
	const char *p = sig, *nl;

	if (strncmp(sig, "DKIM-Signature: ", 16) != 0)
		return false;
	while (*p != '\0') {
		nl = strstr(p, "\r\n");
		if (nl == NULL || nl - p > 78 ||
		    memchr(p, '\n', (size_t)(nl - p)))
			return false;
		p = nl + 2;
		if (*p != '\0' && *p != '\t')
			return false;
	}
	return true;
}

static void
t_sign_checks(EVP_PKEY *key, const char *keyfile, const char *alg)
{
	struct dkim_signer *s = t_signer(keyfile);
	char *sig, *v, *tampered;

	T_CHECK(s != NULL);
	if (s == NULL)
		return;
	T_STREQ(dkim_signer_algorithm(s), alg);
	sig = t_sign(s, report_msg);
	T_CHECK(sig != NULL && t_folded_ok(sig));
	T_STREQ((v = t_tag(sig, "v")), "1");
	free(v);
	T_STREQ((v = t_tag(sig, "a")), alg);
	free(v);
	T_STREQ((v = t_tag(sig, "c")), "relaxed/relaxed");
	free(v);
	T_STREQ((v = t_tag(sig, "d")), "example.org");
	free(v);
	T_STREQ((v = t_tag(sig, "s")), "sel2026");
	free(v);
	T_STREQ((v = t_tag(sig, "t")), "1795856400");
	free(v);
	T_STREQ((v = t_tag(sig, "h")),
	    "from:from:subject:date:to:message-id:mime-version:content-type:"
	    "tls-report-domain:tls-report-submitter");
	free(v);
	T_CHECK(t_tag(sig, "l") == NULL); /* RFC 8460 §3 */
	T_CHECK(t_verify(sig, report_msg, key));
	/* The check is not vacuous: a changed signed field fails. */
	tampered = xstrdup(report_msg);
	tampered[strlen("From: TLS r")] = 'R';
	T_CHECK(!t_verify(sig, tampered, key));
	free(tampered);
	free(sig);
	dkim_signer_free(s);
}

static void
sign_rsa(void)
{
	t_sign_checks(g.rsa_key, g.rsa, "rsa-sha256");
}

static void
sign_ed25519(void)
{
	t_sign_checks(g.ed_key, g.ed, "ed25519-sha256");
}

/* bh= of the empty body is the one RFC 6376 §3.4.4 gives. */
static void
body_hash_empty(void)
{
	static const char *const msgs[] = {
		"From: a@example.org\r\n\r\n",
		"From: a@example.org\r\n\r\n\r\n \r\n",
		"From: a@example.org\r\n",
		"From: a@example.org",
	};
	struct dkim_signer *s = t_signer(g.ed);
	char *sig, *bh;
	size_t i;

	for (i = 0; s != NULL && i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		sig = t_sign(s, msgs[i]);
		T_CHECK(sig != NULL);
		T_STREQ((bh = t_tag(sig, "bh")),
		    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
		free(bh);
		free(sig);
	}
	dkim_signer_free(s);
}

/* bh= of a known body: SHA-256 of "Hello\r\n", the canonical form. */
static void
body_hash_known(void)
{
	struct dkim_signer *s = t_signer(g.ed);
	uint8_t md[32];
	char want[64], *sig, *bh;

	EVP_Digest("Hello\r\n", 7, md, NULL, EVP_sha256(), NULL);
	EVP_EncodeBlock((uint8_t *)want, md, 32);
	sig = t_sign(s, "From: a@example.org\r\n\r\nHello \t\r\n\r\n");
	T_STREQ((bh = t_tag(sig, "bh")), want);
	free(bh);
	free(sig);
	dkim_signer_free(s);
}

/* A bare LF is sent as CRLF, so it is signed as CRLF: the same
 * signature (RSA PKCS#1 v1.5 and Ed25519 are deterministic). */
static void
bare_lf_as_crlf(void)
{
	static const char crlf[] = "From: a@example.org\r\nSubject: x\r\n"
	                           " y\r\n\r\nline 1\r\nline 2\r\n";
	static const char lf[] = "From: a@example.org\nSubject: x\n"
	                         " y\n\nline 1\nline 2";
	static const char cr_end[] = "From: a@example.org\r\nSubject: x\r\n"
	                             " y\r\n\r\nline 1\r\nline 2\r";
	struct dkim_signer *s = t_signer(g.rsa);
	char *a = t_sign(s, crlf), *b = t_sign(s, lf), *c = t_sign(s, cr_end);

	T_STREQ(a, b);
	T_STREQ(a, c); /* a final CR is completed to CRLF */
	free(a);
	free(b);
	free(c);
	dkim_signer_free(s);
}

/* Every instance of a signed field is listed; From once more. */
static void
repeated_fields(void)
{
	static const char msg[] = "From: a@example.org\r\n"
	                          "To: b@example.net\r\n"
	                          "Cc: c@example.net\r\n"
	                          "To: d@example.net\r\n"
	                          "\r\nbody\r\n";
	struct dkim_signer *s = t_signer(g.ed);
	char *sig = t_sign(s, msg), *h;

	T_STREQ((h = t_tag(sig, "h")), "from:from:to:to:cc");
	T_CHECK(t_verify(sig, msg, g.ed_key));
	free(h);
	free(sig);
	dkim_signer_free(s);
}

/* A From field added after signing must break the signature (§8.15). */
static void
from_oversigned(void)
{
	static const char msg[] = "From: a@example.org\r\n\r\nbody\r\n";
	static const char added[] = "From: a@example.org\r\n"
	                            "From: evil@example.com\r\n\r\nbody\r\n";
	struct dkim_signer *s = t_signer(g.ed);
	char *sig = t_sign(s, msg);

	T_CHECK(t_verify(sig, msg, g.ed_key));
	T_CHECK(!t_verify(sig, added, g.ed_key));
	free(sig);
	dkim_signer_free(s);
}

static void
unsignable(void)
{
	static const char *const msgs[] = {
		"Subject: no from\r\n\r\nbody\r\n",
		"From: a@example.org\r\nFrom: b@example.org\r\n\r\nx\r\n",
		"From: a@example.org\r\nnot a header line\r\n\r\nx\r\n",
		" continuation first\r\nFrom: a@example.org\r\n\r\nx\r\n",
		"",
	};
	struct dkim_signer *s = t_signer(g.rsa);
	size_t i;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		T_CHECK(t_sign(s, msgs[i]) == NULL);
	dkim_signer_free(s);
}

/* A long body and a long folded header still sign and verify. */
static void
large_message(void)
{
	struct dkim_signer *s = t_signer(g.rsa);
	struct buf m;
	char *sig;
	size_t i;

	buf_init(&m, 4 << 20);
	buf_adds(&m, "From: a@example.org\r\nSubject: long");
	for (i = 0; i < 200; i++)
		buf_adds(&m, "\r\n word");
	buf_adds(&m, "\r\n\r\n");
	for (i = 0; i < 50000; i++)
		buf_printf(&m, "line %zu   with  spaces \r\n", i);
	sig = t_sign(s, buf_cstr(&m));
	T_CHECK(sig != NULL && t_verify(sig, buf_cstr(&m), g.rsa_key));
	free(sig);
	buf_free(&m);
	dkim_signer_free(s);
}

/* ---- the signer's errors and the DNS record ---------------------------- */

static void
t_signer_fails(
    const char *d, const char *sel, const char *key, const char *want)
{
	char *err = NULL;
	struct dkim_signer *s = dkim_signer_new(d, sel, key, &err);

	T_CHECK(s == NULL && err != NULL);
	if (err != NULL && strstr(err, want) == NULL) {
		printf("  error \"%s\" lacks \"%s\"\n", err, want);
		T_CHECK(0);
	}
	dkim_signer_free(s);
	free(err);
}

static void
signer_errors(void)
{
	char garbage[128];
	FILE *f;

	snprintf(garbage, sizeof(garbage), "%s/garbage.pem", g.dir);
	f = fopen(garbage, "w");
	fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n", f);
	fclose(f);
	t_signer_fails(
	    "example.org", "s", "/nonexistent/key.pem", "No such file");
	t_signer_fails("example.org", "s", garbage, "not a PEM private key");
	t_signer_fails("example.org", "s", g.ec, "EC key");
	t_signer_fails("example.org", "s", g.rsa512, "512 bits");
	t_signer_fails("exa mple.org", "s", g.rsa, "DKIM domain");
	t_signer_fails("example..org", "s", g.rsa, "DKIM domain");
	t_signer_fails("example.org", "s;h=x", g.rsa, "DKIM selector");
	t_signer_fails("example.org", "", g.rsa, "DKIM selector");
	unlink(garbage);
}

/* A trailing dot in the domain is dropped: d= has none. */
static void
signer_trailing_dot(void)
{
	char *err = NULL, *sig, *d;
	struct dkim_signer *s =
	    dkim_signer_new("example.org.", "s", g.ed, &err);

	T_CHECK(s != NULL);
	sig = t_sign(s, "From: a@example.org\r\n\r\nx\r\n");
	T_STREQ((d = t_tag(sig, "d")), "example.org");
	free(d);
	free(sig);
	dkim_signer_free(s);
	dkim_signer_free(NULL);
}

/* The record's quoted strings joined, and the owner name. */
static char *
t_record_text(const char *rec, char *owner, size_t olen)
{
	const char *p = strchr(rec, '"'), *q;
	struct buf b;

	snprintf(owner, olen, "%.*s", (int)strcspn(rec, " "), rec);
	buf_init(&b, 8192);
	while (p != NULL) {
		q = strchr(p + 1, '"');
		ASSERT(q != NULL && q - p - 1 <= 255);
		buf_add(&b, p + 1, (size_t)(q - p - 1));
		p = strchr(q + 1, '"');
	}
	return buf_steal(&b);
}

static void
dns_record_rsa(void)
{
	struct dkim_signer *s = t_signer(g.rsa);
	char *rec = dkim_signer_dns_record(s, NULL), owner[128], *txt;
	uint8_t der[1024];
	const uint8_t *dp = der;
	EVP_PKEY *pub;
	int n;

	T_CHECK(strstr(rec, " IN TXT \"v=DKIM1; k=rsa; p=") != NULL);
	txt = t_record_text(rec, owner, sizeof(owner));
	T_STREQ(owner, "sel2026._domainkey.example.org.");
	T_CHECK(strncmp(txt, "v=DKIM1; k=rsa; p=", 18) == 0);
	n = EVP_DecodeBlock(
	    der, (const uint8_t *)txt + 18, (int)strlen(txt + 18));
	pub = n > 0 ? d2i_PUBKEY(NULL, &dp, n) : NULL;
	T_CHECK(pub != NULL && EVP_PKEY_eq(pub, g.rsa_key) == 1);
	EVP_PKEY_free(pub);
	free(txt);
	free(rec);
	dkim_signer_free(s);
}

static void
dns_record_ed25519(void)
{
	struct dkim_signer *s = t_signer(g.ed);
	char *rec = dkim_signer_dns_record(s, "tlsrpt"), owner[128], *txt;
	uint8_t raw[32], got[48];
	size_t rawlen = sizeof(raw);
	const char *p;

	txt = t_record_text(rec, owner, sizeof(owner));
	T_CHECK(strncmp(txt, "v=DKIM1; k=ed25519; s=tlsrpt; p=", 32) == 0);
	p = strstr(txt, "p=") + 2;
	T_CHECK(strlen(p) == 44);
	T_CHECK(EVP_DecodeBlock(got, (const uint8_t *)p, 44) == 33);
	EVP_PKEY_get_raw_public_key(g.ed_key, raw, &rawlen);
	T_CHECK(memcmp(got, raw, 32) == 0);
	free(txt);
	free(rec);
	dkim_signer_free(s);
}

/* ---- --emit: signed messages for python-dkim ------------------------------
 */

static void
t_write(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	ASSERT(f != NULL && fwrite(p, 1, n, f) == n);
	fclose(f);
}

/* gzip (RFC 1952) of n octets, base64 in lines of 76, into b. */
static void
t_gzip_b64(struct buf *b, const char *p, size_t n)
{
	z_stream z;
	uint8_t gz[8192];
	char line[80];
	size_t gzlen, off, k;

	memset(&z, 0, sizeof(z));
	ASSERT(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
	           Z_DEFAULT_STRATEGY) == Z_OK);
	z.next_in = (uint8_t *)(uintptr_t)p;
	z.avail_in = (uInt)n;
	z.next_out = gz;
	z.avail_out = sizeof(gz);
	ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
	gzlen = sizeof(gz) - z.avail_out;
	deflateEnd(&z);
	for (off = 0; off < gzlen; off += 57) {
		k = gzlen - off < 57 ? gzlen - off : 57;
		EVP_EncodeBlock((uint8_t *)line, gz + off, (int)k);
		buf_printf(b, "%s\r\n", line);
	}
}

static const char report_json[] =
    "{\"organization-name\":\"Example Org\","
    "\"date-range\":{\"start-datetime\":\"2026-11-27T00:00:00Z\","
    "\"end-datetime\":\"2026-11-27T23:59:59Z\"},"
    "\"contact-info\":\"tlsrpt@mail.example.org\","
    "\"report-id\":\"2026-11-27T00:00:00Z!example.net\","
    "\"policies\":[{\"policy\":{\"policy-type\":\"tlsa\","
    "\"policy-string\":[\"3 1 1 "
    "0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6\"],"
    "\"policy-domain\":\"example.net\",\"mx-host\":[\"mx.example.net\"]},"
    "\"summary\":{\"total-successful-session-count\":41,"
    "\"total-failure-session-count\":2},"
    "\"failure-details\":[{\"result-type\":\"tlsa-invalid\","
    "\"sending-mta-ip\":\"192.0.2.25\","
    "\"receiving-mx-hostname\":\"mx.example.net\","
    "\"receiving-ip\":\"198.51.100.7\",\"failed-session-count\":2,"
    "\"failure-reason-code\":\"X509_V_ERR_DANE_NO_MATCH\"}]}]}";

/* A TLS report email as RFC 8460 §5.3 describes, before signing. */
static char *
t_report_email(void)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	buf_adds(&b, report_msg);
	b.len -= strlen("--b1--\r\n\r\n");
	b.data[b.len] = '\0';
	buf_adds(&b,
	    "--b1\r\n"
	    "Content-Type: application/tlsrpt+gzip\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment;\r\n"
	    " filename=\"mail.example.org!example.net!1795737600!"
	    "1795823999.json.gz\"\r\n\r\n");
	t_gzip_b64(&b, report_json, strlen(report_json));
	buf_adds(&b, "--b1--\r\n");
	return buf_steal(&b);
}

/* The message as the SMTP client puts it on the wire: bare LF as CRLF. */
static char *
t_wire(const char *msg)
{
	struct buf b;
	const char *p;

	buf_init(&b, 1 << 22);
	for (p = msg; *p != '\0'; p++) {
		if (*p == '\n' && (p == msg || p[-1] != '\r'))
			buf_addc(&b, '\r');
		buf_addc(&b, *p);
	}
	if (b.len > 0 && b.data[b.len - 1] != '\n')
		buf_adds(&b, "\r\n");
	return buf_steal(&b);
}

static void
t_emit_one(const char *dir, const char *name, const char *key,
    const char *service, const char *msg)
{
	struct dkim_signer *s = t_signer(key);
	char path[512], *sig, *rec, *wire;
	struct buf out;

	ASSERT(s != NULL);
	sig = t_sign(s, msg);
	ASSERT(sig != NULL);
	wire = t_wire(msg);
	buf_init(&out, 1 << 22);
	buf_adds(&out, sig);
	buf_adds(&out, wire);
	snprintf(path, sizeof(path), "%s/%s.eml", dir, name);
	t_write(path, out.data, out.len);
	rec = dkim_signer_dns_record(s, service);
	snprintf(path, sizeof(path), "%s/%s.dns", dir, name);
	t_write(path, rec, strlen(rec));
	free(rec);
	free(wire);
	free(sig);
	buf_free(&out);
	dkim_signer_free(s);
}

static int
emit(const char *dir)
{
	static const char lf_msg[] = "From: a@example.org\nTo: b@example.net\n"
	                             "Subject: bare LF\n\tfolded\n\n"
	                             "line one  \nline two\n\n\n";
	static const char spaces[] =
	    "From:   a@example.org  \r\n"
	    "SUBJECT:  odd   spacing\t\r\n"
	    "to: b@example.net\r\nto: c@example.net\r\n"
	    "\r\n  leading\t and  trailing  \r\n"
	    "\r\n \r\n";
	static const char nobody[] = "From: a@example.org\r\n"
	                             "Subject: no body\r\n\r\n";
	char *report = t_report_email();

	t_keys();
	t_emit_one(dir, "report_rsa", g.rsa, "tlsrpt", report);
	t_emit_one(dir, "report_ed25519", g.ed, "tlsrpt", report);
	t_emit_one(dir, "plain_rsa", g.rsa, NULL, report_msg);
	t_emit_one(dir, "bare_lf_rsa", g.rsa, NULL, lf_msg);
	t_emit_one(dir, "bare_lf_ed25519", g.ed, NULL, lf_msg);
	t_emit_one(dir, "spacing_ed25519", g.ed, NULL, spaces);
	t_emit_one(dir, "spacing_rsa", g.rsa, NULL, spaces);
	t_emit_one(dir, "empty_body_rsa", g.rsa, NULL, nobody);
	free(report);
	t_keys_free();
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--emit") == 0)
		return emit(argv[2]);
	t_keys();
	T_RUN(canon_header_cases);
	T_RUN(canon_body_cases);
	T_RUN(canon_body_large);
	T_RUN(sign_rsa);
	T_RUN(sign_ed25519);
	T_RUN(body_hash_empty);
	T_RUN(body_hash_known);
	T_RUN(bare_lf_as_crlf);
	T_RUN(repeated_fields);
	T_RUN(from_oversigned);
	T_RUN(unsignable);
	T_RUN(large_message);
	T_RUN(signer_errors);
	T_RUN(signer_trailing_dot);
	T_RUN(dns_record_rsa);
	T_RUN(dns_record_ed25519);
	t_keys_free();
	T_EXIT();
}
