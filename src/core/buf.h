/*
 * buf: a growable byte buffer with a mandatory size cap (after curl's
 * dynbuf). Every buffer that grows from network or file input has a cap, so
 * hostile input is an error ("too long"), never an out-of-memory abort.
 * The content is always NUL-terminated, so text buffers can be used as C
 * strings (buf_cstr).
 */
#ifndef DR_BUF_H
#define DR_BUF_H

#include <stddef.h>

#include "log.h"

struct buf {
	char *data; /* NULL until the first append */
	size_t len; /* bytes used, excluding the terminating NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* largest len allowed */
};

/* Initialise an empty buffer that may hold at most max bytes. */
void buf_init(struct buf *b, size_t max);

/* Release memory; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

/* Empty the buffer, keeping its memory. */
void buf_reset(struct buf *b);

/* Append n bytes. Returns 0, or -1 (buffer unchanged) if max would be exceeded.
 */
int buf_add(struct buf *b, const void *p, size_t n);

/* Append a C string. Same return as buf_add. */
int buf_adds(struct buf *b, const char *s);

/* Append one byte. Same return as buf_add. */
int buf_addc(struct buf *b, char c);

/* Append formatted text. Same return as buf_add. */
int buf_printf(struct buf *b, const char *fmt, ...) DR_PRINTF(2, 3);

/* The content as a C string; "" for an empty buffer. Borrowed. */
const char *buf_cstr(const struct buf *b);

/* Take the content out as a new C string (caller frees); b becomes empty. */
char *buf_steal(struct buf *b);

#endif
