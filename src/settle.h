/*-------------------------------------------------------------------------
 *
 * settle.h
 *	  The worker's moves on the tables after the intents: phase two,
 *	  operator actions, call outcomes (settle.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/settle.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_SETTLE_H
#define TCC_SETTLE_H

#include "nodes/pg_list.h"
#include "utils/palloc.h"
#include "utils/uuid.h"

/* how phase two was last started from the tables (TccSettleTookPhases) */
typedef enum TccPhasesTaken
{
	TCC_PHASES_NONE,			/* not at all */
	TCC_PHASES_HANDED,			/* only for gids whose decisions were handed
								 * over with their commit's WAL position */
	TCC_PHASES_ANY				/* for gids found in the tables */
} TccPhasesTaken;

extern void TccSettleStartup(void);
extern TccPhasesTaken TccSettleTookPhases(void);
extern bool TccSettleActions(void);
extern bool TccSettlePhases(bool scan, pg_uuid_t *decided, int ndecided);
extern void TccSettleResults(List *calls);
extern pg_uuid_t *TccSettleTakeSettled(int *n);

#endif							/* TCC_SETTLE_H */
