/*-------------------------------------------------------------------------
 *
 * protocol.c
 *	  The words of the participant protocol: operations and dialects.
 *
 * A branch's participant is called for its try, confirm and cancel, in one
 * of two dialects (docs/protocol.md): tcc, or dtm, which adds DTM's query
 * parameters and reads its answers.  The names here are the ones the
 * tables, the views and the HTTP requests use.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/protocol.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "protocol.h"

/* Returns the protocol name of an operation. */
const char *
TccProtocolOpName(TccOp op)
{
	switch (op)
	{
		case TCC_OP_TRY:
			return "try";
		case TCC_OP_CONFIRM:
			return "confirm";
		case TCC_OP_CANCEL:
			return "cancel";
	}
	return "?";
}

/* Returns the name of a participant protocol. */
const char *
TccProtocolName(TccProtocol protocol)
{
	return protocol == TCC_PROTOCOL_DTM ? "dtm" : "tcc";
}

/* Returns the protocol of a name; 22023 for an unknown one. */
TccProtocol
TccProtocolFromName(const char *name)
{
	if (strcmp(name, "tcc") == 0)
		return TCC_PROTOCOL_TCC;
	if (strcmp(name, "dtm") == 0)
		return TCC_PROTOCOL_DTM;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("protocol must be tcc or dtm")));
	return TCC_PROTOCOL_TCC;	/* keep the compiler quiet */
}
