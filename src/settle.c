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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "backoff.h"
#include "http.h"
#include "protocol.h"
#include "schedule.h"
#include "settle.h"
#include "store.h"
#include "tcc.h"

/* the rows TakePhaseRows takes, for gids already in phase two */
STMT(advance_info, 1,
	 "SELECT g.gid, d.commit, g.parallel, b.branch"
	 "  FROM (SELECT DISTINCT x FROM pg_catalog.unnest($1) x) a (gid)"
	 "  JOIN tcc._gtx g ON g.gid = a.gid"
	 "  JOIN tcc._decision d ON d.gid = g.gid"
	 "  LEFT JOIN tcc._branch b ON b.gid = g.gid"
	 "   AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')"
	 " WHERE g.status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 " ORDER BY g.gid, b.branch",
	 UUIDARRAYOID);

/* confirming -> confirmed, cancelling -> cancelled: gids and statuses */
#define FINISH_GTXS(gids, statuses) \
	"UPDATE tcc._gtx g SET status = f.status, finished_at = pg_catalog.clock_timestamp()," \
	"       last_error = NULL" \
	"  FROM unnest(" gids ", " statuses ") f (gid, status)" \
	" WHERE g.gid = f.gid" \
	"   AND g.status = CASE f.status WHEN 'confirmed' THEN 'confirming' ELSE 'cancelling' END"

STMT(finish_gtxs, 2, FINISH_GTXS("$1", "$2"), UUIDARRAYOID, TEXTARRAYOID);

/* gids made final or failed since the worker last took them */
static pg_uuid_t *settled = NULL;
static int	nsettled = 0;
static int	settled_max = 0;

/* Notes that gid became final or failed: its tcc_wait is woken at commit. */
static void
Settled(pg_uuid_t *gid)
{
	if (nsettled == settled_max)
	{
		settled_max = Max(64, settled_max * 2);
		settled = settled == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(pg_uuid_t) * settled_max) :
			repalloc(settled, sizeof(pg_uuid_t) * settled_max);
	}
	settled[nsettled++] = *gid;
}

/*
 * Returns the gids made final or failed since the last call (*n of them),
 * for the worker to wake their waiters once its transaction committed.
 */
pg_uuid_t *
TccSettleTakeSettled(int *n)
{
	*n = nsettled;
	nsettled = 0;
	return settled;
}

/* Transactions whose phase two has no branch pending, to be finished. */
typedef struct Finishing
{
	int			n;
	pg_uuid_t  *gids;
	Datum	   *statuses;
} Finishing;

/* Sets up an empty list with room for max transactions. */
static void
FinishingInit(Finishing *fin, int max)
{
	fin->n = 0;
	fin->gids = palloc(sizeof(pg_uuid_t) * Max(max, 1));
	fin->statuses = palloc(sizeof(Datum) * Max(max, 1));
}

/* Adds a transaction to the list. */
static void
FinishingAdd(Finishing *fin, pg_uuid_t *gid, bool commit)
{
	Settled(gid);
	fin->gids[fin->n] = *gid;
	fin->statuses[fin->n++] = CStringGetTextDatum(commit ? "confirmed" : "cancelled");
}

/* confirming -> confirmed, cancelling -> cancelled, for the whole list. */
static void
Finish(Finishing *fin)
{
	Datum		args[2];

	if (fin->n == 0)
		return;
	args[0] = TccStoreGidArray(fin->gids, fin->n);
	args[1] = TccStoreArray(fin->statuses, NULL, fin->n, TEXTOID);
	TccStoreExec(&finish_gtxs, args, NULL, false);
}

/* how phase two was (re)started from the tables since the worker asked */
static TccPhasesTaken phases_taken = TCC_PHASES_NONE;

/*
 * Says how phase two of transactions was started from the tables since the
 * last call, and forgets it: a decision the worker has not waited for may
 * be among them (worker.c waits before the calls).
 */
