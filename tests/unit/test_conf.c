/*
 * test_conf: the config table and parser: good files, every kind of bad
 * line with its file:line error, defaults.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "policy/policy.h"
#include "t.h"

static struct conf *
parse(const char *text, char **err)
{
	*err = NULL;
	return conf_parse(text, strlen(text), "test.conf", err);
}

static void
conf_defaults_apply(void)
{
	struct conf *c = conf_load(NULL, &(char *){ NULL });

	T_CHECK(c != NULL);
	T_CHECK(conf_int(c, CONF_DELIVERY_PORT) == 25);
	T_CHECK(conf_int(c, CONF_DNS_TIMEOUT) == 30);
	T_CHECK(conf_int(c, CONF_DELIVERY_GREETING_TIMEOUT) == 300);
	T_STREQ(conf_list(c, CONF_DANE_DIGESTS)[0], "sha512");
	T_STREQ(conf_list(c, CONF_DANE_DIGESTS)[1], "sha256");
	T_CHECK(conf_list(c, CONF_DNS_ROOT_SERVERS)[0] == NULL);
	T_CHECK(conf_str(c, CONF_DNS_TRUST_ANCHOR_FILE) == NULL);
	conf_free(c);
}

static void
conf_good_file(void)
{
	char *err;
	struct conf *c = parse(
	    "# comment\n; other comment\n[dns]\n"
	    "root_servers = 127.0.0.1@5353, ::1\n  trust_anchor_file = /x \n"
	    "timeout = 2m\n\n[dane]\ndigests = sha256\n[delivery]\n"
	    "port=2525\n",
	    &err);

	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	T_STREQ(conf_list(c, CONF_DNS_ROOT_SERVERS)[0], "127.0.0.1@5353");
	T_STREQ(conf_list(c, CONF_DNS_ROOT_SERVERS)[1], "::1");
	T_STREQ(conf_str(c, CONF_DNS_TRUST_ANCHOR_FILE), "/x");
	T_CHECK(conf_int(c, CONF_DNS_TIMEOUT) == 120);
	T_CHECK(conf_int(c, CONF_DELIVERY_PORT) == 2525);
	T_CHECK(conf_list(c, CONF_DANE_DIGESTS)[1] == NULL);
	conf_free(c);
}

static void
conf_errors_table(void)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "[dns]\nfoo = 1\n",
		    "test.conf:2: unknown key 'foo' in [dns]" },
		{ "[nope]\n", "test.conf:1: unknown section [nope]" },
		{ "port = 25\n", "test.conf:1: key outside of a [section]" },
		{ "[delivery]\nport = 25\nport = 26\n",
		    "test.conf:3: duplicate key 'port' in [delivery]" },
		{ "[delivery]\nport = 0\n",
		    "test.conf:2: delivery.port = 0: expected a number in range" },
		{ "[delivery]\nport = 70000\n",
		    "test.conf:2: delivery.port = 70000: expected a number in range" },
		{ "[delivery]\nport\n", "test.conf:2: expected 'key = value'" },
		{ "[dns\n",
		    "test.conf:1: malformed section header (expected [name])" },
		{ "[dane]\ndigests = md5\n",
		    "test.conf:2: dane.digests = md5: digests are sha256 and sha512" },
		{ "[dane]\ndigests =\n",
		    "test.conf:2: dane.digests = : at least one digest is needed" },
		{ "[dns]\nroot_servers = a.root-servers.net\n",
		    "test.conf:2: dns.root_servers = a.root-servers.net: expected "
		    "ADDR[@PORT] (IP address literals)" },
		{ "[dns]\nroot_servers = 127.0.0.1@99999\n",
		    "test.conf:2: dns.root_servers = 127.0.0.1@99999: bad port after '@'" },
		{ "[dns]\ntimeout = 5 minutes\n",
		    "test.conf:2: dns.timeout = 5 minutes: expected a duration such "
		    "as 30s, 5m, 1h or 2d" },
		{ "[dns]\ntimeout = 0\n",
		    "test.conf:2: dns.timeout = 0: duration out of range" },
		{ "[dns]\ntrust_anchor_file =\n",
		    "test.conf:2: dns.trust_anchor_file = : empty value" },
	};
	size_t i;
	char *err;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf *c = parse(cases[i].text, &err);

		T_CHECK(c == NULL);
		T_STREQ(err, cases[i].err);
		conf_free(c);
		free(err);
	}
}

static void
conf_long_line_and_nul(void)
{
	char *text = malloc(10000), *err;
	struct conf *c;

	memset(text, 'a', 9999);
	text[9999] = '\0';
	c = parse(text, &err);
	T_CHECK(c == NULL);
	T_STREQ(err, "test.conf:1: line too long");
	free(err);
	free(text);
	c = conf_parse("[dns]\0x\n", 8, "nul.conf", &err);
	T_CHECK(c == NULL);
	T_STREQ(err, "nul.conf:1: NUL byte in line");
	free(err);
}

static void
conf_missing_file(void)
{
	char *err = NULL;
	struct conf *c = conf_load("/nonexistent/danerelay.conf", &err);

	T_CHECK(c == NULL);
	T_STREQ(err, "/nonexistent/danerelay.conf: No such file or directory");
	free(err);
}

/* [domain NAME]: case and a trailing dot do not matter; bad names are
 * errors with file:line. */
