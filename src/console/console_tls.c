/*
 * console_tls: HTTPS for the console ([admin] tls_cert, tls_key), with
 * the server context the inbound SMTP side uses (TLS 1.2 or newer).
 * libevent's evhttp speaks TLS through a bufferevent_openssl made for
 * each connection.
 */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>

#include "conf/conf.h"
#include "console/console_core.h"
#include "tls/tls_server.h"

/* evhttp's hook: a TLS bufferevent for each accepted connection. */
static struct bufferevent *
console_tls_bev(struct event_base *base, void *arg)
{
	struct console *con = arg;
	SSL *ssl = SSL_new(con->tls);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

int
console_tls_new(struct console *con, char **errstr)
{
	const char *cert = conf_str(con->conf, CONF_ADMIN_TLS_CERT);
	const char *key = conf_str(con->conf, CONF_ADMIN_TLS_KEY);

	if (cert == NULL || key == NULL)
		return 0;
	con->tls = tls_server_ctx_new(cert, key, errstr);
	return con->tls != NULL ? 0 : -1;
}

void
console_tls_setup(struct console *con)
{
	if (con->tls != NULL)
		evhttp_set_bevcb(con->http, console_tls_bev, con);
}
