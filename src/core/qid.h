/*
 * qid: queue ids. 16 lowercase hex digits: the time in seconds (8), then
 * a counter shared by the whole process (8) that starts at a random
 * value and goes up by one for each id.
 *
 * Time first, so that ids of mail queued one after the other sort
 * together: the queue's B-tree indexes keyed by id (messages, their
 * recipients and trace events) grow at their right edge and a drain reads
 * neighbouring pages, instead of touching a random page of every index
 * for each message. With random ids the cost per message grew with the
 * queue (a 50,000-message drain: +19% time, +30% CPU per message against
 * 2,000); with these it does not (docs/PERFORMANCE.md).
 *
 * Unique within a process (the counter would have to wrap within one
 * second); between processes in the same second a collision needs the
 * two random starts to meet, and the queue draws again if one happens.
 * Ids are names, not secrets.
 */
#ifndef DR_QID_H
#define DR_QID_H

#include <time.h>

#define QID_LEN 17 /* 16 hex digits + NUL */

void qid_make(time_t now, char out[QID_LEN]);

#endif
