/*-------------------------------------------------------------------------
 *
 * tries.c
 *	  Calling the tries of registered branches, all at once, in the
 *	  caller's backend, and handing their outcomes on.
 *
 * The tries of one tcc_branch, tcc_branches or tcc_run go out together
 * (http.c) once their branches are durable (R1 of docs/guarantees.md); a
 * try to a paused destination is not sent.  A refused or unknown try is
 * handed to the worker, which cancels the transaction at once; the answers
 * that confirm and cancel must carry (pass_try_response) are handed to it
 * too; the successful tries are recorded in the caller's transaction.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/tries.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "gid.h"
#include "http.h"
#include "protocol.h"
#include "request.h"
#include "shmem.h"
#include "store.h"
#include "tcc.h"
#include "tries.h"
#include "util.h"

STMT(paused_among, 1,
	 "SELECT destination FROM tcc._pause WHERE destination = ANY ($1)",
	 TEXTARRAYOID);

/*
 * Holds the tries whose destination is paused
 * (docs/api.md#pausing-a-destination): each is marked held, with the
 * outcome of a call that got no answer, and is not sent (http.c).  Looks
 * at tcc._pause, as it is now, only while a pause may exist (pause.c).
 */
static void
HoldPaused(TccCall **calls, int ncalls)
{
	MemoryContext caller = CurrentMemoryContext;
	TccOwnerScope scope;
	Datum	   *dests;
	Datum		args[1];
	char	  **paused;
	int			npaused;

	if (ncalls == 0 || !TccMaybePaused())
		return;
	dests = palloc(sizeof(Datum) * ncalls);
	for (int i = 0; i < ncalls; i++)
	{
		char		dest[TCC_DEST_LEN];

		TccHttpDestination(calls[i]->url, dest, sizeof(dest));
		dests[i] = CStringGetTextDatum(dest);
	}
	args[0] = TccStoreArray(dests, NULL, ncalls, TEXTOID);
	TccStoreEnterOwner(&scope);
	PushActiveSnapshot(GetLatestSnapshot());
	TccStoreExec(&paused_among, args, NULL, true);
	PopActiveSnapshot();
	/* copied out of SPI's memory, which goes with TccStoreLeaveOwner */
	npaused = (int) SPI_processed;
	paused = MemoryContextAlloc(caller, sizeof(char *) * Max(npaused, 1));
	for (int p = 0; p < npaused; p++)
	{
		bool		isnull;
		char	   *name = TextDatumGetCString(TccStoreCol(p, 1, &isnull));

		paused[p] = MemoryContextStrdup(caller, name);
	}
	TccStoreLeaveOwner(&scope);

	for (int i = 0; i < ncalls; i++)
	{
		char	   *dest = TextDatumGetCString(dests[i]);

		for (int p = 0; p < npaused; p++)
		{
			if (strcmp(dest, paused[p]) != 0)
				continue;
			calls[i]->held = true;
			calls[i]->started_at = GetCurrentTimestamp();
			calls[i]->duration_ms = 0;
			calls[i]->http_status = 0;
			calls[i]->answer = TCC_ANSWER_UNKNOWN;
			snprintf(calls[i]->error, sizeof(calls[i]->error),
					 "destination %s is paused", dest);
			break;
		}
	}
}

/* Encodes a TRY_FAILED request for a call with the given branch status. */
static void
TryFailedMsg(StringInfo msg, TccCall *call, const char *status)
{
	TccTryFailedRequest r;

	r.gid = call->gid;
	r.branch = call->branch;
	r.status = status;
	r.http_status = call->http_status;
	r.error = call->error;
	r.started = call->started_at;
	r.duration_ms = call->duration_ms;
	TccRequestPutTryFailed(msg, &r);
}

/* A body to parse and the parsed jsonb, for ParseJsonb. */
typedef struct BodyParse
{
	char	   *text;
	Datum		jsonb;
} BodyParse;

/* Parses a body as jsonb (run in a subtransaction). */
static void
ParseJsonb(void *arg)
{
	BodyParse  *parse = arg;

	char	   *text = pg_any_to_server(parse->text, strlen(parse->text), PG_UTF8);

	parse->jsonb = DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
}

