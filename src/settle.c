/*-------------------------------------------------------------------------
 *
 * settle.c
 *	  The worker's moves on the coordinator tables once intents are written:
 *	  starting and advancing phase two, recording call outcomes and applying
 *	  operator actions (cancel.c decides to cancel what can no longer
 *	  confirm, calls.c makes the due calls ready, purge.c deletes expired
 *	  transactions).
 *
 * Every state change of a global transaction after trying is made here, by
 * the worker alone, one function per transition.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/settle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "backoff.h"
#include "batch.h"
#include "http.h"
#include "protocol.h"
#include "rows.h"
#include "schedule.h"
#include "settle.h"
#include "settled.h"
#include "shmem.h"
#include "states.h"
#include "store.h"
#include "tcc.h"

/* the rows TakePhaseRows takes, for gids already in phase two */
STMT(advance_info, 1,
	 "SELECT g.gid, d.commit, g.parallel, b.branch"
	 "  FROM (SELECT DISTINCT x FROM pg_catalog.unnest($1) x) a (gid)"
	 "  JOIN tcc._gtx g ON g.gid = a.gid"
	 "  JOIN tcc._decision d ON d.gid = g.gid"
	 "  LEFT JOIN tcc._branch b ON b.gid = g.gid"
	 "   AND " TCC_SQL_BRANCH_OPEN("b")
	 " WHERE g.status = " TCC_SQL_PHASE_OF_DECISION("d")
	 " ORDER BY g.gid, b.branch",
	 UUIDARRAYOID);

/* confirming -> confirmed, cancelling -> cancelled: gids and statuses */
#define FINISH_GTXS(gids, statuses) \
	"UPDATE tcc._gtx g SET status = f.status, finished_at = pg_catalog.clock_timestamp()," \
	"       last_error = NULL" \
	"  FROM unnest(" gids ", " statuses ") f (gid, status)" \
	" WHERE g.gid = f.gid" \
	"   AND g.status = " TCC_SQL_PHASE_OF_FINAL("f.status")

STMT(finish_gtxs, 2, FINISH_GTXS("$1", "$2"), UUIDARRAYOID, TEXTARRAYOID);

/* Transactions whose phase two has no branch pending: gid, final status. */
enum
{
	FIN_GID,
	FIN_STATUS,
	FIN_NCOLS
};

/* Adds a transaction to those to finish, and to those settled. */
static void
FinishingAdd(TccBatch *fin, pg_uuid_t *gid, bool commit, TccSettled *settled)
{
	int			r = fin->n++;

	TccSettledAdd(settled, gid);
	TccBatchSetGid(fin, r, FIN_GID, gid);
	TccBatchSet(fin, r, FIN_STATUS,
			   CStringGetTextDatum(commit ? TCC_STATUS_CONFIRMED : TCC_STATUS_CANCELLED));
}

/* confirming -> confirmed, cancelling -> cancelled, for all of fin. */
static void
Finish(TccBatch *fin)
{
	Datum		args[FIN_NCOLS];

	if (fin->n == 0)
		return;
	TccBatchParams(fin, args);
	TccStoreExec(&finish_gtxs, args, NULL, false);
}

/* the branches a phase two just started does not call */
STMT(skip_branches, 2,
	 "UPDATE tcc._branch b SET status = 'skipped'"
	 "  FROM unnest($1, $2) s (gid, branch)"
	 " WHERE b.gid = s.gid AND b.branch = s.branch"
	 "   AND " TCC_SQL_BRANCH_OPEN("b"),
	 UUIDARRAYOID, INT4ARRAYOID);

/* the branches to skip: gid, branch */
enum
{
	SKIP_GID,
	SKIP_BRANCH,
	SKIP_NCOLS
};

/*
 * The end of both statements that start phase two (dec holds the gids):
 * returns, per branch not final yet, its transaction's decision, what its
 * call sends and whether the phase skips it (one row with a NULL branch for
 * a transaction with no such branch), then the call's policy and trace
 * context, in gid and branch order: one read of the branches, TakePhaseRows
 * skips what is to be skipped.  Its columns are PhaseCol's.
 */
