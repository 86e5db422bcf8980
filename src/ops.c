/*-------------------------------------------------------------------------
 *
 * ops.c
 *	  The SQL functions an operator runs: tcc_retry and tcc_resolve on a
 *	  transaction in phase two, tcc_pause, tcc_resume and
 *	  tcc_destination_state on destinations, tcc_worker_state and
 *	  tcc._wait_durable for monitoring.
 *
 * tcc_retry and tcc_resolve record the operator's action in the operator's
 * transaction; when it commits, the worker is woken to act on it.
 * A pause is written in the operator's transaction (pause.c); when that
 * transaction commits, the worker is told and holds the destination's
 * calls from then on; tcc_resume makes them due at once
 * (docs/api.md#pausing-a-destination).  tcc_destination_state asks the
 * worker what it has for each destination (shmem.c), for the view
 * tcc.destinations.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/ops.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coordinator.h"
#include "durable.h"
#include "gid.h"
#include "pause.h"
#include "schedule.h"
#include "shmem.h"
#include "status.h"
#include "store.h"
#include "tcc.h"
#include "validate.h"

PG_FUNCTION_INFO_V1(tcc_pause);
PG_FUNCTION_INFO_V1(tcc_resume);
PG_FUNCTION_INFO_V1(tcc_destination_state);
PG_FUNCTION_INFO_V1(tcc_retry);
PG_FUNCTION_INFO_V1(tcc_resolve);
PG_FUNCTION_INFO_V1(tcc_worker_state);
PG_FUNCTION_INFO_V1(tcc_wait_durable);

/* what the current transaction must tell the worker when it commits */
static bool callback_registered = false;
static bool pauses_changed = false;
static bool wake_at_commit = false;

/*
 * Tells the worker at commit that the pauses changed, and wakes it for an
 * operator's action (no polling delay).  A prepared transaction tells it
 * nothing: the worker's own look every second finds its actions once
 * COMMIT PREPARED has run.
 */
static void
OpsXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (pauses_changed)
				TccPausesChanged();
			if (wake_at_commit)
				TccWakeWorker(true, false);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			break;
		default:
			return;
	}
	pauses_changed = false;
	wake_at_commit = false;
}

/* Returns argument 0 as a checked destination, "scheme://host:port". */
static char *
DestinationArg(FunctionCallInfo fcinfo)
{
	TccValidateArgGiven(fcinfo, 0, "destination");
	return TccValidateDestination(text_to_cstring(PG_GETARG_TEXT_PP(0)));
}

/* Registers the transaction callback once per backend. */
static void
WatchTransaction(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(OpsXactCallback, NULL);
		callback_registered = true;
	}
}

/* Notes that this transaction changed the pauses. */
static void
WatchPauses(void)
{
	WatchTransaction();
	pauses_changed = true;
}

/* Notes that the worker must act on this transaction's action at commit. */
static void
WakeWorkerAtCommit(void)
{
	WatchTransaction();
	wake_at_commit = true;
}

/*
 * tcc_pause(destination, note): from the commit on, no confirm or cancel is
 * sent to destination and tries to it fail at once.
 */
Datum
tcc_pause(PG_FUNCTION_ARGS)
{
	char	   *dest;
	char	   *note = NULL;

	TccCoordinatorRequire();
	dest = DestinationArg(fcinfo);
	if (!PG_ARGISNULL(1))
		note = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!TccPauseAdd(dest, note))
		ereport(NOTICE,
				(errmsg("destination %s is already paused", dest)));
	WatchPauses();
	PG_RETURN_VOID();
}

/*
 * tcc_resume(destination): from the commit on, the calls held for
 * destination are due at once.
 */
Datum
tcc_resume(PG_FUNCTION_ARGS)
{
	char	   *dest;

	TccCoordinatorRequire();
	dest = DestinationArg(fcinfo);
	if (!TccPauseRemove(dest))
		ereport(NOTICE,
				(errmsg("destination %s is not paused", dest)));
	WatchPauses();
	PG_RETURN_VOID();
}

/*
 * tcc_destination_state(): per destination with calls waiting or in
 * flight, or paused, what the worker of this database has: calls due,
 * calls in flight, the last call's status and error, the next call's
 * time.  No rows when the worker does not answer.
 */
