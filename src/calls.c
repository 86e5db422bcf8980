/*-------------------------------------------------------------------------
 *
 * calls.c
 *	  The confirm and cancel calls the schedule says are due, made ready to
 *	  start: from what the worker remembers of its phases two, else read
 *	  from the coordinator tables.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/calls.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "calls.h"
#include "http.h"
#include "protocol.h"
#include "rows.h"
#include "schedule.h"
#include "states.h"
#include "store.h"
#include "tcc.h"

/* Builds an int4[] of n integers. */
static Datum
IntArray(int *ints, int n)
{
	Datum	   *values = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		values[i] = Int32GetDatum(ints[i]);
	return TccStoreArray(values, NULL, n, INT4OID);
}

/*
 * Starts a call for gid's branch in a memory context of its own under cxt
 * (freed when the call ends, http.c), the list that holds it in cxt itself.
 * Returns the call, whose request the caller fills in its memory context.
 */
static TccCall *
NewCall(pg_uuid_t *gid, int branch, bool commit, MemoryContext cxt,
		List **calls)
{
	TccCall    *call;
	MemoryContext old;
	MemoryContext own = AllocSetContextCreate(cxt, "tcc call",
											  ALLOCSET_SMALL_SIZES);

	call = MemoryContextAllocZero(own, sizeof(TccCall));
	call->gid = *gid;
	call->branch = branch;
	call->op = commit ? TCC_OP_CONFIRM : TCC_OP_CANCEL;
	call->timeout_ms = tcc_request_timeout;

	/*
	 * The list outlives any one call and the unit of work (SPI's memory
	 * goes at its end): it lives in cxt itself, and the worker frees it
	 * once the calls have started.
	 */
	old = MemoryContextSwitchTo(cxt);
	*calls = lappend(*calls, call);
	MemoryContextSwitchTo(old);
	return call;
}

/*
 * A due call whose phase two the worker started itself: made from memory,
 * without a read.  Returns false if it is not remembered.
 */
static bool
CallFromMemory(pg_uuid_t *gid, int branch, MemoryContext cxt, List **calls)
{
	bool		commit;
	const TccPhaseCall *known = TccSchedulePhaseCall(gid, branch, &commit);
	TccCall    *call;
	MemoryContext own;

	if (known == NULL)
		return false;
	call = NewCall(gid, branch, commit, cxt, calls);
	own = GetMemoryChunkContext(call);
	call->url = MemoryContextStrdup(own, known->url);
	call->payload = MemoryContextStrdup(own, known->payload);
	call->payload_len = known->payload_len;
	if (known->nheaders > 0)
	{
		call->headers = MemoryContextAlloc(own, sizeof(char *) * known->nheaders);
		for (int j = 0; j < known->nheaders; j++)
			call->headers[j] = MemoryContextStrdup(own, known->headers[j]);
	}
	call->nheaders = known->nheaders;
	call->attempts = known->attempts;
	call->protocol = known->protocol;
	if (known->timeout_ms > 0)
		call->timeout_ms = known->timeout_ms;
	call->max_attempts = known->max_attempts;
	call->trace = known->trace;
	if (known->trace.state)
		call->trace.state = MemoryContextStrdup(own, known->trace.state);
	return true;
}

/* Whether gid is one of the n in gids. */
static bool
GidAmong(const pg_uuid_t *gid, const pg_uuid_t *gids, int n)
{
	for (int i = 0; i < n; i++)
	{
		if (memcmp(gid, &gids[i], sizeof(pg_uuid_t)) == 0)
			return true;
	}
	return false;
}

/*
 * Makes the due calls of gids / branches (*n of them) that the worker
 * remembers, but none of a transaction among the nbusy of busy, each in a
 * memory context of its own under cxt, in a list in cxt; leaves the others
 * in gids / branches, in order, and their number in *n.  Runs no
 * statement: a caller may make these calls outside a transaction.
 */
List *
TccCallsFromMemory(pg_uuid_t *gids, int *branches, int *n,
				   const pg_uuid_t *busy, int nbusy, MemoryContext cxt)
{
	List	   *calls = NIL;
	int			left = 0;

	for (int i = 0; i < *n; i++)
	{
		if (!GidAmong(&gids[i], busy, nbusy) &&
			CallFromMemory(&gids[i], branches[i], cxt, &calls))
			continue;
		gids[left] = gids[i];
		branches[left++] = branches[i];
	}
	*n = left;
	return calls;
}

/*
 * The decision is read off the status (the worker sets it from the
 * decision); a WHERE clause on the status would scan all of phase two.
 */
