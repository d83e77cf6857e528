/*
 * smtpload: the benchmark's SMTP client.  It submits N messages of about
 * SIZE octets over C parallel connections (one blocking thread each),
 * MAIL/RCPT/DATA pipelined when the server offers PIPELINING, optionally
 * over STARTTLS.  Used twice: to measure the sink's own capacity first
 * (with -t, against the sink), and to submit the benchmark's mail to
 * danerelay and Postfix (plain SMTP on their 127.x listener).
 *
 *   smtpload -a ADDR -p PORT -n N [-c CONNS] [-m DOMAINS] [-z SIZE]
 *            [-r TAG] [-t] [-k PER_CONN]
 *
 * Message i goes to u<i>@d<i mod DOMAINS>.bench with Message-ID
 * <TAG.i@bench>.  A connection sends up to PER_CONN messages (default: all
 * of its share), then QUITs and reconnects.  Prints one JSON line:
 * {"sent", "failed", "seconds", "start", "end"}; exits 1 if any failed.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct conn {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t have;
	int pipelining;
};

static struct sockaddr_in target;
static SSL_CTX *tls_ctx;
static const char *tag = "m";
static long total, domains = 10, size = 500, per_conn;
static int use_tls;
static long next_msg, sent, failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double
now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ I/O */

static int
conn_write(struct conn *c, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = c->ssl != NULL ? SSL_write(c->ssl, p, (int)len) :
				     write(c->fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->have >= sizeof(c->buf) - 1)
		return -1;
	n = c->ssl != NULL ?
	    SSL_read(c->ssl, c->buf + c->have, (int)(sizeof(c->buf) - 1 - c->have)) :
	    read(c->fd, c->buf + c->have, sizeof(c->buf) - 1 - c->have);
	if (n <= 0)
		return -1;
	c->have += (size_t)n;
	return 0;
}

/* Read one complete (multi-line) reply; returns its code, -1 on error.
 * Sets c->pipelining when a line says PIPELINING. */
static int
conn_reply(struct conn *c)
{
	char *eol, *line;
	int code;

	for (;;) {
		c->buf[c->have] = '\0';
		line = c->buf;
		while ((eol = strstr(line, "\r\n")) != NULL) {
			if (eol - line >= 12 && strncmp(line + 4, "PIPELINING", 10) == 0)
				c->pipelining = 1;
			if (eol - line >= 3 && line[3] != '-') {
				code = atoi(line);
				c->have -= (size_t)(eol + 2 - c->buf);
				memmove(c->buf, eol + 2, c->have);
				return code;
			}
			line = eol + 2;
		}
		if (conn_fill(c) == -1)
			return -1;
	}
}

static int
command(struct conn *c, const char *cmd, int want)
{
	if (conn_write(c, cmd, strlen(cmd)) == -1)
		return -1;
	return conn_reply(c) / 100 == want ? 0 : -1;
}

/* ------------------------------------------------------------ session */

static int
conn_open(struct conn *c)
{
	int one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd == -1 ||
	    connect(c->fd, (struct sockaddr *)&target, sizeof(target)) == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (conn_reply(c) != 220 || command(c, "EHLO load.bench\r\n", 2) == -1)
		return -1;
	if (!use_tls)
		return 0;
	if (command(c, "STARTTLS\r\n", 2) == -1)
		return -1;
	c->ssl = SSL_new(tls_ctx);
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) != 1)
		return -1;
	c->pipelining = 0;
	return command(c, "EHLO load.bench\r\n", 2);
}

static void
conn_close(struct conn *c)
{
	if (c->fd > 0)
		command(c, "QUIT\r\n", 2);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd > 0)
		close(c->fd);
	c->fd = -1;
	c->ssl = NULL;
}

static size_t
message(char *out, size_t cap, long i)
{
	static const char filler[] =
	    "The quick brown fox jumps over the lazy dog, benchmark filler.\r\n";
	size_t len;

	len = (size_t)snprintf(out, cap,
	    "From: <load@client.bench>\r\nTo: <u%ld@d%ld.bench>\r\n"
	    "Subject: bench %s %ld\r\nMessage-ID: <%s.%ld@bench>\r\n"
	    "Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\n",
	    i, i % domains, tag, i, tag, i);
	while (len + sizeof(filler) + 8 < cap && len + sizeof(filler) <= (size_t)size)
		len += (size_t)snprintf(out + len, cap - len, "%s", filler);
	len += (size_t)snprintf(out + len, cap - len, ".\r\n");
	return len;
}

