/*
 * test_queue: the durable store. Round trips (byte-exact bodies), the due
 * index, state changes, body garbage collection, events and trace,
 * operator actions, two connections at once, durability across reopen and
 * kill -9, refusal of garbage and newer databases, and a 10,000 message
 * sanity run.
 *
 * Fixture mode: with DANERELAY_TEST_QUEUE_DIR set, the program only fills
 * a queue in that directory (see fixture()) and prints the ids it made, one
 * "NAME ID" per line; tests/integration/test_queue_cmd.sh runs the real
 * `danerelay queue` and `trace` commands on it.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "queue/queue.h"
#include "queue/queue_trace.h"
#include "t.h"

/* A copy of what a callback saw, so tests can look at it afterwards. */
struct seen_rcpt {
	int64_t id;
	char msgid[QUEUE_ID_LEN];
	char addr[128], domain[128], orcpt[128];
	char last_status[16], last_rt[64], last_text[256], last_mta[128];
	unsigned notify;
	enum queue_rcpt_status status;
	int attempts;
	time_t queued_at, next, last_attempt;
	bool warned, bounce;
};

struct seen {
	size_t n;
	struct seen_rcpt r[64];
};

static void
seen_cb(const struct queue_rcpt *r, void *arg)
{
	struct seen *s = arg;
	struct seen_rcpt *c;

	if (s->n >= sizeof(s->r) / sizeof(s->r[0]))
		return;
	c = &s->r[s->n++];
	c->id = r->id;
	snprintf(c->msgid, sizeof(c->msgid), "%s", r->msgid);
	snprintf(c->addr, sizeof(c->addr), "%s", r->addr);
	snprintf(c->domain, sizeof(c->domain), "%s", r->domain);
	snprintf(c->orcpt, sizeof(c->orcpt), "%s",
	    r->orcpt != NULL ? r->orcpt : "(null)");
	snprintf(c->last_status, sizeof(c->last_status), "%s", r->last_status);
	snprintf(c->last_rt, sizeof(c->last_rt), "%s", r->last_result_type);
	snprintf(c->last_text, sizeof(c->last_text), "%s", r->last_text);
	snprintf(c->last_mta, sizeof(c->last_mta), "%s", r->last_mta);
	c->notify = r->notify;
	c->status = r->status;
	c->attempts = r->attempts;
	c->queued_at = r->queued_at;
	c->next = r->next_attempt;
	c->last_attempt = r->last_attempt;
	c->warned = r->delay_warned;
	c->bounce = r->bounce_requested;
}

/* A fresh temporary directory; the queue goes in its "q" (not made yet). */
static char *
tmp_new(void)
{
	char tmpl[] = "/tmp/dr-test-queue.XXXXXX";

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	return xasprintf("%s/q", tmpl);
}

static void
rm_tree(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);
	char *sub;

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			sub = xasprintf("%s/%s", path, de->d_name);
			rm_tree(sub);
			free(sub);
		}
		closedir(d);
		rmdir(path);
	} else
		unlink(path);
}

/* Remove the queue dir and its temporary parent; frees dir. */
static void
tmp_free(char *dir)
{
	char *slash = strrchr(dir, '/');

	*slash = '\0';
	rm_tree(dir);
	free(dir);
}

static struct queue *
open_ok(const char *dir)
{
	char *err = NULL;
	struct queue *q = queue_open(dir, &err);

	if (q == NULL) {
		printf("queue_open %s: %s\n", dir, err);
		free(err);
		exit(2);
	}
	return q;
}

static const char simple_body[] = "Subject: t\r\n\r\nhi\r\n";
#define SIMPLE_LEN (sizeof(simple_body) - 1)

struct msg_spec {
	const char *sender;
	const char *message_id;
	const char *rcpts[4];
	const uint8_t *data;
	size_t len;
};

static int
add_spec(struct queue *q, const struct msg_spec *s, char id[QUEUE_ID_LEN])
{
	struct queue_rcpt_in r[4];
	struct queue_msg_in m = { 0 };
	char *err = NULL;
	size_t n = 0;
	int rc;

	memset(r, 0, sizeof(r));
	while (n < 4 && s->rcpts[n] != NULL) {
		r[n].addr = s->rcpts[n];
		n++;
	}
	m.sender = s->sender;
	m.client = "client.example [192.0.2.9]:4711";
	m.helo = "client.example";
	m.message_id = s->message_id;
	m.data = s->data != NULL ? s->data : (const uint8_t *)simple_body;
	m.len = s->data != NULL ? s->len : SIMPLE_LEN;
	m.rcpts = r;
	m.nrcpt = n;
	id[0] = '\0'; /* let the queue draw the id */
	rc = queue_add(q, &m, id, &err);
	if (rc == -1)
		printf("queue_add: %s\n", err);
	free(err);
	return rc;
}

static int
add_simple(struct queue *q, const char *rcpt, char id[QUEUE_ID_LEN])
{
	struct msg_spec s = { "alice@example.org", "<m@example.org>",
		{ rcpt, NULL }, NULL, 0 };

	return add_spec(q, &s, id);
}

static const struct queue_attempt att_defer = { "4.7.323", "dane-required",
	"no usable TLSA records", "mx1.example.com[192.0.2.1]:25" };
static const struct queue_attempt att_ok = { "2.0.0", NULL, "250 2.0.0 Ok",
	"mx1.example.com[192.0.2.1]:25" };
static const struct queue_attempt att_fail = { "5.1.1", NULL,
	"550 5.1.1 no such user", "mx1.example.com[192.0.2.1]:25" };

static void
open_creates_private_dir(void)
{
	char *dir = tmp_new(), *db;
	struct queue *q = open_ok(dir);
	struct stat sb;

	T_CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	db = xasprintf("%s/queue.db", dir);
	T_CHECK(access(db, F_OK) == 0);
	T_STREQ(queue_error(q), "");
	queue_close(q);
	queue_close(NULL);
	free(db);
	tmp_free(dir);
}

