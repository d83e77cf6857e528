/*
 * fleet_tlsrpt_stub: a stand-in for fleet_tlsrpt_push (fleet.h), which
 * the copying thread calls and h/tlsrpt provides in fleet_tlsrpt.c, so
 * that h/sync builds alone. Weak: the real definition wins.
 *
 * removed when h/tlsrpt merges.
 */
#include "fleet/fleet.h"

__attribute__((weak)) int
fleet_tlsrpt_push(struct pg *p, struct tlsrpt_store *s)
{
	(void)p;
	(void)s;
	return 0;
}
