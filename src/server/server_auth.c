/*
 * server_auth: the credentials of [server] auth_file and their check.
 *
 * Passwords are stored as scrypt hashes (RFC 7914) made by OpenSSL's
 * EVP_PBE_scrypt, in a modular-crypt-like form:
 *
 *     $scrypt$ln=15,r=8,p=1$<base64 salt>$<base64 key>
 *
 * (N = 2^ln; 16 octets of salt, 32 of key when we make them). A check
 * derives the key again and compares it with CRYPTO_memcmp; an unknown
 * user costs the same derivation, against a dummy entry, so timing does
 * not tell which users exist. No cryptography of our own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/log.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "server/server_int.h"

#define AUTH_LN       15 /* N = 2^15, r = 8, p = 1: OWASP's minimum */
#define AUTH_R        8
#define AUTH_P        1
#define AUTH_SALT_LEN 16
#define AUTH_KEY_LEN  32
#define AUTH_KEY_MAX  64
#define AUTH_SALT_MAX 64
/* scrypt needs 128 * r * N octets; refuse files that ask for more. */
#define AUTH_MEM_MAX  (256ull * 1024 * 1024)
#define AUTH_LINE_MAX 1024
#define AUTH_USER_MAX 255
#define AUTH_PASS_MAX 1024 /* as smtp_server takes it */

struct server_auth_entry {
	char *user;
	unsigned ln, r, p;
	unsigned char salt[AUTH_SALT_MAX];
	size_t salt_len;
	unsigned char key[AUTH_KEY_MAX];
	size_t key_len;
};

struct server_auth {
	struct server_auth_entry *v;
	size_t n;
	struct server_auth_entry dummy; /* for unknown users */
};

/* Strict base64 with padding; returns the decoded length or -1. */
static int
server_auth_b64dec(unsigned char *dst, size_t dstlen, const char *s)
{
	size_t n = strlen(s), pad = 0;
	unsigned char tmp[3 * (AUTH_SALT_MAX + AUTH_KEY_MAX)];
	int r;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(tmp))
		return -1;
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	if (strspn(s,
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	        "0123456789+/") != n - pad)
		return -1;
	r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (r < (int)pad || (size_t)r - pad > dstlen)
		return -1;
	r -= (int)pad;
	memcpy(dst, tmp, (size_t)r);
	return r;
}

static char *
server_auth_b64enc(const unsigned char *p, size_t n)
{
	char *out = xmalloc((n + 2) / 3 * 4 + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static bool
server_auth_params_ok(unsigned ln, unsigned r, unsigned p)
{
	return ln >= 10 && ln <= 22 && r >= 1 && r <= 32 && p >= 1 && p <= 16 &&
	    128ull * r * (1ull << ln) <= AUTH_MEM_MAX;
}

/* "ln=15,r=8,p=1" */
static const char *
server_auth_parse_params(const char *s, struct server_auth_entry *e)
{
	const char *p = s;
	uint64_t ln, r, par;

	if (str_match_ci(&p, "ln=") == -1 ||
	    str_parse_uint(&p, 64, &ln) == -1 ||
	    str_match_ci(&p, ",r=") == -1 ||
	    str_parse_uint(&p, 1024, &r) == -1 ||
	    str_match_ci(&p, ",p=") == -1 ||
	    str_parse_uint(&p, 1024, &par) == -1 || *p != '\0')
		return "expected ln=N,r=N,p=N";
	if (!server_auth_params_ok((unsigned)ln, (unsigned)r, (unsigned)par))
		return "scrypt parameters out of range";
	e->ln = (unsigned)ln;
	e->r = (unsigned)r;
	e->p = (unsigned)par;
	return NULL;
}

/* "$scrypt$ln=15,r=8,p=1$salt$key" (hash is modified). */
static const char *
server_auth_parse_hash(char *hash, struct server_auth_entry *e)
{
	char *params, *salt, *key;
	const char *why;
	int n;

	if (strncmp(hash, "$scrypt$", 8) != 0)
		return "hash must start with $scrypt$ (use danerelay passwd)";
	params = hash + 8;
	if ((salt = strchr(params, '$')) == NULL ||
	    (key = strchr(salt + 1, '$')) == NULL)
		return "expected $scrypt$PARAMS$SALT$KEY";
	*salt++ = '\0';
	*key++ = '\0';
	if ((why = server_auth_parse_params(params, e)) != NULL)
		return why;
	if ((n = server_auth_b64dec(e->salt, sizeof(e->salt), salt)) < 8)
		return "bad salt";
	e->salt_len = (size_t)n;
	if ((n = server_auth_b64dec(e->key, sizeof(e->key), key)) < 16)
		return "bad key";
	e->key_len = (size_t)n;
	return NULL;
}

static bool
server_auth_user_ok(const char *u, size_t n)
{
	size_t i;

	if (n == 0 || n > AUTH_USER_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f || u[i] == ':')
			return false;
	return true;
}

static const struct server_auth_entry *
server_auth_find(const struct server_auth *a, const char *user)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].user, user) == 0)
			return &a->v[i];
	return NULL;
}

/* One "user:hash" line (modified). NULL or why it is bad. */
static const char *
server_auth_line(struct server_auth *a, char *line)
{
	struct server_auth_entry e = { 0 };
	char *colon = strchr(line, ':');
	const char *why;

	if (colon == NULL)
		return "expected user:hash";
	*colon = '\0';
	if (!server_auth_user_ok(line, strlen(line)))
		return "bad user name";
	if (server_auth_find(a, line) != NULL)
		return "duplicate user";
	if ((why = server_auth_parse_hash(colon + 1, &e)) != NULL)
		return why;
	e.user = xstrdup(line);
	a->v = xreallocarray(a->v, a->n + 1, sizeof(*a->v));
	a->v[a->n++] = e;
	return NULL;
}

