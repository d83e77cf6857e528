/*
 * tls_guard: the inbound DANE guard. Before the relay serves a certificate
 * (at start and on reload), it checks that the TLSA records published for
 * its own MX name would authenticate that certificate chain the way a DANE
 * client does (RFC 7672 §3.1), and if not, says which records to publish.
 * A relay whose certificate no longer matches its TLSA records makes every
 * DANE sender defer mail to it (4.7.323), silently, until someone looks;
 * this is the someone.
 *
 * Pure computation with OpenSSL digests: no DNS here. The caller looked up
 * the TLSA RRset and knows it is secure.
 */
#ifndef DR_TLS_GUARD_H
#define DR_TLS_GUARD_H

#include <stddef.h>

#include <openssl/x509.h>

#include "tls/tls_client.h"

/*
 * Does chain (leaf first, then the certificates the server sends; borrowed)
 * match at least one usable record of recs (n records, borrowed)?
 *  - usable: DANE-TA(2) or DANE-EE(3) (RFC 7672 §3.1.3), selector Cert(0)
 *    or SPKI(1), matching type Full(0) with data, SHA2-256(1) of 32 octets
 *    or SHA2-512(2) of 64;
 *  - digest agility (RFC 7671 §9), as OpenSSL clients apply it: for a
 *    usage and selector that has usable SHA2-512 records, its SHA2-256
 *    records are ignored; Full(0) records always count;
 *  - DANE-EE matches the leaf; DANE-TA matches a certificate above the
 *    leaf, or, for a bare key ("2 1 0"), the key that signed the top one.
 * The names and dates a DANE-TA client also checks (RFC 7672 §3.2) are not
 * checked here: `danerelay check` does a real handshake for that.
 *
 * owner is the TLSA owner name ("_25._tcp.mx.example.com", trailing dot
 * optional), or NULL for "_25._tcp." + the leaf's first DNS name.
 * When suggest is not NULL it receives NULL on a match, else a new string
 * (caller frees) of the records to publish, one per line in the format of
 * `danerelay tlsa` ("_25._tcp.mx.example.com. IN TLSA 3 1 1 <hex>"): one
 * for each usage/selector/matching type the RRset already uses, made from
 * this chain, or "3 1 1" of the leaf (RFC 7672 §3.1.1) when it uses none
 * that can be made.
 * Returns 1 (match), 0 (no match), or -1 when chain is empty or a
 * certificate cannot be encoded (*suggest NULL).
 */
int tls_guard_match(STACK_OF(X509) *chain, const struct tls_tlsa *recs,
    size_t n, const char *owner, char **suggest);

/*
 * tls_guard_match() on the certificates of the PEM file at path. -1 with
 * *errstr (static) when the file cannot be read or holds no certificate.
 */
int tls_guard_match_file(const char *path, const struct tls_tlsa *recs,
    size_t n, const char *owner, char **suggest, const char **errstr);

#endif
