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
 * Each turn of the loop is a list of named steps (WorkerLoop; the list is
 * in docs/layout.md#the-workers-turn): it writes the intents backends are
 * waiting on in a transaction of their own and answers them at once
 * (request.c); lets libcurl act (http.c); in one short transaction records
 * the outcomes of finished calls, settles what the wake-up asks for
 * (settle.c, cancel.c) and makes the calls now due ready (calls.c);
 * commits, and only then starts those calls, so no transaction is ever
 * open while a participant is waited on (R6); and sleeps on its latch,
 * curl's sockets and the next timer.  A step's inputs and results are in
 * the Turn and Worker structs passed to it.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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
#include "settled.h"
#include "shmem.h"
#include "store.h"
#include "tcc.h"
#include "worker.h"
#include "workerproc.h"

/*
 * Registers with the postmaster worker number worker of a coordinator
 * database, given by its index in tcc.database and its name.
 */
void
TccRegisterWorker(int index, int worker_number, const char *database)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tcc");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "TccWorkerMain");
	if (tcc_workers > 1)
		snprintf(worker.bgw_name, BGW_MAXLEN, "tcc coordinator %s %d",
				 database, worker_number);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN, "tcc coordinator %s", database);
	snprintf(worker.bgw_type, BGW_MAXLEN, "tcc coordinator");
	worker.bgw_main_arg = Int32GetDatum(index * TCC_MAX_WORKERS + worker_number);
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
	TccDatabase *db;

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
			 TccDb->name);
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
 * (the library was upgraded, the database not yet) are said once in the
 * log (*said: they were).
 */
static bool
ExtensionReady(bool *said)
{
	char	   *version;
	bool		ready;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	version = TccCoordinatorInstalledVersion();
	ready = version != NULL && strcmp(version, TCC_VERSION) == 0;
	if (version != NULL && !ready && !*said)
	{
		ereport(LOG,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tcc coordinator is waiting: extension version %s is installed in database \"%s\", but the library is version %s",
						version, tcc_database, TCC_VERSION),
				 errhint("Run ALTER EXTENSION tcc UPDATE in database \"%s\".",
						 tcc_database)));
		*said = true;
	}
	CommitTransactionCommand();
	return ready;
}

/* how often the worker looks for the extension while it waits for it */
#define EXTENSION_POLL_MS 1000

/*
 * Waits until the coordinator database holds the extension at this
 * library's version (CREATE EXTENSION tcc, or ALTER EXTENSION tcc UPDATE).
 */
static void
WaitForExtension(void)
{
	bool		said = false;

	while (!ExtensionReady(&said))
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 EXTENSION_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		(void) HandleInterrupts();
	}
}

/* wait events of the loop: its latch, postmaster death, curl's sockets */
#define WORKER_WAIT_EVENTS 3
/* while any transaction is undecided, it is looked at again this often */
#define UNDECIDED_LOOK_MS 1000
/* the delay before looking at held gids again: doubles from first to max */
#define BLOCKED_FIRST_MS 50
#define BLOCKED_MAX_MS 1000
/* the longest the loop sleeps without a timer due */
#define SLEEP_MAX_MS 60000
/* units of TimestampTz (microseconds) and of the settings in seconds */
#define US_PER_MS 1000
#define MS_PER_S 1000L

/* the destination of the last call started: most go where the one before went */
typedef struct LastDestination
{
	char		url[TCC_DEST_LEN * 2];	/* empty: none, or too long */
	char		dest[TCC_DEST_LEN];
} LastDestination;

/* What the worker's loop keeps from one turn to the next. */
typedef struct Worker
{
	MemoryContext turn_cxt;		/* reset at each turn */
	MemoryContext call_cxt;		/* the calls in flight (http.c) */
	TimestampTz check_at;		/* next look at undecided transactions */
	TimestampTz purge_at;
	TimestampTz trimmed_at;
	int			blocked_ms;		/* before looking at held gids again */
	bool		more;			/* settle again without waiting */
	bool		look_for_failed_tries;	/* in the next cancel pass */
	pg_uuid_t  *due_gids;		/* the calls taken from the schedule */
	int		   *due_branches;
	int			due_max;
	pg_uuid_t  *decided;		/* TCC_DECIDED_MAX, handed over at wake-up */
	XLogRecPtr	durable_needed; /* decisions to be durable before a call */
	XLogRecPtr	durable_done;
	uint32		pauses_seen;	/* generation of the pauses last read */
	bool		pauses_read;
	LastDestination last;
} Worker;

