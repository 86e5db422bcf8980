/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The coordinator worker: one for each database tcc.database lists,
 *	  connected to it.
 *
 * The workers of two databases share nothing: every request slot, wake-up,
 * schedule and counter is its database's own, so one database's
 * participants, load or restarts never hold up another's.
 *
 * Each turn of the loop
 *	 1. writes the intents backends are waiting on in a transaction of their
 *		own and answers them at once (request.c);
 *	 2. lets libcurl act on ready sockets and timers (http.c);
 *	 3. in one short transaction records the outcomes of finished calls,
 *		settles what the wake-up asks for (operator actions, cancelling what
 *		can no longer confirm, starting phase two: settle.c, cancel.c) and
 *		reads the calls the in-memory schedule says are due (schedule.c);
 *	 4. commits, and only then starts those calls, so no transaction is
 *		ever open while a participant is waited on (R6);
 *	 5. sleeps on its latch, curl's sockets and the next timer.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <malloc.h>

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "calls.h"
#include "cancel.h"
#include "coordinator.h"
#include "durable.h"
#include "http.h"
#include "intent.h"
#include "pause.h"
#include "purge.h"
#include "request.h"
#include "schedule.h"
#include "settle.h"
#include "shmem.h"
#include "store.h"
#include "tcc.h"
#include "util.h"
#include "worker.h"

/*
 * Registers with the postmaster the worker of a coordinator database, given
 * by its index in tcc.database and its name.
 */
void
TccRegisterWorker(int index, const char *database)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tcc");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "TccWorkerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tcc coordinator %s", database);
	snprintf(worker.bgw_type, BGW_MAXLEN, "tcc coordinator");
	worker.bgw_main_arg = Int32GetDatum(index);
	RegisterBackgroundWorker(&worker);
}

static object_access_hook_type prev_object_access_hook = NULL;

/*
 * DROP DATABASE of a coordinator database: asks its worker to leave it, so
 * that the drop does not fail waiting for the worker's connection.  The
 * hook runs before the drop checks for other sessions in the database.
 * The workers of the other databases carry on.
 */
static void
WatchDropDatabase(ObjectAccessType access, Oid classId, Oid objectId,
				  int subId, void *arg)
{
	TccShared  *db;

	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == DatabaseRelationId &&
		TccShmemRoot != NULL &&
		(db = TccShmemFind(get_database_name(objectId))) != NULL)
		TccWakeWorkerToLeave(db);
}

/* Installs the hook that lets DROP DATABASE pass the worker. */
void
TccWatchDropDatabase(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = WatchDropDatabase;
}

/* Clears the worker's entry in shared memory at exit. */
static void
WorkerExit(int code, Datum arg)
{
	SpinLockAcquire(&TccState->mutex);
	TccState->worker_latch = NULL;
	TccState->worker_pid = 0;
	TccState->in_flight = 0;
	SpinLockRelease(&TccState->mutex);
}

/*
 * Handles SIGHUP, pending interrupts and a DROP DATABASE of ours.  Returns
 * true when the configuration was reloaded (timers must be recomputed).
 */
static bool
HandleInterrupts(void)
{
	bool		leave;

	CHECK_FOR_INTERRUPTS();
	SpinLockAcquire(&TccState->mutex);
	leave = TccState->leave_database;
	TccState->leave_database = false;
	SpinLockRelease(&TccState->mutex);
	if (leave)
	{
		elog(LOG, "tcc coordinator leaving database \"%s\" for DROP DATABASE",
			 TccState->database);
		proc_exit(1);
	}
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		return true;
	}
	return false;
}

/*
 * Returns true once the extension exists in the coordinator database with
 * the SQL objects of this library's version.  Objects of an older version
 * (the library was upgraded, the database not yet) are said once in the log.
 */
static bool
ExtensionReady(void)
{
	static bool said = false;
	char	   *version;
	bool		ready;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	version = TccCoordinatorInstalledVersion();
	ready = version != NULL && strcmp(version, TCC_VERSION) == 0;
	if (version != NULL && !ready && !said)
	{
		ereport(LOG,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tcc coordinator is waiting: extension version %s is installed in database \"%s\", but the library is version %s",
						version, tcc_database, TCC_VERSION),
				 errhint("Run ALTER EXTENSION tcc UPDATE in database \"%s\".",
						 tcc_database)));
		said = true;
	}
	CommitTransactionCommand();
	return ready;
}

