/*
 * console_page_queue: /queue (a placeholder: its page helper replaces
 * it).
 */
#include "console/console_int.h"

void console_page_queue(struct console_req *r);
void console_page_queue_post(struct console_req *r);

void
console_page_queue(struct console_req *r)
{
	console_begin(r, "Queue", false);
	console_printf(r, "<p class=\"notice\">Coming soon.</p>");
	console_end(r);
}

void
console_page_queue_post(struct console_req *r)
{
	console_redirect(r, "/queue");
}
