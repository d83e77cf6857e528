/*
 * str: non-owning string slices and cursor parsers.
 *
 * A cursor parser takes `const char **cp` pointing into a NUL-terminated
 * string, consumes what it recognises, advances *cp past it and returns 0;
 * on no match it returns -1 and leaves *cp unchanged. These replace
 * atoi/sscanf/strtok everywhere.
 */
#ifndef DR_STR_H
#define DR_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct str {
	const char *p;
	size_t len;
};

/* Skip spaces and tabs. */
void str_skip_ws(const char **cp);

/* Parse a decimal number in [0, max]. No sign, no leading/trailing junk
 * handling. */
int str_parse_uint(const char **cp, uint64_t max, uint64_t *out);

/*
 * Parse a whole string as a duration: a number of units up to 10^9 with an
 * optional suffix s, m, h, d or w (none = seconds). 0 with *secs, or -1.
 */
int str_parse_duration(const char *s, uint64_t *secs);

/* Value of a hex digit (either case) or of a base64 character (RFC 4648
 * §4), or -1. */
int str_hex_value(int c);
int str_b64_value(int c);

/* Parse a whole string as a decimal number in [min, max]. 0 or -1. */
int str_to_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Match literal word w (case-insensitive); advances past it. */
int str_match_ci(const char **cp, const char *w);

/* Case-insensitive equality of two C strings. */
bool str_eq_ci(const char *a, const char *b);

/* Trim spaces/tabs at both ends of s in place; returns s advanced. */
char *str_trim(char *s);

/*
 * Split s on commas and/or whitespace into a NULL-terminated vector of new
 * strings (caller frees with str_vec_free). *n receives the count.
 */
char **str_split_list(const char *s, size_t *n);
void str_vec_free(char **v);
/* A copy of the NULL-terminated vector v (NULL: an empty one). Returns
 * new, caller frees with str_vec_free. */
char **str_vec_dup(char *const *v);

/* Lowercase ASCII in place. */
void str_lower(char *s);

/* Hex-encode n bytes into a new string (lowercase). */
char *str_hex(const uint8_t *p, size_t n);

/*
 * Decode hex (upper or lower, no separators) into a new buffer of *n bytes.
 * Returns NULL for odd length or a non-hex digit.
 */
uint8_t *str_unhex(const char *s, size_t *n);

#endif