#define PHASE_TWO_ROWS \
	"  RETURNING g.gid, d.commit, g.parallel, g.trace_id, g.trace_flags, g.tracestate)" \
	"SELECT dec.gid, dec.commit, dec.parallel, b.branch," \
	"       CASE WHEN dec.commit THEN b.confirm_url ELSE b.cancel_url END," \
	"       " TCC_CALL_BODY ", " TCC_CALL_HEADERS "," \
	"       b.attempts, b.protocol, " TCC_SQL_SKIPPED_IN_PHASE("dec", "b") "," \
	"       " TCC_CALL_POLICY("dec") \
	"  FROM dec LEFT JOIN tcc._branch b ON b.gid = dec.gid" \
	"   AND " TCC_SQL_BRANCH_OPEN("b") \
	" ORDER BY dec.gid, b.branch"

/* the columns of PHASE_TWO_ROWS; advance_info has the first four */
typedef enum PhaseCol
{
	PHASE_GID = 1,
	PHASE_COMMIT,
	PHASE_PARALLEL,
	PHASE_BRANCH,				/* NULL: no branch left to call */
	PHASE_URL,					/* of the phase's call */
	PHASE_BODY,
	PHASE_HEADERS,
	PHASE_ATTEMPTS,
	PHASE_PROTOCOL,
	PHASE_SKIPPED,				/* TCC_SQL_SKIPPED_IN_PHASE */
	PHASE_POLICY				/* the five columns of TCC_CALL_POLICY */
} PhaseCol;

/* where the rows TakePhaseRows reads come from */
typedef enum PhaseRows
{
	ROWS_IN_PHASE,				/* advance_info: phase two goes on */
	ROWS_RETRIED,				/* the same after tcc_retry: due now */
	ROWS_STARTED				/* PHASE_TWO_ROWS: phase two just started */
} PhaseRows;

/*
 * Remembers what the call of row r of rows (PHASE_TWO_ROWS) sends, for the
 * branch of gid it is.
 */
static void
RememberCall(const SPITupleTable *rows, uint64 r, pg_uuid_t *gid, int branch)
{
	bool		isnull;
	Datum		url = TccRowsCol(rows, r, PHASE_URL, &isnull);
	TccPhaseCall what;

	if (isnull)
		return;
	what.url = TextDatumGetCString(url);
	/* this and TccStoreCallPolicy read SPI's latest result, which rows is */
	what.headers = TccStoreTextArrayCol(r, PHASE_HEADERS, &what.nheaders);
	what.payload = TextDatumGetCString(TccRowsCol(rows, r, PHASE_BODY,
												  &isnull));
	what.attempts = DatumGetInt32(TccRowsCol(rows, r, PHASE_ATTEMPTS,
											 &isnull));
	what.protocol = TccProtocolFromName(TextDatumGetCString(TccRowsCol(rows, r, PHASE_PROTOCOL, &isnull)));
	TccStoreCallPolicy(r, PHASE_POLICY, &what.timeout_ms, &what.max_attempts,
					   &what.trace);
	TccSchedulePhaseRemember(gid, branch, &what);
}

/* Returns the gid of row r of rows. */
static pg_uuid_t *
RowGid(const SPITupleTable *rows, uint64 r)
{
	bool		isnull;

	return DatumGetUUIDP(TccRowsCol(rows, r, PHASE_GID, &isnull));
}

/* One transaction's rows in the phase rows, and its branches to call. */
typedef struct GtxRows
{
	pg_uuid_t	gid;
	bool		commit;
	bool		parallel;
	int			npending;
	int		   *pending;		/* branches to call */
	uint64	   *pending_row;	/* the row of each */
} GtxRows;

/*
 * Reads the rows of one transaction, from row *r on, into gtx: the branches
 * to call, and those the phase skips (into skip) when it just started.
 * Leaves *r at the next transaction's first row.
 */
