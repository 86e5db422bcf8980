/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL API: tcc_begin, tcc_branch, tcc_branches, tcc_run, tcc_finish
 *	  and tcc_wait, run in the initiator's backend.
 *
 * tcc_begin and tcc_branch hand their intent to the worker and wait until
 * it is durable (request.c), so it survives the caller's ROLLBACK (R1 of
 * docs/guarantees.md).
 * tcc_branches hands all its branches over in one request, then calls all
 * their tries at once; tcc_run hands over the transaction together with
 * its branches.
 * tcc_finish inserts the decision in the caller's own transaction, so the
 * caller's COMMIT is the decision (R2).  It holds a lock on the gid until the
 * caller's transaction ends; the worker only decides a gid whose lock it can
 * take without waiting, so a timeout cancel and a confirm in a still-open
 * transaction cannot both win (R4).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/api.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "coordinator.h"
#include "durable.h"
#include "gid.h"
#include "notice.h"
#include "protocol.h"
#include "request.h"
#include "shmem.h"
#include "status.h"
#include "store.h"
#include "tcc.h"
#include "tries.h"
#include "validate.h"

/* how often tcc_wait reads the gid when nothing wakes it (a safety net) */
#define SETTLED_POLL_MS 1000
#define USECS_PER_MS (USECS_PER_SEC / 1000)

PG_FUNCTION_INFO_V1(tcc_begin);
PG_FUNCTION_INFO_V1(tcc_branch);
PG_FUNCTION_INFO_V1(tcc_branches);
PG_FUNCTION_INFO_V1(tcc_run);
PG_FUNCTION_INFO_V1(tcc_finish);
PG_FUNCTION_INFO_V1(tcc_wait);

/* Returns a text argument as a C string (NULL for NULL), length-checked. */
static char *
GetName(FunctionCallInfo fcinfo, int n, const char *what)
{
	char	   *s;

	if (PG_ARGISNULL(n))
		return NULL;
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (strlen(s) > TCC_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is longer than %d bytes", what, TCC_MAX_NAME)));
	return s;
}

/* Describes the first branch not tried successfully: "branch 2 (stock) is refused". */
static char *
UntriedBranch(TccGtxInfo *info)
{
	return psprintf("branch %d%s%s%s is %s", info->untried,
					info->untried_name[0] ? " (" : "", info->untried_name,
					info->untried_name[0] ? ")" : "", info->untried_status);
}

/*
 * Creates a global transaction: hands the intent to the worker and waits
 * until it is durable.  timeout_ms -1 means tcc.default_timeout.  trace:
 * the trace context given, else filled with the gid's.  The n branches in
 * specs, if any, are recorded in the same request, and so the same commit
 * (tcc_run).
 */
static pg_uuid_t *
BeginGtx(int64 timeout_ms, char *kind, char *key, bool parallel,
		 TccTrace *trace, bool trace_given, TccBranchSpec *specs, int n)
{
	pg_uuid_t  *gid;
	TccBeginRequest r;
	StringInfoData msg;
	TccReply	reply;

	/* before GetTopFullTransactionId, which fails on a standby with XX000 */
	TccDurableRequirePrimary();
	if (timeout_ms < 0)
		timeout_ms = tcc_default_timeout;
	if (key != NULL && kind == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("business_key needs a kind"),
				 errhint("A business key is unique together with its kind.")));

	if (!pg_strong_random(r.gid.data, UUID_LEN))
		elog(ERROR, "could not generate a random gid");
	/* a version 4 (random) UUID: its version and variant bits */
	r.gid.data[6] = (r.gid.data[6] & 0x0F) | 0x40;
	r.gid.data[8] = (r.gid.data[8] & 0x3F) | 0x80;
	r.owner = GetUserId();
	r.deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	r.xid = U64FromFullTransactionId(GetTopFullTransactionId());
	r.kind = kind;
	r.key = key;
	r.parallel = parallel;
	r.trace_given = trace_given;
	if (!trace_given)
	{
		/* none given: the gid is the trace id (docs/protocol.md#trace-context) */
		memcpy(trace->id, r.gid.data, TCC_TRACE_ID_LEN);
		trace->flags = 1;
	}
	r.trace = *trace;
	r.nbranches = n;
	r.branches = specs;

	initStringInfo(&msg);
	TccRequestPutBegin(&msg, &r);
	TccNoticeWakeAtAbort();
	TccRequestSubmit(TCC_REQ_BEGIN, &msg, &reply);
	gid = palloc(sizeof(pg_uuid_t));
	*gid = r.gid;
	return gid;
}

