/*
 * policy: per-destination security policy from the configuration.
 */
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "core/str.h"
#include "core/xmalloc.h"

struct policy_entry {
	char *domain;
	struct policy_dest dest;
	char *route_host;
	char *exception;
};

struct policy {
	struct policy_dest def;
	char *relayhost; /* [delivery] relayhost's host, or NULL */
	struct policy_entry *entries;
	size_t n;
};

static enum policy_security
policy_security_parse(const char *s)
{
	if (strcmp(s, "dane-only") == 0)
		return POLICY_DANE_ONLY;
	if (strcmp(s, "encrypt") == 0)
		return POLICY_ENCRYPT;
	if (strcmp(s, "may") == 0)
		return POLICY_MAY;
	return POLICY_DANE;
}

const char *
policy_security_str(enum policy_security s)
{
	switch (s) {
	case POLICY_DANE:
		return "dane";
	case POLICY_DANE_ONLY:
		return "dane-only";
	case POLICY_ENCRYPT:
		return "encrypt";
	case POLICY_MAY:
		return "may";
	}
	return "?";
}

/*
 * "[host]:port" -> host, no MX lookup; "host:port" -> MX lookup of host
 * (RFC 7672 §2.2.2: the route's own DNS and TLSA records secure the hop).
 * Returns the host (new, caller frees) and sets dest's route and port.
 */
static char *
policy_route_parse(struct policy_dest *dest, const char *route)
{
	const char *p = route, *end;
	uint64_t port;
	char *host;

	dest->route_mx = *p != '[';
	if (*p == '[') {
		end = strchr(p, ']');
		host = xstrndup(p + 1, (size_t)(end - p - 1));
		p = end + 1;
	} else {
		end = strchr(p, ':');
		host =
		    end != NULL ? xstrndup(p, (size_t)(end - p)) : xstrdup(p);
		p = end != NULL ? end : p + strlen(p);
	}
	str_lower(host);
	/* The config table validated the syntax already. */
	if (*p == ':' && str_to_uint(p + 1, 1, 65535, &port) == 0)
		dest->port = (uint16_t)port;
	dest->route_host = host;
	return host;
}

struct policy *
policy_new(const struct conf *c)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	size_t i;

	p->def.security =
	    policy_security_parse(conf_str(c, CONF_POLICY_SECURITY));
	p->def.log_only =
	    strcmp(conf_str(c, CONF_POLICY_MODE), "log-only") == 0;
	p->def.log_only_cleartext =
	    conf_bool(c, CONF_POLICY_LOG_ONLY_CLEARTEXT);
	p->def.port = (uint16_t)conf_int(c, CONF_DELIVERY_PORT);
	/* The smarthost: every domain's route unless its section has one. */
	if (conf_str(c, CONF_DELIVERY_RELAYHOST) != NULL)
		p->relayhost = policy_route_parse(
		    &p->def, conf_str(c, CONF_DELIVERY_RELAYHOST));
	p->n = conf_domain_count(c);
	p->entries = xcalloc(p->n, sizeof(*p->entries));
	for (i = 0; i < p->n; i++) {
		const struct conf_domain *d = conf_domain_at(c, i);
		struct policy_entry *e = &p->entries[i];

		e->domain = xstrdup(d->name);
		e->dest = p->def;
		if (d->security != NULL)
			e->dest.security = policy_security_parse(d->security);
		if (d->mode != NULL)
			e->dest.log_only = strcmp(d->mode, "log-only") == 0;
		if (d->route != NULL) {
			/* The domain's own port, not the relayhost's. */
			e->dest.port =
			    (uint16_t)conf_int(c, CONF_DELIVERY_PORT);
			e->dest.route_host = NULL;
			e->dest.route_mx = false;
			/* "direct": its own MX, past the relayhost. */
			if (strcmp(d->route, "direct") != 0)
				e->route_host =
				    policy_route_parse(&e->dest, d->route);
		}
		if (d->exception != NULL) {
			/* An exception relaxes to "may" unless said otherwise.
			 */
			e->exception = xstrdup(d->exception);
			e->dest.exception = e->exception;
			if (d->security == NULL)
				e->dest.security = POLICY_MAY;
		}
	}
	return p;
}

void
policy_free(struct policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		free(p->entries[i].domain);
		free(p->entries[i].route_host);
		free(p->entries[i].exception);
	}
	free(p->entries);
	free(p->relayhost);
	free(p);
}

void
policy_for(const struct policy *p, const char *domain, struct policy_dest *out)
{
	size_t i, len = strlen(domain);

	/* Names compare without case and without a trailing dot (the
	 * sections are stored lowercase, without it: conf.c). */
	if (len > 1 && domain[len - 1] == '.')
		len--;
	for (i = 0; i < p->n; i++) {
		if (strlen(p->entries[i].domain) == len &&
		    strncasecmp(p->entries[i].domain, domain, len) == 0) {
			*out = p->entries[i].dest;
			return;
		}
	}
	*out = p->def;
}
