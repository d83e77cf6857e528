/*
 * queue_report_json: the report's documents from plain values, for the
 * node's store and the fleet's alike (queue_report_json.h).
 */
#include "queue/queue_report_json.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "queue/queue.h"
#include "queue/queue_int.h"

const struct queue_report_col queue_report_domain_cols[] = {
	{ "domain", 's' },
	{ "security", 's' },
	{ "messages", 'i' },
	{ "recipients", 'i' },
	{ "attempts", 'i' },
	{ "last", 't' },
	{ NULL, 0 },
};

const struct queue_report_col queue_report_count_cols[] = {
	{ "count", 'i' },
	{ "last", 't' },
	{ NULL, 0 },
};

const struct queue_report_col queue_report_notls_cols[] = {
	{ "domain", 's' },
	{ "messages", 'i' },
	{ "plaintext", 'i' },
	{ "failed", 'i' },
	{ "last", 't' },
	{ NULL, 0 },
};

const struct queue_report_col queue_report_blocked_cols[] = {
	{ "status", 's' },
	{ "result_type", 's' },
	{ "text", 's' },
	{ NULL, 0 },
};

const struct queue_report_col queue_report_counts_cols[] = {
	{ "domains", 'i' },
	{ "messages", 'i' },
	{ "recipients", 'i' },
	{ NULL, 0 },
};

const char *const queue_report_classes[QUEUE_REPORT_NCLASS] = { "dane",
	"dane_trusted", "sts", "tls", "plaintext" };

int
queue_report_put(json_t *o, const char *key, json_t *v)
{
	if (v == NULL)
		return -1;
	json_object_set_new(o, key, v);
	return 0;
}

void
queue_report_cut(json_t *o, const char *key, bool cut)
{
	if (cut)
		json_object_set_new(o, key, json_true());
}

time_t
queue_report_start(const struct queue_report_period *p)
{
	return p->since - p->since % p->step;
}

size_t
queue_report_nbuckets(const struct queue_report_period *p)
{
	time_t start = queue_report_start(p);

	return (size_t)((p->until - start + p->step - 1) / p->step);
}

json_t *
queue_report_time(time_t t)
{
	char iso[QUEUE_TIME_LEN];

	return json_string(queue_time_iso(t, iso));
}

json_t *
queue_report_value(char kind, const char *s, long long n)
{
	if (kind == 'i')
		return json_integer((json_int_t)n);
	if (kind == 't')
		return queue_report_time((time_t)n);
	return s != NULL ? queue_json_str(s) : json_null();
}

json_t *
queue_report_period_new(const struct queue_report_period *p, bool has_data,
    time_t data_since, bool buckets)
{
	json_t *o = json_object(), *b;
	time_t t;

	json_object_set_new(
	    o, "name", p->name != NULL ? json_string(p->name) : json_null());
	json_object_set_new(o, "since", queue_report_time(p->since));
	json_object_set_new(o, "until", queue_report_time(p->until));
	json_object_set_new(o, "step", json_integer((json_int_t)p->step));
	/* What the store still holds: a young queue covers less. */
	json_object_set_new(o, "data_since",
	    has_data ? queue_report_time(data_since) : json_null());
	if (buckets) {
		b = json_array();
		for (t = queue_report_start(p); t < p->until; t += p->step)
			json_array_append_new(b, queue_report_time(t));
		json_object_set_new(o, "buckets", b);
	}
	return o;
}

/* --- tables of domains with their errors (blocked, would block) --- */

void
queue_report_table_init(struct queue_report_table *t)
{
	t->rows = json_array();
	t->byk = json_object();
	t->cut = false;
}

/* "domain\tsecurity": the key that ties an error row to its domain row. */
static char *
queue_report_key(const char *d, const char *s)
{
	return xasprintf("%s\t%s", d != NULL ? d : "", s != NULL ? s : "");
}

bool
queue_report_table_row(struct queue_report_table *t, json_t *row)
{
	char *key;

	if (json_array_size(t->rows) == QUEUE_REPORT_MAX_ROWS) {
		t->cut = true;
		json_decref(row);
		return false;
	}
	json_object_set_new(row, "errors", json_array());
	key =
	    queue_report_key(json_string_value(json_object_get(row, "domain")),
	        json_string_value(json_object_get(row, "security")));
	json_object_set(t->byk, key, row);
	json_array_append_new(t->rows, row);
	free(key);
	return true;
}

