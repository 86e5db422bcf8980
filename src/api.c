/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL API: tcc_begin, tcc_branch, tcc_finish, tcc_wait, tcc_retry and
 *	  tcc_resolve, run in the initiator's backend.
 *
 * tcc_begin and tcc_branch hand their intent to the worker and wait until
 * it is durable (request.c), so it survives the caller's ROLLBACK (R1).
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

#include "access/xact.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "tcc.h"

PG_FUNCTION_INFO_V1(tcc_begin);
PG_FUNCTION_INFO_V1(tcc_branch);
PG_FUNCTION_INFO_V1(tcc_finish);
PG_FUNCTION_INFO_V1(tcc_wait);
PG_FUNCTION_INFO_V1(tcc_retry);
PG_FUNCTION_INFO_V1(tcc_resolve);

/* what the current transaction must tell the worker when it ends */
static bool callback_registered = false;
static bool wake_at_commit = false;
static bool began_in_xact = false;
static bool finished_in_xact = false;

/* gids this transaction decided; ndecided counts past the array's end */
static pg_uuid_t decided[TCC_DECIDED_PER_XACT];
static int	ndecided = 0;

/*
 * Wakes the worker when a transaction that decided commits (no polling
 * delay), handing it the gids decided, and when one that began a global
 * transaction (R3) or took a gid's lock in tcc_finish aborts: the worker
 * waits for that lock without polling.  A prepared transaction's decisions
 * are found by the worker's own look every second once COMMIT PREPARED has
 * run.
 */
static void
TccXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (ndecided > 0)
				TccHandDecided(decided, ndecided);
			if (wake_at_commit)
				TccWakeWorker(true, false);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* a gid we began, or whose lock we held, can be cancelled now */
			if (began_in_xact || finished_in_xact)
				TccWakeWorker(false, true);
			break;
		case XACT_EVENT_PREPARE:
			break;
		default:
			return;
	}
	wake_at_commit = false;
	began_in_xact = false;
	finished_in_xact = false;
	ndecided = 0;
}

/* Registers the transaction callback once per backend. */
static void
WatchTransaction(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(TccXactCallback, NULL);
		callback_registered = true;
	}
}

/* Sets tag to the lock tag of a gid. */
static void
GidLockTag(pg_uuid_t *gid, LOCKTAG *tag)
{
	uint64		a;
	uint64		b;
	uint64		key;

	memcpy(&a, gid->data, sizeof(a));
	memcpy(&b, gid->data + sizeof(a), sizeof(b));
	key = a ^ b;
	/* field4 0x7463 ("tc") keeps these apart from user advisory locks */
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (key >> 32),
						 (uint32) key, 0x7463);
}

/*
 * Takes the lock that serialises decisions on a gid, until the end of the
 * current transaction.  With wait false, returns false if it is held.
 */
bool
TccLockGid(pg_uuid_t *gid, bool wait)
{
	LOCKTAG		tag;

	GidLockTag(gid, &tag);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/* Gives back one TccLockGid of this transaction (the lock is counted). */
void
TccUnlockGid(pg_uuid_t *gid)
{
	LOCKTAG		tag;

	GidLockTag(gid, &tag);
	(void) LockRelease(&tag, ExclusiveLock, false);
}

/* Returns a gid as text, for messages. */
char *
TccGidText(pg_uuid_t *gid)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(gid)));
}

/* Raises 22023 if argument n, called name, is NULL. */
static void
RequireArg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", name)));
}

/* Returns argument n as a gid; NULL is an error. */
static pg_uuid_t *
GetGid(FunctionCallInfo fcinfo, int n)
{
	RequireArg(fcinfo, n, "gid");
	return PG_GETARG_UUID_P(n);
}

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

/* Returns the status as the views show it. */
static const char *
ShownStatus(TccGtxInfo *info)
{
	if (strcmp(info->status, "trying") == 0 && info->decided)
		return info->decision ? "confirming" : "cancelling";
	return info->status;
}

/* Returns true for the final states. */
static bool
IsFinal(const char *status)
{
	return strcmp(status, "confirmed") == 0 ||
		strcmp(status, "cancelled") == 0 ||
		strcmp(status, "resolved") == 0;
}

/*
 * Reads a gid for its owner: TC004 if unknown, 42501 if it belongs to
 * another role and the caller is not superuser.
 */
static void
GetOwnGtx(pg_uuid_t *gid, TccGtxInfo *info)
{
	if (!TccStoreGetGtx(gid, info))
		ereport(ERROR,
				(errcode(ERRCODE_TCC_UNKNOWN_GID),
				 errmsg("global transaction %s does not exist", TccGidText(gid))));
	if (info->owner != GetUserId() && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("global transaction %s belongs to another role",
						TccGidText(gid))));
}

