/*-------------------------------------------------------------------------
 *
 * barrier.c
 *	  The participant barrier: tcc_barrier and tcc_barrier_cleanup.
 *
 * A participant whose own database is PostgreSQL calls tcc_barrier first
 * in the local transaction that handles a request.  Each (gid, branch, op)
 * is inserted at most once into tcc._barrier, so
 *	 - a duplicate try, confirm or cancel finds its row and is skipped;
 *	 - a cancel first inserts the try's row itself: if that succeeds the try
 *	   never ran, so the cancel does nothing (empty rollback) and a try that
 *	   arrives later finds the row and does nothing (hanging);
 *	 - a try and a cancel racing from two sessions meet on the same unique
 *	   key: one waits for the other's transaction, and only one acts.
 * The rows are written in the participant's transaction and roll back
 * with it.  No preloading is needed.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/barrier.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "protocol.h"
#include "store.h"
#include "util.h"
#include "validate.h"

PG_FUNCTION_INFO_V1(tcc_barrier);
PG_FUNCTION_INFO_V1(tcc_barrier_cleanup);

STMT(insert_barrier, 4,
	 "INSERT INTO tcc._barrier (gid, branch, op, reason)"
	 " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
	 UUIDOID, INT4OID, TEXTOID, TEXTOID);

STMT(cleanup_barrier, 1,
	 "DELETE FROM tcc._barrier WHERE created_at < pg_catalog.now() - $1",
	 INTERVALOID);

/* how much of a bad op a message quotes */
#define BAD_OP_QUOTED 64

/*
 * Inserts the barrier row of op, for a request of operation reason;
 * returns true if it was not there yet.
 */
static bool
InsertBarrier(pg_uuid_t *gid, int branch, TccOp op, TccOp reason)
{
	Datum		args[4];

	args[0] = UUIDPGetDatum(gid);
	args[1] = Int32GetDatum(branch);
	args[2] = CStringGetTextDatum(TccProtocolOpName(op));
	args[3] = CStringGetTextDatum(TccProtocolOpName(reason));
	TccStoreExec(&insert_barrier, args, NULL, false);
	return SPI_processed > 0;
}

/*
 * tcc_barrier(gid, branch, op): true when the participant should perform
 * the business action of this request, false when it must skip it and
 * answer 2xx.
 */
Datum
tcc_barrier(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	int			branch;
	char	   *op_name;
	TccOp		op;
	TccOwnerScope scope;
	bool		act;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gid, branch and op must not be null")));
	gid = PG_GETARG_UUID_P(0);
	branch = PG_GETARG_INT32(1);
	op_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (branch < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("branch must be positive")));
	if (!TccProtocolOpFromName(op_name, &op))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("op must be try, confirm or cancel"),
				 errdetail("The value given was \"%s\".",
						   TccClip(op_name, BAD_OP_QUOTED))));

	TccStoreEnterOwner(&scope);
	if (op == TCC_OP_CANCEL)
	{
		/* the try's row first: whoever inserts it decides whether try acts */
		bool		try_never_ran = InsertBarrier(gid, branch, TCC_OP_TRY,
												  TCC_OP_CANCEL);
		bool		first_cancel = InsertBarrier(gid, branch, TCC_OP_CANCEL,
												 TCC_OP_CANCEL);

		act = first_cancel && !try_never_ran;
	}
	else
		act = InsertBarrier(gid, branch, op, op);
	TccStoreLeaveOwner(&scope);
	PG_RETURN_BOOL(act);
}

/* tcc_barrier_cleanup(older_than): deletes old barrier rows; returns how many. */
Datum
tcc_barrier_cleanup(PG_FUNCTION_ARGS)
{
	Interval   *older_than;
	TccOwnerScope scope;
	Datum		args[1];
	uint64		deleted;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be null")));
	older_than = PG_GETARG_INTERVAL_P(0);
	TccValidateTimeout(older_than, "older_than");

	TccStoreEnterOwner(&scope);
	args[0] = IntervalPGetDatum(older_than);
	TccStoreExec(&cleanup_barrier, args, NULL, false);
	deleted = SPI_processed;
	TccStoreLeaveOwner(&scope);
	PG_RETURN_INT64((int64) deleted);
}
