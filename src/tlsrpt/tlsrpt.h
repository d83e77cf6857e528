/*
 * tlsrpt: the sending side of SMTP TLS Reporting (RFC 8460 §4).
 *
 * Every outbound session is recorded into a small SQLite store of its own
 * (WAL, application id "DRTR", versioned schema) as counters, never as one
 * row per session: by UTC day, policy domain and applied policy (type,
 * policy strings, MX host patterns) a success and a failure count, and
 * per policy one failure-detail row per distinct (result type, sending
 * IP, receiving MX hostname, HELO, receiving IP, failure reason code)
 * with its session count. The store thus grows with the number of
 * distinct policies and failures, not with the mail volume.
 *
 * From the store, tlsrpt_report_build() writes the RFC 8460 §4.4 JSON
 * report of one policy domain for one UTC day, and tlsrpt_gzip() packs it
 * as application/tlsrpt+gzip (§5.2). The store remembers which reports
 * were sent (tlsrpt_store_mark_sent).
 */
#ifndef DR_TLSRPT_H
#define DR_TLSRPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct tlsrpt_store;

/* The policy applied to a session (RFC 8460 §4.4 "policy-type"). */
enum tlsrpt_policy_type {
	TLSRPT_TLSA,
	TLSRPT_STS,
	TLSRPT_NO_POLICY,
};

/* "tlsa", "sts" or "no-policy-found". */
const char *tlsrpt_policy_type_str(enum tlsrpt_policy_type t);

/*
 * One session as seen by the delivery code. All strings are borrowed for
 * the call only. NULL optional fields are left out of the report.
 */
struct tlsrpt_session {
	time_t when; /* the UTC day is taken from it */
	const char *policy_domain;
	enum tlsrpt_policy_type type;
	const char *const *policy_strings; /* TLSA RRs or STS policy lines */
	size_t npolicy_strings;
	const char *const *mx_hosts; /* STS mx patterns */
	size_t nmx_hosts;
	bool success;
	const char *result_type; /* RFC 8460 §4.3 name; NULL on success */
	const char *sending_mta_ip;
	const char *receiving_mx_hostname;
	const char *receiving_mx_helo;
	const char *receiving_ip;
	const char *failure_reason_code;
};

/* Length of a "YYYY-MM-DD" day plus its NUL. */
#define TLSRPT_DAY_LEN 11

/*
 * Open (and create, mode 0600, when missing) the store at path; ":memory:"
 * is a private store in memory (SQLite's), gone at close. Returns
 * new (close with tlsrpt_store_close), or NULL with *errstr a new message
 * (caller frees): not SQLite, a database of another program, a schema
 * newer than this program, or a file that cannot be opened.
 */
struct tlsrpt_store *tlsrpt_store_open(const char *path, char **errstr);

/* Close s; NULL is fine. */
void tlsrpt_store_close(struct tlsrpt_store *s);

/*
 * The last error on s as one line, borrowed (valid until the next call on
 * s); "" when there was none.
 */
const char *tlsrpt_store_error(const struct tlsrpt_store *s);

/*
 * Count one session (one transaction). Returns 0, or -1 when t is invalid
 * (no policy domain, a failure without result type) or the database
 * failed; see tlsrpt_store_error().
 */
int tlsrpt_store_record(struct tlsrpt_store *s, const struct tlsrpt_session *t);

/*
 * The policy domains with data for day ("YYYY-MM-DD", UTC), sorted.
 * Returns a new NULL-terminated array of *n new strings (free with
 * tlsrpt_strv_free; an empty array when there is no data), or NULL on a
 * bad day or a database error.
 */
char **tlsrpt_store_domains(struct tlsrpt_store *s, const char *day, size_t *n);

/* Free an array from tlsrpt_store_domains; NULL is fine. */
void tlsrpt_strv_free(char **v);

/*
 * The RFC 8460 §4.4 report for domain on day: the date range covers the
 * UTC day (00:00:00Z to 23:59:59Z, as in the RFC's example), one entry in
 * "policies" per distinct policy in order of first use, failure details
 * with their counts (largest first). Returns the JSON text, new (caller
 * frees with free()), or NULL when there is no data for that domain and
 * day, an argument is NULL, or the database failed.
 */
char *tlsrpt_report_build(struct tlsrpt_store *s, const char *domain,
    const char *day, const char *organization, const char *contact,
    const char *report_id);

/*
 * json as a gzip stream (RFC 1952, for application/tlsrpt+gzip). Returns
 * new (caller frees), its length in *len.
 */
uint8_t *tlsrpt_gzip(const char *json, size_t *len);

/*
 * Remember that the report for domain and day was sent. Returns 0 (also
 * when it was already marked), or -1 on a database error.
 */
