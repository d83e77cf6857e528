/*
 * tlsrpt_inbox: scan a directory or maildir of received TLS reports and
 * add them up per sender, policy and day. Names are gathered first (capped,
 * sorted so a scan is repeatable), then each file is opened without
 * following links, read up to its cap and given to tlsrpt_parse(); each
 * policy entry of its summary goes into one row.
 */
#include "tlsrpt/tlsrpt_inbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_parse.h"

struct tlsrpt_inbox {
	json_t *doc;
	json_t *index; /* row key -> row */
	json_t *seen;  /* sender "\n" report-id -> file */
	long long bytes;
};

/* ---- adding a report ------------------------------------------------------
 */

static void
ib_skip(struct tlsrpt_inbox *b, const char *file, const char *why)
{
	json_t *sk = json_object_get(b->doc, "skipped");
	json_int_t n = json_integer_value(json_object_get(b->doc, "nskipped"));

	json_object_set_new(b->doc, "nskipped", json_integer(n + 1));
	if (json_array_size(sk) < TLSRPT_INBOX_SKIPPED_MAX)
		json_array_append_new(
		    sk, json_pack("{s:s?, s:s?}", "file", file, "reason", why));
}

static void
ib_add(json_t *o, const char *key, json_int_t n)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	json_object_set_new(
	    o, key, json_integer(v > LLONG_MAX - n ? LLONG_MAX : v + n));
}

/* Who sent the report: organization-name, else the email's
 * TLS-Report-Submitter, else contact-info. Borrowed. */
static const char *
ib_sender(const json_t *doc)
{
	const json_t *rep = json_object_get(doc, "report");
	const char *s;

	if ((s = json_string_value(json_object_get(rep, "organization-name"))))
		return s;
	if ((s = json_string_value(json_object_get(
	         json_object_get(doc, "email"), "tls-report-submitter"))))
		return s;
	if ((s = json_string_value(json_object_get(rep, "contact-info"))))
		return s;
	return "(unknown)";
}

/* The UTC day the report is for: the date of its start-datetime. */
static void
ib_day(const json_t *doc, char out[11])
{
	const char *s = json_string_value(json_object_get(
	    json_object_get(json_object_get(doc, "report"), "date-range"),
	    "start-datetime"));
	size_t i;

	memcpy(out, "unknown", 8);
	if (s == NULL || strlen(s) < 10)
		return;
	for (i = 0; i < 10; i++)
		if ((i == 4 || i == 7) ? s[i] != '-' :
		                         (s[i] < '0' || s[i] > '9'))
			return;
	memcpy(out, s, 10);
	out[10] = '\0';
}

static json_t *
ib_row(struct tlsrpt_inbox *b, const char *sender, const json_t *e,
    const char *day)
{
	const char *type = json_string_value(json_object_get(e, "policy-type"));
	const char *dom =
	    json_string_value(json_object_get(e, "policy-domain"));
	json_t *row;
	char *key;

	type = type != NULL ? type : "(none)";
	dom = dom != NULL ? dom : "(none)";
	/* Sorts by sender, domain, type, day (the \x01 before any text). */
	key = xasprintf("%s\x01%s\x01%s\x01%s", sender, dom, type, day);
	if ((row = json_object_get(b->index, key)) == NULL) {
		row =
		    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:{}, s:I}",
		        "sender", sender, "policy-type", type, "policy-domain",
		        dom, "day", day, "reports", (json_int_t)0, "successful",
		        (json_int_t)0, "failed", (json_int_t)0, "failures",
		        "inconsistent", (json_int_t)0);
		json_object_set_new(b->index, key, row);
	}
	free(key);
	return row;
}

static void
ib_flag(struct tlsrpt_inbox *b, const char *file, const json_t *doc,
    const char *sender, const json_t *e, const char *day)
{
	json_t *fl = json_object_get(b->doc, "inconsistent");

	if (json_array_size(fl) >= TLSRPT_INBOX_FLAGGED_MAX)
		return;
	json_array_append_new(fl,
	    json_pack("{s:s, s:s, s:O*, s:s, s:O*, s:O*, s:O, s:O}", "file",
	        file, "sender", sender, "report-id",
	        json_object_get(json_object_get(doc, "report"), "report-id"),
	        "day", day, "policy-type", json_object_get(e, "policy-type"),
	        "policy-domain", json_object_get(e, "policy-domain"), "failed",
	        json_object_get(e, "failed"), "failure-details-sessions",
	        json_object_get(e, "failure-details-sessions")));
}

