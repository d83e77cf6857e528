/*
 * check_trace: the state of each CNAME link. libunbound validates a whole
 * answer, CNAMEs included, and reports one state for it; RFC 7672 §2.1.3
 * notes that a chain may start secure and turn insecure, and the report
 * shows where. Each CNAME owner seen in an answer is asked for its CNAME
 * RRset on its own.
 */
#include <stdlib.h>
#include <string.h>

#include "check/check_int.h"
#include "core/xmalloc.h"

struct check_trace_req {
	struct check_domain *d;
	size_t link;
};

static void
check_trace_done(struct dns_answer *a, void *arg)
{
	struct check_trace_req *req = arg;
	struct check_link *l = &req->d->links[req->link];
	struct check_domain *d = req->d;

	l->done = true;
	l->query = NULL;
	l->req = NULL;
	l->status = dns_answer_status(a);
	l->sec = dns_answer_sec(a);
	dns_answer_free(a);
	free(req);
	check_domain_unref(d);
}

void
check_trace_cnames(struct check_domain *d, const struct dns_answer *a)
{
	struct check_trace_req *req;
	const char *owner;
	size_t i;

	if (a == NULL || dns_answer_status(a) != DNS_OK)
		return;
	for (i = 0; i < dns_answer_cname_count(a); i++) {
		owner = dns_answer_cname_owner(a, i);
		if (check_trace_link(d, owner) != NULL ||
		    d->nlink == CHECK_MAX_LINKS)
			continue;
		d->links[d->nlink].owner = xstrdup(owner);
		req = xcalloc(1, sizeof(*req));
		req->d = d;
		req->link = d->nlink++;
		check_domain_ref(d);
		d->links[req->link].req = req;
		d->links[req->link].query = dns_query(check_domain_resolver(d),
		    owner, DNS_TYPE_CNAME, check_trace_done, req);
	}
}

const struct check_link *
check_trace_link(const struct check_domain *d, const char *owner)
{
	size_t i;

	for (i = 0; i < d->nlink; i++)
		if (strcmp(d->links[i].owner, owner) == 0)
			return &d->links[i];
	return NULL;
}

void
check_trace_free(struct check_domain *d)
{
	size_t i;

	for (i = 0; i < d->nlink; i++) {
		/* A run freed before its end (the console's time limit). */
		dns_query_cancel(d->links[i].query);
		free(d->links[i].req);
		free(d->links[i].owner);
	}
	d->nlink = 0;
}
