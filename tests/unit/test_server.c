/*
 * test_server: the inbound server over real sockets on 127.0.0.0/8.
 *
 * The server runs on this thread's libevent loop; the client is a plain
 * blocking one on a second thread (socket timeouts bound every read), so
 * a dialogue reads like the SMTP it is. Messages go to a real queue in a
 * temporary directory and are read back with queue_msg_get(). The TLS
 * certificate is made here; client addresses 127.0.0.1 and 127.0.0.2
 * stand for a relay network and a stranger. Also: the CIDR matcher and
 * the credentials file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/log.h"
#include "queue/queue.h"
#include "server/server.h"
#include "server/server_int.h"
#include "t.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the world: loop, server, queue -------------------------------- */

struct world {
	struct event_base *base;
	struct server *srv;
	struct server_config cfg;
	char *listen[2];
	char *relay[3];
	struct queue *queue;
	char dir[64];
	SSL_CTX *tls;
	struct server_auth *auth;
	int port;
	char queued[64][QUEUE_ID_LEN];
	int nqueued;
	int shutdown_done;
	atomic_int client_done;
	atomic_int want_shutdown;
};

struct client;
typedef void client_fn(struct client *c, struct world *w);

static void
world_on_queued(const char *msgid, void *arg)
{
	struct world *w = arg;

	if (w->nqueued < (int)NELEM(w->queued))
		snprintf(w->queued[w->nqueued++], QUEUE_ID_LEN, "%s", msgid);
}

/* A self-signed P-256 certificate for CN=localhost, made for this run. */
static SSL_CTX *
world_tls_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, key);
	X509_sign(x, key, EVP_sha256());
	T_CHECK(SSL_CTX_use_certificate(ctx, x) == 1);
	T_CHECK(SSL_CTX_use_PrivateKey(ctx, key) == 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

/* A credentials file with alice:secret, loaded. */
static struct server_auth *
world_auth(const char *dir)
{
	char path[128], *hash = server_auth_hash("secret"), *errstr = NULL;
	struct server_auth *a;
	FILE *f;

	snprintf(path, sizeof(path), "%s/auth", dir);
	f = fopen(path, "w");
	T_CHECK(f != NULL && hash != NULL);
	if (f == NULL || hash == NULL)
		return NULL;
	fprintf(f, "# test users\n\nalice:%s\n", hash);
	fclose(f);
	chmod(path, 0600);
	free(hash);
	a = server_auth_load(path, &errstr);
	T_CHECK(a != NULL);
	free(errstr);
	return a;
}

static void
world_init(struct world *w, bool tls)
{
	char *errstr = NULL;

	memset(w, 0, sizeof(*w));
	w->base = event_base_new();
	snprintf(w->dir, sizeof(w->dir), "/tmp/dr-test-server.XXXXXX");
	T_CHECK(mkdtemp(w->dir) != NULL);
	w->queue = queue_open(w->dir, &errstr);
	T_CHECK(w->queue != NULL);
	free(errstr);
	w->listen[0] = "127.0.0.1:0";
	w->relay[0] = "127.0.0.1/32";
	w->relay[1] = "::1";
	w->cfg = (struct server_config){
		.listen = w->listen,
		.relay_networks = w->relay,
		.hostname = "mx.test",
		.max_message_size = 100000,
		.max_recipients = 10,
		.max_connections = 10,
		.max_connections_per_ip = 5,
		.command_timeout_ms = 5000,
		.data_timeout_ms = 5000,
		.queue = w->queue,
		.on_queued = world_on_queued,
		.arg = w,
	};
	if (tls) {
		w->tls = world_tls_ctx();
		w->auth = world_auth(w->dir);
		w->cfg.tls = w->tls;
		w->cfg.auth = w->auth;
	}
}

static bool
world_start(struct world *w)
{
	char *errstr = NULL;

	w->srv = server_new(w->base, &w->cfg, &errstr);
	if (w->srv == NULL) {
		printf("  server_new: %s\n", errstr);
		free(errstr);
		T_CHECK(0);
		return false;
	}
	w->port = server_listen_port(w->srv, 0);
	T_CHECK(w->port > 0);
	return true;
}

static int
world_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
world_done(struct world *w)
{
	server_free(w->srv);
	queue_close(w->queue);
	server_auth_free(w->auth);
	SSL_CTX_free(w->tls);
	event_base_free(w->base);
	nftw(w->dir, world_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static void
world_shutdown_done(void *arg)
{
	struct world *w = arg;

	w->shutdown_done++;
}

/* Every 10 ms: end the loop when the client is done; relay requests. */
static void
world_tick(evutil_socket_t fd, short what, void *arg)
{
	struct world *w = arg;

	if (atomic_exchange(&w->want_shutdown, 0))
		server_shutdown(w->srv, world_shutdown_done, w);
	if (atomic_load(&w->client_done))
		event_base_loopbreak(w->base);
}

/* ---- the client (second thread, blocking) --------------------------- */

struct client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char in[65536];
	size_t inlen;
	char reply[8192]; /* last reply, lines joined by '|' */
	int code;
};

struct client_run {
	struct world *w;
	client_fn *fn;
};

static int
cli_connect(struct client *c, int port, const char *from)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 10 };

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (from != NULL) {
		inet_pton(AF_INET, from, &sin.sin_addr);
		if (bind(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			return -1;
	}
	sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	return connect(c->fd, (struct sockaddr *)&sin, sizeof(sin));
}

/*
 * cli_connect() for a dialogue that needs the connection: a failure is
 * recorded with its reason, so a dialogue that cannot start FAILs.
 */
static bool
cli_open(struct client *c, int port, const char *from)
{
	if (cli_connect(c, port, from) == 0)
		return true;
	printf("  cannot connect to 127.0.0.1:%d from %s: %s\n", port,
	    from != NULL ? from : "any address", strerror(errno));
	T_FAIL("cannot connect to the server");
	return false;
}

static void
cli_close(struct client *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->ssl = NULL;
	c->ctx = NULL;
}

static void
cli_send_n(struct client *c, const char *s, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = c->ssl != NULL ? SSL_write(c->ssl, s, (int)n) :
		                     write(c->fd, s, n);
		if (r <= 0)
			return;
		s += r;
		n -= (size_t)r;
	}
}

static void
cli_send(struct client *c, const char *s)
{
	cli_send_n(c, s, strlen(s));
}

/* Read more input; 0 at EOF or error (timeout included). */
static ssize_t
cli_fill(struct client *c)
{
	ssize_t r;

	if (c->inlen == sizeof(c->in))
		return 0;
	r = c->ssl != NULL ?
	    SSL_read(
	        c->ssl, c->in + c->inlen, (int)(sizeof(c->in) - c->inlen)) :
	    read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (r <= 0)
		return 0;
	c->inlen += (size_t)r;
	return r;
}

/* One reply (all its lines); returns its code, 0 on EOF or garbage. */
static int
cli_reply(struct client *c)
{
	char *eol;
	size_t n, used = 0;
	bool last = false;

	c->reply[0] = '\0';
	c->code = 0;
	while (!last) {
		while ((eol = memchr(c->in, '\n', c->inlen)) == NULL)
			if (cli_fill(c) == 0)
				return 0;
		n = (size_t)(eol - c->in);
		if (n < 4 || c->in[n - 1] != '\r')
			return 0;
		last = c->in[3] == ' ';
		c->code = (c->in[0] - '0') * 100 + (c->in[1] - '0') * 10 +
		    (c->in[2] - '0');
		if (used + n + 1 < sizeof(c->reply)) {
			if (used > 0)
				c->reply[used++] = '|';
			memcpy(c->reply + used, c->in, n - 1);
			used += n - 1;
			c->reply[used] = '\0';
		}
		memmove(c->in, eol + 1, c->inlen - n - 1);
		c->inlen -= n + 1;
	}
	return c->code;
}

/* Send a command, expect a reply code. */
static bool
cli_cmd(struct client *c, const char *cmd, int want)
{
	int got;

	if (cmd != NULL)
		cli_send(c, cmd);
	got = cli_reply(c);
	if (got != want) {
		printf("  %s-> %d (%s), want %d\n", cmd != NULL ? cmd : "", got,
		    c->reply, want);
		T_CHECK(0);
	}
	return got == want;
}

/* Whether the server closed the connection (reads EOF). */
static bool
cli_eof(struct client *c)
{
	return c->inlen == 0 && cli_fill(c) == 0;
}

static bool
cli_starttls(struct client *c)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "mx.test");
	if (SSL_connect(c->ssl) != 1) {
		T_CHECK(0);
		return false;
	}
	return true;
}

