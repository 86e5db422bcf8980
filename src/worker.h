/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The coordinator worker (worker.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_WORKER_H
#define TCC_WORKER_H

extern PGDLLEXPORT void TccWorkerMain(Datum arg);
extern void TccRegisterWorker(int index, int worker_number,
							  const char *database);
extern void TccWatchDropDatabase(void);

#endif							/* TCC_WORKER_H */