/* One policy of a report into its row. */
static void
ib_entry(struct tlsrpt_inbox *b, const char *file, const json_t *doc,
    const json_t *e)
{
	const char *sender = ib_sender(doc);
	json_t *row, *f;
	const char *rt;
	char day[11];
	size_t i;

	ib_day(doc, day);
	row = ib_row(b, sender, e, day);
	ib_add(row, "reports", 1);
	ib_add(row, "successful",
	    json_integer_value(json_object_get(e, "successful")));
	ib_add(row, "failed", json_integer_value(json_object_get(e, "failed")));
	json_array_foreach(json_object_get(e, "failures"), i, f)
	{
		rt = json_string_value(json_object_get(f, "result-type"));
		ib_add(json_object_get(row, "failures"),
		    rt != NULL ? rt : "(none)",
		    json_integer_value(json_object_get(f, "sessions")));
	}
	if (json_is_false(json_object_get(e, "consistent"))) {
		ib_add(row, "inconsistent", 1);
		ib_flag(b, file, doc, sender, e, day);
	}
}

/* A report sent twice (a copy in cur/ and new/, a resent mail) counts
 * once: RFC 8460 §4.4 report-id is unique per report. */
static bool
ib_duplicate(struct tlsrpt_inbox *b, const char *file, const json_t *doc)
{
	const char *id = json_string_value(
	    json_object_get(json_object_get(doc, "report"), "report-id"));
	const char *first;
	char *key, *why;
	bool dup = false;

	if (id == NULL)
		return false;
	key = xasprintf("%s\n%s", ib_sender(doc), id);
	first = json_string_value(json_object_get(b->seen, key));
	if (first != NULL) {
		why = xasprintf("the same report as %s (report-id)", first);
		ib_skip(b, file, why);
		free(why);
		dup = true;
	} else {
		json_object_set_new(b->seen, key, json_string(file));
	}
	free(key);
	return dup;
}

static void
ib_report(struct tlsrpt_inbox *b, const char *file, const uint8_t *p, size_t n)
{
	struct tlsrpt_report *r;
	const json_t *doc, *e;
	char *err = NULL;
	size_t i;

	if ((r = tlsrpt_parse(p, n, &err)) == NULL) {
		ib_skip(b, file, err);
		free(err);
		return;
	}
	doc = tlsrpt_report_json(r);
	if (!ib_duplicate(b, file, doc)) {
		ib_add(b->doc, "reports", 1);
		json_array_foreach(json_object_get(doc, "summary"), i, e)
		    ib_entry(b, file, doc, e);
	}
	tlsrpt_report_free(r);
}

/* ---- reading the files ----------------------------------------------------
 */

/* Read the whole of fd (size octets by fstat) into out. NULL or why not. */
static const char *
ib_read(int fd, size_t size, struct buf *out)
{
	char chunk[65536];
	ssize_t k;

	while ((k = read(fd, chunk, sizeof(chunk))) != 0) {
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1)
			return strerror(errno);
		if (buf_add(out, chunk, (size_t)k) == -1 || out->len > size)
			return "grew while read, or larger than 20 MiB";
	}
	return NULL;
}

/* Why the open file fd cannot be read as a report, or NULL. */
static const char *
ib_check(struct tlsrpt_inbox *b, int fd, struct stat *st)
{
	if (fstat(fd, st) == -1)
		return strerror(errno);
	if (!S_ISREG(st->st_mode))
		return "not a regular file";
	if (st->st_size > TLSRPT_INPUT_MAX)
		return "larger than 20 MiB";
	if (b->bytes + st->st_size > TLSRPT_INBOX_BYTES_MAX) {
		json_object_set_new(b->doc, "truncated", json_true());
		return "not read: the scan read 256 MiB already";
	}
	b->bytes += st->st_size;
	return NULL;
}

