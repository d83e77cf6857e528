/*
 * tls_server: the inbound TLS context.
 */
#include "tls/tls_server.h"

#include <openssl/err.h>

#include "core/xmalloc.h"
#include "tls/tls_client.h"

static SSL_CTX *
tls_server_fail(SSL_CTX *ctx, char **errstr, const char *what, const char *file)
{
	char buf[256];

	*errstr = xasprintf(
	    "%s %s: %s", what, file, tls_error_text(buf, sizeof(buf)));
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file, char **errstr)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return tls_server_fail(ctx, errstr, "cannot create", "context");
	/*
	 * TLS 1.2 at least, in code: a system policy (OPENSSL_CONF,
	 * crypto-policies) that allows less does not lower it (RFC 8996
	 * deprecates TLS 1.0 and 1.1).
	 */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return tls_server_fail(
		    ctx, errstr, "cannot set the protocol floor of", "context");
	/* Mail servers are asked by many old clients; no compression, no
	 * renegotiation by clients, the server's cipher order. */
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	        SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle sessions */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
		return tls_server_fail(
		    ctx, errstr, "cannot load certificate", cert_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
		return tls_server_fail(
		    ctx, errstr, "cannot load key", key_file);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tls_server_fail(ctx, errstr,
		    "key does not match the certificate in", cert_file);
	return ctx;
}