static void
roundtrip_bodies(void)
{
	static const uint8_t nul[] = { 'a', 0, 'b', 0, 0, '\r', '\n' };
	static const uint8_t high[] = { 0x80, 0xff, 0xfe, 0xc3, 0xa9, 0x00,
		0x7f, '\r', '\n' };
	static const struct {
		const uint8_t *data;
		size_t len;
	} cases[] = {
		{ (const uint8_t *)"", 0 }, { nul, sizeof(nul) },
		{ high, sizeof(high) },
		{ (const uint8_t *)"Subject: x\r\n\r\n.\r\n..\r\n", 22 },
		{ NULL, 1 << 20 }, /* filled below: 1 MiB of every byte */
	};
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct queue_msg *m;
	uint8_t *big = xmalloc(1 << 20);
	size_t i;

	for (i = 0; i < (1 << 20); i++)
		big[i] = (uint8_t)(i * 7);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msg_spec s = { "", NULL, { "bob@example.com", NULL },
			cases[i].data != NULL ? cases[i].data : big,
			cases[i].len };

		T_CHECK(add_spec(q, &s, id) == 0);
		T_CHECK(
		    strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16);
		m = queue_msg_get(q, id);
		T_CHECK(m != NULL);
		if (m == NULL)
			continue;
		T_CHECK(m->len == s.len && m->size == s.len);
		T_CHECK(m->data != NULL && memcmp(m->data, s.data, s.len) == 0);
		T_STREQ(m->sender, "");
		T_STREQ(m->id, id);
		T_CHECK(m->message_id == NULL && m->envid == NULL &&
		    m->auth_user == NULL);
		queue_msg_free(m);
	}
	free(big);
	queue_close(q);
	tmp_free(dir);
}

static void
roundtrip_envelope(void)
{
	struct queue_rcpt_in r[2] = {
		{ "Bob@Example.COM", "rfc822;bob@example.com",
		    QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE },
		{ "carol@example.net", NULL, 0 },
	};
	struct queue_msg_in in = { QUEUE_KIND_DSN, "alice@example.org", "env-1",
		QUEUE_RET_HDRS, true, true, "c [192.0.2.9]:1", "helo.example",
		"alice", "<x@y>", (const uint8_t *)"hi", 2, r, 2 };
	char *dir = tmp_new(), id[QUEUE_ID_LEN] = "", *err = NULL;
	struct queue *q = open_ok(dir);
	struct queue_msg *m;
	struct seen s = { 0 };
	time_t now = time(NULL);

	T_CHECK(queue_add(q, &in, id, &err) == 0 && err == NULL);
	m = queue_msg_get(q, id);
	T_CHECK(m != NULL);
	if (m != NULL) {
		T_CHECK(m->kind == QUEUE_KIND_DSN && m->ret == QUEUE_RET_HDRS);
		T_CHECK(m->body_8bit && m->smtputf8);
		T_STREQ(m->envid, "env-1");
		T_STREQ(m->client, "c [192.0.2.9]:1");
		T_STREQ(m->helo, "helo.example");
		T_STREQ(m->auth_user, "alice");
		T_STREQ(m->message_id, "<x@y>");
		T_CHECK(m->received_at >= now - 5 && m->received_at <= now + 5);
	}
	queue_msg_free(m);
	T_CHECK(queue_msg_rcpts(q, id, seen_cb, &s) == 2);
	T_STREQ(s.r[0].addr, "Bob@Example.COM");
	T_STREQ(s.r[0].domain, "example.com");
	T_STREQ(s.r[0].orcpt, "rfc822;bob@example.com");
	T_CHECK(s.r[0].notify == (QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE));
	T_STREQ(s.r[1].orcpt, "(null)");
	T_CHECK(s.r[1].status == QUEUE_RCPT_QUEUED && s.r[1].attempts == 0);
	T_CHECK(s.r[1].last_attempt == 0 && s.r[1].last_status[0] == '\0');
	T_CHECK(queue_msg_get(q, "0000000000000000") == NULL);
	queue_close(q);
	tmp_free(dir);
}

static void
add_refuses_bad_input(void)
{
	struct queue_msg_in in = { 0 };
	char *dir = tmp_new(), id[QUEUE_ID_LEN] = "", *err = NULL;
	struct queue *q = open_ok(dir);
	struct seen s = { 0 };

	in.sender = "a@b";
	in.data = (const uint8_t *)"x";
	in.len = 1;
	T_CHECK(queue_add(q, &in, id, &err) == -1 && err != NULL);
	free(err);
	T_CHECK(queue_list(q, seen_cb, &s) == 0);
	queue_close(q);
	tmp_free(dir);
}

static void
due_order_and_limit(void)
{
	static const time_t offsets[] = { 50, -30, 10, -10, -20, 0, 3600 };
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	time_t now = time(NULL);
	struct seen s = { 0 };
	int64_t rid[7];
	size_t i;

	for (i = 0; i < 7; i++) {
		T_CHECK(add_simple(q, "bob@example.com", id) == 0);
		memset(&s, 0, sizeof(s));
		queue_msg_rcpts(q, id, seen_cb, &s);
		rid[i] = s.r[0].id;
		T_CHECK(queue_rcpt_deferred(
		            q, rid[i], now + offsets[i], &att_defer) == 0);
	}
	T_CHECK(queue_next_due(q) == now - 30);
	memset(&s, 0, sizeof(s));
	T_CHECK(queue_due(q, now, 100, seen_cb, &s) == 4);
	T_CHECK(s.r[0].id == rid[1] && s.r[1].id == rid[4]);
	T_CHECK(s.r[2].id == rid[3] && s.r[3].id == rid[5]);
	memset(&s, 0, sizeof(s));
	T_CHECK(queue_due(q, now, 2, seen_cb, &s) == 2);
	T_CHECK(s.n == 2 && s.r[1].id == rid[4]);
	T_CHECK(queue_due(q, now, 0, seen_cb, &s) == 0);
	memset(&s, 0, sizeof(s));
	T_CHECK(queue_due(q, now + 100000, 100, seen_cb, &s) == 7);
	/* A final recipient is never due again. */
	T_CHECK(queue_rcpt_delivered(q, rid[1], &att_ok) == 0);
	T_CHECK(queue_next_due(q) == now - 20);
	memset(&s, 0, sizeof(s));
	T_CHECK(queue_due(q, now, 100, seen_cb, &s) == 3);
	queue_close(q);
	tmp_free(dir);
}

/* The recipient (only) of a new message, as queue_msg_rcpts sees it. */
static struct seen_rcpt
rcpt_of(struct queue *q, const char *msgid)
{
	struct seen s = { 0 };

	queue_msg_rcpts(q, msgid, seen_cb, &s);
	return s.r[0];
}

