/*-------------------------------------------------------------------------
 *
 * pause.c
 *	  Paused destinations: the table tcc._pause, read and written.
 *
 * An operator pauses a destination (scheme, host and port) for a
 * participant's maintenance (docs/api.md#pausing-a-destination).  The pause
 * is a row of tcc._pause, inserted or deleted in the operator's own
 * transaction, so it survives restarts and failovers like any other row.
 * At its commit the worker is told (shmem.c) and reads the pauses again
 * into its schedule, where the calls of a paused destination wait without
 * counting an attempt (schedule.c).  A try to a paused destination is not
 * sent: it fails at once as unknown (tries.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/pause.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "pause.h"
#include "schedule.h"
#include "shmem.h"
#include "store.h"

STMT(insert_pause, 3,
	 "INSERT INTO tcc._pause (destination, paused_by, note) VALUES ($1, $2, $3)"
	 " ON CONFLICT (destination) DO NOTHING",
	 TEXTOID, OIDOID, TEXTOID);

/*
 * Pauses a destination (in its "scheme://host:port" form) in the caller's
 * transaction.  Returns false when it was paused already.
 */
bool
TccPauseAdd(const char *destination, const char *note)
{
	TccOwnerScope scope;
	Datum		args[3];
	char		nulls[3] = "   ";
	bool		added;

	args[0] = CStringGetTextDatum(destination);
	args[1] = ObjectIdGetDatum(GetUserId());
	args[2] = TccStoreTextOrNull(note, &nulls[2]);
	TccStoreEnterOwner(&scope);
	TccStoreExec(&insert_pause, args, nulls, false);
	added = SPI_processed > 0;
	TccStoreLeaveOwner(&scope);
	return added;
}

STMT(delete_pause, 1,
	 "DELETE FROM tcc._pause WHERE destination = $1",
	 TEXTOID);

/*
 * Resumes a destination in the caller's transaction.  Returns false when
 * it was not paused.
 */
bool
TccPauseRemove(const char *destination)
{
	TccOwnerScope scope;
	Datum		args[1] = {CStringGetTextDatum(destination)};
	bool		removed;

	TccStoreEnterOwner(&scope);
	TccStoreExec(&delete_pause, args, NULL, false);
	removed = SPI_processed > 0;
	TccStoreLeaveOwner(&scope);
	return removed;
}

STMT(all_pauses, 0,
	 "SELECT destination FROM tcc._pause");

/*
 * Worker, in a unit of work: reads every paused destination into the
 * schedule (those no longer paused resume there), then says whether any is
 * paused for that generation of pauses.
 */
void
TccPauseLoad(uint32 generation)
{
	int			n;
	char	  **names;

	TccStoreExec(&all_pauses, NULL, NULL, true);
	n = (int) SPI_processed;
	names = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;

		names[i] = TextDatumGetCString(TccStoreCol(i, 1, &isnull));
	}
	TccSchedulePause(names, n);
	TccPausesLoaded(generation, n > 0);
}
