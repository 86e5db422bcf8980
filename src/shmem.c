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
#include "pgstat.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "schedule.h"
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
			/* a pause may be in the tables: tries look until the worker read them */
			db->maybe_paused = true;
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

/*
 * At commit of a tcc_pause or tcc_resume: tries look up pauses from now
 * on, and the worker reads them again (at once: it is woken).
 */
void
TccPausesChanged(void)
{
	Latch	   *latch;

	if (TccState == NULL)
		return;
	SpinLockAcquire(&TccState->mutex);
	TccState->pause_generation++;
	TccState->maybe_paused = true;
	latch = TccState->worker_latch;
	SpinLockRelease(&TccState->mutex);
	if (latch)
		SetLatch(latch);
}

/* Returns false when no destination is paused: tries need not look. */
bool
TccMaybePaused(void)
{
	bool		maybe;

	SpinLockAcquire(&TccState->mutex);
	maybe = TccState->maybe_paused;
	SpinLockRelease(&TccState->mutex);
	return maybe;
}

/*
 * Worker: the generation of pauses, read before the snapshot the pauses
 * are read with.
 */
uint32
TccPauseGeneration(void)
{
	uint32		generation;

	SpinLockAcquire(&TccState->mutex);
	generation = TccState->pause_generation;
	SpinLockRelease(&TccState->mutex);
	return generation;
}

/*
 * Worker: it read the pauses of that generation; any says whether one
 * is paused.  A pause committed since keeps tries looking.
 */
void
TccPausesLoaded(uint32 generation, bool any)
{
	SpinLockAcquire(&TccState->mutex);
	if (TccState->pause_generation == generation)
		TccState->maybe_paused = any;
	SpinLockRelease(&TccState->mutex);
}

/* Worker: true when a backend waits for a report of the destinations. */
bool
TccDestinationsAsked(void)
{
	bool		asked;

	SpinLockAcquire(&TccState->mutex);
	asked = TccState->dest_asked != TccState->dest_answered;
	SpinLockRelease(&TccState->mutex);
	return asked;
}

/*
 * Worker: publishes a report of the destinations, answering every request
 * made until now.  The rows are copied outside the spinlock, flagged as
 * being written: readers that see the flag, or a newer answer after their
 * copy, read again.
 */
void
TccDestinationsAnswer(TccDestRow *rows, int n)
{
	uint32		asked;

	SpinLockAcquire(&TccState->mutex);
	asked = TccState->dest_asked;
	TccState->dest_writing = true;
	SpinLockRelease(&TccState->mutex);
	n = Min(n, TCC_DEST_ROWS);
	memcpy(TccState->dest_rows, rows, sizeof(TccDestRow) * n);
	SpinLockAcquire(&TccState->mutex);
	TccState->ndest_rows = n;
	TccState->dest_answered = asked;
	TccState->dest_writing = false;
	SpinLockRelease(&TccState->mutex);
}

/* how long a reader of the destinations' report waits for the worker */
#define DEST_REPORT_WAIT_MS 2000
/* and how often it looks meanwhile */
#define DEST_REPORT_POLL_MS 2

/*
 * Asks the worker for a report of the destinations and copies it into rows
 * (TCC_DEST_ROWS of them); returns how many, or -1 when no worker answered
 * within two seconds.  Polls every few milliseconds: only a person or a
 * monitor reading tcc.destinations waits here.
 */
int
TccDestinationsRead(TccDestRow *rows)
{
	uint32		mine;
	Latch	   *latch;

	SpinLockAcquire(&TccState->mutex);
	mine = ++TccState->dest_asked;
	latch = TccState->worker_latch;
	SpinLockRelease(&TccState->mutex);
	if (latch == NULL)
		return -1;
	SetLatch(latch);
	for (int waited = 0; waited < DEST_REPORT_WAIT_MS;
		 waited += DEST_REPORT_POLL_MS)
	{
		uint32		answered;
		bool		ready;
		int			n = 0;

		SpinLockAcquire(&TccState->mutex);
		answered = TccState->dest_answered;
		ready = !TccState->dest_writing && (int32) (answered - mine) >= 0;
		if (ready)
			n = TccState->ndest_rows;
		SpinLockRelease(&TccState->mutex);
		if (ready)
		{
			memcpy(rows, TccState->dest_rows, sizeof(TccDestRow) * n);
			SpinLockAcquire(&TccState->mutex);
			ready = !TccState->dest_writing &&
				TccState->dest_answered == answered;
			SpinLockRelease(&TccState->mutex);
			if (ready)
				return n;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 DEST_REPORT_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return -1;
}
