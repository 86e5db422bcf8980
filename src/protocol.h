/*-------------------------------------------------------------------------
 *
 * protocol.h
 *	  The words of the participant protocol: operations, dialects, what an
 *	  answer means and the trace context (protocol.c; docs/protocol.md).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/protocol.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_PROTOCOL_H
#define TCC_PROTOCOL_H

/* the operations of the participant protocol */
typedef enum TccOp
{
	TCC_OP_TRY,
	TCC_OP_CONFIRM,
	TCC_OP_CANCEL
} TccOp;

/* how a branch's participant speaks (docs/protocol.md) */
typedef enum TccProtocol
{
	TCC_PROTOCOL_TCC,			/* Tcc-* headers, 409 refuses */
	TCC_PROTOCOL_DTM			/* also DTM's query parameters and answers */
} TccProtocol;

/* what an answer means, as the branch's protocol reads it */
typedef enum TccAnswer
{
	TCC_ANSWER_DONE,			/* success */
	TCC_ANSWER_REFUSED,			/* try: refused; confirm / cancel: retried */
	TCC_ANSWER_UNKNOWN			/* no answer, or one that settles nothing */
} TccAnswer;

/* the HTTP statuses the protocols give a meaning of their own */
#define TCC_HTTP_CONFLICT 409	/* refused, in both protocols */
#define TCC_HTTP_TOO_EARLY 425	/* DTM: still ongoing */

/*
 * W3C trace context of a global transaction (docs/protocol.md#trace-context):
 * every call carries its trace id and flags, with a span id of its own.
 */
#define TCC_TRACE_ID_LEN 16
#define TCC_TRACESTATE_MAX 512

typedef struct TccTrace
{
	uint8		id[TCC_TRACE_ID_LEN];	/* all zero: no trace */
	uint8		flags;
	char	   *state;			/* tracestate; NULL when none */
} TccTrace;

extern const char *TccProtocolOpName(TccOp op);
extern bool TccProtocolOpFromName(const char *name, TccOp *op);
extern const char *TccProtocolName(TccProtocol protocol);
extern TccProtocol TccProtocolFromName(const char *name);
extern TccAnswer TccProtocolReadAnswer(TccProtocol protocol, int http_status,
									   const char *body, int body_len,
									   char *error, size_t errlen);
extern const char *TccProtocolRefusal(int http_status);
extern bool TccTraceParse(const char *traceparent, TccTrace *trace);
extern bool TccTraceStateValid(const char *tracestate);
extern void TccTraceParent(const TccTrace *trace, char *out, size_t len);

#endif							/* TCC_PROTOCOL_H */
