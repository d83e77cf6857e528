/*
 * cmd_tlsa: print the TLSA records to publish for a certificate, in zone
 * file syntax, and with --next-key the record of the key that will replace
 * it, so both can be published before a rollover (RFC 7671 §8.1).
 *
 *   danerelay tlsa --cert FILE [--host NAME] [--port N] [--usage 3|2]
 *       [--selector 1|0] [--mtype 1|2|0] [--next-key FILE]
 *
 * Exit: 0, EX_USAGE (bad arguments, no usable owner name), EX_NOINPUT
 * (a file cannot be read), EX_DATAERR (a file is not what it should be).
 * docs/TLSA.md is the manual.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "core/str.h"
#include "core/xmalloc.h"
#include "tls/tls_cert.h"

struct tlsa_opts {
	const char *cert;
	const char *host;
	const char *next_key;
	uint64_t port;
	uint64_t usage;
	uint64_t selector;
	uint64_t mtype;
};

static void tlsa_err(const char *fmt, ...) DR_PRINTF(1, 2);

static void
tlsa_err(const char *fmt, ...)
{
	va_list ap;

	fputs("danerelay tlsa: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A number option in [min, max]; prints the error itself. */
static int
tlsa_num(
    const char *opt, const char *arg, uint64_t min, uint64_t max, uint64_t *out)
{
	if (str_to_uint(arg, min, max, out) == 0)
		return 0;
	tlsa_err("--%s %s: must be a number from %llu to %llu", opt, arg,
	    (unsigned long long)min, (unsigned long long)max);
	return -1;
}

/* One digit out of allowed ("32"), for --usage and friends. */
static int
tlsa_choice(const char *opt, const char *arg, const char *allowed,
    const char *say, uint64_t *out)
{
	if (arg[0] != '\0' && arg[1] == '\0' && strchr(allowed, arg[0])) {
		*out = (uint64_t)(arg[0] - '0');
		return 0;
	}
	tlsa_err("--%s %s: must be %s", opt, arg, say);
	return -1;
}

static int
tlsa_parse(int argc, char **argv, struct tlsa_opts *o)
{
	static const struct option longopts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "usage", required_argument, NULL, 'u' },
		{ "selector", required_argument, NULL, 's' },
		{ "mtype", required_argument, NULL, 'm' },
		{ "next-key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, r = 0;

	/* 0, not 1: glibc then resets all of getopt's state. */
	optind = 0;
	opterr = 0;
	while (r == 0 &&
	    (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->cert = optarg;
			break;
		case 'H':
			o->host = optarg;
			break;
		case 'k':
			o->next_key = optarg;
			break;
		case 'p':
			r = tlsa_num("port", optarg, 1, 65535, &o->port);
			break;
		case 'u':
			r = tlsa_choice("usage", optarg, "32",
			    "3 (DANE-EE) or 2 (DANE-TA)", &o->usage);
			break;
		case 's':
			r = tlsa_choice("selector", optarg, "10",
			    "1 (SPKI) or 0 (Cert)", &o->selector);
			break;
		case 'm':
			r = tlsa_choice("mtype", optarg, "120",
			    "1 (SHA2-256), 2 (SHA2-512) or 0 (Full)",
			    &o->mtype);
			break;
		default:
			tlsa_err("unknown option or missing argument: %s",
			    argv[optind - 1]);
			r = -1;
			break;
		}
	}
	if (r == 0 && optind != argc) {
		tlsa_err("unexpected argument '%s'", argv[optind]);
		r = -1;
	}
	if (r == 0 && o->cert == NULL) {
		tlsa_err("--cert FILE is required");
		r = -1;
	}
	return r;
}

/* The combinations this command refuses, with the reason (RFC 7671 §8.1). */
static int
tlsa_check(const struct tlsa_opts *o)
{
	if (o->next_key != NULL && (o->usage != 3 || o->selector != 1)) {
		tlsa_err(
		    "--next-key needs --usage 3 --selector 1: a key "
		    "rollover is announced with a DANE-EE(3) SPKI(1) record "
		    "of the next key (RFC 7671 §8.1); a certificate or a trust "
		    "anchor cannot be derived from a bare key");
		return -1;
	}
	return 0;
}

