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

STMT(purge, 1,
	 "WITH old AS ("
	 "  DELETE FROM tcc._gtx WHERE gid IN ("
	 "    SELECT gid FROM tcc._gtx"
	 "     WHERE finished_at < now() - $1 * interval '1 s'"
	 "     ORDER BY finished_at LIMIT 500 FOR UPDATE SKIP LOCKED)"
	 "  RETURNING gid),"
	 /* what they counted in tcc.metrics, read before the delete */
	 " m AS (INSERT INTO tcc._metric_retired AS r"
	 "  SELECT * FROM tcc._metric_counts("
	 "    (SELECT COALESCE(pg_catalog.array_agg(gid), '{}') FROM old))"
	 "  ON CONFLICT (metric, status, kind, op, outcome, le)"
	 "  DO UPDATE SET value = r.value + excluded.value),"
	 " b AS (DELETE FROM tcc._branch WHERE gid IN (SELECT gid FROM old)),"
	 " d AS (DELETE FROM tcc._decision WHERE gid IN (SELECT gid FROM old)),"
	 " t AS (DELETE FROM tcc._try WHERE gid IN (SELECT gid FROM old)),"
	 " a AS (DELETE FROM tcc._attempt WHERE gid IN (SELECT gid FROM old)),"
	 " x AS (DELETE FROM tcc._action WHERE gid IN (SELECT gid FROM old))"
	 "SELECT pg_catalog.count(*)::integer FROM old",
	 INT4OID);

STMT(next_purge, 1,
	 "SELECT pg_catalog.min(finished_at) + $1 * interval '1 s' FROM tcc._gtx"
	 " WHERE finished_at IS NOT NULL",
	 INT4OID);

/*
 * Deletes one batch (at most 500) of final transactions older than
 * tcc.retention, with their branches, decisions, tries, attempts and
 * actions; what they counted in tcc.metrics moves to tcc._metric_retired,
 * so its counters never go down.  Returns when the next batch is due: soon
 * after a full batch, else when the oldest remaining one expires; DT_NOEND
 * if none is left.
 */
TimestampTz
TccPurge(void)
{
	Datum		args[1] = {Int32GetDatum(tcc_retention)};
	bool		isnull;
	Datum		d;

	TccStoreExec(&purge, args, NULL, false);
	if (DatumGetInt32(TccStoreCol(0, 1, &isnull)) >= 500)
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 100);
	TccStoreExec(&next_purge, args, NULL, false);
	d = TccStoreCol(0, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}
