/*
 * console_page_check: /check, the connectivity analyzer in a browser. A
 * domain in (/check?domain=example.org, so that /impact links here), the
 * verdict and the per-MX explanation out.
 *
 * It is `danerelay check`: the same engine (check_run_*), set up from
 * the same config (check_conf.c), and the same words: the report on the
 * page is check_print_text()'s, written into memory, and the verdict and
 * the table of MX hosts come from check_to_json(). Only the loop differs:
 * the check runs on the console's loop (check_run_start), and the page is
 * sent from its completion callback, so no other page waits. The
 * console's resolver and TLS client context are made once, on the first
 * check; an MTA-STS engine (when [mta_sts] is on) is made per check with
 * its cache in memory, as the command does. At most CHECK_RUNNING checks
 * run at once, each bounded by CHECK_TIMEOUT.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "check/check.h"
#include "conf/conf.h"
#include "console/console_int.h"
#include "core/xmalloc.h"
#include "dns/dns.h"
#include "sts/sts.h"
#include "tls/tls_client.h"

void console_page_check(struct console_req *r);

#define CHECK_RUNNING 4 /* checks at once */
/* Seconds for one check, self-test included: under the console's HTTP
 * timeout (30 s), so the answer always reaches the browser. */
#define CHECK_TIMEOUT 25

/* What the console keeps for every check: made on the first one. */
static struct {
	struct event_base *base;
	struct dns_resolver *resolver;
	SSL_CTX *ctx;
	char *error; /* why they could not be made (shown, kept) */
	struct console_check *running[CHECK_RUNNING];
	int nrunning;
} check_env;

/* One check in flight, owned by the request until console_end(). */
struct console_check {
	struct console_req *r;
	char *domain;
	struct check_opts opts;
	char helo[CHECK_HELO_LEN];
	struct check_resolver_info ri;
	char *upstream;
	struct dns_query *selftest;
	struct check_run *run;
	struct event *timer;
};

/* The resolver and TLS context, on the console's loop; 0 or -1. */
static int
check_env_init(struct console_req *r)
{
	const struct conf *c = console_conf(r);
	const char *terr;
	char *err = NULL;

	if (check_env.resolver != NULL || check_env.error != NULL)
		return check_env.error != NULL ? -1 : 0;
	check_env.base = console_base(r);
	check_env.resolver = check_conf_resolver(check_env.base, c, &err);
	if (check_env.resolver == NULL) {
		check_env.error = xasprintf("resolver: %s", err);
		free(err);
		return -1;
	}
	check_env.ctx =
	    tls_client_ctx_new(conf_list(c, CONF_DANE_DIGESTS), &terr);
	if (check_env.ctx == NULL) {
		check_env.error = xasprintf("TLS: %s", terr);
		return -1;
	}
	if (check_conf_ca(c, check_env.ctx, &err) == -1) {
		check_env.error = err;
		return -1;
	}
	return 0;
}

static void check_finish(struct console_check *ck);
static void check_error(struct console_req *r, const char *what);

void
console_page_check_stop(void)
{
	while (check_env.nrunning > 0) {
		struct console_check *ck = check_env.running[0];

		check_error(ck->r,
		    "The console stopped before the check "
		    "finished.");
		check_finish(ck);
	}
	dns_resolver_free(check_env.resolver);
	SSL_CTX_free(check_env.ctx);
	free(check_env.error);
	memset(&check_env, 0, sizeof(check_env));
}

static void
check_form(struct console_req *r, const char *domain)
{
	console_printf(r,
	    "<form method=\"get\" action=\"/check\" "
	    "class=\"filters\" id=\"check-form\"><label>Domain "
	    "<input type=\"text\" name=\"domain\" "
	    "placeholder=\"example.org\" value=\"");
	console_text(r, domain != NULL ? domain : "");
	console_printf(r,
	    "\"></label> <button type=\"submit\">Check</button>"
	    "</form>\n<p class=\"muted\">The same test as "
	    "<code>danerelay check DOMAIN</code>: DNSSEC, MX, "
	    "TLSA and MTA-STS lookups, then a connection to "
	    "every MX address with STARTTLS, judged as the "
	    "relay judges a delivery. No mail is sent.</p>\n");
}

static void
check_error(struct console_req *r, const char *what)
{
	console_printf(r, "<p class=\"error\" id=\"check-error\">");
	console_text(r, what);
	console_printf(r, "</p>\n");
}

