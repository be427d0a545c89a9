/* twinctl's saved servers, like the console's server list: a file of lines
 *   NAME ADDRESS [sha256:PIN] [secret-file:PATH]
 * (~/.config/twinsan/servers, mode 0600), where ADDRESS is unix:PATH or HOST:PORT, PIN the
 * SHA-256 of the certificate a TCP server showed the first time (trust on first use), and
 * PATH the copy of its admin secret to log in with.  Rewritten whole, crash-safely
 * (temporary file, fsync, rename). */
#ifndef TWINSAN_MGMT_SERVER_LIST_H
#define TWINSAN_MGMT_SERVER_LIST_H

#include <stdbool.h>
#include <stddef.h>

#define SERVER_NAME_MAX 64
#define SERVER_ADDRESS_MAX 256
#define SERVER_PIN_HEX 64

struct server_entry {
	char name[SERVER_NAME_MAX];
	char address[SERVER_ADDRESS_MAX];
	char pin[SERVER_PIN_HEX + 1]; /* hex SHA-256 of the server's certificate; "" unknown */
	char secret_file[SERVER_ADDRESS_MAX]; /* absolute; "" none */
};

struct server_list {
	struct server_entry *v;
	size_t n;
};

/* $XDG_CONFIG_HOME/twinsan/servers, else $HOME/.config/twinsan/servers. */
int server_list_path(char *buf, size_t len, char *err, size_t errlen);

/* Names are letters, digits, '.', '_' and '-' (not starting with '-'): they never look
 * like an address. */
bool server_name_valid(const char *name);
/* unix:/ABSOLUTE/PATH, or HOST:PORT ([v6]:PORT); -1 with err saying what is wrong. */
int server_address_check(const char *address, char *err, size_t errlen);

/* A missing file is an empty list; a bad line is an error naming file:line. */
int server_list_load(const char *path, struct server_list *l, char *err, size_t errlen);
int server_list_save(const char *path, const struct server_list *l, char *err, size_t errlen);
void server_list_free(struct server_list *l);

const struct server_entry *server_list_find(const struct server_list *l, const char *name);
/* Adds or replaces (forgetting the pin); name and address must be valid, secret_file
 * NULL or an absolute path without blanks. */
int server_list_set(struct server_list *l, const char *name, const char *address, const char *secret_file);
/* Pins the certificate of a saved server; -1 if there is no such name or pin is not
 * 64 hex digits. */
int server_list_pin(struct server_list *l, const char *name, const char *pin);
/* -1 if there is no such name. */
int server_list_remove(struct server_list *l, const char *name);

#endif
