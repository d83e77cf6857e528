/*
 * log_sink: where a finished log line goes (stderr, the journal's stream,
 * the syslog socket), with the prefix each of them expects. Only log.c
 * uses it.
 */
#ifndef DR_LOG_SINK_H
#define DR_LOG_SINK_H

#include <stddef.h>

enum log_sink_kind {
	LOG_SINK_PLAIN,   /* commands: "danerelay: [TAG: ]BODY" */
	LOG_SINK_STDERR,  /* "TIMESTAMP danerelay[PID]: TAG: BODY" */
	LOG_SINK_JOURNAL, /* "<N>[TAG: ]BODY" (sd-daemon(3)) */
	LOG_SINK_SYSLOG,  /* "<PRI>Mmm dd hh:mm:ss danerelay[PID]: ..." */
};

/*
 * Select the sink (before threads start). facility is the syslog(3)
 * LOG_* facility value, path the syslog socket (copied). For
 * LOG_SINK_SYSLOG a socket that does not answer yet is no error: lines
 * go to stderr until it does.
 */
void log_sink_set(enum log_sink_kind kind, int facility, const char *path);

enum log_sink_kind log_sink_kind(void);

/*
 * Write one line: prio is the syslog severity (LOG_CRIT ... LOG_DEBUG),
 * tag the level word ("warning"), json whether body is a JSON object
 * (then no prefix that would break it is added on stderr).
 */
void log_sink_write(int prio, const char *tag, const char *body, int json);

/* "YYYY-MM-DDThh:mm:ss.mmmZ" of now into out (at least 32 bytes). */
void log_sink_timestamp(char *out, size_t len);

/*
 * Which sink target auto means for the stderr we have: journal, stderr
 * (terminal, file, pipe) or syslog.
 */
enum log_sink_kind log_sink_auto(void);

#endif
