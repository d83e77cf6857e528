/*
 * sink: the benchmark's SMTP receiver.  One libevent loop, one listener per
 * MX host address (each with its own certificate, the one its DANE-EE TLSA
 * record names), STARTTLS, PIPELINING, 8BITMIME; it accepts every message
 * and keeps only counters: sessions (total, open, peak open), TLS handshakes
 * (full and resumed, via SSL_session_reused), messages, recipients, and
 * messages that arrived without TLS.  With -d MS every round trip is slow:
 * the replies to what one read delivered are sent together MS later, without
 * blocking other sessions (slow-receiver runs, thousands of open sessions).
 *
 *   sink -H HOSTS -p PORT -s STATSFILE [-d MS] [-n NOFILE]
 *
 * HOSTS has one line per listener: "ADDR CHAIN.pem KEY.pem".  The counters
 * are written as one JSON line to STATSFILE every 200 ms (and at SIGUSR1);
 * SIGUSR2 zeroes them; SIGTERM/SIGINT end the process.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define LINE_MAX_LEN 1000
#define STATS_EVERY_US 200000

struct counters {
	unsigned long sessions, open, open_peak;
	unsigned long tls_full, tls_resumed, tls_failed;
	unsigned long messages, messages_plain, recipients, bytes;
	double first_msg, last_msg;
};

struct host {
	SSL_CTX *ctx;
	struct evconnlistener *lev;
};

struct sess {
	struct host *host;
	struct bufferevent *bev;
	struct event *delay_ev;
	struct evbuffer *out;		/* replies not yet sent */
	evutil_socket_t fd;
	int tls, in_data, starttls, quitting, delayed;
};

static struct event_base *base;
static struct counters cnt;
static struct timeval delay_tv;
static int delay_on;
static const char *stats_path;

static void sess_read(struct bufferevent *, void *);
static void sess_write(struct bufferevent *, void *);
static void sess_event(struct bufferevent *, short, void *);
static void sess_process(struct sess *);

