/*
 * console_page_trace: /trace and /trace/ID (a placeholder: its page
 * helper replaces it).
 */
#include "console/console_int.h"

void console_page_trace(struct console_req *r);
void console_page_trace_message(struct console_req *r);

void
console_page_trace(struct console_req *r)
{
	console_begin(r, "Message trace", false);
	console_printf(r, "<p class=\"notice\">Coming soon.</p>");
	console_end(r);
}

void
console_page_trace_message(struct console_req *r)
{
	console_begin(r, "Message", false);
	console_text(r, console_rest(r));
	console_end(r);
}
