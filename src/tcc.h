/*-------------------------------------------------------------------------
 *
 * tcc.h
 *	  Declarations shared by the files of the tcc extension.
 *
 * tcc coordinates Try-Confirm-Cancel global transactions from inside
 * PostgreSQL.  The SQL API (api.c) runs in the initiator's backend; the
 * coordinator worker (worker.c) writes intents durably on the backends'
 * behalf (request.c), drives confirm and cancel over HTTP (http.c) when
 * they are due (schedule.c, backoff.c) and keeps the coordinator tables
 * (store.c, settle.c).  Participants use the barrier (barrier.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/tcc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_H
#define TCC_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/palloc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/uuid.h"

#define TCC_VERSION "1.1"

/* SQLSTATEs of SPEC section 12 */
#define ERRCODE_TCC_TRY_REFUSED		MAKE_SQLSTATE('T','C','0','0','1')
#define ERRCODE_TCC_TRY_UNKNOWN		MAKE_SQLSTATE('T','C','0','0','2')
#define ERRCODE_TCC_BAD_DECISION	MAKE_SQLSTATE('T','C','0','0','3')
#define ERRCODE_TCC_UNKNOWN_GID		MAKE_SQLSTATE('T','C','0','0','4')

/* settings (tcc.c) */
extern char *tcc_database;
extern int	tcc_max_concurrency;
extern int	tcc_destination_share;
extern int	tcc_default_timeout;
extern int	tcc_request_timeout;
extern int	tcc_retry_interval;
extern int	tcc_retry_max_interval;
extern int	tcc_max_attempts;
extern int	tcc_retention;
extern char *tcc_allowed_urls;
extern int	tcc_max_payload_size;
extern int	tcc_max_branches_per_call;
extern bool tcc_preloaded;
extern bool tcc_in_worker;

extern void TccRequireCoordinator(void);
extern char *TccInstalledVersion(void);
extern void TccRequireVersion(void);
extern char *TccClip(const char *s, int max);
extern void TccStrlcpy(char *dst, const char *src, size_t size);
extern ErrorData *TccInSubtransaction(void (*fn) (void *arg), void *arg);

/* the operations of the participant protocol */
typedef enum TccOp
{
	TCC_OP_TRY,
	TCC_OP_CONFIRM,
	TCC_OP_CANCEL
} TccOp;

extern const char *TccOpName(TccOp op);

/* how a branch's participant speaks (docs/protocol.md) */
typedef enum TccProtocol
{
	TCC_PROTOCOL_TCC,			/* Tcc-* headers, 409 refuses */
	TCC_PROTOCOL_DTM			/* also DTM's query parameters and answers */
} TccProtocol;

extern const char *TccProtocolName(TccProtocol protocol);
extern TccProtocol TccProtocolFromName(const char *name);

/* what an answer means, as the branch's protocol reads it */
typedef enum TccAnswer
{
	TCC_ANSWER_DONE,			/* success */
	TCC_ANSWER_REFUSED,			/* try: refused; confirm / cancel: retried */
	TCC_ANSWER_UNKNOWN			/* no answer, or one that settles nothing */
} TccAnswer;

/*
 * One HTTP call to a participant.  The request part is filled by the caller;
 * http.c fills the outcome.
 */
typedef struct TccCall
{
	/* request */
	pg_uuid_t	gid;
	int			branch;
	TccOp		op;
	char	   *url;
	char	   *payload;
	int			payload_len;
	char	  **headers;		/* "Name: value" lines */
	int			nheaders;
	int			timeout_ms;
	int			attempts;		/* phase-two attempts before this one */
	TccProtocol protocol;

	/* outcome */
	TimestampTz started_at;
	double		duration_ms;
	int			http_status;	/* 0 when no HTTP answer */
	char	   *body;			/* response body, capped; NULL if none */
	int			body_len;
	int			retry_after_ms; /* -1 when absent or not honoured */
	char		error[256];		/* empty when the call got an answer */
	TccAnswer	answer;			/* the outcome as the protocol reads it */

	/* http.c's private state */
	void	   *handle;
	void	   *header_list;
	StringInfoData body_buf;
} TccCall;

