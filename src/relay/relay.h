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

struct event_base;
struct relay;

/*
 * Load config_path (NULL: defaults), check the resolver (root DNSKEY must
 * validate), open the queue, run the DANE guard, bind the listeners, drop
 * privileges ([server] user, when root), start delivering. Returns new, or
 * NULL with *errstr (new string) and a sysexits code in *ex.
 */
struct relay *relay_new(
    struct event_base *base, const char *config_path, char **errstr, int *ex);

/*
 * SIGHUP: read the configuration again and apply it; a new certificate
 * that fails the DANE guard is refused and the old one kept. Returns 0, or
 * -1 with *errstr (new string) and nothing changed.
 */
int relay_reload(struct relay *r, char **errstr);

/* SIGTERM: stop accepting, let sessions and attempts finish, then done. */
void relay_shutdown(struct relay *r, void (*done)(void *arg), void *arg);

void relay_free(struct relay *r);

#endif
