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

#include "settled.h"

/* each adds what it settled to *settled */
extern void TccSettleStartup(TccSettled *settled);
extern void TccSettleResults(List *calls, TccSettled *settled);
extern bool TccSettleActions(TccSettled *settled);
extern bool TccSettleDecided(TccSettled *settled);
extern void TccSettleHandedOver(pg_uuid_t *decided, int ndecided,
								TccSettled *settled);

#endif							/* TCC_SETTLE_H */
