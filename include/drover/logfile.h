/* An append-only log file rotated by size, as supervisord rotates
 * stdout_logfile: NAME -> NAME.1 -> ... -> NAME.<backups>. */
#ifndef DROVER_LOGFILE_H
#define DROVER_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>

struct logfile {
	char *path;
	int fd;             /* -1 when closed */
	long long size;     /* bytes in the current file */
	long long maxbytes; /* 0 = never rotate */
	int backups;
	/* A regular file. A device or a pipe (/dev/null, /dev/stdout) is
	 * never rotated: renaming it would move the device node. */
	bool rotatable;
};

/* Returns 0 or -errno. Creates the file (0644) if needed. */
int logfile_open(struct logfile *lf, const char *path, long long maxbytes, int backups);
/* Append; rotates first when the write would pass maxbytes. 0 or -errno. */
int logfile_write(struct logfile *lf, const char *buf, size_t len);
/* Close and open again (after logrotate moved the file). */
int logfile_reopen(struct logfile *lf);
void logfile_close(struct logfile *lf);

/* The name of backup n (1 = newest) of path: "path.n". Pure. */
void logfile_backup_name(const char *path, int n, char *out, size_t outlen);

#endif
