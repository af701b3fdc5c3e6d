#include "drover/logfile.h"

#include <errno.h>
#include <fcntl.h>
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
	lf->size = fstat(lf->fd, &st) == 0 ? st.st_size : 0;
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

int logfile_write(struct logfile *lf, const char *buf, size_t len)
{
	if (lf->fd < 0)
		return -EBADF;
	if (lf->maxbytes > 0 && lf->size > 0 && lf->size + (long long)len > lf->maxbytes) {
		int rc = rotate(lf);
		if (rc < 0)
			return rc;
	}
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
