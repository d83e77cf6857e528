/*
 * fleet_tlsrpt: TLS-RPT over the fleet database beyond the push of
 * fleet.h: the fleet's sums as a store in memory (fleet_tlsrpt.c) and the
 * send run's book in the database (fleet_tlsrpt_send.c), where claims
 * with leases make one node build each (day, domain) report and one node
 * at a time try each destination (docs/FLEET.md, "TLS-RPT").
 */
#ifndef DR_FLEET_TLSRPT_H
#define DR_FLEET_TLSRPT_H

#include <time.h>

struct pg;
struct tlsrpt_store;
struct tlsrpt_send_book;

/* dr_tlsrpt_reports.state */
#define FT_OPEN        0 /* claimed (node, lease_until) or free */
#define FT_PREPARED    1 /* built; its outbox rows are being sent */
#define FT_NO_POLICY   2 /* the domain takes no reports */
#define FT_DONE        3 /* no outbox row is pending any more */
#define FT_NO_POLICY_S "2"
#define FT_DONE_S      "3"

/*
 * The fleet's summed counters of the days from..to ("YYYY-MM-DD") and of
 * domain (NULL: all), with the days' sent marks (reports done) and
 * outbox entries (without the reports themselves), as a TLS-RPT store in
 * memory: read it with tlsrpt.h and tlsrpt_sent.h as a node's own.
 * Returns new (tlsrpt_store_close), or NULL with pg_error(p).
 */
struct tlsrpt_store *fleet_tlsrpt_snapshot(
    struct pg *p, const char *from, const char *to, const char *domain);

struct fleet_tlsrpt_book;

/*
 * The send run's book in the fleet database, as node pg_node(p): own is
 * the node's store (its counters are pushed before the day's domains are
 * read); claims last lease seconds by the database's clock. p and own
 * borrowed for the book's life. Returns new.
 */
struct fleet_tlsrpt_book *fleet_tlsrpt_book_new(
    struct pg *p, struct tlsrpt_store *own, time_t lease);

/* For tlsrpt_send_config.book; borrowed from b. */
const struct tlsrpt_send_book *fleet_tlsrpt_book(struct fleet_tlsrpt_book *b);

void fleet_tlsrpt_book_free(struct fleet_tlsrpt_book *b); /* NULL is fine */

#endif
