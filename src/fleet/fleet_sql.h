/*
 * fleet_sql.h: the report's and the trace's SQL fragments in PostgreSQL,
 * one for one with those of SQLite in queue_report_int.h, so that the
 * fleet's numbers are the node's (tests/integration/relay_fleet_report.py
 * compares the two documents). Private to src/fleet/.
 *
 * What differs between the two dialects, and how it is kept equal:
 *  - dr_events.fields is json: a damaged row of a node's queue (not a
 *    JSON object) is copied as {"fields_raw": text} (fleet_events.c), on
 *    which ->> gives NULL for every field read here, as SQLite's
 *    json_valid() guard does; trace shows fields_raw, as the node's.
 *  - SQLite's lower() and NOCASE fold ASCII only: FLEET_ASCII_LOWER.
 *  - SQLite's LIKE ignores ASCII case: ILIKE.
 *  - Text order: SQLite compares bytes, PostgreSQL by the database's
 *    collation: COLLATE "C" where rows are ordered by text.
 *  - NULLs sort first ascending in SQLite, last in PostgreSQL: said.
 */
#ifndef DR_FLEET_SQL_H
#define DR_FLEET_SQL_H

#define FLEET_ASCII_LOWER(x)                              \
	"translate(" x ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', " \
	"'abcdefghijklmnopqrstuvwxyz')"

/* The recipient domain: what follows the last '@', lowercase (RPT_DOMAIN). */
#define FLEET_DOMAIN(addr) \
	FLEET_ASCII_LOWER("substring(" addr " from '[^@]*$')")

/* The domain of an event's recipient, ordered by bytes. */
#define FLEET_RCPT_DOMAIN FLEET_DOMAIN("addr") " COLLATE \"C\""

/* One field of an event's details as text (RPT_F). */
#define FLEET_F(key) "(fields->>'" key "')"

/* The parameters of every report statement, typed here once so that a
 * statement may leave some unused: $1 since, $2 until, $3 start of the
 * first bucket, $4 step, $5 row limit (QUEUE_REPORT_MAX_ROWS + 1). */
#define FLEET_PARAMS                                                     \
	"WITH prm AS (SELECT $1::bigint AS since, $2::bigint AS until, " \
	"$3::bigint AS start, $4::bigint AS step, $5::bigint AS lim) "

/* The attempts of the period (RPT_ATTEMPTS). */
#define FLEET_ATTEMPTS \
	"FROM dr_events WHERE type = 'attempt' AND at >= $1 AND at < $2"

#define FLEET_FAILED FLEET_F("result_type") " IS NOT NULL"
#define FLEET_WOULD  FLEET_F("would_fail") " IS NOT NULL"
/* RFC 8461 section 5: a testing policy only reports (RPT_WOULD_BLOCK). */
#define FLEET_WOULD_BLOCK \
	FLEET_WOULD " AND " FLEET_F("sts_mode") " IS DISTINCT FROM 'testing'"
#define FLEET_PLAIN     FLEET_F("tls") " = 'none'"
#define FLEET_DELIVERED "substr(" FLEET_F("status") ", 1, 2) = '2.'"

/* The fields the security class reads. */
#define FLEET_F_SECURITY "(fields->>'security')"
#define FLEET_F_TLS      "(fields->>'tls')"
#define FLEET_F_POLICY   "(fields->>'policy')"
#define FLEET_F_RT       "(fields->>'result_type')"
#define FLEET_F_MX       "(fields->>'mx')"

/* Delivered: what secured the connection (deliver_security()). */
#define FLEET_SEC_SENT                                                   \
	"CASE coalesce(" FLEET_F_TLS ", 'none') "                        \
	"WHEN 'trusted' THEN 'dane_trusted' "                            \
	"WHEN 'verified' THEN CASE WHEN " FLEET_F_POLICY " = 'mta-sts' " \
	"THEN 'sts' ELSE 'dane' END "                                    \
	"WHEN 'none' THEN 'plaintext' ELSE 'tls' END"

/* The security class, with the legacy derivation (RPT_SECURITY). */
#define FLEET_SECURITY                                                 \
	"coalesce(" FLEET_F_SECURITY ", CASE WHEN " FLEET_DELIVERED    \
	" THEN " FLEET_SEC_SENT " WHEN " FLEET_F_POLICY                \
	" = 'mta-sts' THEN 'sts' WHEN " FLEET_F_POLICY                 \
	" = 'dane' THEN 'dane' WHEN " FLEET_F_RT                       \
	" ILIKE 'sts-%' THEN 'sts' WHEN " FLEET_F_RT                   \
	" IS NOT NULL THEN 'dane' WHEN " FLEET_F_MX                    \
	" IS NULL THEN NULL WHEN coalesce(" FLEET_F_TLS ", 'none') = " \
	"'none' THEN 'plaintext' ELSE 'tls' END)"

/* The one definition of blocked (RPT_BLOCKED). */
#define FLEET_BLOCKED                                                   \
	FLEET_FAILED " AND NOT " FLEET_DELIVERED " AND " FLEET_SECURITY \
	             " IN ('dane', 'sts')"

#endif
