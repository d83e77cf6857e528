/*
 * dns_setup: what danerelay asks of libunbound.
 *
 * By default libunbound iterates from the real root with the IANA root
 * trust anchors compiled in below, so that validation never depends on a
 * file that may be missing or stale on the host. Labs and tests point
 * root_servers at a private signed tree with its own trust anchor file;
 * sites that must use a recursive resolver list forwarders (libunbound still
 * validates itself, RFC 7672 §2.1.1: an upstream AD bit is never trusted).
 */
#include "dns/dns_setup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unbound.h>

#include "core/str.h"
#include "core/xmalloc.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * IANA root zone KSKs as DS records: KSK-2017 (tag 20326) and KSK-2024
 * (tag 38696), from https://data.iana.org/root-anchors/root-anchors.xml
 * (identical to Debian's dns-root-data /usr/share/dns/root.ds).
 */
static const char *const root_anchors[] = {
	". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
	". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
};

/*
 * libunbound 1.17's built-in local zones (services/localzone.c,
 * local_zone_enter_defaults(), and util/as112.c): RFC 6761/6303/7686/8375
 * special-use and AS112 names it answers itself. On a private tree any of
 * them may be real. The 172.16/12 and 100.64/10 reverse zones are generated
 * in setup_drop_ranges().
 *
 * They are removed from the finalized context rather than configured with
 * "local-zone: NAME nodefault": through ub_ctx_set_option() libunbound 1.17
 * records the whole "NAME nodefault" string as the zone name, so the
 * option is silently ignored.
 */
static const char *const special_zones[] = {
	"localhost.",
	"127.in-addr.arpa.",
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
	"home.arpa.",
	"onion.",
	"test.",
	"invalid.",
	"10.in-addr.arpa.",
	"168.192.in-addr.arpa.",
	"0.in-addr.arpa.",
	"254.169.in-addr.arpa.",
	"2.0.192.in-addr.arpa.",
	"100.51.198.in-addr.arpa.",
	"113.0.203.in-addr.arpa.",
	"255.255.255.255.in-addr.arpa.",
	"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
	"d.f.ip6.arpa.",
	"8.e.f.ip6.arpa.",
	"9.e.f.ip6.arpa.",
	"a.e.f.ip6.arpa.",
	"b.e.f.ip6.arpa.",
	"8.b.d.0.1.0.0.2.ip6.arpa.",
};

int
dns_setup_server(const char *s, uint16_t *port)
{
	const char *at = strchr(s, '@');
	size_t n = at != NULL ? (size_t)(at - s) : strlen(s);
	char addr[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	uint64_t v = 53;

	if (n == 0 || n >= sizeof(addr))
		return -1;
	memcpy(addr, s, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, bin) != 1 &&
	    inet_pton(AF_INET6, addr, bin) != 1)
		return -1;
	if (at != NULL && str_to_uint(at + 1, 1, 65535, &v) == -1)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static bool
setup_list_set(char **v)
{
	return v != NULL && v[0] != NULL;
}

static int
setup_option(
    struct ub_ctx *ctx, const char *opt, const char *val, char **errstr)
{
	int rc = ub_ctx_set_option(ctx, opt, val);

	if (rc != 0) {
		*errstr = xasprintf(
		    "libunbound option %s %s: %s", opt, val, ub_strerror(rc));
		return -1;
	}
	return 0;
}

static int
setup_drop(struct ub_ctx *ctx, const char *zone, char **errstr)
{
	int rc = ub_ctx_zone_remove(ctx, zone);

	if (rc != 0) {
		*errstr = xasprintf(
		    "cannot remove local zone %s: %s", zone, ub_strerror(rc));
		return -1;
	}
	return 0;
}

static int
setup_drop_ranges(struct ub_ctx *ctx, char **errstr)
{
	char zone[64];

	for (int i = 16; i <= 31; i++) {
		snprintf(zone, sizeof(zone), "%d.172.in-addr.arpa.", i);
		if (setup_drop(ctx, zone, errstr) == -1)
			return -1;
	}
	for (int i = 64; i <= 127; i++) {
		snprintf(zone, sizeof(zone), "%d.100.in-addr.arpa.", i);
		if (setup_drop(ctx, zone, errstr) == -1)
			return -1;
	}
	return 0;
}

int
dns_setup_finish(
    struct ub_ctx *ctx, const struct dns_options *opt, char **errstr)
{
	if (!setup_list_set(opt->root_servers))
		return 0;
	/* A private root: no special-use zone may shadow its names. */
	for (size_t i = 0; i < NITEMS(special_zones); i++)
		if (setup_drop(ctx, special_zones[i], errstr) == -1)
			return -1;
	return setup_drop_ranges(ctx, errstr);
}

/*
 * A private root may have its servers on loopback, and QNAME minimisation
 * (RFC 9156) only adds queries that a lab server may answer oddly.
 */
static int
setup_private_tree(struct ub_ctx *ctx, char **errstr)
{
	if (setup_option(ctx, "do-not-query-localhost:", "no", errstr) == -1 ||
	    setup_option(ctx, "qname-minimisation:", "no", errstr) == -1)
		return -1;
	return 0;
}

static int
setup_check_servers(char **v, const char *what, bool *all53, char **errstr)
{
	uint16_t port;

	*all53 = true;
	for (size_t i = 0; v[i] != NULL; i++) {
		if (dns_setup_server(v[i], &port) == -1) {
			*errstr = xasprintf("bad %s address \"%s\": %s", what,
			    v[i],
			    "expected an IP address with an optional @PORT");
			return -1;
		}
		if (port != 53)
			*all53 = false;
	}
	return 0;
}

static int
setup_add(struct ub_ctx *ctx, const char *s, bool stub, char **errstr)
{
	int rc =
	    stub ? ub_ctx_set_stub(ctx, ".", s, 0) : ub_ctx_set_fwd(ctx, s);

	if (rc != 0) {
		*errstr = xasprintf("libunbound rejected server \"%s\": %s", s,
		    ub_strerror(rc));
		return -1;
	}
	return 0;
}

/*
 * Delegations carry addresses, never ports, so iteration from a root on
 * another port would query the children on port 53. Then the only option
 * is to forward everything to the given servers, which must serve the whole
 * tree (dns.h).
 */
static int
setup_root_servers(struct ub_ctx *ctx, char **v, char **errstr)
{
	bool all53;

	if (setup_check_servers(v, "root server", &all53, errstr) == -1)
		return -1;
	for (size_t i = 0; v[i] != NULL; i++)
		if (setup_add(ctx, v[i], all53, errstr) == -1)
			return -1;
	return setup_private_tree(ctx, errstr);
}

static int
setup_forwarders(struct ub_ctx *ctx, char **v, char **errstr)
{
	bool all53;

	if (setup_check_servers(v, "forwarder", &all53, errstr) == -1)
		return -1;
	for (size_t i = 0; v[i] != NULL; i++)
		if (setup_add(ctx, v[i], false, errstr) == -1)
			return -1;
	/* A local recursive resolver (127.0.0.1, ::1) is a normal choice. */
	return setup_option(ctx, "do-not-query-localhost:", "no", errstr);
}

static int
setup_anchors_builtin(struct ub_ctx *ctx, char **errstr)
{
	int rc;

	for (size_t i = 0; i < NITEMS(root_anchors); i++) {
		if ((rc = ub_ctx_add_ta(ctx, root_anchors[i])) != 0) {
			*errstr = xasprintf(
			    "cannot set the root anchors: %s", ub_strerror(rc));
			return -1;
		}
	}
	return 0;
}

static int
setup_anchors(struct ub_ctx *ctx, const char *file, char **errstr)
{
	FILE *f;
	int rc;

	if (file == NULL)
		return setup_anchors_builtin(ctx, errstr);
	/* libunbound reads the file only when the context is finalized. */
	if ((f = fopen(file, "r")) == NULL) {
		*errstr = xasprintf("cannot read trust anchor file %s: %s",
		    file, strerror(errno));
		return -1;
	}
	fclose(f);
	if ((rc = ub_ctx_add_ta_file(ctx, file)) != 0) {
		*errstr = xasprintf(
		    "trust anchor file %s: %s", file, ub_strerror(rc));
		return -1;
	}
	return 0;
}

int
dns_setup_apply(
    struct ub_ctx *ctx, const struct dns_options *opt, char **errstr)
{
	bool roots = setup_list_set(opt->root_servers);
	bool fwds = setup_list_set(opt->forwarders);

	if (roots && fwds) {
		*errstr = xstrdup(
		    "root_servers and forwarders cannot both "
		    "be set: use root_servers for a private tree, forwarders "
		    "for a recursive resolver");
		return -1;
	}
	if (setup_anchors(ctx, opt->trust_anchor_file, errstr) == -1)
		return -1;
	/*
	 * One thread uses the caches: one slab each instead of four, whose
	 * empty hash arrays alone take a few hundred KiB each
	 * (docs/PERFORMANCE.md, memory).
	 */
	if (setup_option(ctx, "msg-cache-slabs:", "1", errstr) == -1 ||
	    setup_option(ctx, "rrset-cache-slabs:", "1", errstr) == -1 ||
	    setup_option(ctx, "key-cache-slabs:", "1", errstr) == -1 ||
	    setup_option(ctx, "infra-cache-slabs:", "1", errstr) == -1)
		return -1;
	if (roots)
		return setup_root_servers(ctx, opt->root_servers, errstr);
	if (fwds)
		return setup_forwarders(ctx, opt->forwarders, errstr);
	return 0;
}
