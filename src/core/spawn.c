#include "drover/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHILD_STACK_SIZE (64 * 1024)
#define MAX_GROUPS       256

enum child_stage { STAGE_CHDIR = 1, STAGE_USER, STAGE_PDEATHSIG, STAGE_DUP, STAGE_EXEC };

struct child_args {
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *directory;
	bool has_umask;
	mode_t umask;
	bool switch_user;
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	int fds[3];
	int errpipe;
	pid_t parent;
};

struct child_error {
	int stage;
	int err;
};

static struct rlimit child_nofile;
static bool child_nofile_set;

void spawn_set_child_nofile(unsigned long soft)
{
	getrlimit(RLIMIT_NOFILE, &child_nofile);
	child_nofile.rlim_cur = soft;
	child_nofile_set = true;
}

static __attribute__((noreturn)) void child_fail(const struct child_args *a, int stage)
{
	struct child_error e = {.stage = stage, .err = errno};
	ssize_t ignored = write(a->errpipe, &e, sizeof(e));
	(void)ignored;
	_exit(127);
}

/* Runs in the vfork-style child, sharing drover's memory while drover waits:
 * only async-signal-safe calls, nothing that allocates or takes a lock. */
__attribute__((no_sanitize_address)) static int child_main(void *arg)
{
	const struct child_args *a = arg;
	/* the raw system call: glibc's sigaction refuses its own real-time
	 * signals (32, 33), and an ignored one would survive into the worker */
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		unsigned long mask;
	} dfl = {SIG_DFL, 0, NULL, 0};
	for (int sig = 1; sig < NSIG; sig++)
		syscall(SYS_rt_sigaction, sig, &dfl, NULL,
		        sizeof(dfl.mask)); /* KILL, STOP: EINVAL */

	setsid();
	if (a->has_umask)
		umask(a->umask);
	if (a->directory && chdir(a->directory) < 0)
		child_fail(a, STAGE_CHDIR);
	if (a->switch_user) {
		if (setgroups((size_t)a->ngroups, a->groups) < 0 || setgid(a->gid) < 0 ||
		    setuid(a->uid) < 0)
			child_fail(a, STAGE_USER);
	}
	/* after any uid change, which clears it; then make sure drover did not
	 * die before it took effect */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		child_fail(a, STAGE_PDEATHSIG);
	if (getppid() != a->parent)
		_exit(127);
	for (int i = 0; i < 3; i++)
		if (a->fds[i] != i && dup2(a->fds[i], i) < 0)
			child_fail(a, STAGE_DUP);
	if (child_nofile_set)
		setrlimit(RLIMIT_NOFILE, &child_nofile);
	/* backstop: whatever fd drover forgot to mark, the worker never sees */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(a->path, a->argv, a->envp);
	child_fail(a, STAGE_EXEC);
}

static bool permanent_errno(int err)
{
	switch (err) {
	case ENOENT:
	case EACCES:
	case ENOEXEC:
	case ENOTDIR:
	case ELOOP:
	case EISDIR:
	case EPERM:
	case ENAMETOOLONG:
	case EINVAL:
		return true;
	default:
		return false;
	}
}

static int fail(struct spawn_result *res, int err, bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct spawn_result *res, int err, bool permanent, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->why, sizeof(res->why), fmt, ap);
	va_end(ap);
	res->err = err;
	res->permanent = permanent;
	res->pid = -1;
	res->pidfd = -1;
	return -1;
}

static const char *env_lookup(char *const *env, const char *key)
{
	size_t n = strlen(key);
	const char *found = NULL;
	for (; env && *env; env++)
		if (!strncmp(*env, key, n) && (*env)[n] == '=')
			found = *env + n + 1; /* last one wins */
	return found;
}

static bool is_executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Find argv[0] the way execvp would, but in drover, before the fork, so a
 * missing command is a clear reason instead of an exit code. */
static int resolve_path(const struct spawn_request *req, char *out, size_t outlen,
                        struct spawn_result *res)
{
	const char *name = req->argv[0];
	if (strchr(name, '/')) {
		snprintf(out, outlen, "%s", name);
		return 0; /* relative to `directory`: execve will tell */
	}
	const char *path = env_lookup(req->env_add, "PATH");
	if (!path)
		path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	bool denied = false;
	while (*path) {
		const char *end = strchrnul(path, ':');
		int len = (int)(end - path);
		snprintf(out, outlen, "%.*s%s%s", len, path, len ? "/" : "", name);
		if (is_executable_file(out))
			return 0;
		if (access(out, F_OK) == 0)
			denied = true;
		path = *end ? end + 1 : end;
	}
	if (denied)
		return fail(res, EACCES, true, "cannot exec '%s': found on PATH but not executable",
		            name);
	return fail(res, ENOENT, true, "cannot exec '%s': command not found on PATH", name);
}