STMT(load_calls, 2,
	 "SELECT k.i, " TCC_SQL_DECISION_OF_PHASE("g") ", b.confirm_url, b.cancel_url,"
	 "       " TCC_CALL_BODY ", " TCC_CALL_HEADERS ","
	 "       b.attempts, b.protocol, " TCC_CALL_POLICY("g")
	 "  FROM unnest($1, $2) WITH ORDINALITY AS k (gid, branch, i)"
	 "  JOIN tcc._branch b ON b.gid = k.gid AND b.branch = k.branch"
	 "  JOIN tcc._gtx g ON g.gid = k.gid"
	 " WHERE " TCC_SQL_BRANCH_OPEN("b"),
	 UUIDARRAYOID, INT4ARRAYOID);

/* the columns of load_calls */
enum
{
	LOAD_INDEX = 1,				/* of the due call, from 1 */
	LOAD_COMMIT,				/* NULL: not in phase two */
	LOAD_CONFIRM_URL,
	LOAD_CANCEL_URL,
	LOAD_BODY,
	LOAD_HEADERS,
	LOAD_ATTEMPTS,
	LOAD_PROTOCOL,
	LOAD_POLICY					/* the five columns of TCC_CALL_POLICY */
};

/*
 * Reads the due calls that are not remembered from the tables, adding them
 * to *calls.  A branch with nothing left to do (finished, resolved, failed
 * meanwhile) is dropped from the schedule.
 */
static void
CallsFromTables(pg_uuid_t *gids, int *branches, int n, MemoryContext cxt,
				List **calls)
{
	Datum		args[2];
	bool	   *found;
	SPITupleTable *rows;

	args[0] = TccStoreGidArray(gids, n);
	args[1] = IntArray(branches, n);
	TccStoreExec(&load_calls, args, NULL, false);
	rows = SPI_tuptable;
	found = palloc0(sizeof(bool) * n);
	for (uint64 r = 0; r < rows->numvals; r++)
	{
		MemoryContext old;
		TccCall    *call;
		bool		isnull;
		int			timeout_ms;
		int			i = (int) DatumGetInt64(TccRowsCol(rows, r, LOAD_INDEX,
													   &isnull)) - 1;
		bool		commit = DatumGetBool(TccRowsCol(rows, r, LOAD_COMMIT,
													 &isnull));

		if (isnull)
			continue;			/* not in phase two: nothing to call */
		found[i] = true;
		call = NewCall(&gids[i], branches[i], commit, cxt, calls);
		old = MemoryContextSwitchTo(GetMemoryChunkContext(call));
		call->url = TextDatumGetCString(TccRowsCol(rows, r,
												   commit ? LOAD_CONFIRM_URL :
												   LOAD_CANCEL_URL, &isnull));
		call->payload = TextDatumGetCString(TccRowsCol(rows, r, LOAD_BODY,
													   &isnull));
		call->payload_len = strlen(call->payload);
		/* these two read SPI's latest result, which rows is */
		call->headers = TccStoreTextArrayCol(r, LOAD_HEADERS, &call->nheaders);
		call->attempts = DatumGetInt32(TccRowsCol(rows, r, LOAD_ATTEMPTS,
												  &isnull));
		call->protocol = TccProtocolFromName(TextDatumGetCString(TccRowsCol(rows, r, LOAD_PROTOCOL, &isnull)));
		TccStoreCallPolicy(r, LOAD_POLICY, &timeout_ms, &call->max_attempts,
						   &call->trace);
		if (timeout_ms > 0)
			call->timeout_ms = timeout_ms;
		MemoryContextSwitchTo(old);
	}
	for (int i = 0; i < n; i++)
	{
		if (!found[i])
			TccScheduleDone(&gids[i], branches[i]);
	}
}

/*
 * Makes the calls for branches the schedule says are due, each in a memory
 * context of its own under cxt (freed when the call ends, http.c), in a
 * list in cxt.  A call whose phase two the worker started itself is made
 * from what it remembers (the worker is the only writer of phase two: what
 * it remembers is what the tables hold); the others are read in one
 * statement.
 */
List *
TccCallsLoad(pg_uuid_t *gids, int *branches, int n, MemoryContext cxt)
{
	List	   *calls = NIL;
	pg_uuid_t  *read_gids;
	int		   *read_branches;
	int			nread = 0;

	if (n == 0)
		return NIL;
	read_gids = palloc(sizeof(pg_uuid_t) * n);
	read_branches = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		if (CallFromMemory(&gids[i], branches[i], cxt, &calls))
			continue;
		read_gids[nread] = gids[i];
		read_branches[nread++] = branches[i];
	}
	if (nread > 0)
		CallsFromTables(read_gids, read_branches, nread, cxt, &calls);
	pfree(read_gids);
	pfree(read_branches);
	return calls;
}
