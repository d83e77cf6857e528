/*
 * tlsrpt_int: what the files of the TLS-RPT store share (tlsrpt.c owns the
 * database, tlsrpt_outbox.c keeps the delivery state of sent reports in
 * it). Private to src/tlsrpt/.
 */
#ifndef DR_TLSRPT_INT_H
#define DR_TLSRPT_INT_H

#include <sqlite3.h>

struct tlsrpt_store;

/* The store's database handle, borrowed. */
sqlite3 *tlsrpt_store_db(struct tlsrpt_store *s);

/* Record a database error on s ("what: SQLite's message"); returns -1. */
int tlsrpt_store_fail(struct tlsrpt_store *s, const char *what);

/* Create the outbox table when missing (an additive change to schema 1).
 * Returns 0 or -1 (the error recorded on s). */
int tlsrpt_outbox_init(struct tlsrpt_store *s);

#endif