/*
 * Reads tcc_begin's arguments, from argument first on, and begins, with
 * the n branches in specs; trace gets the transaction's trace context.
 */
static pg_uuid_t *
BeginFromArgs(FunctionCallInfo fcinfo, int first, TccBranchSpec *specs, int n,
			  TccTrace *trace)
{
	int64		timeout_ms = -1;
	bool		given;

	if (!PG_ARGISNULL(first))
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(first);

		TccValidateTimeout(timeout, "timeout");
		timeout_ms = TccIntervalMs(timeout);
	}
	given = TccValidateTrace(GetName(fcinfo, first + 4, "traceparent"),
							 GetName(fcinfo, first + 5, "tracestate"), trace);
	return BeginGtx(timeout_ms,
					GetName(fcinfo, first + 1, "kind"),
					GetName(fcinfo, first + 2, "business_key"),
					PG_ARGISNULL(first + 3) ? false : PG_GETARG_BOOL(first + 3),
					trace, given, specs, n);
}

/*
 * tcc_begin(timeout, kind, business_key, parallel, traceparent, tracestate):
 * starts a global transaction.
 */
Datum
tcc_begin(PG_FUNCTION_ARGS)
{
	TccTrace	trace;

	TccCoordinatorRequire();
	PG_RETURN_UUID_P(BeginFromArgs(fcinfo, 0, NULL, 0, &trace));
}

/*
 * Records branches of one gid durably, in one request to the worker and
 * so one commit (R1 of docs/guarantees.md for all of them before the
 * first try).  The worker checks that the gid exists, is ours and is
 * undecided.  Returns the first branch's number; the others follow it.
 * trace gets the gid's trace context, for the tries.
 */
static int
RegisterBranches(pg_uuid_t *gid, TccBranchSpec *specs, int n, TccTrace *trace)
{
	TccBranchRequest r;
	StringInfoData msg;
	TccReply	reply;

	r.gid = *gid;
	r.user = GetUserId();
	r.is_super = superuser();
	r.nbranches = n;
	r.branches = specs;
	initStringInfo(&msg);
	TccRequestPutBranch(&msg, &r);
	TccRequestSubmit(TCC_REQ_BRANCH, &msg, &reply);
	memcpy(trace->id, reply.trace_id, TCC_TRACE_ID_LEN);
	trace->flags = reply.trace_flags;
	trace->state = reply.tracestate[0] ? pstrdup(reply.tracestate) : NULL;
	return reply.branch;
}

/*
 * tcc_branch(gid, try_url, confirm_url, cancel_url, payload, name, headers,
 * protocol, timeout, max_attempts, pass_try_response): records the branch
 * durably, then calls its try and returns the answer.
 */