static int resolve_user(const char *user, struct child_args *a, struct spawn_result *res)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		char *end;
		unsigned long uid = strtoul(user, &end, 10);
		if (*user && !*end)
			pw = getpwuid((uid_t)uid);
	}
	if (!pw)
		return fail(res, ENOENT, true, "cannot switch to user '%s': no such user", user);
	if (geteuid() != 0 && pw->pw_uid != geteuid())
		return fail(res, EPERM, true,
		            "cannot switch to user '%s': drover is not running as root", user);
	a->switch_user = geteuid() == 0;
	a->uid = pw->pw_uid;
	a->gid = pw->pw_gid;
	a->ngroups = MAX_GROUPS;
	if (getgrouplist(pw->pw_name, pw->pw_gid, a->groups, &a->ngroups) < 0)
		a->ngroups = MAX_GROUPS;
	return 0;
}

/* drover's environment with env_add laid over it (later entries win). */
static char **build_env(char *const *add)
{
	size_t n = 0, nadd = 0;
	while (environ[n])
		n++;
	while (add && add[nadd])
		nadd++;
	char **env = malloc((n + nadd + 1) * sizeof(*env));
	if (!env)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool overridden = false;
		for (size_t j = 0; j < nadd && !overridden; j++)
			overridden = !strncmp(add[j], environ[i], klen) && add[j][klen] == '=';
		if (!overridden)
			env[len++] = environ[i];
	}
	for (size_t j = 0; j < nadd; j++) {
		const char *eq = strchr(add[j], '=');
		size_t klen = eq ? (size_t)(eq - add[j]) : strlen(add[j]);
		bool later = false;
		for (size_t k = j + 1; k < nadd && !later; k++)
			later = !strncmp(add[k], add[j], klen) && add[k][klen] == '=';
		if (!later)
			env[len++] = add[j];
	}
	env[len] = NULL;
	return env;
}

static void *child_stack(void)
{
	static void *stack;
	if (!stack) {
		stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
		             MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stack == MAP_FAILED)
			stack = NULL;
	}
	return stack;
}

static const char *stage_verb(int stage)
{
	switch (stage) {
	case STAGE_CHDIR:
		return "cannot chdir to";
	case STAGE_USER:
		return "cannot switch to user";
	case STAGE_PDEATHSIG:
		return "cannot set the parent-death signal for";
	case STAGE_DUP:
		return "cannot set up stdio for";
	default:
		return "cannot exec";
	}
}

int spawn_process(const struct spawn_request *req, struct spawn_result *res)
{
	memset(res, 0, sizeof(*res));
	res->pid = -1;
	res->pidfd = -1;
	if (!req->argv || !req->argv[0])
		return fail(res, EINVAL, true, "empty command");

	char path[4096];
	struct child_args *a = calloc(1, sizeof(*a));
	if (!a)
		return fail(res, ENOMEM, false, "out of memory");
	int rc = resolve_path(req, path, sizeof(path), res);
	if (rc == 0 && req->user)
		rc = resolve_user(req->user, a, res);
	char **envp = rc == 0 ? build_env(req->env_add) : NULL;
	if (rc == 0 && !envp)
		rc = fail(res, ENOMEM, false, "out of memory");
	void *stack = rc == 0 ? child_stack() : NULL;
	if (rc == 0 && !stack)
		rc = fail(res, ENOMEM, false, "cannot map the spawn stack");
	int errpipe[2] = {-1, -1};
	if (rc == 0 && pipe2(errpipe, O_CLOEXEC) < 0)
		rc = fail(res, errno, false, "pipe: %s", strerror(errno));
	if (rc < 0) {
		free(envp);
		free(a);
		return rc;
	}

	a->path = path;
	a->argv = req->argv;
	a->envp = envp;
	a->directory = req->directory;
	a->has_umask = req->has_umask;
	a->umask = req->umask;
	a->fds[0] = req->stdin_fd;
	a->fds[1] = req->stdout_fd;
	a->fds[2] = req->stderr_fd;
	a->errpipe = errpipe[1];
	a->parent = getpid();

	/* no handler of drover's may run in the child while it shares our memory */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(child_main, (char *)stack + CHILD_STACK_SIZE,
	                  CLONE_VM | CLONE_VFORK | SIGCHLD, a);
	int clone_err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(errpipe[1]);
	free(envp);

	if (pid < 0) {
		close(errpipe[0]);
		free(a);
		return fail(res, clone_err, false, "cannot fork: %s", strerror(clone_err));
	}

	/* CLONE_VFORK: the child has exec'd or exited by now, so this never waits */
	struct child_error ce;
	ssize_t n = read(errpipe[0], &ce, sizeof(ce));
	close(errpipe[0]);
	if (n == (ssize_t)sizeof(ce)) {
		waitpid(pid, NULL, 0); /* a child that never ran: not the reaper's business */
		const char *what = ce.stage == STAGE_CHDIR  ? req->directory
		                   : ce.stage == STAGE_USER ? req->user
		                                            : path;
		fail(res, ce.err, permanent_errno(ce.err), "%s '%s': %s", stage_verb(ce.stage),
		     what, strerror(ce.err));
		free(a);
		return -1;
	}
	free(a);

	res->pid = pid;
	res->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}
