/*
 * dane_tlsa: one TLSA RRset and which of its records are usable for SMTP.
 *
 * RFC 6698 §4.1 defines "usable"; RFC 7672 §3.1 narrows it for SMTP:
 * only DANE-TA(2) and DANE-EE(3) are usable (§3.1.3: PKIX-TA/EE are treated
 * as unusable), selectors Cert(0)/SPKI(1), matching types Full(0) and the
 * digests enabled in `[dane] digests` (RFC 7671 §9). A record whose data
 * cannot be what its parameters say (a SHA2-256 of 31 bytes, a Full(0) that
 * is not DER) is malformed, hence unusable.
 */
#ifndef DR_DANE_TLSA_H
#define DR_DANE_TLSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/tls_client.h"

struct dns_answer;
struct dane_tlsa;

/*
 * Build from a secure TLSA answer (borrowed only during the call).
 * digests: enabled digest names, most preferred first ("sha512", "sha256").
 * Returns new; caller frees with dane_tlsa_free.
 */
struct dane_tlsa *dane_tlsa_new(const struct dns_answer *a, char **digests);
void dane_tlsa_free(struct dane_tlsa *t);

size_t dane_tlsa_count(const struct dane_tlsa *t);
size_t dane_tlsa_usable_count(const struct dane_tlsa *t);

/* Record i as an OpenSSL-ready view (borrowed, valid until free). */
const struct tls_tlsa *dane_tlsa_rec(const struct dane_tlsa *t, size_t i);
bool dane_tlsa_usable(const struct dane_tlsa *t, size_t i);
/* Why record i is unusable ("PKIX-TA(0): not used by SMTP, RFC 7672 §3.1.3");
 * NULL if usable. */
const char *dane_tlsa_why(const struct dane_tlsa *t, size_t i);
/* Presentation of record i: "3 1 1 ab12..." into a new string. */
char *dane_tlsa_str(const struct dane_tlsa *t, size_t i);

/* The usable records, for tls_dane_setup(); *n receives the count. Borrowed. */
const struct tls_tlsa *dane_tlsa_usable_recs(
    const struct dane_tlsa *t, size_t *n);

/* Short name of a usage, selector or mtype: "DANE-EE", "SPKI", "SHA2-256". */
const char *dane_usage_str(uint8_t usage);
const char *dane_selector_str(uint8_t selector);
const char *dane_mtype_str(uint8_t mtype);

#endif
