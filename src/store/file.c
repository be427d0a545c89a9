/* The local store: a regular file or block device over io_uring (store_open()). */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/util.h"

enum io_kind { IO_READ, IO_WRITE, IO_FLUSH, IO_DISCARD };

struct file_store {
	int fd;
	uint64_t size;
	uint32_t alignment;
	bool block_device;
	bool can_discard;
	bool read_only;
	bool direct;
	/* Memory-backed file (tmpfs, ramfs): served by plain system calls on the reactor.
	 * Such files never wait for a disk, and they refuse RWF_NOWAIT, so io_uring would hand
	 * every request to a worker thread: a wake-up per I/O that costs more than the copy. */
	bool in_memory;
};

static const struct store_ops file_ops;

static void file_close(void *impl)
{
	struct file_store *s = impl;

	close(s->fd);
	free(s);
}

int store_open(const struct store_params *p, struct store **out, char *err, size_t errlen)
{
	int flags = (p->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (p->direct ? O_DIRECT : 0);
	struct file_store *s;
	struct stat st;
	int fd;

	fd = open(p->path, flags);
	if (fd < 0 && errno == ENOENT && p->create_size && !p->read_only) {
		fd = open(p->path, flags | O_CREAT | O_EXCL, 0600);
		if (fd >= 0 && ftruncate(fd, (off_t)p->create_size) < 0) {
			snprintf(err, errlen, "%s: cannot size to %llu bytes: %s", p->path,
			         (unsigned long long)p->create_size, strerror(errno));
			close(fd);
			unlink(p->path);
			return -1;
		}
	}
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", p->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
		snprintf(err, errlen, "%s: not a regular file or block device", p->path);
		close(fd);
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->fd = fd;
	s->read_only = p->read_only;
	s->direct = p->direct;
	s->alignment = 512;
	if (S_ISBLK(st.st_mode)) {
		int lbs = 512;

		s->block_device = true;
		if (ioctl(fd, BLKGETSIZE64, &s->size) < 0 || ioctl(fd, BLKSSZGET, &lbs) < 0) {
			snprintf(err, errlen, "%s: cannot read device geometry: %s", p->path, strerror(errno));
			file_close(s);
			return -1;
		}
		s->alignment = (uint32_t)lbs;
	} else {
		s->size = (uint64_t)st.st_size;
	}
	s->in_memory = !s->block_device && file_in_memory(fd);
	/* Punching a hole past the end changes nothing and tells whether the file system can. */
	s->can_discard = !p->read_only &&
	                 fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)s->size, 4096) == 0;

	struct store_caps caps = {
		.size = s->size,
		.alignment = s->alignment,
		.can_discard = s->can_discard,
		.read_only = s->read_only,
		.volatile_cache = !s->direct || s->block_device,
	};
	*out = store_new(&file_ops, s, &caps);
	if (!*out) {
		file_close(s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void io_complete(struct reactor_op *op, int res);

static void io_now_complete(struct reactor_op *op, int res)
{
	io_complete(op, container_of(op, struct store_io, op)->sync_result);
}

/* The system call io_uring would have made, made here; returns its result as a CQE would. */
static int io_now(struct store_io *io)
{
	struct file_store *s = io->impl;
	const struct iovec *iov = io->skip ? &io->iov_first : io->iov;
	int iovcnt = io->skip ? 1 : io->iovcnt;
	off_t offset = (off_t)(io->offset + io->progress);
	ssize_t n = 0;

	if (io->skip) {
		io->iov_first.iov_base = (char *)io->iov->iov_base + io->skip;
		io->iov_first.iov_len = io->iov->iov_len - io->skip;
	}
	switch ((enum io_kind)io->kind) {
	case IO_READ:
		n = preadv(s->fd, iov, iovcnt, offset);
		break;
	case IO_WRITE:
		n = pwritev2(s->fd, iov, iovcnt, offset, io->fua ? RWF_DSYNC : 0);
		break;
	case IO_FLUSH:
		n = fdatasync(s->fd);
		break;
	case IO_DISCARD:
		n = fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)io->offset,
		              (off_t)io->length);
		break;
	}
	return n < 0 ? -errno : (int)n;
}