static void *
client_main(void *arg)
{
	struct client_run *r = arg;
	struct client c = { .fd = -1 };

	r->fn(&c, r->w);
	cli_close(&c);
	atomic_store(&r->w->client_done, 1);
	return NULL;
}

/* Run fn on a client thread while the loop serves; bounded by 30 s. */
static void
world_run(struct world *w, client_fn *fn)
{
	struct client_run r = { .w = w, .fn = fn };
	struct timeval tick = { .tv_usec = 10000 }, t0, t1;
	struct event *ev = event_new(w->base, -1, EV_PERSIST, world_tick, w);
	pthread_t th;

	atomic_store(&w->client_done, 0);
	gettimeofday(&t0, NULL);
	event_add(ev, &tick);
	pthread_create(&th, NULL, client_main, &r);
	while (!atomic_load(&w->client_done)) {
		event_base_loop(w->base, EVLOOP_ONCE);
		gettimeofday(&t1, NULL);
		if (t1.tv_sec - t0.tv_sec > 30) {
			printf("  the client did not finish in 30 s\n");
			T_CHECK(0);
			break;
		}
	}
	pthread_join(th, NULL);
	event_free(ev);
	/* Let the server see the last closes. */
	event_base_loop(w->base, EVLOOP_NONBLOCK);
}

/* ---- dialogues ------------------------------------------------------ */

#define BODY                                                                \
	"From: a@b.example\r\nMessage-ID: <m1@b.example>\r\nSubject: t\r\n" \
	"\r\n.leading dot\r\nline\r\n"

/* BODY as sent: dot-stuffed (RFC 5321 §4.5.2). */
#define BODY_SENT                                                           \
	"From: a@b.example\r\nMessage-ID: <m1@b.example>\r\nSubject: t\r\n" \
	"\r\n..leading dot\r\nline\r\n"

/* The stored message: our Received header, then the body as sent. */
static void
check_stored(struct world *w, const char *body, const char *with)
{
	struct queue_msg *m;
	const char *end, *p, *eol;
	size_t blen = strlen(body);

	T_CHECK(w->nqueued == 1);
	if (w->nqueued != 1)
		return;
	m = queue_msg_get(w->queue, w->queued[0]);
	T_CHECK(m != NULL);
	if (m == NULL)
		return;
	T_CHECK(
	    m->len > blen && memcmp(m->data + m->len - blen, body, blen) == 0);
	T_CHECK(strncmp((const char *)m->data, "Received: from c.example (",
	            26) == 0);
	/*
	 * Everything before the body is our Received field: its first line
	 * and continuation lines (RFC 5322 folding), ending with CRLF.
	 */
	end = (const char *)m->data + m->len - blen;
	T_CHECK(end[-2] == '\r' && end[-1] == '\n');
	for (p = (const char *)m->data; p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		T_CHECK(eol != NULL);
		if (eol == NULL)
			break;
		T_CHECK(p == (const char *)m->data || *p == '\t');
	}
	T_CHECK(memmem(m->data, (size_t)(end - (const char *)m->data), with,
	            strlen(with)) != NULL);
	T_STREQ(m->sender, "a@b.example");
	T_STREQ(m->message_id, "<m1@b.example>");
	T_CHECK(strstr(m->client, "[127.0.0.") == m->client);
	queue_msg_free(m);
}

