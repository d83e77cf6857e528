/*
 * t_sqlite.h: a probe of SQLite's locks from outside, for the stores'
 * tests. Whether another process could lock path for writing over the
 * readers' lock bytes (SQLite's file format: the 510 "shared" bytes after
 * the pending byte at 1 GiB), i.e. no connection of this process holds
 * its read lock at the operating system's level.
 */
#ifndef DR_T_SQLITE_H
#define DR_T_SQLITE_H

#include <fcntl.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

static bool
t_sqlite_read_lock_free(const char *path)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK,
			.l_whence = SEEK_SET,
			.l_start = 0x40000002,
			.l_len = 510 };
		int fd = open(path, O_RDWR);

		_exit(fd != -1 && fcntl(fd, F_SETLK, &fl) == 0 ? 0 : 1);
	}
	return pid != -1 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#endif
