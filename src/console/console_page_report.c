/*
 * console_page_report: /report (a placeholder: its page helper replaces it).
 */
#include "console/console_int.h"

void console_page_report(struct console_req *r);

void
console_page_report(struct console_req *r)
{
	console_begin(r, "Transit security", false);
	console_printf(r, "<p class=\"notice\">Coming soon.</p>");
	console_end(r);
}