/* The request ends here, whatever happened; everything is freed. */
static void
check_finish(struct console_check *ck)
{
	struct console_req *r = ck->r;
	int i;

	for (i = 0; i < check_env.nrunning; i++)
		if (check_env.running[i] == ck)
			check_env.running[i] =
			    check_env.running[--check_env.nrunning];
	check_run_free(ck->run);
	sts_free(ck->opts.sts);
	dns_query_cancel(ck->selftest);
	if (ck->timer != NULL)
		event_free(ck->timer);
	free(ck->upstream);
	free(ck->domain);
	free(ck);
	console_end(r);
}

/* The report of `danerelay check` (no colour) as one string. */
static char *
check_report_text(
    const struct check_domain *d, const struct check_resolver_info *ri)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL)
		return xstrdup("(the report could not be written)");
	check_print_text(fp, d, ri, false, false);
	fclose(fp);
	return text;
}

/* The outcome that explains an MX: its own, or its first failing
 * connection's (as the text report prints them). */
static json_t *
check_mx_outcome(json_t *mx)
{
	json_t *conns = json_object_get(mx, "connections"), *c;
	size_t i;

	if (json_is_true(json_object_get(mx, "pass")) ||
	    json_string_length(json_object_get(mx, "text")) > 0)
		return mx;
	json_array_foreach(conns, i, c)
	{
		if (json_string_length(json_object_get(c, "text")) > 0)
			return c;
	}
	return mx;
}

static void
check_mx_row(struct console_req *r, size_t i, json_t *mx)
{
	json_t *o = check_mx_outcome(mx);
	bool pass = json_is_true(json_object_get(mx, "pass"));
	const char *policy = json_string_value(json_object_get(mx, "policy"));
	const char *rt = json_string_value(json_object_get(o, "result_type"));

	console_printf(r, "<tr class=\"%s\"><td>%zu</td><td class=\"host\">",
	    pass ? "pass" : "fail", i + 1);
	console_text(r, json_string_value(json_object_get(mx, "host")));
	console_printf(r, "</td><td>%" JSON_INTEGER_FORMAT "</td><td>",
	    json_integer_value(json_object_get(mx, "preference")));
	console_text(r, policy != NULL ? policy : "-");
	console_printf(r, "</td><td class=\"result %s\">%s</td><td>",
	    pass ? "ok" : "bad", pass ? "PASS" : "FAIL");
	if (!pass) {
		console_text(
		    r, json_string_value(json_object_get(o, "status")));
		if (rt != NULL) {
			console_printf(r, " ");
			console_text(r, rt);
		}
	}
	console_printf(r, "</td><td>");
	if (!pass)
		console_text(r, json_string_value(json_object_get(o, "text")));
	console_printf(r, "</td></tr>\n");
}

static void
check_mx_table(struct console_req *r, json_t *doc)
{
	json_t *mxs = json_object_get(doc, "mx"), *mx;
	size_t i;

	if (json_array_size(mxs) == 0)
		return;
	console_printf(r,
	    "<h2>MX hosts</h2>\n<table class=\"list\" "
	    "id=\"check-mx\"><thead><tr><th>#</th><th>Host</th>"
	    "<th>Pref</th><th>Policy</th><th>Result</th>"
	    "<th>Status</th><th>Why</th></tr></thead><tbody>\n");
	json_array_foreach(mxs, i, mx)
	{
		check_mx_row(r, i, mx);
	}
	console_printf(r, "</tbody></table>\n");
}

/* The verdict box: the report's first line, and its "why:" and "fix:"
 * lines (the whole report follows below). */
static void
check_verdict_box(struct console_req *r, json_t *doc, const char *text)
{
	const char *verdict =
	    json_string_value(json_object_get(doc, "verdict"));
	bool fail = verdict == NULL || strcmp(verdict, "defer") == 0 ||
	    strcmp(verdict, "bounce") == 0;
	const char *line = text, *nl;
	char *s;

	console_printf(r,
	    "<div class=\"verdict %s\" id=\"check-verdict\" "
	    "data-verdict=\"",
	    fail ? "error" : "notice");
	console_text(r, verdict != NULL ? verdict : "?");
	console_printf(r, "\">");
	for (; *line != '\0'; line = *nl != '\0' ? nl + 1 : nl) {
		nl = strchrnul(line, '\n');
		if (line != text && strncmp(line, "  why: ", 7) != 0 &&
		    strncmp(line, "  fix: ", 7) != 0)
			continue;
		s = xstrndup(line, (size_t)(nl - line));
		console_printf(
		    r, line == text ? "<p class=\"headline\"><strong>" : "<p>");
		console_text(r, line == text ? s : s + 2);
		console_printf(r, line == text ? "</strong></p>" : "</p>");
		free(s);
	}
	console_printf(r, "</div>\n");
}