static void
transitions(void)
{
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct seen_rcpt r;
	time_t now = time(NULL);
	int64_t rid;

	T_CHECK(add_simple(q, "bob@example.com", id) == 0);
	rid = rcpt_of(q, id).id;
	T_CHECK(queue_rcpt_deferred(q, rid, now + 600, &att_defer) == 0);
	r = rcpt_of(q, id);
	T_CHECK(r.status == QUEUE_RCPT_QUEUED && r.attempts == 1);
	T_CHECK(r.next == now + 600 && r.last_attempt >= now);
	T_STREQ(r.last_status, "4.7.323");
	T_STREQ(r.last_rt, "dane-required");
	T_STREQ(r.last_text, "no usable TLSA records");
	T_STREQ(r.last_mta, "mx1.example.com[192.0.2.1]:25");
	T_CHECK(!r.warned);
	T_CHECK(queue_rcpt_set_warned(q, rid) == 0);
	T_CHECK(rcpt_of(q, id).warned);
	T_CHECK(queue_rcpt_bounced(q, rid, &att_fail) == 0);
	r = rcpt_of(q, id);
	T_CHECK(r.status == QUEUE_RCPT_BOUNCED && r.attempts == 2);
	T_STREQ(r.last_status, "5.1.1");
	T_STREQ(r.last_rt, "");
	/* Not queued any more: deferring changes nothing, and is no error. */
	T_CHECK(queue_rcpt_deferred(q, rid, now, &att_defer) == 0);
	T_CHECK(rcpt_of(q, id).status == QUEUE_RCPT_BOUNCED);
	T_CHECK(queue_rcpt_deferred(q, 999999, now, &att_defer) == -1);
	T_CHECK(strstr(queue_error(q), "no recipient 999999") != NULL);
	T_CHECK(queue_rcpt_delivered(q, 999999, &att_ok) == -1);
	T_CHECK(queue_rcpt_set_warned(q, 999999) == -1);
	T_CHECK(!queue_rcpt_bounce_requested(q, rid));
	queue_close(q);
	tmp_free(dir);
}

static void
gc_drops_body_keeps_story(void)
{
	struct msg_spec spec = { "alice@example.org", NULL,
		{ "bob@example.com", "carol@example.net", NULL }, NULL, 0 };
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct queue_trace_filter f = { 0 };
	struct seen s = { 0 };
	struct queue_msg *m;
	json_t *tr;

	T_CHECK(add_spec(q, &spec, id) == 0);
	queue_msg_rcpts(q, id, seen_cb, &s);
	T_CHECK(queue_rcpt_delivered(q, s.r[0].id, &att_ok) == 0);
	T_CHECK(queue_msg_gc(q, id) == 0);
	m = queue_msg_get(q, id);
	T_CHECK(m != NULL); /* carol is still queued */
	queue_msg_free(m);
	T_CHECK(queue_rcpt_bounced(q, s.r[1].id, &att_fail) == 0);
	T_CHECK(queue_msg_gc(q, id) == 0);
	T_CHECK(queue_msg_get(q, id) == NULL);
	T_STREQ(queue_error(q), "");
	m = queue_msg_find(q, id);
	T_CHECK(m != NULL && m->data == NULL && m->len == 0 &&
	    m->size == SIMPLE_LEN);
	queue_msg_free(m);
	memset(&s, 0, sizeof(s));
	T_CHECK(queue_msg_rcpts(q, id, seen_cb, &s) == 2);
	f.message_id = id;
	tr = queue_trace(q, &f);
	T_CHECK(json_array_size(tr) == 1);
	/* received, queued x2: state changes log nothing themselves */
	T_CHECK(json_array_size(
	            json_object_get(json_array_get(tr, 0), "events")) == 3);
	json_decref(tr);
	T_CHECK(queue_msg_gc(q, id) == 0); /* twice is fine */
	queue_close(q);
	tmp_free(dir);
}

/* The type of event i of message 0 of a trace. */
static const char *
ev_type(json_t *tr, size_t i)
{
	json_t *evs = json_object_get(json_array_get(tr, 0), "events");

	return json_string_value(
	    json_object_get(json_array_get(evs, i), "type"));
}

static void
events_validate_and_merge(void)
{
	static const struct {
		const char *type, *fields;
		int rc;
	} cases[] = {
		{ "attempt", "{\"mx\":\"mx1.example.com\",\"port\":25}", 0 },
		{ "dsn-sent", NULL, 0 },
		{ "attempt", "[1,2]", -1 },
		{ "attempt", "{\"a\":1,\"a\":2}", -1 },
		{ "attempt", "{broken", -1 },
		{ "two words", NULL, -1 },
		{ "", NULL, -1 },
		{ "would-fail", "{\"type\":\"spoof\",\"tls\":\"none\"}", 0 },
	};
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct queue_trace_filter f = { 0 };
	json_t *tr, *ev;
	size_t i;

	T_CHECK(add_simple(q, "bob@example.com", id) == 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		T_CHECK(queue_event(q, id, i == 0 ? "bob@example.com" : NULL,
		            cases[i].type, cases[i].fields) == cases[i].rc);
		if (cases[i].rc == -1)
			T_CHECK(queue_error(q)[0] != '\0');
	}
	f.message_id = id;
	tr = queue_trace(q, &f);
	T_STREQ(ev_type(tr, 0), "received");
	T_STREQ(ev_type(tr, 1), "queued");
	T_STREQ(ev_type(tr, 2), "attempt");
	T_STREQ(ev_type(tr, 3), "dsn-sent");
	/* A field named like a reserved key does not replace it. */
	T_STREQ(ev_type(tr, 4), "would-fail");
	ev =
	    json_array_get(json_object_get(json_array_get(tr, 0), "events"), 2);
	T_STREQ(
	    json_string_value(json_object_get(ev, "mx")), "mx1.example.com");
	T_CHECK(json_integer_value(json_object_get(ev, "port")) == 25);
	T_STREQ(json_string_value(json_object_get(ev, "recipient")),
	    "bob@example.com");
	json_decref(tr);
	queue_close(q);
	tmp_free(dir);
}

/* Ids of the messages in a trace, joined with ',' into out. */
static void
trace_ids(
    struct queue *q, const struct queue_trace_filter *f, char *out, size_t len)
{
	json_t *tr = queue_trace(q, f);
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < json_array_size(tr); i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : "",
		    json_string_value(
		        json_object_get(json_array_get(tr, i), "id")));
	json_decref(tr);
}

