/*-------------------------------------------------------------------------
 *
 * calls.h
 *	  The confirm and cancel calls that are due, ready to start (calls.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/calls.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_CALLS_H
#define TCC_CALLS_H

#include "nodes/pg_list.h"
#include "utils/palloc.h"
#include "utils/uuid.h"

extern List *TccCallsLoad(pg_uuid_t *gids, int *branches, int n,
						  MemoryContext cxt);
extern List *TccCallsFromMemory(pg_uuid_t *gids, int *branches, int *n,
								const pg_uuid_t *busy, int nbusy,
								MemoryContext cxt);

#endif							/* TCC_CALLS_H */
