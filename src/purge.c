/*-------------------------------------------------------------------------
 *
 * purge.c
 *	  Deleting final global transactions once tcc.retention has passed.
 *
 * The worker purges in batches, each in its own unit of work, so that a
 * large backlog of old transactions never holds up phase two.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/purge.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/timestamp.h"

#include "purge.h"
#include "store.h"
#include "tcc.h"

/*
 * How much the purge holds up the worker's loop: a batch of PURGE_BATCH
 * transactions (with their branches, tries, calls and decisions, some ten
 * rows each) at a time, short enough not to stall confirms; while the
 * batches come full, the next one after at least PURGE_PAUSE_MS and
 * PURGE_SHARE times as long as the batch took, so that a large backlog
 * (tcc.retention lowered) takes at most a quarter of the worker's time.
 */
#define PURGE_BATCH 100
#define PURGE_PAUSE_MS 10
#define PURGE_SHARE 3

STMT(purge, 2,
	 "WITH old AS ("
	 "  DELETE FROM tcc._gtx WHERE gid IN ("
	 "    SELECT gid FROM tcc._gtx"
	 "     WHERE finished_at < now() - $1 * interval '1 s'"
	 "     ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
	 "  RETURNING gid),"
	 " b AS (DELETE FROM tcc._branch WHERE gid IN (SELECT gid FROM old)),"
	 " d AS (DELETE FROM tcc._decision WHERE gid IN (SELECT gid FROM old)),"
	 " t AS (DELETE FROM tcc._try WHERE gid IN (SELECT gid FROM old)),"
	 " a AS (DELETE FROM tcc._attempt WHERE gid IN (SELECT gid FROM old)),"
	 " x AS (DELETE FROM tcc._action WHERE gid IN (SELECT gid FROM old)),"
	 /* the minutes of tcc.activity go with the transactions they count */
	 " m AS (DELETE FROM tcc._minute_total"
	 "        WHERE minute < now() - $1 * interval '1 s' - interval '1 min')"
	 "SELECT pg_catalog.count(*)::integer FROM old",
	 INT4OID, INT4OID);

STMT(fold_counts, 0, "SELECT tcc._metric_fold()");

STMT(next_purge, 1,
	 "SELECT pg_catalog.min(finished_at) + $1 * interval '1 s' FROM tcc._gtx"
	 " WHERE finished_at IS NOT NULL",
	 INT4OID);

/* how soon the counts are folded again after a fold that found some */
#define FOLD_INTERVAL_MS 1000
/* microseconds (TimestampTz) per millisecond */
#define US_PER_MS 1000

/*
 * Folds what the statements since the last fold counted into the kept
 * counters (tcc._metric_total; docs/views.md#metrics), then deletes one
 * batch (PURGE_BATCH) of final transactions older than tcc.retention, with
 * their branches, decisions, tries, attempts and actions, and the minutes
 * of tcc.activity as old: they were counted as they ended, so the purge
 * leaves the counters as they are.
 * Returns when to come back: soon after a full batch (PURGE_SHARE), within
 * FOLD_INTERVAL_MS while there are counts to fold, else when the oldest
 * remaining transaction expires; DT_NOEND if none is left.
 */
TimestampTz
TccPurge(void)
{
	Datum		args[2] = {Int32GetDatum(tcc_retention), Int32GetDatum(PURGE_BATCH)};
	bool		isnull;
	Datum		d;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next;

	TccStoreExec(&fold_counts, NULL, NULL, false);
	next = DatumGetInt64(TccStoreCol(0, 1, &isnull)) > 0 ?
		TimestampTzPlusMilliseconds(now, FOLD_INTERVAL_MS) : DT_NOEND;
	TccStoreExec(&purge, args, NULL, false);
	if (DatumGetInt32(TccStoreCol(0, 1, &isnull)) >= PURGE_BATCH)
	{
		long		spent_ms = (GetCurrentTimestamp() - now) / US_PER_MS;

		return TimestampTzPlusMilliseconds(now, spent_ms +
										   Max(PURGE_PAUSE_MS,
											   PURGE_SHARE * spent_ms));
	}
	TccStoreExec(&next_purge, args, NULL, false);
	d = TccStoreCol(0, 1, &isnull);
	return isnull ? next : Min(next, DatumGetTimestampTz(d));
}
