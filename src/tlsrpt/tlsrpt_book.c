/*
 * tlsrpt_book: the send run's book in the node's own store (a relay
 * alone): the day's domains from its counters, a domain is the run's to
 * prepare while it has neither a sent mark nor outbox entries, and the
 * report is marked sent once none of its entries is pending. One process
 * sends at a time per store (the relay, or `tlsrpt send`), as before the
 * fleet, so there is nothing to claim.
 */
#include "tlsrpt/tlsrpt_send.h"

static char **
book_domains(void *ctx, const char *day, size_t *n)
{
	return tlsrpt_store_domains(ctx, day, n);
}

static int
book_claim(void *ctx, const char *day, const char *domain, time_t now)
{
	int pending = 0, total;

	(void)now;
	if (tlsrpt_store_sent(ctx, domain, day))
		return 0;
	total = tlsrpt_outbox_count(ctx, day, domain, &pending);
	return total < 0 ? -1 :
	                   total == 0; /* else prepared by an earlier run */
}

static void
book_release(void *ctx, const char *day, const char *domain)
{
	(void)ctx;
	(void)day;
	(void)domain;
}

static char *
book_build(void *ctx, const char *domain, const char *day, const char *org,
    const char *contact, const char *report_id)
{
	return tlsrpt_report_build(ctx, domain, day, org, contact, report_id);
}

static int
book_prepare(
    void *ctx, const struct tlsrpt_out *o, const char *const *uris, size_t n)
{
	struct tlsrpt_out e = *o;
	size_t i;

	if (n == 0)
		return tlsrpt_store_mark_sent(ctx, o->domain, o->day);
	for (i = 0; i < n; i++) {
		e.uri = uris[i];
		if (tlsrpt_outbox_add(ctx, &e) == -1)
			return -1;
	}
	return 0;
}

static int
book_due(void *ctx, time_t now, size_t max, tlsrpt_out_cb *cb, void *arg)
{
	return tlsrpt_outbox_due(ctx, now, max, cb, arg);
}

static int
book_update(void *ctx, const char *day, const char *domain, const char *uri,
    enum tlsrpt_out_state state, const char *note, time_t now,
    time_t next_attempt)
{
	int pending = 0, total;

	if (tlsrpt_outbox_update(
	        ctx, day, domain, uri, state, note, now, next_attempt) == -1)
		return -1;
	if (state == TLSRPT_OUT_PENDING)
		return 0;
	total = tlsrpt_outbox_count(ctx, day, domain, &pending);
	if (total > 0 && pending == 0)
		return tlsrpt_store_mark_sent(ctx, domain, day);
	return total < 0 ? -1 : 0;
}

static const char *
book_error(void *ctx)
{
	return tlsrpt_store_error(ctx);
}

void
tlsrpt_book_local(struct tlsrpt_send_book *b, struct tlsrpt_store *s)
{
	b->ctx = s;
	b->domains = book_domains;
	b->claim = book_claim;
	b->release = book_release;
	b->build = book_build;
	b->prepare = book_prepare;
	b->due = book_due;
	b->update = book_update;
	b->error = book_error;
}