/* The file name in dfd (shown as sub/name in a maildir). */
static void
ib_file(struct tlsrpt_inbox *b, int dfd, const char *sub, const char *name)
{
	char *file =
	    sub != NULL ? xasprintf("%s/%s", sub, name) : xstrdup(name);
	const char *why;
	struct stat st;
	struct buf data;
	int fd;

	buf_init(&data, TLSRPT_INPUT_MAX);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		why = errno == ELOOP ? "a symbolic link (not followed)" :
		                       strerror(errno);
	else if ((why = ib_check(b, fd, &st)) == NULL)
		why = ib_read(fd, (size_t)st.st_size, &data);
	if (why == NULL)
		ib_report(b, file, (const uint8_t *)buf_cstr(&data), data.len);
	else
		ib_skip(b, file, why);
	if (fd != -1)
		close(fd);
	buf_free(&data);
	free(file);
}

static int
ib_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dfd (not "." ones), sorted; at most max, *more set when
 * there were more. New array of *n new strings. */
static char **
ib_names(int dfd, size_t max, size_t *n, bool *more)
{
	DIR *d;
	struct dirent *de;
	char **v = NULL;
	size_t cap = 0;
	int fd = dup(dfd);

	*n = 0;
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n >= max) {
			*more = true;
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), ib_cmp);
	return v;
}

/* Every file of the directory dfd (sub: its name in a maildir). */
static void
ib_dir(struct tlsrpt_inbox *b, int dfd, const char *sub)
{
	json_int_t done = json_integer_value(json_object_get(b->doc, "files"));
	bool more = false;
	size_t i, n;
	char **v;

	if (done >= TLSRPT_INBOX_FILES_MAX) {
		json_object_set_new(b->doc, "truncated", json_true());
		return;
	}
	v = ib_names(dfd, TLSRPT_INBOX_FILES_MAX - (size_t)done, &n, &more);
	if (more)
		json_object_set_new(b->doc, "truncated", json_true());
	for (i = 0; i < n; i++) {
		ib_add(b->doc, "files", 1);
		ib_file(b, dfd, sub, v[i]);
		free(v[i]);
	}
	free(v);
}

/* A maildir's cur/ and new/ (tmp/ holds messages being written). */
static bool
ib_maildir(struct tlsrpt_inbox *b, int dfd)
{
	static const char *const subs[] = { "cur", "new" };
	bool found = false;
	size_t i;
	int fd;

	for (i = 0; i < 2; i++) {
		fd = openat(dfd, subs[i],
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			continue;
		found = true;
		ib_dir(b, fd, subs[i]);
		close(fd);
	}
	return found;
}

/* The rows in key order. */
static json_t *
ib_rows(json_t *index)
{
	json_t *rows = json_array(), *row;
	const char *key, **keys;
	size_t i = 0, n = json_object_size(index);

	keys = xcalloc(n + 1, sizeof(*keys));
	json_object_foreach(index, key, row) keys[i++] = key;
	qsort(keys, n, sizeof(*keys), ib_cmp);
	for (i = 0; i < n; i++)
		json_array_append(rows, json_object_get(index, keys[i]));
	free(keys);
	return rows;
}

struct tlsrpt_inbox *
tlsrpt_inbox_scan(const char *dir, char **errstr)
{
	struct tlsrpt_inbox *b;
	int dfd;

	*errstr = NULL;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1) {
		*errstr = xasprintf("%s: %s", dir, strerror(errno));
		return NULL;
	}
	b = xcalloc(1, sizeof(*b));
	b->index = json_object();
	b->seen = json_object();
	b->doc = json_pack("{s:s?, s:b, s:I, s:I, s:b, s:I, s:[], s:[]}",
	    "directory", dir, "maildir", 0, "files", (json_int_t)0, "reports",
	    (json_int_t)0, "truncated", 0, "nskipped", (json_int_t)0, "skipped",
	    "inconsistent");
	if (ib_maildir(b, dfd))
		json_object_set_new(b->doc, "maildir", json_true());
	else
		ib_dir(b, dfd, NULL);
	close(dfd);
	json_object_set_new(b->doc, "rows", ib_rows(b->index));
	return b;
}

void
tlsrpt_inbox_free(struct tlsrpt_inbox *b)
{
	if (b == NULL)
		return;
	json_decref(b->doc);
	json_decref(b->index);
	json_decref(b->seen);
	free(b);
}