static void
trace_filters(void)
{
	struct msg_spec specs[3] = {
		{ "a@example.org", "<one@example.org>",
		    { "bob@example.com", "carol@example.net", NULL }, NULL, 0 },
		{ "a@example.org", "<two@example.org>",
		    { "dave@Example.NET", NULL }, NULL, 0 },
		{ "", NULL, { "erin@example.com", NULL }, NULL, 0 },
	};
	char *dir = tmp_new(), ids[3][QUEUE_ID_LEN], got[128], want[128];
	struct queue *q = open_ok(dir);
	struct {
		struct queue_trace_filter f;
		const char *want; /* indexes of the messages, "" none */
	} cases[] = {
		{ { NULL, NULL, NULL, 0 }, "012" },
		{ { "<one@example.org>", NULL, NULL, 0 }, "0" },
		{ { "two@example.org", NULL, NULL, 0 }, "1" },
		{ { "<nope@example.org>", NULL, NULL, 0 }, "" },
		{ { NULL, "BOB@example.com", NULL, 0 }, "0" },
		{ { NULL, NULL, "example.net", 0 }, "01" },
		{ { NULL, NULL, "EXAMPLE.COM", 0 }, "02" },
		{ { NULL, "erin@example.com", "example.net", 0 }, "" },
		{ { NULL, NULL, NULL, 1 }, "012" },
		{ { NULL, NULL, NULL, 0x7fffffff }, "" },
	};
	size_t i, j, n;

	for (i = 0; i < 3; i++)
		T_CHECK(add_spec(q, &specs[i], ids[i]) == 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		trace_ids(q, &cases[i].f, got, sizeof(got));
		for (j = 0, n = 0; cases[i].want[j] != '\0'; j++)
			n += (size_t)snprintf(want + n, sizeof(want) - n,
			    "%s%s", j ? "," : "", ids[cases[i].want[j] - '0']);
		want[n] = '\0';
		T_STREQ(got, want);
	}
	/* By queue id, in capitals too. */
	for (i = 0; ids[2][i] != '\0'; i++)
		got[i] = (char)(ids[2][i] >= 'a' ? ids[2][i] - 32 : ids[2][i]);
	got[i] = '\0';
	cases[0].f.message_id = got;
	trace_ids(q, &cases[0].f, want, sizeof(want));
	T_STREQ(want, ids[2]);
	queue_close(q);
	tmp_free(dir);
}

static void
trace_recipient_filter_hides_others(void)
{
	struct msg_spec spec = { "a@example.org", NULL,
		{ "bob@example.com", "carol@example.net", NULL }, NULL, 0 };
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct queue_trace_filter f = { NULL, "carol@example.net", NULL, 0 };
	json_t *tr, *evs;

	T_CHECK(add_spec(q, &spec, id) == 0);
	tr = queue_trace(q, &f);
	evs = json_object_get(json_array_get(tr, 0), "events");
	T_CHECK(json_array_size(evs) == 2); /* received, queued carol */
	T_STREQ(json_string_value(
	            json_object_get(json_array_get(evs, 1), "recipient")),
	    "carol@example.net");
	T_CHECK(
	    json_is_null(json_object_get(json_array_get(evs, 0), "recipient")));
	json_decref(tr);
	queue_close(q);
	tmp_free(dir);
}

/* Run queue_trace_print on tr into a new string. */
static char *
print_trace(json_t *tr)
{
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	queue_trace_print(fp, tr);
	fclose(fp);
	return out;
}

static void
trace_print_generic_fields(void)
{
	static const struct {
		const char *fields, *want;
	} cases[] = {
		{ "{\"mx\":\"mx1.example.com\",\"port\":25}",
		    " attempt bob@example.com mx=mx1.example.com port=25\n" },
		{ "{\"text\":\"550 no such\\nuser\"}",
		    " text=\"550 no such\\nuser\"\n" },
		{ "{\"tlsa\":\"3 1 1\",\"ok\":true,\"x\":null,\"r\":1.5}",
		    " tlsa=\"3 1 1\" ok=true x=null r=1.5\n" },
		{ "{\"a b\":\"q\\\"\",\"e\":\"\"}",
		    " \"a b\"=\"q\\\"\" e=\"\"\n" },
		{ "{\"n\":{\"k\":[1,2]}}", " n=\"{\\\"k\\\":[1,2]}\"\n" },
		{ "{\"l\":[1,2]}", " l=[1,2]\n" },
		{ "{\"c\":\"\\u001b[31m\\u0085\"}",
		    " c=\"\\x1b[31m\\u0085\"\n" },
		{ "not json", " fields_raw=\"not json\"\n" },
		{ "[1]", " fields_raw=[1]\n" },
	};
	json_t *tr, *m, *evs;
	char *out;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tr = json_array();
		m = json_object();
		evs = json_array();
		json_object_set_new(m, "id", json_string("0123456789abcdef"));
		json_object_set_new(m, "sender", json_string(""));
		json_object_set_new(m, "message_id", json_null());
		json_array_append_new(evs,
		    queue_trace_event(
		        0, "attempt", "bob@example.com", cases[i].fields));
		json_object_set_new(m, "events", evs);
		json_array_append_new(tr, m);
		out = print_trace(tr);
		T_CHECK(strncmp(out, "message 0123456789abcdef from=<>\n",
		            33) == 0);
		T_CHECK(strstr(out, "  1970-01-01T00:00:00Z attempt") != NULL);
		if (strstr(out, cases[i].want) == NULL)
			printf("  got: %s", out);
		T_CHECK(strstr(out, cases[i].want) != NULL);
		free(out);
		json_decref(tr);
	}
}

static void
since_parse(void)
{
	static const struct {
		const char *in;
		time_t secs; /* 0: error */
	} cases[] = {
		{ "90", 90 },
		{ "30s", 30 },
		{ "30m", 1800 },
		{ "1h", 3600 },
		{ "2d", 172800 },
		{ "1w", 604800 },
		{ "0", 0 },
		{ "", 0 },
		{ "h", 0 },
		{ "1x", 0 },
		{ "1hh", 0 },
		{ "-1h", 0 },
		{ " 1h", 0 },
		{ "99999999999999999999", 0 },
		{ "1000000000w", 604800000000000 },
	};
	size_t i;
	time_t t;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = 0;
		if (cases[i].secs == 0)
			T_CHECK(
			    queue_trace_parse_since(cases[i].in, &t) != NULL);
		else
			T_CHECK(
			    queue_trace_parse_since(cases[i].in, &t) == NULL &&
			    t == cases[i].secs);
	}
}