/*
 * A host name fit for a TLSA owner: LDH labels of 1..63 octets, at most 253
 * octets, one optional trailing dot. No wildcards: a record is published
 * for one name (RFC 7672 §2.2.3).
 */
static bool
tlsa_hostname_ok(const char *s)
{
	size_t n = strlen(s), label = 0, i;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
		if ((label == 0 && s[i] == '-') || ++label > 63)
			return false;
	}
	return s[n - 1] != '-';
}

/* The first DNS name of the leaf, as a new string, or NULL. */
static char *
tlsa_first_san(X509 *leaf)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	const struct tls_cert_facts *f;
	struct tls_chain *c;
	char *name = NULL;

	if (sk == NULL || sk_X509_push(sk, leaf) <= 0)
		panic("tlsa_first_san: out of memory");
	c = tls_chain_from_certs(sk);
	sk_X509_free(sk);
	f = tls_chain_cert(c, 0);
	if (f->sans[0] != NULL)
		name = xstrdup(f->sans[0]);
	tls_chain_free(c);
	return name;
}

/*
 * "_25._tcp.mx.example.com." (RFC 6698 §3): from --host, else from the
 * leaf's first DNS SAN. Returns new, or NULL after printing why.
 */
static char *
tlsa_owner(const struct tlsa_opts *o, X509 *leaf)
{
	char *host, *owner;
	size_t n;

	if (o->host != NULL) {
		if (!tlsa_hostname_ok(o->host)) {
			tlsa_err("--host %s: not a host name", o->host);
			return NULL;
		}
		host = xstrdup(o->host);
	} else if ((host = tlsa_first_san(leaf)) == NULL) {
		tlsa_err("%s: the certificate has no DNS name "
		         "(subjectAltName): give the MX host name with --host",
		    o->cert);
		return NULL;
	} else if (!tlsa_hostname_ok(host)) {
		tlsa_err("%s: the certificate's first DNS name '%s' cannot be "
		         "a TLSA owner: give the MX host name with --host",
		    o->cert, host);
		free(host);
		return NULL;
	}
	str_lower(host);
	n = strlen(host);
	if (host[n - 1] == '.')
		host[n - 1] = '\0';
	owner = xasprintf("_%llu._tcp.%s.", (unsigned long long)o->port, host);
	free(host);
	return owner;
}

/*
 * The certificate the record is about: the leaf for DANE-EE(3); for
 * DANE-TA(2) the top-most certificate of the file, which must be a CA the
 * server sends in its chain (RFC 7672 §3.1.2). Borrowed, or NULL.
 */
static X509 *
tlsa_subject_cert(const struct tlsa_opts *o, STACK_OF(X509) *sk)
{
	int n = sk_X509_num(sk);
	X509 *ta;

	if (o->usage == 3)
		return sk_X509_value(sk, 0);
	if (n < 2) {
		tlsa_err(
		    "%s: --usage 2 needs the chain (leaf first, then its "
		    "issuers) but the file holds only one certificate; the "
		    "trust anchor is the top-most CA certificate the server "
		    "sends",
		    o->cert);
		return NULL;
	}
	ta = sk_X509_value(sk, n - 1);
	if ((X509_get_extension_flags(ta) & EXFLAG_CA) == 0) {
		tlsa_err("%s: the last certificate of the file is not a CA "
		         "certificate, so it cannot be a DANE-TA trust anchor",
		    o->cert);
		return NULL;
	}
	return ta;
}

/* Hex association data of the cert (or the key when key != NULL); new. */
static char *
tlsa_hex(const struct tlsa_opts *o, X509 *cert, EVP_PKEY *key)
{
	const char *errstr = NULL;
	uint8_t *d;
	size_t n;
	char *hex;

	if (key != NULL)
		d = tls_tlsa_data_key(key, (int)o->mtype, &n, &errstr);
	else
		d = tls_tlsa_data_cert(
		    cert, (int)o->selector, (int)o->mtype, &n, &errstr);
	if (d == NULL) {
		tlsa_err("cannot compute the association data: %s", errstr);
		return NULL;
	}
	hex = str_hex(d, n);
	free(d);
	return hex;
}

