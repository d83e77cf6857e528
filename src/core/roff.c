/*
 * roff: see roff.h.
 */
#include "core/roff.h"

/* The code point of the UTF-8 sequence at *s; advances *s. */
static unsigned long
roff_utf8(const unsigned char **s)
{
	const unsigned char *p = *s;
	unsigned long cp;
	int more, i;

	/* A stray continuation octet stands for itself, as U+FFFD. */
	more = p[0] >= 0xf0 ? 3 : p[0] >= 0xe0 ? 2 : p[0] >= 0xc0 ? 1 : 0;
	cp = more == 0 ? 0xfffd : p[0] & (0x3fu >> more);
	for (i = 1; i <= more; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*s = p + i;
			return 0xfffd;
		}
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	*s = p + more + 1;
	return cp;
}

void
roff_puts(FILE *fp, const char *s, int at_line_start)
{
	const unsigned char *p = (const unsigned char *)s;

	if (at_line_start && (*p == '.' || *p == '\''))
		fputs("\\&", fp);
	while (*p != '\0') {
		if (*p >= 0x80) {
			fprintf(fp, "\\[u%04lX]", roff_utf8(&p));
			continue;
		}
		if (*p == '\\')
			fputs("\\e", fp);
		else if (*p == '-')
			fputs("\\-", fp);
		else
			fputc(*p, fp);
		p++;
	}
}