static void
operator_actions(void)
{
	struct msg_spec spec = { "a@example.org", NULL,
		{ "bob@example.com", "carol@example.net", NULL }, NULL, 0 };
	char *dir = tmp_new(), id[QUEUE_ID_LEN] = "", rid[32];
	struct queue *q = open_ok(dir);
	struct queue_trace_filter f = { 0 };
	struct queue_msg *m;
	struct seen s = { 0 };
	time_t now = time(NULL);
	json_t *tr;

	T_CHECK(add_spec(q, &spec, id) == 0);
	queue_msg_rcpts(q, id, seen_cb, &s);
	T_CHECK(queue_rcpt_deferred(q, s.r[0].id, now + 9999, &att_defer) == 0);
	T_CHECK(queue_rcpt_deferred(q, s.r[1].id, now + 9999, &att_defer) == 0);
	T_CHECK(queue_retry(q, id) == 2);
	T_CHECK(rcpt_of(q, id).next <= time(NULL));
	snprintf(rid, sizeof(rid), "%lld", (long long)s.r[1].id);
	T_CHECK(queue_bounce(q, rid) == 1);
	T_CHECK(queue_rcpt_bounce_requested(q, s.r[1].id));
	T_CHECK(!queue_rcpt_bounce_requested(q, s.r[0].id));
	T_CHECK(queue_delete(q, rid) == 1);
	T_CHECK(queue_delete(q, rid) == 0); /* no longer queued */
	m = queue_msg_get(q, id);
	T_CHECK(m != NULL);
	queue_msg_free(m);
	T_CHECK(queue_delete(q, id) == 1);
	T_CHECK(queue_msg_get(q, id) == NULL); /* nothing queued: dropped */
	memset(&s, 0, sizeof(s));
	queue_msg_rcpts(q, id, seen_cb, &s);
	T_CHECK(s.r[0].status == QUEUE_RCPT_DELETED &&
	    s.r[1].status == QUEUE_RCPT_DELETED);
	T_CHECK(queue_retry(q, id) == 0);
	T_CHECK(queue_retry(q, "ffffffffffffffff") == 0);
	T_CHECK(queue_retry(q, "12345") == 0);
	T_CHECK(queue_retry(q, "not-an-id") == 0);
	T_CHECK(queue_bounce(q, "") == 0);
	f.message_id = id;
	tr = queue_trace(q, &f);
	/* received, queued x2, retry x2, bounce-requested, deleted x2 */
	T_CHECK(json_array_size(
	            json_object_get(json_array_get(tr, 0), "events")) == 8);
	T_STREQ(ev_type(tr, 3), "retry");
	T_STREQ(ev_type(tr, 5), "bounce-requested");
	T_STREQ(ev_type(tr, 7), "deleted");
	json_decref(tr);
	queue_close(q);
	tmp_free(dir);
}