static void
check_done(struct check_run *run, void *arg)
{
	struct console_check *ck = arg;
	struct console_req *r = ck->r;
	const struct check_domain *d = check_run_domain(run, 0);
	json_t *doc = check_to_json(d, &ck->ri);
	char *text = check_report_text(d, &ck->ri);

	check_verdict_box(r, doc, text);
	check_mx_table(r, doc);
	console_printf(r,
	    "<h2>Report</h2>\n<pre class=\"report\" "
	    "id=\"check-report\">");
	console_text(r, text);
	console_printf(r, "</pre>\n");
	free(text);
	json_decref(doc);
	check_finish(ck);
}

/* Root DNSKEY must validate before any verdict can be trusted. */
static void
check_selftest_done(struct dns_answer *ans, void *arg)
{
	struct console_check *ck = arg;
	char *why;

	ck->selftest = NULL;
	ck->ri.selftest_error = dns_selftest_explain(ans);
	dns_answer_free(ans);
	if (ck->ri.selftest_error != NULL) {
		why = xasprintf("RESOLVER SELF-TEST FAILED: %s. %s",
		    ck->ri.selftest_error, CHECK_SELFTEST_ADVICE);
		check_error(ck->r, why);
		free(why);
		check_finish(ck);
		return;
	}
	ck->run = check_run_new(
	    check_env.base, check_env.resolver, check_env.ctx, &ck->opts);
	check_run_add(ck->run, ck->domain);
	check_run_start(ck->run, check_done, ck);
}

static void
check_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct console_check *ck = arg;
	char *why;

	(void)fd;
	(void)what;
	why = xasprintf("The check of %s did not finish within %d seconds "
	                "(a DNS server or an MX host that does not answer); "
	                "danerelay check %s shows where it waits.",
	    ck->domain, CHECK_TIMEOUT, ck->domain);
	check_error(ck->r, why);
	free(why);
	check_finish(ck);
}

/* Start the check of domain; the page ends in a callback. 0 or -1. */
static int
check_start(struct console_req *r, const char *domain)
{
	const struct timeval tv = { CHECK_TIMEOUT, 0 };
	struct console_check *ck = xcalloc(1, sizeof(*ck));
	char *err = NULL;

	ck->r = r;
	ck->domain = xstrdup(domain);
	ck->opts.connect = true;
	check_conf_opts(&ck->opts, console_conf(r), 0, ck->helo);
	ck->upstream = check_conf_info(&ck->ri, console_conf(r));
	if (check_conf_sts(console_conf(r), check_env.base, check_env.resolver,
	        &ck->opts.sts, &err) == -1) {
		check_error(r, err);
		free(err);
		free(ck->upstream);
		free(ck->domain);
		free(ck);
		return -1;
	}
	check_env.running[check_env.nrunning++] = ck;
	ck->timer = evtimer_new(check_env.base, check_timeout, ck);
	evtimer_add(ck->timer, &tv);
	ck->selftest =
	    dns_selftest(check_env.resolver, check_selftest_done, ck);
	return 0;
}

/* The domain argument without surrounding blanks; new, or NULL. */
static char *
check_domain_arg(struct console_req *r)
{
	const char *s = console_arg(r, "domain");
	size_t len;

	if (s == NULL)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return len > 0 ? xstrndup(s, len) : NULL;
}

void
console_page_check(struct console_req *r)
{
	char *domain = check_domain_arg(r), *why;

	console_begin(r, "Connectivity check", false);
	check_form(r, domain);
	if (domain == NULL) {
		console_end(r);
		return;
	}
	if (dns_name_check(domain) != NULL) {
		/* The words of `danerelay check` for the same input. */
		why = xasprintf("'%s' is not a domain name: %s", domain,
		    dns_name_check(domain));
		check_error(r, why);
		free(why);
	} else if (check_env_init(r) == -1) {
		why = xasprintf("The check cannot run: %s", check_env.error);
		check_error(r, why);
		free(why);
	} else if (check_env.nrunning >= CHECK_RUNNING) {
		why = xasprintf("Too many checks are running at once (at most "
		                "%d); try again in a moment.",
		    CHECK_RUNNING);
		check_error(r, why);
		free(why);
	} else if (check_start(r, domain) == 0) {
		free(domain);
		return; /* check_finish() ends the page */
	}
	free(domain);
	console_end(r);
}
