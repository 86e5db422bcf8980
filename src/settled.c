/*-------------------------------------------------------------------------
 *
 * settled.c
 *	  What a turn of the worker settled: the gids made final or failed and
 *	  how phase two was started, handed back to the worker in a struct it
 *	  owns (settle.c fills it, worker.c acts on it after the commit).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/settled.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "settled.h"

/* room for this many settled gids at first (TccSettledAdd) */
#define SETTLED_FIRST_ROOM 64

/* Starts an empty account of a turn's settling, kept in cxt. */
void
TccSettledInit(TccSettled *settled, MemoryContext cxt)
{
	settled->cxt = cxt;
	settled->gids = NULL;
	settled->n = 0;
	settled->max = 0;
	settled->phases = TCC_PHASES_NONE;
}

/* Notes that gid became final or failed: its tcc_wait is woken at commit. */
void
TccSettledAdd(TccSettled *settled, pg_uuid_t *gid)
{
	if (settled->n == settled->max)
	{
		settled->max = Max(SETTLED_FIRST_ROOM, settled->max * 2);
		settled->gids = settled->gids == NULL ?
			MemoryContextAlloc(settled->cxt, sizeof(pg_uuid_t) * settled->max) :
			repalloc(settled->gids, sizeof(pg_uuid_t) * settled->max);
	}
	settled->gids[settled->n++] = *gid;
}

/* Notes that phase two was (re)started from the tables, in the way how. */
void
TccSettledTookPhases(TccSettled *settled, TccPhasesTaken how)
{
	settled->phases = Max(settled->phases, how);
}
