/*
 * relay_check: everything `serve` would refuse in a configuration, checked
 * in one place and without side effects (nothing is bound, created or
 * asked of the network). `serve` runs it before it builds anything, SIGHUP
 * before it changes anything, and `check-config` runs it and stops there,
 * so what check-config accepts is what the relay starts with. Every error
 * names the file and line of the key (conf_errorf) and what to do.
 *
 * Not checked here, because it needs the network: the DANE guard of
 * [server] tls_cert (relay_guard.c), which `serve` runs at start and
 * reload.
 */
#include "relay/relay.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "console/console.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "relay/relay_local.h"
#include "relay/relay_tlsrpt.h"
#include "dkim/dkim.h"
#include "server/server.h"
#include "tls/tls_client.h"
#include "tls/tls_server.h"

void
relay_dns_options(const struct conf *c, struct dns_options *o)
{
	memset(o, 0, sizeof(*o));
	o->trust_anchor_file = conf_str(c, CONF_DNS_TRUST_ANCHOR_FILE);
	o->root_servers = conf_list(c, CONF_DNS_ROOT_SERVERS);
	o->forwarders = conf_list(c, CONF_DNS_FORWARDERS);
	o->timeout_ms = (unsigned)conf_int(c, CONF_DNS_TIMEOUT) * 1000;
	if (o->root_servers[0] == NULL)
		o->root_servers = NULL;
	if (o->forwarders[0] == NULL)
		o->forwarders = NULL;
}

/* A file the key names must be there, a file, and readable by us now. */
static char *
check_file(const struct conf *c, enum conf_key k)
{
	const char *path = conf_str(c, k);
	struct stat sb;
	int fd;

	if (path == NULL)
		return NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return conf_errorf(c, k,
		    "%s: %s (the file must exist and be "
		    "readable by the user that starts "
		    "danerelay)",
		    path, strerror(errno));
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return conf_errorf(c, k, "%s: not a regular file", path);
	}
	close(fd);
	return NULL;
}

/* The queue directory: there, or creatable in a directory that is. */
static char *
check_queue_dir(const struct conf *c)
{
	const char *dir = conf_str(c, CONF_QUEUE_DIRECTORY);
	char parent[4096], *slash;
	struct stat sb;

	if (stat(dir, &sb) == 0)
		return S_ISDIR(sb.st_mode) ?
		    NULL :
		    conf_errorf(
		        c, CONF_QUEUE_DIRECTORY, "%s: not a directory", dir);
	if (errno != ENOENT)
		return conf_errorf(
		    c, CONF_QUEUE_DIRECTORY, "%s: %s", dir, strerror(errno));
	snprintf(parent, sizeof(parent), "%s", dir);
	while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0')
		*slash = '\0';
	if ((slash = strrchr(parent, '/')) == NULL)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(parent, &sb) == -1 || !S_ISDIR(sb.st_mode))
		return conf_errorf(c, CONF_QUEUE_DIRECTORY,
		    "%s: its parent %s is not a directory (the relay creates "
		    "the queue directory, not the ones above it)",
		    dir, parent);
	return NULL;
}

/* [dns]: what dns_resolver_new() would refuse, on a throwaway loop. */
static char *
check_dns(const struct conf *c)
{
	struct dns_options o;
	struct dns_resolver *res;
	struct event_base *base;
	enum conf_key k;
	char *err = NULL, *msg;

	if ((msg = check_file(c, CONF_DNS_TRUST_ANCHOR_FILE)) != NULL)
		return msg;
	if (conf_list(c, CONF_DNS_ROOT_SERVERS)[0] != NULL &&
	    conf_list(c, CONF_DNS_FORWARDERS)[0] != NULL)
		return conf_errorf(c, CONF_DNS_FORWARDERS,
		    "not together with [dns] root_servers: keep one of them");
	relay_dns_options(c, &o);
	if ((base = event_base_new()) == NULL)
		return xstrdup("cannot create an event loop");
	res = dns_resolver_new(base, &o, &err);
	dns_resolver_free(res);
	event_base_free(base);
	if (res != NULL)
		return NULL;
	k = o.trust_anchor_file != NULL ? CONF_DNS_TRUST_ANCHOR_FILE :
	    o.forwarders != NULL        ? CONF_DNS_FORWARDERS :
	                                  CONF_DNS_ROOT_SERVERS;
	msg = conf_errorf(c, k, "%s", err);
	free(err);
	return msg;
}

/* tls_cert and tls_key of [server] or [admin]: both or neither, and
 * they must load. */
