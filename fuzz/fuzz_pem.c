/*
 * fuzz_pem: the certificate and key loaders of tls_cert, and the chain
 * facts and TLSA data of whatever they accept. These read files an
 * administrator names and (for the facts) certificates a peer sends.
 * Seeds: fuzz/corpus/pem/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read every fact, so the sanitizers see any bad string or length. */
static void
fuzz_facts(const STACK_OF(X509) *sk)
{
	const struct tls_cert_facts *f;
	struct tls_chain *c;
	size_t i, j, sum = 0;

	c = tls_chain_from_certs(sk);
	for (i = 0; i < tls_chain_count(c); i++) {
		f = tls_chain_cert(c, i);
		sum += strlen(f->subject) + strlen(f->issuer) +
		    strlen(f->not_before) + strlen(f->not_after) +
		    strlen(f->sha256) + strlen(f->spki_sha512);
		for (j = 0; f->sans[j] != NULL; j++)
			sum += strlen(f->sans[j]);
	}
	tls_chain_free(c);
	if (sum == 1)
		abort(); /* keeps sum alive; one byte of text is impossible */
}

static void
fuzz_tlsa(X509 *x)
{
	const char *errstr;
	uint8_t *d;
	size_t n;
	int s, m;

	for (s = 0; s <= 1; s++) {
		for (m = 0; m <= 2; m++) {
			d = tls_tlsa_data_cert(x, s, m, &n, &errstr);
			free(d);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *errstr = NULL;
	STACK_OF(X509) *sk;
	EVP_PKEY *k;
	uint8_t *d;
	size_t n;
	int i;

	if ((sk = tls_load_certs_mem(data, size, &errstr)) != NULL) {
		fuzz_facts(sk);
		for (i = 0; i < sk_X509_num(sk); i++)
			fuzz_tlsa(sk_X509_value(sk, i));
		sk_X509_pop_free(sk, X509_free);
	} else if (errstr == NULL)
		abort(); /* a failure must say why */
	errstr = NULL;
	if ((k = tls_load_key_mem(data, size, &errstr)) != NULL) {
		d = tls_tlsa_data_key(k, 1, &n, &errstr);
		free(d);
		EVP_PKEY_free(k);
	} else if (errstr == NULL)
		abort();
	return 0;
}
