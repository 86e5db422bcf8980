/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  The coordinator's shared memory: request slots, the workers' latches
 *	  and the calls they have in flight.
 *
 * Each coordinator database (tcc.database lists them) has an entry of its
 * own, an entry for each of its workers (tcc.workers) and request slots of
 * its own, one per backend (indexed by its backend id), through which a
 * backend of that database hands intents to the worker that owns their
 * gid.  Each worker publishes its latch in its entry so that backends can
 * wake it at commit of a decision.  The database's entry counts the calls
 * all its workers have in flight, so that tcc.max_concurrency and
 * tcc.destination_share hold for the database as a whole.  Nothing is
 * shared between two databases: a request one database's worker has not
 * taken yet never holds up a backend of another.  Nothing process-local
 * (curl handles, file descriptors) is ever kept here.
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
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/backendid.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "tcc.h"

TccShmem   *TccShmemRoot = NULL;
TccDatabase *TccDb = NULL;
TccShared  *TccState = NULL;

/*
 * Returns the size of the shared state for that many coordinator databases,
 * tcc.workers workers each and the configured backends.
 */
static Size
TccShmemSize(int ndatabases)
{
	Size		size = MAXALIGN(sizeof(TccShmem));

	size = add_size(size, MAXALIGN(mul_size(mul_size(ndatabases, tcc_workers),
											sizeof(TccShared))));
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

/* Sets up the entries of a coordinator database and of its workers. */
static void
InitDatabase(TccDatabase *db, int index, const char *name)
{
	SpinLockInit(&db->mutex);
	SpinLockInit(&db->calls_mutex);
	/* a pause may be in the tables: tries look until a worker read them */
	db->maybe_paused = true;
	db->index = index;
	strlcpy(db->name, name, NAMEDATALEN);
	for (int k = 0; k < TccShmemRoot->nworkers; k++)
	{
		TccShared  *w = TccShmemWorker(db, k);

		SpinLockInit(&w->mutex);
		w->database = index;
		w->worker = k;
	}
	for (int i = 0; i < TccShmemRoot->nslots; i++)
		SpinLockInit(&TccShmemSlot(db, i)->mutex);
}

/*
 * Creates or attaches the shared state (shmem_startup_hook), with an entry
 * for each of the coordinator databases, given by name.
 */
void
TccShmemStartup(List *databases)
{
	bool		found;
	int			ndatabases = list_length(databases);
	Size		size = TccShmemSize(ndatabases);

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	TccShmemRoot = ShmemInitStruct("tcc", size, &found);
	if (!found)
	{
		char	   *next = (char *) TccShmemRoot + MAXALIGN(sizeof(TccShmem));
		ListCell   *lc;

		memset(TccShmemRoot, 0, size);
		Assert(ndatabases <= TCC_MAX_DATABASES);
		TccShmemRoot->nslots = MaxBackends;
		TccShmemRoot->nworkers = tcc_workers;
		TccShmemRoot->workers = (TccShared *) next;
		next += MAXALIGN(sizeof(TccShared) * ndatabases * tcc_workers);
		TccShmemRoot->slots = (TccSlot *) next;
		foreach(lc, databases)
		{
			int			index = TccShmemRoot->ndatabases++;

			InitDatabase(&TccShmemRoot->databases[index], index, lfirst(lc));
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Returns the shared state of the coordinator database of that name, or
 * NULL when tcc.database does not list it.
 */
TccDatabase *
TccShmemFind(const char *database)
{
	if (TccShmemRoot == NULL || database == NULL)
		return NULL;
	/* the names never change once the postmaster has set them */
	for (int i = 0; i < TccShmemRoot->ndatabases; i++)
	{
		if (strcmp(TccShmemRoot->databases[i].name, database) == 0)
			return &TccShmemRoot->databases[i];
	}
	return NULL;
}

/* Returns the entry of worker k of a coordinator database. */
TccShared *
TccShmemWorker(TccDatabase *db, int k)
{
	Assert(k >= 0 && k < TccShmemRoot->nworkers);
	return &TccShmemRoot->workers[db->index * TccShmemRoot->nworkers + k];
}

/* Returns request slot i (a backend id less one) of a coordinator database. */
TccSlot *
TccShmemSlot(TccDatabase *db, int i)
{
	Assert(i >= 0 && i < TccShmemRoot->nslots);
	return &TccShmemRoot->slots[db->index * TccShmemRoot->nslots + i];
}

/*
 * Returns the worker that owns a gid: its last two bytes modulo
 * tcc.workers.  The SQL function tcc._gid_owner says the same, for the
 * workers' statements.
 */
int
TccShmemOwner(const pg_uuid_t *gid)
{
	uint32		h = ((uint32) gid->data[UUID_LEN - 2] << 8) |
		gid->data[UUID_LEN - 1];

	return (int) (h % (uint32) TccShmemRoot->nworkers);
}

/*
 * Worker: sets the two parameters TCC_SQL_OWNED reads, tcc.workers and its
 * number, in args[0] and args[1].
 */
void
TccShmemOwnerArgs(Datum *args)
{
	args[0] = Int32GetDatum(TccShmemRoot->nworkers);
	args[1] = Int32GetDatum(TccState->worker);
}

/* Sets the flags asked for in a worker's entry and wakes it. */
static void
WakeOne(TccShared *w, bool work, bool check_trying, bool leave)
{
	Latch	   *latch;

	SpinLockAcquire(&w->mutex);
	if (work)
		w->work_pending = true;
	if (check_trying)
		w->check_trying = true;
	if (leave)
		w->leave_database = true;
	latch = w->worker_latch;
	SpinLockRelease(&w->mutex);
	if (latch)
		SetLatch(latch);
}

/* Sets the flags asked for in every worker of db and wakes them. */
static void
WakeAll(TccDatabase *db, bool work, bool check_trying, bool leave)
{
	for (int k = 0; k < TccShmemRoot->nworkers; k++)
		WakeOne(TccShmemWorker(db, k), work, check_trying, leave);
}

/*
 * Wakes the workers of this backend's database.  work: a decision or
 * operator action committed; check_trying: a transaction that began a
 * global transaction ended.  Each looks at the gids it owns.
 */
void
TccWakeWorker(bool work, bool check_trying)
{
	if (TccDb == NULL)
		return;
	WakeAll(TccDb, work, check_trying, false);
}

/* Wakes worker k of this process's database, with no flag set. */
void
TccWakeOwner(int worker)
{
	WakeOne(TccShmemWorker(TccDb, worker), false, false, false);
}

/* Tells the workers of db to leave their database (DROP DATABASE). */
void
TccWakeWorkerToLeave(TccDatabase *db)
{
	WakeAll(db, false, false, true);
}

/*
 * Hands each worker of this backend's database the gids it owns whose
 * decision the current transaction has just committed, and wakes it: it
 * starts their phase two by key.  More than TCC_DECIDED_PER_XACT for a
 * worker (then gids holds only the first ones), or more than there is room
 * for, and that worker looks for every decided transaction instead.
 */
void
TccHandDecided(pg_uuid_t *gids, int n)
{
	if (TccDb == NULL)
		return;
	for (int k = 0; k < TccShmemRoot->nworkers; k++)
	{
		TccShared  *w = TccShmemWorker(TccDb, k);
		pg_uuid_t	mine[TCC_DECIDED_PER_XACT];
		int			nmine = 0;
		bool		overflow = false;
		Latch	   *latch;

		for (int i = 0; i < n; i++)
		{
			if (TccShmemOwner(&gids[i]) != k)
				continue;
			if (nmine == TCC_DECIDED_PER_XACT)
			{
				overflow = true;
				break;
			}
			mine[nmine++] = gids[i];
		}
		/* the caller passes at most TCC_DECIDED_PER_XACT: more is overflow */
		if (n > TCC_DECIDED_PER_XACT)
			overflow = true;
		if (nmine == 0 && !overflow)
			continue;
		SpinLockAcquire(&w->mutex);
		if (!overflow && nmine <= TCC_DECIDED_MAX - w->ndecided)
		{
			memcpy(&w->decided[w->ndecided], mine, sizeof(pg_uuid_t) * nmine);
			w->ndecided += nmine;
			/* called at commit: the worker waits until these are durable */
			w->decided_lsn = Max(w->decided_lsn, XactLastCommitEnd);
		}
		else
			w->work_pending = true;
		latch = w->worker_latch;
		SpinLockRelease(&w->mutex);
		if (latch)
			SetLatch(latch);
	}
}

/* Returns this backend's slot, which also records what tcc_wait waits on. */
static TccSlot *
WaitSlot(void)
{
	if (MyBackendId < 1 || MyBackendId > TccShmemRoot->nslots)
		elog(ERROR, "tcc: backend id %d has no slot", MyBackendId);
	return TccShmemSlot(TccDb, MyBackendId - 1);
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
		TccSlot    *slot = TccShmemSlot(TccDb, i);
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
 * on, and the workers read them again (at once: they are woken).
 */
void
TccPausesChanged(void)
{
	if (TccDb == NULL)
		return;
	SpinLockAcquire(&TccDb->mutex);
	TccDb->pause_generation++;
	TccDb->maybe_paused = true;
	SpinLockRelease(&TccDb->mutex);
	WakeAll(TccDb, false, false, false);
}

/* Returns false when no destination is paused: tries need not look. */
bool
TccMaybePaused(void)
{
	bool		maybe;

	SpinLockAcquire(&TccDb->mutex);
	maybe = TccDb->maybe_paused;
	SpinLockRelease(&TccDb->mutex);
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

	SpinLockAcquire(&TccDb->mutex);
	generation = TccDb->pause_generation;
	SpinLockRelease(&TccDb->mutex);
	return generation;
}

/*
 * Worker: it read the pauses of that generation; any says whether one
 * is paused.  A pause committed since keeps tries looking.
 */
void
TccPausesLoaded(uint32 generation, bool any)
{
	SpinLockAcquire(&TccDb->mutex);
	if (TccDb->pause_generation == generation)
		TccDb->maybe_paused = any;
	SpinLockRelease(&TccDb->mutex);
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
 * Asks worker w for a report of its destinations and copies it into rows
 * (TCC_DEST_ROWS of them); returns how many, or -1 when it did not answer
 * in time.  Polls every few milliseconds: only a person or a monitor
 * reading tcc.destinations waits here.
 */
static int
ReadReport(TccShared *w, TccDestRow *rows, TimestampTz until)
{
	uint32		mine;
	Latch	   *latch;

	SpinLockAcquire(&w->mutex);
	mine = ++w->dest_asked;
	latch = w->worker_latch;
	SpinLockRelease(&w->mutex);
	if (latch == NULL)
		return -1;
	SetLatch(latch);
	while (GetCurrentTimestamp() < until)
	{
		uint32		answered;
		bool		ready;
		int			n = 0;

		SpinLockAcquire(&w->mutex);
		answered = w->dest_answered;
		ready = !w->dest_writing && (int32) (answered - mine) >= 0;
		if (ready)
			n = w->ndest_rows;
		SpinLockRelease(&w->mutex);
		if (ready)
		{
			memcpy(rows, w->dest_rows, sizeof(TccDestRow) * n);
			SpinLockAcquire(&w->mutex);
			ready = !w->dest_writing && w->dest_answered == answered;
			SpinLockRelease(&w->mutex);
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

/* Adds one worker's row for a destination into the database's row. */
static void
MergeRow(TccDestRow *into, const TccDestRow *row)
{
	into->calls_due += row->calls_due;
	into->in_flight += row->in_flight;
	if (into->last_http_status == 0 && into->last_error[0] == '\0')
	{
		into->last_http_status = row->last_http_status;
		memcpy(into->last_error, row->last_error, sizeof(into->last_error));
	}
	if (row->next_at != 0 && (into->next_at == 0 || row->next_at < into->next_at))
		into->next_at = row->next_at;
}

/*
 * Asks every worker of this backend's database for a report of its
 * destinations and puts their sum into rows (TCC_DEST_ROWS of them, one per
 * destination); returns how many, or -1 when a worker did not answer
 * within two seconds.
 */
int
TccDestinationsRead(TccDestRow *rows)
{
	TccDestRow *one = palloc(sizeof(TccDestRow) * TCC_DEST_ROWS);
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													DEST_REPORT_WAIT_MS);
	int			n = 0;

	for (int k = 0; k < TccShmemRoot->nworkers; k++)
	{
		int			got = ReadReport(TccShmemWorker(TccDb, k), one, until);

		if (got < 0)
		{
			pfree(one);
			return -1;
		}
		for (int i = 0; i < got; i++)
		{
			int			j = 0;

			while (j < n && strcmp(rows[j].destination, one[i].destination) != 0)
				j++;
			if (j < n)
				MergeRow(&rows[j], &one[i]);
			else if (n < TCC_DEST_ROWS)
				rows[n++] = one[i];
		}
	}
	pfree(one);
	return n;
}

/* Returns the key a destination's calls are counted under: never 0. */
uint64
TccShmemDestKey(const char *name)
{
	uint64		key = hash_bytes_extended((const unsigned char *) name,
										  strlen(name), 0);

	return key == 0 ? 1 : key;
}

/*
 * Returns the count of a destination in this database, adding it if
 * absent; NULL when every entry is in use.  An entry whose destination has
 * no call in flight is free to take: the probe runs past it, and only a
 * never-used entry ends it.  Caller holds calls_mutex.
 */
static TccDestCount *
FindCount(uint64 key, bool add)
{
	TccDestCount *reuse = NULL;
	uint32		start = (uint32) (key % TCC_DEST_COUNTS);

	for (uint32 i = 0; i < TCC_DEST_COUNTS; i++)
	{
		TccDestCount *c = &TccDb->dests[(start + i) % TCC_DEST_COUNTS];

		if (c->key == key)
			return c;
		if (c->key == 0)
		{
			if (reuse == NULL)
				reuse = c;
			break;
		}
		if (c->total == 0 && reuse == NULL)
			reuse = c;
	}
	if (!add || reuse == NULL)
		return NULL;
	reuse->key = key;
	Assert(reuse->total == 0);
	return reuse;
}

/*
 * Worker: one call to the destination of that key may start if the
 * database's workers have fewer than tcc.max_concurrency calls in flight,
 * and fewer than dest_limit to that destination; if so it is counted and
 * true returned.  Else the other workers' next call end wakes this one.
 */
bool
TccShmemCallStart(uint64 dest_key, int dest_limit)
{
	TccDestCount *c;
	bool		started = false;
	int			k = TccState->worker;

	SpinLockAcquire(&TccDb->calls_mutex);
	if (TccDb->calls_total < tcc_max_concurrency &&
		(c = FindCount(dest_key, true)) != NULL &&
		c->total < dest_limit)
	{
		c->total++;
		c->by_worker[k]++;
		TccDb->calls_total++;
		TccDb->calls_by_worker[k]++;
		started = true;
	}
	else
		TccDb->calls_blocked = true;
	SpinLockRelease(&TccDb->calls_mutex);
	return started;
}

/*
 * Worker: a call counted by TccShmemCallStart ended.  When a worker found
 * no room since the last end, the workers are woken to look again.
 */
void
TccShmemCallEnd(uint64 dest_key)
{
	TccDestCount *c;
	bool		blocked;
	int			k = TccState->worker;

	SpinLockAcquire(&TccDb->calls_mutex);
	c = FindCount(dest_key, false);
	if (c != NULL && c->by_worker[k] > 0)
	{
		c->total--;
		c->by_worker[k]--;
		TccDb->calls_total--;
		TccDb->calls_by_worker[k]--;
	}
	blocked = TccDb->calls_blocked;
	TccDb->calls_blocked = false;
	SpinLockRelease(&TccDb->calls_mutex);
	if (blocked && TccShmemRoot->nworkers > 1)
	{
		for (int w = 0; w < TccShmemRoot->nworkers; w++)
		{
			if (w != k)
				TccWakeOwner(w);
		}
	}
}

/*
 * Worker: true when one more call to the destination of that key would
 * find room now (nothing is counted).
 */
bool
TccShmemDestRoom(uint64 dest_key, int dest_limit)
{
	TccDestCount *c;
	bool		room;

	SpinLockAcquire(&TccDb->calls_mutex);
	room = TccDb->calls_total < tcc_max_concurrency &&
		((c = FindCount(dest_key, false)) == NULL || c->total < dest_limit);
	SpinLockRelease(&TccDb->calls_mutex);
	return room;
}

/*
 * Worker: how many more calls the database's workers may have in flight
 * (tcc.max_concurrency less those in flight), 0 when none: then the next
 * call end of another worker wakes this one, which may have calls waiting
 * and none of its own in flight to wake it.
 */
int
TccShmemCallRoom(void)
{
	int			room;

	SpinLockAcquire(&TccDb->calls_mutex);
	room = tcc_max_concurrency - TccDb->calls_total;
	if (room <= 0)
		TccDb->calls_blocked = true;
	SpinLockRelease(&TccDb->calls_mutex);
	return Max(room, 0);
}

/*
 * Worker, at start and at exit: whatever a previous worker of this share
 * had counted in flight is in flight no more.
 */
void
TccShmemCallsForget(void)
{
	int			k = TccState->worker;

	SpinLockAcquire(&TccDb->calls_mutex);
	for (int i = 0; i < TCC_DEST_COUNTS; i++)
	{
		TccDestCount *c = &TccDb->dests[i];

		c->total -= c->by_worker[k];
		c->by_worker[k] = 0;
	}
	TccDb->calls_total -= TccDb->calls_by_worker[k];
	TccDb->calls_by_worker[k] = 0;
	TccDb->calls_blocked = true;
	SpinLockRelease(&TccDb->calls_mutex);
}
