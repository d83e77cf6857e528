/*
 * test_check: the verdict of `danerelay check` from its facts
 * (check_verdict.c, docs/VERDICTS.md): the verdict of the host that takes
 * the mail by DANE level, path and MTA-STS (RFC 7672 §2.2.1, RFC 8461);
 * defer or bounce from the domain's own failure or the most preferred
 * host's; and the MTA-STS warnings an administrator must read even when
 * mail flows (RFC 8460 result types). And check_run_start(), the
 * asynchronous run of the console's /check: its callback comes from the
 * loop, once, and a run freed before its end calls nothing back.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check/check_int.h"
#include "core/log.h"
#include "core/outcome.h"
#include "sts/sts.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void
test_pass_verdict(void)
{
	static const struct {
		enum dane_level level;
		bool verified_path;
		enum policy_sts_use sts;
		enum check_verdict want;
	} cases[] = {
		{ DANE_LEVEL_AUTH, true, POLICY_STS_OFF, CHECK_VERIFIED },
		/* an insecure MX RRset: authenticated host, unverified path */
		{ DANE_LEVEL_AUTH, false, POLICY_STS_OFF, CHECK_TRUSTED },
		/* DANE wins over MTA-STS (RFC 8461 §2) */
		{ DANE_LEVEL_AUTH, false, POLICY_STS_ENFORCE, CHECK_TRUSTED },
		{ DANE_LEVEL_ENCRYPT, true, POLICY_STS_OFF, CHECK_ENCRYPTED },
		{ DANE_LEVEL_ENCRYPT, false, POLICY_STS_ENFORCE,
		    CHECK_ENCRYPTED },
		{ DANE_LEVEL_OPPORTUNISTIC, false, POLICY_STS_OFF,
		    CHECK_OPPORTUNISTIC },
		{ DANE_LEVEL_OPPORTUNISTIC, true, POLICY_STS_OFF,
		    CHECK_OPPORTUNISTIC },
		/* enforce: TLS with a PKIX-valid certificate for the MX name */
		{ DANE_LEVEL_OPPORTUNISTIC, false, POLICY_STS_ENFORCE,
		    CHECK_VERIFIED },
		/* testing only reports */
		{ DANE_LEVEL_OPPORTUNISTIC, false, POLICY_STS_TESTING,
		    CHECK_OPPORTUNISTIC },
	};
	enum check_verdict got;
	size_t i;

	for (i = 0; i < NELEM(cases); i++) {
		got = check_verdict_pass(
		    cases[i].level, cases[i].verified_path, cases[i].sts);
		if (got != cases[i].want) {
			printf("  level %d path %d sts %d: %s, want %s\n",
			    cases[i].level, cases[i].verified_path,
			    cases[i].sts, check_verdict_str(got),
			    check_verdict_str(cases[i].want));
			T_FAIL("verdict as in the table");
		}
	}
}

static void
domain_free(struct check_domain *d)
{
	size_t i;

	for (i = 0; i < d->nwarn; i++) {
		free(d->warnings[i].code);
		free(d->warnings[i].text);
	}
	free(d->warnings);
	sts_policy_free(d->sts_policy);
}

static size_t
warnings_with(const struct check_domain *d, const char *code)
{
	size_t i, n = 0;

	for (i = 0; i < d->nwarn; i++)
		n += strcmp(d->warnings[i].code, code) == 0;
	return n;
}

/* Hosts that were not resolved do not pass: the verdict follows the
 * domain's failure first, then the most preferred host's. */
