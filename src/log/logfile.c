#include "drover/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void logfile_backup_name(const char *path, int n, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.%d", path, n);
}

static int open_fd(struct logfile *lf)
{
	lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
	if (lf->fd < 0)
		return -errno;
	struct stat st;
	bool known = fstat(lf->fd, &st) == 0;
	lf->size = known ? st.st_size : 0;
	lf->rotatable = known && S_ISREG(st.st_mode);
	return 0;
}

int logfile_open(struct logfile *lf, const char *path, long long maxbytes, int backups)
{
	lf->path = strdup(path);
	lf->fd = -1;
	lf->maxbytes = maxbytes;
	lf->backups = backups;
	if (!lf->path)
		return -ENOMEM;
	return open_fd(lf);
}

/* Shift path.(k) to path.(k+1), drop the oldest, move the live file to .1. */
static int rotate(struct logfile *lf)
{
	char from[4096], to[4096];
	if (lf->backups <= 0) {
		/* no backups: start the file over, as supervisord does */
		if (ftruncate(lf->fd, 0) < 0)
			return -errno;
		lf->size = 0;
		return 0;
	}
	logfile_backup_name(lf->path, lf->backups, to, sizeof(to));
	unlink(to);
	for (int k = lf->backups - 1; k >= 1; k--) {
		logfile_backup_name(lf->path, k, from, sizeof(from));
		logfile_backup_name(lf->path, k + 1, to, sizeof(to));
		rename(from, to);
	}
	logfile_backup_name(lf->path, 1, to, sizeof(to));
	rename(lf->path, to);
	close(lf->fd);
	return open_fd(lf);
}

static int write_all(struct logfile *lf, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(lf->fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
		lf->size += n;
	}
	return 0;
}

/* One read of a worker's pipe may hold many lines (a burst, or drover
 * busy for a moment): the whole lines that still fit go to this file, the
 * rest after a rotation, so no file passes maxbytes unless a single line
 * is longer than maxbytes. A write without a line end that does not fit
 * rotates first, as before. */
int logfile_write(struct logfile *lf, const char *buf, size_t len)
{
	if (lf->fd < 0)
		return -EBADF;
	bool stuck = false; /* a rotation that left the file as it was */
	while (len) {
		size_t take = len;
		if (lf->maxbytes > 0 && lf->rotatable && !stuck &&
		    lf->size + (long long)len > lf->maxbytes) {
			long long room = lf->maxbytes - lf->size;
			const char *nl =
			    room > 0 ? memrchr(buf, '\n', (size_t)room < len ? (size_t)room : len)
			             : NULL;
			if (nl) {
				take = (size_t)(nl - buf) + 1;
			} else if (lf->size > 0) {
				int rc = rotate(lf);
				if (rc < 0)
					return rc;
				/* the rename failed (a directory we may not write):
				 * the rest goes to the file as it is */
				stuck = lf->size > 0;
				continue;
			} else {
				/* a fresh file and a first line longer than maxbytes:
				 * that line whole, then the rest */
				nl = memchr(buf, '\n', len);
				take = nl ? (size_t)(nl - buf) + 1 : len;
			}
		}
		int rc = write_all(lf, buf, take);
		if (rc < 0)
			return rc;
		buf += take;
		len -= take;
	}
	return 0;
}

int logfile_reopen(struct logfile *lf)
{
	if (lf->fd >= 0)
		close(lf->fd);
	return open_fd(lf);
}

void logfile_close(struct logfile *lf)
{
	if (lf->fd >= 0)
		close(lf->fd);
	free(lf->path);
	lf->path = NULL;
	lf->fd = -1;
}
