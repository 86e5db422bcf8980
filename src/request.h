/*-------------------------------------------------------------------------
 *
 * request.h
 *	  Requests a backend hands to the worker: one typed struct, one
 *	  encoder and one decoder per kind, and the hand-over (request.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/request.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_REQUEST_H
#define TCC_REQUEST_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/uuid.h"

#include "protocol.h"

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

/* One branch as the caller describes it, checked (validate.c). */
typedef struct TccBranchSpec
{
	char	   *urls[3];		/* try, confirm, cancel; NULL if absent */
	char	   *payload;
	char	   *name;
	char	  **headers;
	int			nheaders;
	TccProtocol protocol;
	int			timeout_ms;		/* its calls' time limit; 0: the setting */
	int			max_attempts;	/* 0: tcc.max_attempts */
	bool		pass_try_response;	/* confirm and cancel carry the try's
									 * answer */
} TccBranchSpec;

/* TCC_REQ_BEGIN: a new global transaction, with its first branches (tcc_run) */
typedef struct TccBeginRequest
{
	pg_uuid_t	gid;
	Oid			owner;
	TimestampTz deadline;
	uint64		xid;			/* the beginning transaction's FullTransactionId */
	char	   *kind;			/* NULL if none */
	char	   *key;			/* business key; NULL if none */
	bool		parallel;
	bool		trace_given;	/* else the trace id is the gid, flags 01 */
	TccTrace	trace;
	int			nbranches;
	TccBranchSpec *branches;
} TccBeginRequest;

/* TCC_REQ_BRANCH: one or more branches of one gid (tcc_branch, tcc_branches) */
typedef struct TccBranchRequest
{
	pg_uuid_t	gid;
	Oid			user;
	bool		is_super;
	int			nbranches;
	TccBranchSpec *branches;
} TccBranchRequest;

/* TCC_REQ_TRY_FAILED: a try refused or with an unknown outcome */
typedef struct TccTryFailedRequest
{
	pg_uuid_t	gid;
	int			branch;
	const char *status;			/* the branch's new status */
	int			http_status;	/* 0 when no HTTP answer */
	const char *error;
	TimestampTz started;
	double		duration_ms;
} TccTryFailedRequest;

/* TCC_REQ_TRY_ANSWERS: the answers of successful tries of one gid */
typedef struct TccTryAnswersRequest
{
	pg_uuid_t	gid;
	int			n;
	int		   *branches;
	char	  **answers;		/* JSON text; NULL when not JSON */
} TccTryAnswersRequest;

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

/* a request as the worker reads it */
typedef struct TccRequest
{
	TccRequestKind kind;
	StringInfoData data;
	int			slot;
} TccRequest;

/* encoding, backend side */
extern void TccRequestPutBegin(StringInfo msg, TccBeginRequest *r);
extern void TccRequestPutBranch(StringInfo msg, TccBranchRequest *r);
extern void TccRequestPutTryFailed(StringInfo msg, TccTryFailedRequest *r);
extern void TccRequestPutTryAnswers(StringInfo msg, TccTryAnswersRequest *r);

/* decoding, worker side */
extern void TccRequestGetBegin(TccRequest *req, TccBeginRequest *r);
extern void TccRequestGetBranch(TccRequest *req, TccBranchRequest *r);
extern void TccRequestGetTryFailed(TccRequest *req, TccTryFailedRequest *r);
extern void TccRequestGetTryAnswers(TccRequest *req, TccTryAnswersRequest *r);

/* the hand-over, backend side */
extern void TccRequestSubmit(TccRequestKind kind, StringInfo msg,
							 TccReply *reply);
extern bool TccRequestSubmitNoWait(TccRequestKind kind, StringInfo msg);

/* the hand-over, worker side */
extern List *TccRequestTakeAll(void);
extern void TccRequestReply(TccRequest *req, TccReply *reply);
extern bool TccRequestsPending(void);

#endif							/* TCC_REQUEST_H */
