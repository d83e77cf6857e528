/*
 * test_tlsrpt_inbox: the received-reports directory
 * (src/tlsrpt/tlsrpt_inbox.c).
 *
 * Directories and maildirs are built in a temporary directory from the
 * report fixtures of tests/unit/golden (a Microsoft-shaped report listing
 * the same sessions under sts and tlsa, a Mail.Ru-shaped email whose
 * totals disagree with its failure details), gzipped, duplicated, mixed
 * with mail that is no report, links and directories; each case checks
 * the rows per sender, policy and day, the flag, and the skipped files
 * with their reasons.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "tlsrpt/tlsrpt_inbox.h"

#include "t.h"

#define MS "tlsrpt_microsoft_sts_tlsa.json"
#define MR "tlsrpt_mailru_inconsistent.eml"

static char t_dir[PATH_MAX];

/* The fixture name of golden/ as a new buffer (*n its length). */
static char *
t_fixture(const char *name, size_t *n)
{
	char path[256], chunk[4096];
	struct buf b;
	FILE *fp;
	size_t k;

	snprintf(path, sizeof(path), "golden/%s", name);
	buf_init(&b, 1 << 20);
	if ((fp = fopen(path, "rb")) != NULL) {
		while ((k = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			buf_add(&b, chunk, k);
		fclose(fp);
	}
	*n = b.len;
	return buf_steal(&b);
}

static void
t_write(const char *rel, const void *p, size_t n)
{
	char *path = xasprintf("%s/%s", t_dir, rel);
	FILE *fp = fopen(path, "wb");

	if (fp == NULL || fwrite(p, 1, n, fp) != n)
		T_FAIL("cannot write a test file");
	if (fp != NULL)
		fclose(fp);
	free(path);
}

/* Copy a fixture to rel, gzipped when gz. */
static void
t_put(const char *fixture, const char *rel, int gz)
{
	size_t n;
	char *p = t_fixture(fixture, &n);
	char *path = xasprintf("%s/%s", t_dir, rel);
	gzFile g;

	if (n == 0)
		T_FAIL("fixture missing");
	if (!gz) {
		t_write(rel, p, n);
	} else if ((g = gzopen(path, "wb")) != NULL) {
		gzwrite(g, p, (unsigned)n);
		gzclose(g);
	}
	free(path);
	free(p);
}

static void
t_mkdir(const char *rel)
{
	char *path = xasprintf("%s/%s", t_dir, rel);

	mkdir(path, 0700);
	free(path);
}

/* A fresh empty directory as t_dir. */
static void
t_fresh(void)
{
	char tmpl[] = "/tmp/test_tlsrpt_inbox.XXXXXX";

	if (mkdtemp(tmpl) == NULL)
		T_FAIL("mkdtemp");
	snprintf(t_dir, sizeof(t_dir), "%s", tmpl);
}

static void
t_cleanup(void)
{
	char *cmd = xasprintf("rm -rf '%s'", t_dir);

	if (system(cmd) != 0)
		printf("  cleanup of %s failed\n", t_dir);
	free(cmd);
}

static const json_t *
t_row(const json_t *doc, const char *sender, const char *type)
{
	const json_t *row;
	size_t i;

	json_array_foreach(json_object_get(doc, "rows"), i, row)
	{
		if (strcmp(json_string_value(json_object_get(row, "sender")),
		        sender) == 0 &&
		    strcmp(
		        json_string_value(json_object_get(row, "policy-type")),
		        type) == 0)
			return row;
	}
	return NULL;
}

static long long
t_n(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* The reason a file was skipped, or NULL. */
static const char *
t_skipped(const json_t *doc, const char *file)
{
	const json_t *s;
	size_t i;

	json_array_foreach(json_object_get(doc, "skipped"), i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "file")),
		        file) == 0)
			return json_string_value(json_object_get(s, "reason"));
	}
	return NULL;
}

static struct tlsrpt_inbox *
t_scan(void)
{
	char *err = NULL;
	struct tlsrpt_inbox *b = tlsrpt_inbox_scan(t_dir, &err);

	if (b == NULL)
		printf("  scan: %s\n", err);
	T_CHECK(b != NULL);
	free(err);
	return b;
}

/* A maildir: per-policy rows not doubled, the Mail.Ru flag, a copy of the
 * same report counted once, other mail, a link and a directory skipped. */