TccPhasesTaken
TccSettleTookPhases(void)
{
	TccPhasesTaken taken = phases_taken;

	phases_taken = TCC_PHASES_NONE;
	return taken;
}

/* the branches a phase two just started does not call */
STMT(skip_branches, 2,
	 "UPDATE tcc._branch b SET status = 'skipped'"
	 "  FROM unnest($1, $2) s (gid, branch)"
	 " WHERE b.gid = s.gid AND b.branch = s.branch"
	 "   AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')",
	 UUIDARRAYOID, INT4ARRAYOID);

/*
 * Remembers what the call of row r of the current result sends (columns 5
 * to 9 and 11 to 15 of PHASE_TWO_ROWS), for the branch of gid it is.
 */
static void
RememberCall(uint64 r, pg_uuid_t *gid, int branch)
{
	bool		isnull;
	Datum		url = TccStoreCol(r, 5, &isnull);
	TccPhaseCall what;

	if (isnull)
		return;
	what.url = TextDatumGetCString(url);
	what.headers = TccStoreTextArrayCol(r, 7, &what.nheaders);
	what.payload = TextDatumGetCString(TccStoreCol(r, 6, &isnull));
	what.attempts = DatumGetInt32(TccStoreCol(r, 8, &isnull));
	what.protocol = TccProtocolFromName(TextDatumGetCString(TccStoreCol(r, 9, &isnull)));
	TccStoreCallPolicy(r, 11, &what.timeout_ms, &what.max_attempts,
					   &what.trace);
	TccSchedulePhaseRemember(gid, branch, &what);
}

/*
 * Takes the current result, one row per branch not final yet of each
 * transaction in phase two, in gid and branch order (gid, decision,
 * parallel, branch; one row with a NULL branch for a transaction with none;
 * then, when started, what the call sends and whether the phase skips the
 * branch, as PHASE_TWO_ROWS returns them): skips what the phase does not
 * call (no URL for it, or a refused try when cancelling); schedules what
 * comes next in each transaction (registration order for confirm, reverse
 * for cancel, every pending branch when parallel; schedule.c), remembers
 * what each call sends so that it is not read again when due, and moves
 * those with nothing pending on: confirming -> confirmed, cancelling ->
 * cancelled.  force: due now even if a backoff was waiting (tcc_retry).
 * Returns the transactions taken.
 */
static uint64
TakePhaseRows(bool force, bool started)
{
	uint64		nrows = SPI_processed;
	uint64		ntaken = 0;
	uint64		r = 0;
	TimestampTz now = GetCurrentTimestamp();
	Finishing	fin;
	int		   *pending = palloc(sizeof(int) * Max(nrows, 1));
	uint64	   *pending_row = palloc(sizeof(uint64) * Max(nrows, 1));
	pg_uuid_t  *skip_gids = NULL;
	Datum	   *skip_branches_of = NULL;
	int			nskip = 0;

	if (nrows > 0)
		phases_taken = TCC_PHASES_ANY;
	FinishingInit(&fin, (int) nrows);
	while (r < nrows)
	{
		bool		isnull;
		pg_uuid_t	gid = *DatumGetUUIDP(TccStoreCol(r, 1, &isnull));
		bool		commit = DatumGetBool(TccStoreCol(r, 2, &isnull));
		bool		parallel = DatumGetBool(TccStoreCol(r, 3, &isnull));
		uint64		first = r;
		int			npending = 0;

		/* the rows of one transaction follow each other */
		for (; r < nrows; r++)
		{
			Datum		branch;

			if (r > first &&
				memcmp(DatumGetUUIDP(TccStoreCol(r, 1, &isnull)), &gid,
					   sizeof(gid)) != 0)
				break;
			branch = TccStoreCol(r, 4, &isnull);
			if (isnull)
				continue;
			if (started && DatumGetBool(TccStoreCol(r, 10, &isnull)))
			{
				if (skip_gids == NULL)
				{
					skip_gids = palloc(sizeof(pg_uuid_t) * nrows);
					skip_branches_of = palloc(sizeof(Datum) * nrows);
				}
				skip_gids[nskip] = gid;
				skip_branches_of[nskip++] = branch;
				continue;
			}
			pending_row[npending] = r;
			pending[npending++] = DatumGetInt32(branch);
		}
		ntaken++;
		if (TccSchedulePhaseStart(&gid, commit, parallel, pending, npending,
								  now, force))
		{
			FinishingAdd(&fin, &gid, commit);
			continue;
		}
		for (int k = 0; started && k < npending; k++)
			RememberCall(pending_row[k], &gid, pending[k]);
	}
	/* what was read is copied: free it before the next statement */
	SPI_freetuptable(SPI_tuptable);
	if (nskip > 0)
	{
		Datum		args[2];

		args[0] = TccStoreGidArray(skip_gids, nskip);
		args[1] = TccStoreArray(skip_branches_of, NULL, nskip, INT4OID);
		TccStoreExec(&skip_branches, args, NULL, false);
	}
	Finish(&fin);
	pfree(pending);
	pfree(pending_row);
	pfree(fin.gids);
	pfree(fin.statuses);
	return ntaken;
}