static void
dlg_plain(struct client *c, struct world *w)
{
	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	cli_cmd(c, "EHLO c.example\r\n", 250);
	T_CHECK(strstr(c->reply, "PIPELINING") != NULL);
	T_CHECK(strstr(c->reply, "STARTTLS") == NULL);
	cli_cmd(c, "MAIL FROM:<a@b.example>\r\n", 250);
	cli_cmd(c, "RCPT TO:<c@d.example> NOTIFY=FAILURE\r\n", 250);
	cli_cmd(c, "DATA\r\n", 354);
	cli_send(c,
	    "From: a@b.example\r\nMessage-ID: <m1@b.example>\r\n"
	    "Subject: t\r\n\r\n..leading dot\r\nline\r\n.\r\n");
	cli_cmd(c, NULL, 250);
	T_CHECK(strstr(c->reply, "2.0.0 Ok: queued as ") != NULL);
	cli_cmd(c, "QUIT\r\n", 221);
	T_CHECK(cli_eof(c));
}

static void
test_server_plain(void)
{
	struct world w;

	world_init(&w, false);
	if (world_start(&w)) {
		world_run(&w, dlg_plain);
		check_stored(&w, BODY, "with ESMTP id ");
	}
	T_CHECK(w.srv == NULL || server_sessions(w.srv) == 0);
	world_done(&w);
}

/* Everything in one write (RFC 2920), the replies read back in order. */
static void
dlg_pipelined(struct client *c, struct world *w)
{
	static const int want[] = { 250, 250, 250, 250, 354 };
	size_t i;

	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	cli_send(c,
	    "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n"
	    "RCPT TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\n"
	    "DATA\r\n");
	for (i = 0; i < NELEM(want); i++)
		cli_cmd(c, NULL, want[i]);
	cli_send(c, BODY_SENT ".\r\nQUIT\r\n");
	cli_cmd(c, NULL, 250);
	cli_cmd(c, NULL, 221);
}

static void
test_server_pipelined(void)
{
	struct world w;

	world_init(&w, false);
	if (world_start(&w)) {
		world_run(&w, dlg_pipelined);
		check_stored(&w, BODY, "with ESMTP id ");
	}
	world_done(&w);
}

static void
dlg_relay_denied(struct client *c, struct world *w)
{
	if (!cli_open(c, w->port, "127.0.0.2"))
		return;
	cli_cmd(c, NULL, 220);
	cli_cmd(c, "EHLO c.example\r\n", 250);
	cli_cmd(c, "MAIL FROM:<a@b.example>\r\n", 250);
	cli_cmd(c, "RCPT TO:<c@d.example>\r\n", 554);
	T_STREQ(c->reply, "554 5.7.1 Relay access denied");
	cli_cmd(c, "DATA\r\n", 554);
	cli_cmd(c, "QUIT\r\n", 221);
}

static void
test_server_relay_denied(void)
{
	struct world w;

	world_init(&w, false);
	if (world_start(&w))
		world_run(&w, dlg_relay_denied);
	T_CHECK(w.nqueued == 0);
	world_done(&w);
}

/* From a stranger's address: STARTTLS, AUTH, then relaying is allowed. */
static void
dlg_tls_auth(struct client *c, struct world *w)
{
	if (!cli_open(c, w->port, "127.0.0.2") || !cli_cmd(c, NULL, 220))
		return;
	cli_cmd(c, "EHLO c.example\r\n", 250);
	T_CHECK(strstr(c->reply, "250-STARTTLS") != NULL ||
	    strstr(c->reply, "250 STARTTLS") != NULL);
	T_CHECK(strstr(c->reply, "AUTH") == NULL);
	cli_cmd(c, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 530);
	T_STREQ(c->reply, "530 5.7.0 Must issue a STARTTLS command first");
	if (!cli_cmd(c, "STARTTLS\r\n", 220) || !cli_starttls(c))
		return;
	cli_cmd(c, "MAIL FROM:<a@b.example>\r\n", 503);
	cli_cmd(c, "EHLO c.example\r\n", 250);
	T_CHECK(strstr(c->reply, "AUTH PLAIN LOGIN") != NULL);
	T_CHECK(strstr(c->reply, "STARTTLS") == NULL);
	cli_cmd(c, "MAIL FROM:<a@b.example>\r\n", 250);
	cli_cmd(c, "RCPT TO:<c@d.example>\r\n", 554);
	cli_cmd(c, "RSET\r\n", 250);
	/* "\0alice\0wrong", then "\0alice\0secret" */
	cli_cmd(c, "AUTH PLAIN AGFsaWNlAHdyb25n\r\n", 535);
	cli_cmd(c, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 235);
	cli_cmd(c, "MAIL FROM:<a@b.example>\r\n", 250);
	cli_cmd(c, "RCPT TO:<c@d.example>\r\n", 250);
	cli_cmd(c, "DATA\r\n", 354);
	cli_send(c,
	    "From: a@b.example\r\nMessage-ID: <m1@b.example>\r\n"
	    "Subject: t\r\n\r\n..leading dot\r\nline\r\n.\r\n");
	cli_cmd(c, NULL, 250);
	cli_cmd(c, "QUIT\r\n", 221);
}