Datum
tcc_destination_state(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TccDestRow *rows;
	int			n;

	TccCoordinatorRequire();
	InitMaterializedSRF(fcinfo, 0);
	rows = palloc(sizeof(TccDestRow) * TCC_DEST_ROWS);
	n = TccDestinationsRead(rows);
	for (int i = 0; i < n; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(rows[i].destination);
		values[1] = Int32GetDatum(rows[i].calls_due);
		values[2] = Int32GetDatum(rows[i].in_flight);
		values[3] = Int32GetDatum(rows[i].last_http_status);
		nulls[3] = (rows[i].last_http_status == 0);
		values[4] = CStringGetTextDatum(rows[i].last_error);
		nulls[4] = (rows[i].last_error[0] == '\0');
		values[5] = TimestampTzGetDatum(rows[i].next_at);
		nulls[5] = (rows[i].next_at == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}

/*
 * Checks that an operator action applies to a gid in phase two.  Returns
 * false, with a NOTICE, when the transaction is already final: it settled
 * between the operator's look and the action, which is no error (so that
 * "SELECT tcc_retry(gid) FROM tcc.pending" cannot fail as a whole).
 */
static bool
CheckActionable(pg_uuid_t *gid, const char *action, bool undecided_ok)
{
	TccGtxInfo	info;
	const char *status;

	TccStatusReadOwn(gid, &info);
	status = TccStatusShown(&info);
	if (TccStatusIsFinal(status))
	{
		ereport(NOTICE,
				(errmsg("global transaction %s is already %s, nothing to %s",
						TccGidText(gid), status, action)));
		return false;
	}
	if (!undecided_ok && strcmp(status, "trying") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_TCC_BAD_DECISION),
				 errmsg("cannot %s global transaction %s: it is not decided yet",
						action, TccGidText(gid))));
	return true;
}

/*
 * Records an operator's action on gid in the operator's transaction, unless
 * the transaction is final already, and wakes the worker at commit.
 */
static void
RecordAction(pg_uuid_t *gid, const char *action, const char *note,
			 bool undecided_ok)
{
	if (!CheckActionable(gid, action, undecided_ok))
		return;
	TccStoreAction(gid, action, note);
	WakeWorkerAtCommit();
}

/* tcc_retry(gid): makes pending calls due now; a failed transaction resumes. */
Datum
tcc_retry(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;

	TccCoordinatorRequire();
	gid = TccValidateGidArg(fcinfo, 0);
	RecordAction(gid, "retry", NULL, false);
	PG_RETURN_VOID();
}

/* tcc_resolve(gid, note): a person settled it by hand; no more calls. */
Datum
tcc_resolve(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	char	   *note;

	TccCoordinatorRequire();
	gid = TccValidateGidArg(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("note must not be null"),
				 errhint("Say how the transaction was settled.")));
	note = text_to_cstring(PG_GETARG_TEXT_PP(1));
	RecordAction(gid, "resolve", note, true);
	PG_RETURN_VOID();
}

/*
 * tcc_worker_state(): the pid, start, calls in flight and last error of the
 * worker of the current database.
 */
Datum
tcc_worker_state(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	pid_t		pid;
	TimestampTz started;
	int			in_flight;
	int			queue_depth;
	char		last_error[sizeof(TccState->last_error)];

	TccCoordinatorRequire();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	SpinLockAcquire(&TccState->mutex);
	pid = TccState->worker_pid;
	started = TccState->worker_started;
	in_flight = TccState->in_flight;
	queue_depth = TccState->queue_depth;
	strlcpy(last_error, TccState->last_error, sizeof(last_error));
	SpinLockRelease(&TccState->mutex);

	values[0] = Int32GetDatum(pid);
	nulls[0] = (pid == 0);
	values[1] = TimestampTzGetDatum(started);
	nulls[1] = (started == 0);
	values[2] = Int32GetDatum(in_flight);
	values[3] = Int32GetDatum(queue_depth);
	values[4] = CStringGetTextDatum(last_error);
	nulls[4] = (last_error[0] == '\0');
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * tcc._wait_durable(): waits until the WAL written so far is flushed and on
 * the synchronous standbys.  tcc.metrics calls it before it reads, so that
 * no count it shows belongs to a commit a crash or a failover could take
 * back (a caller with synchronous_commit off is visible before that).
 */
Datum
tcc_wait_durable(PG_FUNCTION_ARGS)
{
	if (!RecoveryInProgress())
		TccDurableWait(TccDurableEndOfWal());
	PG_RETURN_VOID();
}
