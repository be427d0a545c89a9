/* Sets of I_T nexuses by registration or as a whole. */
#include "scsi/nexus_set.h"

#include "scsi/pr_port.h"
#include "scsi/ua.h"

bool nexus_reg_covers(const struct pr_reg *r, const struct scsi_itn *itn)
{
	return pr_port_matches(&r->port, itn) && (r->all_tg_pt || r->relative_port == itn->relative_port);
}

bool nexus_set_has(const struct scsi_itn *itn, void *arg)
{
	const struct nexus_set *s = arg;

	if (s->except && ua_same_nexus(itn, s->except))
		return false;
	if (s->all)
		return true;
	for (size_t i = 0; i < s->nregs; i++)
		if (nexus_reg_covers(&s->regs[i], itn))
			return true;
	return false;
}
