/*
 * relay_dns: the daemon's view of its resolver. `serve` starts whether or
 * not DNS works, so that mail is accepted and queued during an outage; the
 * DNSSEC validation self-test (root DNSKEY must be secure) runs at start
 * and again every RELAY_DNS_RETRY seconds while it fails. Until it passes
 * deliveries are held (first test) or deferred with 4.4.3; when it passes,
 * what was deferred meanwhile is made due and the scheduler woken.
 */
#ifndef DR_RELAY_DNS_H
#define DR_RELAY_DNS_H

#include <stddef.h>

struct deliver;
struct dns_answer;
struct dns_resolver;
struct event_base;
struct queue;
struct relay_dns;

/* Seconds between self-tests while DNS is unusable. */
#define RELAY_DNS_RETRY 5

/*
 * Start the self-test on res and tell d its outcome (all borrowed for
 * the object's life). Returns new, caller frees with relay_dns_free().
 */
struct relay_dns *relay_dns_new(struct event_base *base,
    struct dns_resolver *res, struct deliver *d, struct queue *q);

/*
 * A lookup failed without a validation failure (deliver_config
 * on_dns_error): run the self-test again, at most once per retry period.
 */
void relay_dns_trouble(struct relay_dns *rd);

/*
 * Why the self-test answer a failed, for the log and the 4.4.3 deferrals,
 * into out: "resolver unreachable (timeout): ...", "resolver failing
 * (SERVFAIL): ..." or "DNSSEC validation fails: ...". Returns 1 when a is
 * a secure root DNSKEY answer (out untouched), else 0.
 */
int relay_dns_explain(const struct dns_answer *a, char *out, size_t outlen);

void relay_dns_free(struct relay_dns *rd); /* NULL is fine */

#endif