/*
 * Returns the try's response body as jsonb, or NULL when it is empty, not
 * valid UTF-8 or not JSON (docs/api.md#bad-input: jsonb_in does not check the
 * encoding of what it is given, and a caller storing such a value could
 * not read it back).  Parsed in a subtransaction so that no body, however
 * hostile, can fail the call; only errors about the data itself are
 * swallowed.
 */
static Datum
ParseBody(TccCall *call, bool *isnull)
{
	BodyParse	parse;
	ErrorData  *edata;

	*isnull = true;
	if (call->body == NULL || call->body_len == 0 ||
		memchr(call->body, '\0', call->body_len) != NULL ||
		!pg_verify_mbstr(PG_UTF8, call->body, call->body_len, true))
		return (Datum) 0;
	parse.text = pnstrdup(call->body, call->body_len);
	edata = TccInSubtransaction(ParseJsonb, &parse);
	if (edata == NULL)
	{
		*isnull = false;
		return parse.jsonb;
	}
	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
		edata->sqlerrcode != ERRCODE_STATEMENT_TOO_COMPLEX &&
		edata->sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		ReThrowError(edata);
	return (Datum) 0;
}

/*
 * Hands the worker the answers of the successful tries of branches with
 * pass_try_response, in one request, and waits until they are durable:
 * their confirm or cancel carries them whatever the caller does next
 * (docs/protocol.md#the-trys-answer-in-confirm-and-cancel).
 */
static void
HandAnswers(pg_uuid_t *gid, TccBranchSpec *specs, TccCall **calls,
			int *index, int ncalls, Datum *bodies, bool *nulls)
{
	TccTryAnswersRequest r;
	StringInfoData msg;
	TccReply	reply;

	r.gid = *gid;
	r.n = 0;
	r.branches = palloc(sizeof(int) * ncalls);
	r.answers = palloc(sizeof(char *) * ncalls);
	for (int c = 0; c < ncalls; c++)
	{
		Jsonb	   *body = nulls[index[c]] ? NULL : DatumGetJsonbP(bodies[index[c]]);

		if (!specs[index[c]].pass_try_response ||
			calls[c]->answer != TCC_ANSWER_DONE)
			continue;
		r.branches[r.n] = calls[c]->branch;
		r.answers[r.n++] = body == NULL ? NULL :
			JsonbToCString(NULL, &body->root, VARSIZE(body));
	}
	if (r.n == 0)
		return;
	initStringInfo(&msg);
	TccRequestPutTryAnswers(&msg, &r);
	TccRequestSubmit(TCC_REQ_TRY_ANSWERS, &msg, &reply);
}

/*
 * Tells the worker, without waiting, that the tries were interrupted (a
 * cancel, statement_timeout): their outcome is unknown, so the gid must
 * cancel.  One report is enough, and the only one possible without
 * waiting (a backend has one request slot): one branch whose try is
 * unknown makes the worker cancel the whole transaction (cancel.c), and the
 * cancel goes to every branch that is registered, tried or unknown
 * (docs/states.md), so to every try that may have been sent, reported or
 * not.  The branch reported is the first whose try may have been sent (a
 * held one was not).  Should the report be dropped (request.c), the cancel
 * still comes: see TccRequestSubmitNoWait.  Runs while an error is being
 * raised, with interrupts held.
 */
static void
ReportInterrupted(TccCall **calls, int ncalls)
{
	TccCall    *call = calls[0];
	StringInfoData msg;

	for (int c = 0; c < ncalls; c++)
	{
		if (!calls[c]->held)
		{
			call = calls[c];
			break;
		}
	}
	strlcpy(call->error, "try interrupted", sizeof(call->error));
	initStringInfo(&msg);
	TryFailedMsg(&msg, call, "unknown");
	(void) TccRequestSubmitNoWait(TCC_REQ_TRY_FAILED, &msg);
}

