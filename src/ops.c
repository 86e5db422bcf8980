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

#include "access/xlog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "coordinator.h"
#include "durable.h"
#include "gid.h"
#include "notice.h"
#include "pause.h"
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
PG_FUNCTION_INFO_V1(tcc_worker_states);
PG_FUNCTION_INFO_V1(tcc_wait_durable);

/* Returns argument 0 as a checked destination, "scheme://host:port". */
static char *
DestinationArg(FunctionCallInfo fcinfo)
{
	TccValidateArgGiven(fcinfo, 0, "destination");
	return TccValidateDestination(text_to_cstring(PG_GETARG_TEXT_PP(0)));
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
	TccNoticePausesChanged();
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
	TccNoticePausesChanged();
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
	TccNoticeAction();
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

/* One worker's live state, as tcc.worker shows it. */
typedef struct WorkerRow
{
	pid_t		pid;
	TimestampTz started;
	int			in_flight;
	int			queue_depth;
	char		last_error[sizeof(((TccShared *) NULL)->last_error)];
} WorkerRow;

/* Copies the live state of worker k of this backend's database. */
static void
ReadWorker(int k, WorkerRow *row)
{
	TccShared  *w = TccShmemWorker(TccDb, k);

	SpinLockAcquire(&w->mutex);
	row->pid = w->worker_pid;
	row->started = w->worker_started;
	row->in_flight = w->in_flight;
	row->queue_depth = w->queue_depth;
	strlcpy(row->last_error, w->last_error, sizeof(row->last_error));
	SpinLockRelease(&w->mutex);
}

/* Fills the first five columns of tcc.worker from a row. */
static void
WorkerValues(WorkerRow *row, Datum *values, bool *nulls)
{
	values[0] = Int32GetDatum(row->pid);
	nulls[0] = (row->pid == 0);
	values[1] = TimestampTzGetDatum(row->started);
	nulls[1] = (row->started == 0);
	values[2] = Int32GetDatum(row->in_flight);
	nulls[2] = false;
	values[3] = Int32GetDatum(row->queue_depth);
	nulls[3] = false;
	values[4] = CStringGetTextDatum(row->last_error);
	nulls[4] = (row->last_error[0] == '\0');
}

/*
 * tcc_worker_state(): the workers of the current database as one: the pid
 * and start of worker 0 (NULL when any worker is not running), their calls
 * in flight and waiting added up, the first error that stopped one.
 */
Datum
tcc_worker_state(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5];
	WorkerRow	all;
	bool		any_down = false;

	TccCoordinatorRequire();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	ReadWorker(0, &all);
	any_down = (all.pid == 0);
	for (int k = 1; k < TccShmemRoot->nworkers; k++)
	{
		WorkerRow	row;

		ReadWorker(k, &row);
		any_down |= (row.pid == 0);
		all.in_flight += row.in_flight;
		all.queue_depth += row.queue_depth;
		if (all.last_error[0] == '\0')
			strlcpy(all.last_error, row.last_error, sizeof(all.last_error));
	}
	if (any_down)
	{
		all.pid = 0;
		all.started = 0;
	}
	WorkerValues(&all, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Raises 42501 unless the current role may execute tcc_worker_state(), the
 * function reading tcc.worker took before it had a row per worker.
 */
static void
RequireWorkerStateGrant(FunctionCallInfo fcinfo)
{
	/* tcc_worker_states() lives beside it, in the extension's schema */
	Oid			schema = get_func_namespace(fcinfo->flinfo->fn_oid);
	List	   *name = list_make2(makeString(get_namespace_name(schema)),
								  makeString("tcc_worker_state"));
	Oid			fn = LookupFuncName(name, 0, NULL, false);

	if (pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, "tcc_worker_state");
}

/*
 * tcc_worker_states(): a row per worker of the current database (tcc.worker):
 * the columns of tcc_worker_state() and its number.
 */
Datum
tcc_worker_states(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	TccCoordinatorRequire();
	RequireWorkerStateGrant(fcinfo);
	InitMaterializedSRF(fcinfo, 0);
	for (int k = 0; k < TccShmemRoot->nworkers; k++)
	{
		WorkerRow	row;
		Datum		values[6];
		bool		nulls[6];

		ReadWorker(k, &row);
		WorkerValues(&row, values, nulls);
		values[5] = Int32GetDatum(k);
		nulls[5] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
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
