/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The coordinator's shared memory: request slots and the worker's latch.
 *
 * Every backend owns one request slot (indexed by its backend id) through
 * which it hands intents to the worker.  The worker publishes its latch here
 * so that backends can wake it at commit of a decision.  Nothing
 * process-local (curl handles, file descriptors) is ever kept here.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "tcc.h"

TccShared  *TccState = NULL;

/* Returns the size of the shared state for the configured backends. */
static Size
TccShmemSize(void)
{
	Size		size = offsetof(TccShared, slots);

	return add_size(size, mul_size(MaxBackends, sizeof(TccSlot)));
}

/* Asks the postmaster for our shared memory (shmem_request_hook). */
void
TccShmemRequest(void)
{
	RequestAddinShmemSpace(TccShmemSize());
}

/* Creates or attaches the shared state (shmem_startup_hook). */
void
TccShmemStartup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	TccState = ShmemInitStruct("tcc", TccShmemSize(), &found);
	if (!found)
	{
		memset(TccState, 0, TccShmemSize());
		SpinLockInit(&TccState->mutex);
		TccState->nslots = MaxBackends;
		for (int i = 0; i < TccState->nslots; i++)
			SpinLockInit(&TccState->slots[i].mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Wakes the worker.  work: a decision or operator action committed;
 * check_trying: a transaction that began a global transaction ended.
 */
void
TccWakeWorker(bool work, bool check_trying)
{
	Latch	   *latch;

	if (TccState == NULL)
		return;
	SpinLockAcquire(&TccState->mutex);
	if (work)
		TccState->work_pending = true;
	if (check_trying)
		TccState->check_trying = true;
	latch = TccState->worker_latch;
	SpinLockRelease(&TccState->mutex);
	if (latch)
		SetLatch(latch);
}