static void
ReadGtxRows(const SPITupleTable *rows, uint64 *r, PhaseRows from,
			GtxRows *gtx, TccBatch *skip)
{
	uint64		first = *r;
	bool		isnull;

	gtx->gid = *RowGid(rows, first);
	gtx->commit = DatumGetBool(TccRowsCol(rows, first, PHASE_COMMIT, &isnull));
	gtx->parallel = DatumGetBool(TccRowsCol(rows, first, PHASE_PARALLEL,
											&isnull));
	gtx->npending = 0;
	/* the rows of one transaction follow each other */
	for (; *r < rows->numvals; (*r)++)
	{
		Datum		branch;

		if (*r > first &&
			memcmp(RowGid(rows, *r), &gtx->gid, sizeof(gtx->gid)) != 0)
			break;
		branch = TccRowsCol(rows, *r, PHASE_BRANCH, &isnull);
		if (isnull)
			continue;
		if (from == ROWS_STARTED &&
			DatumGetBool(TccRowsCol(rows, *r, PHASE_SKIPPED, &isnull)))
		{
			int			s = skip->n++;

			TccBatchSetGid(skip, s, SKIP_GID, &gtx->gid);
			TccBatchSet(skip, s, SKIP_BRANCH, branch);
			continue;
		}
		gtx->pending_row[gtx->npending] = *r;
		gtx->pending[gtx->npending++] = DatumGetInt32(branch);
	}
}

/*
 * Takes rows, one per branch not final yet of each transaction in phase
 * two, in gid and branch order (PhaseCol; a NULL branch for a transaction
 * with none): skips what the phase does not call; schedules what comes next
 * in each transaction (registration order for confirm, reverse for cancel,
 * every pending branch when parallel; schedule.c), remembers what each call
 * of a phase just started sends, so that it is not read again when due, and
 * moves those with nothing pending on: confirming -> confirmed, cancelling
 * -> cancelled.  Frees rows.  Returns the transactions taken.
 */
static uint64
TakePhaseRows(SPITupleTable *rows, PhaseRows from, TccSettled *settled)
{
	uint64		nrows = rows->numvals;
	uint64		ntaken = 0;
	uint64		r = 0;
	TimestampTz now = GetCurrentTimestamp();
	TccBatch	fin;
	TccBatch	skip;
	GtxRows		gtx;

	if (nrows == 0)
	{
		SPI_freetuptable(rows);
		return 0;
	}
	TccBatchInit(&fin, &finish_gtxs, (int) nrows);
	TccBatchInit(&skip, &skip_branches, (int) nrows);
	gtx.pending = palloc(sizeof(int) * nrows);
	gtx.pending_row = palloc(sizeof(uint64) * nrows);
	while (r < nrows)
	{
		ReadGtxRows(rows, &r, from, &gtx, &skip);
		ntaken++;
		if (TccSchedulePhaseStart(&gtx.gid, gtx.commit, gtx.parallel,
								  gtx.pending, gtx.npending, now,
								  from == ROWS_RETRIED))
		{
			FinishingAdd(&fin, &gtx.gid, gtx.commit, settled);
			continue;
		}
		for (int k = 0; from == ROWS_STARTED && k < gtx.npending; k++)
			RememberCall(rows, gtx.pending_row[k], &gtx.gid, gtx.pending[k]);
	}
	/* what was read is copied: free it before the next statement */
	SPI_freetuptable(rows);
	if (skip.n > 0)
	{
		Datum		args[SKIP_NCOLS];

		TccBatchParams(&skip, args);
		TccStoreExec(&skip_branches, args, NULL, false);
	}
	Finish(&fin);
	return ntaken;
}

/*
 * Moves phase two of the given gids forward as the tables show it (see
 * TakePhaseRows).  Invariant: a branch is called only while its transaction
 * is confirming or cancelling, and in sequential mode only after every
 * branch before it has finished.
 */