const json_t *
tlsrpt_inbox_json(const struct tlsrpt_inbox *b)
{
	return b->doc;
}

/* ---- text -----------------------------------------------------------------
 */

static json_int_t
ib_int(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *
ib_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void
ib_print_row(FILE *fp, const json_t *row)
{
	const char *rt;
	json_t *n;
	bool first = true;

	fprintf(fp, "  %s  ", ib_str(row, "day"));
	tlsrpt_fputs_clean(fp, ib_str(row, "policy-type"));
	fputc(' ', fp);
	tlsrpt_fputs_clean(fp, ib_str(row, "policy-domain"));
	fprintf(fp,
	    ": %" JSON_INTEGER_FORMAT " successful, %" JSON_INTEGER_FORMAT
	    " failed sessions (%" JSON_INTEGER_FORMAT " report%s)",
	    ib_int(row, "successful"), ib_int(row, "failed"),
	    ib_int(row, "reports"), ib_int(row, "reports") == 1 ? "" : "s");
	json_object_foreach(json_object_get(row, "failures"), rt, n)
	{
		fputs(first ? "; " : ", ", fp);
		tlsrpt_fputs_clean(fp, rt);
		fprintf(fp, " %" JSON_INTEGER_FORMAT, json_integer_value(n));
		first = false;
	}
	if (ib_int(row, "inconsistent") > 0)
		fprintf(fp, "  INCONSISTENT (%" JSON_INTEGER_FORMAT ")",
		    ib_int(row, "inconsistent"));
	fputc('\n', fp);
}

static void
ib_print_flags(FILE *fp, const json_t *doc)
{
	const json_t *f;
	size_t i;

	json_array_foreach(json_object_get(doc, "inconsistent"), i, f)
	{
		fputs("WARNING: inconsistent report ", fp);
		tlsrpt_fputs_clean(fp, ib_str(f, "file"));
		fputs(" from ", fp);
		tlsrpt_fputs_clean(fp, ib_str(f, "sender"));
		fputs(": policy ", fp);
		tlsrpt_fputs_clean(fp, ib_str(f, "policy-type"));
		fputc(' ', fp);
		tlsrpt_fputs_clean(fp, ib_str(f, "policy-domain"));
		fprintf(fp,
		    ": total-failure-session-count %" JSON_INTEGER_FORMAT
		    ", failure-details add up to %" JSON_INTEGER_FORMAT "\n",
		    ib_int(f, "failed"), ib_int(f, "failure-details-sessions"));
	}
}

void
tlsrpt_inbox_print(FILE *fp, const struct tlsrpt_inbox *b)
{
	const json_t *doc = b->doc, *row, *sk;
	const char *last = NULL;
	size_t i;

	tlsrpt_fputs_clean(fp, ib_str(doc, "directory"));
	fprintf(fp,
	    "%s: %" JSON_INTEGER_FORMAT " files, %" JSON_INTEGER_FORMAT
	    " reports, %" JSON_INTEGER_FORMAT " skipped%s\n",
	    json_is_true(json_object_get(doc, "maildir")) ? " (maildir)" : "",
	    ib_int(doc, "files"), ib_int(doc, "reports"),
	    ib_int(doc, "nskipped"),
	    json_is_true(json_object_get(doc, "truncated")) ?
	        " (stopped at a cap: more files were not read)" :
	        "");
	json_array_foreach(json_object_get(doc, "rows"), i, row)
	{
		if (last == NULL || strcmp(last, ib_str(row, "sender")) != 0) {
			fputc('\n', fp);
			tlsrpt_fputs_clean(fp, ib_str(row, "sender"));
			fputc('\n', fp);
			last = ib_str(row, "sender");
		}
		ib_print_row(fp, row);
	}
	fputc('\n', fp);
	ib_print_flags(fp, doc);
	json_array_foreach(json_object_get(doc, "skipped"), i, sk)
	{
		fputs("skipped: ", fp);
		tlsrpt_fputs_clean(fp, ib_str(sk, "file"));
		fputs(": ", fp);
		tlsrpt_fputs_clean(fp, ib_str(sk, "reason"));
		fputc('\n', fp);
	}
}