static void
maildir(void)
{
	struct tlsrpt_inbox *b;
	const json_t *doc, *ms, *mt, *mr, *fl;
	const char *why;
	char *link;

	t_fresh();
	t_mkdir("cur");
	t_mkdir("new");
	t_mkdir("tmp");
	t_put(MS, "new/1796500000.M1.host", 0);
	t_put(MR, "cur/1796500001.M2.host:2,S", 0);
	t_put(MS, "cur/1796500002.M3.host:2,S", 0);
	t_put(MS, "tmp/1796500003.M4.host", 0);
	t_write(
	    "cur/1796500004.M5.host:2,", "Subject: hi\r\n\r\nhello\r\n", 23);
	t_mkdir("cur/sub");
	link = xasprintf("%s/new/1796500005.M6.host", t_dir);
	if (symlink("/etc/passwd", link) == -1)
		T_FAIL("symlink");
	free(link);
	if ((b = t_scan()) == NULL)
		goto out;
	doc = tlsrpt_inbox_json(b);
	T_CHECK(json_is_true(json_object_get(doc, "maildir")));
	T_CHECK(t_n(doc, "files") == 6);
	T_CHECK(t_n(doc, "reports") == 2);
	T_CHECK(t_n(doc, "nskipped") == 4);
	T_CHECK(json_array_size(json_object_get(doc, "rows")) == 3);
	ms = t_row(doc, "Microsoft Corporation", "sts");
	mt = t_row(doc, "Microsoft Corporation", "tlsa");
	mr = t_row(doc, "Mail.Ru", "sts");
	T_CHECK(ms != NULL && mt != NULL && mr != NULL);
	T_CHECK(t_n(ms, "successful") == 212 && t_n(ms, "failed") == 3);
	T_CHECK(t_n(mt, "successful") == 212 && t_n(mt, "failed") == 3);
	T_CHECK(t_n(ms, "reports") == 1 && t_n(ms, "inconsistent") == 0);
	T_STREQ(json_string_value(json_object_get(ms, "day")), "2026-12-05");
	T_STREQ(json_string_value(json_object_get(ms, "policy-domain")),
	    "example.com");
	T_CHECK(
	    t_n(json_object_get(ms, "failures"), "certificate-expired") == 3);
	T_CHECK(t_n(mr, "successful") == 1034 && t_n(mr, "failed") == 12);
	T_CHECK(t_n(mr, "inconsistent") == 1);
	T_CHECK(
	    t_n(json_object_get(mr, "failures"), "validation-failure") == 2);
	fl = json_array_get(json_object_get(doc, "inconsistent"), 0);
	T_CHECK(json_array_size(json_object_get(doc, "inconsistent")) == 1);
	T_STREQ(json_string_value(json_object_get(fl, "file")),
	    "cur/1796500001.M2.host:2,S");
	T_CHECK(t_n(fl, "failed") == 12 &&
	    t_n(fl, "failure-details-sessions") == 5);
	why = t_skipped(doc, "new/1796500000.M1.host");
	T_CHECK(why != NULL && strstr(why, "the same report as cur/") != NULL);
	why = t_skipped(doc, "new/1796500005.M6.host");
	T_CHECK(why != NULL && strstr(why, "symbolic link") != NULL);
	why = t_skipped(doc, "cur/1796500004.M5.host:2,");
	T_CHECK(why != NULL && strstr(why, "no application/tlsrpt") != NULL);
	why = t_skipped(doc, "cur/sub");
	T_CHECK(why != NULL && strstr(why, "not a regular file") != NULL);
	T_CHECK(t_skipped(doc, "tmp/1796500003.M4.host") == NULL);
out:
	tlsrpt_inbox_free(b);
	t_cleanup();
}

/* A plain directory of .json.gz and .eml files, the text form. */
static void
plain_dir(void)
{
	struct tlsrpt_inbox *b;
	const json_t *doc;
	char *out = NULL;
	size_t n = 0;
	FILE *fp;

	t_fresh();
	t_put(MS, "microsoft.com!example.com!1796428800!1796515199.json.gz", 1);
	t_put(MR, "mailru.eml", 0);
	t_write(".hidden", "x", 1);
	if ((b = t_scan()) == NULL)
		goto out;
	doc = tlsrpt_inbox_json(b);
	T_CHECK(json_is_false(json_object_get(doc, "maildir")));
	T_CHECK(t_n(doc, "files") == 2 && t_n(doc, "reports") == 2);
	T_CHECK(t_n(doc, "nskipped") == 0);
	T_STREQ(json_string_value(json_object_get(
	            json_array_get(json_object_get(doc, "rows"), 0), "sender")),
	    "Mail.Ru");
	fp = open_memstream(&out, &n);
	tlsrpt_inbox_print(fp, b);
	fclose(fp);
	T_CHECK(strstr(out, ": 2 files, 2 reports, 0 skipped\n") != NULL);
	T_CHECK(
	    strstr(out,
	        "  2026-12-05  tlsa example.com: 212 successful, 3 "
	        "failed sessions (1 report); certificate-expired 3\n") != NULL);
	T_CHECK(strstr(out, "424") == NULL);
	T_CHECK(strstr(out, "INCONSISTENT (1)") != NULL);
	T_CHECK(strstr(out,
	            "WARNING: inconsistent report mailru.eml from Mail.Ru: "
	            "policy sts example.com: total-failure-session-count "
	            "12, failure-details add up to 5\n") != NULL);
	if (t_failed_now)
		printf("%s", out);
	free(out);
out:
	tlsrpt_inbox_free(b);
	t_cleanup();
}

/* More files than the cap: the scan stops and says so. */
static void
file_cap(void)
{
	struct tlsrpt_inbox *b;
	const json_t *doc;
	char name[32];
	int i;

	t_fresh();
	for (i = 0; i < TLSRPT_INBOX_FILES_MAX + 3; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		t_write(name, "", 0);
	}
	if ((b = t_scan()) == NULL)
		goto out;
	doc = tlsrpt_inbox_json(b);
	T_CHECK(t_n(doc, "files") == TLSRPT_INBOX_FILES_MAX);
	T_CHECK(json_is_true(json_object_get(doc, "truncated")));
	T_CHECK(t_n(doc, "nskipped") == TLSRPT_INBOX_FILES_MAX);
	T_CHECK(json_array_size(json_object_get(doc, "skipped")) ==
	    TLSRPT_INBOX_SKIPPED_MAX);
	T_STREQ(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(doc, "skipped"), 0), "reason")),
	    "empty input");
out:
	tlsrpt_inbox_free(b);
	t_cleanup();
}

static void
missing_dir(void)
{
	char *err = NULL;
	struct tlsrpt_inbox *b =
	    tlsrpt_inbox_scan("/nonexistent/tlsrpt-inbox", &err);

	T_CHECK(
	    b == NULL && err != NULL && strstr(err, "No such file") != NULL);
	tlsrpt_inbox_free(b);
	free(err);
}

int
main(void)
{
	T_RUN(maildir);
	T_RUN(plain_dir);
	T_RUN(file_cap);
	T_RUN(missing_dir);
	T_EXIT();
}