/*
 * Moves phase two of the given gids forward as the tables show it (see
 * TakePhaseRows).  Invariant: a branch is called only while its transaction is
 * confirming or cancelling, and in sequential mode only after every branch
 * before it has finished.
 */
static void
Advance(pg_uuid_t *gids, int ngids, bool force)
{
	Datum		args[1];

	if (ngids == 0)
		return;
	args[0] = TccStoreGidArray(gids, ngids);
	TccStoreExec(&advance_info, args, NULL, false);
	pfree(DatumGetPointer(args[0]));
	(void) TakePhaseRows(force, false);
}

STMT(in_phase_gtxs, 2,
	 "SELECT gid FROM tcc._gtx WHERE status IN ('confirming', 'cancelling')"
	 "   AND gid > $1 ORDER BY gid LIMIT $2",
	 UUIDOID, INT4OID);

/* Collects the gids of the current result set's first column. */
static pg_uuid_t *
ResultGids(int *n)
{
	pg_uuid_t  *gids = palloc(sizeof(pg_uuid_t) * Max(SPI_processed, 1));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		gids[i] = *DatumGetUUIDP(TccStoreCol(i, 1, &isnull));
	}
	*n = (int) SPI_processed;
	return gids;
}

/* transactions read back per statement at worker start */
#define STARTUP_BATCH 10000

/*
 * Worker start: rebuilds the schedule from the tables; every pending call
 * of a confirming or cancelling transaction is due now (rule R5).  A
 * partial index keeps this proportional to the pending work, not to the
 * retained history; reading it back in batches in gid order, each batch
 * and its result freed before the next, keeps the worker's peak memory
 * near what the schedule itself needs however large the backlog.
 */
void
TccSettleStartup(void)
{
	pg_uuid_t	after = {{0}};
	int			n;

	do
	{
		Datum		args[2] = {UUIDPGetDatum(&after), Int32GetDatum(STARTUP_BATCH)};
		pg_uuid_t  *gids;

		TccStoreExec(&in_phase_gtxs, args, NULL, false);
		gids = ResultGids(&n);
		SPI_freetuptable(SPI_tuptable);
		if (n > 0)
		{
			after = gids[n - 1];
			Advance(gids, n, false);
		}
		pfree(gids);
	} while (n == STARTUP_BATCH);
}

/*
 * Whether branch b is not called in the phase decided by dec.commit.  A
 * refused try is not cancelled, but for a DTM participant: DTM's server
 * cancels every branch, and its barrier takes the cancel of a refused try
 * for an empty rollback (docs/states.md#phase-two).
 */