/*
 * Waits until the coordinator database holds the extension at this
 * library's version (CREATE EXTENSION tcc, or ALTER EXTENSION tcc UPDATE).
 */
static void
WaitForExtension(void)
{
	while (!ExtensionReady())
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		(void) HandleInterrupts();
	}
}

/*
 * Looks at the intents about to be written: a failed try wants its cancel
 * started at once (*now), a begin wants its transaction watched within a
 * second (returned), otherwise DT_NOEND.
 */
static TimestampTz
RequestsWant(List *requests, bool *now)
{
	ListCell   *lc;
	TimestampTz check_at = DT_NOEND;

	*now = false;
	foreach(lc, requests)
	{
		TccRequest *req = lfirst(lc);

		if (req->kind == TCC_REQ_TRY_FAILED)
			*now = true;
		else if (req->kind == TCC_REQ_BEGIN)
			check_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);
	}
	return check_at;
}

/*
 * Writes the intents backends are waiting on in a transaction of their own
 * and answers them at once, ahead of any other work.  The commit does not
 * wait for its WAL flush: each requester flushes up to the commit before it
 * goes on (request.c), so the worker is already writing the next batch
 * while the disk syncs this one.
 */
static void
WriteIntents(List *requests)
{
	TccReply   *replies;
	XLogRecPtr	lsn;
	ListCell   *lc;
	int			i = 0;

	replies = palloc0(sizeof(TccReply) * list_length(requests));
	pgstat_report_activity(STATE_RUNNING, "writing intents");
	TccStoreBeginWork();
	TccIntentWrite(requests, replies);
	lsn = TccStoreEndWork();
	pgstat_report_activity(STATE_IDLE, NULL);
	foreach(lc, requests)
	{
		replies[i].lsn = lsn;
		TccRequestReply(lfirst(lc), &replies[i++]);
	}
}

/*
 * Reads and clears what backends left when waking the worker: the flags,
 * and the gids whose decisions committed (*decided, *ndecided) with the
 * end of the latest of those commits (*decided_lsn).
 */
static void
TakeWakeFlags(bool *work, bool *check_trying, pg_uuid_t *decided,
			  int *ndecided, XLogRecPtr *decided_lsn)
{
	SpinLockAcquire(&TccState->mutex);
	*work = TccState->work_pending;
	*check_trying = TccState->check_trying;
	*ndecided = TccState->ndecided;
	*decided_lsn = TccState->decided_lsn;
	memcpy(decided, TccState->decided, sizeof(pg_uuid_t) * *ndecided);
	TccState->work_pending = false;
	TccState->check_trying = false;
	TccState->ndecided = 0;
	TccState->decided_lsn = InvalidXLogRecPtr;
	SpinLockRelease(&TccState->mutex);
}

/* Publishes the worker's live state for monitoring. */
static void
PublishState(void)
{
	SpinLockAcquire(&TccState->mutex);
	TccState->in_flight = TccHttpInFlight();
	TccState->queue_depth = TccScheduleWaiting();
	SpinLockRelease(&TccState->mutex);
}

/*
 * Deletes expired transactions, one small batch per short transaction.
 * Returns when it should run next.
 */
static TimestampTz
PurgeExpired(void)
{
	TimestampTz next;

	pgstat_report_activity(STATE_RUNNING, "deleting expired transactions");
	TccStoreBeginWork();
	next = TccPurge();
	(void) TccStoreEndWork();
	pgstat_report_activity(STATE_IDLE, NULL);
	return next;
}

/* how often at most the worker hands freed heap memory back to the kernel */
#define TRIM_INTERVAL_MS 10000

/*
 * Makes freed memory go back to the kernel.  Large blocks (payloads,
 * result sets) are mapped on their own, so freeing them unmaps them: glibc
 * would otherwise raise that threshold after the first such free and serve
 * later ones from the heap, where a burst leaves the process holding its
 * peak for good.
 */
