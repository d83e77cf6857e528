/*
 * roff: text for man(7) pages. The man pages are printed from the tables
 * that drive the program (commands, configuration keys), so their text
 * must be escaped the way groff wants it.
 */
#ifndef DR_CORE_ROFF_H
#define DR_CORE_ROFF_H

#include <stdio.h>

/*
 * Write s (UTF-8) to fp as roff text: '\' as \e, '-' as \- (so that
 * options can be copied and searched), a '.' or '\'' that would start a
 * request line guarded with \&, other than ASCII as \[uXXXX]. s starts
 * a line when at_line_start; it holds no newline.
 */
void roff_puts(FILE *fp, const char *s, int at_line_start);

#endif
