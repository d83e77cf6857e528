/*
 * conf_keys: the declaration table behind conf.h. Only conf.c and
 * conf_man.c (the man page) read it.
 */
#ifndef DR_CONF_KEYS_H
#define DR_CONF_KEYS_H

#include "conf/conf.h"

enum conf_type {
	CONF_T_STR,
	CONF_T_PATH,
	CONF_T_INT,
	CONF_T_BOOL,
	CONF_T_DURATION, /* "30", "30s", "5m", "1h", "2d" -> seconds */
	CONF_T_LIST,     /* comma/space separated */
};

struct conf_key_def {
	enum conf_key key;
	const char *section;
	const char *name;
	enum conf_type type;
	const char *def;    /* default in file syntax, NULL = unset */
	long long min, max; /* ints and durations */
	/* Extra check of a parsed value; NULL or a static error text. */
	const char *(*check)(const char *value);
	const char *help;
	/*
	 * CONF_RELOAD: SIGHUP applies it fully; CONF_RESTART: a change is
	 * named in a warning as needing a restart (relay_reload).
	 */
	bool reload;
};

#define CONF_RELOAD  true
#define CONF_RESTART false

extern const struct conf_key_def conf_keys[CONF_KEY_COUNT];

/* Keys of a [domain NAME] section; key is unused, the field offset says where.
 */
struct conf_domain_key_def {
	const char *name;
	size_t offset; /* of the char * in struct conf_domain */
	const char *(*check)(const char *value);
	const char *help;
};

extern const struct conf_domain_key_def conf_domain_keys[];
extern const size_t conf_domain_key_count;

#endif