#define SKIPPED_IN_PHASE \
	"CASE WHEN dec.commit THEN b.confirm_url IS NULL" \
	"     ELSE b.cancel_url IS NULL" \
	"          OR (b.status = 'refused' AND b.protocol <> 'dtm') END"

/*
 * The end of both statements that start phase two (dec holds the gids):
 * returns, per branch not final yet, its transaction's decision, what its
 * call sends and whether the phase skips it (one row with a NULL branch for
 * a transaction with no such branch), then the call's policy and trace
 * context, in gid and branch order: one read of the branches, TakePhaseRows
 * skips what is to be skipped.
 */
#define PHASE_TWO_ROWS \
	"  RETURNING g.gid, d.commit, g.parallel, g.trace_id, g.trace_flags, g.tracestate)" \
	"SELECT dec.gid, dec.commit, dec.parallel, b.branch," \
	"       CASE WHEN dec.commit THEN b.confirm_url ELSE b.cancel_url END," \
	"       " TCC_CALL_BODY ", " TCC_CALL_HEADERS "," \
	"       b.attempts, b.protocol, " SKIPPED_IN_PHASE "," \
	"       " TCC_CALL_POLICY("dec") \
	"  FROM dec LEFT JOIN tcc._branch b ON b.gid = dec.gid" \
	"   AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')" \
	" ORDER BY dec.gid, b.branch"

STMT(start_phase_two, 1,
	 "WITH dec AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END,"
	 "         begin_xid = NULL"
	 "    FROM tcc._decision d"
	 "   WHERE d.gid = g.gid AND g.gid IN ("
	 "         SELECT t.gid FROM tcc._gtx t JOIN tcc._decision e ON e.gid = t.gid"
	 "          WHERE t.status = 'trying' LIMIT $1)"
	 PHASE_TWO_ROWS,
	 INT4OID);

STMT(start_phase_two_of, 2,
	 "WITH dec AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END,"
	 "         begin_xid = NULL"
	 "    FROM tcc._decision d"
	 "   WHERE d.gid = g.gid AND g.gid = ANY ($1) AND g.status = $2"
	 PHASE_TWO_ROWS,
	 UUIDARRAYOID, TEXTOID);

#define PHASE_BATCH 2000

/*
 * trying -> confirming or cancelling, for the given gids if gids is not
 * NULL, else for up to PHASE_BATCH gids whose decision has committed (a
 * scan of every transaction still trying).  Branches the phase does not
 * call (no URL for it, or a refused try when cancelling) become skipped;
 * then phase two starts, or the transaction is finished at once if no
 * branch is left to call.  Returns true if more decided gids may be
 * waiting.
 */
static bool
StartPhaseTwo(pg_uuid_t *decided, int ndecided)
{
	Datum		args[2];

	TccPhasesTaken before = phases_taken;
	uint64		n;

	if (decided != NULL)
	{
		args[0] = TccStoreGidArray(decided, ndecided);
		args[1] = CStringGetTextDatum("trying");
		TccStoreExec(&start_phase_two_of, args, NULL, false);
	}
	else
	{
		args[0] = Int32GetDatum(PHASE_BATCH);
		TccStoreExec(&start_phase_two, args, NULL, false);
	}
	n = TakePhaseRows(false, true);
	/* handed-over gids come with the WAL position of their decisions */
	if (decided != NULL && n > 0)
		phases_taken = Max(before, TCC_PHASES_HANDED);
	return n >= PHASE_BATCH && decided == NULL;
}

/* operator actions applied per pass */
#define ACTION_BATCH 1000

STMT(pending_actions, 0,
	 "SELECT id, gid, action FROM tcc._action WHERE NOT applied"
	 " ORDER BY id LIMIT " CppAsString2(ACTION_BATCH));

STMT(actions_applied, 1,
	 "UPDATE tcc._action SET applied = true WHERE id = ANY ($1)",
	 INT8ARRAYOID);

