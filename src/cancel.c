/*-------------------------------------------------------------------------
 *
 * cancel.c
 *	  The worker cancels undecided global transactions that can no longer
 *	  confirm: their deadline passed, a try failed, or the transaction that
 *	  began them aborted (R3 of docs/guarantees.md).
 *
 * A pass reads every such transaction, takes the locks of up to
 * CANCEL_BATCH of them without waiting and decides those in one statement
 * (store.c).  A gid whose lock is held (a tcc_finish in a transaction still
 * open) is left for a later pass, which the worker delays while it stays
 * held; a full batch is not such a gid: the next pass comes at once, so
 * thousands of deadlines passing together are cancelled at the rate phase
 * two drains (settle.c starts the phases two these decisions begin).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/cancel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "cancel.h"
#include "gid.h"
#include "rows.h"
#include "shmem.h"
#include "states.h"
#include "store.h"

/*
 * gids decided per pass: their locks are held until the pass commits, so
 * this is also how much of the shared lock table a pass may use (about an
 * eighth of it at the default max_locks_per_transaction)
 */
#define CANCEL_BATCH 1000

/*
 * how long a transaction id may be behind the next one and still be looked
 * up in the commit log: older ones count as committed (BeginOutcome)
 */
#define XID_LOOKUP_HORIZON ((uint64) 1 << 30)

/* $1: look for failed tries too (the worker does when it records one) */
STMT(undecided_gtxs, 3,
	 "SELECT g.gid, g.begin_xid, g.deadline <= now(), f.failed"
	 "  FROM tcc._gtx g"
	 " CROSS JOIN LATERAL (SELECT $1 AND EXISTS ("
	 "       SELECT 1 FROM tcc._branch b"
	 "        WHERE b.gid = g.gid AND " TCC_SQL_TRY_FAILED("b") ")) f (failed)"
	 " WHERE " TCC_SQL_TRYING("g.status")
	 "   AND (g.deadline <= now() OR g.begin_xid IS NOT NULL OR f.failed)"
	 "   AND NOT EXISTS (SELECT 1 FROM tcc._decision d WHERE d.gid = g.gid)"
	 "   AND " TCC_SQL_OWNED("g.gid", "$2", "$3")
	 " ORDER BY g.deadline",
	 BOOLOID, INT4OID, INT4OID);

/* the columns of undecided_gtxs */
enum
{
	UNDECIDED_GID = 1,
	UNDECIDED_BEGIN_XID,
	UNDECIDED_DEADLINE_PASSED,
	UNDECIDED_TRY_FAILED
};

STMT(forget_begin_xids, 1,
	 "UPDATE tcc._gtx SET begin_xid = NULL WHERE gid = ANY ($1)",
	 UUIDARRAYOID);

typedef enum XidOutcome
{
	XID_RUNNING,
	XID_COMMITTED,
	XID_ABORTED
} XidOutcome;

/*
 * Returns what became of the transaction that began a gid.  One too old to
 * look up (or not a normal xid, or oddly in the future) counts as
 * committed: only the deadline can cancel it then.  As pg_xact_status
 * does, the commit log's lower bound is read and the log looked up under
 * XactTruncationLock, so that a concurrent truncation cannot remove the
 * page between the check and the lookup.
 */
static XidOutcome
BeginOutcome(FullTransactionId fxid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId xid = XidFromFullTransactionId(fxid);
	XidOutcome	outcome;

	if (!TransactionIdIsNormal(xid) ||
		!FullTransactionIdPrecedes(fxid, next) ||
		U64FromFullTransactionId(next) - U64FromFullTransactionId(fxid) >
		XID_LOOKUP_HORIZON)
		return XID_COMMITTED;
	LWLockAcquire(XactTruncationLock, LW_SHARED);
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		outcome = XID_COMMITTED;
	else if (TransactionIdIsInProgress(xid))
		outcome = XID_RUNNING;
	else if (TransactionIdDidCommit(xid))
		outcome = XID_COMMITTED;
	else
		outcome = XID_ABORTED;
	LWLockRelease(XactTruncationLock);
	return outcome;
}

/*
 * Returns why row r of the undecided transactions (rows) must be cancelled
 * ("deadline", "try failed", "aborted"), "" when the transaction that began
 * it committed (only its deadline can cancel it now), or NULL when that
 * transaction is still running.
 */
