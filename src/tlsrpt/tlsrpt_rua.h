/*
 * tlsrpt_rua: the reporting policy of a domain, the TXT record at
 * _smtp._tls.DOMAIN (RFC 8460 §3): "v=TLSRPTv1; rua=URI[,URI...]".
 *
 * Records that do not begin with v=TLSRPTv1 and a field delimiter are
 * discarded; unless exactly one is left the domain does not take reports
 * (§3). The record is read by the grammar it shares with _mta-sts
 * (core/txtrec.h): an empty field (";;") or trailing whitespace without
 * ";" makes it malformed. Unknown fields are ignored when they are
 * well-formed (tlsrpt-extension). A repeated rua field adds its URIs to
 * the others' (§3: a record may "declare more than one rua"). Of the rua URIs,
 * mailto: (RFC 6068: percent-decoded, the address list split at commas,
 * header fields after '?' ignored) and https: are kept; other schemes are
 * skipped with a note.
 */
#ifndef DR_TLSRPT_RUA_H
#define DR_TLSRPT_RUA_H

#include <stddef.h>

enum tlsrpt_rua_kind {
	TLSRPT_RUA_MAILTO,
	TLSRPT_RUA_HTTPS,
};

struct tlsrpt_rua {
	enum tlsrpt_rua_kind kind;
	char *target; /* the mail address, or the whole https URL */
};

/* At most this many destinations are taken from one record. */
#define TLSRPT_RUA_MAX 8

/*
 * Parse the TXT RRset (each record's strings already concatenated, §3:
 * "without adding spaces"). Returns the number of usable destinations
 * (at least 1) with *out a new array (tlsrpt_rua_free), or -1 with *why a
 * new message (caller frees) saying why the domain takes no report.
 */
int tlsrpt_rua_parse(
    const char *const *records, size_t n, struct tlsrpt_rua **out, char **why);

void tlsrpt_rua_free(struct tlsrpt_rua *v, size_t n);

/* "mailto:ADDR" or the URL, for logs; static kind names. */
const char *tlsrpt_rua_kind_str(enum tlsrpt_rua_kind k);

#endif
