/*-------------------------------------------------------------------------
 *
 * gid.c
 *	  The lock that serialises decisions on one gid, and a gid as text.
 *
 * The caller's tcc_finish takes a gid's lock and holds it until its
 * transaction ends; the worker takes it, without waiting, before it
 * records branches or decides cancels.  So a decision in a still-open
 * transaction and the worker's cannot both win (R4 of docs/guarantees.md).
 * The API (api.c) and the worker's table writes (intent.c, store.c) both
 * use it, so it lives below both.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/gid.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "gid.h"

/* Sets tag to the lock tag of a gid. */
static void
GidLockTag(pg_uuid_t *gid, LOCKTAG *tag)
{
	uint64		a;
	uint64		b;
	uint64		key;

	memcpy(&a, gid->data, sizeof(a));
	memcpy(&b, gid->data + sizeof(a), sizeof(b));
	key = a ^ b;
	/* field4 0x7463 ("tc") keeps these apart from user advisory locks */
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (key >> 32),
						 (uint32) key, 0x7463);
}

/*
 * Takes the lock that serialises decisions on a gid, until the end of the
 * current transaction.  With wait false, returns false if it is held.
 */
bool
TccGidLock(pg_uuid_t *gid, bool wait)
{
	LOCKTAG		tag;

	GidLockTag(gid, &tag);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Takes the lock that serialises decisions on a gid, until the end of the
 * current transaction, if it is free and the lock table has room for it:
 * never waits, never raises an error.  Returns whether it took it (the
 * worker, which decides many gids in one transaction, leaves the others for
 * a later pass rather than fail the pass).
 */
bool
TccGidTryLock(pg_uuid_t *gid)
{
	LOCKTAG		tag;

	GidLockTag(gid, &tag);
	return LockAcquireExtended(&tag, ExclusiveLock, false, true, false,
							   NULL) != LOCKACQUIRE_NOT_AVAIL;
}

/* Gives back one TccGidLock of this transaction (the lock is counted). */
void
TccGidUnlock(pg_uuid_t *gid)
{
	LOCKTAG		tag;

	GidLockTag(gid, &tag);
	(void) LockRelease(&tag, ExclusiveLock, false);
}

/* Returns a gid as text, for messages. */
char *
TccGidText(pg_uuid_t *gid)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(gid)));
}