STMT(resume_gtxs, 2,
	 "WITH g AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 "    FROM tcc._decision d"
	 "   WHERE d.gid = g.gid AND g.gid = ANY ($1)"
	 "     AND g.status IN ('failed', 'confirming', 'cancelling')"
	 "  RETURNING g.gid)"
	 "UPDATE tcc._branch b SET attempts = 0, next_attempt_at = NULL"
	 "  FROM g"
	 " WHERE b.gid = g.gid AND b.attempts >= COALESCE(b.max_attempts, $2)"
	 "   AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')",
	 UUIDARRAYOID, INT4OID);

STMT(resolve_gtxs, 1,
	 "UPDATE tcc._gtx SET status = 'resolved', finished_at = pg_catalog.clock_timestamp()"
	 " WHERE gid = ANY ($1) AND status NOT IN ('confirmed', 'cancelled', 'resolved')",
	 UUIDARRAYOID);

/*
 * failed -> confirming or cancelling (tcc_retry), for n gids: pending
 * calls are due now, and a branch that used up its attempts gets a fresh
 * allowance.
 */
static void
Resume(pg_uuid_t *gids, int n)
{
	Datum		args[2];

	if (n == 0)
		return;
	args[0] = TccStoreGidArray(gids, n);
	args[1] = Int32GetDatum(tcc_max_attempts);
	TccStoreExec(&resume_gtxs, args, NULL, false);
	Advance(gids, n, true);
}

/*
 * any non-final state -> resolved (tcc_resolve), for n gids: no call is
 * made again (scheduled ones are dropped when they come due).
 */
static void
Resolve(pg_uuid_t *gids, int n)
{
	Datum		args[1];

	if (n == 0)
		return;
	args[0] = TccStoreGidArray(gids, n);
	TccStoreExec(&resolve_gtxs, args, NULL, false);
	for (int i = 0; i < n; i++)
	{
		TccSchedulePhaseForget(&gids[i]);
		Settled(&gids[i]);
	}
}

/*
 * Applies the operator actions committed since the last pass, up to
 * ACTION_BATCH of them, a few statements for all.  The retries go first: a
 * gid both retried and resolved ends resolved, in whichever order the two
 * came.  Returns true if more may be waiting.
 */
bool
TccSettleActions(void)
{
	uint64		n;
	Datum	   *ids;
	Datum		args[1];
	pg_uuid_t  *retries;
	pg_uuid_t  *resolves;
	int			nretries = 0;
	int			nresolves = 0;

	TccStoreExec(&pending_actions, NULL, NULL, false);
	n = SPI_processed;
	if (n == 0)
		return false;
	ids = palloc(sizeof(Datum) * n);
	retries = palloc(sizeof(pg_uuid_t) * n);
	resolves = palloc(sizeof(pg_uuid_t) * n);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		pg_uuid_t  *gid = DatumGetUUIDP(TccStoreCol(i, 2, &isnull));

		ids[i] = Int64GetDatum(DatumGetInt64(TccStoreCol(i, 1, &isnull)));
		if (strcmp(TextDatumGetCString(TccStoreCol(i, 3, &isnull)),
				   "resolve") == 0)
			resolves[nresolves++] = *gid;
		else
			retries[nretries++] = *gid;
	}
	SPI_freetuptable(SPI_tuptable);
	Resume(retries, nretries);
	Resolve(resolves, nresolves);
	args[0] = TccStoreArray(ids, NULL, n, INT8OID);
	TccStoreExec(&actions_applied, args, NULL, false);
	return n == ACTION_BATCH;
}

/*
 * Starts phase two: of every transaction decided (up to PHASE_BATCH of
 * them) if scan, else of the given gids whose decisions just committed.
 * Returns true if more decided gids may be waiting.
 */
bool
TccSettlePhases(bool scan, pg_uuid_t *decided, int ndecided)
{
	if (scan)
		return StartPhaseTwo(NULL, 0);
	if (ndecided > 0)
		(void) StartPhaseTwo(decided, ndecided);
	return false;
}

