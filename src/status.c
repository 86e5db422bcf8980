/*-------------------------------------------------------------------------
 *
 * status.c
 *	  A global transaction's status as its owner sees it: read for the
 *	  owner only, shown as the views show it, final or not.
 *
 * The SQL API (api.c) and the operator's functions (ops.c) both read a gid
 * this way before they act on it, so it lives below both.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/status.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "gid.h"
#include "states.h"
#include "status.h"
#include "store.h"
#include "tcc.h"

/*
 * Reads a gid for its owner into info: TC004 if unknown, 42501 if it
 * belongs to another role and the caller is not superuser.
 */
void
TccStatusReadOwn(pg_uuid_t *gid, TccGtxInfo *info)
{
	if (!TccStoreGetGtx(gid, info))
		ereport(ERROR,
				(errcode(ERRCODE_TCC_UNKNOWN_GID),
				 errmsg("global transaction %s does not exist", TccGidText(gid))));
	if (info->owner != GetUserId() && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("global transaction %s belongs to another role",
						TccGidText(gid))));
}

/*
 * Returns the status as the views show it: a decided transaction still
 * trying is already confirming or cancelling.
 */
const char *
TccStatusShown(TccGtxInfo *info)
{
	if (strcmp(info->status, "trying") == 0 && info->decided)
		return info->decision ? "confirming" : "cancelling";
	return info->status;
}

/* Returns true for the final states (TCC_FINAL_STATES). */
bool
TccStatusIsFinal(const char *status)
{
	static const char *const final_states[] = {TCC_FINAL_STATES};

	for (int i = 0; i < lengthof(final_states); i++)
	{
		if (strcmp(status, final_states[i]) == 0)
			return true;
	}
	return false;
}
