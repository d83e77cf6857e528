/*
 * cmd_passwd: hash a password for [server] auth_file (docs/SERVER.md).
 *
 *   danerelay passwd [USER]
 *
 * The password is read from standard input: from a terminal without
 * echo and asked twice, else the first line (so scripts can pipe it in).
 * Prints "USER:HASH", a line for the auth_file, or the hash alone without
 * USER. The hash is scrypt by OpenSSL (server_auth_hash()).
 *
 * Exit: 0, EX_USAGE (arguments, bad user name), EX_DATAERR (empty or
 * overlong password, the two entries differ), EX_IOERR (nothing to read),
 * EX_SOFTWARE (OpenSSL failed).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "server/server.h"

/* As server_auth.c takes them: a SASL password of at most 1024 octets. */
#define PASSWD_MAX  1024
#define PASSWD_USER 255

/* A user name the auth_file can hold: no ':', space or control bytes. */
static bool
passwd_user_ok(const char *u)
{
	size_t i, n = strlen(u);

	if (n == 0 || n > PASSWD_USER)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f || u[i] == ':')
			return false;
	return true;
}

/*
 * One line from stdin into buf (size PASSWD_MAX + 2), without its line
 * end, echo off when stdin is a terminal. Returns 0, -1 at EOF, -2 when
 * the line is too long.
 */
static int
passwd_read(const char *prompt, char *buf, size_t len)
{
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char *ok;
	size_t n;

	if (tty) {
		fputs(prompt, stderr);
		noecho = old;
		noecho.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
	}
	ok = fgets(buf, (int)len, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (ok == NULL)
		return -1;
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == len - 1)
		return -2;
	buf[n] = '\0';
	return 0;
}

/* The password, asked twice on a terminal. Returns 0 or an exit code. */
static int
passwd_get(char *pw, char *again, size_t len)
{
	int rc;

	if ((rc = passwd_read("Password: ", pw, len)) == -1) {
		fprintf(stderr, "danerelay passwd: no password on stdin\n");
		return EX_IOERR;
	}
	if (rc == -2 || strlen(pw) > PASSWD_MAX || pw[0] == '\0') {
		fprintf(stderr,
		    "danerelay passwd: the password must have "
		    "1 to %d octets\n",
		    PASSWD_MAX);
		return EX_DATAERR;
	}
	if (!isatty(STDIN_FILENO))
		return 0;
	if (passwd_read("Again: ", again, len) != 0 || strcmp(pw, again) != 0) {
		fprintf(stderr, "danerelay passwd: the passwords differ\n");
		return EX_DATAERR;
	}
	return 0;
}

int
cmd_passwd(int argc, char **argv, struct cli_ctx *ctx)
{
	char pw[PASSWD_MAX + 2], again[PASSWD_MAX + 2], *hash;
	const char *user = argc == 2 ? argv[1] : NULL;
	int rc;

	if (argc > 2 || (user != NULL && user[0] == '-'))
		return cli_usage("passwd");
	if (user != NULL && !passwd_user_ok(user)) {
		fprintf(stderr,
		    "danerelay passwd: %s: a user name has no ':', "
		    "spaces or control characters\n",
		    user);
		return EX_USAGE;
	}
	rc = passwd_get(pw, again, sizeof(pw));
	hash = rc == 0 ? server_auth_hash(pw) : NULL;
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(again, sizeof(again));
	if (rc != 0)
		return rc;
	if (hash == NULL) {
		fprintf(stderr, "danerelay passwd: hashing failed (OpenSSL)\n");
		return EX_SOFTWARE;
	}
	if (user != NULL)
		printf("%s:%s\n", user, hash);
	else
		printf("%s\n", hash);
	free(hash);
	return 0;
}