Datum
tcc_branch(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	static const char *const url_names[] = {"try_url", "confirm_url", "cancel_url"};
	TccBranchSpec	spec;
	Jsonb	   *payload_jb;
	int			branch;
	Datum		body;
	bool		body_null;
	TccTrace	trace;

	TccCoordinatorRequire();
	gid = TccValidateGidArg(fcinfo, 0);
	memset(&spec, 0, sizeof(spec));
	StaticAssertStmt(lengthof(url_names) == lengthof(spec.urls),
					 "one name per URL of a branch");
	for (int i = 0; i < lengthof(url_names); i++)
	{
		if (PG_ARGISNULL(i + 1))
			continue;
		spec.urls[i] = text_to_cstring(PG_GETARG_TEXT_PP(i + 1));
		TccValidateUrl(spec.urls[i], url_names[i]);
	}
	if (!PG_ARGISNULL(4))
	{
		payload_jb = PG_GETARG_JSONB_P(4);
		spec.payload = JsonbToCString(NULL, &payload_jb->root,
									  VARSIZE(payload_jb));
	}
	TccValidateBranch(&spec);
	spec.name = GetName(fcinfo, 5, "name");
	if (!PG_ARGISNULL(6))
		spec.headers = TccValidateHeaders(PG_GETARG_DATUM(6), &spec.nheaders);
	spec.protocol = TCC_PROTOCOL_TCC;
	if (PG_NARGS() > 7 && !PG_ARGISNULL(7))
		spec.protocol = TccProtocolFromName(text_to_cstring(PG_GETARG_TEXT_PP(7)));
	/* 1.2: the branch's own policy (docs/api.md#per-branch-policy) */
	if (PG_NARGS() > 10)
	{
		if (!PG_ARGISNULL(8))
			spec.timeout_ms = TccValidateBranchTimeout(PG_GETARG_INTERVAL_P(8));
		if (!PG_ARGISNULL(9))
			TccValidateMaxAttempts(spec.max_attempts = PG_GETARG_INT32(9));
		spec.pass_try_response = !PG_ARGISNULL(10) && PG_GETARG_BOOL(10);
		TccValidateBranch(&spec);
	}

	branch = RegisterBranches(gid, &spec, 1, &trace);
	TccTriesRun(gid, &spec, 1, branch, &trace, &body, &body_null);
	if (body_null)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(body);
}

/*
 * Calls the tries of registered branches, numbered from first on, all at
 * once, and returns the answers as a JSON array in branch order.
 */
static Datum
RunBranches(pg_uuid_t *gid, TccBranchSpec *specs, int n, int first,
			TccTrace *trace)
{
	Datum	   *bodies;
	bool	   *nulls;
	JsonbParseState *state = NULL;
	JsonbValue *result;

	bodies = palloc(sizeof(Datum) * n);
	nulls = palloc(sizeof(bool) * n);
	TccTriesRun(gid, specs, n, first, trace, bodies, nulls);

	(void) pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < n; i++)
	{
		JsonbValue	v;

		if (nulls[i])
		{
			v.type = jbvNull;
			(void) pushJsonbValue(&state, WJB_ELEM, &v);
			continue;
		}
		v.type = jbvBinary;
		v.val.binary.data = &DatumGetJsonbP(bodies[i])->root;
		v.val.binary.len = VARSIZE(DatumGetJsonbP(bodies[i])) - VARHDRSZ;
		(void) pushJsonbValue(&state, WJB_ELEM, &v);
	}
	result = pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(result));
}

/*
 * tcc_branches(gid, branches): several branches at once; returns their
 * try answers as an array in branch order.
 */
Datum
tcc_branches(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	TccBranchSpec *specs;
	int			n;
	int			first;
	TccTrace	trace;

	TccCoordinatorRequire();
	gid = TccValidateGidArg(fcinfo, 0);
	TccValidateArgGiven(fcinfo, 1, "branches");
	specs = TccValidateBranches(PG_GETARG_JSONB_P(1), &n);
	first = RegisterBranches(gid, specs, n, &trace);
	PG_RETURN_DATUM(RunBranches(gid, specs, n, first, &trace));
}

/*
 * Decides a global transaction as part of the caller's transaction;
 * returns 'confirming' or 'cancelling'.  began_here says the caller began
 * gid in this same statement (tcc_run), so it is known to be its own.
 */
