/*-------------------------------------------------------------------------
 *
 * workerproc.c
 *	  The coordinator worker's process: attaching it to its database's
 *	  shared state, connecting, the settings of its session, taking back
 *	  the requests a previous worker left, its malloc tuning and the error
 *	  it leaves when it stops (worker.c runs its loop).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/workerproc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/* glibc's malloc tuning (SetUpMalloc, TrimHeap); other libcs go without */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "tcc.h"
#include "util.h"
#include "workerproc.h"

/* the longest wait, in seconds, before connecting again after failures */
#define CONNECT_BACKOFF_MAX_S 30
/* units of TimestampTz (microseconds) and of the backoff (seconds) */
#define US_PER_MS 1000
#define MS_PER_S 1000L
/* how often at most the worker hands freed heap memory back to the kernel */
#define TRIM_INTERVAL_MS 10000
/* glibc's thresholds: mapped on its own, handed back at the heap's top */
#define MMAP_THRESHOLD_BYTES (128 * 1024)
#define TRIM_THRESHOLD_BYTES (1024 * 1024)

/*
 * Clears the worker's entry in shared memory at exit; the calls it had in
 * flight no longer count against the database's limits.
 */
static void
WorkerExit(int code, Datum arg)
{
	SpinLockAcquire(&TccState->mutex);
	TccState->worker_latch = NULL;
	TccState->worker_pid = 0;
	TccState->in_flight = 0;
	SpinLockRelease(&TccState->mutex);
	TccShmemCallsForget();
}

/*
 * Pins the settings the worker's session depends on, against values an
 * ALTER DATABASE or ALTER ROLE ... SET put there (docs/worker.md): a
 * database owner must not be able to make the worker read-only, time its
 * statements out, change how its statements behave or how they are
 * planned.  tcc.request_timeout refuses such values in the worker itself
 * (tcc.c), so that the worker follows the server configuration on reload.
 */
