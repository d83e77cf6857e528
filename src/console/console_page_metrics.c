/*
 * console_page_metrics: /metrics, the Prometheus text exposition format
 * 0.0.4 of the metrics registry, with the queue gauges counted now from
 * the console's own connection to the queue.
 */
#include <time.h>

#include "console/console_core.h"
#include "console/console_int.h"
#include "core/buf.h"
#include "metrics/metrics.h"
#include "queue/queue.h"

#define METRICS_MAX (4u << 20)

void console_page_metrics(struct console_req *r);

void
console_page_metrics(struct console_req *r)
{
	struct queue_counts qc;
	struct metrics_queue mq;
	struct buf out;

	if (queue_count_states(console_queue(r), time(NULL), &qc) == -1) {
		console_http_send(r, 500, "text/plain; charset=utf-8",
		    "queue unreadable\n", 17, "no-store");
		return;
	}
	mq.active = qc.active;
	mq.deferred = qc.deferred;
	mq.held = qc.held;
	buf_init(&out, METRICS_MAX);
	if (metrics_render(&out, &mq) == -1) {
		buf_free(&out);
		console_http_send(r, 500, "text/plain; charset=utf-8",
		    "metrics too large\n", 18, "no-store");
		return;
	}
	console_http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    buf_cstr(&out), out.len, "no-store");
	buf_free(&out);
}
