/*-------------------------------------------------------------------------
 *
 * http.h
 *	  All libcurl code: calls to participants (http.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_HTTP_H
#define TCC_HTTP_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/uuid.h"

#include "protocol.h"

/*
 * Room for a call's error message: curl writes its own there, so at least
 * its CURL_ERROR_SIZE (http.c checks).
 */
#define TCC_CALL_ERROR_LEN 256

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
	int			max_attempts;	/* the branch's own; 0: tcc.max_attempts */
	TccProtocol protocol;
	TccTrace	trace;			/* its global transaction's trace context */
	bool		held;			/* a try not sent: its destination is paused */

	/* outcome */
	TimestampTz started_at;
	double		duration_ms;
	int			http_status;	/* 0 when no HTTP answer */
	char	   *body;			/* response body, capped; NULL if none */
	int			body_len;
	int			retry_after_ms; /* -1 when absent or not honoured */
	char		error[TCC_CALL_ERROR_LEN];	/* empty when the call got an answer */
	TccAnswer	answer;			/* the outcome as the protocol reads it */

	/* http.c's private state */
	void	   *handle;
	void	   *header_list;
	StringInfoData body_buf;
	bool		body_oom;		/* no memory to keep the body: curl stopped */
} TccCall;

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

/* the caller's tries, in its backend */
extern void TccHttpTryAll(TccCall **calls, int ncalls);

/* the worker's confirm and cancel calls */
extern void TccHttpInitWorker(void);
extern int	TccHttpEventFd(void);
extern void TccHttpStart(TccCall *call);
extern void TccHttpProcess(void);
extern TccCall *TccHttpNextDone(void);
extern long TccHttpTimeoutMs(void);
extern int	TccHttpInFlight(void);
extern void TccHttpFinishCall(TccCall *call);

/* URLs */
extern bool TccHttpParseUrl(const char *url, TccUrl *parts, char *why,
							size_t whylen);
extern void TccHttpDestination(const char *url, char *dest, size_t len);

#endif							/* TCC_HTTP_H */
