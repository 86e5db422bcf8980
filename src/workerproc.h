/*-------------------------------------------------------------------------
 *
 * workerproc.h
 *	  The coordinator worker's process: attaching, its session, its memory
 *	  and the error it leaves (workerproc.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/workerproc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_WORKERPROC_H
#define TCC_WORKERPROC_H

#include "datatype/timestamp.h"

extern void TccWorkerProcAttach(int index, int worker);
extern void TccWorkerProcSetUpMalloc(void);
extern void TccWorkerProcTrimHeap(TimestampTz *trimmed_at);
extern void TccWorkerProcLeaveError(const char *message);

#endif							/* TCC_WORKERPROC_H */