/* longest name, kind or business key */
#define TCC_MAX_NAME 1000

/* longest destination name ("scheme://host:port") kept apart from others */
#define TCC_DEST_LEN 320

/* largest response body kept */
#define TCC_MAX_BODY (64 * 1024)

/* a participant URL as libcurl reads it */
typedef struct TccUrl
{
	char	   *scheme;			/* lower case */
	char	   *host;
	int			port;			/* the scheme's default when not given */
	char	   *path;			/* dot segments resolved; at least "/" */
} TccUrl;

/* http.c */
extern void TccHttpTry(TccCall *call);
extern void TccHttpTryAll(TccCall **calls, int ncalls);
extern bool TccHttpParseUrl(const char *url, TccUrl *parts, char *why,
							size_t whylen);
extern void TccHttpInitWorker(void);
extern int	TccHttpEventFd(void);
extern void TccHttpStart(TccCall *call);
extern void TccHttpProcess(void);
extern TccCall *TccHttpNextDone(void);
extern long TccHttpTimeoutMs(void);
extern int	TccHttpInFlight(void);
extern void TccHttpFinishCall(TccCall *call);
extern void TccHttpDestination(const char *url, char *dest, size_t len);

/* durable.c */
extern void TccDurableWait(XLogRecPtr lsn);
extern XLogRecPtr TccDurableEndOfWal(void);
extern void TccDurableRequirePrimary(void);

/* backoff.c */
extern int64 TccBackoffMs(int attempt, int retry_after_ms);

/* validate.c */
extern void TccValidateUrl(const char *url, const char *what);
extern void TccValidatePayload(int len);
extern char **TccValidateHeaders(Datum headers_jsonb, int *nheaders);
extern void TccValidateTimeout(Interval *timeout, const char *what);
extern int64 TccIntervalMs(Interval *timeout);

/*
 * Requests a backend hands to the worker so that they are written durably in
 * the worker's own transaction (rule R1): they survive the caller's ROLLBACK.
 */
typedef enum TccRequestKind
{
	TCC_REQ_BEGIN = 1,			/* create a global transaction */
	TCC_REQ_BRANCH,				/* record branches of one gid before their
								 * tries */
	TCC_REQ_TRY_FAILED			/* a try was refused or its outcome unknown */
} TccRequestKind;

/* the worker's answer to a request */
typedef struct TccReply
{
	int			sqlerrcode;		/* 0 on success */
	int			branch;			/* TCC_REQ_BRANCH: the first branch's number;
								 * the others follow it */
	XLogRecPtr	lsn;			/* end of the commit that wrote the request */
	char		message[256];
} TccReply;

/* a request as the worker reads it */
typedef struct TccRequest
{
	TccRequestKind kind;
	StringInfoData data;
	int			slot;
} TccRequest;

/* message encoding (request.c) */
extern void TccMsgPutText(StringInfo buf, const char *s, int len);
extern void TccMsgPutInt64(StringInfo buf, int64 v);
extern const char *TccMsgGetText(StringInfo buf, int *len);
extern int64 TccMsgGetInt64(StringInfo buf);

/* request.c, backend side */
extern void TccSubmit(TccRequestKind kind, StringInfo msg, TccReply *reply);
extern void TccSubmitNoWait(TccRequestKind kind, StringInfo msg);

/* request.c, worker side */
extern List *TccTakeRequests(void);
extern void TccReplyRequest(TccRequest *req, TccReply *reply);
extern bool TccRequestsPending(void);

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
	char		last_error[256];
	int			ndecided;		/* gids whose decision just committed */
	XLogRecPtr	decided_lsn;	/* end of the latest of those commits */
	pg_uuid_t	decided[TCC_DECIDED_MAX];
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
extern void TccHandDecided(pg_uuid_t *gids, int n);
extern void TccWaitFor(pg_uuid_t *gid);
extern void TccWaitEnd(void);
extern void TccWakeWaiters(pg_uuid_t *gids, int n);

