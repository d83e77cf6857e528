/*
 * check_int: the data model shared by the files of src/check/ only.
 * Everything a check saw is kept here so the text and JSON reports can show
 * it; nothing outside src/check/ includes this header.
 */
#ifndef DR_CHECK_INT_H
#define DR_CHECK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check/check.h"
#include "core/outcome.h"
#include "smtp/smtp_session.h"

struct dane_mx;
struct dane_host;
struct dane_host_lookup;
struct dane_mx_lookup;
struct tls_chain;

#define CHECK_MAX_HOSTS 10
#define CHECK_MAX_CONNS 4

struct check_conn {
	struct check_host *host;
	char addr[64];
	struct smtp_session *session;
	bool done;
	struct smtp_result res;
	char **ehlo; /* capability lines, NULL-terminated */
	/* TLS facts, when a handshake completed */
	bool tls;
	char *tls_version;
	char *tls_cipher;
	char *sni;
	struct tls_chain *chain;
	long verify_err;
	int matched_depth;  /* -1: none */
	uint8_t mu, ms, mm; /* the matched record's parameters */
	char *peername;
	struct outcome outcome; /* ok, or why this address fails */
	const char *ssl_error;  /* dane_host_ssl_new failure */
};

struct check_host {
	struct check_domain *domain;
	char *name;
	uint16_t pref;
	struct dane_host_lookup *lookup;
	struct dane_host *dh; /* NULL until resolved */
	struct check_conn conns[CHECK_MAX_CONNS];
	size_t nconn;
	bool pass;
	struct outcome outcome;
};

struct check_warning {
	char *code;
	char *text;
};

struct check_domain {
	struct check_run *run;
	char *name;
	struct dane_mx_lookup *mx_lookup;
	struct dane_mx *mx;
	bool route; /* --mx: no MX resolution */
	struct check_host hosts[CHECK_MAX_HOSTS];
	size_t nhost;
	size_t ignored_hosts; /* MX hosts beyond CHECK_MAX_HOSTS */
	int pending;
	bool done;
	enum check_verdict verdict;
	struct outcome outcome;
	struct check_host *deliver_to;
	struct check_warning *warnings;
	size_t nwarn;
};

/* check_verdict.c: verdict and warnings once all facts are in. */
void check_domain_judge(struct check_domain *d, const struct check_opts *o);
void check_warn(struct check_domain *d, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* check_run.c accessors for the reports. */
const struct check_opts *check_domain_opts(const struct check_domain *d);

#endif
