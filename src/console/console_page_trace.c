/*
 * console_page_trace: /trace, the message trace an administrator searches
 * in a browser, and /trace/ID, one message's timeline.
 *
 * The search is `danerelay trace`'s: the same queue_trace() with the same
 * struct queue_trace_filter (sender, recipient, message id, domain, since,
 * until) plus a limit, so the console asks no query of its own. A
 * message's page tells its story event by event: received (client, HELO,
 * login), each attempt (MX, address, TLS, the DANE or MTA-STS result, the
 * reply), deferred, delivered or bounced, and the DSNs sent; a failure is
 * explained in the very words the sender's non-delivery report uses
 * (dsn_explain_rcpt, src/dsn/dsn_text.c).
 *
 * With [fleet] postgres the search and the timeline are the fleet's
 * (console_fleet.c): every node's messages, the node that accepted each
 * one and the node of each attempt in a column of their own. The
 * recipients' current states are those of this node's queue; a message
 * queued on another node lists the recipients of its events instead.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "console/console_fleet.h"
#include "console/console_int.h"
#include "core/xmalloc.h"
#include "dsn/dsn.h"
#include "queue/queue.h"
#include "queue/queue_trace.h"

void console_page_trace(struct console_req *r);
void console_page_trace_message(struct console_req *r);

/* Messages listed at most; more matching ones ask for a narrower search. */
#define TRACE_LIMIT 100

/* The search form's fields: query name, label, example. */
static const struct {
	const char *name, *label, *example;
} trace_fields[] = {
	{ "sender", "Sender", "alice@example.org, or <> for reports" },
	{ "recipient", "Recipient", "bob@example.com" },
	{ "message_id", "Message ID", "queue id or Message-ID" },
	{ "domain", "Recipient domain", "example.com" },
	{ "since", "Since (UTC)", "1h, 2d, 2026-12-07" },
	{ "until", "Until (UTC)", "30m, 2026-12-07T10:00" },
};
#define TRACE_NFIELDS (sizeof(trace_fields) / sizeof(trace_fields[0]))