/* MAIL, RCPT and DATA: in one write when pipelining, else in lockstep.
 * Returns the three reply codes in codes[]; -1 on a broken connection. */
static int
envelope(struct conn *c, long i, int codes[3])
{
	char cmd[256];
	const char *p = cmd, *eol;
	int k;

	snprintf(cmd, sizeof(cmd), "MAIL FROM:<load@client.bench>\r\n"
	    "RCPT TO:<u%ld@d%ld.bench>\r\nDATA\r\n", i, i % domains);
	if (c->pipelining) {
		if (conn_write(c, cmd, strlen(cmd)) == -1)
			return -1;
		for (k = 0; k < 3; k++)
			if ((codes[k] = conn_reply(c)) < 0)
				return -1;
		return 0;
	}
	for (k = 0; k < 3; k++, p = eol + 2) {
		eol = strstr(p, "\r\n");
		if (conn_write(c, p, (size_t)(eol + 2 - p)) == -1 ||
		    (codes[k] = conn_reply(c)) < 0)
			return -1;
		if (codes[k] / 100 != 2 && codes[k] != 354)
			return 0;
	}
	return 0;
}

/* One transaction: 0 accepted, 1 refused, -1 connection broken. */
static int
send_one(struct conn *c, long i)
{
	int codes[3] = { 0, 0, 0 };
	char msg[8192];
	size_t len;

	if (envelope(c, i, codes) == -1)
		return -1;
	if (codes[0] / 100 != 2 || codes[1] / 100 != 2 || codes[2] != 354)
		return command(c, "RSET\r\n", 2) == 0 ? 1 : -1;
	len = message(msg, sizeof(msg), i);
	if (conn_write(c, msg, len) == -1)
		return -1;
	return conn_reply(c) / 100 == 2 ? 0 : 1;
}

static long
claim(void)
{
	long i;

	pthread_mutex_lock(&lock);
	i = next_msg < total ? next_msg++ : -1;
	pthread_mutex_unlock(&lock);
	return i;
}

static void
account(int ok)
{
	pthread_mutex_lock(&lock);
	if (ok)
		sent++;
	else
		failed++;
	pthread_mutex_unlock(&lock);
}

static void *
worker(void *arg)
{
	struct conn c = { .fd = -1 };
	long i, on_conn = 0;
	int rc;

	while ((i = claim()) >= 0) {
		if (c.fd < 0 || (per_conn > 0 && on_conn >= per_conn)) {
			conn_close(&c);
			on_conn = 0;
			if (conn_open(&c) == -1) {
				account(0);
				conn_close(&c);
				continue;
			}
		}
		rc = send_one(&c, i);
		account(rc == 0);
		on_conn++;
		if (rc == -1)
			conn_close(&c);
	}
	conn_close(&c);
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: smtpload -a ADDR -p PORT -n N [-c CONNS] "
			"[-m DOMAINS] [-z SIZE] [-r TAG] [-t] [-k PER_CONN]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	pthread_t *th;
	double start, end;
	long conns = 8, t;
	int ch;

	memset(&target, 0, sizeof(target));
	target.sin_family = AF_INET;
	while ((ch = getopt(argc, argv, "a:p:n:c:m:z:r:tk:")) != -1) {
		switch (ch) {
		case 'a':
			if (inet_pton(AF_INET, optarg, &target.sin_addr) != 1)
				usage();
			break;
		case 'p': target.sin_port = htons((unsigned short)atoi(optarg)); break;
		case 'n': total = atol(optarg); break;
		case 'c': conns = atol(optarg); break;
		case 'm': domains = atol(optarg); break;
		case 'z': size = atol(optarg); break;
		case 'r': tag = optarg; break;
		case 't': use_tls = 1; break;
		case 'k': per_conn = atol(optarg); break;
		default: usage();
		}
	}
	if (total <= 0 || conns <= 0 || domains <= 0 || target.sin_port == 0 ||
	    (ntohl(target.sin_addr.s_addr) >> 24) != 127)
		usage();
	signal(SIGPIPE, SIG_IGN);
	tls_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	th = calloc((size_t)conns, sizeof(*th));
	start = now_real();
	for (t = 0; t < conns; t++)
		pthread_create(&th[t], NULL, worker, NULL);
	for (t = 0; t < conns; t++)
		pthread_join(th[t], NULL);
	end = now_real();
	printf("{\"sent\": %ld, \"failed\": %ld, \"seconds\": %.3f, "
	       "\"start\": %.6f, \"end\": %.6f}\n",
	    sent, failed, end - start, start, end);
	return failed > 0 ? 1 : 0;
}
