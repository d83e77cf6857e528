/*
 * log_sink: the three places a daemon's line can go, each written with one
 * system call so that lines of the delivery loop and of the console thread
 * never interleave.
 *
 * The syslog sink speaks to the syslog socket itself (a datagram in the
 * form glibc's syslog(3) sends, "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG")
 * rather than through syslog(3): the socket path can then be set ([log]
 * syslog_socket, e.g. a chroot's), tested, and a daemon that is not there
 * yet costs a fallback to stderr instead of lost lines.
 */
#include "core/log_sink.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_SINK_LINE 16384

static enum log_sink_kind sink_kind = LOG_SINK_PLAIN;
static int sink_facility = LOG_MAIL;
static char sink_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* The syslog socket: used under the mutex, as it may be reopened. */
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static int sink_fd = -1;
static time_t sink_retry; /* no new connect before this */

void
log_sink_set(enum log_sink_kind kind, int facility, const char *path)
{
	sink_kind = kind;
	sink_facility = facility;
	snprintf(sink_path, sizeof(sink_path), "%s",
	    path != NULL ? path : "/dev/log");
}

enum log_sink_kind
log_sink_kind(void)
{
	return sink_kind;
}

void
log_sink_timestamp(char *out, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char day[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03ldZ", day, ts.tv_nsec / 1000000L);
}

/*
 * systemd sets JOURNAL_STREAM=DEV:INO for a service whose stderr is
 * connected to the journal (systemd.exec(5)); a process whose stderr was
 * redirected since inherits the variable, so it only counts when the
 * numbers are those of our stderr.
 */
static int
log_sink_is_journal(const struct stat *st)
{
	const char *v = getenv("JOURNAL_STREAM"), *colon;
	char *end;
	unsigned long long dev, ino;

	if (v == NULL || (colon = strchr(v, ':')) == NULL)
		return 0;
	errno = 0;
	dev = strtoull(v, &end, 10);
	if (end != colon || errno != 0)
		return 0;
	ino = strtoull(colon + 1, &end, 10);
	if (*end != '\0' || errno != 0)
		return 0;
	return (unsigned long long)st->st_dev == dev &&
	    (unsigned long long)st->st_ino == ino;
}

enum log_sink_kind
log_sink_auto(void)
{
	struct stat st;

	if (fstat(STDERR_FILENO, &st) == -1)
		return LOG_SINK_SYSLOG; /* closed: nobody reads it */
	if (log_sink_is_journal(&st))
		return LOG_SINK_JOURNAL;
	if (isatty(STDERR_FILENO) || S_ISREG(st.st_mode) ||
	    S_ISFIFO(st.st_mode))
		return LOG_SINK_STDERR;
	/* /dev/null, another device, a socket: syslog keeps the lines. */
	return LOG_SINK_SYSLOG;
}

static void
log_sink_stderr(const char *line, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, line, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		line += n;
		len -= (size_t)n;
	}
}

/* Connect the syslog socket; -1 when it does not answer. Under sink_mu. */
static int
log_sink_connect(void)
{
	struct sockaddr_un sun;
	int fd;

	if (sink_fd != -1)
		return 0;
	if (time(NULL) < sink_retry)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sink_path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		sink_retry = time(NULL) + 1;
		return -1;
	}
	sink_fd = fd;
	return 0;
}

/* Send one datagram, reconnecting once (the daemon may have restarted). */
static int
log_sink_send(const char *line, size_t len)
{
	int tries, rc = -1;

	pthread_mutex_lock(&sink_mu);
	for (tries = 0; tries < 2 && rc == -1; tries++) {
		if (log_sink_connect() == -1)
			break;
		if (send(sink_fd, line, len, MSG_NOSIGNAL) != -1)
			rc = 0;
		else if (errno != EINTR) {
			close(sink_fd);
			sink_fd = -1;
		}
	}
	pthread_mutex_unlock(&sink_mu);
	return rc;
}

/* RFC 3164 §4.1: "<PRI>TIMESTAMP TAG[PID]: ", local time as syslog(3). */
static int
log_sink_syslog_head(char *out, size_t len, int prio)
{
	time_t now = time(NULL);
	struct tm tm;
	char when[32];

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%b %e %H:%M:%S", &tm);
	return snprintf(out, len,
	    "<%d>%s danerelay[%ld]: ", sink_facility | prio, when,
	    (long)getpid());
}

static size_t
log_sink_head(char *out, size_t len, enum log_sink_kind kind, int prio,
    const char *tag, int json)
{
	char ts[40];
	int n = 0;

	switch (kind) {
	case LOG_SINK_PLAIN:
		n = snprintf(out, len, "danerelay: ");
		break;
	case LOG_SINK_STDERR:
		if (json)
			return 0;
		log_sink_timestamp(ts, sizeof(ts));
		n = snprintf(out, len, "%s danerelay[%ld]: %s: ", ts,
		    (long)getpid(), tag);
		return (size_t)n;
	case LOG_SINK_JOURNAL:
		/* sd-daemon(3): "<N>" at the start of the line. */
		n = snprintf(out, len, "<%d>", prio);
		break;
	case LOG_SINK_SYSLOG:
		n = log_sink_syslog_head(out, len, prio);
		break;
	}
	/* The level is in the priority; the word stays for people. */
	if (!json && prio != LOG_INFO && n >= 0 && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, "%s: ", tag);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* The whole line for kind in line (LOG_SINK_LINE bytes), no newline. */
static size_t
log_sink_format(char *line, enum log_sink_kind kind, int prio, const char *tag,
    const char *body, int json)
{
	size_t n;

	n = log_sink_head(line, LOG_SINK_LINE, kind, prio, tag, json);
	n += (size_t)snprintf(line + n, LOG_SINK_LINE - n, "%s", body);
	/* Truncated: keep room for the newline. */
	return n < LOG_SINK_LINE - 1 ? n : LOG_SINK_LINE - 2;
}

void
log_sink_write(int prio, const char *tag, const char *body, int json)
{
	char line[LOG_SINK_LINE];
	size_t n;

	if (sink_kind == LOG_SINK_SYSLOG) {
		n = log_sink_format(
		    line, LOG_SINK_SYSLOG, prio, tag, body, json);
		if (log_sink_send(line, n) == 0)
			return;
		/* No syslog daemon: stderr, in its own form, loses nothing. */
		n = log_sink_format(
		    line, LOG_SINK_STDERR, prio, tag, body, json);
	} else
		n = log_sink_format(line, sink_kind, prio, tag, body, json);
	line[n++] = '\n';
	log_sink_stderr(line, n);
}
