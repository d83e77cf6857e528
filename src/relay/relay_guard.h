/*
 * relay_guard: the inbound DANE guard. When [server] hostname publishes
 * secure TLSA records for a port we listen on, the certificate chain we are
 * about to serve must match one of them (the way a DANE client checks it);
 * otherwise every DANE-enforcing sender would refuse us. The check runs at
 * start and on every reload, before the certificate is put in service.
 */
#ifndef DR_RELAY_GUARD_H
#define DR_RELAY_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

struct buf;
struct dns_answer;
struct event_base;
struct dns_resolver;

/*
 * Look up _PORT._tcp.HOSTNAME TLSA for each port (running base's loop until
 * answered) and check cert_file against the secure usable records.
 * Returns 1 when the chain matches, 0 when no secure TLSA is published (a
 * note is put in *msg), -1 when it matches none (*msg says which record
 * to publish first) or the lookup failed. *msg is new (caller frees) or NULL.
 */
int relay_guard_check(struct event_base *base, struct dns_resolver *r,
    const char *hostname, const uint16_t *ports, size_t nports,
    const char *cert_file, char **digests, char **msg);

/*
 * One port's decision from its TLSA answer a (borrowed), without I/O:
 * 1 = chain matches a secure usable record, 0 = nothing to check (the
 * lookup failed, the answer is not secure or has no usable record),
 * -1 = it matches none (msg then names the record to publish first, made
 * for qname). Appends one sentence for the log to msg.
 */
int relay_guard_judge(const struct dns_answer *a, const char *qname,
    STACK_OF(X509) *chain, char **digests, struct buf *msg);

#endif
