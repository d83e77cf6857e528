/*
 * console_page_queue: /queue, the queue in a browser: how many recipients
 * are active, deferred and held; a table of them, filtered by domain,
 * address and state (a GET form, so a filtered view can be bookmarked),
 * a page at a time; and the operator's actions (retry, hold, release,
 * bounce, delete) on one message (the buttons of its row) or on the
 * recipients ticked in the table.
 *
 * It reads and writes through the same store calls as `danerelay queue`
 * (queue_list_filter, queue_hold, ...), on the console's own connection;
 * the relay sees a change on its next queue scan, as it does the
 * command's. Every action is a POST, which the core lets through only
 * with the session's CSRF token; it answers with a redirect back to the
 * same view and a one-line result (made here from numbers, never from
 * text a link could carry).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "console/console_int.h"
#include "core/buf.h"
#include "core/str.h"
#include "queue/queue.h"

#define QUEUE_PAGE_ROWS    100  /* recipients per page */
#define QUEUE_PAGE_SEL_MAX 1000 /* recipients one action may name */
#define QUEUE_PAGE_TEXT    64   /* characters of a last result shown */

void console_page_queue(struct console_req *r);
void console_page_queue_post(struct console_req *r);

/* The actions, what they do, and how the result line says it. */
static const struct {
	const char *name;
	const char *label;
	int (*act)(struct queue *, const char *);
	const char *done; /* after "N recipient(s) " */
} queue_page_actions[] = {
	{ "retry", "Retry", queue_retry,
	    "due now: the relay tries on its next queue scan" },
	{ "hold", "Hold", queue_hold, "held: not delivered until released" },
	{ "release", "Release", queue_release, "released and due now" },
	{ "bounce", "Bounce", queue_bounce,
	    "marked to bounce: returned to the sender on the next scan" },
	{ "delete", "Delete", queue_delete, "deleted (no bounce is sent)" },
};
#define QUEUE_PAGE_NACTIONS \
	(sizeof(queue_page_actions) / sizeof(queue_page_actions[0]))

/* The view: filters and page, from the query (GET) or the form (POST). */
struct queue_view {
	struct queue_filter f;
	const char *state; /* as given, "" for any */
	time_t now;
};

