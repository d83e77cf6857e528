/*
 * cmd_queue: `danerelay queue list|show|retry|delete|bounce|hold|release
 * [--json] [ID]` and `queue flush [DOMAIN]`: the operator's view of the
 * queue (all of it, or filtered by domain, address or state) and what
 * they may do to it.
 *
 * It is a separate process that opens the relay's database next to the
 * running daemon (WAL: readers never block the writer; writes wait up to
 * the busy timeout); the daemon sees a change on its next scan. It never
 * creates a queue, so running it first (as root) cannot leave the relay a
 * database it cannot write. ID is a queue id (16 hex digits) or a
 * recipient row id (the first column of `list`).
 *
 * With [queue] store = postgres it works on the fleet's queue from any
 * node: a message accepted by one node can be held from another, and
 * `list` says which node is attempting a recipient right now.
 *
 * Exit status: 0 done, 1 nothing matched ID, EX_USAGE bad arguments,
 * EX_CONFIG the config or the queue cannot be opened, EX_SOFTWARE a
 * database error while working.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli/cli.h"
#include "conf/conf.h"
#include "core/xmalloc.h"
#include "queue/queue.h"

#define QUEUE_EXIT_NOMATCH 1
#define QUEUE_HEADERS_MAX  65536 /* of the header section `show` prints */

struct cmd_queue_list {
	json_t *json; /* array, or NULL for text */
	time_t now;
};

struct cmd_queue_opts {
	bool json;
	bool filtered; /* a filter option was given (list only) */
	struct queue_filter f;
};

/* Remote text may hold terminal escapes: print them as '?'. */
static void
cmd_queue_put(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		putchar(c < ' ' && c != '\t' ? '?' : c == 0x7f ? '?' : c);
	}
}

static void
cmd_queue_puts(const char *s)
{
	cmd_queue_put(s, strlen(s));
}

/* A JSON string even for text that is not UTF-8 (bad bytes as '?'). */
static json_t *
cmd_queue_jstr(const char *s)
{
	json_t *j = json_string(s);
	char *copy, *p;

	if (j != NULL)
		return j;
	copy = xstrdup(s);
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j != NULL ? j : json_null();
}

static json_t *
cmd_queue_str_or_null(const char *s)
{
	return s != NULL && *s != '\0' ? cmd_queue_jstr(s) : json_null();
}

static json_t *
cmd_queue_time_json(time_t t)
{
	char iso[QUEUE_TIME_LEN];

	return t != 0 ? json_string(queue_time_iso(t, iso)) : json_null();
}

static json_t *
cmd_queue_notify_json(unsigned notify)
{
	json_t *a;

	if (notify == 0)
		return json_null();
	a = json_array();
	if (notify & QUEUE_NOTIFY_NEVER)
		json_array_append_new(a, json_string("NEVER"));
	if (notify & QUEUE_NOTIFY_SUCCESS)
		json_array_append_new(a, json_string("SUCCESS"));
	if (notify & QUEUE_NOTIFY_FAILURE)
		json_array_append_new(a, json_string("FAILURE"));
	if (notify & QUEUE_NOTIFY_DELAY)
		json_array_append_new(a, json_string("DELAY"));
	return a;
}

/* The JSON form of a recipient (docs/QUEUE.md, `queue list --json`). */
static json_t *
cmd_queue_rcpt_json(const struct queue_rcpt *r, time_t now)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "msgid", json_string(r->msgid));
	json_object_set_new(o, "recipient", cmd_queue_str_or_null(r->addr));
	json_object_set_new(o, "domain", cmd_queue_jstr(r->domain));
	json_object_set_new(
	    o, "status", json_string(queue_rcpt_status_str(r->status)));
	json_object_set_new(o, "attempts", json_integer(r->attempts));
	json_object_set_new(
	    o, "next_attempt", cmd_queue_time_json(r->next_attempt));
	json_object_set_new(
	    o, "last_attempt", cmd_queue_time_json(r->last_attempt));
	json_object_set_new(
	    o, "last_status", cmd_queue_str_or_null(r->last_status));
	json_object_set_new(
	    o, "last_result_type", cmd_queue_str_or_null(r->last_result_type));
	json_object_set_new(
	    o, "last_text", cmd_queue_str_or_null(r->last_text));
	json_object_set_new(o, "last_mta", cmd_queue_str_or_null(r->last_mta));
	json_object_set_new(o, "queued_at", cmd_queue_time_json(r->queued_at));
	json_object_set_new(
	    o, "age", json_integer((json_int_t)(now - r->queued_at)));
	json_object_set_new(o, "orcpt", cmd_queue_str_or_null(r->orcpt));
	json_object_set_new(o, "notify", cmd_queue_notify_json(r->notify));
	json_object_set_new(o, "delay_warned", json_boolean(r->delay_warned));
	json_object_set_new(
	    o, "bounce_requested", json_boolean(r->bounce_requested));
	json_object_set_new(
	    o, "attempting_on", cmd_queue_str_or_null(r->lease_node));
	return o;
}

