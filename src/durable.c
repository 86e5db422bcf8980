/*-------------------------------------------------------------------------
 *
 * durable.c
 *	  Waiting until a WAL position is as durable as a synchronous commit.
 *
 * Every record a participant call depends on (an intent before its try, a
 * decision before its first confirm, the worker's own cancel decision) must
 * be durable before the call goes out: flushed to the local WAL and, where
 * synchronous replication is configured, confirmed flushed by the
 * synchronous standbys (docs/guarantees.md, "Durable").  The caller's own
 * synchronous_commit does not matter: a session at "off" or "local" still
 * waits for the standbys here, because a failover to a standby that never
 * received the record would contradict a call already made.
 *
 * One wait covers every record written before the position waited for, so
 * the worker waits once per batch of calls, and backends share the flush
 * with every other backend flushing at that moment.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/durable.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"
#include "utils/guc.h"

#include "durable.h"

/*
 * True when the synchronous standbys have flushed the WAL up to lsn, or
 * when no synchronous standby is configured.  Until the checkpointer has
 * read synchronous_standby_names (SYNC_STANDBY_INIT not set yet), the
 * setting decides, as SyncRepWaitForLSN does.  sync_standbys_status is
 * there from PostgreSQL 15.13 on; the Makefile refuses older servers.
 */
static bool
StandbysReached(XLogRecPtr lsn)
{
	bool		reached;

	if (max_wal_senders == 0)
		return true;
	LWLockAcquire(SyncRepLock, LW_SHARED);
	if (WalSndCtl->sync_standbys_status & SYNC_STANDBY_INIT)
		reached = !(WalSndCtl->sync_standbys_status & SYNC_STANDBY_DEFINED) ||
			lsn <= WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH];
	else
		reached = SyncRepStandbyNames == NULL ||
			SyncRepStandbyNames[0] == '\0' ||
			lsn <= WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH];
	LWLockRelease(SyncRepLock);
	return reached;
}

/*
 * Waits for the synchronous standbys to confirm lsn, at synchronous_commit
 * "on" (remote flush) if this session runs lower: SyncRepWaitForLSN waits
 * only as long as the session's own setting asks.  Inside a transaction
 * the setting is raised for the wait alone, as a function's SET clause
 * would; between transactions (the worker) it is set and put back.
 */
static void
WaitStandbys(XLogRecPtr lsn)
{
	if (synchronous_commit >= SYNCHRONOUS_COMMIT_REMOTE_FLUSH)
		SyncRepWaitForLSN(lsn, false);
	else if (IsTransactionState())
	{
		int			nestlevel = NewGUCNestLevel();

		(void) set_config_option("synchronous_commit", "on",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		SyncRepWaitForLSN(lsn, false);
		AtEOXact_GUC(true, nestlevel);
	}
	else
	{
		char	   *saved = pstrdup(GetConfigOption("synchronous_commit",
													false, false));

		SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
		SyncRepWaitForLSN(lsn, false);
		SetConfigOption("synchronous_commit", saved, PGC_SUSET, PGC_S_OVERRIDE);
		pfree(saved);
	}
}

/*
 * Waits until the WAL up to lsn is flushed locally and confirmed by the
 * synchronous standbys, whatever synchronous_commit this session uses.
 * Interruptible: a cancel or statement_timeout during the wait raises an
 * error, so nothing that depends on the record goes out.
 */
void
TccDurableWait(XLogRecPtr lsn)
{
	if (XLogRecPtrIsInvalid(lsn))
		return;
	XLogFlush(lsn);
	if (StandbysReached(lsn))
		return;
	WaitStandbys(lsn);

	/*
	 * The wait gives up with a WARNING, not an error, on a cancel request or
	 * termination.  Termination is still pending and ends the process here;
	 * a cancel was consumed by the wait, so raise it ourselves.
	 */
	CHECK_FOR_INTERRUPTS();
	if (!StandbysReached(lsn))
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceling statement while waiting for the synchronous standbys"),
				 errdetail("No participant was called: the call waits until its record is durable on the synchronous standbys.")));
}

/*
 * Returns the end of the WAL inserted so far, as a position XLogFlush can
 * reach.  The insert position of an empty page points past the page's
 * header, where no byte has been written yet: that is the page's start.
 */
XLogRecPtr
TccDurableEndOfWal(void)
{
	XLogRecPtr	ptr = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(ptr, wal_segment_size) == SizeOfXLogLongPHD)
		ptr -= SizeOfXLogLongPHD;
	else if (ptr % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		ptr -= SizeOfXLogShortPHD;
	return ptr;
}

/*
 * Raises an error when the server is in recovery: a standby does no
 * coordinator work until it is promoted.
 */
void
TccDurableRequirePrimary(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("tcc coordinator functions cannot run during recovery"),
				 errhint("Call them on the primary server.")));
}