int tlsrpt_store_mark_sent(
    struct tlsrpt_store *s, const char *domain, const char *day);

/* Whether the report for domain and day was marked sent. */
bool tlsrpt_store_sent(
    struct tlsrpt_store *s, const char *domain, const char *day);

/*
 * The UTC day of t as "YYYY-MM-DD" into out. Returns 0, or -1 when t
 * cannot be represented.
 */
int tlsrpt_day(time_t t, char out[TLSRPT_DAY_LEN]);

/* 00:00:00Z of day ("YYYY-MM-DD"), or (time_t)-1 when day is not a real
 * calendar day in that form. */
time_t tlsrpt_day_start(const char *day);

/* --- the counters row by row, for the fleet (src/fleet/fleet_tlsrpt.c) --- */

/*
 * One counter row of the store, absolute. A policy row has result_type
 * NULL and successes/failures; a failure row has the failure fields and
 * count, and names its policy by (day, domain, type, strings, mx).
 * strings and mx are the JSON arrays as stored. Strings borrowed.
 */
struct tlsrpt_row {
	const char *day;
	const char *domain;
	enum tlsrpt_policy_type type;
	const char *strings;
	const char *mx;
	long long successes, failures; /* policy rows */
	const char *result_type;       /* failure rows; NULL for a policy */
	const char *sending_mta_ip;
	const char *mx_hostname;
	const char *mx_helo;
	const char *receiving_ip;
	const char *reason;
	long long count;
};

/* Returns 0 to go on, -1 to stop. */
typedef int tlsrpt_row_cb(const struct tlsrpt_row *r, void *arg);

/*
 * Every policy row of the days >= since ("YYYY-MM-DD", "" for all), then
 * every failure row of those days, to cb, read from one snapshot. Returns
 * 0, or -1 on a database error or when cb stopped.
 */
int tlsrpt_store_rows(
    struct tlsrpt_store *s, const char *since, tlsrpt_row_cb *cb, void *arg);

/*
 * Add the counts of r to the store: for building the report of counts
 * summed elsewhere (the fleet's) with tlsrpt_report_build, in a store
 * opened on ":memory:". A failure row needs its policy row added first;
 * policies are reported in the order they were added. 0 or -1.
 */
int tlsrpt_store_add_row(struct tlsrpt_store *s, const struct tlsrpt_row *r);

/* --- the outbox: delivery state of each report to each rua --- */

enum tlsrpt_out_state {
	TLSRPT_OUT_PENDING, /* to be (re)tried at next_attempt */
	TLSRPT_OUT_DONE,    /* accepted (https 2xx) or queued (mailto) */
	TLSRPT_OUT_FAILED,  /* given up (RFC 8460 §5.5: after 24 hours) */
};

/* One report for one destination (rua URI). Strings borrowed. */
struct tlsrpt_out {
	char day[TLSRPT_DAY_LEN];
	const char *domain;
	const char *uri; /* "mailto:ADDR" or the https URL */
	const char *report_id;
	const uint8_t *gz; /* the gzipped report */
	size_t gzlen;
	enum tlsrpt_out_state state;
	int attempts;
	time_t first_attempt; /* 0 = not tried yet */
	const char *note;     /* last error or where it went, or "" */
};

/*
 * Remember a report for a destination (state, note, attempts and
 * first_attempt as given; the next attempt is due at once). A second add
 * of the same (day, domain, uri) changes nothing. Returns 0 or -1.
 */
int tlsrpt_outbox_add(struct tlsrpt_store *s, const struct tlsrpt_out *o);

/*
 * After an attempt: new state and note; attempts counted, first_attempt
 * set on the first one, next_attempt for a PENDING state. 0 or -1.
 */
int tlsrpt_outbox_update(struct tlsrpt_store *s, const char *day,
    const char *domain, const char *uri, enum tlsrpt_out_state state,
    const char *note, time_t now, time_t next_attempt);

/* Call cb on up to max PENDING entries due at now (the record is
 * borrowed for the call). Returns how many, or -1. */
typedef void tlsrpt_out_cb(const struct tlsrpt_out *o, void *arg);
int tlsrpt_outbox_due(struct tlsrpt_store *s, time_t now, size_t max,
    tlsrpt_out_cb *cb, void *arg);

/* Every entry of day (any state), for `tlsrpt list`. Returns n or -1. */
int tlsrpt_outbox_list(
    struct tlsrpt_store *s, const char *day, tlsrpt_out_cb *cb, void *arg);

/* How many entries (day, domain) has: *pending of them still PENDING.
 * Returns the total, or -1. */
int tlsrpt_outbox_count(
    struct tlsrpt_store *s, const char *day, const char *domain, int *pending);

/* "pending", "done", "failed". */
const char *tlsrpt_out_state_str(enum tlsrpt_out_state st);

#endif