/* An argument, or NULL when absent or empty. */
static const char *
trace_arg(struct console_req *r, const char *name)
{
	const char *v = console_arg(r, name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

static void
trace_form(struct console_req *r)
{
	size_t i;

	console_printf(r,
	    "<form method=\"get\" action=\"/trace\" "
	    "class=\"filters\" id=\"trace-search\">\n");
	for (i = 0; i < TRACE_NFIELDS; i++) {
		console_printf(r, "<label>%s <input type=\"text\" name=\"%s\"",
		    trace_fields[i].label, trace_fields[i].name);
		console_printf(
		    r, " placeholder=\"%s\" value=\"", trace_fields[i].example);
		console_text(r,
		    trace_arg(r, trace_fields[i].name) != NULL ?
		        trace_arg(r, trace_fields[i].name) :
		        "");
		console_printf(r, "\"></label>\n");
	}
	console_printf(r,
	    "<button type=\"submit\">Search</button>\n"
	    "</form>\n");
}

/*
 * The filter from the query; NULL, or the reason it is not one (a time
 * that does not parse) with its field's label in *label.
 */
static const char *
trace_filter(
    struct console_req *r, struct queue_trace_filter *f, const char **label)
{
	const char *errstr, *s;
	time_t now = time(NULL);

	memset(f, 0, sizeof(*f));
	f->sender = trace_arg(r, "sender");
	f->recipient = trace_arg(r, "recipient");
	f->message_id = trace_arg(r, "message_id");
	f->domain = trace_arg(r, "domain");
	if ((s = trace_arg(r, "since")) != NULL &&
	    (errstr = queue_trace_parse_when(s, now, false, &f->since)) !=
	        NULL) {
		*label = "Since";
		return errstr;
	}
	if ((s = trace_arg(r, "until")) != NULL &&
	    (errstr = queue_trace_parse_when(s, now, true, &f->until)) !=
	        NULL) {
		*label = "Until";
		return errstr;
	}
	/* One more than is shown, to know that there are more. */
	f->limit = TRACE_LIMIT + 1;
	return NULL;
}

/* An ISO 8601 time of the trace as people write it: "2026-12-07 10:42:05Z". */
static void
trace_when(struct console_req *r, const char *iso)
{
	char *t = xstrdup(iso != NULL ? iso : "");

	if (strlen(t) > 10 && t[10] == 'T')
		t[10] = ' ';
	console_text(r, t);
	free(t);
}

/* "deferred" for a queued recipient that was tried, else its status. */
static const char *
trace_rcpt_state(const struct queue_rcpt *q)
{
	if (q->status == QUEUE_RCPT_QUEUED && q->attempts > 0)
		return "deferred";
	return queue_rcpt_status_str(q->status);
}

/* The stylesheet's colour for a state. */
static const char *
trace_state_class(const char *state)
{
	if (strcmp(state, "delivered") == 0)
		return "ok";
	if (strcmp(state, "bounced") == 0)
		return "bad";
	if (strcmp(state, "deferred") == 0)
		return "warn";
	return "muted";
}

/* A results row's recipients cell being written. */
struct trace_cell {
	struct console_req *r;
	int n;
};

static void
trace_rcpt_cell(const struct queue_rcpt *q, void *arg)
{
	struct trace_cell *c = arg;
	struct console_req *r = c->r;
	const char *state = trace_rcpt_state(q);

	c->n++;
	console_printf(r, "<div>");
	console_text(r, q->addr);
	console_printf(r, " <span class=\"state %s\">%s</span></div>",
	    trace_state_class(state), state);
}

/* The recipients of a message this node's queue does not hold (queued
 * on another node of the fleet, or purged): those of its "queued"
 * events. */
static void
trace_event_rcpts(struct console_req *r, const json_t *m)
{
	const json_t *evs = json_object_get(m, "events"), *ev;
	const char *type, *rcpt;
	size_t i;

	json_array_foreach(evs, i, ev)
	{
		type = json_string_value(json_object_get(ev, "type"));
		rcpt = json_string_value(json_object_get(ev, "recipient"));
		if (type == NULL || rcpt == NULL || strcmp(type, "queued") != 0)
			continue;
		console_printf(r, "<div>");
		console_text(r, rcpt);
		console_printf(r, "</div>");
	}
}

/* The sender as SMTP writes it: <> is the null reverse-path. */
static void
trace_sender(struct console_req *r, const json_t *m)
{
	const char *s = json_string_value(json_object_get(m, "sender"));

	console_text(r, s != NULL && s[0] != '\0' ? s : "<>");
}

static void
trace_row(struct console_req *r, const json_t *m)
{
	const char *id = json_string_value(json_object_get(m, "id"));
	const char *mid = json_string_value(json_object_get(m, "message_id"));
	struct trace_cell cell;
	char *href;

	if (id == NULL)
		return;
	console_printf(r, "<tr><td>");
	trace_when(r, json_string_value(json_object_get(m, "received_at")));
	href = xasprintf("/trace/%s", id);
	console_printf(r, "</td><td class=\"qid\">");
	console_link(r, id, href, NULL);
	free(href);
	console_printf(r, "</td><td>");
	trace_sender(r, m);
	console_printf(r, "</td><td class=\"rcpts\">");
	cell.r = r;
	cell.n = 0;
	queue_msg_rcpts(console_queue(r), id, trace_rcpt_cell, &cell);
	if (cell.n == 0)
		trace_event_rcpts(r, m);
	console_printf(r, "</td><td>");
	console_text(r, mid != NULL ? mid : "");
	if (json_is_string(json_object_get(m, "node"))) {
		console_printf(r, "</td><td class=\"node\">");
		console_text(r, json_string_value(json_object_get(m, "node")));
	}
	console_printf(r, "</td></tr>\n");
}

static void
trace_results(struct console_req *r, const struct queue_trace_filter *f)
{
	const char *err = NULL;
	json_t *tr = console_fleet_trace(r, f, &err);
	size_t i, n = json_array_size(tr), first = 0;

	if (tr == NULL) {
		console_printf(r,
		    "<p class=\"error\">The trace could not be "
		    "read: ");
		console_text(r, err);
		console_printf(r, "</p>\n");
		return;
	}
	if (n > TRACE_LIMIT) {
		first = n - TRACE_LIMIT; /* oldest first: drop the oldest */
		console_printf(r,
		    "<p class=\"note\" id=\"trace-more\">More than %d "
		    "messages match: the %d most recent are shown. Narrow "
		    "the search to see the others.</p>\n",
		    TRACE_LIMIT, TRACE_LIMIT);
	} else
		console_printf(r,
		    "<p class=\"note\" id=\"trace-count\">%zu matching "
		    "message%s.</p>\n",
		    n, n == 1 ? "" : "s");
	if (n > 0) {
		console_printf(r,
		    "<table class=\"list\" id=\"trace-results\"><thead><tr>"
		    "<th>Received (UTC)</th><th>Queue ID</th><th>Sender</th>"
		    "<th>Recipients</th><th>Message-ID</th>%s</tr></thead>"
		    "<tbody>\n",
		    console_fleet_used(r) ? "<th>Node</th>" : "");
		/* Newest first, as people read a log. */
		for (i = n; i > first; i--)
			trace_row(r, json_array_get(tr, i - 1));
		console_printf(r, "</tbody></table>\n");
	}
	json_decref(tr);
}

void
console_page_trace(struct console_req *r)
{
	struct queue_trace_filter f;
	const char *errstr, *label = NULL;

	console_begin(r, "Message trace", false);
	trace_form(r);
	if ((errstr = trace_filter(r, &f, &label)) != NULL) {
		console_printf(
		    r, "<p class=\"error\" id=\"trace-error\">%s: ", label);
		console_text(r, errstr);
		console_printf(r, "</p>\n");
	} else
		trace_results(r, &f);
	console_end(r);
}

/* --- one message --- */

/* The string field key of ev, or NULL; records that it was shown. */
static const char *
trace_field(json_t *ev, json_t *shown, const char *key)
{
	json_object_set_new(shown, key, json_true());
	return json_string_value(json_object_get(ev, key));
}

/* " label value" when the field is a string; returns whether it was. */
static bool
trace_fact(struct console_req *r, json_t *ev, json_t *shown, const char *label,
    const char *key)
{
	const char *v = trace_field(ev, shown, key);

	if (v == NULL)
		return false;
	console_printf(
	    r, "<span class=\"fact\"><span class=\"muted\">%s</span> ", label);
	console_text(r, v);
	console_printf(r, "</span> ");
	return true;
}

/* The fields no rule below showed, as key=value: nothing is hidden. */
static void
trace_rest(struct console_req *r, json_t *ev, const json_t *shown)
{
	const char *key;
	json_t *v;
	char *dump;

	json_object_foreach(ev, key, v)
	{
		if (json_object_get(shown, key) != NULL ||
		    strcmp(key, "at") == 0 || strcmp(key, "type") == 0 ||
		    strcmp(key, "recipient") == 0)
			continue;
		dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		console_printf(r, "<span class=\"fact more\">");
		console_text(r, key);
		console_printf(r, "=");
		console_text(r,
		    json_is_string(v) ? json_string_value(v) :
		        dump != NULL  ? dump :
		                        "?");
		console_printf(r, "</span> ");
		free(dump);
	}
}

static void
trace_received(struct console_req *r, json_t *ev, json_t *shown)
{
	json_t *n = json_object_get(ev, "recipients");

	trace_fact(r, ev, shown, "from", "client");
	trace_fact(r, ev, shown, "HELO", "helo");
	if (!trace_fact(r, ev, shown, "authenticated as", "auth_user"))
		console_printf(r, "<span class=\"fact\">no login</span> ");
	console_printf(
	    r, "<span class=\"fact\"><span class=\"muted\">sender</span> ");
	console_text(r,
	    json_string_length(json_object_get(ev, "sender")) > 0 ?
	        json_string_value(json_object_get(ev, "sender")) :
	        "<>");
	console_printf(r, "</span> ");
	json_object_set_new(shown, "sender", json_true());
	if (json_is_integer(n))
		console_printf(r,
		    "<span class=\"fact\">%" JSON_INTEGER_FORMAT
		    " recipient%s</span> ",
		    json_integer_value(n),
		    json_integer_value(n) == 1 ? "" : "s");
	json_object_set_new(shown, "recipients", json_true());
	/* In the envelope table above the timeline. */
	json_object_set_new(shown, "kind", json_true());
	json_object_set_new(shown, "size", json_true());
	json_object_set_new(shown, "message_id", json_true());
}

/* The security of an attempt in the words of the transit report. */
static const char *
trace_security_words(const char *sec, bool delivered)
{
	static const struct {
		const char *name, *sent, *required;
	} words[] = {
		{ "dane", "DANE-verified", "DANE required" },
		{ "dane_trusted", "DANE-trusted (MX RRset not signed)",
		    "DANE required" },
		{ "sts", "MTA-STS", "MTA-STS required" },
		{ "tls", "opportunistic TLS", "TLS required" },
		{ "plaintext", "no TLS", "no TLS" },
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(words[i].name, sec) == 0)
			return delivered ? words[i].sent : words[i].required;
	return sec;
}

/* RFC 7218 acronym of the usage of "3 1 1" (stored "3-1-1"). */
static const char *
trace_tlsa_usage(const char *tlsa)
{
	static const char *const usages[] = { "PKIX-TA", "PKIX-EE", "DANE-TA",
		"DANE-EE" };

	if (tlsa[0] >= '0' && tlsa[0] <= '3' &&
	    (tlsa[1] == ' ' || tlsa[1] == '-'))
		return usages[tlsa[0] - '0'];
	return "?";
}

/*
 * The explanation the sender reads in the report for this status and
 * result type, with the recipient's domain and the MX named.
 */
static void
trace_explain(struct console_req *r, const char *addr, const char *status,
    const char *rt, const char *mx, const char *text)
{
	struct dsn_rcpt d;
	char *words;

	if (status == NULL)
		return;
	memset(&d, 0, sizeof(d));
	d.addr = addr;
	d.status = status;
	d.result_type = rt;
	d.remote_mta = mx;
	d.diagnostic = text;
	words = dsn_explain_rcpt(&d);
	console_printf(r, "<p class=\"explain\">");
	console_text(r, words);
	console_printf(r, "</p>");
	free(words);
}

/*
 * A log-only attempt: what enforcement would have done, from would_fail
 * "tlsa-invalid (4.7.323)" (or "TEXT (STATUS)") and its explanation.
 */
static void
trace_would_fail(
    struct console_req *r, json_t *ev, json_t *shown, const char *addr)
{
	const char *wf = trace_field(ev, shown, "would_fail");
	const char *wt = trace_field(ev, shown, "would_fail_text");
	const char *open;
	char *rt, *status;
	size_t len;

	if (wf == NULL)
		return;
	console_printf(r,
	    "<p class=\"would-fail\"><strong>Log-only: "
	    "enforcement would have blocked this "
	    "message</strong> ");
	console_text(r, wf);
	if (wt != NULL) {
		console_printf(r, ": ");
		console_text(r, wt);
	}
	console_printf(r, "</p>");
	open = strrchr(wf, '(');
	len = strlen(wf);
	if (open == NULL || open == wf || wf[len - 1] != ')')
		return;
	rt = xstrndup(wf, (size_t)(open - wf - 1));
	status = xstrndup(open + 1, (size_t)(wf + len - 1 - open - 1));
	trace_explain(r, addr, status, rt,
	    json_string_value(json_object_get(ev, "mx")), wt);
	free(rt);
	free(status);
}

static void
trace_attempt_tls(struct console_req *r, json_t *ev, json_t *shown)
{
	const char *tls = trace_field(ev, shown, "tls");
	const char *tlsa = trace_field(ev, shown, "tlsa");
	char *rec, *p;

	console_printf(
	    r, "<span class=\"fact\"><span class=\"muted\">TLS</span> ");
	console_text(r, tls == NULL || strcmp(tls, "none") == 0 ? "none" : tls);
	if (json_object_get(ev, "tls_version") != NULL) {
		console_printf(r, ", ");
		console_text(r, trace_field(ev, shown, "tls_version"));
		console_printf(r, " ");
		console_text(r, trace_field(ev, shown, "cipher"));
	}
	console_printf(r, "</span> ");
	if (tlsa != NULL) {
		console_printf(r,
		    "<span class=\"fact\"><span "
		    "class=\"muted\">TLSA</span> ");
		/* As a zone writes the record: "3 1 1", not "3-1-1". */
		rec = xstrdup(tlsa);
		for (p = rec; *p != '\0'; p++)
			if (*p == '-')
				*p = ' ';
		console_text(r, rec);
		free(rec);
		console_printf(r, " (%s) matched", trace_tlsa_usage(tlsa));
		if (json_object_get(ev, "tlsa_base") != NULL) {
			console_printf(r, " at ");
			console_text(r, trace_field(ev, shown, "tlsa_base"));
		}
		console_printf(r, "</span> ");
	}
}

static void
trace_attempt(struct console_req *r, json_t *ev, json_t *shown)
{
	const char *addr = json_string_value(json_object_get(ev, "recipient"));
	const char *mx = trace_field(ev, shown, "mx");
	const char *status = trace_field(ev, shown, "status");
	const char *rt = trace_field(ev, shown, "result_type");
	const char *text = trace_field(ev, shown, "text");
	const char *sec = trace_field(ev, shown, "security");
	json_t *port = json_object_get(ev, "port");

	console_printf(
	    r, "<span class=\"fact\"><span class=\"muted\">MX</span> ");
	console_text(r, mx != NULL ? mx : "none");
	if (json_object_get(ev, "ip") != NULL) {
		console_printf(r, " [");
		console_text(r, trace_field(ev, shown, "ip"));
		console_printf(r, "]");
		if (json_is_integer(port))
			console_printf(r, ":%" JSON_INTEGER_FORMAT,
			    json_integer_value(port));
	}
	console_printf(r, "</span> ");
	json_object_set_new(shown, "port", json_true());
	json_object_set_new(shown, "relay", json_true()); /* mx [ip]:port */
	trace_attempt_tls(r, ev, shown);
	if (sec != NULL) {
		console_printf(r,
		    "<span class=\"fact security\" "
		    "data-security=\"");
		console_text(r, sec);
		console_printf(r, "\"><span class=\"muted\">security</span> ");
		console_text(r,
		    trace_security_words(
		        sec, status != NULL && status[0] == '2'));
		console_printf(r, "</span> ");
	}
	trace_fact(r, ev, shown, "policy", "policy");
	trace_fact(r, ev, shown, "exception", "exception");
	console_printf(
	    r, "<span class=\"fact\"><span class=\"muted\">status</span> ");
	console_text(r, status != NULL ? status : "?");
	if (rt != NULL) {
		console_printf(r, " ");
		console_text(r, rt);
	}
	console_printf(r, "</span> ");
	if (text != NULL) {
		/* The report's own labels: "Remote reply" or "Reason". */
		console_printf(r,
		    "<p class=\"reply\"><span class=\"muted\">%s</span> "
		    "<code>",
		    dsn_text_is_reply(text) ? "reply" : "reason");
		console_text(r, text);
		console_printf(r, "</code></p>");
	}
	trace_explain(r, addr, status, rt, mx, text);
	trace_would_fail(r, ev, shown, addr);
}

/* deferred, delivered, bounced: the verdict after an attempt. */
static void
trace_verdict(struct console_req *r, json_t *ev, json_t *shown)
{
	trace_fact(r, ev, shown, "status", "status");
	trace_fact(r, ev, shown, "result type", "result_type");
	trace_fact(r, ev, shown, "next attempt", "next_attempt");
}

static void
trace_dsn_sent(struct console_req *r, json_t *ev, json_t *shown)
{
	const char *dsn = trace_field(ev, shown, "dsn");
	char *href;

	console_printf(r, "Delivery status notification ");
	trace_fact(r, ev, shown, "action", "action");
	trace_fact(r, ev, shown, "sent to", "to");
	if (dsn != NULL) {
		console_printf(r,
		    "<span class=\"fact\"><span "
		    "class=\"muted\">report</span> ");
		href = xasprintf("/trace/%s", dsn);
		console_link(r, dsn, href, NULL);
		free(href);
		console_printf(r, "</span> ");
	}
}

/* The words for an event type (the stored name when it has none). */
static const char *
trace_type_words(const char *type)
{
	static const char *const words[][2] = {
		{ "received", "received" },
		{ "queued", "queued" },
		{ "attempt", "delivery attempt" },
		{ "deferred", "deferred" },
		{ "delivered", "delivered" },
		{ "bounced", "bounced" },
		{ "dsn-sent", "DSN sent" },
		{ "would-fail", "would fail (log-only)" },
		{ "retry", "retry (operator)" },
		{ "bounce-requested", "bounce requested (operator)" },
		{ "deleted", "deleted (operator)" },
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(words[i][0], type) == 0)
			return words[i][1];
	return type;
}

static void
trace_event(struct console_req *r, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *rcpt = json_string_value(json_object_get(ev, "recipient"));
	json_t *shown = json_object();

	if (type == NULL)
		type = "?";
	console_printf(r, "<tr class=\"ev ev-");
	console_text(r, type);
	console_printf(r, "\"><td class=\"at\">");
	trace_when(r, json_string_value(json_object_get(ev, "at")));
	console_printf(r, "</td><td class=\"type\">");
	console_text(r, trace_type_words(type));
	console_printf(r, "</td><td class=\"rcpt\">");
	console_text(r, rcpt != NULL ? rcpt : "");
	/* Over the fleet: the node that made this attempt. */
	if (json_is_string(json_object_get(ev, "node"))) {
		console_printf(r, "</td><td class=\"node\">");
		console_text(r, json_string_value(json_object_get(ev, "node")));
		json_object_set_new(shown, "node", json_true());
	}
	console_printf(r, "</td><td class=\"details\">");
	if (strcmp(type, "received") == 0)
		trace_received(r, ev, shown);
	else if (strcmp(type, "attempt") == 0)
		trace_attempt(r, ev, shown);
	else if (strcmp(type, "deferred") == 0 ||
	    strcmp(type, "delivered") == 0 || strcmp(type, "bounced") == 0)
		trace_verdict(r, ev, shown);
	else if (strcmp(type, "dsn-sent") == 0)
		trace_dsn_sent(r, ev, shown);
	trace_rest(r, ev, shown);
	console_printf(r, "</td></tr>\n");
	json_decref(shown);
}

static void
trace_rcpt_row(const struct queue_rcpt *q, void *arg)
{
	struct trace_cell *c = arg;
	struct console_req *r = c->r;
	const char *state = trace_rcpt_state(q);

	c->n++;
	console_printf(r, "<tr><td>");
	console_text(r, q->addr);
	console_printf(r,
	    "</td><td><span class=\"state %s\">%s</span></td>"
	    "<td class=\"num\">%d</td><td>",
	    trace_state_class(state), state, q->attempts);
	console_text(r, q->last_status);
	if (q->last_result_type[0] != '\0') {
		console_printf(r, " ");
		console_text(r, q->last_result_type);
	}
	console_printf(r, "</td><td>");
	console_text(r, q->last_mta);
	console_printf(r, "</td></tr>\n");
}

static void
trace_message(struct console_req *r, const json_t *m)
{
	const char *id = json_string_value(json_object_get(m, "id"));
	const char *mid = json_string_value(json_object_get(m, "message_id"));
	const char *node = json_string_value(json_object_get(m, "node"));
	json_t *evs = json_object_get(m, "events");
	struct trace_cell cell = { r, 0 };
	size_t i;

	console_printf(r,
	    "<table class=\"facts\" id=\"message\"><tr><th>Queue "
	    "ID</th><td class=\"qid\">");
	console_text(r, id);
	console_printf(r, "</td></tr><tr><th>Sender</th><td>");
	trace_sender(r, m);
	console_printf(r, "</td></tr><tr><th>Message-ID</th><td>");
	console_text(r, mid != NULL ? mid : "none");
	console_printf(r, "</td></tr><tr><th>Received</th><td>");
	trace_when(r, json_string_value(json_object_get(m, "received_at")));
	console_printf(r, "</td></tr><tr><th>Kind, size</th><td>");
	console_text(r, json_string_value(json_object_get(m, "kind")));
	console_printf(r, ", %" JSON_INTEGER_FORMAT " octets</td></tr>",
	    json_integer_value(json_object_get(m, "size")));
	if (node != NULL) {
		console_printf(r,
		    "<tr><th>Accepted by</th><td class=\"node\" "
		    "id=\"accepted-by\">");
		console_text(r, node);
		console_printf(r, "</td></tr>");
	}
	console_printf(r, "</table>\n");
	console_printf(r,
	    "<h2>Recipients</h2>\n<table class=\"list\" "
	    "id=\"recipients\"><thead><tr><th>Recipient</th>"
	    "<th>State</th><th>Attempts</th><th>Last "
	    "result</th><th>Last MX</th></tr></thead><tbody>\n");
	queue_msg_rcpts(console_queue(r), id, trace_rcpt_row, &cell);
	console_printf(r, "</tbody></table>\n");
	if (cell.n == 0 && node != NULL) {
		console_printf(
		    r, "<p class=\"note\" id=\"elsewhere\">Queued on ");
		console_text(r, node);
		console_printf(r,
		    ": the recipients' current states are in that node's "
		    "queue. The timeline has every attempt of every "
		    "node.</p>\n");
	}
	console_printf(r,
	    "<h2>Timeline</h2>\n<table "
	    "class=\"list timeline\" id=\"timeline\"><thead><tr>"
	    "<th>Time (UTC)</th><th>Event</th><th>Recipient</th>%s"
	    "<th>Details</th></tr></thead><tbody>\n",
	    node != NULL ? "<th>Node</th>" : "");
	for (i = 0; i < json_array_size(evs); i++)
		if (json_is_object(json_array_get(evs, i)))
			trace_event(r, json_array_get(evs, i));
	console_printf(r, "</tbody></table>\n");
}

void
console_page_trace_message(struct console_req *r)
{
	struct queue_trace_filter f;
	const char *id = console_rest(r), *err = NULL;
	json_t *tr;
	char *title;
	size_t i;

	memset(&f, 0, sizeof(f));
	f.message_id = id;
	f.limit = TRACE_LIMIT;
	if (id == NULL || id[0] == '\0') {
		console_fail(r, 404, "No message given: search on /trace.");
		return;
	}
	if ((tr = console_fleet_trace(r, &f, &err)) == NULL) {
		console_fail(r, 500, err);
		return;
	}
	if (json_array_size(tr) == 0) {
		title = xasprintf("No message with the queue id or Message-ID "
		                  "%s (it may have been purged: finished "
		                  "messages are kept 30 days).",
		    id);
		console_fail(r, 404, title);
		free(title);
		json_decref(tr);
		return;
	}
	title = xasprintf("Message %s", id);
	console_begin(r, title, false);
	free(title);
	for (i = 0; i < json_array_size(tr); i++)
		trace_message(r, json_array_get(tr, i));
	console_end(r);
	json_decref(tr);
}
