/*
 * check_conf: what a check takes from the relay's configuration: the
 * delivery parameters, a validating resolver from [dns], the resolver
 * facts shown in every report, and MTA-STS when [mta_sts] is on. `danerelay
 * check` and the console's /check both build their runs here, so that the
 * analyzer in a browser tests exactly what the command tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check/check.h"
#include "conf/conf.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "sts/sts.h"
#include "tls/tls_client.h"

void
check_conf_opts(struct check_opts *o, const struct conf *c, int port,
    char helo[CHECK_HELO_LEN])
{
	o->port = (uint16_t)(port > 0 ? port : conf_int(c, CONF_DELIVERY_PORT));
	o->digests = conf_list(c, CONF_DANE_DIGESTS);
	o->helo_name = conf_str(c, CONF_DELIVERY_HELO_NAME);
	if (o->helo_name == NULL) {
		if (gethostname(helo, CHECK_HELO_LEN) == -1 || helo[0] == '\0')
			snprintf(helo, CHECK_HELO_LEN, "localhost");
		helo[CHECK_HELO_LEN - 1] = '\0';
		o->helo_name = helo;
	}
	o->connect_timeout_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_CONNECT_TIMEOUT) * 1000;
	o->greeting_timeout_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_GREETING_TIMEOUT) * 1000;
	o->command_timeout_ms =
	    (unsigned)conf_int(c, CONF_DELIVERY_COMMAND_TIMEOUT) * 1000;
}

struct dns_resolver *
check_conf_resolver(struct event_base *base, const struct conf *c, char **err)
{
	struct dns_options o = { 0 };

	o.trust_anchor_file = conf_str(c, CONF_DNS_TRUST_ANCHOR_FILE);
	o.root_servers = conf_list(c, CONF_DNS_ROOT_SERVERS);
	o.forwarders = conf_list(c, CONF_DNS_FORWARDERS);
	o.timeout_ms = (unsigned)conf_int(c, CONF_DNS_TIMEOUT) * 1000;
	if (o.root_servers[0] == NULL)
		o.root_servers = NULL;
	if (o.forwarders[0] == NULL)
		o.forwarders = NULL;
	return dns_resolver_new(base, &o, err);
}

char *
check_conf_info(struct check_resolver_info *ri, const struct conf *c)
{
	char **roots = conf_list(c, CONF_DNS_ROOT_SERVERS);
	char **fwd = conf_list(c, CONF_DNS_FORWARDERS), **list;
	struct buf b;
	char *upstream;
	size_t i;

	buf_init(&b, 4096);
	if (roots[0] != NULL)
		buf_adds(&b, "private root servers");
	else if (fwd[0] != NULL)
		buf_adds(&b, "forwarders");
	else
		buf_adds(&b, "full recursion from the real root servers");
	list = roots[0] != NULL ? roots : fwd;
	for (i = 0; list[i] != NULL; i++)
		buf_printf(&b, " %s", list[i]);
	ri->selftest_error = NULL;
	ri->trust_anchor = conf_str(c, CONF_DNS_TRUST_ANCHOR_FILE) != NULL ?
	    conf_str(c, CONF_DNS_TRUST_ANCHOR_FILE) :
	    "built-in (IANA root KSK-2017 20326, KSK-2024 38696)";
	upstream = buf_steal(&b);
	ri->upstream = upstream;
	return upstream;
}

/* RFC 8461 §4.2: PKIX trust anchors for the MX certificates. */
int
check_conf_ca(const struct conf *c, SSL_CTX *ctx, char **err)
{
	const char *terr;

	if (!conf_bool(c, CONF_MTA_STS_ENABLED))
		return 0;
	if (tls_client_ctx_load_ca(
	        ctx, conf_str(c, CONF_MTA_STS_CA_FILE), &terr) == -1) {
		*err = xasprintf("[mta_sts] ca_file: %s", terr);
		return -1;
	}
	return 0;
}

/*
 * An engine whose cache lives only as long as the engine, so that every
 * check fetches the policy afresh.
 */
int
check_conf_sts(const struct conf *c, struct event_base *base,
    struct dns_resolver *r, struct sts **out, char **err)
{
	struct sts_options so = { 0 };
	char *e = NULL;

	*out = NULL;
	if (!conf_bool(c, CONF_MTA_STS_ENABLED))
		return 0;
	so.cache_path = ":memory:";
	so.ca_file = conf_str(c, CONF_MTA_STS_CA_FILE);
	so.https_port = (unsigned)conf_int(c, CONF_MTA_STS_HTTPS_PORT);
	so.fetch_timeout_ms =
	    (unsigned)conf_int(c, CONF_MTA_STS_FETCH_TIMEOUT) * 1000;
	if ((*out = sts_new(base, r, &so, &e)) == NULL) {
		*err = xasprintf("MTA-STS: %s", e);
		free(e);
		return -1;
	}
	return 0;
}