/* "now" or "in 59m", when the recipient will be tried next. */
static const char *
cmd_queue_next(const struct queue_rcpt *r, time_t now, char buf[32])
{
	char d[32];

	if (r->status == QUEUE_RCPT_HELD)
		return "held";
	if (r->status != QUEUE_RCPT_QUEUED)
		return "-";
	if (r->next_attempt <= now)
		return "now";
	snprintf(buf, 32, "in %s", queue_time_ago(r->next_attempt - now, d));
	return buf;
}

static void
cmd_queue_last(const struct queue_rcpt *r)
{
	if (r->last_attempt == 0) {
		fputs("never tried", stdout);
		return;
	}
	cmd_queue_puts(r->last_status);
	if (r->last_result_type[0] != '\0') {
		putchar(' ');
		cmd_queue_puts(r->last_result_type);
	}
	if (r->last_text[0] != '\0') {
		fputs(": ", stdout);
		cmd_queue_puts(r->last_text);
	}
	if (r->last_mta[0] != '\0') {
		fputs(" (", stdout);
		cmd_queue_puts(r->last_mta);
		putchar(')');
	}
}

/* store = postgres: the node whose attempt is under way now. */
static void
cmd_queue_lease(const struct queue_rcpt *r)
{
	if (r->lease_node == NULL)
		return;
	fputs("attempting on ", stdout);
	cmd_queue_puts(r->lease_node);
	fputs("; ", stdout);
}

static void
cmd_queue_list_cb(const struct queue_rcpt *r, void *arg)
{
	struct cmd_queue_list *l = arg;
	char age[32], next[32];

	if (l->json != NULL) {
		json_array_append_new(l->json, cmd_queue_rcpt_json(r, l->now));
		return;
	}
	printf("%-6lld %s %5s %5d %-8s ", (long long)r->id, r->msgid,
	    queue_time_ago(l->now - r->queued_at, age), r->attempts,
	    cmd_queue_next(r, l->now, next));
	cmd_queue_puts(r->addr);
	fputs("  ", stdout);
	cmd_queue_lease(r);
	cmd_queue_last(r);
	putchar('\n');
}

static int
cmd_queue_json_out(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
	return 0;
}

static int
cmd_queue_do_list(struct queue *q, const struct cmd_queue_opts *o)
{
	struct cmd_queue_list l = { o->json ? json_array() : NULL, time(NULL) };
	int n;

	if (!o->json)
		printf("%-6s %-16s %5s %5s %-8s %s\n", "RCPT", "QUEUE ID",
		    "AGE", "TRIES", "NEXT", "RECIPIENT  LAST RESULT");
	n = queue_list_filter(q, &o->f, cmd_queue_list_cb, &l);
	if (n == -1) {
		json_decref(l.json);
		fprintf(stderr, "danerelay queue: %s\n", queue_error(q));
		return EX_SOFTWARE;
	}
	if (o->json)
		return cmd_queue_json_out(l.json);
	if (n == 0)
		printf(o->filtered ? "(nothing in the queue matches)\n" :
		                     "(the queue is empty)\n");
	return 0;
}

/* Length of the header section of a message (up to the empty line). */
static size_t
cmd_queue_headers_len(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < QUEUE_HEADERS_MAX; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < len && p[i + 1] == '\n')
			return i + 1;
		if (i + 2 < len && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 1;
	}
	return i;
}

/* Print the header section, CRLF as newline, indented. */
static void
cmd_queue_print_headers(const struct queue_msg *m)
{
	size_t n, i, start = 0;

	if (m->data == NULL) {
		printf("headers: (body removed: no recipient is queued)\n");
		return;
	}
	n = cmd_queue_headers_len(m->data, m->len);
	printf("headers:\n");
	for (i = 0; i <= n; i++) {
		if (i < n && m->data[i] != '\n')
			continue;
		if (i > start) {
			size_t end = i;

			if (end > start && m->data[end - 1] == '\r')
				end--;
			fputs("  ", stdout);
			cmd_queue_put(
			    (const char *)m->data + start, end - start);
			putchar('\n');
		}
		start = i + 1;
	}
}

static void
cmd_queue_field(const char *name, const char *value)
{
	if (value == NULL)
		return;
	printf("  %-11s ", name);
	cmd_queue_puts(value);
	putchar('\n');
}

