/*
 * conf_man: the key reference of danerelay.conf(5), printed from the key
 * table (conf_keys.c) so that the man page cannot drift from the keys the
 * program reads: every key with its type, default, bounds, whether SIGHUP
 * applies it, and its help text. The prose around it is in
 * man/danerelay.conf.5.in.
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/conf_keys.h"
#include "core/roff.h"

/* What each section is for; a section without a row gets its keys only. */
static const struct {
	const char *name;
	const char *about;
} conf_man_sections[] = {
	{ "dns",
	    "The resolver. danerelay validates DNSSEC itself (libunbound), "
	    "from the root trust anchors or these." },
	{ "dane", "How TLSA records are matched (RFC 7672, RFC 7671)." },
	{ "delivery",
	    "Outbound SMTP: port, timeouts, retries, concurrency and "
	    "connection reuse." },
	{ "server",
	    "Inbound SMTP from the clients that send through the relay: "
	    "listeners, who may relay, STARTTLS, AUTH, limits, and the user "
	    "to run as." },
	{ "queue", "The durable queue (SQLite) and its directory." },
	{ "policy",
	    "The security required of every destination, and the rollout "
	    "mode. [domain NAME] sections override it per destination." },
	{ "mta_sts", "MTA-STS (RFC 8461), for domains without DANE." },
	{ "tlsrpt",
	    "SMTP TLS reporting (RFC 8460): what the relay records and the "
	    "daily reports it sends." },
	{ "dkim",
	    "DKIM signing (RFC 6376) of the relay's reports and, if asked, of "
	    "outbound mail." },
	{ "admin", "The web console and /metrics." },
	{ "log", "Where the relay logs, and in which format." },
};

static const char *const conf_man_types[] = {
	[CONF_T_STR] = "string",
	[CONF_T_PATH] = "path",
	[CONF_T_INT] = "integer",
	[CONF_T_BOOL] = "yes|no",
	[CONF_T_DURATION] = "duration",
	[CONF_T_LIST] = "list",
};

static void
conf_man_seconds(FILE *fp, long long s)
{
	if (s != 0 && s % 86400 == 0)
		fprintf(fp, "%lldd", s / 86400);
	else if (s != 0 && s % 3600 == 0)
		fprintf(fp, "%lldh", s / 3600);
	else if (s != 0 && s % 60 == 0)
		fprintf(fp, "%lldm", s / 60);
	else
		fprintf(fp, "%llds", s);
}

static void
conf_man_section(FILE *fp, const char *name)
{
	size_t i, n = sizeof(conf_man_sections) / sizeof(conf_man_sections[0]);

	fprintf(fp, ".SS [%s]\n", name);
	for (i = 0; i < n; i++) {
		if (strcmp(conf_man_sections[i].name, name) == 0) {
			roff_puts(fp, conf_man_sections[i].about, 1);
			fputc('\n', fp);
		}
	}
}

/* "Default: 30s. Range: 1s to 10m. Reload." after the help text. */
static void
conf_man_facts(FILE *fp, const struct conf_key_def *k)
{
	fputs(".br\nDefault: ", fp);
	if (k->def == NULL)
		fputs("unset", fp);
	else
		roff_puts(fp, k->def, 0);
	if (k->type == CONF_T_INT)
		fprintf(fp, ". Range: %lld to %lld", k->min, k->max);
	else if (k->type == CONF_T_DURATION) {
		fputs(". Range: ", fp);
		conf_man_seconds(fp, k->min);
		fputs(" to ", fp);
		conf_man_seconds(fp, k->max);
	}
	fputs(k->reload ? ". SIGHUP applies a change.\n" :
	                  ". A change needs a restart.\n",
	    fp);
}

static void
conf_man_key(FILE *fp, const struct conf_key_def *k)
{
	fprintf(fp, ".TP\n\\fB%s\\fR = \\fI%s\\fR\n", k->name,
	    conf_man_types[k->type]);
	roff_puts(fp, k->help, 1);
	fputs(".\n", fp);
	conf_man_facts(fp, k);
}

static void
conf_man_domain(FILE *fp)
{
	size_t i;

	fputs(".SS [domain NAME]\n"
	      "Overrides for mail to the domain NAME (exactly that domain, "
	      "not its subdomains); "
	      "SIGHUP applies a change.\n",
	    fp);
	for (i = 0; i < conf_domain_key_count; i++) {
		fprintf(fp, ".TP\n\\fB%s\\fR = \\fIstring\\fR\n",
		    conf_domain_keys[i].name);
		roff_puts(fp, conf_domain_keys[i].help, 1);
		fputs(".\n", fp);
	}
}

void
conf_man_keys(FILE *fp)
{
	const char *section = "";
	size_t i;

	for (i = 0; i < CONF_KEY_COUNT; i++) {
		if (strcmp(section, conf_keys[i].section) != 0) {
			section = conf_keys[i].section;
			conf_man_section(fp, section);
		}
		conf_man_key(fp, &conf_keys[i]);
	}
	conf_man_domain(fp);
}