static void
test_judge_failures(void)
{
	static const struct {
		const char *name;
		enum outcome_class dcls; /* the domain's own outcome */
		const char *dstatus;
		size_t nhost;
		enum outcome_class h0cls, h1cls;
		enum check_verdict want;
		const char *want_status;
	} cases[] = {
		{ "servfail", OUTCOME_TEMP, "4.4.3", 0, OUTCOME_OK, OUTCOME_OK,
		    CHECK_DEFER, "4.4.3" },
		{ "null-mx", OUTCOME_PERM, "5.1.10", 0, OUTCOME_OK, OUTCOME_OK,
		    CHECK_BOUNCE, "5.1.10" },
		/* the domain's failure wins over the hosts' */
		{ "domain-first", OUTCOME_TEMP, "4.4.3", 2, OUTCOME_PERM,
		    OUTCOME_PERM, CHECK_DEFER, "4.4.3" },
		{ "first-host-temp", OUTCOME_OK, "2.0.0", 2, OUTCOME_TEMP,
		    OUTCOME_PERM, CHECK_DEFER, "4.7.323" },
		{ "first-host-perm", OUTCOME_OK, "2.0.0", 2, OUTCOME_PERM,
		    OUTCOME_TEMP, CHECK_BOUNCE, "5.1.1" },
	};
	struct check_opts o = { .connect = true, .port = 25 };
	struct check_domain d;
	size_t i, k;

	for (i = 0; i < NELEM(cases); i++) {
		memset(&d, 0, sizeof(d));
		d.name = "d.test";
		outcome_set(&d.outcome, cases[i].dcls, cases[i].dstatus,
		    RT_NONE, "domain");
		if (cases[i].dcls == OUTCOME_OK)
			outcome_ok(&d.outcome);
		d.nhost = cases[i].nhost;
		for (k = 0; k < d.nhost; k++) {
			enum outcome_class cls =
			    k == 0 ? cases[i].h0cls : cases[i].h1cls;

			d.hosts[k].domain = &d;
			d.hosts[k].name = k == 0 ? "mx1.d.test" : "mx2.d.test";
			d.hosts[k].pref = (uint16_t)(10 * (k + 1));
			outcome_set(&d.hosts[k].outcome, cls,
			    cls == OUTCOME_PERM ? "5.1.1" : "4.7.323", RT_NONE,
			    "host %zu", k);
		}
		check_domain_judge(&d, &o);
		if (d.verdict != cases[i].want ||
		    strcmp(d.outcome.status, cases[i].want_status) != 0 ||
		    d.deliver_to != NULL) {
			printf("  %s: %s %s, want %s %s\n", cases[i].name,
			    check_verdict_str(d.verdict), d.outcome.status,
			    check_verdict_str(cases[i].want),
			    cases[i].want_status);
			T_FAIL("verdict as in the table");
		}
		domain_free(&d);
	}
}

/* RFC 8461 §5 and RFC 8460 §4.3.2: what MTA-STS says, as warnings. */
static void
test_judge_sts_warnings(void)
{
	static const char body[] = "version: STSv1\nmode: testing\n"
	                           "mx: mx1.d.test\nmax_age: 86400\n";
	struct check_opts o = { .connect = true, .port = 25 };
	struct check_domain d;
	const char *err = NULL;

	/* The state of the policy lookup alone: one warning, or none. */
	static const struct {
		enum sts_state state;
		const char *error;
		const char *want; /* warning code, or NULL */
	} states[] = {
		{ STS_STATE_FETCH_ERROR, "HTTP 404", "sts-policy-fetch-error" },
		{ STS_STATE_INVALID, "unknown mode", "sts-policy-invalid" },
		{ STS_STATE_POLICY, NULL, NULL },
		{ STS_STATE_NONE, NULL, NULL },
	};
	size_t i;

	for (i = 0; i < NELEM(states); i++) {
		memset(&d, 0, sizeof(d));
		d.name = "d.test";
		d.sts_state = states[i].state;
		d.sts_error = (char *)(uintptr_t)states[i].error;
		check_domain_judge(&d, &o);
		if (states[i].want == NULL ? d.nwarn != 0 :
		                             d.nwarn != 1 ||
		            warnings_with(&d, states[i].want) != 1 ||
		            strstr(d.warnings[0].text, states[i].error) ==
		                NULL) {
			printf("  state %d: %zu warnings, first %s\n",
			    states[i].state, d.nwarn,
			    d.nwarn > 0 ? d.warnings[0].code : "-");
			T_FAIL("warnings as in the table");
		}
		domain_free(&d);
	}

	/* testing: an MX outside the policy, and a failed TLS check, are
	 * reported; a host the policy is not applied to is not. */
	memset(&d, 0, sizeof(d));
	d.name = "d.test";
	d.sts_state = STS_STATE_POLICY;
	d.sts_policy = sts_policy_parse(body, strlen(body), &err);
	T_CHECK(d.sts_policy != NULL);
	if (d.sts_policy == NULL)
		return;
	d.nhost = 3;
	d.hosts[0].name = "mx1.d.test";
	d.hosts[0].sts_use = POLICY_STS_TESTING;
	d.hosts[0].nconn = 1;
	outcome_set(&d.hosts[0].conns[0].sts_warn, OUTCOME_TEMP, "4.7.5",
	    RT_CERTIFICATE_EXPIRED, "certificate expired");
	d.hosts[1].name = "mx2.d.test";
	d.hosts[1].sts_use = POLICY_STS_TESTING;
	d.hosts[2].name = "mx3.d.test";
	d.hosts[2].sts_use = POLICY_STS_OFF;
	for (size_t k = 0; k < d.nhost; k++)
		d.hosts[k].domain = &d;
	check_domain_judge(&d, &o);
	T_CHECK(warnings_with(&d, "sts-testing-failure") == 2);
	T_CHECK(d.nwarn == 2 &&
	    strstr(d.warnings[0].text, "certificate expired") != NULL &&
	    strstr(d.warnings[1].text, "mx2.d.test") != NULL);
	domain_free(&d);
}

