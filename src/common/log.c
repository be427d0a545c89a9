#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level threshold = LOG_LEVEL_INFO;

static const char *const level_names[] = {
	[LOG_LEVEL_ERR] = "error",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* sd-daemon(3) priority prefixes, so journald files each line at its level. */
static const char *const level_prefix[] = {
	[LOG_LEVEL_ERR] = "<3>",
	[LOG_LEVEL_WARN] = "<4>",
	[LOG_LEVEL_INFO] = "<6>",
	[LOG_LEVEL_DEBUG] = "<7>",
};

void log_set_level(enum log_level level) { threshold = level; }

int log_enabled(enum log_level level) { return level <= threshold; }

int log_parse_level(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t n;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	/* One write per line so concurrent threads do not interleave; under systemd the
	 * journal reads the priority prefix instead of a timestamp. */
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "%s%s: %s\n", level_prefix[level], level_names[level], line);
	else
		fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, level_names[level], line);
}
