/*
 * qid: time-ordered queue ids (see qid.h).
 */
#include "core/qid.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <unistd.h>

static uint32_t qid_counter;
static int qid_seeded;

void
qid_make(time_t now, char out[QID_LEN])
{
	if (!qid_seeded) {
		if (getrandom(&qid_counter, sizeof(qid_counter), 0) !=
		    (ssize_t)sizeof(qid_counter))
			qid_counter = (uint32_t)getpid() * 2654435761u;
		qid_seeded = 1;
	}
	snprintf(out, QID_LEN, "%08x%08x", (uint32_t)now, qid_counter++);
}