static void
SetUpMalloc(void)
{
	(void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	(void) mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

/*
 * Returns the free pages inside the heap to the kernel, at most every
 * TRIM_INTERVAL_MS: a turn that read many rows (a restart, a burst of
 * decisions) frees them, but small allocations made meanwhile keep the
 * heap's top in place and the pages would stay resident.
 */
static void
TrimHeap(TimestampTz now, TimestampTz *trimmed_at)
{
	if (now - *trimmed_at < TRIM_INTERVAL_MS * (TimestampTz) 1000)
		return;
	*trimmed_at = now;
	(void) malloc_trim(0);
}

/*
 * Starts a call read for a due branch, unless its destination has no slot
 * free: then it waits in that destination's queue (schedule.c) and what
 * was read for it is freed at once.
 */
static void
StartCall(TccCall *call)
{
	/* the last URL's destination: most calls go where the one before went */
	static char last_url[TCC_DEST_LEN * 2] = "";
	static char dest[TCC_DEST_LEN];

	if (strlen(call->url) >= sizeof(last_url))
	{
		/* too long to remember */
		TccHttpDestination(call->url, dest, sizeof(dest));
		last_url[0] = '\0';
	}
	else if (strcmp(call->url, last_url) != 0)
	{
		TccHttpDestination(call->url, dest, sizeof(dest));
		strlcpy(last_url, call->url, sizeof(last_url));
	}
	if (TccScheduleAdmit(&call->gid, call->branch, dest))
		TccHttpStart(call);
	else
		TccHttpFinishCall(call);
}

/*
 * The worker's main loop.  Each turn: write intents; collect finished
 * calls; in one short transaction record their outcomes, settle what the
 * wake-up asks for and read the calls now due; commit; only then start
 * those calls (no transaction is open while a participant is waited on,
 * rule R6); sleep until a socket, a timer or the latch.
 */
static void
WorkerLoop(WaitEventSet *wait_set)
{
	MemoryContext loop_cxt;
	MemoryContext call_cxt;
	TimestampTz check_at = 0;	/* next look at undecided transactions */
	TimestampTz purge_at = 0;
	TimestampTz trimmed_at = 0;
	int			blocked_ms = 0; /* before looking at held gids again */
	bool		more = true;	/* settle again without waiting */
	pg_uuid_t  *due_gids;
	int		   *due_branches;
	int			due_max = 0;
	pg_uuid_t  *decided;
	XLogRecPtr	durable_done = InvalidXLogRecPtr;
	uint32		pauses_seen = 0;	/* generation of the pauses last read */
	bool		pauses_read = false;

	/*
	 * WAL position up to which decisions being carried out must be durable
	 * before the next call; at start, whatever a previous worker or server
	 * life left unflushed or unreplicated.
	 */
	XLogRecPtr	durable_needed = TccDurableEndOfWal();

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "tcc worker loop",
									 ALLOCSET_DEFAULT_SIZES);
	call_cxt = AllocSetContextCreate(TopMemoryContext, "tcc worker calls",
									 ALLOCSET_DEFAULT_SIZES);
	due_gids = MemoryContextAlloc(TopMemoryContext, sizeof(pg_uuid_t));
	due_branches = MemoryContextAlloc(TopMemoryContext, sizeof(int));
	decided = MemoryContextAlloc(TopMemoryContext,
								 sizeof(pg_uuid_t) * TCC_DECIDED_MAX);

	for (;;)
	{
		WaitEvent	events[3];
		List	   *done = NIL;
		ListCell   *lc;
		TccCall    *call;
		bool		work;
		bool		check_trying;
		bool		stuck;
		bool		cancelled = false;
		TccCancelLeft left = TCC_CANCEL_DONE;
		long		timeout;
		long		curl_timeout;
		int			nevents;
		int			ndue;
		int			room;
		TimestampTz settle_at;
		TimestampTz now;
		TimestampTz wake;
		List	   *requests;
		bool		try_failed;
		int			ndecided;
		XLogRecPtr	decided_lsn;
		uint32		pauses;

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		if (HandleInterrupts())
			check_at = purge_at = 0;

		requests = TccRequestTakeAll();
		settle_at = RequestsWant(requests, &try_failed);
		check_at = Min(check_at, settle_at);
		if (requests != NIL)
			WriteIntents(requests);

		TccHttpProcess();
		while ((call = TccHttpNextDone()) != NULL)
		{
			TccScheduleOutcome(&call->gid, call->branch, call->http_status,
							   call->error);
			done = lappend(done, call);
		}

		TakeWakeFlags(&work, &check_trying, decided, &ndecided, &decided_lsn);
		/* read before the snapshot that reads the pauses (pause.c) */
		pauses = TccPauseGeneration();
		if (!pauses_read || pauses != pauses_seen)
			work = true;
		now = GetCurrentTimestamp();
		/* a failed try wants its cancel now */
		if (try_failed)
			work = check_trying = true;
		stuck = check_trying || now >= check_at;
		work = work || stuck || more;

		room = tcc_max_concurrency - TccHttpInFlight();
		if (room > due_max)
		{
			due_max = room;
			due_gids = repalloc(due_gids, sizeof(pg_uuid_t) * due_max);
			due_branches = repalloc(due_branches, sizeof(int) * due_max);
		}
		ndue = room > 0 ? TccScheduleTake(now, room, due_gids, due_branches) : 0;

		if (done != NIL || work || ndue > 0 || ndecided > 0)
		{
			List	   *calls;
			pg_uuid_t  *settled;
			int			nsettled;

			pgstat_report_activity(STATE_RUNNING, "settling");
			TccStoreBeginWork();
			/* paused or resumed: before the calls taken are admitted */
			if (!pauses_read || pauses != pauses_seen)
			{
				TccPauseLoad(pauses);
				pauses_seen = pauses;
				pauses_read = true;
			}
			TccSettleResults(done);
			more = work && TccSettleActions();
			if (stuck)
				cancelled = TccCancelStuck(try_failed, &left);
			/* what was decided, by callers or just now, starts phase two */
			more = TccSettlePhases(work || cancelled, decided, ndecided) ||
				more;
			/* what the outcomes and decisions made due can start at once */
			if (ndue < room)
				ndue += TccScheduleTake(GetCurrentTimestamp(), room - ndue,
										due_gids + ndue, due_branches + ndue);
			calls = TccCallsLoad(due_gids, due_branches, ndue, call_cxt);
			if (stuck)
			{
				TimestampTz deadline = TccCancelNextDeadline();

				/* while any is undecided, look again every second */
				check_at = deadline == DT_NOEND ? DT_NOEND :
					Min(deadline, TimestampTzPlusMilliseconds(now, 1000));

				/*
				 * A full batch was cancelled and more are waiting: the
				 * next pass comes at once.  Else, if some gids' locks were
				 * held (an aborting caller about to release one, or a
				 * tcc_finish in a transaction left open, maybe past its
				 * deadline), look at them again after a delay that doubles
				 * from 50 ms to 1 s while they stay held, never on every
				 * turn; the holder's transaction end wakes the worker
				 * anyway (api.c), and a deadline still to come is not
				 * delayed.
				 */
				if (left == TCC_CANCEL_MORE)
					check_at = now;
				else if (left == TCC_CANCEL_BLOCKED)
				{
					blocked_ms = Min(Max(blocked_ms * 2, 50), 1000);
					check_at = Min(check_at,
								   TimestampTzPlusMilliseconds(now, blocked_ms));
				}
				else
					blocked_ms = 0;
			}
			/*
			 * The decisions whose phase two just started: handed over by
			 * the committing callers, they end at the position handed over
			 * with them; found in the tables, they are in the WAL by now.
			 */
			switch (TccSettleTookPhases())
			{
				case TCC_PHASES_NONE:
					break;
				case TCC_PHASES_HANDED:
					durable_needed = Max(durable_needed, decided_lsn);
					break;
				case TCC_PHASES_ANY:
					durable_needed = Max(durable_needed, TccDurableEndOfWal());
					break;
			}
			(void) TccStoreEndWork();
			pgstat_report_activity(STATE_IDLE, NULL);
			settled = TccSettleTakeSettled(&nsettled);
			TccWakeWaiters(settled, nsettled);

			foreach(lc, done)
				TccHttpFinishCall(lfirst(lc));

			/*
			 * The calls start only now that the transaction is over, and
			 * once every decision they carry out is durable: a caller at
			 * synchronous_commit = off has committed its decision before
			 * the WAL holds it, and a failover must find it on the
			 * standby.  A decision is waited for once, before the first
			 * call of its phase two: one wait covers every phase started
			 * until then; retries and the next branch need none.
			 */
			if (calls != NIL && durable_needed > durable_done)
			{
				TccDurableWait(durable_needed);
				durable_done = durable_needed;
			}
			foreach(lc, calls)
				StartCall(lfirst(lc));
			list_free(calls);
			PublishState();
			/* what this pass finished expires one retention from now */
			purge_at = Min(purge_at,
						   TimestampTzPlusMilliseconds(now, tcc_retention * 1000L));
		}
		if (GetCurrentTimestamp() >= purge_at)
			purge_at = PurgeExpired();
		if (TccDestinationsAsked())
		{
			TccDestRow *rows = palloc(sizeof(TccDestRow) * TCC_DEST_ROWS);

			TccDestinationsAnswer(rows, TccScheduleDestinations(rows, TCC_DEST_ROWS));
		}
		TrimHeap(GetCurrentTimestamp(), &trimmed_at);

		now = GetCurrentTimestamp();
		wake = Min(Min(check_at, purge_at),
				   TccScheduleNext(TccHttpInFlight() < tcc_max_concurrency));
		if (more || TccRequestsPending())
			timeout = 0;
		else if (wake == DT_NOEND)
			timeout = -1;
		else if (wake <= now)
			timeout = 0;
		else
			timeout = (long) Min((wake - now + 999) / 1000, 60000);
		curl_timeout = TccHttpTimeoutMs();
		if (curl_timeout >= 0 && (timeout < 0 || curl_timeout < timeout))
			timeout = curl_timeout;

		nevents = WaitEventSetWait(wait_set, timeout, events,
								   lengthof(events), PG_WAIT_EXTENSION);
		for (int i = 0; i < nevents; i++)
		{
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
		}
	}
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
 * Entry point of the coordinator worker; arg is the index of its database
 * in tcc.database.
 */
void
TccWorkerMain(Datum arg)
{
	WaitEventSet *wait_set;
	int			failed_connects;
	int			index = DatumGetInt32(arg);

	if (TccShmemRoot == NULL || index < 0 ||
		index >= TccShmemRoot->ndatabases)
		elog(FATAL, "tcc coordinator %d has no database", index);
	TccState = &TccShmemRoot->databases[index];

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
						 Min(failed_connects, 30) * 1000L, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	BackgroundWorkerInitializeConnection(TccState->database, NULL, 0);
	pgstat_report_appname("tcc coordinator");

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

	before_shmem_exit(WorkerExit, (Datum) 0);
	SpinLockAcquire(&TccState->mutex);
	TccState->failed_connects = 0;
	TccState->worker_pid = MyProcPid;
	TccState->worker_latch = MyLatch;
	TccState->worker_started = GetCurrentTimestamp();
	SpinLockRelease(&TccState->mutex);

	/* a request a previous worker took but never answered is taken again */
	for (int i = 0; i < TccShmemRoot->nslots; i++)
	{
		TccSlot    *slot = TccShmemSlot(TccState, i);

		SpinLockAcquire(&slot->mutex);
		if (slot->state == TCC_SLOT_TAKEN)
		{
			slot->state = TCC_SLOT_PENDING;
			SpinLockAcquire(&TccState->mutex);
			TccState->requests_pending++;
			SpinLockRelease(&TccState->mutex);
		}
		SpinLockRelease(&slot->mutex);
	}

	WaitForExtension();
	elog(LOG, "tcc coordinator started in database \"%s\"", TccState->database);

	SetUpMalloc();
	TccHttpInitWorker();
	wait_set = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, TccHttpEventFd(), NULL, NULL);

	TccScheduleInit();
	TccStoreBeginWork();
	TccSettleStartup();
	(void) TccStoreEndWork();

	PG_TRY();
	{
		WorkerLoop(wait_set);
	}
	PG_CATCH();
	{
		/* leave the reason where tcc.worker shows it, then exit and restart */
		ErrorData  *edata;

		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		SpinLockAcquire(&TccState->mutex);
		TccStrlcpy(TccState->last_error, edata->message ? edata->message : "?",
				   sizeof(TccState->last_error));
		SpinLockRelease(&TccState->mutex);
		PG_RE_THROW();
	}
	PG_END_TRY();
}
