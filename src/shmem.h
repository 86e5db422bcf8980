/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared memory: request slots, the worker's latch and live state,
 *	  paused destinations and the destinations' report (shmem.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_SHMEM_H
#define TCC_SHMEM_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/uuid.h"

#include "request.h"
#include "schedule.h"

/*
 * Shared memory, for each coordinator database: one slot per backend for
 * requests, its worker's latch and live state.
 */
#define TCC_SLOT_INLINE 8192

typedef enum TccSlotState
{
	TCC_SLOT_FREE = 0,
	TCC_SLOT_PENDING,			/* waiting for the worker, reply wanted */
	TCC_SLOT_ORPHAN,			/* waiting for the worker, nobody waits */
	TCC_SLOT_TAKEN,				/* the worker is writing it */
	TCC_SLOT_DONE				/* reply ready */
} TccSlotState;

typedef struct TccSlot
{
	slock_t		mutex;
	TccSlotState state;
	TccRequestKind kind;
	Latch	   *requester;
	uint32		len;
	uint32		dsm;			/* dsm_handle when len > TCC_SLOT_INLINE */
	TccReply	reply;
	/* tcc_wait: the gid this backend waits on, woken when it settles */
	bool		waiting;
	pg_uuid_t	wait_gid;
	Latch	   *wait_latch;
	char		data[TCC_SLOT_INLINE];
} TccSlot;

/*
 * decided gids handed to the worker between two of its turns, and at most
 * per transaction: a transaction that decides more wakes the worker to look
 * for all decided transactions
 */
#define TCC_DECIDED_MAX 1024
#define TCC_DECIDED_PER_XACT 64

/*
 * most databases tcc.database may list: each has a worker, and each worker
 * takes a background worker slot (max_worker_processes, default 8)
 */
#define TCC_MAX_DATABASES 16

/* most destinations tcc.destinations shows with calls (paused ones: all) */
#define TCC_DEST_ROWS 64

/* room for the worker's last error (tcc_worker_state), with its NUL */
#define TCC_WORKER_ERROR_LEN 256

/* one coordinator database: its worker and what backends hand it */
typedef struct TccShared
{
	slock_t		mutex;
	int			index;			/* in TccShmem.databases */
	char		database[NAMEDATALEN];	/* its name, as in tcc.database */
	Latch	   *worker_latch;
	pid_t		worker_pid;
	TimestampTz worker_started;
	bool		work_pending;	/* an action committed, or decisions too
								 * many to list in decided[] */
	bool		check_trying;	/* a transaction that began a gid ended */
	bool		leave_database; /* DROP DATABASE of this database */
	int			failed_connects;	/* worker starts that did not connect */
	int			requests_pending;
	int			in_flight;
	int			queue_depth;
	char		last_error[TCC_WORKER_ERROR_LEN];
	int			ndecided;		/* gids whose decision just committed */
	XLogRecPtr	decided_lsn;	/* end of the latest of those commits */
	pg_uuid_t	decided[TCC_DECIDED_MAX];
	/* paused destinations (docs/api.md#pausing-a-destination) */
	uint32		pause_generation;	/* bumped at each commit of a pause or
									 * resume */
	bool		maybe_paused;	/* until the worker has read none: tries look */
	/* tcc.destinations: the worker reports when asked */
	uint32		dest_asked;
	uint32		dest_answered;
	bool		dest_writing;
	int			ndest_rows;
	TccDestRow	dest_rows[TCC_DEST_ROWS];
} TccShared;

/* all of tcc's shared memory */
typedef struct TccShmem
{
	int			ndatabases;
	int			nslots;			/* request slots per database */
	TccShared	databases[TCC_MAX_DATABASES];
	TccSlot		slots[FLEXIBLE_ARRAY_MEMBER];	/* nslots per database, in
												 * the order of databases[] */
} TccShmem;

/* all of it; and the coordinator database of this process (NULL: none) */
extern TccShmem *TccShmemRoot;
extern TccShared *TccState;

extern void TccShmemRequest(int ndatabases);
extern void TccShmemStartup(List *databases);
extern TccShared *TccShmemFind(const char *database);
extern TccSlot *TccShmemSlot(TccShared *db, int i);
extern void TccWakeWorker(bool work, bool check_trying);
extern void TccWakeWorkerToLeave(TccShared *db);
extern void TccHandDecided(pg_uuid_t *gids, int n);
extern void TccWaitFor(pg_uuid_t *gid);
extern void TccWaitEnd(void);
extern void TccWakeWaiters(pg_uuid_t *gids, int n);
extern void TccPausesChanged(void);
extern bool TccMaybePaused(void);
extern uint32 TccPauseGeneration(void);
extern void TccPausesLoaded(uint32 generation, bool any);
extern bool TccDestinationsAsked(void);
extern void TccDestinationsAnswer(TccDestRow *rows, int n);
extern int	TccDestinationsRead(TccDestRow *rows);

#endif							/* TCC_SHMEM_H */