/* Load the certificates or the key in path; 0 or the exit code. */
static int
tlsa_load(const char *path, bool want_key, STACK_OF(X509) **sk, EVP_PKEY **key)
{
	const char *errstr = NULL;
	uint8_t *p;
	size_t n;

	if ((p = tls_load_file(path, &n, &errstr)) == NULL) {
		tlsa_err("%s: %s", path, errstr);
		return EX_NOINPUT;
	}
	if (want_key)
		*key = tls_load_key_mem(p, n, &errstr);
	else
		*sk = tls_load_certs_mem(p, n, &errstr);
	free(p);
	if (want_key ? *key == NULL : *sk == NULL) {
		tlsa_err("%s: %s", path, errstr);
		return EX_DATAERR;
	}
	return 0;
}

/* The next key's record, after a comment saying in which order to act. */
static int
tlsa_print_next(const struct tlsa_opts *o, const char *owner, const char *cur)
{
	EVP_PKEY *key = NULL;
	char *next;
	int ex;

	if ((ex = tlsa_load(o->next_key, true, NULL, &key)) != 0)
		return ex;
	next = tlsa_hex(o, NULL, key);
	EVP_PKEY_free(key);
	if (next == NULL)
		return EX_DATAERR;
	if (strcmp(next, cur) == 0) {
		tlsa_err("%s: the next key is the key of the current "
		         "certificate; nothing to roll over",
		    o->next_key);
		free(next);
		return EX_DATAERR;
	}
	printf(
	    "; Rollover (RFC 7671 §8.1): publish both records now; wait at "
	    "least two TTLs\n"
	    "; of the TLSA RRset; deploy the next key; then remove the first "
	    "record.\n");
	printf("%s IN TLSA 3 1 %llu %s\n", owner, (unsigned long long)o->mtype,
	    cur);
	printf("%s IN TLSA 3 1 %llu %s\n", owner, (unsigned long long)o->mtype,
	    next);
	free(next);
	return 0;
}

static int
tlsa_run(const struct tlsa_opts *o)
{
	STACK_OF(X509) *sk = NULL;
	char *owner = NULL, *hex = NULL;
	X509 *cert;
	int ex;

	if ((ex = tlsa_load(o->cert, false, &sk, NULL)) != 0)
		return ex;
	ex = EX_USAGE;
	if ((owner = tlsa_owner(o, sk_X509_value(sk, 0))) == NULL)
		goto done;
	ex = EX_DATAERR;
	if ((cert = tlsa_subject_cert(o, sk)) == NULL ||
	    (hex = tlsa_hex(o, cert, NULL)) == NULL)
		goto done;
	if (o->next_key != NULL)
		ex = tlsa_print_next(o, owner, hex);
	else {
		printf("%s IN TLSA %llu %llu %llu %s\n", owner,
		    (unsigned long long)o->usage,
		    (unsigned long long)o->selector,
		    (unsigned long long)o->mtype, hex);
		ex = 0;
	}
done:
	free(owner);
	free(hex);
	sk_X509_pop_free(sk, X509_free);
	return ex;
}

int
cmd_tlsa(int argc, char **argv, struct cli_ctx *ctx)
{
	/* RFC 7672 §3.1.1: "3 1 1" is what SMTP servers SHOULD publish. */
	struct tlsa_opts o = { NULL, NULL, NULL, 25, 3, 1, 1 };
	int ex;

	if (tlsa_parse(argc, argv, &o) == -1)
		return cli_usage("tlsa");
	if (tlsa_check(&o) == -1)
		return EX_USAGE;
	ex = tlsa_run(&o);
	if (ex == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
		tlsa_err("cannot write the records");
		return EX_IOERR;
	}
	return ex;
}
