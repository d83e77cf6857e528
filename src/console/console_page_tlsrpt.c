/*
 * console_page_tlsrpt: /tlsrpt (a placeholder: its page helper replaces it).
 */
#include "console/console_int.h"

void console_page_tlsrpt(struct console_req *r);

void
console_page_tlsrpt(struct console_req *r)
{
	console_begin(r, "TLS reports", false);
	console_printf(r, "<p class=\"notice\">Coming soon.</p>");
	console_end(r);
}
