/*
 * relay: the daemon of `danerelay serve`: builds the resolver, the queue,
 * the inbound server and the delivery engine from the configuration, drops
 * privileges, reloads on SIGHUP and stops cleanly on SIGTERM. It also runs
 * the inbound DANE guard (relay_guard.c): the certificate we serve must
 * match our own secure TLSA records, or a renewal would break DANE for
 * every sender.
 */
#ifndef DR_RELAY_H
#define DR_RELAY_H

#include <stdbool.h>
#include <stddef.h>

struct conf;
struct dns_options;
struct dns_resolver;
struct event_base;
struct relay;

/*
 * relay_check.c: everything `serve` would refuse in c, without side
 * effects (nothing bound, created or resolved): listen and relay_networks
 * syntax, the files that must be there and readable (TLS certificate and
 * key, auth_file, DKIM key, trust anchors, CA bundles), TLS and DKIM keys
 * that must load, [dkim] complete, the [server] user, the queue
 * directory. `serve` and `check-config` run it first; a reload (reload
 * true) skips the restart-only keys and leaves the DKIM key to
 * relay_reload(). Returns 0, or -1 with *errstr (new)
 * "FILE:LINE: [section] key: what to fix".
 */
int relay_check_config(const struct conf *c, bool reload, char **errstr);

/* The resolver options of [dns] (strings borrowed from c). */
void relay_dns_options(const struct conf *c, struct dns_options *o);

/*
 * The resolver of [dns] on base, self-tested at once: the root DNSKEY
 * RRset must validate, or every DANE domain would look bogus. Returns new,
 * or NULL with *errstr (new). For one-shot commands that need the relay's
 * DNS view; serve tests in the background instead (relay_dns.h).
 */
struct dns_resolver *relay_resolver_new(
    const struct conf *c, struct event_base *base, char **errstr);

/* Our host name: [server] hostname, else the system's, into out. */
void relay_hostname_of(const struct conf *c, char *out, size_t len);

/*
 * Load config_path (NULL: defaults), set up the resolver (its DNSSEC
 * self-test runs in the background, relay_dns.h: deliveries wait for it,
 * mail is accepted meanwhile), open the queue, run the DANE guard, bind
 * the listeners, drop privileges ([server] user, when root), start
 * delivering. Returns new, or
 * NULL with *errstr (new string) and a sysexits code in *ex.
 */
struct relay *relay_new(
    struct event_base *base, const char *config_path, char **errstr, int *ex);

/*
 * SIGHUP: read the configuration again and apply it. A file that does not
 * pass relay_check_config(), or a new certificate that fails the DANE
 * guard, is refused whole: nothing changes. Otherwise every key declared
 * CONF_RELOAD (conf_keys.c) is applied fully; [dkim] domain, selector and
 * key_file as one set (a key that cannot be loaded keeps the old set, with
 * a warning); a changed restart-only key is named in a warning
 * ("KEY changed: needs a restart; still using OLD"). Returns 0, or -1 with
 * *errstr (new string) and nothing changed.
 */
int relay_reload(struct relay *r, char **errstr);

/* SIGTERM: stop accepting, let sessions and attempts finish, then done. */
void relay_shutdown(struct relay *r, void (*done)(void *arg), void *arg);

void relay_free(struct relay *r);

#endif