static void
Advance(pg_uuid_t *gids, int ngids, PhaseRows from, TccSettled *settled)
{
	Datum		args[1];

	if (ngids == 0)
		return;
	args[0] = TccStoreGidArray(gids, ngids);
	TccStoreExec(&advance_info, args, NULL, false);
	pfree(DatumGetPointer(args[0]));
	if (TakePhaseRows(SPI_tuptable, from, settled) > 0)
		TccSettledTookPhases(settled, TCC_PHASES_ANY);
}

STMT(in_phase_gtxs, 4,
	 "SELECT gid FROM tcc._gtx WHERE " TCC_SQL_IN_PHASE_TWO("status")
	 "   AND " TCC_SQL_OWNED("gid", "$3", "$4")
	 "   AND gid > $1 ORDER BY gid LIMIT $2",
	 UUIDOID, INT4OID, INT4OID, INT4OID);

/* transactions read back per statement at worker start */
#define STARTUP_BATCH 10000

/*
 * Worker start: rebuilds the schedule of the gids it owns from the tables;
 * every pending call of a confirming or cancelling transaction is due now
 * (rule R5).  A partial index keeps this proportional to the pending work;
 * batches in gid order, each freed before the next, keep the worker's peak
 * memory near what the schedule itself needs however large the backlog.
 */
void
TccSettleStartup(TccSettled *settled)
{
	pg_uuid_t	after = {{0}};
	int			n;

	do
	{
		Datum		args[4] = {UUIDPGetDatum(&after), Int32GetDatum(STARTUP_BATCH)};
		pg_uuid_t  *gids;

		TccShmemOwnerArgs(&args[2]);
		TccStoreExec(&in_phase_gtxs, args, NULL, false);
		gids = TccRowsGids(SPI_tuptable, &n);
		SPI_freetuptable(SPI_tuptable);
		if (n > 0)
		{
			after = gids[n - 1];
			Advance(gids, n, ROWS_IN_PHASE, settled);
		}
		pfree(gids);
	} while (n == STARTUP_BATCH);
}

/* the start of both statements that start phase two: trying -> decided */
#define START_PHASE_TWO \
	"WITH dec AS (" \
	"  UPDATE tcc._gtx g" \
	"     SET status = " TCC_SQL_PHASE_OF_DECISION("d") "," \
	"         begin_xid = NULL" \
	"    FROM tcc._decision d"

STMT(start_phase_two, 3,
	 START_PHASE_TWO
	 "   WHERE d.gid = g.gid AND g.gid IN ("
	 "         SELECT t.gid FROM tcc._gtx t JOIN tcc._decision e ON e.gid = t.gid"
	 "          WHERE " TCC_SQL_TRYING("t.status")
	 "            AND " TCC_SQL_OWNED("t.gid", "$2", "$3") " LIMIT $1)"
	 PHASE_TWO_ROWS,
	 INT4OID, INT4OID, INT4OID);

STMT(start_phase_two_of, 2,
	 START_PHASE_TWO
	 "   WHERE d.gid = g.gid AND g.gid = ANY ($1) AND g.status = $2"
	 PHASE_TWO_ROWS,
	 UUIDARRAYOID, TEXTOID);

/* decided transactions a scan starts phase two of, per statement */
#define PHASE_BATCH 2000

/*
 * trying -> confirming or cancelling, for up to PHASE_BATCH gids whose
 * decision has committed (a scan of every transaction still trying).
 * Branches the phase does not call (no URL for it, or a refused try when
 * cancelling) become skipped; then phase two starts, or the transaction is
 * finished at once if no branch is left to call.  Returns true if more
 * decided gids may be waiting.
 */
bool
TccSettleDecided(TccSettled *settled)
{
	Datum		args[3] = {Int32GetDatum(PHASE_BATCH)};
	uint64		n;

	TccShmemOwnerArgs(&args[1]);
	TccStoreExec(&start_phase_two, args, NULL, false);
	n = TakePhaseRows(SPI_tuptable, ROWS_STARTED, settled);
	if (n > 0)
		TccSettledTookPhases(settled, TCC_PHASES_ANY);
	return n >= PHASE_BATCH;
}