/* tcc_begin(timeout, kind, business_key, parallel): starts a global transaction. */
Datum
tcc_begin(PG_FUNCTION_ARGS)
{
	int64		timeout_ms = tcc_default_timeout;
	char	   *kind;
	char	   *key;
	bool		parallel;
	pg_uuid_t  *gid;
	StringInfoData msg;
	TccReply	reply;

	TccRequireCoordinator();
	/* before GetTopFullTransactionId, which fails on a standby with XX000 */
	TccDurableRequirePrimary();
	if (!PG_ARGISNULL(0))
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(0);

		TccValidateTimeout(timeout, "timeout");
		timeout_ms = TccIntervalMs(timeout);
	}
	kind = GetName(fcinfo, 1, "kind");
	key = GetName(fcinfo, 2, "business_key");
	if (key != NULL && kind == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("business_key needs a kind"),
				 errhint("A business key is unique together with its kind.")));
	parallel = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);

	gid = palloc(sizeof(pg_uuid_t));
	if (!pg_strong_random(gid->data, UUID_LEN))
		elog(ERROR, "could not generate a random gid");
	gid->data[6] = (gid->data[6] & 0x0F) | 0x40;
	gid->data[8] = (gid->data[8] & 0x3F) | 0x80;

	initStringInfo(&msg);
	TccMsgPutText(&msg, (char *) gid->data, UUID_LEN);
	TccMsgPutInt64(&msg, GetUserId());
	TccMsgPutInt64(&msg, GetCurrentTimestamp() + timeout_ms * 1000);
	TccMsgPutInt64(&msg, (int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	TccMsgPutText(&msg, kind, kind ? strlen(kind) : 0);
	TccMsgPutText(&msg, key, key ? strlen(key) : 0);
	TccMsgPutInt64(&msg, parallel);
	WatchTransaction();
	began_in_xact = true;
	TccSubmit(TCC_REQ_BEGIN, &msg, &reply);

	PG_RETURN_UUID_P(gid);
}

/* Encodes a TRY_FAILED request for a call with the given branch status. */
static void
TryFailedMsg(StringInfo msg, TccCall *call, const char *status)
{
	TccMsgPutText(msg, (char *) call->gid.data, UUID_LEN);
	TccMsgPutInt64(msg, call->branch);
	TccMsgPutText(msg, status, strlen(status));
	TccMsgPutInt64(msg, call->http_status);
	TccMsgPutText(msg, call->error, strlen(call->error));
	TccMsgPutInt64(msg, call->started_at);
	TccMsgPutInt64(msg, (int64) (call->duration_ms * 1000.0));
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
 * valid UTF-8 or not JSON (SPEC section 11: jsonb_in does not check the
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
 * tcc_branch(gid, try_url, confirm_url, cancel_url, payload, name, headers):
 * records the branch durably, then calls its try and returns the answer.
 */
Datum
tcc_branch(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	char	   *urls[3] = {NULL, NULL, NULL};
	static const char *const url_names[3] = {"try_url", "confirm_url", "cancel_url"};
	Jsonb	   *payload_jb;
	char	   *payload;
	char	   *name;
	char	  **headers = NULL;
	int			nheaders = 0;
	StringInfoData msg;
	TccReply	reply;
	TccCall		call;
	MemoryContext cxt = CurrentMemoryContext;
	Datum		body;
	bool		body_null;

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	for (int i = 0; i < 3; i++)
	{
		if (PG_ARGISNULL(i + 1))
			continue;
		urls[i] = text_to_cstring(PG_GETARG_TEXT_PP(i + 1));
		TccValidateUrl(urls[i], url_names[i]);
	}
	if (!urls[0] && !urls[1] && !urls[2])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a branch needs at least one of try_url, confirm_url and cancel_url")));
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload must not be null"),
				 errhint("Pass '{}' for an empty payload.")));
	payload_jb = PG_GETARG_JSONB_P(4);
	payload = JsonbToCString(NULL, &payload_jb->root, VARSIZE(payload_jb));
	TccValidatePayload(strlen(payload));
	name = GetName(fcinfo, 5, "name");
	if (!PG_ARGISNULL(6))
		headers = TccValidateHeaders(PG_GETARG_DATUM(6), &nheaders);

	/*
	 * R1: the branch and its cancel URL are durable before the try.  The
	 * worker checks that the gid exists, is ours and is undecided.
	 */
	initStringInfo(&msg);
	TccMsgPutText(&msg, (char *) gid->data, UUID_LEN);
	TccMsgPutInt64(&msg, GetUserId());
	TccMsgPutInt64(&msg, superuser());
	for (int i = 0; i < 3; i++)
		TccMsgPutText(&msg, urls[i], urls[i] ? strlen(urls[i]) : 0);
	TccMsgPutText(&msg, payload, strlen(payload));
	TccMsgPutText(&msg, name, name ? strlen(name) : 0);
	TccMsgPutInt64(&msg, nheaders);
	for (int i = 0; i < nheaders; i++)
		TccMsgPutText(&msg, headers[i], strlen(headers[i]));
	TccSubmit(TCC_REQ_BRANCH, &msg, &reply);

	if (urls[0] == NULL)
		PG_RETURN_NULL();

	memset(&call, 0, sizeof(call));
	call.gid = *gid;
	call.branch = reply.branch;
	call.op = TCC_OP_TRY;
	call.url = urls[0];
	call.payload = payload;
	call.payload_len = strlen(payload);
	call.headers = headers;
	call.nheaders = nheaders;
	call.timeout_ms = tcc_request_timeout;
	PG_TRY();
	{
		TccHttpTry(&call);
	}
	PG_CATCH();
	{
		/* interrupted: the outcome is unknown, so the gid must cancel */
		StringInfoData failed;

		MemoryContextSwitchTo(cxt);
		strlcpy(call.error, "try interrupted", sizeof(call.error));
		initStringInfo(&failed);
		TryFailedMsg(&failed, &call, "unknown");
		TccSubmitNoWait(TCC_REQ_TRY_FAILED, &failed);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (call.http_status >= 200 && call.http_status <= 299)
	{
		TccStoreTried(&call);
		body = ParseBody(&call, &body_null);
		if (body_null)
			PG_RETURN_NULL();
		PG_RETURN_DATUM(body);
	}

	resetStringInfo(&msg);
	TryFailedMsg(&msg, &call, call.http_status == 409 ? "refused" : "unknown");
	TccSubmit(TCC_REQ_TRY_FAILED, &msg, &reply);
	if (call.http_status == 409)
		ereport(ERROR,
				(errcode(ERRCODE_TCC_TRY_REFUSED),
				 errmsg("try of branch %d refused by the participant", call.branch),
				 errdetail("Global transaction %s is being cancelled.",
						   TccGidText(gid))));
	ereport(ERROR,
			(errcode(ERRCODE_TCC_TRY_UNKNOWN),
			 errmsg("outcome of the try of branch %d is unknown: %s",
					call.branch, call.error),
			 errdetail("Global transaction %s is being cancelled.",
					   TccGidText(gid))));
	PG_RETURN_NULL();
}

/*
 * tcc_finish(gid, commit): decides, as part of the caller's transaction.
 * Returns 'confirming' or 'cancelling'.
 */
Datum
tcc_finish(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	bool		commit;
	TccGtxInfo	info;

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	RequireArg(fcinfo, 1, "commit");
	commit = PG_GETARG_BOOL(1);

	/*
	 * Owner first: a role that may not decide this gid never takes its lock,
	 * so it cannot hold up the owner's tcc_branch.  Then the lock, held until
	 * our transaction ends (the worker cannot decide meanwhile), and the gid
	 * read again as it is now.
	 */
	GetOwnGtx(gid, &info);
	WatchTransaction();
	finished_in_xact = true;
	(void) TccLockGid(gid, true);
	GetOwnGtx(gid, &info);

	if (info.decided)
	{
		if (info.decision == commit)
			PG_RETURN_TEXT_P(cstring_to_text(commit ? "confirming" : "cancelling"));
		ereport(ERROR,
				(errcode(ERRCODE_TCC_BAD_DECISION),
				 errmsg("global transaction %s is already %s",
						TccGidText(gid), ShownStatus(&info)),
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
	WatchTransaction();
	if (ndecided < TCC_DECIDED_PER_XACT)
		decided[ndecided] = *gid;
	ndecided++;
	PG_RETURN_TEXT_P(cstring_to_text(commit ? "confirming" : "cancelling"));
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

		GetOwnGtx(gid, &info);
		status = ShownStatus(&info);
		left = (long) ((until - GetCurrentTimestamp()) / 1000);
		if (IsFinal(status) || strcmp(status, "failed") == 0 || left <= 0)
			return pstrdup(status);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, 1000), PG_WAIT_EXTENSION);
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

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	RequireArg(fcinfo, 1, "timeout");
	timeout = PG_GETARG_INTERVAL_P(1);
	TccValidateTimeout(timeout, "timeout");
	until = GetCurrentTimestamp() + TccIntervalMs(timeout) * 1000;

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

/* Checks that an operator action applies to a gid in phase two. */
static void
CheckActionable(pg_uuid_t *gid, const char *action, bool undecided_ok)
{
	TccGtxInfo	info;
	const char *status;

	GetOwnGtx(gid, &info);
	status = ShownStatus(&info);
	if (IsFinal(status))
		ereport(ERROR,
				(errcode(ERRCODE_TCC_BAD_DECISION),
				 errmsg("cannot %s global transaction %s: it is already %s",
						action, TccGidText(gid), status)));
	if (!undecided_ok && strcmp(status, "trying") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_TCC_BAD_DECISION),
				 errmsg("cannot %s global transaction %s: it is not decided yet",
						action, TccGidText(gid))));
}

/* tcc_retry(gid): makes pending calls due now; a failed transaction resumes. */
Datum
tcc_retry(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	CheckActionable(gid, "retry", false);
	TccStoreAction(gid, "retry", NULL);
	WatchTransaction();
	wake_at_commit = true;
	PG_RETURN_VOID();
}

/* tcc_resolve(gid, note): a person settled it by hand; no more calls. */
Datum
tcc_resolve(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	char	   *note;

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("note must not be null"),
				 errhint("Say how the transaction was settled.")));
	note = text_to_cstring(PG_GETARG_TEXT_PP(1));
	CheckActionable(gid, "resolve", true);
	TccStoreAction(gid, "resolve", note);
	WatchTransaction();
	wake_at_commit = true;
	PG_RETURN_VOID();
}
