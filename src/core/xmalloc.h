/*
 * xmalloc: allocation that never returns NULL. A daemon that cannot get
 * memory cannot do anything useful, so these abort instead. Input that is
 * too large is rejected by caps (struct buf) long before this matters.
 */
#ifndef DR_XMALLOC_H
#define DR_XMALLOC_H

#include <stddef.h>

#include "log.h"

void *xmalloc(size_t size);           /* returns new, caller frees */
void *xcalloc(size_t n, size_t size); /* zeroed; overflow-checked */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s); /* returns new, caller frees */
char *xstrndup(
    const char *s, size_t n); /* copies at most n bytes, NUL-terminates */
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) DR_PRINTF(1, 2); /* returns new */

#endif