static char *
check_tls_pair(const struct conf *c, enum conf_key kcert, enum conf_key kkey)
{
	const char *cert = conf_str(c, kcert);
	const char *key = conf_str(c, kkey);
	char *msg = NULL;
	SSL_CTX *ctx;

	if (cert == NULL && key == NULL)
		return NULL;
	if (cert == NULL || key == NULL)
		return conf_errorf(c, cert != NULL ? kcert : kkey,
		    "tls_cert and tls_key go together: set [%s] %s too",
		    conf_key_section(kcert),
		    cert != NULL ? "tls_key" : "tls_cert");
	if ((msg = check_file(c, kcert)) != NULL ||
	    (msg = check_file(c, kkey)) != NULL)
		return msg;
	if ((ctx = tls_server_ctx_new(cert, key, &msg)) == NULL) {
		char *e = conf_errorf(c, kcert, "%s", msg);

		free(msg);
		return e;
	}
	SSL_CTX_free(ctx);
	return NULL;
}

/* [server]: listeners, networks, credentials, the user to become. */
static char *
check_server(const struct conf *c, bool reload)
{
	const char *user = conf_str(c, CONF_SERVER_USER);
	struct server_auth *auth;
	char *err, *msg;

	if ((err = server_check_listen(conf_list(c, CONF_SERVER_LISTEN))) !=
	    NULL) {
		msg = conf_errorf(c, CONF_SERVER_LISTEN, "%s", err);
		free(err);
		return msg;
	}
	err = server_check_networks(conf_list(c, CONF_SERVER_RELAY_NETWORKS));
	if (err != NULL) {
		msg = conf_errorf(c, CONF_SERVER_RELAY_NETWORKS, "%s",
		    strncmp(err, "relay_networks: ", 16) == 0 ? err + 16 : err);
		free(err);
		return msg;
	}
	if ((msg = check_tls_pair(
	         c, CONF_SERVER_TLS_CERT, CONF_SERVER_TLS_KEY)) != NULL ||
	    (msg = check_file(c, CONF_SERVER_AUTH_FILE)) != NULL)
		return msg;
	if (conf_str(c, CONF_SERVER_AUTH_FILE) != NULL) {
		if ((auth = server_auth_load(
		         conf_str(c, CONF_SERVER_AUTH_FILE), &err)) == NULL) {
			msg = conf_errorf(c, CONF_SERVER_AUTH_FILE, "%s", err);
			free(err);
			return msg;
		}
		server_auth_free(auth);
	}
	/* Restart-only: a reload cannot become another user. */
	if (!reload && user != NULL && getpwnam(user) == NULL)
		return conf_errorf(c, CONF_SERVER_USER,
		    "%s: no such user (create it, or remove the key)", user);
	return NULL;
}

/* [dkim]: the three keys go together, and the key must load. */
static char *
check_dkim(const struct conf *c, bool reload)
{
	static const enum conf_key keys[] = { CONF_DKIM_DOMAIN,
		CONF_DKIM_SELECTOR, CONF_DKIM_KEY_FILE };
	struct dkim_signer *s;
	char missing[64] = "", *err = NULL, *msg;
	size_t i, nset = 0;
	enum conf_key first = CONF_DKIM_SIGN_OUTBOUND;

	for (i = 0; i < 3; i++) {
		if (conf_str(c, keys[i]) == NULL) {
			snprintf(missing + strlen(missing),
			    sizeof(missing) - strlen(missing), "%s%s",
			    missing[0] != '\0' ? " and " : "",
			    conf_key_name(keys[i]));
		} else if (nset++ == 0)
			first = keys[i];
	}
	if (nset == 0)
		return conf_bool(c, CONF_DKIM_SIGN_OUTBOUND) ?
		    conf_errorf(c, CONF_DKIM_SIGN_OUTBOUND,
		        "signing needs [dkim] domain, selector and key_file") :
		    NULL;
	if (nset < 3)
		return conf_errorf(c, first,
		    "domain, selector and key_file go together: set %s too",
		    missing);
	/* On SIGHUP the key is loaded by relay_reload, which keeps the old
	 * signer when it cannot (the file may be readable by root only):
	 * not a reason to refuse the rest. */
	if (reload)
		return NULL;
	if ((msg = check_file(c, CONF_DKIM_KEY_FILE)) != NULL)
		return msg;
	if ((s = relay_dkim_signer(c, &err)) == NULL) {
		msg = conf_errorf(c, CONF_DKIM_KEY_FILE, "%s",
		    strncmp(err, "[dkim] ", 7) == 0 ? err + 7 : err);
		free(err);
		return msg;
	}
	dkim_signer_free(s);
	return NULL;
}

/*
 * [admin]: the console. Off the loopback it is reachable by others, so it
 * needs TLS and a login (docs/CONSOLE.md, security model).
 */
