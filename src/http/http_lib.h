/*
 * http_lib: libcurl, loaded the first time it is needed.
 *
 * libcurl as Debian builds it pulls in about twenty libraries (GnuTLS
 * through librtmp, Kerberos, LDAP, libssh2, nghttp2...). Mapped and
 * relocated at start they cost ~4 MiB of resident memory in every relay,
 * although HTTPS is used only for MTA-STS policies and TLS-RPT POSTs, a
 * few times a day per domain (docs/PERFORMANCE.md). The relay is linked
 * against libcurl's headers only; the first request dlopen()s
 * libcurl.so.4 (its stable ABI), looks up the functions below and runs
 * curl_global_init, once even when two threads ask (the console's and the
 * delivery loop's). The library then stays for the life of the process.
 */
#ifndef DR_HTTP_LIB_H
#define DR_HTTP_LIB_H

#include <curl/curl.h>

struct http_lib {
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	const char *(*easy_strerror)(CURLcode);
	void (*free)(void *);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
	CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLU *(*url)(void);
	void (*url_cleanup)(CURLU *);
	CURLUcode (*url_get)(const CURLU *, CURLUPart, char **, unsigned int);
	CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
};

/*
 * The loaded library, initialised; NULL with *errstr (static, or kept
 * for the life of the process) when it cannot be loaded. A failure is
 * remembered: later calls fail the same way without trying again.
 */
const struct http_lib *http_lib_get(const char **errstr);

#endif
