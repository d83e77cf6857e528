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
#include "dns/dns.h"
#include "policy/policy_sts.h"
#include "sts/sts.h"
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
	struct outcome outcome;  /* ok, or why this address fails */
	struct outcome sts_warn; /* MTA-STS testing: what failed, or ok */
	const char *ssl_error;   /* dane_host_ssl_new failure */
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
	bool wait_sts;               /* resolved, waiting for the STS lookup */
	enum policy_sts_use sts_use; /* MTA-STS applies to this host */
	bool sts_refused;            /* enforce: not in the policy's mx list */
};

/* The security state of one CNAME link, queried on its own (§2.1.3). */
struct check_link {
	char *owner;
	struct dns_query *query; /* in flight, or NULL */
	void *req;               /* its callback argument, freed with it */
	bool done;
	enum dns_status status;
	enum dns_sec sec;
};

#define CHECK_MAX_LINKS 32

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
	struct check_link links[CHECK_MAX_LINKS];
	size_t nlink;
	/* MTA-STS (RFC 8461), looked up beside the MX RRset */
	struct sts_lookup *sts_l;
	bool sts_pending;
	bool sts_looked;
	enum sts_state sts_state;
	struct sts_policy *sts_policy;
	char *sts_error;
	char *sts_txt_id;
	bool sts_from_cache;
};

/* check_verdict.c: verdict and warnings once all facts are in. */
void check_domain_judge(struct check_domain *d, const struct check_opts *o);
/*
 * The verdict of a host that takes the mail: its DANE level, whether the
 * path to it is verified (secure MX RRset, RFC 7672 §2.2.1; only read
 * for DANE_LEVEL_AUTH), and whether an MTA-STS policy is enforced on it.
 */
enum check_verdict check_verdict_pass(
    enum dane_level level, bool verified_path, enum policy_sts_use sts);
void check_warn(struct check_domain *d, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* check_run.c: accessors, and counting what is in flight for d. */
const struct check_opts *check_domain_opts(const struct check_domain *d);
struct dns_resolver *check_domain_resolver(const struct check_domain *d);
void check_domain_ref(struct check_domain *d);
void check_domain_unref(struct check_domain *d);

/*
 * check_trace.c: query every CNAME owner of answer a (borrowed) with type
 * CNAME, so that the report can show the state of each link of a chain,
 * not only that of the whole answer.
 */
void check_trace_cnames(struct check_domain *d, const struct dns_answer *a);
/* The link whose owner is name, or NULL if it was not traced. */
const struct check_link *check_trace_link(
    const struct check_domain *d, const char *owner);
void check_trace_free(struct check_domain *d);

#endif
