/*-------------------------------------------------------------------------
 *
 * gid.h
 *	  The lock that serialises decisions on one gid, and a gid as text
 *	  (gid.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/gid.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_GID_H
#define TCC_GID_H

#include "utils/uuid.h"

extern bool TccGidLock(pg_uuid_t *gid, bool wait);
extern bool TccGidTryLock(pg_uuid_t *gid);
extern void TccGidUnlock(pg_uuid_t *gid);
extern char *TccGidText(pg_uuid_t *gid);

#endif							/* TCC_GID_H */