/* Read the file line by line; errors carry "path:line: ". */
static int
server_auth_read(
    struct server_auth *a, FILE *f, const char *path, char **errstr)
{
	char buf[AUTH_LINE_MAX + 2], *line;
	const char *why;
	unsigned lineno = 0;
	size_t n;

	while (fgets(buf, sizeof(buf), f) != NULL) {
		lineno++;
		n = strlen(buf);
		if (n == sizeof(buf) - 1 && buf[n - 1] != '\n') {
			*errstr =
			    xasprintf("%s:%u: line too long", path, lineno);
			return -1;
		}
		line = str_trim(buf);
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((why = server_auth_line(a, line)) != NULL) {
			*errstr = xasprintf("%s:%u: %s", path, lineno, why);
			return -1;
		}
	}
	if (ferror(f)) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The entry an unknown user is checked against: real cost, no match. */
static void
server_auth_make_dummy(struct server_auth *a)
{
	a->dummy.ln = a->n > 0 ? a->v[0].ln : AUTH_LN;
	a->dummy.r = a->n > 0 ? a->v[0].r : AUTH_R;
	a->dummy.p = a->n > 0 ? a->v[0].p : AUTH_P;
	a->dummy.salt_len = AUTH_SALT_LEN;
	a->dummy.key_len = AUTH_KEY_LEN;
	if (RAND_bytes(a->dummy.salt, AUTH_SALT_LEN) != 1)
		memset(a->dummy.salt, 0x5a, AUTH_SALT_LEN);
}

struct server_auth *
server_auth_load(const char *path, char **errstr)
{
	struct server_auth *a;
	struct stat st;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	/* Hashes are slow to crack, not impossible: keep them private. */
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
		log_warnx("%s: readable by everyone; chmod o-r", path);
	a = xcalloc(1, sizeof(*a));
	if (server_auth_read(a, f, path, errstr) == -1) {
		fclose(f);
		server_auth_free(a);
		return NULL;
	}
	fclose(f);
	server_auth_make_dummy(a);
	return a;
}

void
server_auth_free(struct server_auth *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		free(a->v[i].user);
	OPENSSL_cleanse(a->v, a->n * sizeof(*a->v));
	free(a->v);
	free(a);
}

/* scrypt of password with e's salt and parameters into out (key_len). */
static int
server_auth_derive(
    const struct server_auth_entry *e, const char *password, unsigned char *out)
{
	uint64_t n = 1ull << e->ln;
	/* OpenSSL's own estimate plus slack: 128 * r * (N + p + 2). */
	uint64_t maxmem = 128ull * e->r * (n + e->p + 2) + 1024 * 1024;

	return EVP_PBE_scrypt(password, strlen(password), e->salt, e->salt_len,
	           n, e->r, e->p, maxmem, out, e->key_len) == 1 ?
	    0 :
	    -1;
}

/*
 * One check, self-contained: a copy of the entry (or the dummy) and of
 * the password, so it can run on a worker thread while the table is
 * reloaded or the session goes away.
 */
struct server_auth_try {
	struct server_auth_entry e; /* user unused */
	bool known;
	char password[AUTH_PASS_MAX + 1];
};

struct server_auth_try *
server_auth_try_new(
    const struct server_auth *a, const char *user, const char *password)
{
	struct server_auth_try *t;
	const struct server_auth_entry *e;

	if (a == NULL || user == NULL || password == NULL ||
	    strlen(password) >= sizeof(t->password))
		return NULL;
	t = xcalloc(1, sizeof(*t));
	e = server_auth_find(a, user);
	t->known = e != NULL;
	t->e = e != NULL ? *e : a->dummy;
	t->e.user = NULL;
	memcpy(t->password, password, strlen(password) + 1);
	return t;
}

bool
server_auth_try_run(const struct server_auth_try *t)
{
	unsigned char out[AUTH_KEY_MAX];
	bool ok;

	if (t == NULL || server_auth_derive(&t->e, t->password, out) == -1)
		return false;
	ok = CRYPTO_memcmp(out, t->e.key, t->e.key_len) == 0 && t->known;
	OPENSSL_cleanse(out, sizeof(out));
	return ok;
}

void
server_auth_try_free(struct server_auth_try *t)
{
	if (t == NULL)
		return;
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

bool
server_auth_check(
    const struct server_auth *a, const char *user, const char *password)
{
	struct server_auth_try *t = server_auth_try_new(a, user, password);
	bool ok = server_auth_try_run(t);

	server_auth_try_free(t);
	return ok;
}

char *
server_auth_hash(const char *password)
{
	struct server_auth_entry e = { .ln = AUTH_LN,
		.r = AUTH_R,
		.p = AUTH_P,
		.salt_len = AUTH_SALT_LEN,
		.key_len = AUTH_KEY_LEN };
	char *salt, *key, *out;

	if (RAND_bytes(e.salt, AUTH_SALT_LEN) != 1 ||
	    server_auth_derive(&e, password, e.key) == -1)
		return NULL;
	salt = server_auth_b64enc(e.salt, e.salt_len);
	key = server_auth_b64enc(e.key, e.key_len);
	out = xasprintf(
	    "$scrypt$ln=%u,r=%u,p=%u$%s$%s", e.ln, e.r, e.p, salt, key);
	OPENSSL_cleanse(&e, sizeof(e));
	free(salt);
	free(key);
	return out;
}
