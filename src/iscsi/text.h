/* iSCSI text key=value lists (RFC 7143 §6.1): the data segment of Login and Text PDUs.
 *
 * A list is a sequence of "key=value" strings, each terminated by NUL.  The parser copies
 * the bytes once and hands out pointers into the copy; the builder appends pairs to a
 * growable buffer that becomes a response's data segment.  Value encodings shared by
 * several keys (numbers, binary values) are decoded here too. */
#ifndef TWINSAN_ISCSI_TEXT_H
#define TWINSAN_ISCSI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ISCSI_TEXT_KEY_MAX 63            /* bytes in a key name */
#define ISCSI_TEXT_VALUE_MAX 255         /* bytes in a value unless its key says otherwise */
#define ISCSI_TEXT_BINARY_VALUE_MAX 8192 /* encoded CHAP challenges and responses */

enum iscsi_text_error {
	ISCSI_TEXT_OK = 0,
	ISCSI_TEXT_ENOMEM,
	ISCSI_TEXT_ESYNTAX,   /* a pair without '=' or without its terminating NUL */
	ISCSI_TEXT_EKEY,      /* empty, overlong or ill-formed key name */
	ISCSI_TEXT_ELONG,     /* value longer than its key allows */
	ISCSI_TEXT_EDUP,      /* the same key twice in one list */
};

struct iscsi_text_pair {
	const char *key;
	const char *value;   /* may be empty */
};

struct iscsi_text_list {
	char *copy;
	struct iscsi_text_pair *pairs;
	size_t count;
};

/* Parses len bytes.  Trailing NULs (padding some initiators include) are ignored.  On
 * error *list is left empty and the return value says why. */
enum iscsi_text_error iscsi_text_parse(const uint8_t *data, size_t len, struct iscsi_text_list *list);
void iscsi_text_list_free(struct iscsi_text_list *list);
const char *iscsi_text_find(const struct iscsi_text_list *list, const char *key);
const char *iscsi_text_strerror(enum iscsi_text_error err);

/* A growable output list.  Appends after a failed allocation are ignored and the buffer
 * remembers the failure, so callers check once, at the end. */
struct iscsi_text_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
};

void iscsi_text_buf_init(struct iscsi_text_buf *buf);
void iscsi_text_buf_reset(struct iscsi_text_buf *buf);   /* empties it, keeps the memory */
void iscsi_text_buf_free(struct iscsi_text_buf *buf);
void iscsi_text_append(struct iscsi_text_buf *buf, const void *bytes, size_t len);
void iscsi_text_add(struct iscsi_text_buf *buf, const char *key, const char *value);
void iscsi_text_addf(struct iscsi_text_buf *buf, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends key=0x<hex of bytes>. */
void iscsi_text_add_hex(struct iscsi_text_buf *buf, const char *key, const uint8_t *bytes, size_t len);

/* Steps through a list-of-values (RFC 7143 §6.1: comma-separated): sets the next item and
 * its length, and returns false at the end.  Start with *cursor at the value. */
bool iscsi_text_next_item(const char **cursor, const char **item, size_t *len);

/* numerical-value (RFC 7143 §6.1): decimal, or hex with a 0x prefix.  Returns -1 when the
 * value is not a number or exceeds max. */
int iscsi_text_number(const char *value, uint64_t max, uint64_t *out);
/* binary-value: 0x hex or 0b base64.  Returns the decoded length, or -1 when the value is
 * malformed, empty or longer than cap bytes. */
int iscsi_text_binary(const char *value, uint8_t *out, size_t cap);

#endif
