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

/* JSON document of one domain: returns new json_t* (as void* to keep jansson
 * out). */
void *check_to_json(
    const struct check_domain *d, const struct check_resolver_info *ri);

#endif
