/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The coordinator's shared memory: request slots and the workers' latches.
 *
 * Each coordinator database (tcc.database lists them) has an entry of its
 * own and request slots of its own, one per backend (indexed by its backend
 * id), through which a backend of that database hands intents to its
 * worker.  The worker publishes its latch in the entry so that backends can
 * wake it at commit of a decision.  Nothing is shared between two
 * databases: a request one database's worker has not taken yet never holds
 * up a backend of another.  Nothing process-local (curl handles, file
 * descriptors) is ever kept here.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "shmem.h"

TccShmem   *TccShmemRoot = NULL;
TccShared  *TccState = NULL;

/*
 * Returns the size of the shared state for that many coordinator databases
 * and the configured backends.
 */
static Size
TccShmemSize(int ndatabases)
{
	Size		size = offsetof(TccShmem, slots);

	return add_size(size, mul_size(mul_size(ndatabases, MaxBackends),
								   sizeof(TccSlot)));
}

/*
 * Asks the postmaster for our shared memory, for that many coordinator
 * databases (shmem_request_hook).
 */
void
TccShmemRequest(int ndatabases)
{
	RequestAddinShmemSpace(TccShmemSize(ndatabases));
}

/*
 * Creates or attaches the shared state (shmem_startup_hook), with an entry
 * for each of the coordinator databases, given by name.
 */
void
TccShmemStartup(List *databases)
{
	bool		found;
	Size		size = TccShmemSize(list_length(databases));

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	TccShmemRoot = ShmemInitStruct("tcc", size, &found);
	if (!found)
	{
		ListCell   *lc;

		memset(TccShmemRoot, 0, size);
		Assert(list_length(databases) <= TCC_MAX_DATABASES);
		TccShmemRoot->nslots = MaxBackends;
		foreach(lc, databases)
		{
			TccShared  *db = &TccShmemRoot->databases[TccShmemRoot->ndatabases];

			SpinLockInit(&db->mutex);
			db->index = TccShmemRoot->ndatabases++;
			strlcpy(db->database, lfirst(lc), NAMEDATALEN);
			for (int i = 0; i < TccShmemRoot->nslots; i++)
				SpinLockInit(&TccShmemSlot(db, i)->mutex);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Returns the shared state of the coordinator database of that name, or
 * NULL when tcc.database does not list it.
 */
TccShared *
TccShmemFind(const char *database)
{
	if (TccShmemRoot == NULL || database == NULL)
		return NULL;
	/* the names never change once the postmaster has set them */
	for (int i = 0; i < TccShmemRoot->ndatabases; i++)
	{
		if (strcmp(TccShmemRoot->databases[i].database, database) == 0)
			return &TccShmemRoot->databases[i];
	}
	return NULL;
}

/* Returns request slot i (a backend id less one) of a coordinator database. */
TccSlot *
TccShmemSlot(TccShared *db, int i)
{
	Assert(i >= 0 && i < TccShmemRoot->nslots);
	return &TccShmemRoot->slots[db->index * TccShmemRoot->nslots + i];
}

/* Sets the flags asked for in db and wakes its worker. */
static void
WakeWorkerOf(TccShared *db, bool work, bool check_trying, bool leave)
{
	Latch	   *latch;

	SpinLockAcquire(&db->mutex);
	if (work)
		db->work_pending = true;
	if (check_trying)
		db->check_trying = true;
	if (leave)
		db->leave_database = true;
	latch = db->worker_latch;
	SpinLockRelease(&db->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * Wakes the worker of this backend's database.  work: a decision or
 * operator action committed; check_trying: a transaction that began a
 * global transaction ended.
 */
void
TccWakeWorker(bool work, bool check_trying)
{
	if (TccState == NULL)
		return;
	WakeWorkerOf(TccState, work, check_trying, false);
}

/* Tells the worker of db to leave its database (DROP DATABASE), and wakes it. */
void
TccWakeWorkerToLeave(TccShared *db)
{
	WakeWorkerOf(db, false, false, true);
}

/*
 * Hands the worker of this backend's database the gids whose decision the
 * current transaction has just committed, and wakes it: it starts their
 * phase two by key.  More than TCC_DECIDED_PER_XACT (then gids holds only
 * the first ones), or more than there is room for, and the worker looks for
 * every decided transaction instead.
 */
void
TccHandDecided(pg_uuid_t *gids, int n)
{
	Latch	   *latch;

	if (TccState == NULL)
		return;
	SpinLockAcquire(&TccState->mutex);
	if (n <= TCC_DECIDED_PER_XACT &&
		n <= TCC_DECIDED_MAX - TccState->ndecided)
	{
		memcpy(&TccState->decided[TccState->ndecided], gids,
			   sizeof(pg_uuid_t) * n);
		TccState->ndecided += n;
		/* called at commit: the worker waits until these are durable */
		TccState->decided_lsn = Max(TccState->decided_lsn, XactLastCommitEnd);
	}
	else
		TccState->work_pending = true;
	latch = TccState->worker_latch;
	SpinLockRelease(&TccState->mutex);
	if (latch)
		SetLatch(latch);
}

/* Returns this backend's slot, which also records what tcc_wait waits on. */
static TccSlot *
WaitSlot(void)
{
	if (MyBackendId < 1 || MyBackendId > TccShmemRoot->nslots)
		elog(ERROR, "tcc: backend id %d has no slot", MyBackendId);
	return TccShmemSlot(TccState, MyBackendId - 1);
}

/*
 * tcc_wait: asks the worker to set this backend's latch once gid becomes
 * final or failed.  The caller reads the status only after this, so an
 * outcome committed before it is seen by that read, and one committed
 * after it wakes the backend.
 */
void
TccWaitFor(pg_uuid_t *gid)
{
	TccSlot    *slot = WaitSlot();

	SpinLockAcquire(&slot->mutex);
	slot->wait_gid = *gid;
	slot->wait_latch = MyLatch;
	slot->waiting = true;
	SpinLockRelease(&slot->mutex);
}

/* tcc_wait is over: no wake-up is wanted any more. */
void
TccWaitEnd(void)
{
	TccSlot    *slot = WaitSlot();

	SpinLockAcquire(&slot->mutex);
	slot->waiting = false;
	slot->wait_latch = NULL;
	SpinLockRelease(&slot->mutex);
}

/*
 * Worker, after the commit that made gids final or failed: wakes the
 * backends of its database whose tcc_wait waits on one of them.
 */
void
TccWakeWaiters(pg_uuid_t *gids, int n)
{
	if (n == 0)
		return;
	for (int i = 0; i < TccShmemRoot->nslots; i++)
	{
		TccSlot    *slot = TccShmemSlot(TccState, i);
		Latch	   *latch = NULL;

		SpinLockAcquire(&slot->mutex);
		if (slot->waiting)
		{
			for (int j = 0; j < n; j++)
			{
				if (memcmp(&slot->wait_gid, &gids[j], sizeof(pg_uuid_t)) == 0)
				{
					latch = slot->wait_latch;
					break;
				}
			}
		}
		SpinLockRelease(&slot->mutex);
		if (latch)
			SetLatch(latch);
	}
}
