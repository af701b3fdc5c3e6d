/* Parsers for single config values. They follow supervisord's datatypes.py
 * where drover reads the same keys (booleans, byte sizes, signals, exit
 * codes, environment lists) and accept a little more where that costs nothing
 * (fractional seconds, SIG prefixes in any case). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

int conf_parse_bool(const char *s, bool *out)
{
	static const char *const truthy[] = {"true", "yes", "on", "1"};
	static const char *const falsy[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(truthy) / sizeof(truthy[0]); i++) {
		if (strcasecmp(s, truthy[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, falsy[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static const struct {
	const char *name;
	int sig;
} signal_names[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},   {"IOT", SIGIOT},   {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CLD", SIGCHLD},  {"CONT", SIGCONT},
    {"STOP", SIGSTOP},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
    {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF},     {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"POLL", SIGPOLL},
    {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

/* Real-time signals are named relative to SIGRTMIN, which glibc decides at
 * run time, so the names are a table of offsets. */
static const char *const rt_names[] = {
    "RTMIN",    "RTMIN+1",  "RTMIN+2",  "RTMIN+3",  "RTMIN+4",  "RTMIN+5",  "RTMIN+6",
    "RTMIN+7",  "RTMIN+8",  "RTMIN+9",  "RTMIN+10", "RTMIN+11", "RTMIN+12", "RTMIN+13",
    "RTMIN+14", "RTMIN+15", "RTMIN+16", "RTMIN+17", "RTMIN+18", "RTMIN+19", "RTMIN+20",
    "RTMIN+21", "RTMIN+22", "RTMIN+23", "RTMIN+24", "RTMIN+25", "RTMIN+26", "RTMIN+27",
    "RTMIN+28", "RTMIN+29", "RTMIN+30", "RTMIN+31", "RTMIN+32",
};

const char *conf_signal_name(int sig)
{
	for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	}
	if (sig >= SIGRTMIN && sig <= SIGRTMAX &&
	    (size_t)(sig - SIGRTMIN) < sizeof(rt_names) / sizeof(rt_names[0]))
		return rt_names[sig - SIGRTMIN];
	return NULL;
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
	}
	return true;
}

int conf_parse_signal(const char *s, int *out)
{
	if (all_digits(s)) {
		long long n;
		if (cfg_parse_int(s, 1, SIGRTMAX, &n) < 0)
			return -1;
		*out = (int)n;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
		if (strcasecmp(s, signal_names[i].name) == 0) {
			*out = signal_names[i].sig;
			return 0;
		}
	}
	bool min = strncasecmp(s, "RTMIN", 5) == 0;
	if (!min && strncasecmp(s, "RTMAX", 5) != 0)
		return -1;
	long long off = 0;
	const char *rest = s + 5;
	if (*rest != '\0') {
		if (*rest != (min ? '+' : '-') || !all_digits(rest + 1) ||
		    cfg_parse_int(rest + 1, 0, SIGRTMAX - SIGRTMIN, &off) < 0)
			return -1;
	}
	*out = min ? SIGRTMIN + (int)off : SIGRTMAX - (int)off;
	return 0;
}

int conf_parse_size(const char *s, long long *out)
{
	static const struct {
		const char *suffix;
		long long mult;
	} units[] = {{"kb", 1024LL}, {"mb", 1024LL * 1024}, {"gb", 1024LL * 1024 * 1024}};
	size_t len = strlen(s);
	long long mult = 1;

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (len >= 2 && strcasecmp(s + len - 2, units[i].suffix) == 0) {
			mult = units[i].mult;
			len -= 2;
			break;
		}
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	char *num = cfg_xstrndup(s, len);
	long long n;
	int rc = all_digits(num) ? cfg_parse_int(num, 0, LLONG_MAX / mult, &n) : -1;
	free(num);
	if (rc < 0)
		return -1;
	*out = n * mult;
	return 0;
}

