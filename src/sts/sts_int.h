/*
 * sts_int.h: entry points of the sts engine for tests/unit/test_sts.c only.
 *
 * They let the unit test drive the §5.1 logic without a DNS: the TXT
 * records are handed in, mta-sts.DOMAIN is pinned to an address, the clock
 * and the §3.3 retry interval can be set. The daemon never calls them.
 */
#ifndef DR_STS_INT_H
#define DR_STS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "sts/sts.h"

/*
 * sts_get() with the TXT lookup's outcome given: txt[0..n) are the TXT
 * records (as dns_answer_txt() gives them; NULL for an unreadable one), or
 * txt_error for a failed lookup. Joins a pending lookup of the domain like
 * sts_get() does (the given records are then unused).
 */
struct sts_lookup *sts_get_with_txt(struct sts *s, const char *domain,
    char *const *txt, size_t n, bool txt_error, sts_cb *cb, void *arg);

/* Connect to addr for every mta-sts.DOMAIN instead of resolving it. */
void sts_test_addr(struct sts *s, const char *addr);

/* Use now as the time (0: the real clock again). */
void sts_test_clock(struct sts *s, time_t now);

/* §3.3: seconds before a failed fetch of one id is tried again (300). */
void sts_test_backoff(struct sts *s, time_t seconds);

#endif
