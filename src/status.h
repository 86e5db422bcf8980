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

#include "states.h"
#include "store.h"

extern void TccStatusReadOwn(pg_uuid_t *gid, TccGtxInfo *info);
extern const char *TccStatusShown(TccGtxInfo *info);
extern bool TccStatusIsFinal(const char *status);

#endif							/* TCC_STATUS_H */