int cfg_parse_int(const char *s, long long min, long long max, long long *out)
{
	const char *p = s;
	char *end;

	if (*p == '+' || *p == '-')
		p++;
	if (!all_digits(p))
		return -1;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

int cfg_parse_seconds(const char *s, double *out)
{
	size_t len = strlen(s);
	double mult = 1;

	if (len > 0 && (s[len - 1] == 's' || s[len - 1] == 'm')) {
		mult = s[len - 1] == 'm' ? 60 : 1;
		len--;
	}
	/* strtod alone would take "inf", "1e9" and hex; seconds are plain. */
	size_t digits = 0, dots = 0;
	for (size_t i = 0; i < len; i++) {
		if (isdigit((unsigned char)s[i]))
			digits++;
		else if (s[i] == '.')
			dots++;
		else
			return -1;
	}
	if (digits == 0 || dots > 1)
		return -1;
	char *num = cfg_xstrndup(s, len);
	double v = strtod(num, NULL) * mult;
	free(num);
	if (v > 1e9)
		return -1;
	*out = v;
	return 0;
}

int cfg_parse_octal(const char *s, long max, long *out)
{
	long v = 0;

	if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
		s += 2;
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (*s - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

int cfg_parse_autorestart(const char *s, enum autorestart *out)
{
	bool b;

	if (strcasecmp(s, "unexpected") == 0) {
		*out = AUTORESTART_UNEXPECTED;
		return 0;
	}
	if (conf_parse_bool(s, &b) < 0)
		return -1;
	*out = b ? AUTORESTART_TRUE : AUTORESTART_FALSE;
	return 0;
}

int cfg_parse_exitcodes(const char *s, unsigned char set[256 / 8])
{
	unsigned char tmp[256 / 8] = {0};
	const char *p = s;

	/* An empty list is valid, as in supervisord: no exit is expected. */
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		while (n > 0 && isspace((unsigned char)*p)) {
			p++;
			n--;
		}
		while (n > 0 && isspace((unsigned char)p[n - 1]))
			n--;
		char *item = cfg_xstrndup(p, n);
		long long code;
		int rc = cfg_parse_int(item, 0, 255, &code);
		free(item);
		if (rc < 0)
			return -1;
		tmp[code / 8] |= (unsigned char)(1u << (code % 8));
		if (comma == NULL)
			break;
		p = comma + 1;
		if (*p == '\0')
			return -1; /* "0," */
	}
	memcpy(set, tmp, sizeof(tmp));
	return 0;
}

int cfg_parse_fatal_after(const char *s, int *count, double *window)
{
	const char *slash = strchr(s, '/');
	long long n;
	double w = 0;

	char *head = slash ? cfg_xstrndup(s, (size_t)(slash - s)) : cfg_xstrdup(s);
	int rc = cfg_parse_int(head, 0, 1000000, &n);
	free(head);
	if (rc < 0)
		return -1;
	if (slash == NULL) {
		if (n != 0)
			return -1; /* a count needs a window */
	} else if (cfg_parse_seconds(slash + 1, &w) < 0 || (n > 0 && w <= 0)) {
		return -1;
	}
	*count = (int)n;
	*window = n == 0 ? 0 : w;
	return 0;
}

static size_t env_key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

void cfg_env_set(char ***env, size_t *n, const char *kv)
{
	size_t klen = env_key_len(kv);
	char **v = *env;

	for (size_t i = 0; i < *n; i++) {
		if (env_key_len(v[i]) == klen && strncmp(v[i], kv, klen) == 0) {
			free(v[i]);
			memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
			(*n)--;
			break;
		}
	}
	v = cfg_xrealloc(v, (*n + 2) * sizeof(*v));
	v[(*n)++] = cfg_xstrdup(kv);
	v[*n] = NULL;
	*env = v;
}

/* Characters of an environment key: shlex's word characters as supervisord
 * configures them (alphanumerics, '_' and "/.+-():"). */
static bool env_key_char(char c)
{
	return isalnum((unsigned char)c) || strchr("_/.+-():", c) != NULL;
}

static const char *skip_space(const char *p)
{
	while (*p != '\0' && isspace((unsigned char)*p))
		p++;
	return p;
}

/* A quoted value may hold commas and spaces; quotes are not escapable, as in
 * supervisord (its shlex runs in non-POSIX mode). */
int cfg_parse_env(const char *s, char ***out, char *err, size_t errlen)
{
	char **env = NULL;
	size_t n = 0;
	const char *p = skip_space(s);
	struct cfg_buf kv = {0};

	env = cfg_xmalloc(sizeof(*env));
	env[0] = NULL;
	while (*p != '\0') {
		const char *key = p;
		while (env_key_char(*p))
			p++;
		size_t klen = (size_t)(p - key);
		if (klen == 0) {
			snprintf(err, errlen, "expected KEY=value, found %.20s", key);
			goto fail;
		}
		p = skip_space(p);
		if (*p != '=') {
			snprintf(err, errlen, "expected '=' after %.*s", (int)klen, key);
			goto fail;
		}
		p = skip_space(p + 1);
		cfg_buf_addn(&kv, key, klen);
		cfg_buf_addc(&kv, '=');
		if (*p == '"' || *p == '\'') {
			const char *close = strchr(p + 1, *p);
			if (close == NULL) {
				snprintf(err, errlen, "unterminated %c quote in the value of %.*s",
				         *p, (int)klen, key);
				goto fail;
			}
			cfg_buf_addn(&kv, p + 1, (size_t)(close - p - 1));
			p = skip_space(close + 1);
			if (*p != '\0' && *p != ',') {
				snprintf(err, errlen, "expected ',' after the quoted value of %.*s",
				         (int)klen, key);
				goto fail;
			}
		} else {
			const char *v = p;
			while (*p != '\0' && *p != ',')
				p++;
			size_t vlen = (size_t)(p - v);
			while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
				vlen--;
			cfg_buf_addn(&kv, v, vlen);
		}
		char *item = cfg_buf_take(&kv);
		cfg_env_set(&env, &n, item);
		free(item);
		if (*p == ',')
			p = skip_space(p + 1);
	}
	*out = env;
	return 0;
fail:
	free(kv.s);
	cfg_strv_free(env);
	return -1;
}

int cfg_parse_percent(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v <= 0 || v != v)
		return -1;
	if (*end == '%')
		end++;
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}
