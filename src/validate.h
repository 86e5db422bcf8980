/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  Checks of what callers pass in (validate.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/validate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_VALIDATE_H
#define TCC_VALIDATE_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "request.h"

extern void TccValidateArgGiven(FunctionCallInfo fcinfo, int n,
								const char *name);
extern pg_uuid_t *TccValidateGidArg(FunctionCallInfo fcinfo, int n);
extern void TccValidateUrl(const char *url, const char *what);
extern void TccValidatePayload(int len);
extern char **TccValidateHeaders(Datum headers_jsonb, int *nheaders);
extern void TccValidateTimeout(Interval *timeout, const char *what);
extern int64 TccIntervalMs(Interval *timeout);
extern void TccValidateBranch(TccBranchSpec *spec);
extern int	TccValidateBranchTimeout(Interval *timeout);
extern void TccValidateMaxAttempts(int64 max_attempts);
extern bool TccValidateTrace(const char *traceparent, const char *tracestate,
							 TccTrace *trace);
extern char *TccValidateDestination(const char *destination);
extern TccBranchSpec *TccValidateBranches(Jsonb *branches, int *n);

#endif							/* TCC_VALIDATE_H */
