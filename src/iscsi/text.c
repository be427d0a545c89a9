#include "iscsi/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Only CHAP challenges and responses carry long binary values (RFC 7143 §12.1.3). */
static size_t value_max(const char *key)
{
	if (strcmp(key, "CHAP_C") == 0 || strcmp(key, "CHAP_R") == 0)
		return ISCSI_TEXT_BINARY_VALUE_MAX;
	return ISCSI_TEXT_VALUE_MAX;
}

/* RFC 7143 §6.1: letters, digits, '.', '-', '+', '@', '_', starting with a letter (the
 * RFC says upper case, yet defines iSCSIProtocolLevel); '#' only in the public extension
 * form "X#...". */
static bool key_valid(const char *key, size_t len)
{
	if (len == 0 || len > ISCSI_TEXT_KEY_MAX || !((key[0] >= 'A' && key[0] <= 'Z') ||
	                                              (key[0] >= 'a' && key[0] <= 'z')))
		return false;
	for (size_t i = 1; i < len; i++) {
		char c = key[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if (strchr(".-+@_", c) != NULL)
			continue;
		if (c == '#' && i == 1 && key[0] == 'X')
			continue;
		return false;
	}
	return true;
}

static int key_order(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorting the keys keeps a list of thousands of keys from costing quadratic time. */
static enum iscsi_text_error check_duplicates(const struct iscsi_text_list *list)
{
	const char **keys;
	enum iscsi_text_error err = ISCSI_TEXT_OK;

	if (list->count < 2)
		return ISCSI_TEXT_OK;
	keys = malloc(list->count * sizeof(*keys));
	if (keys == NULL)
		return ISCSI_TEXT_ENOMEM;
	for (size_t i = 0; i < list->count; i++)
		keys[i] = list->pairs[i].key;
	qsort(keys, list->count, sizeof(*keys), key_order);
	for (size_t i = 1; i < list->count && err == ISCSI_TEXT_OK; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0)
			err = ISCSI_TEXT_EDUP;
	free(keys);
	return err;
}

enum iscsi_text_error iscsi_text_parse(const uint8_t *data, size_t len, struct iscsi_text_list *list)
{
	size_t count = 0, pos;
	enum iscsi_text_error err = ISCSI_TEXT_OK;

	memset(list, 0, sizeof(*list));
	while (len > 0 && data[len - 1] == '\0' && (len < 2 || data[len - 2] == '\0'))
		len--;
	if (len == 0)
		return ISCSI_TEXT_OK;
	if (data[len - 1] != '\0')
		return ISCSI_TEXT_ESYNTAX;
	for (size_t i = 0; i < len; i++)
		count += data[i] == '\0';

	list->copy = malloc(len);
	list->pairs = calloc(count, sizeof(*list->pairs));
	if (list->copy == NULL || list->pairs == NULL) {
		iscsi_text_list_free(list);
		return ISCSI_TEXT_ENOMEM;
	}
	memcpy(list->copy, data, len);

	for (pos = 0; pos < len && err == ISCSI_TEXT_OK;) {
		char *pair = list->copy + pos;
		size_t pair_len = strlen(pair);
		char *eq = memchr(pair, '=', pair_len);

		pos += pair_len + 1;
		if (eq == NULL) {
			err = ISCSI_TEXT_ESYNTAX;
			break;
		}
		*eq = '\0';
		if (!key_valid(pair, (size_t)(eq - pair)))
			err = ISCSI_TEXT_EKEY;
		else if (strlen(eq + 1) > value_max(pair))
			err = ISCSI_TEXT_ELONG;
		list->pairs[list->count].key = pair;
		list->pairs[list->count].value = eq + 1;
		list->count++;
	}
	if (err == ISCSI_TEXT_OK)
		err = check_duplicates(list);
	if (err != ISCSI_TEXT_OK)
		iscsi_text_list_free(list);
	return err;
}

void iscsi_text_list_free(struct iscsi_text_list *list)
{
	free(list->copy);
	free(list->pairs);
	memset(list, 0, sizeof(*list));
}

const char *iscsi_text_find(const struct iscsi_text_list *list, const char *key)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->pairs[i].key, key) == 0)
			return list->pairs[i].value;
	return NULL;
}

const char *iscsi_text_strerror(enum iscsi_text_error err)
{
	static const char *const messages[] = {
		[ISCSI_TEXT_OK] = "no error",
		[ISCSI_TEXT_ENOMEM] = "out of memory",
		[ISCSI_TEXT_ESYNTAX] = "malformed key=value pair",
		[ISCSI_TEXT_EKEY] = "invalid key name",
		[ISCSI_TEXT_ELONG] = "value too long",
		[ISCSI_TEXT_EDUP] = "duplicate key",
	};

	if ((size_t)err >= sizeof(messages) / sizeof(messages[0]))
		return "unknown error";
	return messages[err];
}