/*
 * trying -> confirming or cancelling, as TccSettleDecided, for the gids
 * whose decisions the committing callers handed over: those come with the
 * WAL position of their decisions.
 */
void
TccSettleHandedOver(pg_uuid_t *decided, int ndecided, TccSettled *settled)
{
	Datum		args[2];

	if (ndecided == 0)
		return;
	args[0] = TccStoreGidArray(decided, ndecided);
	args[1] = CStringGetTextDatum(TCC_STATUS_TRYING);
	TccStoreExec(&start_phase_two_of, args, NULL, false);
	if (TakePhaseRows(SPI_tuptable, ROWS_STARTED, settled) > 0)
		TccSettledTookPhases(settled, TCC_PHASES_HANDED);
}

/* operator actions applied per pass */
#define ACTION_BATCH 1000

STMT(pending_actions, 2,
	 "SELECT id, gid, action FROM tcc._action WHERE NOT applied"
	 "   AND " TCC_SQL_OWNED("gid", "$1", "$2")
	 " ORDER BY id LIMIT " CppAsString2(ACTION_BATCH),
	 INT4OID, INT4OID);

/* the columns of pending_actions */
enum
{
	ACTION_ID = 1,
	ACTION_GID,
	ACTION_NAME
};

STMT(actions_applied, 1,
	 "UPDATE tcc._action SET applied = true WHERE id = ANY ($1)",
	 INT8ARRAYOID);

STMT(resume_gtxs, 2,
	 "WITH g AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET status = " TCC_SQL_PHASE_OF_DECISION("d")
	 "    FROM tcc._decision d"
	 "   WHERE d.gid = g.gid AND g.gid = ANY ($1)"
	 "     AND " TCC_SQL_RETRYABLE("g.status")
	 "  RETURNING g.gid)"
	 "UPDATE tcc._branch b SET attempts = 0, next_attempt_at = NULL"
	 "  FROM g"
	 " WHERE b.gid = g.gid AND b.attempts >= COALESCE(b.max_attempts, $2)"
	 "   AND " TCC_SQL_BRANCH_OPEN("b"),
	 UUIDARRAYOID, INT4OID);

STMT(resolve_gtxs, 1,
	 "UPDATE tcc._gtx SET status = 'resolved', finished_at = pg_catalog.clock_timestamp()"
	 " WHERE gid = ANY ($1) AND " TCC_SQL_RESOLVABLE("status"),
	 UUIDARRAYOID);

/*
 * failed -> confirming or cancelling (tcc_retry), for n gids: pending
 * calls are due now, and a branch that used up its attempts gets a fresh
 * allowance.
 */
static void
Resume(pg_uuid_t *gids, int n, TccSettled *settled)
{
	Datum		args[2] = {(Datum) 0, Int32GetDatum(tcc_max_attempts)};

	if (n == 0)
		return;
	args[0] = TccStoreGidArray(gids, n);
	TccStoreExec(&resume_gtxs, args, NULL, false);
	Advance(gids, n, ROWS_RETRIED, settled);
}

/*
 * any non-final state -> resolved (tcc_resolve), for n gids: no call is
 * made again (scheduled ones are dropped when they come due).
 */
static void
Resolve(pg_uuid_t *gids, int n, TccSettled *settled)
{
	Datum		args[1];

	if (n == 0)
		return;
	args[0] = TccStoreGidArray(gids, n);
	TccStoreExec(&resolve_gtxs, args, NULL, false);
	for (int i = 0; i < n; i++)
	{
		TccSchedulePhaseForget(&gids[i]);
		TccSettledAdd(settled, &gids[i]);
	}
}

/*
 * Applies the operator actions committed since the last pass, up to
 * ACTION_BATCH of them, a few statements for all.  The retries go first: a
 * gid both retried and resolved ends resolved, in whichever order the two
 * came.  Returns true if more may be waiting.
 */
