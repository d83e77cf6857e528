/*
 * txtrec: the shape that the _mta-sts TXT record (RFC 8461 §3.1) and the
 * _smtp._tls TXT record (RFC 8460 §3) share, read one way for both:
 *
 *   record = version 1*(field-delim field) [field-delim]
 *   field-delim = *WSP ";" *WSP
 *   field = ext-name "=" value
 *   ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *
 * A record that does not begin with the version followed by a field-delim
 * is not of this kind (the RFCs: records that do not begin with
 * "v=STSv1;" / "v=TLSRPTv1;" are discarded). After that, every octet must
 * belong to the grammar: an empty field (";;"), whitespace at the end
 * without a ";", a field without "=" or with an empty value make the
 * record malformed. The value of a field runs up to the next field-delim
 * (or the end); what a value may contain is the caller's rule for the
 * fields it knows (sts-id, tlsrpt-rua) and txtrec_ext_value_ok() for the
 * others (sts-ext-value / tlsrpt-ext-value, the same production).
 */
#ifndef DR_TXTREC_H
#define DR_TXTREC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

/* A cursor over one record (its character-strings concatenated). */
struct txtrec {
	const char *p, *end;
	size_t nfields;
};

/*
 * Start reading txt[0..len) as a record of the given version ("v=STSv1").
 * Returns true when it begins with version and a field-delim (the cursor
 * is then on the first field), false when the record is not of this kind
 * and is to be discarded.
 */
bool txtrec_begin(
    struct txtrec *r, const char *txt, size_t len, const char *version);

/*
 * The next field: 1 with *name and *value (slices into the record), 0 at
 * the end of a well-formed record (at least one field was read), or -1
 * with *errstr (static) when the record breaks the grammar from here.
 */
int txtrec_next(
    struct txtrec *r, struct str *name, struct str *value, const char **errstr);

/* ext-value = 1*(%x21-3A / %x3C / %x3E-7E): visible, no "=", no ";". */
bool txtrec_ext_value_ok(struct str v);

/* Whether the slice is exactly the NUL-terminated word w (case-sensitive,
 * as both RFCs' ABNF use %s"..."). */
bool txtrec_is(struct str s, const char *w);

#endif
