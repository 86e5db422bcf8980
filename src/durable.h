/*-------------------------------------------------------------------------
 *
 * durable.h
 *	  Waiting until a commit is durable (durable.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/durable.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_DURABLE_H
#define TCC_DURABLE_H

#include "access/xlogdefs.h"

extern void TccDurableWait(XLogRecPtr lsn);
extern XLogRecPtr TccDurableEndOfWal(void);
extern void TccDurableRequirePrimary(void);

#endif							/* TCC_DURABLE_H */