bool
TccSettleActions(TccSettled *settled)
{
	SPITupleTable *rows;
	uint64		n;
	Datum	   *ids;
	Datum		args[1];
	pg_uuid_t  *retries;
	pg_uuid_t  *resolves;
	int			nretries = 0;
	int			nresolves = 0;
	Datum		owner[2];

	TccShmemOwnerArgs(owner);
	TccStoreExec(&pending_actions, owner, NULL, false);
	rows = SPI_tuptable;
	n = rows->numvals;
	if (n == 0)
		return false;
	ids = palloc(sizeof(Datum) * n);
	retries = palloc(sizeof(pg_uuid_t) * n);
	resolves = palloc(sizeof(pg_uuid_t) * n);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		pg_uuid_t  *gid = DatumGetUUIDP(TccRowsCol(rows, i, ACTION_GID, &isnull));

		ids[i] = Int64GetDatum(DatumGetInt64(TccRowsCol(rows, i, ACTION_ID,
														&isnull)));
		if (strcmp(TextDatumGetCString(TccRowsCol(rows, i, ACTION_NAME,
												  &isnull)),
				   "resolve") == 0)
			resolves[nresolves++] = *gid;
		else
			retries[nretries++] = *gid;
	}
	SPI_freetuptable(rows);
	Resume(retries, nretries, settled);
	Resolve(resolves, nresolves, settled);
	args[0] = TccStoreArray(ids, NULL, n, INT8OID);
	TccStoreExec(&actions_applied, args, NULL, false);
	return n == ACTION_BATCH;
}

/* the columns of the outcomes record_results writes ($1 - $8) */
enum
{
	OUT_GID,
	OUT_BRANCH,
	OUT_OP,
	OUT_STARTED_AT,
	OUT_DURATION_MS,
	OUT_HTTP_STATUS,
	OUT_ERROR,
	OUT_NEXT_AT,
	OUT_NCOLS
};

/*
 * The outcomes ($1 - $8) and the transactions they finished ($9, $10), in
 * one statement.  A call that failed is a row of tcc._attempt (its
 * statement trigger counts it); one that succeeded ends its branch and is
 * kept in the branch's row, so it is counted here, in tcc_calls_total.
 */
STMT(record_results, OUT_NCOLS + FIN_NCOLS,
	 "WITH r AS ("
	 "  SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8)"
	 "    AS r (gid, branch, op, started_at, duration_ms, http_status, error, next_at)),"
	 " a AS ("
	 "  INSERT INTO tcc._attempt (" TCC_ATTEMPT_COLUMNS ")"
	 "  SELECT " TCC_ATTEMPT_COLUMNS " FROM r WHERE r.error IS NOT NULL),"
	 " m AS ("
	 "  INSERT INTO tcc._metric_delta (metric, op, outcome, value)"
	 "  SELECT 'tcc_calls_total', r.op, tcc._metric_outcome(r.http_status), pg_catalog.count(*)"
	 "    FROM r WHERE r.error IS NULL GROUP BY 2, 3),"
	 " fin AS (" FINISH_GTXS("$9", "$10") ")"
	 "UPDATE tcc._branch b"
	 "   SET status = CASE WHEN r.error IS NOT NULL THEN b.status"
	 "                     ELSE " TCC_SQL_FINAL_OF_OP("r.op") " END,"
	 "       attempts = b.attempts + 1, last_http_status = r.http_status,"
	 "       last_error = r.error, next_attempt_at = r.next_at,"
	 "       done_started_at = CASE WHEN r.error IS NULL THEN r.started_at END,"
	 "       done_duration_ms = CASE WHEN r.error IS NULL THEN r.duration_ms END"
	 "  FROM r WHERE b.gid = r.gid AND b.branch = r.branch",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	 FLOAT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	 UUIDARRAYOID, TEXTARRAYOID);

/* the columns of the failed calls record_failures writes */
enum
{
	FAIL_GID,
	FAIL_BRANCH,
	FAIL_ERROR,
	FAIL_EXHAUSTED,
	FAIL_NCOLS
};

