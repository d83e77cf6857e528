/*
 * relay_local: see relay_local.h. Loose means readable or writable by
 * group or others (docs/CONFIG.md): queued mail and keys are read by the
 * relay's own user only; execute-only on the directory is allowed.
 */
#include "relay/relay_local.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define LOCAL_LOOSE (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)
#define LOCAL_LOCK  "serve.pid"

/* The files the relay keeps in its queue directory. */
static const char *const local_files[] = { "queue.db", "queue.db-wal",
	"queue.db-shm", "mta-sts.db", "mta-sts.db-wal", "mta-sts.db-shm",
	"tlsrpt.db", "tlsrpt.db-wal", "tlsrpt.db-shm", LOCAL_LOCK };

static int
local_root(const struct conf *c, char **errstr)
{
	if (geteuid() != 0 || conf_str(c, CONF_SERVER_USER) != NULL ||
	    conf_bool(c, CONF_SERVER_ALLOW_ROOT))
		return 0;
	*errstr = conf_errorf(c, CONF_SERVER_USER,
	    "running as root without [server] user: set [server] user to an "
	    "unprivileged account for the relay, or [server] allow_root = yes "
	    "to run as root anyway");
	return -1;
}

static int
local_dir(const struct conf *c, const char *dir, char **errstr)
{
	struct stat sb;

	if (stat(dir, &sb) == -1 || (sb.st_mode & LOCAL_LOOSE) == 0)
		return 0; /* missing: created 0700 */
	*errstr = conf_errorf(c, CONF_QUEUE_DIRECTORY,
	    "queue directory %s is mode %04o: other local users could read "
	    "or change queued mail; run: chmod 700 %s",
	    dir, (unsigned)(sb.st_mode & 07777), dir);
	return -1;
}

/*
 * Started as root, SQLite opens these before we drop privileges, and we
 * give them to [server] user: a link planted by that user would hand root's
 * writes, or another file, to it. Not as a user: a link then reaches
 * nothing the user could not reach anyway.
 */
static int
local_files_plain(const char *dir, char **errstr)
{
	char path[4096];
	struct stat sb;
	size_t i;

	if (geteuid() != 0)
		return 0;
	for (i = 0; i < sizeof(local_files) / sizeof(local_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, local_files[i]);
		if (lstat(path, &sb) == -1)
			continue;
		if (S_ISREG(sb.st_mode) && sb.st_nlink == 1)
			continue;
		*errstr = xasprintf("%s is not a plain file of its own (a "
		                    "link, planted?); the relay will not "
		                    "open it: remove it",
		    path);
		return -1;
	}
	return 0;
}

static int
local_key(const struct conf *c, enum conf_key k, char **errstr)
{
	const char *path = conf_str(c, k);
	struct stat sb;

	if (path == NULL || stat(path, &sb) == -1 ||
	    (sb.st_mode & LOCAL_LOOSE) == 0)
		return 0; /* a missing file is reported where it is read */
	*errstr = conf_errorf(c, k,
	    "%s is mode %04o: other local users could read or change it; "
	    "run: chmod 600 %s",
	    path, (unsigned)(sb.st_mode & 07777), path);
	return -1;
}

int
relay_local_check(const struct conf *c, char **errstr)
{
	const char *dir = conf_str(c, CONF_QUEUE_DIRECTORY);

	if (local_root(c, errstr) == -1 || local_dir(c, dir, errstr) == -1 ||
	    local_files_plain(dir, errstr) == -1)
		return -1;
	if (local_key(c, CONF_SERVER_TLS_KEY, errstr) == -1 ||
	    local_key(c, CONF_DKIM_KEY_FILE, errstr) == -1)
		return -1;
	return local_key(c, CONF_SERVER_AUTH_FILE, errstr);
}

/* The PID that holds the lock on fd, or 0 if unknown. */
static long
local_holder(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char buf[32] = "";
	ssize_t n;

	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		return (long)fl.l_pid;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return strtol(buf, NULL, 10);
}

/*
 * Two relays on one queue would each deliver what the other has in
 * flight: a duplicate outside the RFC 5321 §6.1 window. A POSIX record
 * lock is released by the kernel when we exit, even by kill -9.
 */
int
relay_local_lock(const char *dir, char **errstr)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char path[4096];
	int fd;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		*errstr =
		    xasprintf("queue directory %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, LOCAL_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		*errstr = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fcntl(fd, F_SETLK, &fl) == -1) {
		*errstr =
		    xasprintf("queue %s is in use by another danerelay "
		              "serve (PID %ld, lock %s): stop it first, "
		              "or give this one another [queue] directory",
		        dir, local_holder(fd), path);
		close(fd);
		return -1;
	}
	if (ftruncate(fd, 0) == 0)
		dprintf(fd, "%ld\n", (long)getpid());
	return fd;
}

/*
 * By name, never by opening: the relay holds the queue, the stores and
 * the serve.pid lock open at this point, and closing any descriptor of a
 * file drops every POSIX lock the process holds on it (SQLite's and ours),
 * which would let a second relay in and let a command delete the WAL we
 * write to. AT_SYMLINK_NOFOLLOW: a planted link is never followed.
 */
static void
local_chown_one(
    int dfd, const char *dir, const char *name, uid_t uid, gid_t gid)
{
	struct stat sb;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno != ENOENT)
			log_warn(
			    "%s/%s: not given to the service user", dir, name);
		return;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1)
		log_warnx("%s/%s: not a plain file of its own; not given to "
		          "the service user",
		    dir, name);
	else if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) == -1)
		log_warn("chown %s/%s", dir, name);
}

void
relay_local_chown(const char *dir, uid_t uid, gid_t gid)
{
	size_t i;
	int dfd;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("%s", dir);
		return;
	}
	/* The files first: until the directory is the user's, nobody but
	 * root can swap an entry between our check and our chown. */
	for (i = 0; i < sizeof(local_files) / sizeof(local_files[0]); i++)
		local_chown_one(dfd, dir, local_files[i], uid, gid);
	if (fchown(dfd, uid, gid) == -1)
		log_warn("chown %s", dir);
	close(dfd);
}