static void
list_and_purge(void)
{
	char *dir = tmp_new(), a[QUEUE_ID_LEN], b[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct seen s = { 0 };
	struct queue_trace_filter f = { 0 };
	json_t *tr;

	T_CHECK(add_simple(q, "bob@example.com", a) == 0);
	T_CHECK(add_simple(q, "carol@example.com", b) == 0);
	T_CHECK(queue_rcpt_delivered(q, rcpt_of(q, a).id, &att_ok) == 0);
	T_CHECK(queue_list(q, seen_cb, &s) == 1);
	T_STREQ(s.r[0].addr, "carol@example.com");
	/* Not yet gc'd: the purge keeps it. */
	T_CHECK(queue_purge(q, time(NULL) + 10) == 0);
	T_CHECK(queue_msg_gc(q, a) == 0);
	T_CHECK(queue_msg_gc(q, b) == 0);
	T_CHECK(queue_purge(q, time(NULL) - 10) == 0); /* too recent */
	T_CHECK(queue_purge(q, time(NULL) + 10) == 1);
	tr = queue_trace(q, &f);
	T_CHECK(json_array_size(tr) == 1);
	T_STREQ(
	    json_string_value(json_object_get(json_array_get(tr, 0), "id")), b);
	json_decref(tr);
	T_CHECK(queue_msg_find(q, a) == NULL);
	queue_close(q);
	tmp_free(dir);
}

static void
find_by_rcpt_id(void)
{
	char *dir = tmp_new(), id[QUEUE_ID_LEN] = "", rid[32];
	struct queue *q = open_ok(dir);
	struct queue_msg *m;

	T_CHECK(add_simple(q, "bob@example.com", id) == 0);
	snprintf(rid, sizeof(rid), "%lld", (long long)rcpt_of(q, id).id);
	m = queue_msg_find(q, rid);
	T_CHECK(m != NULL && strcmp(m->id, id) == 0 && m->data != NULL);
	queue_msg_free(m);
	T_CHECK(queue_msg_find(q, "999") == NULL);
	T_CHECK(queue_msg_find(q, "junk") == NULL);
	T_STREQ(queue_error(q), "");
	queue_close(q);
	tmp_free(dir);
}

struct holder {
	const char *dir;
	int ms;
	int ready[2];
	int rc;
};

/*
 * Hold the write lock on another connection (a thread: SQLite forbids
 * carrying its state across fork) for h->ms, then commit.
 */
static void *
hold_lock(void *arg)
{
	struct holder *h = arg;
	char *path = xasprintf("%s/queue.db", h->dir);
	sqlite3 *db = NULL;

	h->rc = -1;
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
	        SQLITE_OK) {
		h->rc = 0;
		if (write(h->ready[1], "x", 1) != 1)
			h->rc = -1;
		usleep((useconds_t)h->ms * 1000);
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	sqlite3_close(db);
	free(path);
	close(h->ready[1]);
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
two_connections(void)
{
	char *dir = tmp_new(), id[QUEUE_ID_LEN] = "", c;
	struct queue *daemon = open_ok(dir), *cli = open_ok(dir);
	struct seen s = { 0 };
	struct holder h;
	pthread_t th;
	double t0;

	/* The daemon writes, the command sees it at once, and back. */
	T_CHECK(add_simple(daemon, "bob@example.com", id) == 0);
	T_CHECK(queue_list(cli, seen_cb, &s) == 1);
	T_CHECK(queue_rcpt_deferred(
	            daemon, s.r[0].id, time(NULL) + 999, &att_defer) == 0);
	T_CHECK(queue_retry(cli, id) == 1);
	memset(&s, 0, sizeof(s));
	T_CHECK(queue_due(daemon, time(NULL), 10, seen_cb, &s) == 1);
	/* Another writer holds the lock: wait (busy_timeout), not fail. */
	h.dir = dir;
	h.ms = 300;
	T_CHECK(pipe(h.ready) == 0);
	T_CHECK(pthread_create(&th, NULL, hold_lock, &h) == 0);
	T_CHECK(read(h.ready[0], &c, 1) == 1);
	t0 = now_s();
	T_CHECK(queue_retry(cli, id) == 1);
	T_CHECK(add_simple(daemon, "carol@example.com", id) == 0);
	T_CHECK(now_s() - t0 >= 0.2);
	pthread_join(th, NULL);
	T_CHECK(h.rc == 0);
	close(h.ready[0]);
	queue_close(cli);
	queue_close(daemon);
	tmp_free(dir);
}

static void
reopen_keeps_everything(void)
{
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct queue_msg *m;
	struct seen s = { 0 };

	T_CHECK(add_simple(q, "bob@example.com", id) == 0);
	T_CHECK(
	    queue_rcpt_deferred(q, rcpt_of(q, id).id, 12345, &att_defer) == 0);
	queue_close(q);
	q = open_ok(dir);
	m = queue_msg_get(q, id);
	T_CHECK(m != NULL && m->len == SIMPLE_LEN &&
	    memcmp(m->data, simple_body, SIMPLE_LEN) == 0);
	queue_msg_free(m);
	T_CHECK(queue_list(q, seen_cb, &s) == 1 && s.r[0].next == 12345);
	queue_close(q);
	tmp_free(dir);
}

/* Write len bytes of data as dir/queue.db (dir created). */
static void
put_db(const char *dir, const void *data, size_t len)
{
	char *path = xasprintf("%s/queue.db", dir);
	FILE *fp;

	mkdir(dir, 0700);
	fp = fopen(path, "wb");
	if (fp != NULL) {
		fwrite(data, 1, len, fp);
		fclose(fp);
	}
	free(path);
}

static void
refuses_garbage(void)
{
	static const char sqlite_hdr[] = "SQLite format 3";
	uint8_t junk[8192];
	struct {
		const char *name;
		size_t len;
		bool header; /* starts like a SQLite file */
		const char *want;
	} cases[] = {
		{ "random", sizeof(junk), false, "not a danerelay queue" },
		{ "text", 100, false, "not a danerelay queue" },
		{ "sqlite header, junk pages", sizeof(junk), true,
		    "not a danerelay queue" },
		{ "one byte", 1, false, "not a danerelay queue" },
	};
	char *dir, *err;
	size_t i, j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (j = 0; j < sizeof(junk); j++)
			junk[j] = (uint8_t)(i == 1 ? 'a' + j % 26 :
			                             (j * 131 + 7) >> 3);
		if (cases[i].header)
			memcpy(junk, sqlite_hdr, sizeof(sqlite_hdr));
		dir = tmp_new();
		put_db(dir, junk, cases[i].len);
		err = NULL;
		T_CHECK(queue_open(dir, &err) == NULL);
		if (err == NULL || strstr(err, cases[i].want) == NULL)
			printf(
			    "  %s: %s\n", cases[i].name, err ? err : "(none)");
		T_CHECK(err != NULL && strstr(err, cases[i].want) != NULL);
		free(err);
		tmp_free(dir);
	}
}

/* Run sql on dir/queue.db through a raw connection. */
static int
raw_exec(const char *dir, const char *sql)
{
	char *path = xasprintf("%s/queue.db", dir);
	sqlite3 *db;
	int rc;

	mkdir(dir, 0700);
	rc = sqlite3_open(path, &db) == SQLITE_OK &&
	        sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ?
	    0 :
	    -1;
	sqlite3_close(db);
	free(path);
	return rc;
}

/* Messages in dir's queue as a new connection of another process sees
 * them, or -1. */
static int
count_elsewhere(const char *dir)
{
	char *path = xasprintf("%s/queue.db", dir);
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) ==
	        SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st,
	        NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	free(path);
	return n;
}

/*
 * A second connection in the same process (the console's) must leave the
 * first one's POSIX locks alone: were they dropped, another process
 * closing its connection would take itself for the last one, checkpoint
 * and delete the WAL under the daemon, whose later commits nobody else
 * would see.
 */
static void
second_connection_keeps_locks(void)
{
	char *dir = tmp_new(), *err = NULL, *wal;
	char id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir), *c;
	pid_t pid;
	int status;

	T_CHECK(add_simple(q, "bob@example.com", id) == 0);
	c = queue_open_existing(dir, &err);
	T_CHECK(c != NULL);
	/* A command in a process of its own (not a fork, which would share
	 * SQLite's lock bookkeeping): opens, reads, closes. */
	if ((pid = fork()) == 0) {
		setenv("DANERELAY_TEST_COUNT_DIR", dir, 1);
		execl("/proc/self/exe", "test_queue", (char *)NULL);
		_exit(127);
	}
	T_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0);
	wal = xasprintf("%s/queue.db-wal", dir);
	T_CHECK(access(wal, F_OK) == 0);
	T_CHECK(add_simple(q, "carol@example.com", id) == 0);
	T_CHECK(count_elsewhere(dir) == 2);
	free(wal);
	free(err);
	queue_close(c);
	queue_close(q);
	tmp_free(dir);
}

