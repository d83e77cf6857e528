/*
 * tlsrpt_sent: the days of sent reports as JSON, from the store's own
 * interfaces. The counts are taken from the report as it is (or would be)
 * sent, so they are what the receiver reads, per policy.
 */
#include "tlsrpt/tlsrpt_sent.h"

#include <stdlib.h>
#include <string.h>

#include "tlsrpt/tlsrpt.h"

/* Per policy of the report: type and counts; the domain's totals. A
 * domain's sessions are recorded under one applied policy each, so its
 * totals add up (unlike a received report's, see tlsrpt_inbox.h). */
static void
sent_counts(
    struct tlsrpt_store *s, const char *domain, const char *day, json_t *dom)
{
	char *text = tlsrpt_report_build(s, domain, day, "-", "-", "-");
	json_t *rep = text != NULL ? json_loads(text, 0, NULL) : NULL;
	json_t *pols = json_array(), *p, *sum;
	json_int_t ok = 0, bad = 0, a, b;
	size_t i;

	json_array_foreach(json_object_get(rep, "policies"), i, p)
	{
		sum = json_object_get(p, "summary");
		a = json_integer_value(
		    json_object_get(sum, "total-successful-session-count"));
		b = json_integer_value(
		    json_object_get(sum, "total-failure-session-count"));
		ok += a;
		bad += b;
		json_array_append_new(pols,
		    json_pack("{s:O*, s:I, s:I}", "policy-type",
		        json_object_get(
		            json_object_get(p, "policy"), "policy-type"),
		        "successful", a, "failed", b));
	}
	json_object_set_new(dom, "successful", json_integer(ok));
	json_object_set_new(dom, "failed", json_integer(bad));
	json_object_set_new(dom, "policies", pols);
	json_decref(rep);
	free(text);
}

static json_t *
sent_domain(json_t *doms, json_t *index, const char *domain)
{
	json_t *d = json_object_get(index, domain);

	if (d == NULL) {
		d = json_pack("{s:s, s:I, s:I, s:[], s:b, s:[]}", "domain",
		    domain, "successful", (json_int_t)0, "failed",
		    (json_int_t)0, "policies", "done", 0, "destinations");
		json_array_append_new(doms, d);
		json_object_set(index, domain, d);
	}
	return d;
}

struct sent_ctx {
	json_t *doms;
	json_t *index;
};

static void
sent_out(const struct tlsrpt_out *o, void *arg)
{
	struct sent_ctx *c = arg;
	json_t *d = sent_domain(c->doms, c->index, o->domain);

	json_array_append_new(json_object_get(d, "destinations"),
	    json_pack("{s:s, s:s, s:i, s:I, s:s, s:s?}", "uri", o->uri, "state",
	        o->state == TLSRPT_OUT_DONE ? "sent" :
	                                      tlsrpt_out_state_str(o->state),
	        "attempts", o->attempts, "first-attempt",
	        (json_int_t)o->first_attempt, "note",
	        o->note != NULL ? o->note : "", "report-id", o->report_id));
}

/* One day: its domains with counts, then the outbox entries. */
static json_t *
sent_day(struct tlsrpt_store *s, const char *day)
{
	struct sent_ctx c = { json_array(), json_object() };
	json_t *d;
	char **doms;
	size_t i, n = 0;

	if ((doms = tlsrpt_store_domains(s, day, &n)) == NULL) {
		json_decref(c.doms);
		json_decref(c.index);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		d = sent_domain(c.doms, c.index, doms[i]);
		sent_counts(s, doms[i], day, d);
	}
	tlsrpt_strv_free(doms);
	if (tlsrpt_outbox_list(s, day, sent_out, &c) == -1) {
		json_decref(c.doms);
		json_decref(c.index);
		return NULL;
	}
	json_array_foreach(c.doms, i, d) json_object_set_new(d, "done",
	    json_boolean(tlsrpt_store_sent(
	        s, json_string_value(json_object_get(d, "domain")), day)));
	json_decref(c.index);
	return json_pack("{s:s, s:o}", "day", day, "domains", c.doms);
}

json_t *
tlsrpt_sent_days(struct tlsrpt_store *s, time_t now, int ndays)
{
	char day[TLSRPT_DAY_LEN];
	json_t *out = json_array(), *d;
	int i;

	for (i = 0; i < ndays; i++) {
		if (tlsrpt_day(now - (time_t)i * 86400, day) == -1 ||
		    (d = sent_day(s, day)) == NULL) {
			json_decref(out);
			return NULL;
		}
		json_array_append_new(out, d);
	}
	return out;
}