STMT(record_failures, FAIL_NCOLS,
	 "WITH f AS ("
	 "  SELECT gid, pg_catalog.bool_or(exhausted) AS exhausted,"
	 "         (pg_catalog.array_agg(branch ORDER BY exhausted DESC))[1] AS branch,"
	 "         (pg_catalog.array_agg(error ORDER BY exhausted DESC))[1] AS error"
	 "    FROM unnest($1, $2, $3, $4) AS f (gid, branch, error, exhausted)"
	 "   GROUP BY gid),"
	 " u AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET last_error = f.error,"
	 "         status = CASE WHEN f.exhausted THEN 'failed' ELSE g.status END"
	 "    FROM f JOIN tcc._decision d ON d.gid = f.gid"
	 "   WHERE g.gid = f.gid"
	 "     AND g.status = " TCC_SQL_PHASE_OF_DECISION("d")
	 "  RETURNING g.gid, g.status)"
	 "SELECT pg_catalog.pg_notify('tcc_alert',"
	 "         pg_catalog.json_build_object('gid', f.gid, 'status', 'failed',"
	 "                                      'branch', f.branch)::text)"
	 "  FROM f JOIN u ON u.gid = f.gid"
	 " WHERE u.status = 'failed'",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, BOOLARRAYOID);

/* Adds a finished call to the outcomes to record; returns its row. */
static int
AddOutcome(TccBatch *out, TccCall *call)
{
	int			r = out->n++;

	TccBatchSetGid(out, r, OUT_GID, &call->gid);
	TccBatchSet(out, r, OUT_BRANCH, Int32GetDatum(call->branch));
	TccBatchSet(out, r, OUT_OP, CStringGetTextDatum(TccProtocolOpName(call->op)));
	TccBatchSet(out, r, OUT_STARTED_AT, TimestampTzGetDatum(call->started_at));
	TccBatchSet(out, r, OUT_DURATION_MS, Float8GetDatum(call->duration_ms));
	TccBatchSet(out, r, OUT_HTTP_STATUS, Int32GetDatum(call->http_status));
	if (call->http_status == 0)
		TccBatchSetNull(out, r, OUT_HTTP_STATUS);
	if (call->answer == TCC_ANSWER_DONE)
		TccBatchSetNull(out, r, OUT_ERROR);
	else
		TccBatchSet(out, r, OUT_ERROR, CStringGetTextDatum(call->error));
	TccBatchSetNull(out, r, OUT_NEXT_AT);
	return r;
}

/*
 * A call that failed, at row r of the outcomes: retried after the backoff
 * delay, or, when it used up its attempts, its transaction is read from the
 * tables from now on (record_failures makes it failed).
 */
static void
CallFailed(TccCall *call, TccBatch *out, int r, TccBatch *failures,
		   TimestampTz now, TccSettled *settled)
{
	int			max_attempts = call->max_attempts > 0 ?
		call->max_attempts : tcc_max_attempts;
	bool		last = call->attempts + 1 >= max_attempts;
	int			f = failures->n++;

	if (call->answer == TCC_ANSWER_REFUSED)
		ereport(WARNING,
				(errmsg("tcc: participant answered %s to %s of branch %d",
						TccProtocolRefusal(call->http_status),
						TccProtocolOpName(call->op), call->branch),
				 errdetail("A refusal is only meaningful for try; the call is retried.")));
	TccBatchSetGid(failures, f, FAIL_GID, &call->gid);
	TccBatchSet(failures, f, FAIL_BRANCH, Int32GetDatum(call->branch));
	TccBatchSet(failures, f, FAIL_ERROR, CStringGetTextDatum(call->error));
	TccBatchSet(failures, f, FAIL_EXHAUSTED, BoolGetDatum(last));
	if (last)
	{
		TccScheduleDone(&call->gid, call->branch);
		TccSchedulePhaseForget(&call->gid);
		TccSettledAdd(settled, &call->gid);
	}
	else
	{
		TimestampTz at = TimestampTzPlusMilliseconds(now,
													 TccBackoffMs(call->attempts + 1,
																  call->retry_after_ms));

		TccBatchSet(out, r, OUT_NEXT_AT, TimestampTzGetDatum(at));
		TccScheduleRetry(&call->gid, call->branch, at);
		/* the retry reads the branch again, attempts and all */
		TccSchedulePhaseCallForget(&call->gid, call->branch);
	}
}

