/*
 * dns_answer: how answers are made. The accessors are in dns.h; these
 * constructors are internal to the dns module (and its unit tests, which
 * feed hand-built packets through the same classification as live answers).
 */
#ifndef DR_DNS_ANSWER_H
#define DR_DNS_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "dns/dns.h"

/*
 * Classify what libunbound's ub_resolve_event() callback delivered for
 * qname/qtype (qname as given to dns_query, normalized): err is its rcode
 * argument (nonzero: no usable packet), pkt/len the answer packet, sec
 * 0 insecure / 1 bogus / 2 secure, why_bogus its text or NULL. Copies what
 * it keeps. Returns new, caller frees with dns_answer_free().
 */
struct dns_answer *dns_answer_new_unbound(const char *qname, uint16_t qtype,
    int err, const void *pkt, int len, int sec, const char *why_bogus);

/*
 * Whether libunbound's callback arguments (err = its rcode argument, sec)
 * that came elapsed_ms after the query was sent mean that no server
 * answered. libunbound 1.17 reports servers that never answer as SERVFAIL
 * with no reason, exactly like a SERVFAIL answer from upstream; only the
 * time tells them apart: an upstream SERVFAIL comes within a few round
 * trips, giving up on silent servers takes seconds of retransmissions
 * (DNS_SLOW_SERVFAIL_MS or more).
 */
#define DNS_SLOW_SERVFAIL_MS 3000
bool dns_answer_servfail_timeout(int err, int sec, long elapsed_ms);

/*
 * An answer without a packet: a timeout, a refused name, a libunbound
 * error. st must not be DNS_OK; text is the human reason (copied).
 * Returns new, caller frees with dns_answer_free().
 */
struct dns_answer *dns_answer_new_error(
    const char *qname, uint16_t qtype, enum dns_status st, const char *text);

#endif