static void
test_server_tls_auth(void)
{
	struct world w;

	world_init(&w, true);
	if (world_start(&w)) {
		world_run(&w, dlg_tls_auth);
		check_stored(&w, BODY, "with ESMTPSA id ");
	}
	world_done(&w);
}

/* A client that never reads its 220 before sending: junk after STARTTLS. */
static void
dlg_starttls_junk(struct client *c, struct world *w)
{
	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	cli_cmd(c, "EHLO c.example\r\n", 250);
	cli_cmd(c, "STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n", 421);
	T_CHECK(cli_eof(c));
}

static void
test_server_starttls_junk(void)
{
	struct world w;

	world_init(&w, true);
	if (world_start(&w))
		world_run(&w, dlg_starttls_junk);
	world_done(&w);
}

/* Over the per-address limit: 421 4.7.0; over the total: 421 4.3.2. */
static void
dlg_limits(struct client *c, struct world *w)
{
	struct client more[3];
	size_t i;

	for (i = 0; i < 2; i++) {
		cli_open(&more[i], w->port, NULL);
		cli_cmd(&more[i], NULL, 220);
	}
	cli_open(c, w->port, NULL);
	cli_cmd(c, NULL, 421);
	T_CHECK(strstr(c->reply, "421 4.7.0 ") == c->reply);
	T_CHECK(cli_eof(c));
	cli_close(c);
	/* Another address is fine until the total is reached. */
	cli_open(&more[2], w->port, "127.0.0.2");
	cli_cmd(&more[2], NULL, 220);
	cli_open(c, w->port, "127.0.0.3");
	cli_cmd(c, NULL, 421);
	T_CHECK(strstr(c->reply, "421 4.3.2 ") == c->reply);
	/* The sessions still work. */
	cli_cmd(&more[0], "NOOP\r\n", 250);
	for (i = 0; i < 3; i++)
		cli_close(&more[i]);
}

static void
test_server_limits(void)
{
	struct world w;

	world_init(&w, false);
	w.cfg.max_connections = 3;
	w.cfg.max_connections_per_ip = 2;
	if (world_start(&w))
		world_run(&w, dlg_limits);
	world_done(&w);
}