/* The transactions whose branches' calls succeeded, by what comes next. */
typedef struct AfterDone
{
	TccBatch	fin;			/* nothing pending: to finish */
	pg_uuid_t  *going;			/* the next branch is called */
	int			ngoing;
	pg_uuid_t  *unknown;		/* not remembered: read from the tables */
	int			nunknown;
} AfterDone;

/*
 * Sorts the transactions of the ndone calls that succeeded by what their
 * phases two do next, as the worker remembers them (schedule.c).
 */
static void
SortDone(TccCall **done, int ndone, AfterDone *after, TccSettled *settled)
{
	TccBatchInit(&after->fin, &finish_gtxs, ndone);
	after->going = palloc(sizeof(pg_uuid_t) * Max(ndone, 1));
	after->unknown = palloc(sizeof(pg_uuid_t) * Max(ndone, 1));
	after->ngoing = after->nunknown = 0;
	for (int d = 0; d < ndone; d++)
	{
		bool		commit;

		switch (TccSchedulePhaseBranchDone(&done[d]->gid, done[d]->branch,
										   &commit))
		{
			case TCC_PHASE_UNKNOWN:
				after->unknown[after->nunknown++] = done[d]->gid;
				break;
			case TCC_PHASE_GOING:
				after->going[after->ngoing++] = done[d]->gid;
				break;
			case TCC_PHASE_DONE:
				FinishingAdd(&after->fin, &done[d]->gid, commit, settled);
				break;
		}
	}
}

/*
 * Records the outcomes of finished confirm and cancel calls, all at once:
 * a branch is done and phase two moves on (from memory where the worker
 * remembers the transaction, else from the tables); or it is retried after
 * the backoff delay; or it used up tcc.max_attempts and its transaction
 * goes confirming / cancelling -> failed, with NOTIFY tcc_alert.  The
 * transactions memory says are done are finished by the statement that
 * records the outcomes.
 */
void
TccSettleResults(List *calls, TccSettled *settled)
{
	int			n = list_length(calls);
	TimestampTz now = GetCurrentTimestamp();
	TccBatch	outcomes;
	TccBatch	failures;
	AfterDone	after;
	TccCall   **done;
	int			ndone = 0;
	Datum		args[OUT_NCOLS + FIN_NCOLS];
	ListCell   *lc;

	if (n == 0)
		return;
	TccBatchInit(&outcomes, &record_results, n);
	/* its last parameters are the finishing batch's (SortDone) */
	outcomes.cols[OUT_NCOLS + FIN_GID].typid = InvalidOid;
	outcomes.cols[OUT_NCOLS + FIN_STATUS].typid = InvalidOid;
	TccBatchInit(&failures, &record_failures, n);
	done = palloc(sizeof(TccCall *) * n);
	foreach(lc, calls)
	{
		TccCall    *call = lfirst(lc);
		int			r = AddOutcome(&outcomes, call);

		if (call->answer == TCC_ANSWER_DONE)
		{
			TccScheduleDone(&call->gid, call->branch);
			done[ndone++] = call;
		}
		else
			CallFailed(call, &outcomes, r, &failures, now, settled);
	}

	/* all outcomes first, then what comes next: a sibling may be among them */
	SortDone(done, ndone, &after, settled);
	TccBatchParams(&outcomes, args);
	TccBatchParams(&after.fin, args + OUT_NCOLS);
	TccStoreExec(&record_results, args, NULL, false);

	if (failures.n > 0)
	{
		TccBatchParams(&failures, args);
		TccStoreExec(&record_failures, args, NULL, false);
	}

	for (int g = 0; g < after.ngoing; g++)
		TccSchedulePhaseNext(&after.going[g], now);
	/* the tables now hold the outcomes these are read with */
	Advance(after.unknown, after.nunknown, ROWS_IN_PHASE, settled);
}
