/*
 * console_html: the layout every page shares and the helpers pages write
 * with (console_int.h). Text from data always goes through
 * console_escape(); a chart's data goes into an inert
 * <script type="application/json"> that /static/console.js draws, since
 * the Content-Security-Policy allows no inline script.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "console/console_auth.h"
#include "console/console_core.h"
#include "console/console_fleet.h"
#include "console/console_int.h"
#include "core/xmalloc.h"

void
console_escape(struct buf *b, const char *s)
{
	const char *p;

	for (p = s; *p != '\0'; p++) {
		switch (*p) {
		case '&':
			buf_adds(b, "&amp;");
			break;
		case '<':
			buf_adds(b, "&lt;");
			break;
		case '>':
			buf_adds(b, "&gt;");
			break;
		case '"':
			buf_adds(b, "&quot;");
			break;
		case '\'':
			buf_adds(b, "&#39;");
			break;
		default:
			buf_addc(b, *p);
		}
	}
}

/* The navigation bar: every page with a title, the current one marked. */
static void
console_nav(struct console_req *r)
{
	const struct console_page *p;
	const char *user = console_user(r);
	bool here;

	buf_adds(&r->body,
	    "<header><nav><a class=\"brand\" href=\"/\">"
	    "danerelay</a><ul>");
	for (p = console_pages; p->path != NULL; p++) {
		if (p->nav == NULL)
			continue;
		here = r->page == p;
		buf_printf(&r->body, "<li><a href=\"%s\"%s>", p->path,
		    here ? " class=\"current\" aria-current=\"page\"" : "");
		console_escape(&r->body, p->nav);
		buf_adds(&r->body, "</a></li>");
	}
	buf_adds(&r->body, "</ul>");
	if (user[0] != '\0') {
		buf_adds(&r->body,
		    "<form class=\"logout\" method=\"post\" "
		    "action=\"/logout\"><span class=\"user\">");
		console_escape(&r->body, user);
		buf_adds(&r->body, "</span>");
		console_csrf_input(r);
		buf_adds(&r->body,
		    "<button type=\"submit\">Log out</button>"
		    "</form>");
	}
	buf_adds(&r->body, "</nav></header>\n");
}

void
console_begin(struct console_req *r, const char *title, bool charts)
{
	r->began = true;
	buf_adds(&r->body,
	    "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" "
	    "content=\"width=device-width, initial-scale=1\">"
	    "<title>");
	console_escape(&r->body, title);
	buf_adds(&r->body, " · danerelay</title>");
	/* The session's CSRF token, for scripts that post (console.js). */
	if (r->sess != NULL)
		buf_printf(&r->body, "<meta name=\"csrf\" content=\"%s\">",
		    console_session_csrf(r->sess));
	buf_adds(
	    &r->body, "<link rel=\"stylesheet\" href=\"/static/console.css\">");
	if (charts)
		buf_adds(&r->body,
		    "<script src=\"/static/chart.js\" defer></script>");
	buf_adds(&r->body,
	    "<script src=\"/static/console.js\" defer></script>"
	    "</head><body>\n");
	console_nav(r);
	buf_adds(&r->body, "<main>\n<h1>");
	console_escape(&r->body, title);
	buf_adds(&r->body, "</h1>\n");
	/* A read before the page began fell back to this node's queue. */
	console_fleet_banner(r);
}

/* fmt and ap onto the page, escaped or not. */
static void console_vput(struct console_req *r, bool escape, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
console_vput(struct console_req *r, bool escape, const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) == -1)
		return;
	if (escape)
		console_escape(&r->body, s);
	else
		buf_adds(&r->body, s);
	free(s);
}

void
console_printf(struct console_req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_vput(r, false, fmt, ap);
	va_end(ap);
}

void
console_text(struct console_req *r, const char *s)
{
	console_escape(&r->body, s != NULL ? s : "");
}

void
console_textf(struct console_req *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_vput(r, true, fmt, ap);
	va_end(ap);
}

void
console_link(struct console_req *r, const char *text, const char *path, ...)
{
	struct buf href;
	const char *name, *value;
	char *enc;
	va_list ap;
	int n = 0;

	buf_init(&href, 1u << 16);
	buf_adds(&href, path);
	va_start(ap, path);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		enc = evhttp_encode_uri(value != NULL ? value : "");
		buf_printf(&href, "%s%s=%s", n++ == 0 ? "?" : "&", name, enc);
		free(enc);
	}
	va_end(ap);
	buf_adds(&r->body, "<a href=\"");
	console_escape(&r->body, buf_cstr(&href));
	buf_adds(&r->body, "\">");
	console_escape(&r->body, text);
	buf_adds(&r->body, "</a>");
	buf_free(&href);
}

void
console_chart(struct console_req *r, const char *id, const json_t *spec)
{
	char *json = json_dumps(spec, JSON_COMPACT), *p;

	buf_adds(&r->body, "<div class=\"chart\"><canvas id=\"");
	console_escape(&r->body, id);
	buf_adds(&r->body, "\" data-chart=\"");
	console_escape(&r->body, id);
	buf_adds(&r->body,
	    "-data\"></canvas></div>\n<script "
	    "type=\"application/json\" id=\"");
	console_escape(&r->body, id);
	buf_adds(&r->body, "-data\">");
	/* In a <script> element nothing may look like markup: the JSON's
	 * <, > and & (only ever inside its strings) as \u escapes. */
	for (p = json != NULL ? json : "{}"; *p != '\0'; p++) {
		if (*p == '<')
			buf_adds(&r->body, "\\u003c");
		else if (*p == '>')
			buf_adds(&r->body, "\\u003e");
		else if (*p == '&')
			buf_adds(&r->body, "\\u0026");
		else
			buf_addc(&r->body, *p);
	}
	buf_adds(&r->body, "</script>\n");
	free(json);
}

void
console_csrf_input(struct console_req *r)
{
	if (r->sess == NULL)
		return;
	buf_printf(&r->body,
	    "<input type=\"hidden\" name=\"csrf\" "
	    "value=\"%s\">",
	    console_session_csrf(r->sess));
}

void
console_end(struct console_req *r)
{
	buf_adds(&r->body, "\n</main></body></html>\n");
	console_http_send(
	    r, 200, "text/html; charset=utf-8", NULL, 0, "no-store");
}

void
console_json(struct console_req *r, const json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);

	console_http_send(r, 200, "application/json", s != NULL ? s : "null",
	    s != NULL ? strlen(s) : 4, "no-store");
	free(s);
}

void
console_redirect(struct console_req *r, const char *location)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(r->req), "Location", location);
	console_http_send(
	    r, 303, "text/plain; charset=utf-8", "", 0, "no-store");
}

static const char *
console_reason(int code)
{
	switch (code) {
	case 400:
		return "Bad request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not found";
	case 405:
		return "Method not allowed";
	case 421:
		return "Misdirected request";
	case 429:
		return "Too many requests";
	default:
		return "Error";
	}
}

void
console_fail(struct console_req *r, int code, const char *text)
{
	char title[64];

	snprintf(title, sizeof(title), "%d %s", code, console_reason(code));
	buf_reset(&r->body);
	console_begin(r, title, false);
	buf_adds(&r->body, "<p class=\"error\">");
	console_escape(&r->body, text);
	buf_adds(&r->body, "</p>");
	buf_adds(&r->body, "\n</main></body></html>\n");
	console_http_send(
	    r, code, "text/html; charset=utf-8", NULL, 0, "no-store");
}
