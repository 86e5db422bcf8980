/*-------------------------------------------------------------------------
 *
 * tries.h
 *	  Calling the tries of registered branches (tries.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/tries.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_TRIES_H
#define TCC_TRIES_H

#include "utils/uuid.h"

#include "protocol.h"
#include "request.h"

extern void TccTriesRun(pg_uuid_t *gid, TccBranchSpec *specs, int n,
						int first, TccTrace *trace, Datum *bodies,
						bool *nulls);

#endif							/* TCC_TRIES_H */