struct start_seen {
	struct check_run *run;
	int calls;
	bool in_start; /* set while check_run_start runs */
	bool nested;   /* the callback came from within it */
	enum check_verdict verdict;
};

static void
start_done(struct check_run *run, void *arg)
{
	struct start_seen *s = arg;

	s->calls++;
	s->nested = s->nested || s->in_start;
	T_CHECK(run == s->run);
	if (check_run_count(run) > 0)
		s->verdict = check_domain_verdict(check_run_domain(run, 0));
	check_run_free(run); /* allowed in the callback */
}

static void
run_loop_ms(struct event_base *base, long ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Invalid names and an empty run end without the network, from the loop. */
static void
test_run_start_done(void)
{
	struct event_base *base = event_base_new();
	struct check_opts o;
	struct start_seen s;
	int n;

	memset(&o, 0, sizeof(o));
	for (n = 0; n < 2; n++) {
		memset(&s, 0, sizeof(s));
		s.run = check_run_new(base, NULL, NULL, &o);
		if (n == 1)
			check_run_add(s.run, "bad..name");
		s.in_start = true;
		check_run_start(s.run, start_done, &s);
		s.in_start = false;
		T_CHECK(s.calls == 0);
		run_loop_ms(base, 50);
		T_CHECK(s.calls == 1 && !s.nested);
		if (n == 1)
			T_CHECK(s.verdict == CHECK_BOUNCE);
	}
	event_base_free(base);
}

/* A run freed while its DNS is in flight (a server that never answers). */
static void
test_run_start_cancel(void)
{
	struct event_base *base = event_base_new();
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);
	struct dns_options dopt = { 0 };
	struct dns_resolver *r;
	struct check_opts o;
	struct start_seen s;
	char server[64], *roots[] = { server, NULL }, *err = NULL;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		T_FAIL("cannot bind a silent DNS server on 127.0.0.1");
		return;
	}
	snprintf(server, sizeof(server), "127.0.0.1@%u", ntohs(sin.sin_port));
	dopt.root_servers = roots;
	dopt.timeout_ms = 5000;
	if ((r = dns_resolver_new(base, &dopt, &err)) == NULL) {
		T_FAIL(err);
		free(err);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.connect = true;
	memset(&s, 0, sizeof(s));
	s.run = check_run_new(base, r, NULL, &o);
	check_run_add(s.run, "example.test");
	check_run_start(s.run, start_done, &s);
	run_loop_ms(base, 100);
	T_CHECK(s.calls == 0);
	check_run_free(s.run);
	run_loop_ms(base, 100);
	T_CHECK(s.calls == 0);
	dns_resolver_free(r);
	event_base_free(base);
	close(fd);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_LEVEL_WARN);
	T_RUN(test_pass_verdict);
	T_RUN(test_judge_failures);
	T_RUN(test_judge_sts_warnings);
	T_RUN(test_run_start_done);
	T_RUN(test_run_start_cancel);
	T_EXIT();
}
