/*-------------------------------------------------------------------------
 *
 * ops.c
 *	  The SQL functions of operations on destinations: tcc_pause,
 *	  tcc_resume and tcc_destination_state, run in an operator's backend.
 *
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
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coordinator.h"
#include "pause.h"
#include "schedule.h"
#include "shmem.h"
#include "validate.h"

PG_FUNCTION_INFO_V1(tcc_pause);
PG_FUNCTION_INFO_V1(tcc_resume);
PG_FUNCTION_INFO_V1(tcc_destination_state);

static bool callback_registered = false;
static bool pauses_changed = false;

/* Tells the worker at commit that the pauses changed. */
static void
OpsXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (pauses_changed)
				TccPausesChanged();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			break;
		default:
			return;
	}
	pauses_changed = false;
}

/* Returns argument 0 as a checked destination, "scheme://host:port". */
static char *
DestinationArg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("destination must not be null")));
	return TccValidateDestination(text_to_cstring(PG_GETARG_TEXT_PP(0)));
}

/* Notes that this transaction changed the pauses. */
static void
WatchPauses(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(OpsXactCallback, NULL);
		callback_registered = true;
	}
	pauses_changed = true;
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