static void
conf_domain_names(void)
{
	static const struct {
		const char *name, *err;
	} bad[] = {
		{ ".example.org", "a domain name does not start with '.'" },
		{ "example..org", "empty label in domain name" },
		{ "example.org..", "empty label in domain name" },
		{ "ex_ample.org", "characters other than letters" },
		{ "-example.org", "starts or ends with '-'" },
		{ "example-.org", "starts or ends with '-'" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaa.org",
		    "label of more than 63 characters" },
		{ ".", "expected [domain NAME] with a domain name" },
		{ "", "expected [domain NAME] with a domain name" },
		{ "a.b.", NULL },
	};
	struct policy_dest pd;
	struct policy *p;
	struct conf *c;
	char *err, text[256];
	size_t i;

	c = parse("[domain Example.ORG.]\nsecurity = may\n"
	          "[domain xn--bcher-kva.example]\nsecurity = encrypt\n",
	    &err);
	T_CHECK(c != NULL);
	if (c == NULL)
		return;
	T_STREQ(conf_domain_at(c, 0)->name, "example.org");
	p = policy_new(c);
	policy_for(p, "example.org", &pd);
	T_CHECK(pd.security == POLICY_MAY);
	policy_for(p, "EXAMPLE.org.", &pd);
	T_CHECK(pd.security == POLICY_MAY);
	policy_for(p, "other.org", &pd);
	T_CHECK(pd.security == POLICY_DANE);
	policy_free(p);
	conf_free(c);
	c = parse("[domain example.org]\n[domain EXAMPLE.org.]\n", &err);
	T_CHECK(c == NULL);
	T_STREQ(err,
	    "test.conf:2: duplicate section [domain example.org] "
	    "(first at line 1)");
	free(err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[domain %s]\n", bad[i].name);
		c = parse(text, &err);
		if (bad[i].err == NULL) {
			T_CHECK(c != NULL);
		} else {
			T_CHECK(c == NULL);
			T_CHECK(err != NULL &&
			    strncmp(err, "test.conf:1: ", 13) == 0 &&
			    strstr(err, bad[i].err) != NULL);
		}
		conf_free(c);
		free(err);
	}
}

int
main(void)
{
	T_RUN(conf_defaults_apply);
	T_RUN(conf_good_file);
	T_RUN(conf_errors_table);
	T_RUN(conf_long_line_and_nul);
	T_RUN(conf_missing_file);
	T_RUN(conf_domain_names);
	T_EXIT();
}