static const char *
CancelReason(const SPITupleTable *rows, uint64 r)
{
	bool		xid_null;
	bool		isnull;
	Datum		xid = TccRowsCol(rows, r, UNDECIDED_BEGIN_XID, &xid_null);

	if (DatumGetBool(TccRowsCol(rows, r, UNDECIDED_DEADLINE_PASSED, &isnull)))
		return "deadline";
	if (DatumGetBool(TccRowsCol(rows, r, UNDECIDED_TRY_FAILED, &isnull)))
		return "try failed";
	if (xid_null)
		return NULL;
	switch (BeginOutcome(DatumGetFullTransactionId(xid)))
	{
		case XID_RUNNING:
			return NULL;
		case XID_ABORTED:
			return "aborted";
		case XID_COMMITTED:
			break;
	}
	return "";
}

/*
 * Cancels undecided transactions that can no longer confirm: the deadline
 * passed, a try failed (looked for when look_for_failed_tries, which the
 * worker sets when a try failed, at its start, and after a pass that left
 * some), or the transaction that began it aborted (rule R3).  Every such
 * transaction is looked at, however many are open; those whose beginning
 * transaction committed are no longer watched.  Up to CANCEL_BATCH of them
 * whose locks are free are decided in one statement.  Returns what the pass
 * decided and left.
 */
TccCancelPass
TccCancelStuck(bool look_for_failed_tries)
{
	TccCancelPass pass = {false, TCC_CANCEL_DONE, false};
	SPITupleTable *rows;
	uint64		n;
	pg_uuid_t  *cancel;
	const char **sources;
	pg_uuid_t  *forget;
	int			ncancel = 0;
	int			nforget = 0;
	bool		blocked = false;
	bool		full = false;
	Datum		args[3] = {BoolGetDatum(look_for_failed_tries)};

	TccShmemOwnerArgs(&args[1]);
	TccStoreExec(&undecided_gtxs, args, NULL, false);
	rows = SPI_tuptable;
	n = rows->numvals;
	if (n == 0)
		return pass;
	cancel = palloc(sizeof(pg_uuid_t) * Min(n, CANCEL_BATCH));
	sources = palloc(sizeof(char *) * Min(n, CANCEL_BATCH));
	forget = palloc(sizeof(pg_uuid_t) * n);
	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;
		pg_uuid_t  *gid = DatumGetUUIDP(TccRowsCol(rows, r, UNDECIDED_GID,
												   &isnull));
		const char *reason = CancelReason(rows, r);

		if (reason == NULL)
			continue;
		if (reason[0] == '\0')
			forget[nforget++] = *gid;
		else if (ncancel == CANCEL_BATCH)
			full = true;
		else if (TccGidTryLock(gid))
		{
			cancel[ncancel] = *gid;
			sources[ncancel++] = reason;
		}
		else
			blocked = true;
	}
	SPI_freetuptable(rows);

	if (nforget > 0)
	{
		args[0] = TccStoreGidArray(forget, nforget);
		TccStoreExec(&forget_begin_xids, args, NULL, false);
	}
	pass.decided = TccStoreDecideCancels(cancel, sources, ncancel) > 0;
	if (full)
		pass.left = TCC_CANCEL_MORE;
	else if (blocked)
		pass.left = TCC_CANCEL_BLOCKED;
	/* a failed try left undecided is looked for again next time */
	pass.look_for_failed_tries = look_for_failed_tries &&
		pass.left != TCC_CANCEL_DONE;
	pfree(cancel);
	pfree(sources);
	pfree(forget);
	return pass;
}

STMT(next_deadline, 2,
	 "SELECT pg_catalog.min(deadline) FROM tcc._gtx"
	 " WHERE " TCC_SQL_TRYING("status") " AND deadline > now()"
	 "   AND " TCC_SQL_OWNED("gid", "$1", "$2"),
	 INT4OID, INT4OID);

/*
 * Returns the earliest deadline of an undecided transaction still to come,
 * DT_NOEND when there is none.  Those that passed were looked at by the
 * pass of this same transaction (now() is its start).
 */
TimestampTz
TccCancelNextDeadline(void)
{
	bool		isnull;
	Datum		d;
	Datum		owner[2];

	TccShmemOwnerArgs(owner);
	TccStoreExec(&next_deadline, owner, NULL, false);
	d = TccRowsCol(SPI_tuptable, 0, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}