static void
cmd_queue_print_envelope(const struct queue_msg *m, time_t now)
{
	char iso[QUEUE_TIME_LEN], ago[32];

	printf("message %s\n", m->id);
	cmd_queue_field("kind:", queue_kind_str(m->kind));
	printf("  %-11s <", "sender:");
	cmd_queue_puts(m->sender);
	printf(">\n");
	cmd_queue_field("envid:", m->envid);
	cmd_queue_field("ret:", queue_ret_str(m->ret));
	cmd_queue_field("body:", m->body_8bit ? "8bitmime" : "7bit");
	cmd_queue_field("smtputf8:", m->smtputf8 ? "yes" : "no");
	cmd_queue_field("client:", m->client);
	cmd_queue_field("helo:", m->helo);
	cmd_queue_field("auth user:", m->auth_user);
	cmd_queue_field("message-id:", m->message_id);
	printf("  %-11s %s (%s ago)\n",
	    "received:", queue_time_iso(m->received_at, iso),
	    queue_time_ago(now - m->received_at, ago));
	printf("  %-11s %zu octets\n", "size:", m->size);
}

static void
cmd_queue_show_rcpt_cb(const struct queue_rcpt *r, void *arg)
{
	struct cmd_queue_list *l = arg;
	char next[32];

	if (l->json != NULL) {
		json_array_append_new(l->json, cmd_queue_rcpt_json(r, l->now));
		return;
	}
	printf("  %-6lld ", (long long)r->id);
	cmd_queue_puts(r->addr);
	printf(" %s attempts=%d next=%s  ", queue_rcpt_status_str(r->status),
	    r->attempts, cmd_queue_next(r, l->now, next));
	cmd_queue_lease(r);
	cmd_queue_last(r);
	putchar('\n');
}

static json_t *
cmd_queue_msg_json(const struct queue_msg *m)
{
	json_t *o = json_object(), *h;
	char iso[QUEUE_TIME_LEN];

	json_object_set_new(o, "id", json_string(m->id));
	json_object_set_new(o, "kind", json_string(queue_kind_str(m->kind)));
	json_object_set_new(o, "sender", cmd_queue_jstr(m->sender));
	json_object_set_new(o, "envid", cmd_queue_str_or_null(m->envid));
	json_object_set_new(o, "ret", json_string(queue_ret_str(m->ret)));
	json_object_set_new(o, "body_8bit", json_boolean(m->body_8bit));
	json_object_set_new(o, "smtputf8", json_boolean(m->smtputf8));
	json_object_set_new(o, "client", cmd_queue_jstr(m->client));
	json_object_set_new(o, "helo", cmd_queue_str_or_null(m->helo));
	json_object_set_new(
	    o, "auth_user", cmd_queue_str_or_null(m->auth_user));
	json_object_set_new(
	    o, "message_id", cmd_queue_str_or_null(m->message_id));
	json_object_set_new(
	    o, "received_at", json_string(queue_time_iso(m->received_at, iso)));
	json_object_set_new(o, "size", json_integer((json_int_t)m->size));
	json_object_set_new(o, "body_present", json_boolean(m->data != NULL));
	h = NULL;
	if (m->data != NULL)
		h = json_stringn((const char *)m->data,
		    cmd_queue_headers_len(m->data, m->len));
	/* No body, or 8-bit headers that are not UTF-8: null. */
	json_object_set_new(o, "headers", h != NULL ? h : json_null());
	return o;
}

static int
cmd_queue_do_show(struct queue *q, const char *key, bool json)
{
	struct cmd_queue_list l = { NULL, time(NULL) };
	struct queue_msg *m = queue_msg_find(q, key);
	json_t *o = NULL;
	int n;

	if (m == NULL) {
		if (queue_error(q)[0] != '\0') {
			fprintf(
			    stderr, "danerelay queue: %s\n", queue_error(q));
			return EX_SOFTWARE;
		}
		fprintf(stderr, "danerelay queue: no message %s\n", key);
		return QUEUE_EXIT_NOMATCH;
	}
	if (json) {
		o = cmd_queue_msg_json(m);
		l.json = json_array();
		json_object_set_new(o, "recipients", l.json);
	} else {
		cmd_queue_print_envelope(m, l.now);
		printf("recipients:\n");
	}
	n = queue_msg_rcpts(q, m->id, cmd_queue_show_rcpt_cb, &l);
	if (!json && n >= 0)
		cmd_queue_print_headers(m);
	queue_msg_free(m);
	if (n == -1) {
		json_decref(o);
		fprintf(stderr, "danerelay queue: %s\n", queue_error(q));
		return EX_SOFTWARE;
	}
	return json ? cmd_queue_json_out(o) : 0;
}

static const struct {
	const char *name;
	int (*act)(struct queue *, const char *);
	const char *done;
} cmd_queue_actions[] = {
	{ "retry", queue_retry,
	    "due now: the relay tries on its next queue scan" },
	{ "delete", queue_delete, "deleted: no bounce is sent" },
	{ "bounce", queue_bounce,
	    "marked to bounce: the relay returns them to the sender on its "
	    "next queue scan" },
	{ "hold", queue_hold,
	    "held: the relay does not deliver them until they are "
	    "released" },
	{ "release", queue_release,
	    "released and due now: the relay tries on its next queue scan" },
};

