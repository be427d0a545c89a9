/* The store front: every call goes to the implementation behind the store (a local file,
 * an HA device) after the checks that hold for all of them. */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>

struct store {
	const struct store_ops *ops;
	void *impl;
	struct store_caps caps;
};

struct store *store_new(const struct store_ops *ops, void *impl, const struct store_caps *caps)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ops = ops;
	s->impl = impl;
	s->caps = *caps;
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	s->ops->close(s->impl);
	free(s);
}

uint64_t store_size(const struct store *s) { return s->caps.size; }

int store_grow(struct store *s, uint64_t size)
{
	int rc;

	if (!s->ops->grow)
		return -ENOTSUP;
	if (size < s->caps.size)
		return -EINVAL;
	rc = s->ops->grow(s->impl, size);
	if (rc == 0)
		s->caps.size = size;
	return rc;
}
uint32_t store_alignment(const struct store *s) { return s->caps.alignment; }
bool store_can_discard(const struct store *s) { return s->caps.can_discard; }
bool store_read_only(const struct store *s) { return s->caps.read_only; }
bool store_has_volatile_cache(const struct store *s) { return s->caps.volatile_cache; }

enum store_access store_access(const struct store *s)
{
	return s->ops->access ? s->ops->access(s->impl) : STORE_ACCESS_OK;
}

void store_readv(struct store *s, struct reactor *r, struct store_io *io,
                 const struct iovec *iov, int iovcnt, uint64_t offset)
{
	s->ops->readv(s->impl, r, io, iov, iovcnt, offset);
}

void store_writev(struct store *s, struct reactor *r, struct store_io *io,
                  const struct iovec *iov, int iovcnt, uint64_t offset, bool fua)
{
	s->ops->writev(s->impl, r, io, iov, iovcnt, offset, fua);
}

void store_read(struct store *s, struct reactor *r, struct store_io *io,
                void *buf, size_t len, uint64_t offset)
{
	io->iov_whole = (struct iovec){ .iov_base = buf, .iov_len = len };
	s->ops->readv(s->impl, r, io, &io->iov_whole, 1, offset);
}

void store_write(struct store *s, struct reactor *r, struct store_io *io,
                 const void *buf, size_t len, uint64_t offset, bool fua)
{
	io->iov_whole = (struct iovec){ .iov_base = (void *)buf, .iov_len = len };
	s->ops->writev(s->impl, r, io, &io->iov_whole, 1, offset, fua);
}

void store_flush(struct store *s, struct reactor *r, struct store_io *io)
{
	s->ops->flush(s->impl, r, io);
}

void store_discard(struct store *s, struct reactor *r, struct store_io *io,
                   uint64_t offset, uint64_t length)
{
	s->ops->discard(s->impl, r, io, offset, length);
}

bool store_compare_and_write(struct store *s, struct reactor *r, struct store_io *io, const void *compare,
                             const void *data, size_t len, uint64_t offset, bool fua)
{
	if (!s->ops->compare_and_write)
		return false;
	s->ops->compare_and_write(s->impl, r, io, compare, data, len, offset, fua);
	return true;
}

int store_map_status(struct store *s, uint64_t offset, bool *mapped, uint64_t *length)
{
	if (offset >= s->caps.size)
		return -EINVAL;
	return s->ops->map_status(s->impl, offset, mapped, length);
}
