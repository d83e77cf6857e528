/*
 * test_queue_pg: the parts of [queue] store = postgres that need no
 * server (the rest is tests/integration/relay_fleet_queue.py, on a real
 * PostgreSQL): text made valid UTF-8 before the database sees it, and the
 * parameters of a statement, array literals.
 */
#include <stdlib.h>

#include "queue/queue_pg_int.h"
#include "t.h"

/* Every row: input, what the database gets (valid UTF-8 kept as is). */
static void
utf8_table(void)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{ "", "" },
		{ "250 2.0.0 ok", "250 2.0.0 ok" },
		{ "gr\xc3\xbc\xc3\x9f", "gr\xc3\xbc\xc3\x9f" }, /* grüß */
		{ "\xe2\x82\xac 5", "\xe2\x82\xac 5" },         /* € */
		{ "\xf0\x9f\x93\xa7", "\xf0\x9f\x93\xa7" },     /* U+1F4E7 */
		{ "Latin-1 \xe9t\xe9", "Latin-1 ?t?" },         /* ISO 8859-1 */
		{ "cut \xe2\x82", "cut ??" },                   /* truncated */
		{ "\xc0\xaf", "??" },                           /* overlong / */
		{ "\xe0\x80\xaf", "???" },                      /* overlong / */
		{ "\xed\xa0\x80", "???" },                      /* surrogate */
		{ "\xf4\x90\x80\x80", "????" },                 /* > U+10FFFF */
		{ "\xff\xfe", "??" },
		{ "a\x80"
		  "b\xc3\xa9",
		    "a?b\xc3\xa9" },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *copy = NULL;
		const char *got = queue_pg_utf8(rows[i].in, &copy);

		T_STREQ(got, rows[i].out);
		/* Valid text is passed through, not copied. */
		T_CHECK(
		    (copy == NULL) == (strcmp(rows[i].in, rows[i].out) == 0));
		T_CHECK(copy == NULL || got == copy);
		free(copy);
	}
}

static void
args_values(void)
{
	struct queue_pg_args a = { 0 };
	static const unsigned char body[3] = { 0, 0xff, '\n' };

	queue_pg_arg_str(&a, "ok");
	queue_pg_arg_str(&a, NULL);
	queue_pg_arg_int(&a, -42);
	queue_pg_arg_own(&a, strdup("bad \xff"));
	queue_pg_arg_bin(&a, body, sizeof(body));
	queue_pg_arg_bin(&a, NULL, 0);
	T_CHECK(a.n == 6);
	T_STREQ(a.v[0], "ok");
	T_CHECK(a.v[1] == NULL);
	T_STREQ(a.v[2], "-42");
	T_STREQ(a.v[3], "bad ?");
	T_CHECK(a.v[4] == (const char *)body && a.len[4] == 3 && a.fmt[4] == 1);
	/* An empty body is an empty bytea, never NULL (= dropped). */
	T_CHECK(a.v[5] != NULL && a.len[5] == 0 && a.fmt[5] == 1);
	T_CHECK(a.fmt[0] == 0 && a.fmt[2] == 0);
	queue_pg_args_clear(&a);
	T_CHECK(a.n == 0);
}

/* The array literals of the statements that write many rows at once. */
static void
array_literal(void)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	T_STREQ(queue_pg_arg_array(&b), "{}");
	buf_reset(&b);
	queue_pg_arg_elem(&b, "a@b.example");
	queue_pg_arg_elem(&b, NULL);
	queue_pg_arg_elem(&b, "");
	queue_pg_arg_elem(&b, "q\"uo\\te, {x} NULL");
	queue_pg_arg_elem(&b, "bad \xff");
	T_STREQ(queue_pg_arg_array(&b),
	    "{\"a@b.example\",NULL,\"\",\"q\\\"uo\\\\te, {x} NULL\","
	    "\"bad ?\"}");
	buf_free(&b);
}

int
main(void)
{
	T_RUN(utf8_table);
	T_RUN(args_values);
	T_RUN(array_literal);
	T_EXIT();
}