/* Names a branch for messages: "branch 2" or "branch 2 (stock)". */
static char *
BranchLabel(int branch, const char *name)
{
	if (name == NULL)
		return psprintf("branch %d", branch);
	return psprintf("branch %d (%s)", branch, name);
}

/*
 * Calls the tries of registered branches, all at once, and waits for every
 * answer.  bodies[i] / nulls[i] get branch i's answer (NULL when it has no
 * try, or an empty or non-JSON body).  When a try is refused or its outcome
 * unknown, every such outcome is recorded and the transaction starts
 * cancelling; then TC001 or TC002 names the first such branch.
 */
void
TccTriesRun(pg_uuid_t *gid, TccBranchSpec *specs, int n, int first,
			TccTrace *trace, Datum *bodies, bool *nulls)
{
	TccCall   **calls = palloc0(sizeof(TccCall *) * n);
	int		   *index = palloc(sizeof(int) * n);
	int			ncalls = 0;
	MemoryContext cxt = CurrentMemoryContext;
	TccCall    *failed = NULL;
	int			failed_i = -1;
	TccCall   **done = palloc(sizeof(TccCall *) * n);
	int			ndone = 0;

	for (int i = 0; i < n; i++)
	{
		TccCall    *call;

		nulls[i] = true;
		bodies[i] = (Datum) 0;
		if (specs[i].urls[0] == NULL)
			continue;
		call = palloc0(sizeof(TccCall));
		call->gid = *gid;
		call->branch = first + i;
		call->op = TCC_OP_TRY;
		call->url = specs[i].urls[0];
		call->payload = specs[i].payload;
		call->payload_len = strlen(specs[i].payload);
		call->headers = specs[i].headers;
		call->nheaders = specs[i].nheaders;
		call->protocol = specs[i].protocol;
		call->timeout_ms = specs[i].timeout_ms > 0 ?
			specs[i].timeout_ms : tcc_request_timeout;
		call->trace = *trace;
		index[ncalls] = i;
		calls[ncalls++] = call;
	}
	if (ncalls == 0)
		return;
	/* a try to a paused destination is not sent: its outcome is unknown */
	HoldPaused(calls, ncalls);

	PG_TRY();
	{
		TccHttpTryAll(calls, ncalls);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		HOLD_INTERRUPTS();
		ReportInterrupted(calls, ncalls);
		RESUME_INTERRUPTS();
		PG_RE_THROW();
	}
	PG_END_TRY();

	for (int c = 0; c < ncalls; c++)
	{
		if (calls[c]->answer != TCC_ANSWER_DONE)
			continue;
		done[ndone++] = calls[c];
		bodies[index[c]] = ParseBody(calls[c], &nulls[index[c]]);
	}
	/* before a failure is handed over: it starts the cancels */
	HandAnswers(gid, specs, calls, index, ncalls, bodies, nulls);
	for (int c = 0; c < ncalls; c++)
	{
		TccCall    *call = calls[c];
		StringInfoData msg;
		TccReply	reply;

		if (call->answer == TCC_ANSWER_DONE)
			continue;
		initStringInfo(&msg);
		TryFailedMsg(&msg, call, call->answer == TCC_ANSWER_REFUSED ?
					 "refused" : "unknown");
		TccRequestSubmit(TCC_REQ_TRY_FAILED, &msg, &reply);
		if (failed == NULL)
		{
			failed = call;
			failed_i = index[c];
		}
	}
	TccStoreTried(done, ndone);
	if (failed == NULL)
		return;

	if (failed->answer == TCC_ANSWER_REFUSED)
		ereport(ERROR,
				(errcode(ERRCODE_TCC_TRY_REFUSED),
				 errmsg("try of %s refused by the participant",
						BranchLabel(failed->branch, specs[failed_i].name)),
				 errdetail("Global transaction %s is being cancelled.",
						   TccGidText(gid))));
	ereport(ERROR,
			(errcode(ERRCODE_TCC_TRY_UNKNOWN),
			 errmsg("outcome of the try of %s is unknown: %s",
					BranchLabel(failed->branch, specs[failed_i].name),
					failed->error),
			 errdetail("Global transaction %s is being cancelled.",
					   TccGidText(gid))));
}
