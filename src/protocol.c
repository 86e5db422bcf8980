/*-------------------------------------------------------------------------
 *
 * protocol.c
 *	  The words of the participant protocol: operations, dialects, what an
 *	  answer means and the W3C trace context.
 *
 * A branch's participant is called for its try, confirm and cancel, in one
 * of two dialects (docs/protocol.md): tcc, or dtm, which adds DTM's query
 * parameters and reads its answers.  The names here are the ones the
 * tables, the views and the HTTP requests use.  Every call also carries its
 * global transaction's trace context, with a span id of its own.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/protocol.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"

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

/*
 * Reads an operation's name as the participant protocol spells it into
 * *op; returns false when it names none.
 */
bool
TccProtocolOpFromName(const char *name, TccOp *op)
{
	static const TccOp ops[] = {TCC_OP_TRY, TCC_OP_CONFIRM, TCC_OP_CANCEL};

	for (int i = 0; i < lengthof(ops); i++)
	{
		if (strcmp(name, TccProtocolOpName(ops[i])) == 0)
		{
			*op = ops[i];
			return true;
		}
	}
	return false;
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

/* Returns true if an answer's body (len bytes, maybe NULL) contains word. */
static bool
BodyHas(const char *body, int len, const char *word)
{
	return len > 0 && memmem(body, len, word, strlen(word)) != NULL;
}

/*
 * Reads a participant's HTTP answer as the branch's protocol does
 * (docs/protocol.md).  tcc: 2xx done, 409 refused, anything else unknown.
 * DTM: 409 or a body with FAILURE refused, 425 or a body with ONGOING
 * unknown, other non-2xx unknown, 2xx done; a 2xx that DTM's word in the
 * body overrules says so in error (errlen bytes).
 */
TccAnswer
TccProtocolReadAnswer(TccProtocol protocol, int http_status,
					  const char *body, int body_len,
					  char *error, size_t errlen)
{
	bool		ok = http_status >= 200 && http_status <= 299;

	if (protocol == TCC_PROTOCOL_DTM)
	{
		if (http_status == TCC_HTTP_CONFLICT ||
			BodyHas(body, body_len, "FAILURE"))
		{
			if (ok)
				snprintf(error, errlen, "HTTP %d with FAILURE", http_status);
			return TCC_ANSWER_REFUSED;
		}
		if (http_status == TCC_HTTP_TOO_EARLY ||
			BodyHas(body, body_len, "ONGOING"))
		{
			if (ok)
				snprintf(error, errlen, "HTTP %d with ONGOING", http_status);
			return TCC_ANSWER_UNKNOWN;
		}
		return ok ? TCC_ANSWER_DONE : TCC_ANSWER_UNKNOWN;
	}
	if (ok)
		return TCC_ANSWER_DONE;
	return http_status == TCC_HTTP_CONFLICT ?
		TCC_ANSWER_REFUSED : TCC_ANSWER_UNKNOWN;
}

/*
 * Names what made an answer with this HTTP status a refusal: the status
 * 409, else (DTM) the word FAILURE in its body.
 */
const char *
TccProtocolRefusal(int http_status)
{
	return http_status == TCC_HTTP_CONFLICT ? "409" : "FAILURE";
}

/* Returns the value of a lower-case hex digit, -1 for anything else. */
static int
HexDigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Reads n bytes written as 2n lower-case hex digits at s into out (NULL:
 * only checks them).  Returns false if they are not, or all zero.
 */
static bool
ReadHex(const char *s, int n, uint8 *out)
{
	bool		zero = true;

	for (int i = 0; i < n; i++)
	{
		int			hi = HexDigit(s[2 * i]);
		int			lo = HexDigit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		if (out)
			out[i] = (uint8) (hi << 4 | lo);
		zero = zero && hi == 0 && lo == 0;
	}
	return !zero;
}

/*
 * Where the fields of a version-00 traceparent start, each after a '-':
 * "vv-" then 16 bytes of trace id, 8 of parent id and 1 of flags, in hex.
 */
#define TP_PARENT_BYTES 8
#define TP_ID 3
#define TP_PARENT (TP_ID + 2 * TCC_TRACE_ID_LEN + 1)
#define TP_FLAGS (TP_PARENT + 2 * TP_PARENT_BYTES + 1)
#define TP_LEN (TP_FLAGS + 2)

/*
 * Parses a W3C traceparent, "vv-<trace id>-<parent id>-<flags>" in lower-case
 * hex: fills trace's id and flags (the parent id is the caller's span; each
 * call gets a span of its own).  Version ff, an all-zero trace or parent
 * id, and version 00 with anything after the flags are invalid; a later
 * version may add fields after a '-'.  Returns false when it is invalid.
 */
bool
TccTraceParse(const char *traceparent, TccTrace *trace)
{
	const char *s = traceparent;
	size_t		len = strlen(s);

	if (len < TP_LEN || s[TP_ID - 1] != '-' || s[TP_PARENT - 1] != '-' ||
		s[TP_FLAGS - 1] != '-')
		return false;
	if (HexDigit(s[0]) < 0 || HexDigit(s[1]) < 0 || strncmp(s, "ff", 2) == 0)
		return false;
	if (strncmp(s, "00", 2) == 0 ? len != TP_LEN :
		(len > TP_LEN && s[TP_LEN] != '-'))
		return false;
	if (!ReadHex(s + TP_ID, TCC_TRACE_ID_LEN, trace->id) ||
		!ReadHex(s + TP_PARENT, TP_PARENT_BYTES, NULL))
		return false;
	if (HexDigit(s[TP_FLAGS]) < 0 || HexDigit(s[TP_FLAGS + 1]) < 0)
		return false;
	trace->flags = (uint8) (HexDigit(s[TP_FLAGS]) << 4 |
							HexDigit(s[TP_FLAGS + 1]));
	return true;
}

/*
 * Returns true if tracestate may be sent as a header: 1 to
 * TCC_TRACESTATE_MAX printable ASCII characters.
 */
bool
TccTraceStateValid(const char *tracestate)
{
	size_t		len = strlen(tracestate);

	if (len == 0 || len > TCC_TRACESTATE_MAX)
		return false;
	for (const char *p = tracestate; *p; p++)
	{
		if (*p < 0x20 || *p > 0x7E)
			return false;
	}
	return true;
}

/*
 * Writes the traceparent of one call into out (at least TP_LEN + 1
 * bytes): the trace's id and flags, and a new random span id.
 */
void
TccTraceParent(const TccTrace *trace, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint64		span;
	char		id[2 * TCC_TRACE_ID_LEN + 1];

	do
		span = pg_prng_uint64(&pg_global_prng_state);
	while (span == 0);
	for (int i = 0; i < TCC_TRACE_ID_LEN; i++)
	{
		id[2 * i] = hex[trace->id[i] >> 4];
		id[2 * i + 1] = hex[trace->id[i] & 0x0F];
	}
	id[2 * TCC_TRACE_ID_LEN] = '\0';
	snprintf(out, len, "00-%s-%016llx-%02x", id,
			 (unsigned long long) span, trace->flags);
}
