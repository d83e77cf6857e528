/*
 * server_authpool: password checks off the event loop.
 *
 * A scrypt check costs some 50-100 ms of CPU and 32 MiB by design; run on
 * the loop it stalls every session (four clients guessing passwords made
 * an unrelated NOOP wait 0.6 s). So the check runs on a small fixed pool
 * of worker threads fed by a bounded queue: the loop stays one thread
 * that owns every session, the workers touch nothing but their job (a
 * self-contained server_auth_try), and the number of threads and of
 * checks waiting is fixed, not per connection. A full queue is an answer
 * (the caller says 454), never a wait.
 *
 * Results come back to the loop through a pipe the loop watches: a worker
 * moves its finished job to the done list and writes one octet; the loop
 * empties the pipe, then takes the whole list, so no wake-up is lost.
 * Only the loop creates, cancels and frees jobs; a cancelled job is
 * skipped by the workers if not yet started, and its result is dropped.
 * The workers start at the first check, so a relay without AUTH has none.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "server/server_int.h"

struct server_authpool_job {
	struct server_auth_try *t; /* owned; freed when the job ends */
	bool ok;                   /* the verdict, set by the worker */
	bool cancelled;            /* written by the loop under mu */
	void (*done)(bool ok, void *arg);
	void *arg;
	struct server_authpool_job *next;
};

/* A singly linked FIFO of jobs. */
struct server_authpool_list {
	struct server_authpool_job *head, *tail;
};

struct server_authpool {
	struct event_base *base;
	unsigned nworkers, queue_max;
	pthread_t *threads;
	unsigned nthreads;  /* started */
	bool start_failed;  /* no worker: do not try at every AUTH */
	int pipe[2];        /* workers write [1], the loop reads [0] */
	struct event *wake; /* on pipe[0] */
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;  /* a job is waiting, or stopping */
	struct server_authpool_list waiting, done;
	unsigned nwaiting;
	bool stopping;
};

static void
server_authpool_push(
    struct server_authpool_list *l, struct server_authpool_job *j)
{
	j->next = NULL;
	if (l->tail != NULL)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct server_authpool_job *
server_authpool_pop(struct server_authpool_list *l)
{
	struct server_authpool_job *j = l->head;

	if (j != NULL && (l->head = j->next) == NULL)
		l->tail = NULL;
	return j;
}

static void
server_authpool_job_free(struct server_authpool_job *j)
{
	server_auth_try_free(j->t);
	free(j);
}

/* ---- the workers ---------------------------------------------------- */

static void *
server_authpool_worker(void *arg)
{
	struct server_authpool *p = arg;
	struct server_authpool_job *j;
	bool run;
	ssize_t n;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stopping && p->waiting.head == NULL)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;
		j = server_authpool_pop(&p->waiting);
		p->nwaiting--;
		run = !j->cancelled;
		pthread_mutex_unlock(&p->mu);
		/* The costly part, outside the lock, on j alone. */
		if (run)
			j->ok = server_auth_try_run(j->t);
		pthread_mutex_lock(&p->mu);
		server_authpool_push(&p->done, j);
		/* A full pipe already holds a wake-up: EAGAIN is fine. */
		n = write(p->pipe[1], "", 1);
		(void)n;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- the loop side -------------------------------------------------- */

/* Finished jobs: hand each verdict to its caller, unless cancelled. */
static void
server_authpool_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_authpool *p = arg;
	struct server_authpool_list done;
	struct server_authpool_job *j;
	char buf[64];

	/* Empty the pipe first: a job pushed after this writes again. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&p->mu);
	done = p->done;
	p->done.head = p->done.tail = NULL;
	pthread_mutex_unlock(&p->mu);
	while ((j = server_authpool_pop(&done)) != NULL) {
		if (!j->cancelled)
			j->done(j->ok, j->arg);
		server_authpool_job_free(j);
	}
}

/* Start the workers, with every signal blocked (the loop takes them). */
static void
server_authpool_start(struct server_authpool *p)
{
	sigset_t all, old;
	int err = 0;

	p->threads = xcalloc(p->nworkers, sizeof(*p->threads));
	if (pipe2(p->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("AUTH: cannot start the password workers: pipe");
		p->pipe[0] = p->pipe[1] = -1;
		p->start_failed = true;
		return;
	}
	p->wake = event_new(p->base, p->pipe[0], EV_READ | EV_PERSIST,
	    server_authpool_wake_cb, p);
	if (p->wake == NULL || event_add(p->wake, NULL) == -1)
		panic("server_authpool_start: out of memory");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (p->nthreads < p->nworkers &&
	    (err = pthread_create(&p->threads[p->nthreads], NULL,
	         server_authpool_worker, p)) == 0)
		p->nthreads++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nthreads < p->nworkers) {
		errno = err;
		log_warn("AUTH: started %u of %u password workers", p->nthreads,
		    p->nworkers);
	}
	if (p->nthreads == 0)
		p->start_failed = true;
}

struct server_authpool *
server_authpool_new(
    struct event_base *base, unsigned workers, unsigned queue_max)
{
	struct server_authpool *p = xcalloc(1, sizeof(*p));

	ASSERT(workers > 0 && queue_max > 0);
	p->base = base;
	p->nworkers = workers;
	p->queue_max = queue_max;
	p->pipe[0] = p->pipe[1] = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return p;
}

static void
server_authpool_drop(struct server_authpool_list *l)
{
	struct server_authpool_job *j;

	while ((j = server_authpool_pop(l)) != NULL)
		server_authpool_job_free(j);
}

void
server_authpool_free(struct server_authpool *p)
{
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	/* A worker finishes the check it is running (< 1 s), then exits. */
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	server_authpool_drop(&p->waiting);
	server_authpool_drop(&p->done);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	if (p->wake != NULL)
		event_free(p->wake);
	if (p->pipe[0] != -1) {
		close(p->pipe[0]);
		close(p->pipe[1]);
	}
	free(p);
}

struct server_authpool_job *
server_authpool_submit(struct server_authpool *p, struct server_auth_try *t,
    void (*done)(bool ok, void *arg), void *arg)
{
	struct server_authpool_job *j;

	if (p->threads == NULL)
		server_authpool_start(p);
	if (p->start_failed) {
		server_auth_try_free(t);
		return NULL;
	}
	pthread_mutex_lock(&p->mu);
	if (p->nwaiting >= p->queue_max) {
		pthread_mutex_unlock(&p->mu);
		server_auth_try_free(t);
		return NULL;
	}
	j = xcalloc(1, sizeof(*j));
	j->t = t;
	j->done = done;
	j->arg = arg;
	server_authpool_push(&p->waiting, j);
	p->nwaiting++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return j;
}

void
server_authpool_cancel(struct server_authpool *p, struct server_authpool_job *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	j->cancelled = true;
	pthread_mutex_unlock(&p->mu);
}
