/*
 * metrics_int: the registry shared by the files of src/metrics/ only:
 * metrics.c updates it (any thread), metrics_render.c reads it (the
 * console's thread). Every field is a C11 atomic: no lock anywhere.
 */
#ifndef DR_METRICS_INT_H
#define DR_METRICS_INT_H

#include <stdatomic.h>
#include <stdint.h>

#define METRICS_NSEC       5  /* dane dane_trusted sts tls plaintext */
#define METRICS_PAIRS      64 /* {security,status} pairs per counter */
#define METRICS_NBOUND     9  /* latency buckets, +Inf not included */
#define METRICS_NTLSRPT    2  /* sent failed */
#define METRICS_STATUS_LEN 16

/* The label values, in the order of the arrays below. */
extern const char *const metrics_security[METRICS_NSEC];
extern const char *const metrics_tlsrpt_result[METRICS_NTLSRPT];
/* Upper bounds of the latency buckets, seconds. */
extern const unsigned metrics_bound[METRICS_NBOUND];

/*
 * A counter labelled {security,status}: a fixed table of pairs, each key
 * (security and status packed into one integer, never 0) claimed once
 * with a compare-and-swap, so a writer never waits. A pair that does not
 * fit, or a status that is not an RFC 3463 code, counts as status "other".
 */
struct metrics_pairs {
	_Atomic uint64_t key[METRICS_PAIRS]; /* 0: free */
	_Atomic uint64_t n[METRICS_PAIRS];
	_Atomic uint64_t other[METRICS_NSEC];
};

struct metrics_reg {
	_Atomic uint64_t delivered[METRICS_NSEC];
	/* per bucket, not cumulative; [METRICS_NBOUND] is above the last */
	_Atomic uint64_t bucket[METRICS_NBOUND + 1];
	_Atomic uint64_t sum_ms; /* latency sum, milliseconds */
	struct metrics_pairs blocked;
	struct metrics_pairs would;
	_Atomic uint64_t tlsrpt[METRICS_NTLSRPT];
	_Atomic int64_t inbound;
	_Atomic int selftest_ok;
	_Atomic int64_t start; /* time_t */
	_Atomic int fleet;     /* 0: no fleet; 1: db down; 2: db up */
	_Atomic uint64_t fleet_backlog;
};
extern struct metrics_reg metrics_reg;

struct buf;

/* Append v as a label value of the text format: \\ for a backslash, \"
 * for a double quote, \n for a newline. Returns 0, or -1 (out full). */
int metrics_label_value(struct buf *out, const char *v);

/* Unpack a pair key: security index and status ("4.7.323"). */
void metrics_key_split(
    uint64_t key, unsigned *sec, char status[METRICS_STATUS_LEN]);

#endif
