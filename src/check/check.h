/*
 * check: `danerelay check`, the connectivity analyzer. It runs the very
 * engine the relay delivers with (dane_mx, dane_host, smtp_session) on one
 * or many domains concurrently on one event loop, keeps every fact it saw,
 * and turns them into one verdict per domain plus warnings
 * (docs/VERDICTS.md), printed for humans or as JSON (docs/CHECK-JSON.md).
 */
#ifndef DR_CHECK_H
#define DR_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

struct conf;
struct event_base;
struct dns_resolver;
struct check_run;
struct check_domain;
struct sts;

struct check_opts {
	bool connect;      /* false: --no-connect, DNS only */
	const char *route; /* --mx HOST: test this host (no MX lookup) */
	uint16_t port;     /* destination port */
	char **digests;    /* [dane] digests */
	const char *helo_name;
	unsigned connect_timeout_ms;
	unsigned greeting_timeout_ms;
	unsigned command_timeout_ms;
	struct sts *sts; /* MTA-STS engine, or NULL when disabled */
};

enum check_verdict {
	CHECK_VERIFIED,
	CHECK_TRUSTED,
	CHECK_ENCRYPTED,
	CHECK_OPPORTUNISTIC,
	CHECK_DEFER,
	CHECK_BOUNCE,
};

const char *check_verdict_str(enum check_verdict v);

/* A run over several domains. All arguments are borrowed for its lifetime. */
struct check_run *check_run_new(struct event_base *base, struct dns_resolver *r,
    SSL_CTX *ctx, const struct check_opts *opts);
void check_run_free(struct check_run *run);

/* Queue a domain (copied). Call before check_run_go(). */
void check_run_add(struct check_run *run, const char *domain);

/* Run the event loop until every domain has its verdict. */
void check_run_go(struct check_run *run);

/*
 * The same without running the loop, for a caller whose loop runs anyway
 * (the console's /check): start every domain and return at once. done(run,
 * arg) is called once, from the top of the event loop (never from within
 * check_run_start or an engine callback), when every domain has its
 * verdict; it may free run. check_run_free() before then cancels what is
 * in flight (DNS, MTA-STS, SMTP) and done is never called. Call once, in
 * place of check_run_go().
 */
typedef void check_run_done_fn(struct check_run *run, void *arg);
void check_run_start(struct check_run *run, check_run_done_fn *done, void *arg);

size_t check_run_count(const struct check_run *run);
const struct check_domain *check_run_domain(
    const struct check_run *run, size_t i);

enum check_verdict check_domain_verdict(const struct check_domain *d);

/* Resolver facts shown with every report (set by the caller). */
struct check_resolver_info {
	const char *selftest_error; /* NULL = root DNSKEY validated */
	const char *trust_anchor;   /* "built-in IANA root KSKs" or a path */
	const char *upstream;       /* "root servers (iterative)", ... */
};

/* Human report of one domain; colour when colour is true. */
void check_print_text(FILE *fp, const struct check_domain *d,
    const struct check_resolver_info *ri, bool colour, bool verbose);

/* What the resolver self-test failure means, after its reason. */
#define CHECK_SELFTEST_ADVICE                                        \
	"no verdict is possible without DNSSEC validation; fix the " \
	"resolver settings ([dns] in the config) first."

/* --- check_conf.c: a check as the relay's configuration sets it up --- */

#define CHECK_HELO_LEN 256

/*
 * Fill the delivery parameters of o from c: port ([delivery] port, or port
 * when > 0), [dane] digests, timeouts and the HELO name ([delivery]
 * helo_name, else this host's name written into helo). Strings borrowed
 * from c and helo. connect, route and sts are left as they are.
 */
void check_conf_opts(struct check_opts *o, const struct conf *c, int port,
    char helo[CHECK_HELO_LEN]);

/* A validating resolver on base as [dns] says; NULL with *err (new). */
struct dns_resolver *check_conf_resolver(
    struct event_base *base, const struct conf *c, char **err);

/*
 * The resolver facts of the report header from c (selftest_error NULL:
 * the caller runs dns_selftest). Returns the upstream text it put in
 * ri->upstream: new, the caller frees it; trust_anchor is borrowed.
 */
char *check_conf_info(struct check_resolver_info *ri, const struct conf *c);

/*
 * With [mta_sts] enabled, load its trust anchors ([mta_sts] ca_file or
 * the system's) into ctx; once per context. Returns 0, or -1 with *err
 * (new, "[mta_sts] ca_file: ...").
 */
int check_conf_ca(const struct conf *c, SSL_CTX *ctx, char **err);

/*
 * With [mta_sts] enabled, an MTA-STS engine on base and r with its cache
 * in memory (so each check fetches afresh) into *out (sts_free); off:
 * *out = NULL. Returns 0, or -1 with *err (new, "MTA-STS: ...").
 */
int check_conf_sts(const struct conf *c, struct event_base *base,
    struct dns_resolver *r, struct sts **out, char **err);

/* JSON document of one domain: returns new json_t* (as void* to keep jansson
 * out). */
void *check_to_json(
    const struct check_domain *d, const struct check_resolver_info *ri);

#endif
