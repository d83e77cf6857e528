/*
 * relay_local: what the daemon checks and holds on its own machine before
 * it serves: that it does not run as root by accident, that the files
 * holding queued mail and keys are private, that it is the only relay on
 * its queue, and the hand-over of the queue to [server] user without
 * following a link planted in a directory that user owns.
 */
#ifndef DR_RELAY_LOCAL_H
#define DR_RELAY_LOCAL_H

#include <sys/types.h>

struct conf;

/*
 * Refuse what must not run: root without [server] user unless [server]
 * allow_root, a queue directory or private key readable or writable by
 * group or others, a queue file that is a link (when root). Returns 0,
 * or -1 with *errstr (new; says how to fix it).
 */
int relay_local_check(const struct conf *c, char **errstr);

/*
 * Take the queue's exclusive lock (dir/serve.pid, created 0600 with the
 * directory if missing; holds our PID) for the life of the process.
 * Returns its descriptor, or -1 with *errstr (new) naming the PID of the
 * relay that holds it. The commands never take it.
 */
int relay_local_lock(const char *dir, char **errstr);

/*
 * Give dir and the relay's files in it to uid:gid. A file is changed by
 * name without following links (never opened: closing a descriptor would
 * drop the locks the relay holds on it), and only if it is a plain file
 * with one link: a link planted there cannot hand another file to the
 * user.
 */
void relay_local_chown(const char *dir, uid_t uid, gid_t gid);

#endif
