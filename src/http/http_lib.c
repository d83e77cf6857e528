/*
 * http_lib: dlopen() of libcurl on first use (see http_lib.h for why).
 */
#include "http/http_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#define HTTP_LIB_SONAME "libcurl.so.4"

/* Each slot of struct http_lib and the symbol that fills it. */
static const struct {
	const char *sym;
	size_t off;
} http_lib_syms[] = {
	{ "curl_easy_init", offsetof(struct http_lib, easy_init) },
	{ "curl_easy_cleanup", offsetof(struct http_lib, easy_cleanup) },
	{ "curl_easy_setopt", offsetof(struct http_lib, easy_setopt) },
	{ "curl_easy_getinfo", offsetof(struct http_lib, easy_getinfo) },
	{ "curl_easy_strerror", offsetof(struct http_lib, easy_strerror) },
	{ "curl_free", offsetof(struct http_lib, free) },
	{ "curl_multi_init", offsetof(struct http_lib, multi_init) },
	{ "curl_multi_cleanup", offsetof(struct http_lib, multi_cleanup) },
	{ "curl_multi_add_handle",
	    offsetof(struct http_lib, multi_add_handle) },
	{ "curl_multi_remove_handle",
	    offsetof(struct http_lib, multi_remove_handle) },
	{ "curl_multi_setopt", offsetof(struct http_lib, multi_setopt) },
	{ "curl_multi_socket_action",
	    offsetof(struct http_lib, multi_socket_action) },
	{ "curl_multi_info_read", offsetof(struct http_lib, multi_info_read) },
	{ "curl_multi_assign", offsetof(struct http_lib, multi_assign) },
	{ "curl_slist_append", offsetof(struct http_lib, slist_append) },
	{ "curl_slist_free_all", offsetof(struct http_lib, slist_free_all) },
	{ "curl_url", offsetof(struct http_lib, url) },
	{ "curl_url_cleanup", offsetof(struct http_lib, url_cleanup) },
	{ "curl_url_get", offsetof(struct http_lib, url_get) },
	{ "curl_url_set", offsetof(struct http_lib, url_set) },
};

static struct http_lib http_lib;
static enum { HTTP_LIB_NONE, HTTP_LIB_OK, HTTP_LIB_FAILED } http_lib_state;
static char http_lib_err[256];

static int
http_lib_load(void)
{
	CURLcode (*global_init)(long);
	void *h, *p;
	size_t i;

	if ((h = dlopen(HTTP_LIB_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(http_lib_err, sizeof(http_lib_err),
		    "cannot load %s: %s", HTTP_LIB_SONAME, dlerror());
		return -1;
	}
	for (i = 0; i < sizeof(http_lib_syms) / sizeof(http_lib_syms[0]); i++) {
		if ((p = dlsym(h, http_lib_syms[i].sym)) == NULL) {
			snprintf(http_lib_err, sizeof(http_lib_err),
			    "%s has no %s", HTTP_LIB_SONAME,
			    http_lib_syms[i].sym);
			return -1; /* h stays: dlclose buys nothing here */
		}
		/* POSIX: a function pointer converts through void *. */
		*(void **)((char *)&http_lib + http_lib_syms[i].off) = p;
	}
	*(void **)&global_init = dlsym(h, "curl_global_init");
	if (global_init == NULL || global_init(CURL_GLOBAL_DEFAULT) != 0) {
		snprintf(http_lib_err, sizeof(http_lib_err),
		    "libcurl cannot initialise");
		return -1;
	}
	return 0;
}

static void
http_lib_once(void)
{
	http_lib_state = http_lib_load() == 0 ? HTTP_LIB_OK : HTTP_LIB_FAILED;
}

const struct http_lib *
http_lib_get(const char **errstr)
{
	/* The console's thread fetches MTA-STS policies for /check while the
	 * delivery loop fetches its own: load and curl_global_init once. */
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, http_lib_once);
	if (http_lib_state == HTTP_LIB_FAILED) {
		*errstr = http_lib_err;
		return NULL;
	}
	return &http_lib;
}
