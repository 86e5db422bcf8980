/*-------------------------------------------------------------------------
 *
 * status.h
 *	  A global transaction's status as its owner sees it (status.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/status.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_STATUS_H
#define TCC_STATUS_H

#include "utils/uuid.h"

#include "store.h"

/*
 * The final states of a global transaction (docs/states.md): no call is
 * made for it any more.  The one list of them: console/transactions.py's
 * FINAL and the status lists of the SQL scripts and of src/ name the same
 * states, which test/integration/t611_code_layout.py checks.
 */
#define TCC_FINAL_STATES "confirmed", "cancelled", "resolved"

extern void TccStatusReadOwn(pg_uuid_t *gid, TccGtxInfo *info);
extern const char *TccStatusShown(TccGtxInfo *info);
extern bool TccStatusIsFinal(const char *status);

#endif							/* TCC_STATUS_H */