/*
 * The outcomes ($1 - $8) and the transactions they finished ($9, $10), in
 * one statement.
 */
STMT(record_results, 10,
	 "WITH r AS ("
	 "  SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8)"
	 "    AS r (gid, branch, op, started_at, duration_ms, http_status, error, next_at)),"
	 " a AS ("
	 "  INSERT INTO tcc._attempt (gid, branch, op, started_at, duration_ms, http_status, error)"
	 "  SELECT gid, branch, op, started_at, duration_ms, http_status, error FROM r),"
	 " fin AS (" FINISH_GTXS("$9", "$10") ")"
	 "UPDATE tcc._branch b"
	 "   SET status = CASE WHEN r.error IS NOT NULL THEN b.status"
	 "                     WHEN r.op = 'confirm' THEN 'confirmed' ELSE 'cancelled' END,"
	 "       attempts = b.attempts + 1, last_http_status = r.http_status,"
	 "       last_error = r.error, next_attempt_at = r.next_at"
	 "  FROM r WHERE b.gid = r.gid AND b.branch = r.branch",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	 FLOAT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	 UUIDARRAYOID, TEXTARRAYOID);

STMT(record_failures, 4,
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
	 "     AND g.status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 "  RETURNING g.gid, g.status)"
	 "SELECT pg_catalog.pg_notify('tcc_alert',"
	 "         pg_catalog.json_build_object('gid', f.gid, 'status', 'failed',"
	 "                                      'branch', f.branch)::text)"
	 "  FROM f JOIN u ON u.gid = f.gid"
	 " WHERE u.status = 'failed'",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, BOOLARRAYOID);

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
TccSettleResults(List *calls)
{
	int			n = list_length(calls);
	Datum	   *gids = palloc(sizeof(Datum) * n);
	Datum	   *branches = palloc(sizeof(Datum) * n);
	Datum	   *ops = palloc(sizeof(Datum) * n);
	Datum	   *started = palloc(sizeof(Datum) * n);
	Datum	   *durations = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	bool	   *status_nulls = palloc(sizeof(bool) * n);
	Datum	   *errors = palloc(sizeof(Datum) * n);
	bool	   *error_nulls = palloc(sizeof(bool) * n);
	Datum	   *next_at = palloc(sizeof(Datum) * n);
	bool	   *next_nulls = palloc(sizeof(bool) * n);
	Datum	   *exhausted = palloc(sizeof(Datum) * n);
	TccCall   **done = palloc(sizeof(TccCall *) * n);
	pg_uuid_t  *going = palloc(sizeof(pg_uuid_t) * n);
	pg_uuid_t  *unknown = palloc(sizeof(pg_uuid_t) * n);
	int			ngoing = 0;
	int			nunknown = 0;
	Finishing	fin;
	Datum	   *fail_gids = palloc(sizeof(Datum) * n);
	Datum	   *fail_branches = palloc(sizeof(Datum) * n);
	Datum	   *fail_errors = palloc(sizeof(Datum) * n);
	int			ndone = 0;
	int			nfail = 0;
	TimestampTz now = GetCurrentTimestamp();
	Datum		args[10];
	ListCell   *lc;
	int			i = 0;

	if (n == 0)
		return;
	foreach(lc, calls)
	{
		TccCall    *call = lfirst(lc);
		bool		ok = call->answer == TCC_ANSWER_DONE;
		bool		last = call->attempts + 1 >=
			(call->max_attempts > 0 ? call->max_attempts : tcc_max_attempts);

		gids[i] = UUIDPGetDatum(&call->gid);
		branches[i] = Int32GetDatum(call->branch);
		ops[i] = CStringGetTextDatum(TccProtocolOpName(call->op));
		started[i] = TimestampTzGetDatum(call->started_at);
		durations[i] = Float8GetDatum(call->duration_ms);
		statuses[i] = Int32GetDatum(call->http_status);
		status_nulls[i] = (call->http_status == 0);
		errors[i] = ok ? (Datum) 0 : CStringGetTextDatum(call->error);
		error_nulls[i] = ok;
		next_nulls[i] = true;
		if (ok)
		{
			TccScheduleDone(&call->gid, call->branch);
			done[ndone++] = call;
		}
		else
		{
			if (call->answer == TCC_ANSWER_REFUSED)
				ereport(WARNING,
						(errmsg("tcc: participant answered %s to %s of branch %d",
								call->http_status == 409 ? "409" : "FAILURE",
								TccProtocolOpName(call->op), call->branch),
						 errdetail("A refusal is only meaningful for try; the call is retried.")));
			fail_gids[nfail] = gids[i];
			fail_branches[nfail] = branches[i];
			fail_errors[nfail] = errors[i];
			exhausted[nfail++] = BoolGetDatum(last);
			if (last)
			{
				/* a transaction that fails is read from the tables from now on */
				TccScheduleDone(&call->gid, call->branch);
				TccSchedulePhaseForget(&call->gid);
				Settled(&call->gid);
			}
			else
			{
				TimestampTz at = TimestampTzPlusMilliseconds(now,
															 TccBackoffMs(call->attempts + 1,
																		  call->retry_after_ms));

				next_at[i] = TimestampTzGetDatum(at);
				next_nulls[i] = false;
				TccScheduleRetry(&call->gid, call->branch, at);
				/* the retry reads the branch again, attempts and all */
				TccSchedulePhaseCallForget(&call->gid, call->branch);
			}
		}
		i++;
	}

	args[0] = TccStoreArray(gids, NULL, n, UUIDOID);
	args[1] = TccStoreArray(branches, NULL, n, INT4OID);
	args[2] = TccStoreArray(ops, NULL, n, TEXTOID);
	args[3] = TccStoreArray(started, NULL, n, TIMESTAMPTZOID);
	args[4] = TccStoreArray(durations, NULL, n, FLOAT8OID);
	args[5] = TccStoreArray(statuses, status_nulls, n, INT4OID);
	args[6] = TccStoreArray(errors, error_nulls, n, TEXTOID);
	args[7] = TccStoreArray(next_at, next_nulls, n, TIMESTAMPTZOID);

	/* all outcomes first, then what comes next: a sibling may be among them */
	FinishingInit(&fin, ndone);
	for (int d = 0; d < ndone; d++)
	{
		bool		commit;

		switch (TccSchedulePhaseBranchDone(&done[d]->gid, done[d]->branch, &commit))
		{
			case TCC_PHASE_UNKNOWN:
				unknown[nunknown++] = done[d]->gid;
				break;
			case TCC_PHASE_GOING:
				going[ngoing++] = done[d]->gid;
				break;
			case TCC_PHASE_DONE:
				FinishingAdd(&fin, &done[d]->gid, commit);
				break;
		}
	}
	args[8] = TccStoreGidArray(fin.gids, fin.n);
	args[9] = TccStoreArray(fin.statuses, NULL, fin.n, TEXTOID);
	TccStoreExec(&record_results, args, NULL, false);

	if (nfail > 0)
	{
		args[0] = TccStoreArray(fail_gids, NULL, nfail, UUIDOID);
		args[1] = TccStoreArray(fail_branches, NULL, nfail, INT4OID);
		args[2] = TccStoreArray(fail_errors, NULL, nfail, TEXTOID);
		args[3] = TccStoreArray(exhausted, NULL, nfail, BOOLOID);
		TccStoreExec(&record_failures, args, NULL, false);
	}

	for (int g = 0; g < ngoing; g++)
		TccSchedulePhaseNext(&going[g], now);
	/* the tables now hold the outcomes these are read with */
	Advance(unknown, nunknown, false);
}