/* What one turn of the loop found, decided and settled. */
typedef struct Turn
{
	TimestampTz now;			/* when the wake-up was read */
	List	   *done;			/* calls that finished */
	bool		try_failed;		/* an intent written was a failed try */
	bool		work;			/* settle: actions, a scan for decisions */
	bool		stuck;			/* look for what can no longer confirm */
	TccCancelLeft cancel_left;	/* what that look left undecided */
	int			ndecided;		/* gids whose decisions were handed over */
	XLogRecPtr	decided_lsn;	/* the end of the latest of those commits */
	uint32		pauses;			/* generation of the pauses */
	int			room;			/* calls that may start */
	int			ndue;			/* taken from the schedule */
	List	   *calls;			/* made ready, started after the commit */
	TccSettled	settled;
} Turn;

/* Sets up the loop's state: memory, buffers, what must be durable. */
static void
WorkerInit(Worker *w)
{
	memset(w, 0, sizeof(*w));
	w->turn_cxt = AllocSetContextCreate(TopMemoryContext, "tcc worker loop",
										ALLOCSET_DEFAULT_SIZES);
	w->call_cxt = AllocSetContextCreate(TopMemoryContext, "tcc worker calls",
										ALLOCSET_DEFAULT_SIZES);
	w->more = true;
	/* a failed try may have been left by a previous worker */
	w->look_for_failed_tries = true;
	w->due_gids = MemoryContextAlloc(TopMemoryContext, sizeof(pg_uuid_t));
	w->due_branches = MemoryContextAlloc(TopMemoryContext, sizeof(int));
	w->decided = MemoryContextAlloc(TopMemoryContext,
									sizeof(pg_uuid_t) * TCC_DECIDED_MAX);

	/*
	 * WAL position up to which decisions being carried out must be durable
	 * before the next call; at start, whatever a previous worker or server
	 * life left unflushed or unreplicated.
	 */
	w->durable_needed = TccDurableEndOfWal();
	w->durable_done = InvalidXLogRecPtr;
}

/* Starts a turn: fresh memory, interrupts and configuration handled. */
static void
BeginTurn(Worker *w, Turn *turn)
{
	MemoryContextReset(w->turn_cxt);
	MemoryContextSwitchTo(w->turn_cxt);
	memset(turn, 0, sizeof(*turn));
	TccSettledInit(&turn->settled, w->turn_cxt);
	if (HandleInterrupts())
		w->check_at = w->purge_at = 0;
}

/*
 * Writes the intents backends are waiting on in a transaction of their own
 * and answers them at once, ahead of any other work.  The commit does not
 * wait for its WAL flush: each requester flushes up to the commit before it
 * goes on (request.c), so the worker is already writing the next batch
 * while the disk syncs this one.  A failed try wants its cancel started at
 * once; a begin wants its transaction looked at within UNDECIDED_LOOK_MS.
 */
static void
WriteIntents(Worker *w, Turn *turn)
{
	List	   *requests = TccRequestTakeAll();
	TccReply   *replies;
	XLogRecPtr	lsn;
	ListCell   *lc;
	int			i = 0;

	if (requests == NIL)
		return;
	foreach(lc, requests)
	{
		TccRequest *req = lfirst(lc);

		if (req->kind == TCC_REQ_TRY_FAILED)
			turn->try_failed = true;
		else if (req->kind == TCC_REQ_BEGIN)
			w->check_at = Min(w->check_at,
							  TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														  UNDECIDED_LOOK_MS));
	}
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

/* Lets libcurl act, and collects the calls that finished. */
static void
CollectFinishedCalls(Turn *turn)
{
	TccCall    *call;

	TccHttpProcess();
	while ((call = TccHttpNextDone()) != NULL)
	{
		TccScheduleOutcome(&call->gid, call->branch, call->http_status,
						   call->error);
		turn->done = lappend(turn->done, call);
	}
}

/*
 * Reads and clears what backends left when waking the worker (the flags,
 * the gids whose decisions committed and the end of the latest of those
 * commits), and works out what the turn settles: everything when work was
 * asked for, the pauses changed, a cancel pass is due or the last turn
 * left more; a cancel pass when a try failed or a look is due.
 */