/* schedule.c: when each pending confirm / cancel call is due, what is next */
extern void TccScheduleInit(void);
extern void TccSchedule(pg_uuid_t *gid, int branch, TimestampTz due_at,
						bool force);
extern void TccScheduleRetry(pg_uuid_t *gid, int branch, TimestampTz due_at);
extern int	TccScheduleTake(TimestampTz now, int max, pg_uuid_t *gids,
							int *branches);
extern bool TccScheduleAdmit(pg_uuid_t *gid, int branch, const char *dest);
extern void TccScheduleDone(pg_uuid_t *gid, int branch);
extern TimestampTz TccScheduleNext(bool room);
extern int	TccScheduleWaiting(void);

/* what a successful call did to its transaction's phase two */
typedef enum TccPhaseStep
{
	TCC_PHASE_UNKNOWN,			/* not remembered: read the tables */
	TCC_PHASE_GOING,			/* branches are still pending */
	TCC_PHASE_DONE				/* no branch is pending any more */
} TccPhaseStep;

extern bool TccPhaseStart(pg_uuid_t *gid, bool commit, bool parallel,
						  int *pending, int npending, TimestampTz now,
						  bool force);
extern TccPhaseStep TccPhaseBranchDone(pg_uuid_t *gid, int branch,
									   bool *commit);
extern void TccPhaseScheduleNext(pg_uuid_t *gid, TimestampTz now);
extern void TccPhaseForget(pg_uuid_t *gid);

/* worker.c */
extern PGDLLEXPORT void TccWorkerMain(Datum arg);
extern void TccRegisterWorker(int index, const char *database);
extern void TccWatchDropDatabase(void);

/* store.c, settle.c: the coordinator's table access */

/* state saved while a caller runs as the owner of the tcc tables */
typedef struct TccOwnerScope
{
	Oid			save_user;
	int			save_sec;
} TccOwnerScope;

extern void TccEnterOwner(TccOwnerScope *scope);
extern void TccLeaveOwner(TccOwnerScope *scope);

/* what a backend sees of a global transaction */
typedef struct TccGtxInfo
{
	Oid			owner;
	char		status[16];
	bool		decided;
	bool		decision;
	TimestampTz deadline;
	int			untried;		/* first branch not tried successfully, or 0 */
	char		untried_name[TCC_MAX_NAME + 1];
	char		untried_status[16];
} TccGtxInfo;

extern bool TccStoreGetGtx(pg_uuid_t *gid, TccGtxInfo *info);
extern void TccStoreDecide(pg_uuid_t *gid, bool commit, const char *source);
extern void TccStoreTried(TccCall **calls, int n);
extern void TccStoreAction(pg_uuid_t *gid, const char *action,
						   const char *note);

extern void TccStoreBeginWork(void);
extern XLogRecPtr TccStoreEndWork(void);
extern void TccStoreRequests(List *requests, TccReply *replies);
extern void TccStoreStartup(void);
/* how phase two was last started from the tables (TccStoreTookPhases) */
typedef enum TccPhasesTaken
{
	TCC_PHASES_NONE,			/* not at all */
	TCC_PHASES_HANDED,			/* only for gids whose decisions were handed
								 * over with their commit's WAL position */
	TCC_PHASES_ANY				/* for gids found in the tables */
} TccPhasesTaken;

extern TccPhasesTaken TccStoreTookPhases(void);
extern void TccStoreResults(List *calls);
extern bool TccStoreSettle(bool actions, bool stuck, bool tries,
						   pg_uuid_t *decided, int ndecided, bool *blocked);
extern List *TccStoreLoadCalls(pg_uuid_t *gids, int *branches, int n,
							   MemoryContext cxt);
extern TimestampTz TccStoreNextDeadline(void);
extern TimestampTz TccStorePurge(void);
extern pg_uuid_t *TccStoreTakeSettled(int *n);

/* api.c: the lock that serialises decisions on one gid; a gid as text */
extern bool TccLockGid(pg_uuid_t *gid, bool wait);
extern void TccUnlockGid(pg_uuid_t *gid);
extern char *TccGidText(pg_uuid_t *gid);

#endif							/* TCC_H */
