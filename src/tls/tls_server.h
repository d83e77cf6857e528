/*
 * tls_server: the TLS context of the inbound side (STARTTLS, RFC 3207).
 */
#ifndef DR_TLS_SERVER_H
#define DR_TLS_SERVER_H

#include <openssl/ssl.h>

/*
 * A server SSL_CTX with the certificate chain in cert_file (PEM, leaf
 * first) and the private key in key_file, TLS 1.2 at least whatever the
 * system policy allows. Returns new (SSL_CTX_free), or
 * NULL with *errstr (new string) naming the file and the problem.
 */
SSL_CTX *tls_server_ctx_new(
    const char *cert_file, const char *key_file, char **errstr);

#endif