static void
ReadWakeUp(Worker *w, Turn *turn)
{
	bool		work;
	bool		check_trying;

	SpinLockAcquire(&TccState->mutex);
	work = TccState->work_pending;
	check_trying = TccState->check_trying;
	turn->ndecided = TccState->ndecided;
	turn->decided_lsn = TccState->decided_lsn;
	memcpy(w->decided, TccState->decided, sizeof(pg_uuid_t) * turn->ndecided);
	TccState->work_pending = false;
	TccState->check_trying = false;
	TccState->ndecided = 0;
	TccState->decided_lsn = InvalidXLogRecPtr;
	SpinLockRelease(&TccState->mutex);

	/* read before the snapshot that reads the pauses (pause.c) */
	turn->pauses = TccPauseGeneration();
	if (!w->pauses_read || turn->pauses != w->pauses_seen)
		work = true;
	turn->now = GetCurrentTimestamp();
	/* a failed try wants its cancel now */
	if (turn->try_failed)
		work = check_trying = true;
	turn->stuck = check_trying || turn->now >= w->check_at;
	turn->work = work || turn->stuck || w->more;
}

/* Takes the calls due now, as many as may start. */
static void
TakeDueCalls(Worker *w, Turn *turn)
{
	/* what the database's workers together may still start */
	turn->room = TccShmemCallRoom();
	if (turn->room > w->due_max)
	{
		w->due_max = turn->room;
		w->due_gids = repalloc(w->due_gids, sizeof(pg_uuid_t) * w->due_max);
		w->due_branches = repalloc(w->due_branches, sizeof(int) * w->due_max);
	}
	turn->ndue = turn->room > 0 ?
		TccScheduleTake(turn->now, turn->room, w->due_gids, w->due_branches) : 0;
}

/* Whether the turn has anything to settle in a unit of work. */
static bool
HasWork(Turn *turn)
{
	return turn->done != NIL || turn->work || turn->ndue > 0 ||
		turn->ndecided > 0;
}

/* Reads the pauses again if one was made or lifted since the last read. */
static void
ReadPauses(Worker *w, Turn *turn)
{
	if (w->pauses_read && turn->pauses == w->pauses_seen)
		return;
	TccPauseLoad(turn->pauses);
	w->pauses_seen = turn->pauses;
	w->pauses_read = true;
}

/*
 * Cancels what can no longer confirm (cancel.c).  Returns true if it
 * decided any; what it left is in turn->cancel_left.
 */
static bool
CancelStuck(Worker *w, Turn *turn)
{
	TccCancelPass pass;

	pass = TccCancelStuck(turn->try_failed || w->look_for_failed_tries);
	w->look_for_failed_tries = pass.look_for_failed_tries;
	turn->cancel_left = pass.left;
	return pass.decided;
}

/*
 * After a cancel pass, in its transaction once phase two of what it
 * decided started: sets when to look again.  While any is undecided, every
 * UNDECIDED_LOOK_MS.  A full batch was cancelled and more are waiting: the
 * next pass comes at once.  Else, if some gids' locks were held (an
 * aborting caller about to release one, or a tcc_finish in a transaction
 * left open, maybe past its deadline), look at them again after a delay
 * that doubles from BLOCKED_FIRST_MS to BLOCKED_MAX_MS while they stay
 * held, never on every turn; the holder's transaction end wakes the worker
 * anyway (api.c), and a deadline still to come is not delayed.
 */
static void
PlanNextLook(Worker *w, Turn *turn)
{
	TimestampTz deadline = TccCancelNextDeadline();

	w->check_at = deadline == DT_NOEND ? DT_NOEND :
		Min(deadline, TimestampTzPlusMilliseconds(turn->now, UNDECIDED_LOOK_MS));
	if (turn->cancel_left == TCC_CANCEL_MORE)
		w->check_at = turn->now;
	else if (turn->cancel_left == TCC_CANCEL_BLOCKED)
	{
		w->blocked_ms = Min(Max(w->blocked_ms * 2, BLOCKED_FIRST_MS),
							BLOCKED_MAX_MS);
		w->check_at = Min(w->check_at,
						  TimestampTzPlusMilliseconds(turn->now, w->blocked_ms));
	}
	else
		w->blocked_ms = 0;
}

/*
 * Notes how far the WAL must be durable before the calls of the phases two
 * just started: handed over by the committing callers, their decisions end
 * at the position handed over with them; found in the tables, they are in
 * the WAL by now.
 */
static void
NoteDecisionsToMakeDurable(Worker *w, Turn *turn)
{
	switch (turn->settled.phases)
	{
		case TCC_PHASES_NONE:
			break;
		case TCC_PHASES_HANDED:
			w->durable_needed = Max(w->durable_needed, turn->decided_lsn);
			break;
		case TCC_PHASES_ANY:
			w->durable_needed = Max(w->durable_needed, TccDurableEndOfWal());
			break;
	}
}

/*
 * In one short transaction: reads the pauses if they changed, records the
 * outcomes of the finished calls, applies operator actions, cancels what
 * can no longer confirm, starts phase two of what was decided (by callers
 * or just now), makes the calls now due ready and, after a cancel pass,
 * plans the next.  The pauses are read before the calls are admitted.
 */