static void
die(const char *what)
{
	fprintf(stderr, "sink: %s: %s\n", what, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double
now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ sessions */

static void
sess_free(struct sess *s)
{
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	evbuffer_free(s->out);
	free(s);
	cnt.open--;
}

static void
sess_bev_setup(struct sess *s)
{
	bufferevent_setcb(s->bev, sess_read, sess_write, sess_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* Send the replies collected so far: now, or after the delay.  Reading
 * stops while a delayed reply is pending, as a slow server would. */
static void
sess_flush(struct sess *s)
{
	if (evbuffer_get_length(s->out) == 0)
		return;
	if (delay_on) {
		s->delayed = 1;
		bufferevent_disable(s->bev, EV_READ);
		event_add(s->delay_ev, &delay_tv);
		return;
	}
	bufferevent_write_buffer(s->bev, s->out);
}

static void
sess_delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct sess *s = arg;

	s->delayed = 0;
	bufferevent_write_buffer(s->bev, s->out);
	if (!s->starttls && !s->quitting) {
		bufferevent_enable(s->bev, EV_READ);
		sess_process(s);
	}
}

static void
reply(struct sess *s, const char *text)
{
	evbuffer_add(s->out, text, strlen(text));
}

/* The plain socket bufferevent is freed without closing the fd, and an
 * OpenSSL one takes the fd over in the accepting state. */
static void
sess_start_tls(struct sess *s)
{
	SSL *ssl = SSL_new(s->host->ctx);

	if (ssl == NULL)
		die("SSL_new");
	bufferevent_free(s->bev);
	s->bev = bufferevent_openssl_socket_new(base, s->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		die("bufferevent_openssl_socket_new");
	s->starttls = 0;
	s->tls = 1;
	sess_bev_setup(s);
}

static void
ehlo(struct sess *s)
{
	reply(s, "250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
		 "250-SIZE 104857600\r\n");
	reply(s, s->tls ? "250 ENHANCEDSTATUSCODES\r\n" :
			  "250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n");
}

/* One command line; returns 0 to stop reading (STARTTLS, QUIT). */
static int
command(struct sess *s, const char *line)
{
	if (strncasecmp(line, "EHLO", 4) == 0)
		ehlo(s);
	else if (strncasecmp(line, "HELO", 4) == 0)
		reply(s, "250 sink.bench\r\n");
	else if (strncasecmp(line, "MAIL", 4) == 0)
		reply(s, "250 2.1.0 ok\r\n");
	else if (strncasecmp(line, "RCPT", 4) == 0) {
		cnt.recipients++;
		reply(s, "250 2.1.5 ok\r\n");
	} else if (strncasecmp(line, "DATA", 4) == 0) {
		s->in_data = 1;
		reply(s, "354 go ahead\r\n");
	} else if (strncasecmp(line, "RSET", 4) == 0 ||
	    strncasecmp(line, "NOOP", 4) == 0)
		reply(s, "250 2.0.0 ok\r\n");
	else if (strncasecmp(line, "STARTTLS", 8) == 0 && !s->tls) {
		reply(s, "220 2.0.0 ready to start TLS\r\n");
		s->starttls = 1;
		return 0;
	} else if (strncasecmp(line, "QUIT", 4) == 0) {
		reply(s, "221 2.0.0 bye\r\n");
		s->quitting = 1;
		return 0;
	} else
		reply(s, "500 5.5.2 unknown command\r\n");
	return 1;
}

static void
message_done(struct sess *s, size_t len)
{
	double t = now_real();

	s->in_data = 0;
	cnt.messages++;
	cnt.bytes += len;
	if (!s->tls)
		cnt.messages_plain++;
	if (cnt.first_msg == 0)
		cnt.first_msg = t;
	cnt.last_msg = t;
	reply(s, "250 2.0.0 ok queued\r\n");
}

/* Consume every complete line in the input; data lines are only counted. */
static void
sess_process(struct sess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char line[LINE_MAX_LEN + 1];
	struct evbuffer_ptr eol;
	size_t eol_len, len;

	while (!s->delayed && !s->starttls && !s->quitting) {
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0)
			break;
		len = (size_t)eol.pos;
		evbuffer_copyout(in, line, len < LINE_MAX_LEN ? len : LINE_MAX_LEN);
		line[len < LINE_MAX_LEN ? len : LINE_MAX_LEN] = '\0';
		evbuffer_drain(in, len + eol_len);
		if (s->in_data) {
			if (len == 1 && line[0] == '.')
				message_done(s, len);
			else
				cnt.bytes += len + 2;
		} else if (!command(s, line))
			break;
	}
	sess_flush(s);
}

static void
sess_read(struct bufferevent *bev, void *arg)
{
	sess_process(arg);
}

/* Output drained: the moment to start TLS or to close after QUIT. */
static void
sess_write(struct bufferevent *bev, void *arg)
{
	struct sess *s = arg;

	if (s->delayed || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (s->quitting)
		sess_free(s);
	else if (s->starttls)
		sess_start_tls(s);
}

static void
sess_event(struct bufferevent *bev, short what, void *arg)
{
	struct sess *s = arg;
	SSL *ssl;

	if (what & BEV_EVENT_CONNECTED) {
		ssl = bufferevent_openssl_get_ssl(bev);
		if (ssl != NULL && SSL_session_reused(ssl))
			cnt.tls_resumed++;
		else
			cnt.tls_full++;
		return;
	}
	if ((what & BEV_EVENT_ERROR) && s->tls &&
	    bufferevent_openssl_get_ssl(bev) != NULL &&
	    !SSL_is_init_finished(bufferevent_openssl_get_ssl(bev)))
		cnt.tls_failed++;
	sess_free(s);
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct sess *s = calloc(1, sizeof(*s));
	int one = 1;

	if (s == NULL)
		die("calloc");
	s->host = arg;
	s->fd = fd;
	s->out = evbuffer_new();
	s->delay_ev = evtimer_new(base, sess_delay_done, s);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->bev = bufferevent_socket_new(base, fd, 0);
	if (s->out == NULL || s->delay_ev == NULL || s->bev == NULL)
		die("session setup");
	cnt.sessions++;
	if (++cnt.open > cnt.open_peak)
		cnt.open_peak = cnt.open;
	sess_bev_setup(s);
	reply(s, "220 sink.bench ESMTP\r\n");
	sess_flush(s);
}

/* ------------------------------------------------------------ setup */

static SSL_CTX *
tls_ctx(const char *chain, const char *key)
{
	static const unsigned char sid_ctx[] = "bench-sink";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, chain) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    !SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1))
		die(chain);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 100000);
	return ctx;
}

