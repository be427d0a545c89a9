/* Whole-buffer positional file I/O for the small synchronous metadata writes the daemon
 * makes (reservation state, HA superblocks and bitmap pages): retries short transfers and
 * EINTR, so a caller sees all or an error. */
#ifndef TWINSAN_COMMON_FILEIO_H
#define TWINSAN_COMMON_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 0, or -1 with errno set. */
int file_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset);
/* 0, or -1 with errno set (EIO when the file ends first). */
int file_pread_all(int fd, void *buf, size_t len, uint64_t offset);
/* True for a file in memory (tmpfs, ramfs): its writes never wait for a disk, so a plain
 * system call on the reactor is cheaper than io_uring, which hands them to a worker
 * thread (such files refuse RWF_NOWAIT). */
bool file_in_memory(int fd);

#endif