static void
refuses_foreign_and_newer(void)
{
	static const struct {
		const char *sql, *want;
	} cases[] = {
		{ "CREATE TABLE t(x)", "another program" },
		{ "PRAGMA user_version = 3", "another program" },
		{ NULL, "schema version 99 is newer" },
		{ NULL, "damaged queue schema" },
	};
	char *dir, *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dir = tmp_new();
		if (cases[i].sql != NULL)
			T_CHECK(raw_exec(dir, cases[i].sql) == 0);
		else {
			queue_close(open_ok(dir));
			T_CHECK(raw_exec(dir,
			            i == 2 ? "PRAGMA user_version = 99" :
			                     "DROP TABLE events") == 0);
		}
		err = NULL;
		T_CHECK(queue_open(dir, &err) == NULL);
		if (err == NULL || strstr(err, cases[i].want) == NULL)
			printf("  case %zu: %s\n", i, err ? err : "(none)");
		T_CHECK(err != NULL && strstr(err, cases[i].want) != NULL);
		free(err);
		tmp_free(dir);
	}
}

static void
open_existing_needs_db(void)
{
	char *dir = tmp_new(), *err = NULL;
	struct queue *q;

	T_CHECK(queue_open_existing(dir, &err) == NULL);
	T_CHECK(err != NULL && strstr(err, "No such file") != NULL);
	free(err);
	T_CHECK(access(dir, F_OK) == -1); /* nothing was created */
	queue_close(open_ok(dir));
	q = queue_open_existing(dir, &err);
	T_CHECK(q != NULL);
	queue_close(q);
	tmp_free(dir);
}

/* Child of crash_kill9: add forever, report each id after queue_add. */
static void
crash_child(const char *dir, int fd)
{
	char *err = NULL, id[QUEUE_ID_LEN] = "", line[QUEUE_ID_LEN + 1];
	struct queue *q = queue_open(dir, &err);

	if (q == NULL)
		_exit(1);
	for (;;) {
		if (add_simple(q, "bob@example.com", id) == -1)
			_exit(1);
		memcpy(line, id, 16);
		line[16] = '\n';
		if (write(fd, line, 17) != 17)
			_exit(1);
	}
}

static void
crash_kill9(void)
{
	char *dir = tmp_new(), buf[17 * 64], *ids = NULL;
	size_t nids = 0, i, missing = 0;
	struct queue *q;
	struct queue_msg *m;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	q = open_ok(dir); /* the schema exists before the child runs */
	queue_close(q);
	T_CHECK(pipe(fds) == 0);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		crash_child(dir, fds[1]);
	}
	close(fds[1]);
	/* Let it commit a few hundred, then pull the plug mid-write. */
	while (nids < 300 && (n = read(fds[0], buf, 17)) == 17) {
		ids = xreallocarray(ids, nids + 1, 17);
		memcpy(ids + nids++ * 17, buf, 17);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	T_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* Ids already in the pipe were reported committed too. */
	while ((n = read(fds[0], buf, 17)) == 17) {
		ids = xreallocarray(ids, nids + 1, 17);
		memcpy(ids + nids++ * 17, buf, 17);
	}
	close(fds[0]);
	q = open_ok(dir);
	for (i = 0; i < nids; i++) {
		ids[i * 17 + 16] = '\0';
		m = queue_msg_get(q, ids + i * 17);
		if (m == NULL || m->len != SIMPLE_LEN)
			missing++;
		queue_msg_free(m);
	}
	T_CHECK(nids >= 300 && missing == 0);
	queue_close(q);
	T_CHECK(raw_exec(dir, "PRAGMA integrity_check") == 0);
	free(ids);
	tmp_free(dir);
}

struct count {
	size_t n;
	time_t last;
	bool ordered;
};

static void
count_cb(const struct queue_rcpt *r, void *arg)
{
	struct count *c = arg;

	if (r->next_attempt < c->last)
		c->ordered = false;
	c->last = r->next_attempt;
	c->n++;
}

static void
bulk_10000(void)
{
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct count c = { 0, 0, true };
	time_t now = time(NULL);
	double t0 = now_s(), t1, t2;
	int i, bad = 0;

	/* Every tenth is deferred to a scattered time, past or future. */
	for (i = 0; i < 10000; i++) {
		if (add_simple(q, "bob@example.com", id) == -1 ||
		    (i % 10 == 0 &&
		        queue_rcpt_deferred(q, (int64_t)i + 1,
		            now - 10000 + (i * 7919) % 20000,
		            &att_defer) == -1))
			bad++;
	}
	t1 = now_s();
	T_CHECK(bad == 0);
	T_CHECK(queue_due(q, now, 500, count_cb, &c) == 500);
	T_CHECK(c.n == 500 && c.ordered);
	memset(&c, 0, sizeof(c));
	c.ordered = true;
	T_CHECK(queue_due(q, time(NULL), 100000, count_cb, &c) > 9400);
	T_CHECK(c.ordered);
	T_CHECK(queue_next_due(q) == now - 10000);
	t2 = now_s();
	fprintf(stderr, "bulk: 10000 adds+1000 defers %.2fs, due scans %.3fs\n",
	    t1 - t0, t2 - t1);
	queue_close(q);
	tmp_free(dir);
}

static void
names(void)
{
	char buf[QUEUE_TIME_LEN];

	T_STREQ(queue_rcpt_status_str(QUEUE_RCPT_DELETED), "deleted");
	T_STREQ(queue_kind_str(QUEUE_KIND_DSN), "dsn");
	T_STREQ(queue_ret_str(QUEUE_RET_HDRS), "hdrs");
	T_STREQ(queue_time_iso(1714564800, buf), "2024-05-01T12:00:00Z");
}

/*
 * What the delivery code does after an attempt (deliver_decide): an
 * "attempt" event, the state change, then the outcome event with the same
 * fields. Returns 0 or -1.
 */
static int
fixture_attempt(struct queue *q, const char *msgid, int64_t rcpt,
    const char *addr, const struct queue_attempt *a, const char *fields)
{
	int rc;

	if (queue_event(q, msgid, addr, "attempt", fields) == -1)
		return -1;
	if (a == &att_ok) {
		rc = queue_rcpt_delivered(q, rcpt, a);
		return rc == -1 ?
		    -1 :
		    queue_event(q, msgid, addr, "delivered", fields);
	}
	if (a == &att_fail) {
		rc = queue_rcpt_bounced(q, rcpt, a);
		return rc == -1 ?
		    -1 :
		    queue_event(q, msgid, addr, "bounced", fields);
	}
	rc = queue_rcpt_deferred(q, rcpt, time(NULL) + 3600, a);
	return rc == -1 ? -1 : queue_event(q, msgid, addr, "deferred", fields);
}