static const char *
FinishGtx(pg_uuid_t *gid, bool commit, bool began_here)
{
	TccGtxInfo	info;

	/*
	 * Owner first: a role that may not decide this gid never takes its lock,
	 * so it cannot hold up the owner's tcc_branch.  Then the lock, held until
	 * our transaction ends (the worker cannot decide meanwhile), and the gid
	 * read again as it is now.
	 */
	if (!began_here)
		TccStatusReadOwn(gid, &info);
	TccNoticeWakeAtAbort();
	(void) TccGidLock(gid, true);
	TccStatusReadOwn(gid, &info);

	if (info.decided)
	{
		if (info.decision == commit)
			return commit ? "confirming" : "cancelling";
		ereport(ERROR,
				(errcode(ERRCODE_TCC_BAD_DECISION),
				 errmsg("global transaction %s is already %s",
						TccGidText(gid), TccStatusShown(&info)),
				 info.untried != 0 ?
				 errdetail("Its %s.", UntriedBranch(&info)) : 0));
	}
	if (strcmp(info.status, "trying") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_TCC_BAD_DECISION),
				 errmsg("global transaction %s is already %s",
						TccGidText(gid), info.status)));
	if (commit)
	{
		if (GetCurrentTimestamp() >= info.deadline)
			ereport(ERROR,
					(errcode(ERRCODE_TCC_BAD_DECISION),
					 errmsg("global transaction %s has passed its deadline",
							TccGidText(gid)),
					 errdetail("It is being cancelled.")));
		if (info.untried != 0)
			ereport(ERROR,
					(errcode(ERRCODE_TCC_BAD_DECISION),
					 errmsg("cannot confirm global transaction %s: %s",
							TccGidText(gid), UntriedBranch(&info)),
					 errdetail("Every branch must be tried successfully before the transaction can confirm.")));
	}

	TccStoreDecide(gid, commit, "caller");
	TccNoticeDecided(gid);
	return commit ? "confirming" : "cancelling";
}

/*
 * tcc_finish(gid, commit): decides, as part of the caller's transaction.
 * Returns 'confirming' or 'cancelling'.
 */
Datum
tcc_finish(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;

	TccCoordinatorRequire();
	gid = TccValidateGidArg(fcinfo, 0);
	TccValidateArgGiven(fcinfo, 1, "commit");
	PG_RETURN_TEXT_P(cstring_to_text(FinishGtx(gid, PG_GETARG_BOOL(1), false)));
}

/*
 * tcc_run(branches, timeout, kind, business_key, parallel, traceparent,
 * tracestate): begins, tries
 * every branch at once and decides confirm in the caller's transaction, so
 * that the caller's COMMIT confirms (R2 of docs/guarantees.md).  Returns
 * (gid, responses).
 */
Datum
tcc_run(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	TccBranchSpec *specs;
	int			n;
	Datum		responses;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	TccTrace	trace;

	TccCoordinatorRequire();
	TccValidateArgGiven(fcinfo, 0, "branches");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "tcc_run must return a record");
	/* a bad array is refused before anything is written */
	specs = TccValidateBranches(PG_GETARG_JSONB_P(0), &n);
	/* one request, one commit: the transaction and all its branches */
	gid = BeginFromArgs(fcinfo, 1, specs, n, &trace);
	responses = RunBranches(gid, specs, n, 1, &trace);
	(void) FinishGtx(gid, true, true);
	values[0] = UUIDPGetDatum(gid);
	values[1] = responses;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}

/*
 * Waits until gid is final or failed or until passes; returns its status.
 * The worker sets this backend's latch when it commits such an outcome for
 * gid (TccWaitFor), so the wait costs one read per wake-up; the latch also
 * wakes it for statement_timeout and pg_cancel_backend.  A read every
 * second is only a safety net.
 */
static const char *
WaitSettled(pg_uuid_t *gid, TimestampTz until)
{
	TccGtxInfo	info;

	for (;;)
	{
		const char *status;
		long		left;

		TccStatusReadOwn(gid, &info);
		status = TccStatusShown(&info);
		left = (long) ((until - GetCurrentTimestamp()) / USECS_PER_MS);
		if (TccStatusIsFinal(status) || strcmp(status, "failed") == 0 || left <= 0)
			return pstrdup(status);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, SETTLED_POLL_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * tcc_wait(gid, timeout): waits until the transaction is final (or failed,
 * which needs a person) or the timeout passes; returns its status.
 */
Datum
tcc_wait(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	Interval   *timeout;
	TimestampTz until;
	const char *volatile status = NULL;

	TccCoordinatorRequire();
	gid = TccValidateGidArg(fcinfo, 0);
	TccValidateArgGiven(fcinfo, 1, "timeout");
	timeout = PG_GETARG_INTERVAL_P(1);
	TccValidateTimeout(timeout, "timeout");
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										TccIntervalMs(timeout));

	TccWaitFor(gid);
	PG_TRY();
	{
		status = WaitSettled(gid, until);
	}
	PG_FINALLY();
	{
		TccWaitEnd();
	}
	PG_END_TRY();
	PG_RETURN_TEXT_P(cstring_to_text(status));
}