void
queue_report_table_error(
    struct queue_report_table *t, const char *d, const char *s, json_t *e)
{
	char *key = queue_report_key(d, s);
	json_t *errors;

	errors = json_object_get(json_object_get(t->byk, key), "errors");
	free(key);
	if (errors == NULL ||
	    json_array_size(errors) >= QUEUE_REPORT_MAX_ERRORS) {
		json_decref(e);
		return;
	}
	json_array_append_new(errors, e);
}

json_t *
queue_report_table_rows(struct queue_report_table *t)
{
	json_t *rows = t->rows;

	json_decref(t->byk);
	t->rows = t->byk = NULL;
	return rows;
}

/* --- sent --- */

json_t *
queue_report_zeros(size_t n)
{
	json_t *a = json_array();

	while (n-- > 0)
		json_array_append_new(a, json_integer(0));
	return a;
}

void
queue_report_bucket_add(json_t *a, long long i, json_int_t n)
{
	json_t *v = i >= 0 ? json_array_get(a, (size_t)i) : NULL;

	if (v != NULL)
		json_integer_set(v, json_integer_value(v) + n);
}

json_t *
queue_report_sent_new(const struct queue_report_period *p)
{
	json_t *o = json_object(), *series = json_object(), *totals;
	size_t i;

	totals = json_object();
	for (i = 0; i < QUEUE_REPORT_NCLASS; i++) {
		json_object_set_new(series, queue_report_classes[i],
		    queue_report_zeros(queue_report_nbuckets(p)));
		json_object_set_new(
		    totals, queue_report_classes[i], json_integer(0));
	}
	json_object_set_new(o, "series", series);
	json_object_set_new(o, "totals", totals);
	json_object_set_new(o, "total", json_integer(0));
	return o;
}

void
queue_report_sent_add(json_t *o, long long b, const char *cls, json_int_t n)
{
	json_t *tot;

	if (cls == NULL ||
	    (tot = json_object_get(json_object_get(o, "totals"), cls)) == NULL)
		return; /* not a class of ours: a damaged row */
	queue_report_bucket_add(
	    json_object_get(json_object_get(o, "series"), cls), b, n);
	json_integer_set(tot, json_integer_value(tot) + n);
	tot = json_object_get(o, "total");
	json_integer_set(tot, json_integer_value(tot) + n);
}

/* --- the impact --- */

json_t *
queue_report_would_error(const char *wf, const char *text)
{
	const char *open = wf != NULL ? strrchr(wf, '(') : NULL;
	size_t len = wf != NULL ? strlen(wf) : 0;
	json_t *o = json_object();
	char *type, *status;

	/* would_fail is "TYPE (STATUS)", TYPE being the RFC 8460 result
	 * type or, for a failure without one, the text: the status is in
	 * the last parentheses. */
	if (open == NULL || open == wf || open[-1] != ' ' ||
	    wf[len - 1] != ')') {
		json_object_set_new(o, "result_type", json_null());
		json_object_set_new(
		    o, "status", queue_json_str(wf != NULL ? wf : ""));
	} else {
		type = xstrndup(wf, (size_t)(open - 1 - wf));
		status = xstrndup(open + 1, len - (size_t)(open + 1 - wf) - 1);
		/* A type with a space is a text, not an RFC 8460 name. */
		json_object_set_new(o, "result_type",
		    strchr(type, ' ') == NULL ? queue_json_str(type) :
		                                json_null());
		json_object_set_new(o, "status", queue_json_str(status));
		free(type);
		free(status);
	}
	json_object_set_new(
	    o, "text", text != NULL ? queue_json_str(text) : json_null());
	return o;
}

/* 100 * part / whole, 0 for an empty whole. */
static double
queue_report_percent(const json_t *part, const json_t *whole, const char *key)
{
	json_int_t w = json_integer_value(json_object_get(whole, key));

	return w == 0 ?
	    0.0 :
	    100.0 * (double)json_integer_value(json_object_get(part, key)) /
	        (double)w;
}

void
queue_report_shares(json_t *would, const json_t *totals)
{
	json_object_set_new(would, "domains_percent",
	    json_real(queue_report_percent(would, totals, "domains")));
	json_object_set_new(would, "messages_percent",
	    json_real(queue_report_percent(would, totals, "messages")));
}