static int
cmd_queue_do_action(struct queue *q, const char *verb, const char *key)
{
	size_t i;
	int n;

	for (i = 0; strcmp(cmd_queue_actions[i].name, verb) != 0; i++)
		;
	n = cmd_queue_actions[i].act(q, key);
	if (n == -1) {
		fprintf(
		    stderr, "danerelay queue %s: %s\n", verb, queue_error(q));
		return EX_SOFTWARE;
	}
	if (n == 0) {
		fprintf(stderr,
		    "danerelay queue %s: nothing %s matches "
		    "%s\n",
		    verb, strcmp(verb, "release") == 0 ? "held" : "queued",
		    key);
		return QUEUE_EXIT_NOMATCH;
	}
	printf("queue %s %s: %d recipient%s %s\n", verb, key, n,
	    n == 1 ? "" : "s", cmd_queue_actions[i].done);
	return 0;
}

/* Nothing waiting is no failure: the flush did what was asked. */
static int
cmd_queue_do_flush(struct queue *q, const char *domain)
{
	int n = queue_flush(q, domain);

	if (n == -1) {
		fprintf(stderr, "danerelay queue flush: %s\n", queue_error(q));
		return EX_SOFTWARE;
	}
	printf("queue flush%s%s: %d recipient%s due now: the relay tries on "
	       "its next queue scan\n",
	    domain != NULL ? " " : "", domain != NULL ? domain : "", n,
	    n == 1 ? "" : "s");
	return 0;
}

/* Whether verb is known: how many ID arguments it takes at least (*min)
 * and at most (return), or -1. */
static int
cmd_queue_arity(const char *verb, int *min)
{
	size_t i;

	*min = 0;
	if (strcmp(verb, "list") == 0)
		return 0;
	if (strcmp(verb, "flush") == 0)
		return 1;
	*min = 1;
	if (strcmp(verb, "show") == 0)
		return 1;
	for (i = 0;
	     i < sizeof(cmd_queue_actions) / sizeof(cmd_queue_actions[0]); i++)
		if (strcmp(cmd_queue_actions[i].name, verb) == 0)
			return 1;
	return -1;
}

static int
cmd_queue_opt(int ch, struct cmd_queue_opts *o)
{
	switch (ch) {
	case 'j':
		o->json = true;
		return 0;
	case 'd':
		o->f.domain = optarg;
		break;
	case 'f':
		o->f.sender = optarg;
		break;
	case 'r':
		o->f.recipient = optarg;
		break;
	case 's':
		if (queue_state_parse(optarg, &o->f.state) == -1)
			return -1;
		break;
	default:
		return -1;
	}
	o->filtered = true;
	return 0;
}

static int
cmd_queue_parse(int argc, char **argv, struct cmd_queue_opts *o)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "domain", required_argument, NULL, 'd' },
		{ "sender", required_argument, NULL, 'f' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, max, min, nargs;

	/*
	 * optind = 0 re-initialises GNU getopt, which main left in "stop at
	 * the first operand" mode: here --json may follow the verb or ID.
	 */
	optind = 0;
	while ((ch = getopt_long(argc, argv, "j", longopts, NULL)) != -1)
		if (cmd_queue_opt(ch, o) == -1)
			return -1;
	if (optind >= argc || (max = cmd_queue_arity(argv[optind], &min)) == -1)
		return -1;
	nargs = argc - optind - 1;
	if (nargs < min || nargs > max ||
	    (o->filtered && strcmp(argv[optind], "list") != 0))
		return -1;
	return optind;
}

int
cmd_queue(int argc, char **argv, struct cli_ctx *ctx)
{
	struct cmd_queue_opts o = { 0 };
	struct conf *c;
	struct queue *q;
	char *err = NULL;
	int at, rc;

	if ((at = cmd_queue_parse(argc, argv, &o)) == -1)
		return cli_usage("queue");
	c = cli_load_conf(ctx);
	q = queue_open_conf(c, false, &err);
	conf_free(c);
	if (q == NULL) {
		fprintf(stderr, "danerelay queue: %s\n", err);
		free(err);
		return EX_CONFIG;
	}
	if (strcmp(argv[at], "list") == 0)
		rc = cmd_queue_do_list(q, &o);
	else if (strcmp(argv[at], "show") == 0)
		rc = cmd_queue_do_show(q, argv[at + 1], o.json);
	else if (strcmp(argv[at], "flush") == 0)
		rc = cmd_queue_do_flush(q, at + 1 < argc ? argv[at + 1] : NULL);
	else
		rc = cmd_queue_do_action(q, argv[at], argv[at + 1]);
	queue_close(q);
	return rc;
}