static void
SettleInOneTransaction(Worker *w, Turn *turn)
{
	bool		cancelled = false;
	bool		more;

	pgstat_report_activity(STATE_RUNNING, "settling");
	TccStoreBeginWork();
	ReadPauses(w, turn);
	TccSettleResults(turn->done, &turn->settled);
	more = turn->work && TccSettleActions(&turn->settled);
	if (turn->stuck)
		cancelled = CancelStuck(w, turn);
	if (turn->work || cancelled)
		more = TccSettleDecided(&turn->settled) || more;
	else
		TccSettleHandedOver(w->decided, turn->ndecided, &turn->settled);
	w->more = more;
	/* what the outcomes and decisions made due can start at once */
	if (turn->ndue < turn->room)
		turn->ndue += TccScheduleTake(GetCurrentTimestamp(),
									  turn->room - turn->ndue,
									  w->due_gids + turn->ndue,
									  w->due_branches + turn->ndue);
	turn->calls = TccCallsLoad(w->due_gids, w->due_branches, turn->ndue,
							   w->call_cxt);
	if (turn->stuck)
		PlanNextLook(w, turn);
	NoteDecisionsToMakeDurable(w, turn);
	(void) TccStoreEndWork();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Starts a call read for a due branch, unless its destination has no slot
 * free: then it waits in that destination's queue (schedule.c) and what
 * was read for it is freed at once.
 */
static void
StartCall(LastDestination *last, TccCall *call)
{
	if (strlen(call->url) >= sizeof(last->url))
	{
		/* too long to remember */
		TccHttpDestination(call->url, last->dest, sizeof(last->dest));
		last->url[0] = '\0';
	}
	else if (strcmp(call->url, last->url) != 0)
	{
		TccHttpDestination(call->url, last->dest, sizeof(last->dest));
		strlcpy(last->url, call->url, sizeof(last->url));
	}
	if (TccScheduleAdmit(&call->gid, call->branch, last->dest))
		TccHttpStart(call);
	else
		TccHttpFinishCall(call);
}

/* Publishes the worker's live state for monitoring. */
static void
PublishState(void)
{
	int			in_flight = TccHttpInFlight();
	int			queue_depth = TccScheduleWaiting();

	SpinLockAcquire(&TccState->mutex);
	TccState->in_flight = in_flight;
	TccState->queue_depth = queue_depth;
	SpinLockRelease(&TccState->mutex);
}

/*
 * Starts at once, outside any transaction, the due calls the worker makes
 * from memory, so that they are in flight while the turn records the
 * outcomes of those that finished, and the participant does not idle
 * meanwhile.  Only when no pause changed
 * since the last read and every decision carried out is durable (else the
 * turn's transaction reads the pauses and the wait comes first), and none
 * of a transaction a call that just finished belongs to: that outcome may
 * end its phase two.  The calls left go through the turn's transaction.
 */
static void
StartRememberedCalls(Worker *w, Turn *turn)
{
	pg_uuid_t  *busy;
	int			nbusy = 0;
	List	   *calls;
	ListCell   *lc;
	int			before = turn->ndue;

	if (turn->ndue == 0 || !w->pauses_read || turn->pauses != w->pauses_seen ||
		w->durable_needed > w->durable_done)
		return;
	busy = palloc(sizeof(pg_uuid_t) * Max(list_length(turn->done), 1));
	foreach(lc, turn->done)
		busy[nbusy++] = ((TccCall *) lfirst(lc))->gid;
	calls = TccCallsFromMemory(w->due_gids, w->due_branches, &turn->ndue,
							   busy, nbusy, w->call_cxt);
	turn->room -= before - turn->ndue;
	foreach(lc, calls)
		StartCall(&w->last, lfirst(lc));
	list_free(calls);
	if (before != turn->ndue)
		PublishState();
}

/*
 * Once the unit of work committed: wakes the tcc_wait of what it settled,
 * frees the finished calls, and starts the calls made ready once every
 * decision they carry out is durable: a caller at synchronous_commit = off
 * has committed its decision before the WAL holds it, and a failover must
 * find it on the standby.  A decision is waited for once, before the first
 * call of its phase two: one wait covers every phase started until then;
 * retries and the next branch need none.  No transaction is open while a
 * participant is waited on (R6).
 */
static void
StartCallsAfterCommit(Worker *w, Turn *turn)
{
	ListCell   *lc;

	TccWakeWaiters(turn->settled.gids, turn->settled.n);
	foreach(lc, turn->done)
		TccHttpFinishCall(lfirst(lc));
	if (turn->calls != NIL && w->durable_needed > w->durable_done)
	{
		TccDurableWait(w->durable_needed);
		w->durable_done = w->durable_needed;
	}
	foreach(lc, turn->calls)
		StartCall(&w->last, lfirst(lc));
	list_free(turn->calls);
	PublishState();
	/* what this turn finished expires one retention from now */
	w->purge_at = Min(w->purge_at,
					  TimestampTzPlusMilliseconds(turn->now,
												  tcc_retention * MS_PER_S));
}

/*
 * Deletes expired transactions when due, one small batch per short
 * transaction, and notes when it should run next.
 */
static void
PurgeExpired(Worker *w)
{
	/* the first worker purges for them all */
	if (TccState->worker != 0)
		w->purge_at = DT_NOEND;
	if (GetCurrentTimestamp() < w->purge_at)
		return;
	pgstat_report_activity(STATE_RUNNING, "deleting expired transactions");
	TccStoreBeginWork();
	w->purge_at = TccPurge();
	(void) TccStoreEndWork();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Answers a reader of tcc.destinations waiting for the schedule's report. */
static void
AnswerDestinations(void)
{
	TccDestRow *rows;

	if (!TccDestinationsAsked())
		return;
	rows = palloc(sizeof(TccDestRow) * TCC_DEST_ROWS);
	TccDestinationsAnswer(rows, TccScheduleDestinations(rows, TCC_DEST_ROWS));
}

/*
 * Sleeps until a socket, a timer or the latch: not at all when more is
 * waiting, else until the next look, purge or due call, at most
 * SLEEP_MAX_MS, or curl's own timeout if sooner.
 */
static void
SleepUntilDue(Worker *w, WaitEventSet *wait_set)
{
	WaitEvent	events[WORKER_WAIT_EVENTS];
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake;
	long		timeout;
	long		curl_timeout;
	int			nevents;

	wake = Min(Min(w->check_at, w->purge_at),
			   TccScheduleNext(TccShmemCallRoom() > 0));
	if (w->more || TccRequestsPending())
		timeout = 0;
	else if (wake == DT_NOEND)
		timeout = -1;
	else if (wake <= now)
		timeout = 0;
	else						/* rounded up to milliseconds */
		timeout = (long) Min((wake - now + US_PER_MS - 1) / US_PER_MS,
							 SLEEP_MAX_MS);
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

/*
 * The worker's main loop; one turn is the steps below, in this order
 * (docs/layout.md#the-workers-turn).
 */
static void
WorkerLoop(WaitEventSet *wait_set)
{
	Worker		w;
	Turn		turn;

	WorkerInit(&w);
	for (;;)
	{
		BeginTurn(&w, &turn);
		WriteIntents(&w, &turn);
		CollectFinishedCalls(&turn);
		ReadWakeUp(&w, &turn);
		TakeDueCalls(&w, &turn);
		StartRememberedCalls(&w, &turn);
		if (HasWork(&turn))
		{
			SettleInOneTransaction(&w, &turn);
			StartCallsAfterCommit(&w, &turn);
		}
		PurgeExpired(&w);
		AnswerDestinations();
		TccWorkerProcTrimHeap(&w.trimmed_at);
		SleepUntilDue(&w, wait_set);
	}
}

/*
 * Entry point of a coordinator worker; arg is the index of its database in
 * tcc.database times TCC_MAX_WORKERS plus its number.
 */
void
TccWorkerMain(Datum arg)
{
	WaitEventSet *wait_set;
	TccSettled	settled;

	TccWorkerProcAttach(DatumGetInt32(arg) / TCC_MAX_WORKERS,
						DatumGetInt32(arg) % TCC_MAX_WORKERS);
	WaitForExtension();
	if (TccShmemRoot->nworkers > 1)
		elog(LOG, "tcc coordinator %d of %d started in database \"%s\"",
			 TccState->worker, TccShmemRoot->nworkers, TccDb->name);
	else
		elog(LOG, "tcc coordinator started in database \"%s\"", TccDb->name);

	TccWorkerProcSetUpMalloc();
	TccHttpInitWorker();
	wait_set = CreateWaitEventSet(TopMemoryContext, WORKER_WAIT_EVENTS);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, TccHttpEventFd(), NULL, NULL);

	TccScheduleInit();
	TccSettledInit(&settled, TopMemoryContext);
	TccStoreBeginWork();
	TccSettleStartup(&settled);
	(void) TccStoreEndWork();
	TccWakeWaiters(settled.gids, settled.n);

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
		TccWorkerProcLeaveError(edata->message);
		PG_RE_THROW();
	}
	PG_END_TRY();
}