static int
queue_page_action(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < QUEUE_PAGE_NACTIONS; i++)
		if (strcmp(queue_page_actions[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* A number argument, or 0 when absent or not a number. */
static uint64_t
queue_page_num(struct console_req *r, const char *name)
{
	const char *s = console_arg(r, name);
	uint64_t n = 0;

	if (s == NULL || str_to_uint(s, 0, INT64_MAX, &n) == -1)
		return 0;
	return n;
}

static const char *
queue_page_str(struct console_req *r, const char *name)
{
	const char *s = console_arg(r, name);

	return s != NULL ? s : "";
}

static void
queue_view_read(struct console_req *r, struct queue_view *v)
{
	memset(v, 0, sizeof(*v));
	v->now = time(NULL);
	v->f.domain = queue_page_str(r, "domain");
	v->f.address = queue_page_str(r, "address");
	v->state = queue_page_str(r, "state");
	if (queue_state_parse(v->state, &v->f.state) == -1) {
		v->state = "";
		v->f.state = QUEUE_STATE_ANY;
	}
	v->f.after = (int64_t)queue_page_num(r, "after");
	v->f.now = v->now;
}

static enum queue_state
queue_page_state(const struct queue_rcpt *q, time_t now)
{
	if (q->status == QUEUE_RCPT_HELD)
		return QUEUE_STATE_HELD;
	/* An attempt under way on a node of the fleet is active. */
	return q->next_attempt <= now || q->lease_node != NULL ?
	    QUEUE_STATE_ACTIVE :
	    QUEUE_STATE_DEFERRED;
}

/* --- the result line of the last action --- */

static void
queue_page_result(struct console_req *r)
{
	int a = queue_page_action(console_arg(r, "done"));
	uint64_t n = queue_page_num(r, "n"), sel = queue_page_num(r, "sel");

	if (a < 0)
		return;
	console_printf(r, "<p class=\"%s\" id=\"result\" role=\"status\">",
	    queue_page_num(r, "err") != 0 ? "error" : "notice");
	console_text(r, queue_page_actions[a].label);
	if (queue_page_num(r, "err") != 0)
		console_printf(r,
		    ": failed after %llu recipient%s (the "
		    "relay's log says why)",
		    (unsigned long long)n, n == 1 ? "" : "s");
	else if (sel == 0)
		console_printf(r, ": nothing was selected");
	else {
		console_printf(r, ": %llu recipient%s ", (unsigned long long)n,
		    n == 1 ? "" : "s");
		console_text(r, queue_page_actions[a].done);
		if (n < sel)
			console_printf(r,
			    " (%llu selected were not in a state for it)",
			    (unsigned long long)(sel - n));
	}
	console_printf(r, ".</p>\n");
}

/* --- counts and filters --- */

static void
queue_page_count(
    struct console_req *r, const char *state, const char *label, uint64_t n)
{
	console_printf(r,
	    "<div class=\"card\" id=\"count-%s\"><div class=\"label\">", state);
	console_link(r, label, "/queue", "state", state, (const char *)NULL);
	console_printf(r, "</div><div class=\"value\">%llu</div></div>\n",
	    (unsigned long long)n);
}

static void
queue_page_counts(struct console_req *r, time_t now)
{
	struct queue_counts c;

	if (queue_count_states(console_queue(r), now, &c) == -1) {
		console_printf(r, "<p class=\"error\">");
		console_text(r, queue_error(console_queue(r)));
		console_printf(r, "</p>\n");
		return;
	}
	console_printf(r, "<div class=\"cards\">\n");
	queue_page_count(r, "active", "Active", c.active);
	queue_page_count(r, "deferred", "Deferred", c.deferred);
	queue_page_count(r, "held", "Held", c.held);
	console_printf(r, "</div>\n");
}

static void
queue_page_input(struct console_req *r, const char *name, const char *label,
    const char *value, const char *hint)
{
	console_printf(r, "<label>%s<input name=\"%s\" value=\"", label, name);
	console_text(r, value);
	console_printf(r, "\" placeholder=\"%s\"></label>\n", hint);
}

static void
queue_page_filters(struct console_req *r, const struct queue_view *v)
{
	static const char *const states[] = { "", "active", "deferred",
		"held" };
	size_t i;

	console_printf(r,
	    "<form class=\"filters\" id=\"filters\" "
	    "method=\"get\" action=\"/queue\">\n");
	queue_page_input(r, "domain", "Domain", v->f.domain, "example.com");
	queue_page_input(
	    r, "address", "Address", v->f.address, "sender or recipient");
	console_printf(r, "<label>State<select name=\"state\">");
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		console_printf(r, "<option value=\"%s\"%s>%s</option>",
		    states[i],
		    strcmp(v->state, states[i]) == 0 ? " selected" : "",
		    states[i][0] != '\0' ? states[i] : "any");
	console_printf(r,
	    "</select></label>\n<button type=\"submit\">"
	    "Filter</button> <a href=\"/queue\">Clear</a>"
	    "</form>\n");
}

/* The view's filters as hidden fields: an action returns to it. */
static void
queue_page_hidden(struct console_req *r, const struct queue_view *v)
{
	static const char *const names[] = { "domain", "address", "state" };
	const char *values[] = { v->f.domain, v->f.address, v->state };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		console_printf(
		    r, "<input type=\"hidden\" name=\"%s\" value=\"", names[i]);
		console_text(r, values[i]);
		console_printf(r, "\">");
	}
	if (v->f.after > 0)
		console_printf(r,
		    "<input type=\"hidden\" name=\"after\" value=\"%lld\">",
		    (long long)v->f.after);
	console_csrf_input(r);
}

/* --- the table --- */

struct queue_rows {
	struct console_req *r;
	const struct queue_view *v;
	size_t n;
	int64_t last; /* row id of the last row shown */
};

static void
queue_page_buttons(struct console_req *r, enum queue_state st)
{
	size_t i;

	for (i = 0; i < QUEUE_PAGE_NACTIONS; i++) {
		const char *name = queue_page_actions[i].name;

		/* What makes sense for a held message: no retry, no hold. */
		if ((st == QUEUE_STATE_HELD &&
		        (strcmp(name, "retry") == 0 ||
		            strcmp(name, "hold") == 0)) ||
		    (st != QUEUE_STATE_HELD && strcmp(name, "release") == 0))
			continue;
		console_printf(r,
		    "<button type=\"submit\" name=\"action\" value=\"%s\" "
		    "class=\"%s\">%s</button> ",
		    name,
		    strcmp(name, "bounce") == 0 || strcmp(name, "delete") == 0 ?
		        "danger" :
		        "secondary",
		    queue_page_actions[i].label);
	}
}

static void
queue_page_last(struct console_req *r, const struct queue_rcpt *q)
{
	char text[QUEUE_PAGE_TEXT + 4];

	if (q->last_attempt == 0) {
		console_printf(r, "<td class=\"muted\">never tried</td>");
		return;
	}
	console_printf(r, "<td title=\"");
	console_text(r, q->last_text);
	console_printf(r, "\"><span class=\"mono\">");
	console_text(r, q->last_status);
	console_printf(r, "</span> ");
	console_text(r, q->last_result_type);
	snprintf(text, sizeof(text), "%.*s%s", QUEUE_PAGE_TEXT, q->last_text,
	    strlen(q->last_text) > QUEUE_PAGE_TEXT ? "..." : "");
	if (text[0] != '\0') {
		console_printf(r, "<br><span class=\"muted\">");
		console_text(r, text);
		console_printf(r, "</span>");
	}
	console_printf(r, "</td>");
}

static void
queue_page_next(struct console_req *r, const struct queue_rcpt *q,
    enum queue_state st, time_t now)
{
	char ago[32];

	if (st == QUEUE_STATE_HELD)
		console_printf(r, "<td>-</td>");
	else if (q->lease_node != NULL) {
		/* store = postgres: another node (or this one) has it now. */
		console_printf(r, "<td class=\"lease\">attempting on ");
		console_text(r, q->lease_node);
		console_printf(r, "</td>");
	} else if (q->next_attempt <= now)
		console_printf(r, "<td>now</td>");
	else
		console_printf(r, "<td data-sort=\"%lld\">in %s</td>",
		    (long long)q->next_attempt,
		    queue_time_ago(q->next_attempt - now, ago));
}

/* The buttons of a row act on its whole message (queue id). */
static void
queue_page_row_form(struct console_req *r, const struct queue_view *v,
    const struct queue_rcpt *q, enum queue_state st)
{
	console_printf(r,
	    "<td class=\"actions\"><form class=\"inline\" method=\"post\" "
	    "action=\"/queue\" data-confirm=\"Apply this action to message "
	    "%s?\"><input type=\"hidden\" name=\"msg\" value=\"%s\">",
	    q->msgid, q->msgid);
	queue_page_hidden(r, v);
	queue_page_buttons(r, st);
	console_printf(r, "</form></td>");
}

static void
queue_page_row(const struct queue_rcpt *q, void *arg)
{
	struct queue_rows *rows = arg;
	struct console_req *r = rows->r;
	enum queue_state st = queue_page_state(q, rows->v->now);
	char path[64], ago[32];

	if (rows->n++ >= QUEUE_PAGE_ROWS)
		return; /* the one more that says there is a next page */
	rows->last = q->id;
	console_printf(r,
	    "<tr id=\"r-%lld\" data-msgid=\"%s\" data-state=\"%s\"><td>"
	    "<input type=\"checkbox\" name=\"id\" value=\"%lld\" "
	    "form=\"selection\" aria-label=\"select\"></td>"
	    "<td class=\"mono\">",
	    (long long)q->id, q->msgid, queue_state_str(st), (long long)q->id);
	snprintf(path, sizeof(path), "/trace/%s", q->msgid);
	console_link(r, q->msgid, path, (const char *)NULL);
	console_printf(r, "</td><td class=\"rcpt\">");
	console_text(r, q->addr);
	console_printf(r, "</td><td class=\"sender\">");
	console_text(
	    r, q->sender != NULL && q->sender[0] != '\0' ? q->sender : "<>");
	console_printf(r, "</td><td class=\"state %s\">%s</td>",
	    st == QUEUE_STATE_HELD ? "warn" : "", queue_state_str(st));
	console_printf(r, "<td class=\"num\">%s</td><td class=\"num\">%d</td>",
	    queue_time_ago(rows->v->now - q->queued_at, ago), q->attempts);
	queue_page_next(r, q, st, rows->v->now);
	queue_page_last(r, q);
	queue_page_row_form(r, rows->v, q, st);
	console_printf(r, "</tr>\n");
}

/* The form the table's checkboxes belong to (form="selection"). */
static void
queue_page_toolbar(struct console_req *r, const struct queue_view *v)
{
	size_t i;

	console_printf(r,
	    "<form id=\"selection\" class=\"toolbar\" method=\"post\" "
	    "action=\"/queue\" data-confirm=\"Apply this action to the "
	    "selected recipients?\">");
	queue_page_hidden(r, v);
	console_printf(r, "With the selected: ");
	for (i = 0; i < QUEUE_PAGE_NACTIONS; i++)
		console_printf(r,
		    "<button type=\"submit\" name=\"action\" value=\"%s\" "
		    "id=\"sel-%s\" class=\"%s\">%s</button> ",
		    queue_page_actions[i].name, queue_page_actions[i].name,
		    i >= 3 ? "danger" : "secondary",
		    queue_page_actions[i].label);
	console_printf(r, "</form>\n");
}

static void
queue_page_head(struct console_req *r)
{
	console_printf(r,
	    "<table id=\"queue\"><thead><tr><th><input type=\"checkbox\" "
	    "data-select-all=\"id\" aria-label=\"select all\"></th>"
	    "<th>Queue ID</th><th>Recipient</th><th>Sender</th>"
	    "<th>State</th><th class=\"num\">Age</th>"
	    "<th class=\"num\">Tries</th><th>Next</th><th>Last result</th>"
	    "<th>This message</th></tr></thead><tbody>\n");
}

static void
queue_page_pager(struct console_req *r, const struct queue_view *v,
    const struct queue_rows *rows)
{
	char after[32];

	console_printf(r, "<p class=\"pager\">");
	if (v->f.after > 0)
		console_link(r, "First page", "/queue", "domain", v->f.domain,
		    "address", v->f.address, "state", v->state,
		    (const char *)NULL);
	if (rows->n > QUEUE_PAGE_ROWS) {
		snprintf(after, sizeof(after), "%lld", (long long)rows->last);
		console_printf(r, " ");
		console_link(r, "Next page", "/queue", "domain", v->f.domain,
		    "address", v->f.address, "state", v->state, "after", after,
		    (const char *)NULL);
	}
	console_printf(r, "</p>\n");
}

static void
queue_page_table(struct console_req *r, const struct queue_view *v)
{
	struct queue_rows rows = { r, v, 0, 0 };
	struct queue_filter f = v->f;
	int n;

	f.limit = QUEUE_PAGE_ROWS + 1;
	queue_page_toolbar(r, v);
	queue_page_head(r);
	n = queue_list_filter(console_queue(r), &f, queue_page_row, &rows);
	console_printf(r, "</tbody></table>\n");
	if (n == -1) {
		console_printf(r, "<p class=\"error\">");
		console_text(r, queue_error(console_queue(r)));
		console_printf(r, "</p>\n");
		return;
	}
	if (n == 0)
		console_printf(r,
		    "<p class=\"notice\" id=\"empty\">Nothing in "
		    "the queue matches.</p>\n");
	queue_page_pager(r, v, &rows);
}

void
console_page_queue(struct console_req *r)
{
	struct queue_view v;

	queue_view_read(r, &v);
	console_begin(r, "Queue", false);
	queue_page_result(r);
	queue_page_counts(r, v.now);
	queue_page_filters(r, &v);
	queue_page_table(r, &v);
	console_end(r);
}

/* --- POST: one action on a message or a selection --- */

/* Append name=value (value URL-encoded) to the redirect's query. */
static void
queue_page_param(struct buf *b, const char *name, const char *value)
{
	char *enc;

	if (value == NULL || *value == '\0')
		return;
	enc = evhttp_encode_uri(value);
	buf_printf(b, "&%s=%s", name, enc != NULL ? enc : "");
	free(enc);
}

/* Back to the view, with the result in numbers. */
static void
queue_page_back(struct console_req *r, int a, size_t n, size_t sel, bool err)
{
	struct buf b;

	buf_init(&b, 1u << 14);
	buf_printf(&b, "/queue?done=%s&n=%zu&sel=%zu%s",
	    queue_page_actions[a].name, n, sel, err ? "&err=1" : "");
	queue_page_param(&b, "domain", console_arg(r, "domain"));
	queue_page_param(&b, "address", console_arg(r, "address"));
	queue_page_param(&b, "state", console_arg(r, "state"));
	queue_page_param(&b, "after", console_arg(r, "after"));
	console_redirect(r, buf_cstr(&b));
	buf_free(&b);
}

/*
 * Apply action a to every key (a queue id, or recipient row ids); *done:
 * recipients changed. 0, or -1 on a database error (logged: its text
 * does not travel in the redirect).
 */
static int
queue_page_apply(struct console_req *r, int a, const char *const *keys,
    size_t nkeys, size_t *done)
{
	char who[64];
	size_t i;
	int n;

	*done = 0;
	/* The trace says who: the console, and its user when logged in. */
	snprintf(who, sizeof(who), "console%s%s",
	    console_user(r)[0] != '\0' ? ":" : "", console_user(r));
	queue_set_actor(console_queue(r), who);
	for (i = 0; i < nkeys; i++) {
		n = queue_page_actions[a].act(console_queue(r), keys[i]);
		if (n == -1) {
			log_warnx("console: queue %s %s: %s",
			    queue_page_actions[a].name, keys[i],
			    queue_error(console_queue(r)));
			queue_set_actor(console_queue(r), NULL);
			return -1;
		}
		*done += (size_t)n;
	}
	queue_set_actor(console_queue(r), NULL);
	return 0;
}

void
console_page_queue_post(struct console_req *r)
{
	int a = queue_page_action(console_arg(r, "action"));
	const char *msg = console_arg(r, "msg");
	const char *const *keys;
	size_t nkeys, done = 0;
	int rc;

	if (a < 0) {
		console_fail(r, 400, "unknown action");
		return;
	}
	if (msg != NULL) {
		keys = &msg;
		nkeys = 1;
	} else
		keys = console_args(r, "id", &nkeys);
	if (nkeys > QUEUE_PAGE_SEL_MAX) {
		console_fail(r, 400, "too many recipients selected at once");
		return;
	}
	rc = queue_page_apply(r, a, keys, nkeys, &done);
	log_info("console: queue %s by %s: %zu of %zu selected%s",
	    queue_page_actions[a].name,
	    console_user(r)[0] != '\0' ? console_user(r) : "(loopback)", done,
	    nkeys, rc == -1 ? " (failed)" : "");
	/* A message counts its recipients: at least one was meant. */
	queue_page_back(
	    r, a, done, msg != NULL && done > 0 ? done : nkeys, rc == -1);
}