/*
 * The queue test_queue_cmd.sh works on: one message with a deferred and a
 * fresh recipient, one delivered (body dropped), one bounced (null sender).
 */
static int
fixture(const char *dir)
{
	static const char body[] = "Received: from client.example\r\n"
	                           "From: Alice <alice@example.org>\r\n"
	                           "Subject: fixture \x1b[31mred\r\n"
	                           "Message-ID: <fixture-a@example.org>\r\n"
	                           "\r\nsecret body line\r\n";
	struct msg_spec a = { "alice@example.org", "<fixture-a@example.org>",
		{ "bob@example.com", "carol@Example.NET", NULL },
		(const uint8_t *)body, sizeof(body) - 1 };
	struct msg_spec b = { "alice@example.org", "<fixture-b@example.org>",
		{ "dave@example.com", NULL }, NULL, 0 };
	struct msg_spec c = { "", NULL, { "erin@example.com", NULL }, NULL, 0 };
	char ida[QUEUE_ID_LEN], idb[QUEUE_ID_LEN], idc[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	struct seen s = { 0 };

	if (add_spec(q, &a, ida) == -1 || add_spec(q, &b, idb) == -1 ||
	    add_spec(q, &c, idc) == -1)
		return 1;
	queue_msg_rcpts(q, ida, seen_cb, &s);
	if (fixture_attempt(q, ida, s.r[0].id, "bob@example.com", &att_defer,
	        "{\"mx\":\"mx1.example.com\",\"ip\":\"192.0.2.1\","
	        "\"port\":25,\"tls\":\"none\",\"status\":\"4.7.323\","
	        "\"result_type\":\"dane-required\",\"text\":\"no usable "
	        "TLSA records\"}") == -1 ||
	    fixture_attempt(q, idb, rcpt_of(q, idb).id, "dave@example.com",
	        &att_ok,
	        "{\"mx\":\"mx1.example.com\",\"ip\":\"192.0.2.1\","
	        "\"port\":25,\"tls\":\"verified\",\"tls_version\":"
	        "\"TLSv1.3\",\"cipher\":\"TLS_AES_256_GCM_SHA384\","
	        "\"tlsa\":\"3 1 1\",\"status\":\"2.0.0\",\"text\":"
	        "\"250 2.0.0 Ok\"}") == -1 ||
	    fixture_attempt(q, idc, rcpt_of(q, idc).id, "erin@example.com",
	        &att_fail,
	        "{\"mx\":\"mx1.example.com\",\"ip\":\"192.0.2.1\","
	        "\"port\":25,\"tls\":\"encrypted\",\"status\":"
	        "\"5.1.1\",\"text\":\"550 5.1.1 no such user\"}") == -1 ||
	    queue_msg_gc(q, idb) == -1 || queue_msg_gc(q, idc) == -1) {
		printf("fixture: %s\n", queue_error(q));
		return 1;
	}
	printf("msg_a %s\nmsg_b %s\nmsg_c %s\nrcpt_bob %lld\nrcpt_carol %lld\n",
	    ida, idb, idc, (long long)s.r[0].id, (long long)s.r[1].id);
	queue_close(q);
	return 0;
}

static void
count_one_cb(const struct queue_rcpt *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
}

/*
 * A write that fails inside a batch (here EFBIG past RLIMIT_FSIZE; on a
 * full disk SQLITE_FULL, which may roll the whole transaction back) loses
 * the whole batch: no later write of it is committed on its own, and the
 * end says so. The caller keeps the outcomes (deliver_hold.c).
 */
static void
batch_failure_loses_whole_batch(void)
{
	char *dir = tmp_new(), id[QUEUE_ID_LEN];
	struct queue *q = open_ok(dir);
	size_t big = 4 << 20;
	uint8_t *data = xcalloc(1, big);
	struct msg_spec s = { "a@example.org", NULL, { "b@example.com", NULL },
		data, big };
	struct rlimit old, lim;
	int n = 0;

	memset(data, 'x', big);
	T_CHECK(add_simple(q, "bob@example.com", id) == 0);
	signal(SIGXFSZ, SIG_IGN);
	T_CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 1 << 20;
	T_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	T_CHECK(queue_batch_begin(q) == 0);
	T_CHECK(add_spec(q, &s, id) == -1);
	T_CHECK(queue_rcpt_delivered(q, 1, &att_ok) == -1);
	T_CHECK(queue_batch_end(q) == -1);
	T_CHECK(strstr(queue_error(q), "insert") != NULL);
	T_CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
	signal(SIGXFSZ, SIG_DFL);
	/* Nothing of the batch reached the file: rcpt 1 is still due. */
	T_CHECK(queue_due(q, time(NULL) + 1, 10, count_one_cb, &n) == 1);
	T_CHECK(queue_rcpt_delivered(q, 1, &att_ok) == 0);
	queue_close(q);
	free(data);
	tmp_free(dir);
}

int
main(void)
{
	const char *fixdir = getenv("DANERELAY_TEST_QUEUE_DIR");
	const char *countdir = getenv("DANERELAY_TEST_COUNT_DIR");

	if (fixdir != NULL && *fixdir != '\0')
		return fixture(fixdir);
	if (countdir != NULL) /* second_connection_keeps_locks' command */
		return count_elsewhere(countdir) == 1 ? 0 : 1;
	T_RUN(open_creates_private_dir);
	T_RUN(roundtrip_bodies);
	T_RUN(roundtrip_envelope);
	T_RUN(add_refuses_bad_input);
	T_RUN(due_order_and_limit);
	T_RUN(transitions);
	T_RUN(gc_drops_body_keeps_story);
	T_RUN(events_validate_and_merge);
	T_RUN(trace_filters);
	T_RUN(trace_recipient_filter_hides_others);
	T_RUN(trace_print_generic_fields);
	T_RUN(since_parse);
	T_RUN(operator_actions);
	T_RUN(list_and_purge);
	T_RUN(find_by_rcpt_id);
	T_RUN(two_connections);
	T_RUN(reopen_keeps_everything);
	T_RUN(refuses_garbage);
	T_RUN(second_connection_keeps_locks);
	T_RUN(refuses_foreign_and_newer);
	T_RUN(open_existing_needs_db);
	T_RUN(crash_kill9);
	T_RUN(batch_failure_loses_whole_batch);
	T_RUN(bulk_10000);
	T_RUN(names);
	T_EXIT();
}
