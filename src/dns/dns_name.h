/*
 * dns_name: helpers on presentation-format names shared inside the dns
 * module (dns_name_check() itself is declared in dns.h).
 */
#ifndef DR_DNS_NAME_H
#define DR_DNS_NAME_H

/*
 * The canonical spelling of a name that passed dns_name_check(): ASCII
 * lowercase, without the trailing dot, "." for the root. Returns new,
 * caller frees.
 */
char *dns_name_normalize(const char *name);

#endif