static void io_submit(struct store_io *io, struct reactor *r)
{
	struct io_uring_sqe *sqe;
	struct file_store *s = io->impl;

	io->reactor = r;
	if (s->in_memory) {
		/* Completion still comes from the loop: done() never runs inside the caller. */
		io->sync_result = io_now(io);
		reactor_defer(r, &io->op, io_now_complete);
		return;
	}
	sqe = reactor_sqe(r, &io->op, io_complete);

	switch ((enum io_kind)io->kind) {
	case IO_READ:
	case IO_WRITE:
		/* A partly done element goes alone; the rest of the vector follows next round. */
		if (io->skip) {
			io->iov_first.iov_base = (char *)io->iov->iov_base + io->skip;
			io->iov_first.iov_len = io->iov->iov_len - io->skip;
		}
		if (io->kind == IO_READ)
			io_uring_prep_readv(sqe, s->fd, io->skip ? &io->iov_first : io->iov,
			                    io->skip ? 1 : (unsigned)io->iovcnt, io->offset + io->progress);
		else
			io_uring_prep_writev(sqe, s->fd, io->skip ? &io->iov_first : io->iov,
			                     io->skip ? 1 : (unsigned)io->iovcnt, io->offset + io->progress);
		if (io->fua)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case IO_FLUSH:
		io_uring_prep_fsync(sqe, s->fd, IORING_FSYNC_DATASYNC);
		break;
	case IO_DISCARD:
		io_uring_prep_fallocate(sqe, s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		                        io->offset, io->length);
		break;
	}
}

/* After a short transfer, skips the bytes done in the caller's vector. */
static void io_advance(struct store_io *io, size_t done)
{
	done += io->skip;
	while (io->iovcnt > 0 && done >= io->iov->iov_len) {
		done -= io->iov->iov_len;
		io->iov++;
		io->iovcnt--;
	}
	io->skip = done;
}

static void io_complete(struct reactor_op *op, int res)
{
	struct store_io *io = container_of(op, struct store_io, op);
	struct reactor *r = io->reactor;

	if (res < 0) {
		if (res == -EAGAIN || res == -EINTR) {
			io_submit(io, r);
			return;
		}
		io->done(io, res);
		return;
	}
	if (io->kind == IO_READ || io->kind == IO_WRITE) {
		if (res == 0) {
			io->done(io, -EIO); /* the file shrank under us */
			return;
		}
		io->progress += (size_t)res;
		if (io->progress < io->length) {
			io_advance(io, (size_t)res);
			io_submit(io, r);
			return;
		}
	}
	io->done(io, 0);
}

static uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
	uint64_t n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

static void io_start(struct file_store *s, struct reactor *r, struct store_io *io, enum io_kind kind,
                     const struct iovec *iov, int iovcnt, uint64_t offset, uint64_t length, bool fua)
{
	io->impl = s;
	io->kind = kind;
	io->iov = iov;
	io->iovcnt = iovcnt;
	io->offset = offset;
	io->length = length;
	io->progress = 0;
	io->skip = 0;
	io->fua = fua;
	io_submit(io, r);
}

static void file_readv(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
                       uint64_t offset)
{
	io_start(impl, r, io, IO_READ, iov, iovcnt, offset, iov_total(iov, iovcnt), false);
}

static void file_writev(void *impl, struct reactor *r, struct store_io *io, const struct iovec *iov, int iovcnt,
                        uint64_t offset, bool fua)
{
	io_start(impl, r, io, IO_WRITE, iov, iovcnt, offset, iov_total(iov, iovcnt), fua);
}

static void file_flush(void *impl, struct reactor *r, struct store_io *io)
{
	io_start(impl, r, io, IO_FLUSH, NULL, 0, 0, 0, false);
}

static void file_discard(void *impl, struct reactor *r, struct store_io *io, uint64_t offset, uint64_t length)
{
	io_start(impl, r, io, IO_DISCARD, NULL, 0, offset, length, false);
}

static int file_map_status(void *impl, uint64_t offset, bool *mapped, uint64_t *length)
{
	struct file_store *s = impl;
	off_t data, hole;

	if (s->block_device || !s->can_discard) {
		*mapped = true;
		*length = s->size - offset;
		return 0;
	}
	data = lseek(s->fd, (off_t)offset, SEEK_DATA);
	if (data < 0 && errno != ENXIO)
		return -errno;
	if (data < 0 || (uint64_t)data >= s->size) {
		*mapped = false;
		*length = s->size - offset;
		return 0;
	}
	if ((uint64_t)data > offset) {
		*mapped = false;
		*length = (uint64_t)data - offset;
		return 0;
	}
	hole = lseek(s->fd, (off_t)offset, SEEK_HOLE);
	if (hole < 0)
		return -errno;
	*mapped = true;
	*length = MIN((uint64_t)hole, s->size) - offset;
	return 0;
}

/* A regular file grows sparse; a block device's size is its own. */
static int file_grow(void *impl, uint64_t size)
{
	struct file_store *s = impl;

	if (s->block_device)
		return -ENOTSUP;
	if (ftruncate(s->fd, (off_t)size) < 0 || fsync(s->fd) < 0)
		return -errno;
	s->size = size;
	return 0;
}

static const struct store_ops file_ops = {
	.grow = file_grow,
	.readv = file_readv,
	.writev = file_writev,
	.flush = file_flush,
	.discard = file_discard,
	.map_status = file_map_status,
	.close = file_close,
};
