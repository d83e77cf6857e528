/*
 * queue_pg_args: the parameters of one PostgreSQL statement of the queue.
 * The database is UTF-8 and refuses a text value that is not, but what
 * the queue stores comes from the network: a client's HELO, a remote
 * server's reply. A refused outcome would pause delivery for good, a
 * refused message would be answered 451 forever; so text is made valid
 * first, each bad byte a '?' (as queue_json_str does for the events).
 */
#include "queue/queue_pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"

/* Length of the UTF-8 sequence at p (RFC 3629 section 4), 0 if bad. */
static size_t
queue_pg_utf8_seq(const unsigned char *p)
{
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

const char *
queue_pg_utf8(const char *s, char **copy)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i = 0;
	char *out;

	*copy = NULL;
	while (p[i] != '\0' && (n = queue_pg_utf8_seq(p + i)) > 0)
		i += n;
	if (p[i] == '\0')
		return s;
	out = xstrdup(s);
	while (p[i] != '\0') {
		n = queue_pg_utf8_seq(p + i);
		if (n == 0) {
			out[i] = '?';
			n = 1;
		}
		i += n;
	}
	*copy = out;
	return out;
}

static int
queue_pg_arg_next(struct queue_pg_args *a)
{
	if (a->n >= QUEUE_PG_ARGS_MAX)
		panic("queue_pg_args: more than %d parameters",
		    QUEUE_PG_ARGS_MAX);
	return a->n++;
}

void
queue_pg_arg_str(struct queue_pg_args *a, const char *s)
{
	int i = queue_pg_arg_next(a);

	a->v[i] = s != NULL ? queue_pg_utf8(s, &a->own[i]) : NULL;
}

void
queue_pg_arg_own(struct queue_pg_args *a, char *s)
{
	int i = queue_pg_arg_next(a);
	char *copy;

	a->v[i] = s != NULL ? queue_pg_utf8(s, &copy) : NULL;
	if (s != NULL && copy != NULL) {
		free(s);
		s = copy;
	}
	a->own[i] = s;
}

void
queue_pg_arg_int(struct queue_pg_args *a, long long v)
{
	int i = queue_pg_arg_next(a);

	a->v[i] = pg_itoa(v, a->num[i]);
}

void
queue_pg_arg_bin(struct queue_pg_args *a, const void *data, size_t len)
{
	static const char empty[1];
	int i = queue_pg_arg_next(a);

	/* An empty body is an empty bytea, never NULL (= dropped). */
	a->v[i] = len > 0 ? data : empty;
	a->len[i] = (int)len;
	a->fmt[i] = 1;
}

void
queue_pg_args_clear(struct queue_pg_args *a)
{
	int i;

	for (i = 0; i < a->n; i++)
		free(a->own[i]);
	memset(a, 0, sizeof(*a));
}

void
queue_pg_arg_elem(struct buf *b, const char *s)
{
	const char *p;
	char *copy;

	buf_addc(b, b->len == 0 ? '{' : ',');
	if (s == NULL) {
		buf_adds(b, "NULL");
		return;
	}
	/* Quoted, with " and \\ escaped: any other byte is itself. */
	buf_addc(b, '"');
	for (p = queue_pg_utf8(s, &copy); *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_addc(b, '\\');
		buf_addc(b, *p);
	}
	buf_addc(b, '"');
	free(copy);
}

const char *
queue_pg_arg_array(struct buf *b)
{
	if (b->len == 0)
		buf_addc(b, '{');
	buf_addc(b, '}');
	return buf_cstr(b);
}
