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
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/uuid.h"

#include "protocol.h"
#include "tcc.h"

/*
 * Requests a backend hands to the worker so that they are written durably in
 * the worker's own transaction (R1 of docs/guarantees.md): they survive the
 * caller's ROLLBACK.
 */
typedef enum TccRequestKind
{
	TCC_REQ_BEGIN = 1,			/* create a global transaction */
	TCC_REQ_BRANCH,				/* record branches of one gid before their
								 * tries */
	TCC_REQ_TRY_FAILED,			/* a try was refused or its outcome unknown */
	TCC_REQ_TRY_ANSWERS			/* the answers of tries passed to confirm and
								 * cancel (pass_try_response) */
} TccRequestKind;

/* the worker's answer to a request */
typedef struct TccReply
{
	int			sqlerrcode;		/* 0 on success */
	int			branch;			/* TCC_REQ_BRANCH: the first branch's number;
								 * the others follow it */
	XLogRecPtr	lsn;			/* end of the commit that wrote the request */
	char		message[256];
	/* TCC_REQ_BRANCH: the trace context of the gid's calls */
	uint8		trace_id[TCC_TRACE_ID_LEN];
	uint8		trace_flags;
	char		tracestate[TCC_TRACESTATE_MAX + 1];
} TccReply;

/*
 * Shared memory, for each coordinator database: one request slot per
 * backend, and an entry per worker of the database (tcc.workers) with its
 * latch and live state.  A gid belongs to one worker (TccShmemOwner).
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
	int			owner;			/* the worker the request is for */
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
 * decided gids handed to a worker between two of its turns, and at most
 * per transaction: a transaction that decides more wakes the workers to
 * look for all decided transactions
 */
#define TCC_DECIDED_MAX 1024
#define TCC_DECIDED_PER_XACT 64

/*
 * most databases tcc.database may list: each has tcc.workers workers, and
 * each worker takes a background worker slot (max_worker_processes)
 */
#define TCC_MAX_DATABASES 16

/* most workers a coordinator database may have (tcc.workers) */
#define TCC_MAX_WORKERS 32

/* most of a destination's last error kept, its NUL included */
#define TCC_DEST_ERROR_LEN 200

/* what the worker reports of a destination (tcc.destinations) */
typedef struct TccDestRow
{
	char		destination[TCC_DEST_LEN];
	int			calls_due;		/* waiting: due now, or at their retry time */
	int			in_flight;
	int			last_http_status;	/* 0: none, or no answer */
	TimestampTz next_at;		/* earliest waiting call; 0: none */
	char		last_error[TCC_DEST_ERROR_LEN];
} TccDestRow;

/* most destinations tcc.destinations shows with calls (paused ones: all) */
#define TCC_DEST_ROWS 64

/*
 * most destinations the workers of a database may have calls in flight to
 * at once; a call to one more waits until one of them has none
 */
#define TCC_DEST_COUNTS 1024

/* calls in flight to one destination, per worker and in all */
typedef struct TccDestCount
{
	uint64		key;			/* TccShmemDestKey of its name; 0: never used */
	int			total;
	int16		by_worker[TCC_MAX_WORKERS];
} TccDestCount;

/* room for a worker's last error (tcc.worker), with its NUL */
#define TCC_WORKER_ERROR_LEN 256

/*
 * One worker of a coordinator database: its latch, live state and what
 * backends hand it.
 */
typedef struct TccShared
{
	slock_t		mutex;
	int			database;		/* index in TccShmem.databases */
	int			worker;			/* 0 .. tcc.workers - 1 */
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
	/* tcc.destinations: the worker reports when asked */
	uint32		dest_asked;
	uint32		dest_answered;
	bool		dest_writing;
	int			ndest_rows;
	TccDestRow	dest_rows[TCC_DEST_ROWS];
} TccShared;

/* one coordinator database: what its workers share */
typedef struct TccDatabase
{
	slock_t		mutex;
	int			index;			/* in TccShmem.databases */
	char		name[NAMEDATALEN];	/* as in tcc.database */
	/* paused destinations (docs/api.md#pausing-a-destination) */
	uint32		pause_generation;	/* bumped at each commit of a pause or
									 * resume */
	bool		maybe_paused;	/* until a worker has read none: tries look */
	/*
	 * calls in flight of all its workers, so that tcc.max_concurrency and
	 * tcc.destination_share hold for the database as a whole
	 */
	slock_t		calls_mutex;
	int			calls_total;
	int			calls_by_worker[TCC_MAX_WORKERS];
	bool		calls_blocked;	/* a worker found no room: wake them at an
								 * end */
	TccDestCount dests[TCC_DEST_COUNTS];
} TccDatabase;

/* all of tcc's shared memory */
typedef struct TccShmem
{
	int			ndatabases;
	int			nworkers;		/* per database (tcc.workers) */
	int			nslots;			/* request slots per database */
	TccDatabase databases[TCC_MAX_DATABASES];
	TccShared  *workers;		/* nworkers per database, in the order of
								 * databases[] */
	TccSlot    *slots;			/* nslots per database, likewise */
} TccShmem;

/*
 * all of it; the coordinator database of this process (NULL: none); and,
 * in a worker, its own entry (NULL in a backend)
 */
extern TccShmem *TccShmemRoot;
extern TccDatabase *TccDb;
extern TccShared *TccState;

extern void TccShmemRequest(int ndatabases);
extern void TccShmemStartup(List *databases);
extern TccDatabase *TccShmemFind(const char *database);
extern TccShared *TccShmemWorker(TccDatabase *db, int worker);
extern TccSlot *TccShmemSlot(TccDatabase *db, int i);
extern int	TccShmemOwner(const pg_uuid_t *gid);

/*
 * SQL: gid column col belongs to the worker running the statement, whose
 * parameters w and k (text such as "$3") are tcc.workers and the worker's
 * number (TccShmemOwnerArgs).  tcc._gid_owner computes what TccShmemOwner
 * does.  With one worker it owns every gid, and the test stops at "w = 1".
 */
#define TCC_SQL_OWNED(col, w, k) \
	"(" w " = 1 OR tcc._gid_owner(" col ", " w ") = " k ")"
extern void TccShmemOwnerArgs(Datum *args);
extern void TccWakeWorker(bool work, bool check_trying);
extern void TccWakeOwner(int worker);
extern void TccWakeWorkerToLeave(TccDatabase *db);
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
extern uint64 TccShmemDestKey(const char *name);
extern bool TccShmemCallStart(uint64 dest_key, int dest_limit);
extern void TccShmemCallEnd(uint64 dest_key);
extern bool TccShmemDestRoom(uint64 dest_key, int dest_limit);
extern int	TccShmemCallRoom(void);
extern void TccShmemCallsForget(void);

#endif							/* TCC_SHMEM_H */
