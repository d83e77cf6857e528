/*
 * dkim: a DKIM signer (RFC 6376) for the mail danerelay writes itself,
 * above all TLS reports, which RFC 8460 §3 says receivers MUST ignore
 * unless they carry a valid DKIM signature of the reporting domain.
 *
 * One algorithm per key, chosen from the key: an RSA key (at least 1024
 * bits, RFC 8301 §3.2) signs rsa-sha256, an Ed25519 key ed25519-sha256
 * (RFC 8463). Canonicalization is relaxed/relaxed (§3.4.2, §3.4.4), the
 * body hash covers the whole body: there is never an l= tag, which
 * RFC 8460 §3 forbids. h= lists every instance of the usual fields that
 * are present (From, Reply-To, Subject, Date, To, Cc, In-Reply-To,
 * References, Message-ID, MIME-Version, Content-Type, TLS-Report-Domain,
 * TLS-Report-Submitter) plus one more "from" than there are From fields,
 * so that a From field added later breaks the signature (§8.15).
 *
 * The message is taken in the form it is sent in: a line ends at LF, and a
 * bare LF counts as CRLF because the SMTP client sends it so
 * (smtp_client.c), as it ends an unterminated last line. All signing is
 * done by OpenSSL (EVP_DigestSign); nothing here is cryptography.
 */
#ifndef DR_DKIM_H
#define DR_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;
struct dkim_signer;

/* Smallest RSA key accepted, in bits (RFC 8301 §3.2). */
#define DKIM_RSA_MIN_BITS 1024

/*
 * A signer for domain (d=) and selector (s=) with the PEM private key in
 * key_file (PKCS#8 or traditional RSA; RSA of at least DKIM_RSA_MIN_BITS,
 * or Ed25519). domain and selector must be host names (letters, digits,
 * '-', '_', dots between labels). Returns new (dkim_signer_free), or NULL
 * with *errstr a new message naming the problem (caller frees).
 */
struct dkim_signer *dkim_signer_new(const char *domain, const char *selector,
    const char *key_file, char **errstr);

/* Free s; NULL is fine. */
void dkim_signer_free(struct dkim_signer *s);

/* "rsa-sha256" or "ed25519-sha256", the a= tag of s. Static. */
const char *dkim_signer_algorithm(const struct dkim_signer *s);

/*
 * Sign the message msg (len octets: header section, empty line, body) at
 * time now (the t= tag). Returns the complete "DKIM-Signature: ..." field,
 * folded in lines of at most 78 octets, ending in CRLF, to be put in front
 * of the message unchanged. Returns new (caller frees), or NULL when the
 * message cannot be signed: not exactly one From field, a line in the
 * header section that is neither a field nor a continuation, or a signing
 * error in OpenSSL.
 */
char *dkim_sign(
    const struct dkim_signer *s, const uint8_t *msg, size_t len, time_t now);

/*
 * Whether s should sign msg for `[dkim] sign_outbound`: it has exactly one
 * From field naming one address whose domain is the signer's domain or
 * below it (the relaxed alignment of DMARC, RFC 7489 §3.1.1).
 */
bool dkim_signs_for(
    const struct dkim_signer *s, const uint8_t *msg, size_t len);

/*
 * The DNS record to publish for s, as one zone-file line without a line
 * end: `selector._domainkey.domain. IN TXT "v=DKIM1; k=rsa; p=..."`, the
 * text cut into character-strings of at most 255 octets (RFC 1035 §3.3).
 * service, when not NULL, is added as the s= tag ("tlsrpt", RFC 8460 §3:
 * a key used only for TLS reports should say so; python-dkim then only
 * accepts it for reports). p= is the SubjectPublicKeyInfo for RSA (what
 * verifiers accept in practice, RFC 6376 appendix C) and the raw 32-octet
 * key for Ed25519 (RFC 8463 §4). Returns new (caller frees).
 */
char *dkim_signer_dns_record(const struct dkim_signer *s, const char *service);

/*
 * The relaxed canonical form (RFC 6376 §3.4.2) of one header field of n
 * octets at field ("Name: value", continuation lines included, with or
 * without its final line end), appended to b, with a CRLF after it when
 * crlf is true. Exposed for the tests; dkim_sign uses it.
 */
void dkim_canon_header(
    struct buf *b, const uint8_t *field, size_t n, bool crlf);

/*
 * The relaxed canonical form (RFC 6376 §3.4.4) of a body of n octets,
 * appended to b. Exposed for the tests; dkim_sign streams the same output
 * into the hash instead.
 */
void dkim_canon_body(struct buf *b, const uint8_t *body, size_t n);

#endif
