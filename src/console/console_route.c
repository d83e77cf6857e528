/*
 * console_route: the console's pages, one row each (paths are fixed so
 * that links and bookmarks last; issue 11). Each page lives in
 * console_page_<name>.c.
 */
#include "console/console_int.h"

void console_page_overview(struct console_req *r);
void console_page_metrics(struct console_req *r);
void console_page_report(struct console_req *r);
void console_page_impact(struct console_req *r);
void console_page_trace(struct console_req *r);
void console_page_trace_message(struct console_req *r);
void console_page_queue(struct console_req *r);
void console_page_queue_post(struct console_req *r);
void console_page_check(struct console_req *r);
void console_page_tlsrpt(struct console_req *r);

const struct console_page console_pages[] = {
	{ "/", "Overview", console_page_overview, NULL },
	{ "/report", "Transit security", console_page_report, NULL },
	{ "/impact", "Enforcement impact", console_page_impact, NULL },
	{ "/trace", "Message trace", console_page_trace, NULL },
	{ "/trace/", NULL, console_page_trace_message, NULL },
	{ "/queue", "Queue", console_page_queue, console_page_queue_post },
	{ "/check", "Analyzer", console_page_check, NULL },
	{ "/tlsrpt", "TLS reports", console_page_tlsrpt, NULL },
	{ "/metrics", NULL, console_page_metrics, NULL },
	{ NULL, NULL, NULL, NULL },
};