static void
PinSettings(void)
{
	static const char *const pinned[][2] = {
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"default_transaction_deferrable", "off"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
		{"session_replication_role", "origin"},
		{"exit_on_error", "off"},
		{"transform_null_equals", "off"},
		{"plan_cache_mode", "auto"},
		{"enable_indexscan", "on"},
		{"enable_nestloop", "on"},
		{"force_parallel_mode", "off"},
		{"max_parallel_workers_per_gather", "0"},
		{"row_security", "on"},
	};

	for (int i = 0; i < lengthof(pinned); i++)
		SetConfigOption(pinned[i][0], pinned[i][1], PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Finds the shared state of the worker's database and its own, given by
 * the database's index in tcc.database and the worker's number, and
 * connects to that database, after a delay when the connections before
 * failed.
 */
static void
Connect(int index, int worker)
{
	int			failed_connects;

	if (TccShmemRoot == NULL || index < 0 ||
		index >= TccShmemRoot->ndatabases ||
		worker < 0 || worker >= TccShmemRoot->nworkers)
		elog(FATAL, "tcc coordinator %d/%d has no database", index, worker);
	TccDb = &TccShmemRoot->databases[index];
	TccState = TccShmemWorker(TccDb, worker);

	tcc_in_worker = true;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/*
	 * A connection that failed before (the database missing or dropped)
	 * fails FATAL inside the connect: back off before trying again, so a
	 * missing database does not flood the log every second.
	 */
	SpinLockAcquire(&TccState->mutex);
	failed_connects = TccState->failed_connects++;
	SpinLockRelease(&TccState->mutex);
	if (failed_connects > 0)
	{
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(failed_connects, CONNECT_BACKOFF_MAX_S) * MS_PER_S,
						 PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	BackgroundWorkerInitializeConnection(TccDb->name, NULL, 0);
	pgstat_report_appname("tcc coordinator");
}

/*
 * Sets the worker's session up: its commits, search path and planner
 * settings, and the settings pinned against ALTER DATABASE / ROLE.
 */
static void
SetUpSession(void)
{
	/*
	 * The worker's own commits are synchronous unless a unit of work says
	 * otherwise (TccStoreEndWork): intents are made durable by the backends
	 * waiting for them, decisions before their first call (durable.c).
	 */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Every statement of the worker touches a handful of rows by key.  With
	 * arrays as parameters the planner cannot see how few, and a generic
	 * plan may hash-join against a full scan of a table that only grows:
	 * keep it to index lookups.  Plain index scans, not bitmap scans: only
	 * they mark the index entries of dead rows as dead, and the partial
	 * indexes the worker scans (transactions trying, in phase two) see a
	 * dead entry for nearly every transaction between two vacuums.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_bitmapscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_hashjoin", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("enable_mergejoin", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* and none is worth compiling: JIT would cost more than each run */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	PinSettings();
}

/*
 * Takes again the requests for this worker that a previous one took but
 * never answered.
 */
static void
RetakeRequests(void)
{
	for (int i = 0; i < TccShmemRoot->nslots; i++)
	{
		TccSlot    *slot = TccShmemSlot(TccDb, i);

		SpinLockAcquire(&slot->mutex);
		if (slot->state == TCC_SLOT_TAKEN && slot->owner == TccState->worker)
		{
			slot->state = TCC_SLOT_PENDING;
			SpinLockAcquire(&TccState->mutex);
			TccState->requests_pending++;
			SpinLockRelease(&TccState->mutex);
		}
		SpinLockRelease(&slot->mutex);
	}
}

/*
 * Attaches worker number worker of the database at index in tcc.database:
 * its signals, its connection and session, its entry in shared memory
 * (cleared at exit), the calls and the requests a previous worker left.
 */
void
TccWorkerProcAttach(int index, int worker)
{
	Connect(index, worker);
	SetUpSession();
	before_shmem_exit(WorkerExit, (Datum) 0);
	SpinLockAcquire(&TccState->mutex);
	TccState->failed_connects = 0;
	TccState->worker_pid = MyProcPid;
	TccState->worker_latch = MyLatch;
	TccState->worker_started = GetCurrentTimestamp();
	SpinLockRelease(&TccState->mutex);

	TccShmemCallsForget();
	RetakeRequests();
}

/*
 * Makes freed memory go back to the kernel.  Large blocks (payloads,
 * result sets) are mapped on their own, so freeing them unmaps them: glibc
 * would otherwise raise that threshold after the first such free and serve
 * later ones from the heap, where a burst leaves the process holding its
 * peak for good.  Only glibc has these knobs.
 */
void
TccWorkerProcSetUpMalloc(void)
{
#ifdef __GLIBC__
	(void) mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
	(void) mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
#endif
}

/*
 * Returns the free pages inside the heap to the kernel, at most every
 * TRIM_INTERVAL_MS: a turn that read many rows (a restart, a burst of
 * decisions) frees them, but small allocations made meanwhile keep the
 * heap's top in place and the pages would stay resident; *trimmed_at is
 * when it last did.  glibc only.
 */
void
TccWorkerProcTrimHeap(TimestampTz *trimmed_at)
{
	TimestampTz now = GetCurrentTimestamp();

	if (now - *trimmed_at < TRIM_INTERVAL_MS * (TimestampTz) US_PER_MS)
		return;
	*trimmed_at = now;
#ifdef __GLIBC__
	(void) malloc_trim(0);
#endif
}

/*
 * Leaves message (NULL: unknown) where tcc.worker shows why the worker
 * last stopped: clipped before the spinlock, a message may be of any
 * length.
 */
void
TccWorkerProcLeaveError(const char *message)
{
	char		clipped[sizeof(TccState->last_error)];

	TccStrlcpy(clipped, message ? message : "?", sizeof(clipped));
	SpinLockAcquire(&TccState->mutex);
	memcpy(TccState->last_error, clipped, sizeof(clipped));
	SpinLockRelease(&TccState->mutex);
}
