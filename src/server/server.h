/*
 * server: the inbound ESMTP side of the relay (RFC 5321): listeners, one
 * session per connection on the shared event loop, STARTTLS, AUTH after
 * TLS, relay authorisation, limits, and the hand-over of each accepted
 * message to the durable queue before the 250 reply to the final dot.
 *
 * The protocol logic is the pure state machine of smtp/smtp_server.c; this
 * module does the I/O, the timeouts and the policy checks it asks for.
 */
#ifndef DR_SERVER_H
#define DR_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct event_base;
struct queue;
struct server;
struct server_auth;
struct dkim_signer;

struct server_config {
	char **listen;         /* "ADDR:PORT" / "[v6]:PORT", NULL-terminated */
	char **relay_networks; /* CIDRs allowed to relay without AUTH */
	const char *hostname;  /* our name: greeting, Received, DSNs */
	SSL_CTX *tls; /* server context (borrowed), NULL = no STARTTLS */
	struct server_auth *auth; /* credentials (borrowed), NULL = no AUTH */
	size_t max_message_size;  /* octets; SIZE (RFC 1870) */
	size_t max_recipients; /* per message (RFC 5321 §4.5.3.1.8: >= 100) */
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned command_timeout_ms; /* RFC 5321 §4.5.3.2.7: 5 min */
	/*
	 * Failed AUTH per client network (IPv4 address, IPv6 /64): this
	 * many within auth_lockout seconds of each other lock the network
	 * out for auth_lockout seconds after the last (docs/SERVER.md).
	 */
	unsigned auth_max_failures;
	unsigned auth_lockout;
	unsigned data_timeout_ms; /* per chunk of DATA (§4.5.3.2.5: 3 min) */
	struct queue *queue;      /* borrowed */
	/* [queue] min_free_space: below it, MAIL and RCPT get 452 4.3.1 */
	uint64_t min_free_space;
	/*
	 * [dkim] sign_outbound: accepted mail whose From: is in the
	 * signer's domain is DKIM-signed before it is queued (borrowed;
	 * NULL: no signing).
	 */
	const struct dkim_signer *dkim;
	/*
	 * Called after a message was committed (to wake the scheduler),
	 * from inside a session's callback: it must not free the server.
	 */
	void (*on_queued)(const char *msgid, void *arg);
	void *arg;
};
/*
 * Added: a limit or timeout left at 0 takes its default (25 MiB, 1000
 * recipients, 1000 connections, 50 per address, 5 min, 3 min, 5 AUTH
 * failures, 600 s of lockout); hostname
 * NULL takes gethostname(). The auth table and the queue are looked up
 * in the current configuration each time they are used, so after
 * server_reload() returns the old ones are no longer touched.
 */

/*
 * Bind the listeners and start accepting. The config is copied (the SSL_CTX
 * is up-referenced, the auth table and queue stay borrowed). Returns new,
 * or NULL with *errstr (new string) when a listener cannot be bound.
 * Added: the process must ignore SIGPIPE (main.c does); relay_networks
 * with host bits set ("127.0.0.1/8") are an error too.
 */
struct server *server_new(
    struct event_base *base, const struct server_config *cfg, char **errstr);

/*
 * What server_new() would refuse in cfg->listen and cfg->relay_networks,
 * checked without binding (check-config, and every start and reload
 * through relay_check_config()). Return NULL, or a new error text.
 */
char *server_check_listen(char *const *listen);
char *server_check_networks(char *const *cidrs);

/*
 * Apply a new configuration (SIGHUP): limits, relay networks, TLS context
 * and credentials for new sessions; listeners that changed are rebound.
 * Returns 0, or -1 with *errstr and the old configuration kept.
 */
int server_reload(
    struct server *s, const struct server_config *cfg, char **errstr);

/*
 * Stop accepting (SIGTERM); sessions in progress finish or time out. done
 * is called once no session is left (possibly from inside this call's
 * event loop iteration, never from inside the call itself).
 */
void server_shutdown(struct server *s, void (*done)(void *arg), void *arg);

void server_free(struct server *s);

/* Number of sessions in progress. */
size_t server_sessions(const struct server *s);

/*
 * Added: the local port of listener i (in the order of cfg->listen), e.g.
 * after listening on port 0; -1 if there is no such listener.
 */
int server_listen_port(const struct server *s, size_t i);

/*
 * Credentials file: one "user:hash" per line, '#' comments; hash made by
 * `danerelay passwd` (server_auth_hash). Returns new or NULL + *errstr
 * ("file:line: ...", new string).
 */
struct server_auth *server_auth_load(const char *path, char **errstr);
void server_auth_free(struct server_auth *a);
/*
 * Constant-time check of user/password (an unknown user costs the same
 * scrypt run as a known one). a NULL = false. Takes some 50-100 ms of
 * CPU by design (scrypt, N=2^15): sessions run it on the workers of
 * server_authpool (server_int.h), never on the event loop.
 */
bool server_auth_check(
    const struct server_auth *a, const char *user, const char *password);
/*
 * The same check in three steps, so that the costly middle one can run on
 * another thread: _new copies what the check needs (the user's entry, or
 * the dummy for an unknown user, and the password), so the table may be
 * reloaded or freed meanwhile; returns new, or NULL when a is NULL or the
 * password is longer than 1024 octets. _run (any thread, touches only t)
 * derives and compares; NULL is false. _free wipes; NULL is fine.
 */
struct server_auth_try;
struct server_auth_try *server_auth_try_new(
    const struct server_auth *a, const char *user, const char *password);
bool server_auth_try_run(const struct server_auth_try *t);
void server_auth_try_free(struct server_auth_try *t);
/*
 * Hash a password for the credentials file: returns new string
 * ("$scrypt$ln=15,r=8,p=1$salt$key"), or NULL if OpenSSL fails.
 */
char *server_auth_hash(const char *password);

#endif
