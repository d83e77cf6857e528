/*
 * test_log: the daemon's log lines as written to stderr: the stamp of
 * target stderr, the journal's "<N>" prefix (JOURNAL_STREAM), the level,
 * and format json (each line parses, fields carried, bytes that are not
 * UTF-8 replaced, a line too long cut short and still valid).
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "t.h"

static char cap_path[] = "/tmp/test_log.XXXXXX";
static int saved_stderr = -1;

/* Send stderr to a fresh file; its text comes back from cap_end(). */
static void
cap_begin(void)
{
	int fd;

	if (saved_stderr == -1)
		saved_stderr = dup(2);
	fd = open(cap_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
}

static char *
cap_end(void)
{
	static char text[65536];
	ssize_t n;
	int fd;

	dup2(saved_stderr, 2);
	fd = open(cap_path, O_RDONLY);
	n = fd == -1 ? -1 : read(fd, text, sizeof(text) - 1);
	if (fd != -1)
		close(fd);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static void
configure(const char *target, const char *format, const char *level)
{
	struct log_config lc = { target, format, level, NULL, NULL };
	const char *err;

	T_CHECK(log_configure(&lc, &err) == 0);
}

static void
log_stderr_stamp(void)
{
	char *t, want[64];

	cap_begin();
	configure("stderr", "text", "info");
	log_warnx("disk %d%% full", 93);
	t = cap_end();
	/* 2026-01-31T12:00:00.123Z danerelay[PID]: warning: disk 93% full */
	snprintf(want, sizeof(want),
	    "Z danerelay[%ld]: warning: disk 93%% full\n", (long)getpid());
	T_CHECK(strlen(t) == 24 + strlen(want) - 1);
	T_CHECK(t[4] == '-' && t[10] == 'T' && t[19] == '.');
	T_STREQ(t + 23, want);
}

static void
log_level_warning_drops_info(void)
{
	char *t;

	cap_begin();
	configure("stderr", "text", "warning");
	log_info("not shown");
	log_debug("not shown");
	log_warnx("shown");
	t = cap_end();
	T_CHECK(strstr(t, "not shown") == NULL);
	T_CHECK(strstr(t, "warning: shown") != NULL);
}

static void
log_journal_prefix(void)
{
	struct stat st;
	char env[64], *t;

	cap_begin();
	fstat(2, &st);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	configure("auto", "text", "debug");
	log_info("hello");
	log_warnx("careful");
	log_debug("details");
	unsetenv("JOURNAL_STREAM");
	t = cap_end();
	T_STREQ(t, "<6>hello\n<4>warning: careful\n<7>debug: details\n");
}

/* Field values as written and as JSON must read them back. */
static const struct {
	const char *in, *out;
} json_rows[] = {
	{ "plain", "plain" },
	{ "quote\" back\\slash", "quote\" back\\slash" },
	{ "ctl\x01\x1f\x7f", "ctl\x01\x1f\x7f" },
	{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7",
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7" },
	{ "bad\xff", "bad\xef\xbf\xbd" },
	{ "overlong\xc0\xaf", "overlong\xef\xbf\xbd\xef\xbf\xbd" },
	{ "cut\xe2\x82", "cut\xef\xbf\xbd\xef\xbf\xbd" },
	{ "surrogate\xed\xa0\x80",
	    "surrogate\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
};

static void
log_json_fields(void)
{
	json_t *o;
	size_t i;
	char *t;

	for (i = 0; i < sizeof(json_rows) / sizeof(json_rows[0]); i++) {
		struct log_field f[] = { LOG_STR("v", json_rows[i].in),
			LOG_NUM("n", -42) };

		cap_begin();
		configure("stderr", "json", "info");
		log_fields(LOG_LEVEL_INFO, f, 2, "m %s", json_rows[i].in);
		t = cap_end();
		o = json_loads(t, 0, NULL);
		if (o == NULL) {
			T_FAIL(t);
			continue;
		}
		T_STREQ(json_string_value(json_object_get(o, "v")),
		    json_rows[i].out);
		T_CHECK(json_integer_value(json_object_get(o, "n")) == -42);
		T_CHECK(json_integer_value(json_object_get(o, "pid")) ==
		    (json_int_t)getpid());
		T_STREQ(json_string_value(json_object_get(o, "level")), "info");
		T_CHECK(
		    strlen(json_string_value(json_object_get(o, "ts"))) == 24);
		T_CHECK(t[strlen(t) - 1] == '\n' &&
		    strchr(t, '\n') == t + strlen(t) - 1);
		json_decref(o);
	}
}

static void
log_json_too_long_still_parses(void)
{
	static char big[3000];
	struct log_field f[8];
	json_t *o;
	size_t i;
	char *t;

	memset(big, 0x01, sizeof(big) - 1); /* 6 bytes each in JSON */
	for (i = 0; i < 8; i++)
		f[i] = (struct log_field)LOG_STR("k", big);
	cap_begin();
	configure("stderr", "json", "info");
	log_fields(LOG_LEVEL_WARN, f, 8, "%s", big);
	t = cap_end();
	o = json_loads(t, 0, NULL);
	T_CHECK(o != NULL);
	T_CHECK(json_integer_value(json_object_get(o, "truncated")) == 1);
	T_STREQ(json_string_value(json_object_get(o, "level")), "warning");
	json_decref(o);
}

int
main(void)
{
	int fd = mkstemp(cap_path);

	if (fd == -1)
		return 1;
	close(fd);
	T_RUN(log_stderr_stamp);
	T_RUN(log_level_warning_drops_info);
	T_RUN(log_journal_prefix);
	T_RUN(log_json_fields);
	T_RUN(log_json_too_long_still_parses);
	unlink(cap_path);
	T_EXIT();
}
