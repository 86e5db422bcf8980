/*-------------------------------------------------------------------------
 *
 * settled.h
 *	  What a turn of the worker settled, for it to act on once its unit of
 *	  work committed (settled.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/settled.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_SETTLED_H
#define TCC_SETTLED_H

#include "utils/palloc.h"
#include "utils/uuid.h"

/* how phase two was started from the tables in a turn */
typedef enum TccPhasesTaken
{
	TCC_PHASES_NONE,			/* not at all */
	TCC_PHASES_HANDED,			/* only for gids whose decisions were handed
								 * over with their commit's WAL position */
	TCC_PHASES_ANY				/* for gids found in the tables */
} TccPhasesTaken;

/*
 * What settling did in one unit of work: the gids made final or failed
 * (their tcc_wait is woken once it committed) and how phase two was
 * started (the worker makes those decisions durable before their calls).
 */
typedef struct TccSettled
{
	MemoryContext cxt;			/* where gids lives: outlives the commit */
	pg_uuid_t  *gids;
	int			n;
	int			max;
	TccPhasesTaken phases;
} TccSettled;

extern void TccSettledInit(TccSettled *settled, MemoryContext cxt);
extern void TccSettledAdd(TccSettled *settled, pg_uuid_t *gid);
extern void TccSettledTookPhases(TccSettled *settled, TccPhasesTaken how);

#endif							/* TCC_SETTLED_H */