void iscsi_text_buf_init(struct iscsi_text_buf *buf) { memset(buf, 0, sizeof(*buf)); }

void iscsi_text_buf_reset(struct iscsi_text_buf *buf)
{
	buf->len = 0;
	buf->failed = false;
}

void iscsi_text_buf_free(struct iscsi_text_buf *buf)
{
	free(buf->data);
	iscsi_text_buf_init(buf);
}

static bool reserve(struct iscsi_text_buf *buf, size_t extra)
{
	size_t cap;
	uint8_t *data;

	if (buf->failed)
		return false;
	if (buf->len + extra <= buf->cap)
		return true;
	cap = buf->cap ? buf->cap : 256;
	while (cap < buf->len + extra)
		cap *= 2;
	data = realloc(buf->data, cap);
	if (data == NULL) {
		buf->failed = true;
		return false;
	}
	buf->data = data;
	buf->cap = cap;
	return true;
}

void iscsi_text_append(struct iscsi_text_buf *buf, const void *bytes, size_t len)
{
	if (len == 0 || !reserve(buf, len))
		return;
	memcpy(buf->data + buf->len, bytes, len);
	buf->len += len;
}

void iscsi_text_add(struct iscsi_text_buf *buf, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value);

	if (!reserve(buf, klen + vlen + 2))
		return;
	memcpy(buf->data + buf->len, key, klen);
	buf->data[buf->len + klen] = '=';
	memcpy(buf->data + buf->len + klen + 1, value, vlen + 1);
	buf->len += klen + vlen + 2;
}

void iscsi_text_addf(struct iscsi_text_buf *buf, const char *key, const char *fmt, ...)
{
	char value[ISCSI_TEXT_VALUE_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value)) {
		buf->failed = true;
		return;
	}
	iscsi_text_add(buf, key, value);
}

void iscsi_text_add_hex(struct iscsi_text_buf *buf, const char *key, const uint8_t *bytes, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t klen = strlen(key);
	uint8_t *p;

	if (!reserve(buf, klen + 4 + 2 * len))
		return;
	p = buf->data + buf->len;
	memcpy(p, key, klen);
	p += klen;
	memcpy(p, "=0x", 3);
	p += 3;
	for (size_t i = 0; i < len; i++) {
		*p++ = (uint8_t)digits[bytes[i] >> 4];
		*p++ = (uint8_t)digits[bytes[i] & 0xf];
	}
	*p++ = '\0';
	buf->len = (size_t)(p - buf->data);
}

bool iscsi_text_next_item(const char **cursor, const char **item, size_t *len)
{
	const char *p = *cursor;

	if (*p == '\0')
		return false;
	*item = p;
	*len = strcspn(p, ",");
	p += *len;
	*cursor = *p == ',' ? p + 1 : p;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int iscsi_text_number(const char *value, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;
	const char *p = value;

	if ((p[0] == '0') && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++) {
		int d = hex_digit(*p);

		if (d < 0 || (unsigned)d >= base)
			return -1;
		if ((uint64_t)d > max || v > (max - (uint64_t)d) / base)
			return -1;
		v = v * base + (uint64_t)d;
	}
	*out = v;
	return 0;
}

static int base64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int decode_hex(const char *p, uint8_t *out, size_t cap)
{
	size_t n = strlen(p), len = 0, i = 0;

	/* An odd number of digits means an implied leading zero. */
	if (n % 2 == 1) {
		int d = hex_digit(p[0]);

		if (d < 0 || cap == 0)
			return -1;
		out[len++] = (uint8_t)d;
		i = 1;
	}
	for (; i < n; i += 2) {
		int hi = hex_digit(p[i]), lo = hex_digit(p[i + 1]);

		if (hi < 0 || lo < 0 || len == cap)
			return -1;
		out[len++] = (uint8_t)(hi << 4 | lo);
	}
	return (int)len;
}

static int decode_base64(const char *p, uint8_t *out, size_t cap)
{
	size_t n = strlen(p), len = 0, pad = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	while (n > 0 && p[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if ((n + pad) % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d = base64_digit(p[i]);

		if (d < 0)
			return -1;
		acc = acc << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (len == cap)
				return -1;
			out[len++] = (uint8_t)(acc >> bits);
		}
	}
	return (int)len;
}

int iscsi_text_binary(const char *value, uint8_t *out, size_t cap)
{
	int len;

	if (value[0] != '0' || value[1] == '\0')
		return -1;
	if (value[1] == 'x' || value[1] == 'X')
		len = decode_hex(value + 2, out, cap);
	else if (value[1] == 'b' || value[1] == 'B')
		len = decode_base64(value + 2, out, cap);
	else
		return -1;
	return len > 0 ? len : -1;
}
