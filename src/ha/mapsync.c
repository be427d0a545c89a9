/* Activemap page writes on the reactor: one op per page in flight, each with its own copy
 * of the image it writes (the map may change while the write runs); or, for a file in
 * memory, synchronous writes from one deferred op that also wakes the waiters. */
#include "ha/mapsync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/util.h"
#include "ha/meta.h"

struct page_write {
	struct reactor_op op;
	struct mapsync *ms;
	uint32_t page;
	uint64_t version;
	uint8_t image[ACTIVEMAP_PAGE_SIZE];
};

struct mapsync {
	struct reactor *r;
	struct activemap *am; /* NULL once freed by the owner */
	int fd;
	uint8_t *busy;        /* per page: a write in flight */
	uint32_t npages;      /* of busy */
	unsigned in_flight;
	bool in_memory;       /* the file is on tmpfs: written synchronously by settle */
	bool failed, settle_pending;
	struct reactor_op settle_op;
	struct mapsync_wait *waiters;
	char name[64];
};

struct mapsync *mapsync_new(struct reactor *r, struct activemap *am, int fd, const char *name)
{
	struct mapsync *ms = calloc(1, sizeof(*ms));

	if (ms == NULL || (ms->busy = calloc(activemap_page_count(am), 1)) == NULL) {
		free(ms);
		return NULL;
	}
	ms->npages = activemap_page_count(am);
	ms->r = r;
	ms->am = am;
	ms->fd = fd;
	ms->in_memory = file_in_memory(fd);
	str_copy(ms->name, sizeof(ms->name), name);
	return ms;
}

static void release(struct mapsync *ms)
{
	free(ms->busy);
	free(ms);
}

void mapsync_free(struct mapsync *ms)
{
	if (ms == NULL)
		return;
	ms->am = NULL;
	ms->waiters = NULL;
	if (ms->in_flight == 0)
		release(ms);
}

/* Resumes every waiter whose range is now on disk (all of them, failed, after an error). */
static void wake(struct mapsync *ms)
{
	struct mapsync_wait **pp = &ms->waiters;

	while (*pp != NULL) {
		struct mapsync_wait *w = *pp;

		if (!ms->failed && !activemap_write_ready(ms->am, w->offset, w->length)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->ready(w, ms->failed ? -EIO : 0);
		pp = &ms->waiters; /* ready() may have added or removed waiters */
	}
}

static bool page_done(struct mapsync *ms, uint32_t page, uint64_t version, int res)
{
	if (res != ACTIVEMAP_PAGE_SIZE) {
		log_err("ha %s: activemap page %u not written: %s", ms->name, page,
		        res < 0 ? strerror(-res) : "short write");
		ms->failed = true;
		return false;
	}
	activemap_page_written(ms->am, page, version);
	return true;
}

/* Every stale page, now (a file in memory). */
static void write_stale_now(struct mapsync *ms)
{
	uint32_t page = 0;

	while (!ms->failed && activemap_stale_page(ms->am, page, &page)) {
		uint64_t version;
		struct iovec iov = {(void *)activemap_page(ms->am, page, &version), ACTIVEMAP_PAGE_SIZE};
		ssize_t n = pwritev2(ms->fd, &iov, 1, (off_t)ha_meta_page_offset(page), RWF_DSYNC);

		if (page_done(ms, page, version, n < 0 ? -errno : (int)n))
			page++;
	}
}

/* From the loop: writes what is stale (in memory), then resumes or fails the waiters. */
static void settle(struct reactor_op *op, int res)
{
	struct mapsync *ms = container_of(op, struct mapsync, settle_op);

	ms->settle_pending = false;
	ms->in_flight--;
	if (ms->am == NULL) {
		if (ms->in_flight == 0)
			release(ms);
		return;
	}
	if (ms->in_memory)
		write_stale_now(ms);
	wake(ms);
}

static void settle_soon(struct mapsync *ms)
{
	if (ms->settle_pending)
		return;
	ms->settle_pending = true;
	ms->in_flight++; /* keeps ms alive until the deferral ran */
	reactor_defer(ms->r, &ms->settle_op, settle);
}

static void on_written(struct reactor_op *op, int res);

void mapsync_kick(struct mapsync *ms)
{
	uint32_t page = 0;

	if (ms->in_memory) {
		if (ms->am != NULL && !ms->failed)
			settle_soon(ms);
		return;
	}

	/* After a failed write the file is not trusted again: no retry storm, waiters fail. */
	while (ms->am != NULL && !ms->failed && activemap_stale_page(ms->am, page, &page)) {
		struct page_write *pw;

		if (ms->busy[page]) {
			page++;
			continue;
		}
		if ((pw = malloc(sizeof(*pw))) == NULL)
			break; /* retried by the next kick */
		pw->ms = ms;
		pw->page = page;
		memcpy(pw->image, activemap_page(ms->am, page, &pw->version), ACTIVEMAP_PAGE_SIZE);
		struct io_uring_sqe *sqe = reactor_sqe(ms->r, &pw->op, on_written);

		io_uring_prep_write(sqe, ms->fd, pw->image, ACTIVEMAP_PAGE_SIZE, ha_meta_page_offset(page));
		sqe->rw_flags = RWF_DSYNC; /* metadata before data: durable when it completes */
		ms->busy[page] = 1;
		ms->in_flight++;
		page++;
	}
}

static void on_written(struct reactor_op *op, int res)
{
	struct page_write *pw = container_of(op, struct page_write, op);
	struct mapsync *ms = pw->ms;

	ms->in_flight--;
	ms->busy[pw->page] = 0;
	if (ms->am == NULL) {
		free(pw);
		if (ms->in_flight == 0)
			release(ms);
		return;
	}
	page_done(ms, pw->page, pw->version, res);
	free(pw);
	mapsync_kick(ms);
	wake(ms);
}

void mapsync_wait(struct mapsync *ms, struct mapsync_wait *w)
{
	w->next = ms->waiters;
	ms->waiters = w;
	/* Failed waiters and those of a file in memory are settled from the loop. */
	if (ms->failed || ms->in_memory)
		settle_soon(ms);
	else
		mapsync_kick(ms);
}

int mapsync_grow(struct mapsync *ms)
{
	uint32_t n = activemap_page_count(ms->am);
	uint8_t *busy = realloc(ms->busy, n);

	if (busy == NULL)
		return -1;
	memset(busy + ms->npages, 0, n - ms->npages);
	ms->busy = busy;
	ms->npages = n;
	return 0;
}
