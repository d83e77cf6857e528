/*
 * tls_cert: facts about certificates, for reports, logs and TLSA generation:
 * names, dates, fingerprints and the TLSA association data of any
 * usage/selector/matching-type combination (RFC 6698 §2.1).
 */
#ifndef DR_TLS_CERT_H
#define DR_TLS_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Read-only record of one certificate. */
struct tls_cert_facts {
	int depth;     /* position in the chain as sent, 0 = leaf */
	char *subject; /* RFC 2253 text */
	char *issuer;
	char **sans;         /* NULL-terminated DNS names */
	char not_before[32]; /* "2026-11-29T01:52:00Z" */
	char not_after[32];
	time_t not_after_t;
	bool self_signed;
	bool is_ca;
	char sha256[65];      /* of the DER certificate, hex */
	char spki_sha256[65]; /* of the DER SubjectPublicKeyInfo, hex */
	char sha512[129];
	char spki_sha512[129];
};

/*
 * Notes on the fields above. Names are escaped for printing: subject and
 * issuer as RFC 2253 (non-ASCII and control characters escaped), DNS SANs
 * with bytes outside printable ASCII and the backslash as "\DDD" (RFC 1035
 * §5.1), so a hostile certificate cannot inject text into logs. A date
 * OpenSSL cannot parse reads "invalid" (not_after_t 0). is_ca means
 * basicConstraints cA=TRUE; self_signed is decided by names and key
 * identifiers (X509_self_signed() without the signature check).
 */

/* The chain the peer sent. */
struct tls_chain;

/*
 * Facts of the chain presented on ssl, leaf first; empty (count 0) when the
 * peer sent none. Returns new (tls_chain_free).
 */
struct tls_chain *tls_chain_from_ssl(SSL *ssl);
/* Facts of the certificates in a PEM file (leaf first). NULL + *errstr. */
struct tls_chain *tls_chain_from_file(const char *path, const char **errstr);
/* Facts of certs (borrowed), in stack order. Returns new, never NULL. */
struct tls_chain *tls_chain_from_certs(const STACK_OF(X509) *certs);
/* Free c and everything its facts point to; NULL is fine. */
void tls_chain_free(struct tls_chain *c);
size_t tls_chain_count(const struct tls_chain *c);
/* Facts of certificate i (< count); borrowed, valid until tls_chain_free. */
const struct tls_cert_facts *tls_chain_cert(
    const struct tls_chain *c, size_t i);

/*
 * TLSA certificate association data for cert (selector 0 or 1) or a bare key
 * (selector 1 only) and matching type 0/1/2. Returns new bytes (*len), or
 * NULL with *errstr.
 */
uint8_t *tls_tlsa_data_cert(
    X509 *cert, int selector, int mtype, size_t *len, const char **errstr);
uint8_t *tls_tlsa_data_key(
    EVP_PKEY *key, int mtype, size_t *len, const char **errstr);

/*
 * Load certificates (PEM, leaf first; DER accepted for a single cert) from
 * path. Returns a new stack (sk_X509_pop_free(..., X509_free)) or NULL with
 * *errstr naming what is wrong with the file.
 */
STACK_OF(X509) *tls_load_certs(const char *path, const char **errstr);

/*
 * Load a public or private key (PEM or DER). NULL with *errstr. Encrypted
 * private keys are refused, never prompted for. A certificate is accepted
 * too and gives its public key. Returns new (EVP_PKEY_free).
 */
EVP_PKEY *tls_load_key(const char *path, const char **errstr);

/* Largest certificate or key file read, in bytes. */
#define TLS_LOAD_MAX (1024 * 1024)

/*
 * Read the file at path, at most TLS_LOAD_MAX + 1 bytes (the loaders below
 * reject anything longer). Returns new bytes (*len may be 0; caller frees),
 * or NULL with *errstr = strerror() text when the file cannot be opened or
 * read. Lets a caller tell "cannot read" (EX_NOINPUT) from "bad content"
 * (EX_DATAERR).
 */
uint8_t *tls_load_file(const char *path, size_t *len, const char **errstr);

/* tls_load_certs() and tls_load_key() on n bytes at p (borrowed). */
STACK_OF(X509) *tls_load_certs_mem(
    const uint8_t *p, size_t n, const char **errstr);
EVP_PKEY *tls_load_key_mem(const uint8_t *p, size_t n, const char **errstr);

#endif
