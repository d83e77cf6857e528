/*
 * cmd_serve: `danerelay serve`, the relay daemon, in the foreground; logs
 * go where [log] target says (journal, stderr, syslog: core/log.h). SIGHUP
 * reloads the configuration and the certificates; SIGTERM and SIGINT stop
 * accepting, let sessions and deliveries finish (each bounded by its timeouts)
 * and exit with the queue intact.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "relay/relay.h"

struct serve {
	struct event_base *base;
	struct relay *relay;
	int stopping;
	int reload;
};

static void
serve_stopped(void *arg)
{
	struct serve *s = arg;

	event_base_loopexit(s->base, NULL);
}

static void
serve_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct serve *s = arg;

	if (sig == SIGHUP) {
		/*
		 * The reload runs the DANE guard, which waits for DNS on this
		 * loop: do it after the loop returns, not inside a callback.
		 */
		s->reload = 1;
		event_base_loopbreak(s->base);
		return;
	}
	if (s->stopping++ > 0) {
		log_warnx("second stop signal: exiting now");
		event_base_loopexit(s->base, NULL);
		return;
	}
	relay_shutdown(s->relay, serve_stopped, s);
}

/*
 * A daemon started with stdin, stdout or stderr closed would hand those
 * numbers to the next open(): the queue database could then receive log
 * lines. Hold them with /dev/null (log_configure() sees the closed stderr
 * first, and picks syslog for it).
 */
static void
serve_std_fds(void)
{
	int fd;

	do
		fd = open("/dev/null", O_RDWR);
	while (fd >= 0 && fd <= STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

int
cmd_serve(int argc, char **argv, struct cli_ctx *ctx)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT };
	struct event *ev[3];
	struct serve s = { 0 };
	const char *lerr;
	char *err = NULL;
	int ex = 0;
	size_t i;

	if (argc != 1)
		return cli_usage("serve");
	/*
	 * The daemon's logging (timestamps, the journal, syslog) from the
	 * first line: the configuration's [log] applies once it is read.
	 */
	if (log_configure(&(struct log_config){ 0 }, &lerr) == -1)
		panic("log: %s", lerr);
	serve_std_fds();
	if ((s.base = event_base_new()) == NULL)
		fatalx(EX_OSERR, "cannot create the event loop");
	/*
	 * A reload asked for while we start (the listeners are up before the
	 * signal events) is moot: the configuration is being read now. Its
	 * default action would kill the relay.
	 */
	signal(SIGHUP, SIG_IGN);
	/* Everything the relay creates holds mail or keys: 0600, 0700. */
	umask(077);
	if ((s.relay = relay_new(s.base, ctx->config_path, &err, &ex)) ==
	    NULL) {
		log_warnx("cannot start: %s", err);
		free(err);
		event_base_free(s.base);
		return ex;
	}
	for (i = 0; i < 3; i++) {
		ev[i] = evsignal_new(s.base, sigs[i], serve_signal, &s);
		evsignal_add(ev[i], NULL);
	}
	for (;;) {
		event_base_dispatch(s.base);
		if (!s.reload || s.stopping)
			break;
		s.reload = 0;
		if (relay_reload(s.relay, &err) == -1) {
			log_warnx("reload refused: %s", err);
			free(err);
			err = NULL;
		}
	}
	for (i = 0; i < 3; i++)
		event_free(ev[i]);
	relay_free(s.relay);
	event_base_free(s.base);
	log_info("stopped");
	return 0;
}