static void
host_listen(struct host *h, const char *addr, int port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "sink: %s: only 127.0.0.0/8 addresses\n", addr);
		exit(1);
	}
	h->lev = evconnlistener_new_bind(base, on_accept, h,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (h->lev == NULL)
		die(addr);
}

static void
load_hosts(const char *path, int port)
{
	char line[2048], addr[64], chain[900], key[900];
	FILE *f = fopen(path, "r");
	struct host *h;
	int n = 0;

	if (f == NULL)
		die(path);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%63s %899s %899s", addr, chain, key) != 3)
			continue;
		if ((h = calloc(1, sizeof(*h))) == NULL)
			die("calloc");
		h->ctx = tls_ctx(chain, key);
		host_listen(h, addr, port);
		n++;
	}
	fclose(f);
	fprintf(stderr, "sink: %d listeners on port %d\n", n, port);
}

static void
raise_nofile(rlim_t want)
{
	struct rlimit rl;

	rl.rlim_cur = rl.rlim_max = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	fprintf(stderr, "sink: RLIMIT_NOFILE %lu\n", (unsigned long)rl.rlim_cur);
}

/* ------------------------------------------------------------ stats */

static void
stats_write(void)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "{\"time\": %.6f, \"sessions\": %lu, \"open\": %lu, "
		   "\"open_peak\": %lu, \"tls_full\": %lu, \"tls_resumed\": %lu, "
		   "\"tls_failed\": %lu, \"messages\": %lu, "
		   "\"messages_plain\": %lu, \"recipients\": %lu, \"bytes\": %lu, "
		   "\"first_msg\": %.6f, \"last_msg\": %.6f}\n",
	    now_real(), cnt.sessions, cnt.open, cnt.open_peak, cnt.tls_full,
	    cnt.tls_resumed, cnt.tls_failed, cnt.messages, cnt.messages_plain,
	    cnt.recipients, cnt.bytes, cnt.first_msg, cnt.last_msg);
	if (fclose(f) == 0)
		rename(tmp, stats_path);
}

static void
on_stats_timer(evutil_socket_t fd, short what, void *arg)
{
	stats_write();
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	unsigned long open = cnt.open;

	if (sig == SIGUSR2) {
		memset(&cnt, 0, sizeof(cnt));
		cnt.open = cnt.open_peak = open;
	} else if (sig != SIGUSR1) {
		stats_write();
		event_base_loopbreak(base);
		return;
	}
	stats_write();
}

static void
add_signal(int sig)
{
	struct event *ev = evsignal_new(base, sig, on_signal, NULL);

	if (ev == NULL || event_add(ev, NULL) == -1)
		die("evsignal");
}

static void
usage(void)
{
	fprintf(stderr, "usage: sink -H HOSTS -p PORT -s STATSFILE [-d MS] "
			"[-n NOFILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *hosts = NULL;
	struct timeval every = { 0, STATS_EVERY_US };
	struct event *tick;
	long port = 0, delay_ms = 0, nofile = 200000;
	int ch;

	while ((ch = getopt(argc, argv, "H:p:s:d:n:")) != -1) {
		switch (ch) {
		case 'H': hosts = optarg; break;
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 's': stats_path = optarg; break;
		case 'd': delay_ms = strtol(optarg, NULL, 10); break;
		case 'n': nofile = strtol(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (hosts == NULL || stats_path == NULL || port < 1024 || port > 65535)
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile((rlim_t)nofile);
	delay_on = delay_ms > 0;
	delay_tv.tv_sec = delay_ms / 1000;
	delay_tv.tv_usec = (delay_ms % 1000) * 1000;
	if ((base = event_base_new()) == NULL)
		die("event_base_new");
	load_hosts(hosts, (int)port);
	add_signal(SIGUSR1);
	add_signal(SIGUSR2);
	add_signal(SIGTERM);
	add_signal(SIGINT);
	tick = event_new(base, -1, EV_PERSIST, on_stats_timer, NULL);
	event_add(tick, &every);
	stats_write();
	event_base_dispatch(base);
	return 0;
}
