/*-------------------------------------------------------------------------
 *
 * protocol.h
 *	  The words of the participant protocol: operations, dialects and
 *	  what an answer means (protocol.c; docs/protocol.md).
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

extern const char *TccProtocolOpName(TccOp op);
extern const char *TccProtocolName(TccProtocol protocol);
extern TccProtocol TccProtocolFromName(const char *name);

#endif							/* TCC_PROTOCOL_H */