static void
dlg_timeout(struct client *c, struct world *w)
{
	struct timeval t0, t1;
	long ms;

	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	gettimeofday(&t0, NULL);
	/* An unfinished line does not hold the deadline off. */
	cli_send(c, "NOO");
	cli_cmd(c, NULL, 421);
	gettimeofday(&t1, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	T_CHECK(ms >= 250 && ms < 5000);
	T_STREQ(c->reply, "421 4.4.2 mx.test Timeout exceeded");
	T_CHECK(cli_eof(c));
}

static void
test_server_timeout(void)
{
	struct world w;

	world_init(&w, false);
	w.cfg.command_timeout_ms = 300;
	if (world_start(&w))
		world_run(&w, dlg_timeout);
	world_done(&w);
}

static void
dlg_data_timeout(struct client *c, struct world *w)
{
	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	cli_send(c,
	    "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n"
	    "RCPT TO:<c@d.example>\r\nDATA\r\n");
	cli_cmd(c, NULL, 250);
	cli_cmd(c, NULL, 250);
	cli_cmd(c, NULL, 250);
	cli_cmd(c, NULL, 354);
	cli_send(c, "Subject: slow\r\n");
	cli_cmd(c, NULL, 421);
	T_CHECK(cli_eof(c));
}

static void
test_server_data_timeout(void)
{
	struct world w;

	world_init(&w, false);
	w.cfg.data_timeout_ms = 300;
	if (world_start(&w))
		world_run(&w, dlg_data_timeout);
	T_CHECK(w.nqueued == 0);
	world_done(&w);
}

/*
 * A million pipelined NOOPs (14 MB of replies, more than the kernel
 * buffers hold), written before the replies are read: the server
 * must stop taking commands when the client does not keep up, and lose
 * none of them.
 */
static void
dlg_flood(struct client *c, struct world *w)
{
	const size_t n = 1000000;
	const char *reply = "250 2.0.0 Ok\r\n";
	size_t sent = 0, total = 6 * n, want, got = 0, tail = 0, i;
	bool reading = false;
	struct pollfd pfd;
	char buf[65536], cmds[6 * 1000];
	ssize_t r;

	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	for (i = 0; i < 1000; i++)
		memcpy(cmds + 6 * i, "NOOP\r\n", 6);
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	pfd.fd = c->fd;
	/* Write without reading until the server stops taking commands. */
	while (got < n) {
		pfd.events =
		    (reading ? POLLIN : 0) | (sent < total ? POLLOUT : 0);
		r = poll(&pfd, 1, reading ? 10000 : 200);
		/* Stuck writing: the server stopped reading. */
		if (r == 0 && !reading) {
			reading = true;
			continue;
		}
		if (r <= 0)
			break;
		if ((pfd.revents & POLLOUT) && sent < total) {
			want = sizeof(cmds) - sent % sizeof(cmds);
			if (want > total - sent)
				want = total - sent;
			r = write(c->fd, cmds + sent % sizeof(cmds), want);
			if (r > 0)
				sent += (size_t)r;
			/* The server stopped reading: time to read replies. */
			if (r < (ssize_t)want || sent == total)
				reading = true;
		}
		if ((pfd.revents & POLLIN) &&
		    (r = read(c->fd, buf, sizeof(buf))) > 0) {
			for (i = 0; i < (size_t)r; i++) {
				if (buf[i] != reply[tail]) {
					T_CHECK(0);
					return;
				}
				if (++tail == 14) {
					tail = 0;
					got++;
				}
			}
		}
	}
	if (got != n)
		printf("  sent %zu, got %zu replies\n", sent, got);
	T_CHECK(got == n);
}

static void
test_server_flood(void)
{
	struct world w;

	world_init(&w, false);
	if (world_start(&w))
		world_run(&w, dlg_flood);
	world_done(&w);
}

static void
dlg_endless(struct client *c, struct world *w)
{
	char junk[4096];
	int i;

	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	memset(junk, 'x', sizeof(junk));
	for (i = 0; i < 32; i++)
		cli_send_n(c, junk, sizeof(junk));
	cli_cmd(c, NULL, 500);
	T_STREQ(c->reply, "500 5.5.2 Line too long");
	T_CHECK(cli_eof(c));
}

static void
test_server_endless_line(void)
{
	struct world w;

	world_init(&w, false);
	if (world_start(&w))
		world_run(&w, dlg_endless);
	world_done(&w);
}

/* Without a queue nothing can be stored: 451, never 250. */
static void
dlg_not_stored(struct client *c, struct world *w)
{
	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	cli_send(c,
	    "EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n"
	    "RCPT TO:<c@d.example>\r\nDATA\r\n");
	cli_cmd(c, NULL, 250);
	cli_cmd(c, NULL, 250);
	cli_cmd(c, NULL, 250);
	cli_cmd(c, NULL, 354);
	cli_send(c, "x\r\n.\r\n");
	cli_cmd(c, NULL, 451);
	T_STREQ(c->reply, "451 4.3.0 Message not stored, try again later");
	cli_cmd(c, "QUIT\r\n", 221);
}

static void
test_server_not_stored(void)
{
	struct world w;

	world_init(&w, false);
	w.cfg.queue = NULL;
	if (world_start(&w))
		world_run(&w, dlg_not_stored);
	T_CHECK(w.nqueued == 0);
	world_done(&w);
}

static void
dlg_oversize(struct client *c, struct world *w)
{
	char chunk[1000];
	int i;

	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	cli_cmd(c, "EHLO c.example\r\n", 250);
	T_CHECK(strstr(c->reply, "SIZE 100000") != NULL);
	cli_cmd(c, "MAIL FROM:<a@b.example> SIZE=200000\r\n", 552);
	cli_cmd(c, "MAIL FROM:<a@b.example>\r\n", 250);
	cli_cmd(c, "RCPT TO:<c@d.example>\r\n", 250);
	cli_cmd(c, "DATA\r\n", 354);
	memset(chunk, 'y', sizeof(chunk));
	chunk[sizeof(chunk) - 2] = '\r';
	chunk[sizeof(chunk) - 1] = '\n';
	for (i = 0; i < 200; i++)
		cli_send_n(c, chunk, sizeof(chunk));
	cli_send(c, ".\r\n");
	cli_cmd(c, NULL, 552);
	cli_cmd(c, "NOOP\r\n", 250);
}

static void
test_server_oversize(void)
{
	struct world w;

	world_init(&w, false);
	if (world_start(&w))
		world_run(&w, dlg_oversize);
	T_CHECK(w.nqueued == 0);
	world_done(&w);
}

/* Shutdown: an idle session hears 421 at once; done follows. */
static void
dlg_shutdown(struct client *c, struct world *w)
{
	struct client other;

	if (!cli_open(c, w->port, NULL) || !cli_cmd(c, NULL, 220))
		return;
	cli_cmd(c, "EHLO c.example\r\n", 250);
	atomic_store(&w->want_shutdown, 1);
	cli_cmd(c, NULL, 421);
	T_STREQ(c->reply, "421 4.3.2 mx.test Service shutting down");
	T_CHECK(cli_eof(c));
	/* Nobody listens any more. */
	T_CHECK(cli_connect(&other, w->port, NULL) != 0);
	cli_close(&other);
}

static void
test_server_shutdown(void)
{
	struct world w;
	int i;

	world_init(&w, false);
	if (world_start(&w))
		world_run(&w, dlg_shutdown);
	for (i = 0; i < 100 && w.shutdown_done == 0; i++)
		event_base_loop(w.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	T_CHECK(w.shutdown_done == 1);
	T_CHECK(server_sessions(w.srv) == 0);
	world_done(&w);
}

static void
dlg_reloaded(struct client *c, struct world *w)
{
	if (!cli_open(c, w->port, "127.0.0.2") || !cli_cmd(c, NULL, 220))
		return;
	cli_cmd(c, "EHLO c.example\r\n", 250);
	cli_cmd(c, "MAIL FROM:<a@b.example>\r\n", 250);
	cli_cmd(c, "RCPT TO:<c@d.example>\r\n", 250);
}

/* Reload: a new relay network applies; the kept listener keeps its port. */
static void
test_server_reload(void)
{
	struct world w;
	char *bad[] = { "127.0.0.2/8", NULL };
	char *nets[] = { "127.0.0.0/8", NULL };
	char *errstr = NULL;

	world_init(&w, false);
	if (!world_start(&w)) {
		world_done(&w);
		return;
	}
	w.cfg.relay_networks = bad;
	T_CHECK(server_reload(w.srv, &w.cfg, &errstr) == -1);
	T_CHECK(errstr != NULL && strstr(errstr, "127.0.0.2/8") != NULL);
	free(errstr);
	w.cfg.relay_networks = nets;
	T_CHECK(server_reload(w.srv, &w.cfg, &errstr) == 0);
	T_CHECK(server_listen_port(w.srv, 0) == w.port);
	world_run(&w, dlg_reloaded);
	world_done(&w);
}

static void
test_server_bind_error(void)
{
	struct world w;
	char *busy[] = { NULL, NULL };
	char *errstr = NULL, addr[32];
	struct server *again;

	world_init(&w, false);
	if (!world_start(&w)) {
		world_done(&w);
		return;
	}
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", w.port);
	busy[0] = addr;
	w.cfg.listen = busy;
	again = server_new(w.base, &w.cfg, &errstr);
	T_CHECK(again == NULL && errstr != NULL &&
	    strstr(errstr, "in use") != NULL);
	free(errstr);
	errstr = NULL;
	busy[0] = "nonsense";
	T_CHECK(server_new(w.base, &w.cfg, &errstr) == NULL);
	T_CHECK(errstr != NULL && strstr(errstr, "nonsense") != NULL);
	free(errstr);
	world_done(&w);
}

/* ---- networks and credentials --------------------------------------- */

struct net_case {
	const char *addr;
	bool want;
};

static bool
net_match(const struct server_net *n, const char *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1)
		return server_net_match(n, (struct sockaddr *)&sin);
	T_CHECK(inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1);
	return server_net_match(n, (struct sockaddr *)&sin6);
}

static void
test_net(void)
{
	char *nets[] = { "192.0.2.0/24", "10.1.0.0/17", "2001:db8::/32",
		"198.51.100.7", "::ffff:203.0.113.0/120", NULL };
	static const struct net_case cases[] = {
		{ "192.0.2.1", true },
		{ "192.0.3.1", false },
		{ "10.1.127.255", true },
		{ "10.1.128.0", false },
		{ "2001:db8:ffff::1", true },
		{ "2001:db9::1", false },
		{ "198.51.100.7", true },
		{ "198.51.100.8", false },
		{ "::ffff:192.0.2.9", true },
		{ "203.0.113.44", true },
		{ "::ffff:203.0.113.44", true },
		{ "::1", false },
	};
	const char *bad[] = { "192.0.2.1/24", "1.2.3.4/33", "2001:db8::/129",
		"example.com", "/24", "1.2.3.4/", "1.2.3.4/x" };
	struct server_net *n;
	char *errstr = NULL, *one[2] = { NULL, NULL };
	size_t i;

	n = server_net_new(nets, &errstr);
	T_CHECK(n != NULL);
	for (i = 0; n != NULL && i < NELEM(cases); i++) {
		if (net_match(n, cases[i].addr) != cases[i].want) {
			printf("  %s: want %d\n", cases[i].addr, cases[i].want);
			T_CHECK(0);
		}
	}
	server_net_free(n);
	for (i = 0; i < NELEM(bad); i++) {
		one[0] = (char *)(uintptr_t)bad[i];
		errstr = NULL;
		n = server_net_new(one, &errstr);
		T_CHECK(n == NULL && errstr != NULL &&
		    strstr(errstr, bad[i]) != NULL);
		server_net_free(n);
		free(errstr);
	}
	n = server_net_new(NULL, &errstr);
	T_CHECK(n != NULL && !net_match(n, "127.0.0.1"));
	server_net_free(n);
}

static char *
write_file(const char *dir, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/auth", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
	return path;
}

static void
test_auth_file(void)
{
	static const struct {
		const char *text;
		const char *err;
	} bad[] = {
		{ "alice\n", ":1: expected user:hash" },
		{ "# c\nalice:plain\n", ":2: hash must start with $scrypt$" },
		{ "alice:$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ=\n",
		    ":1: expected" },
		{ "alice:$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ=$"
		  "a2V5a2V5a2V5a2V5a2V5a2V5\n",
		    ":1: scrypt parameters out of range" },
		{ "alice:$scrypt$ln=15,r=8,p=1$c2Fs$a2V5a2V5a2V5a2V5a2V5\n",
		    ":1: bad salt" },
		{ "alice:$scrypt$ln=15,r=8,p=1$c2FsdHNhbHQ=$a2V5!\n",
		    ":1: bad key" },
		{ ":$scrypt$x\n", ":1: bad user name" },
	};
	char dir[] = "/tmp/dr-test-auth.XXXXXX", *errstr, *hash, *text, *path;
	struct server_auth *a;
	size_t i;

	T_CHECK(mkdtemp(dir) != NULL);
	for (i = 0; i < NELEM(bad); i++) {
		errstr = NULL;
		path = write_file(dir, bad[i].text);
		a = server_auth_load(path, &errstr);
		if (a != NULL || errstr == NULL ||
		    strstr(errstr, bad[i].err) == NULL ||
		    strncmp(errstr, path, strlen(path)) != 0) {
			printf("  \"%s\": %s\n", bad[i].text,
			    errstr ? errstr : "(loaded)");
			T_CHECK(0);
		}
		server_auth_free(a);
		free(errstr);
	}
	hash = server_auth_hash("p\xc3\xa4ss word");
	T_CHECK(
	    hash != NULL && strncmp(hash, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
	T_CHECK(hash != NULL && strlen(hash) == 22 + 24 + 1 + 44);
	text = malloc(4096);
	snprintf(text, 4096, "bob:%s\nbob:%s\n", hash, hash);
	errstr = NULL;
	a = server_auth_load(write_file(dir, text), &errstr);
	T_CHECK(a == NULL && errstr != NULL &&
	    strstr(errstr, ":2: duplicate user") != NULL);
	free(errstr);
	snprintf(text, 4096, "  # users\nbob:%s  \n", hash);
	a = server_auth_load(write_file(dir, text), &errstr);
	T_CHECK(a != NULL);
	T_CHECK(server_auth_check(a, "bob", "p\xc3\xa4ss word"));
	T_CHECK(!server_auth_check(a, "bob", "p\xc3\xa4ss wore"));
	T_CHECK(!server_auth_check(a, "bob", ""));
	T_CHECK(!server_auth_check(a, "eve", "p\xc3\xa4ss word"));
	T_CHECK(!server_auth_check(NULL, "bob", "x"));
	server_auth_free(a);
	errstr = NULL;
	T_CHECK(server_auth_load("/nonexistent/auth", &errstr) == NULL &&
	    errstr != NULL && strstr(errstr, "/nonexistent/auth: ") == errstr);
	free(errstr);
	free(text);
	free(hash);
	unlink(write_file(dir, ""));
	rmdir(dir);
}

/* ---- AUTH: lockout, failure table, worker pool ---------------------- */

#define PLAIN_WRONG  "AUTH PLAIN AGFsaWNlAHdyb25n\r\n"     /* alice:wrong */
#define PLAIN_SECRET "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n" /* alice:secret */

/* Connect from `from`, STARTTLS, EHLO again: ready for AUTH. */
static bool
cli_tls_ready(struct client *c, int port, const char *from)
{
	bool ok = cli_connect(c, port, from) == 0 && cli_cmd(c, NULL, 220) &&
	    cli_cmd(c, "EHLO c.example\r\n", 250) &&
	    cli_cmd(c, "STARTTLS\r\n", 220) && cli_starttls(c) &&
	    cli_cmd(c, "EHLO c.example\r\n", 250);

	if (!ok) {
		printf("  cannot get a TLS session from %s\n", from);
		T_CHECK(0);
	}
	return ok;
}

static double
secs_since(const struct timeval *t0)
{
	struct timeval t1;

	gettimeofday(&t1, NULL);
	return (double)(t1.tv_sec - t0->tv_sec) +
	    (double)(t1.tv_usec - t0->tv_usec) / 1e6;
}

/*
 * auth_max_failures = 2: two wrong passwords from 127.0.0.2 are answered
 * after 1 s and 2 s; the address is then locked out, so even the right
 * password gets 454 (not checked); the session's third failure ends it.
 * Another address still logs in.
 */
static void
dlg_auth_lockout(struct client *c, struct world *w)
{
	struct timeval t0;
	double dt;

	if (!cli_tls_ready(c, w->port, "127.0.0.2"))
		return;
	gettimeofday(&t0, NULL);
	cli_cmd(c, PLAIN_WRONG, 535);
	dt = secs_since(&t0);
	T_CHECK(dt >= 0.9 && dt < 10);
	cli_cmd(c, PLAIN_WRONG, 535);
	dt = secs_since(&t0);
	T_CHECK(dt >= 2.9 && dt < 20);
	cli_cmd(c, PLAIN_SECRET, 454);
	T_STREQ(c->reply, "454 4.7.0 Temporary authentication failure");
	cli_cmd(c, NULL, 421);
	cli_close(c);
	if (!cli_tls_ready(c, w->port, "127.0.0.3"))
		return;
	cli_cmd(c, PLAIN_SECRET, 235);
	cli_cmd(c, "QUIT\r\n", 221);
}

static void
test_server_auth_lockout(void)
{
	struct world w;

	world_init(&w, true);
	w.cfg.auth_max_failures = 2;
	if (world_start(&w))
		world_run(&w, dlg_auth_lockout);
	world_done(&w);
}

static struct sockaddr_storage
sa_of(const char *ip)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		ss.ss_family = AF_UNIX;
	return ss;
}

static unsigned
fail_add(struct server_authfail *t, const char *ip, time_t now)
{
	struct sockaddr_storage ss = sa_of(ip);

	return server_authfail_add(t, (struct sockaddr *)&ss, 600, now);
}

static unsigned
fail_count(struct server_authfail *t, const char *ip, time_t now)
{
	struct sockaddr_storage ss = sa_of(ip);

	return server_authfail_count(t, (struct sockaddr *)&ss, 600, now);
}

/* Counting, the window, IPv6 /64 and IPv4-mapped keys. */
static void
test_authfail_count(void)
{
	struct server_authfail *t = server_authfail_new(100);

	T_CHECK(fail_count(t, "192.0.2.1", 1000) == 0);
	T_CHECK(fail_add(t, "192.0.2.1", 1000) == 1);
	T_CHECK(fail_add(t, "192.0.2.1", 1300) == 2);
	T_CHECK(fail_count(t, "192.0.2.1", 1899) == 2);
	/* 600 s after the last failure the count is gone... */
	T_CHECK(fail_count(t, "192.0.2.1", 1900) == 0);
	/* ...and the next failure starts again at 1. */
	T_CHECK(fail_add(t, "192.0.2.1", 1900) == 1);
	T_CHECK(fail_count(t, "192.0.2.2", 1900) == 0);
	/* An IPv4-mapped IPv6 address is the IPv4 one. */
	T_CHECK(fail_add(t, "::ffff:192.0.2.1", 1901) == 2);
	/* IPv6 counts per /64. */
	T_CHECK(fail_add(t, "2001:db8:1:2::1", 1000) == 1);
	T_CHECK(fail_add(t, "2001:db8:1:2:ffff:eeee:dddd:cccc", 1001) == 2);
	T_CHECK(fail_count(t, "2001:db8:1:3::1", 1001) == 0);
	T_CHECK(fail_count(t, "2001:db8:1:2::99", 1001) == 2);
	/* Other families are not counted. */
	T_CHECK(fail_add(t, "not an address", 1000) == 0);
	T_CHECK(server_authfail_size(t) == 2);
	server_authfail_free(t);
	server_authfail_free(NULL);
}

/* The cap: expired slots are reused first, then the one idle longest. */
static void
test_authfail_cap(void)
{
	struct server_authfail *t = server_authfail_new(3);
	char ip[32];
	int i;

	T_CHECK(fail_add(t, "192.0.2.1", 1000) == 1);
	T_CHECK(fail_add(t, "192.0.2.2", 1100) == 1);
	T_CHECK(fail_add(t, "192.0.2.3", 1200) == 1);
	T_CHECK(fail_add(t, "192.0.2.1", 1300) == 2);
	/* Full: 192.0.2.2 has been idle longest and goes. */
	T_CHECK(fail_add(t, "192.0.2.4", 1400) == 1);
	T_CHECK(server_authfail_size(t) == 3);
	T_CHECK(fail_count(t, "192.0.2.2", 1400) == 0);
	T_CHECK(fail_count(t, "192.0.2.1", 1400) == 2);
	T_CHECK(fail_count(t, "192.0.2.3", 1400) == 1);
	/* At 1850 192.0.2.3 (last 1200) has expired: its slot is taken. */
	T_CHECK(fail_add(t, "192.0.2.5", 1850) == 1);
	T_CHECK(fail_count(t, "192.0.2.1", 1850) == 2);
	T_CHECK(fail_count(t, "192.0.2.4", 1850) == 1);
	/* A flood of addresses never grows the table past its cap. */
	for (i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		fail_add(t, ip, 2000 + i);
	}
	T_CHECK(server_authfail_size(t) == 3);
	T_CHECK(fail_count(t, "10.0.3.231", 2999) == 1);
	server_authfail_free(t);
}

struct pool_result {
	atomic_int calls;
	bool ok;
};

static void
pool_done(bool ok, void *arg)
{
	struct pool_result *r = arg;

	r->ok = ok;
	atomic_fetch_add(&r->calls, 1);
}

/* Whether every check submitted and not cancelled has its verdict. */
static bool
pool_all_done(struct server_authpool_job **j, struct pool_result *r, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (i != 1 && j[i] != NULL && atomic_load(&r[i].calls) == 0)
			return false;
	return true;
}

/*
 * The worker pool: verdicts come back on the loop; the queue is bounded
 * (one worker, two waiting: of six checks sent at once some are refused);
 * a cancelled check's verdict never arrives; freeing the pool drops what
 * is left.
 */
static void
test_authpool(void)
{
	char dir[] = "/tmp/dr-test-pool.XXXXXX";
	struct event_base *base = event_base_new();
	struct server_authpool *p = server_authpool_new(base, 1, 2);
	struct server_auth *a;
	struct server_authpool_job *j[7];
	struct pool_result r[9] = { 0 };
	struct timeval t0;
	int i, refused = 0;

	T_CHECK(mkdtemp(dir) != NULL);
	if ((a = world_auth(dir)) == NULL)
		goto out;
	j[0] = server_authpool_submit(
	    p, server_auth_try_new(a, "alice", "secret"), pool_done, &r[0]);
	/* Give the worker the time to take it (a check takes far longer). */
	usleep(20000);
	j[1] = server_authpool_submit(
	    p, server_auth_try_new(a, "alice", "wrong"), pool_done, &r[1]);
	for (i = 2; i < 7; i++) {
		j[i] = server_authpool_submit(p,
		    server_auth_try_new(a, "bob", "secret"), pool_done, &r[i]);
		refused += j[i] == NULL;
	}
	T_CHECK(j[0] != NULL && j[1] != NULL && refused >= 3);
	/* The table may go (a reload): the checks have their own copies. */
	server_auth_free(a);
	server_authpool_cancel(p, j[1]);
	gettimeofday(&t0, NULL);
	while (!pool_all_done(j, r, 7) && secs_since(&t0) < 30) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(5000);
	}
	/* What the pipe may still hold for the cancelled one. */
	usleep(200000);
	event_base_loop(base, EVLOOP_NONBLOCK);
	T_CHECK(atomic_load(&r[0].calls) == 1 && r[0].ok);
	T_CHECK(atomic_load(&r[1].calls) == 0);
	for (i = 2; i < 7; i++)
		T_CHECK(j[i] == NULL ?
		        atomic_load(&r[i].calls) == 0 :
		        atomic_load(&r[i].calls) == 1 && !r[i].ok);
	/* Checks still waiting or running when the pool goes: dropped. */
	a = world_auth(dir);
	for (i = 7; i < 9; i++)
		server_authpool_submit(p,
		    server_auth_try_new(a, "alice", "secret"), pool_done,
		    &r[i]);
	server_auth_free(a);
out:
	server_authpool_free(p);
	event_base_loop(base, EVLOOP_NONBLOCK);
	T_CHECK(atomic_load(&r[7].calls) == 0 && atomic_load(&r[8].calls) == 0);
	event_base_free(base);
	unlink(write_file(dir, ""));
	rmdir(dir);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* As in main.c: a peer that hangs up must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_WARN);
	T_RUN(test_net);
	T_RUN(test_auth_file);
	T_RUN(test_server_plain);
	T_RUN(test_server_pipelined);
	T_RUN(test_server_relay_denied);
	T_RUN(test_server_tls_auth);
	T_RUN(test_server_auth_lockout);
	T_RUN(test_authfail_count);
	T_RUN(test_authfail_cap);
	T_RUN(test_authpool);
	T_RUN(test_server_starttls_junk);
	T_RUN(test_server_limits);
	T_RUN(test_server_timeout);
	T_RUN(test_server_endless_line);
	T_RUN(test_server_data_timeout);
	T_RUN(test_server_flood);
	T_RUN(test_server_not_stored);
	T_RUN(test_server_oversize);
	T_RUN(test_server_shutdown);
	T_RUN(test_server_reload);
	T_RUN(test_server_bind_error);
	T_EXIT();
}
