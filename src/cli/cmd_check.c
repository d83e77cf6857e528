/*
 * cmd_check: `danerelay check [--json] [--no-connect] [--mx HOST]
 * [--port N] DOMAIN...`, the connectivity analyzer.
 *
 * Exit status: 0 when every verdict lets mail through (verified, trusted,
 * encrypted, opportunistic), 1 when any domain would defer or bounce, 2 when
 * the check could not run (bad arguments, resolver self-test failed).
 */
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check/check.h"
#include "cli/cli.h"
#include "conf/conf.h"
#include "core/str.h"
#include "dns/dns.h"
#include "sts/sts.h"
#include "tls/tls_client.h"

#define CHECK_EXIT_FAIL  1
#define CHECK_EXIT_ERROR 2

struct cmd_check_args {
	bool json;
	bool verbose;
	struct check_opts opts;
	int port; /* -1: from the config */
};

struct cmd_selftest {
	const char *error; /* NULL: resolver validates */
	bool done;
};

static int
cmd_check_parse(int argc, char **argv, struct cmd_check_args *a)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-connect", no_argument, NULL, 'n' },
		{ "mx", required_argument, NULL, 'm' },
		{ "port", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t port;
	int ch;

	a->port = -1;
	a->opts.connect = true;
	while (
	    (ch = getopt_long(argc, argv, "jnm:p:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			a->json = true;
			break;
		case 'n':
			a->opts.connect = false;
			break;
		case 'm':
			if (dns_name_check(optarg) != NULL) {
				fprintf(stderr,
				    "danerelay check: --mx %s: %s\n", optarg,
				    dns_name_check(optarg));
				return -1;
			}
			a->opts.route = optarg;
			break;
		case 'p':
			if (str_to_uint(optarg, 1, 65535, &port) == -1) {
				fprintf(stderr,
				    "danerelay check: --port %s: "
				    "expected 1..65535\n",
				    optarg);
				return -1;
			}
			a->port = (int)port;
			break;
		case 'v':
			a->verbose = true;
			break;
		default:
			return -1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "danerelay check: no domain given\n");
		return -1;
	}
	for (ch = optind; ch < argc; ch++) {
		if (dns_name_check(argv[ch]) != NULL) {
			fprintf(stderr,
			    "danerelay check: '%s' is not a domain "
			    "name: %s\n",
			    argv[ch], dns_name_check(argv[ch]));
			return -1;
		}
	}
	return 0;
}

static void
cmd_check_selftest_cb(struct dns_answer *ans, void *arg)
{
	struct cmd_selftest *st = arg;

	st->error = dns_selftest_explain(ans);
	st->done = true;
	dns_answer_free(ans);
}

static struct dns_resolver *
cmd_check_resolver(struct event_base *base, const struct conf *c)
{
	struct dns_resolver *r;
	char *err = NULL;

	r = check_conf_resolver(base, c, &err);
	if (r == NULL) {
		fprintf(stderr, "danerelay check: resolver: %s\n", err);
		free(err);
	}
	return r;
}

/* Root DNSKEY must validate before any verdict can be trusted. */
static const char *
cmd_check_selftest(struct event_base *base, struct dns_resolver *r)
{
	struct cmd_selftest st = { NULL, false };

	dns_selftest(r, cmd_check_selftest_cb, &st);
	while (!st.done)
		event_base_loop(base, EVLOOP_ONCE);
	return st.error;
}

static int
cmd_check_report(struct check_run *run, const struct cmd_check_args *a,
    const struct check_resolver_info *ri)
{
	bool colour = !a->json && isatty(STDOUT_FILENO);
	json_t *arr = json_array();
	int rc = 0;
	size_t i, n = check_run_count(run);

	for (i = 0; i < n; i++) {
		const struct check_domain *d = check_run_domain(run, i);

		if (check_domain_verdict(d) >= CHECK_DEFER)
			rc = CHECK_EXIT_FAIL;
		if (a->json)
			json_array_append_new(arr, check_to_json(d, ri));
		else
			check_print_text(stdout, d, ri, colour, a->verbose);
	}
	if (a->json) {
		/* One domain: one document; several: an array in order. */
		json_dumpf(n == 1 ? json_array_get(arr, 0) : arr, stdout,
		    JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	}
	json_decref(arr);
	fflush(stdout);
	return rc;
}

static int
cmd_check_sts(struct cmd_check_args *a, const struct conf *c,
    struct event_base *base, struct dns_resolver *r, SSL_CTX *ctx)
{
	char *err = NULL;

	if (check_conf_ca(c, ctx, &err) == -1 ||
	    check_conf_sts(c, base, r, &a->opts.sts, &err) == -1) {
		fprintf(stderr, "danerelay check: %s\n", err);
		free(err);
		return -1;
	}
	return 0;
}

static int
cmd_check_run(struct cmd_check_args *a, const struct conf *c, char **domains,
    int ndomains)
{
	struct check_resolver_info ri;
	struct event_base *base = event_base_new();
	struct dns_resolver *r;
	struct check_run *run;
	const char *err;
	char *upstream;
	SSL_CTX *ctx;
	int i, rc;

	if (base == NULL)
		return CHECK_EXIT_ERROR;
	if ((r = cmd_check_resolver(base, c)) == NULL) {
		event_base_free(base);
		return CHECK_EXIT_ERROR;
	}
	if ((ctx = tls_client_ctx_new(a->opts.digests, &err)) == NULL) {
		fprintf(stderr, "danerelay check: TLS: %s\n", err);
		dns_resolver_free(r);
		event_base_free(base);
		return CHECK_EXIT_ERROR;
	}
	if (cmd_check_sts(a, c, base, r, ctx) == -1) {
		SSL_CTX_free(ctx);
		dns_resolver_free(r);
		event_base_free(base);
		return CHECK_EXIT_ERROR;
	}
	upstream = check_conf_info(&ri, c);
	ri.selftest_error = cmd_check_selftest(base, r);
	if (ri.selftest_error != NULL) {
		fprintf(stderr,
		    "danerelay check: RESOLVER SELF-TEST FAILED: "
		    "%s\ndanerelay check: " CHECK_SELFTEST_ADVICE "\n",
		    ri.selftest_error);
		rc = CHECK_EXIT_ERROR;
	} else {
		run = check_run_new(base, r, ctx, &a->opts);
		for (i = 0; i < ndomains; i++)
			check_run_add(run, domains[i]);
		check_run_go(run);
		rc = cmd_check_report(run, a, &ri);
		check_run_free(run);
	}
	free(upstream);
	sts_free(a->opts.sts);
	SSL_CTX_free(ctx);
	dns_resolver_free(r);
	event_base_free(base);
	return rc;
}

int
cmd_check(int argc, char **argv, struct cli_ctx *ctx)
{
	struct cmd_check_args a;
	struct conf *c;
	char helo[CHECK_HELO_LEN], *err = NULL;
	int rc;

	memset(&a, 0, sizeof(a));
	if (cmd_check_parse(argc, argv, &a) == -1) {
		cli_usage("check");
		return CHECK_EXIT_ERROR;
	}
	a.verbose = a.verbose || ctx->verbose > 0;
	if ((c = conf_load(ctx->config_path, &err)) == NULL) {
		fprintf(stderr, "danerelay check: %s\n", err);
		free(err);
		return CHECK_EXIT_ERROR;
	}
	check_conf_opts(&a.opts, c, a.port, helo);
	rc = cmd_check_run(&a, c, argv + optind, argc - optind);
	conf_free(c);
	return rc;
}