static char *
check_admin(const struct conf *c)
{
	const char *listen = conf_str(c, CONF_ADMIN_LISTEN);
	struct sockaddr_storage ss;
	int sslen = (int)sizeof(ss);
	struct server_auth *auth;
	char *err, *msg;

	if (listen == NULL)
		return NULL;
	if (evutil_parse_sockaddr_port(
	        listen, (struct sockaddr *)&ss, &sslen) == -1)
		return conf_errorf(c, CONF_ADMIN_LISTEN,
		    "%s: expected an IP address and a port, ADDR:PORT or "
		    "[ADDR]:PORT",
		    listen);
	if (!console_addr_loopback((struct sockaddr *)&ss) &&
	    (conf_str(c, CONF_ADMIN_TLS_CERT) == NULL ||
	        conf_str(c, CONF_ADMIN_AUTH_FILE) == NULL))
		return conf_errorf(c, CONF_ADMIN_LISTEN,
		    "%s is not a loopback address: the console needs [admin] "
		    "tls_cert, tls_key and auth_file there",
		    listen);
	if ((msg = check_tls_pair(
	         c, CONF_ADMIN_TLS_CERT, CONF_ADMIN_TLS_KEY)) != NULL ||
	    (msg = check_file(c, CONF_ADMIN_AUTH_FILE)) != NULL)
		return msg;
	if ((msg = check_file(c, CONF_ADMIN_CHART_JS)) != NULL) {
		err = xasprintf("%s; Debian ships Chart.js in the package "
		                "libjs-chart.js",
		    msg);
		free(msg);
		return err;
	}
	if (conf_str(c, CONF_ADMIN_AUTH_FILE) == NULL)
		return NULL;
	if ((auth = server_auth_load(
	         conf_str(c, CONF_ADMIN_AUTH_FILE), &err)) == NULL) {
		msg = conf_errorf(c, CONF_ADMIN_AUTH_FILE, "%s", err);
		free(err);
		return msg;
	}
	server_auth_free(auth);
	return NULL;
}

/* [mta_sts] ca_file loads as serve loads it; [tlsrpt] ca_file is there. */
static char *
check_ca_files(const struct conf *c)
{
	const char *ca = conf_str(c, CONF_MTA_STS_CA_FILE), *terr = NULL;
	char *msg;
	SSL_CTX *ctx;
	int rc;

	if ((msg = check_file(c, CONF_TLSRPT_CA_FILE)) != NULL)
		return msg;
	if (!conf_bool(c, CONF_MTA_STS_ENABLED) || ca == NULL)
		return NULL;
	if ((msg = check_file(c, CONF_MTA_STS_CA_FILE)) != NULL)
		return msg;
	if ((ctx = tls_client_ctx_new(
	         conf_list(c, CONF_DANE_DIGESTS), &terr)) == NULL)
		return xasprintf("client TLS: %s", terr);
	rc = tls_client_ctx_load_ca(ctx, ca, &terr);
	SSL_CTX_free(ctx);
	return rc == -1 ?
	    conf_errorf(c, CONF_MTA_STS_CA_FILE, "%s: %s", ca, terr) :
	    NULL;
}

/*
 * [queue] store = postgres needs the database; the connection string
 * itself is libpq's to judge (PQconninfoParse: a typo is named now, not
 * at the first connect). The database may be down at check time: serve
 * with store = sqlite starts anyway, store = postgres fails at start.
 */
static char *
check_fleet(const struct conf *c)
{
	const char *conninfo = conf_str(c, CONF_FLEET_POSTGRES);
	const char *store = conf_str(c, CONF_QUEUE_STORE);
	PQconninfoOption *opts;
	char *perr = NULL, *msg;

	if (conninfo == NULL)
		return strcmp(store, "postgres") == 0 ?
		    conf_errorf(c, CONF_QUEUE_STORE,
		        "postgres needs [fleet] postgres") :
		    NULL;
	if ((opts = PQconninfoParse(conninfo, &perr)) == NULL) {
		msg = conf_errorf(c, CONF_FLEET_POSTGRES, "%s",
		    perr != NULL ? perr : "cannot parse");
		if (msg != NULL)
			msg[strcspn(msg, "\n")] = '\0';
		PQfreemem(perr);
		return msg;
	}
	PQconninfoFree(opts);
	return NULL;
}

int
relay_check_config(const struct conf *c, bool reload, char **errstr)
{
	char *msg = NULL;

	/* The restart-only parts are not looked at again on SIGHUP: they
	 * are not applied, and the files they name may be readable by root
	 * only (read at start, before privileges are dropped). */
	if ((msg = check_server(c, reload)) != NULL ||
	    (msg = check_dkim(c, reload)) != NULL ||
	    (!reload && (msg = check_dns(c)) != NULL) ||
	    (!reload && (msg = check_queue_dir(c)) != NULL) ||
	    (!reload && (msg = check_ca_files(c)) != NULL) ||
	    (!reload && (msg = check_admin(c)) != NULL) ||
	    (!reload && (msg = check_fleet(c)) != NULL)) {
		*errstr = msg;
		return -1;
	}
	/* Root without [server] user, loose modes on the queue and keys:
	 * serve refuses them, so check-config does too (relay_local). */
	return reload ? 0 : relay_local_check(c, errstr);
}
