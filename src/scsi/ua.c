/* Unit attention queues, one per I_T nexus that has talked to the logical unit. */
#include "scsi/ua.h"

#include <stdlib.h>
#include <string.h>

#define UA_QUEUE_MAX 8

struct ua_nexus {
	struct scsi_itn itn;
	enum sense_asc queue[UA_QUEUE_MAX];
	unsigned count;
	struct ua_nexus *next;
};

struct ua_set {
	struct ua_nexus *nexuses;
	ua_recorder_fn record;
	void *record_arg;
};

int ua_set_new(struct ua_set **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -1;
}

void ua_set_free(struct ua_set *ua)
{
	if (!ua)
		return;
	while (ua->nexuses) {
		struct ua_nexus *n = ua->nexuses;

		ua->nexuses = n->next;
		free(n);
	}
	free(ua);
}

bool ua_same_nexus(const struct scsi_itn *a, const struct scsi_itn *b)
{
	return a == b || (memcmp(a->isid, b->isid, sizeof(a->isid)) == 0 && a->tpgt == b->tpgt &&
	                  a->relative_port == b->relative_port &&
	                  strcmp(a->initiator_name, b->initiator_name) == 0 &&
	                  strcmp(a->target_name, b->target_name) == 0);
}

static struct ua_nexus *find(struct ua_set *ua, const struct scsi_itn *itn)
{
	for (struct ua_nexus *n = ua->nexuses; n; n = n->next)
		if (ua_same_nexus(&n->itn, itn))
			return n;
	return NULL;
}

static void push(struct ua_nexus *n, enum sense_asc asc)
{
	for (unsigned i = 0; i < n->count; i++)
		if (n->queue[i] == asc)
			return;
	/* A full queue keeps its oldest conditions: the initiator rereads state anyway. */
	if (n->count < UA_QUEUE_MAX)
		n->queue[n->count++] = asc;
}

void ua_raise(struct ua_set *ua, const struct scsi_itn *itn, enum sense_asc asc)
{
	struct ua_nexus *n = find(ua, itn);

	/* An unknown nexus gets POWER ON first contact, which covers anything older. */
	if (n)
		push(n, asc);
}

void ua_raise_all(struct ua_set *ua, const struct scsi_itn *except, enum sense_asc asc)
{
	for (struct ua_nexus *n = ua->nexuses; n; n = n->next)
		if (!except || !ua_same_nexus(&n->itn, except))
			push(n, asc);
}

void ua_raise_matching(struct ua_set *ua, bool (*match)(const struct scsi_itn *itn, void *arg),
                       void *arg, enum sense_asc asc)
{
	for (struct ua_nexus *n = ua->nexuses; n; n = n->next)
		if (match(&n->itn, arg))
			push(n, asc);
}

void ua_raise_set(struct ua_set *ua, const struct nexus_set *set, enum sense_asc asc)
{
	ua_raise_matching(ua, nexus_set_has, (void *)set, asc);
	if (ua->record)
		ua->record(ua->record_arg, set, asc);
}

void ua_set_recorder(struct ua_set *ua, ua_recorder_fn fn, void *arg)
{
	ua->record = fn;
	ua->record_arg = arg;
}

bool ua_take(struct ua_set *ua, const struct scsi_itn *itn, enum sense_asc *asc)
{
	struct ua_nexus *n = find(ua, itn);

	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			*asc = ASC_POWER_ON_RESET;
			return true;
		}
		n->itn = *itn;
		n->next = ua->nexuses;
		ua->nexuses = n;
		*asc = ASC_POWER_ON_RESET;
		return true;
	}
	if (n->count == 0)
		return false;
	*asc = n->queue[0];
	memmove(n->queue, n->queue + 1, (n->count - 1) * sizeof(n->queue[0]));
	n->count--;
	return true;
}

bool ua_pending(struct ua_set *ua, const struct scsi_itn *itn)
{
	struct ua_nexus *n = find(ua, itn);

	return !n || n->count > 0;
}

void ua_forget(struct ua_set *ua, const struct scsi_itn *itn)
{
	for (struct ua_nexus **p = &ua->nexuses; *p; p = &(*p)->next) {
		if (ua_same_nexus(&(*p)->itn, itn)) {
			struct ua_nexus *n = *p;

			*p = n->next;
			free(n);
			return;
		}
	}
}
