/*
 * dns_setup: turn struct dns_options into libunbound configuration.
 * Internal to the dns module; dns_resolver_new() is the public entry.
 */
#ifndef DR_DNS_SETUP_H
#define DR_DNS_SETUP_H

#include <stdint.h>

#include "dns/dns.h"

struct ub_ctx;

/*
 * Parse "ADDR[@PORT]" (IPv4 or IPv6 literal, port 1-65535, default 53).
 * Returns 0 and *port, or -1.
 */
int dns_setup_server(const char *s, uint16_t *port);

/*
 * Configure a fresh, not yet finalized context from opt: trust anchors,
 * root servers or forwarders and the options they imply. Returns 0, or -1
 * with *errstr (new, caller frees).
 */
int dns_setup_apply(
    struct ub_ctx *ctx, const struct dns_options *opt, char **errstr);

/*
 * Complete the setup on the finalized context (after the first
 * ub_ctx_zone_remove() or query): with root_servers, drop libunbound's
 * built-in special-use local zones. Returns 0, or -1 with *errstr (new).
 */
int dns_setup_finish(
    struct ub_ctx *ctx, const struct dns_options *opt, char **errstr);

#endif
