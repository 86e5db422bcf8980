/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL API: tcc_begin, tcc_branch, tcc_branches, tcc_run, tcc_finish,
 *	  tcc_wait, tcc_retry and tcc_resolve, run in the initiator's backend.
 *
 * tcc_begin and tcc_branch hand their intent to the worker and wait until
 * it is durable (request.c), so it survives the caller's ROLLBACK (R1).
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
PG_FUNCTION_INFO_V1(tcc_branches);
PG_FUNCTION_INFO_V1(tcc_run);
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

/* One branch as the caller describes it, checked. */
typedef struct BranchSpec
{
	char	   *urls[3];		/* try, confirm, cancel; NULL if absent */
	char	   *payload;
	char	   *name;
	char	  **headers;
	int			nheaders;
	TccProtocol protocol;
} BranchSpec;

/* Checks what every branch needs: a URL at least, a payload within limits. */
static void
CheckBranch(BranchSpec *spec)
{
	if (!spec->urls[0] && !spec->urls[1] && !spec->urls[2])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a branch needs at least one of try_url, confirm_url and cancel_url")));
	if (spec->payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload must not be null"),
				 errhint("Pass '{}' for an empty payload.")));
	TccValidatePayload(strlen(spec->payload));
	if (spec->name && strlen(spec->name) > TCC_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("name is longer than %d bytes", TCC_MAX_NAME)));
}

/* Appends branches to a request to the worker. */
static void
EncodeBranches(StringInfo msg, BranchSpec *specs, int n)
{
	TccMsgPutInt64(msg, n);
	for (int b = 0; b < n; b++)
	{
		BranchSpec *spec = &specs[b];

		for (int i = 0; i < 3; i++)
			TccMsgPutText(msg, spec->urls[i],
						  spec->urls[i] ? strlen(spec->urls[i]) : 0);
		TccMsgPutText(msg, spec->payload, strlen(spec->payload));
		TccMsgPutText(msg, spec->name, spec->name ? strlen(spec->name) : 0);
		TccMsgPutInt64(msg, spec->nheaders);
		for (int i = 0; i < spec->nheaders; i++)
			TccMsgPutText(msg, spec->headers[i], strlen(spec->headers[i]));
		TccMsgPutInt64(msg, spec->protocol);
	}
}

/*
 * Creates a global transaction: hands the intent to the worker and waits
 * until it is durable.  timeout_ms -1 means tcc.default_timeout.  The n
 * branches in specs, if any, are recorded in the same request, and so the
 * same commit (tcc_run).
 */
static pg_uuid_t *
BeginGtx(int64 timeout_ms, char *kind, char *key, bool parallel,
		 BranchSpec *specs, int n)
{
	pg_uuid_t  *gid;
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
	if (n > 0)
		EncodeBranches(&msg, specs, n);
	WatchTransaction();
	began_in_xact = true;
	TccSubmit(TCC_REQ_BEGIN, &msg, &reply);
	return gid;
}

/*
 * Reads tcc_begin's arguments, from argument first on, and begins, with
 * the n branches in specs.
 */
static pg_uuid_t *
BeginFromArgs(FunctionCallInfo fcinfo, int first, BranchSpec *specs, int n)
{
	int64		timeout_ms = -1;

	if (!PG_ARGISNULL(first))
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(first);

		TccValidateTimeout(timeout, "timeout");
		timeout_ms = TccIntervalMs(timeout);
	}
	return BeginGtx(timeout_ms,
					GetName(fcinfo, first + 1, "kind"),
					GetName(fcinfo, first + 2, "business_key"),
					PG_ARGISNULL(first + 3) ? false : PG_GETARG_BOOL(first + 3),
					specs, n);
}

/* tcc_begin(timeout, kind, business_key, parallel): starts a global transaction. */
Datum
tcc_begin(PG_FUNCTION_ARGS)
{
	TccRequireCoordinator();
	PG_RETURN_UUID_P(BeginFromArgs(fcinfo, 0, NULL, 0));
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
 * Records branches of one gid durably, in one request to the worker and
 * so one commit (R1 of docs/guarantees.md for all of them before the
 * first try).  The worker checks that the gid exists, is ours and is
 * undecided.  Returns the first branch's number; the others follow it.
 */
static int
RegisterBranches(pg_uuid_t *gid, BranchSpec *specs, int n)
{
	StringInfoData msg;
	TccReply	reply;

	initStringInfo(&msg);
	TccMsgPutText(&msg, (char *) gid->data, UUID_LEN);
	TccMsgPutInt64(&msg, GetUserId());
	TccMsgPutInt64(&msg, superuser());
	EncodeBranches(&msg, specs, n);
	TccSubmit(TCC_REQ_BRANCH, &msg, &reply);
	return reply.branch;
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
static void
TryBranches(pg_uuid_t *gid, BranchSpec *specs, int n, int first,
			Datum *bodies, bool *nulls)
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
		call->timeout_ms = tcc_request_timeout;
		index[ncalls] = i;
		calls[ncalls++] = call;
	}
	if (ncalls == 0)
		return;

	PG_TRY();
	{
		TccHttpTryAll(calls, ncalls);
	}
	PG_CATCH();
	{
		/* interrupted: the outcome is unknown, so the gid must cancel */
		StringInfoData msg;

		MemoryContextSwitchTo(cxt);
		strlcpy(calls[0]->error, "try interrupted", sizeof(calls[0]->error));
		initStringInfo(&msg);
		TryFailedMsg(&msg, calls[0], "unknown");
		TccSubmitNoWait(TCC_REQ_TRY_FAILED, &msg);
		PG_RE_THROW();
	}
	PG_END_TRY();

	for (int c = 0; c < ncalls; c++)
	{
		TccCall    *call = calls[c];
		StringInfoData msg;
		TccReply	reply;

		if (call->answer == TCC_ANSWER_DONE)
		{
			done[ndone++] = call;
			bodies[index[c]] = ParseBody(call, &nulls[index[c]]);
			continue;
		}
		initStringInfo(&msg);
		TryFailedMsg(&msg, call, call->answer == TCC_ANSWER_REFUSED ?
					 "refused" : "unknown");
		TccSubmit(TCC_REQ_TRY_FAILED, &msg, &reply);
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

/*
 * tcc_branch(gid, try_url, confirm_url, cancel_url, payload, name, headers,
 * protocol): records the branch durably, then calls its try and returns
 * the answer.
 */
Datum
tcc_branch(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	static const char *const url_names[3] = {"try_url", "confirm_url", "cancel_url"};
	BranchSpec	spec;
	Jsonb	   *payload_jb;
	int			branch;
	Datum		body;
	bool		body_null;

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	memset(&spec, 0, sizeof(spec));
	for (int i = 0; i < 3; i++)
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
	CheckBranch(&spec);
	spec.name = GetName(fcinfo, 5, "name");
	if (!PG_ARGISNULL(6))
		spec.headers = TccValidateHeaders(PG_GETARG_DATUM(6), &spec.nheaders);
	spec.protocol = TCC_PROTOCOL_TCC;
	if (PG_NARGS() > 7 && !PG_ARGISNULL(7))
		spec.protocol = TccProtocolFromName(text_to_cstring(PG_GETARG_TEXT_PP(7)));

	branch = RegisterBranches(gid, &spec, 1);
	TryBranches(gid, &spec, 1, branch, &body, &body_null);
	if (body_null)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(body);
}

/* Error context of tcc_branches: which element of the array is wrong. */
static void
ElementContext(void *arg)
{
	errcontext("element %d of branches", *(int *) arg + 1);
}

/* Returns a JSON string value as a C string, NULL for JSON null. */
static char *
JsonText(JsonbValue *v, const char *key)
{
	if (v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must be a string or null", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Reads one element of tcc_branches' array into spec, checked. */
static void
ParseBranchElement(JsonbValue *elem, BranchSpec *spec)
{
	static const char *const url_keys[3] = {"try", "confirm", "cancel"};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	memset(spec, 0, sizeof(BranchSpec));
	spec->payload = "{}";
	spec->protocol = TCC_PROTOCOL_TCC;
	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("each branch must be a JSON object")));

	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "try") == 0 || strcmp(key, "confirm") == 0 ||
			strcmp(key, "cancel") == 0)
		{
			int			u = key[0] == 't' ? 0 : key[1] == 'o' ? 1 : 2;

			spec->urls[u] = JsonText(&v, url_keys[u]);
			if (spec->urls[u])
				TccValidateUrl(spec->urls[u], url_keys[u]);
		}
		else if (strcmp(key, "payload") == 0)
		{
			Jsonb	   *jb;

			if (v.type == jbvNull)
				spec->payload = NULL;
			else
			{
				jb = JsonbValueToJsonb(&v);
				spec->payload = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
			}
		}
		else if (strcmp(key, "name") == 0)
			spec->name = JsonText(&v, "name");
		else if (strcmp(key, "headers") == 0)
		{
			if (v.type != jbvNull)
				spec->headers = TccValidateHeaders(JsonbPGetDatum(JsonbValueToJsonb(&v)),
												   &spec->nheaders);
		}
		else if (strcmp(key, "protocol") == 0)
		{
			char	   *name = JsonText(&v, "protocol");

			if (name == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("protocol must be tcc or dtm")));
			spec->protocol = TccProtocolFromName(name);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%s\" in a branch", key),
					 errhint("The keys are try, confirm, cancel, payload, name, headers and protocol.")));
	}
	CheckBranch(spec);
}

/*
 * Reads and checks tcc_branches' array; returns the branches and sets n.
 * Nothing is written and no call made unless every element is valid.
 */
static BranchSpec *
ParseBranches(Jsonb *branches, int *n)
{
	BranchSpec *specs;
	ErrorContextCallback context;
	int			i = 0;

	if (!JB_ROOT_IS_ARRAY(branches) || JB_ROOT_IS_SCALAR(branches))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("branches must be a JSON array of objects")));
	*n = JB_ROOT_COUNT(branches);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("branches must not be empty")));
	if (*n > tcc_max_branches_per_call)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d branches are allowed in one call",
						tcc_max_branches_per_call),
				 errhint("See tcc.max_branches_per_call.")));

	specs = palloc(sizeof(BranchSpec) * *n);
	context.callback = ElementContext;
	context.arg = &i;
	context.previous = error_context_stack;
	error_context_stack = &context;
	for (i = 0; i < *n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&branches->root, i);

		ParseBranchElement(elem, &specs[i]);
	}
	error_context_stack = context.previous;
	return specs;
}

/*
 * Calls the tries of registered branches, numbered from first on, all at
 * once, and returns the answers as a JSON array in branch order.
 */
static Datum
RunBranches(pg_uuid_t *gid, BranchSpec *specs, int n, int first)
{
	Datum	   *bodies;
	bool	   *nulls;
	JsonbParseState *state = NULL;
	JsonbValue *result;

	bodies = palloc(sizeof(Datum) * n);
	nulls = palloc(sizeof(bool) * n);
	TryBranches(gid, specs, n, first, bodies, nulls);

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
	BranchSpec *specs;
	int			n;

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	RequireArg(fcinfo, 1, "branches");
	specs = ParseBranches(PG_GETARG_JSONB_P(1), &n);
	PG_RETURN_DATUM(RunBranches(gid, specs, n,
								RegisterBranches(gid, specs, n)));
}

/*
 * Decides a global transaction as part of the caller's transaction;
 * returns 'confirming' or 'cancelling'.
 */
static const char *
FinishGtx(pg_uuid_t *gid, bool commit)
{
	TccGtxInfo	info;

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
			return commit ? "confirming" : "cancelling";
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

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	RequireArg(fcinfo, 1, "commit");
	PG_RETURN_TEXT_P(cstring_to_text(FinishGtx(gid, PG_GETARG_BOOL(1))));
}

/*
 * tcc_run(branches, timeout, kind, business_key, parallel): begins, tries
 * every branch at once and decides confirm in the caller's transaction, so
 * that the caller's COMMIT confirms (R2 of docs/guarantees.md).  Returns
 * (gid, responses).
 */
Datum
tcc_run(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;
	BranchSpec *specs;
	int			n;
	Datum		responses;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	TccRequireCoordinator();
	RequireArg(fcinfo, 0, "branches");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "tcc_run must return a record");
	/* a bad array is refused before anything is written */
	specs = ParseBranches(PG_GETARG_JSONB_P(0), &n);
	/* one request, one commit: the transaction and all its branches */
	gid = BeginFromArgs(fcinfo, 1, specs, n);
	responses = RunBranches(gid, specs, n, 1);
	(void) FinishGtx(gid, true);
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

/*
 * Checks that an operator action applies to a gid in phase two.  Returns
 * false, with a NOTICE, when the transaction is already final: it settled
 * between the operator's look and the action, which is no error (so that
 * "SELECT tcc_retry(gid) FROM tcc.pending" cannot fail as a whole).
 */
static bool
CheckActionable(pg_uuid_t *gid, const char *action, bool undecided_ok)
{
	TccGtxInfo	info;
	const char *status;

	GetOwnGtx(gid, &info);
	status = ShownStatus(&info);
	if (IsFinal(status))
	{
		ereport(NOTICE,
				(errmsg("global transaction %s is already %s, nothing to %s",
						TccGidText(gid), status, action)));
		return false;
	}
	if (!undecided_ok && strcmp(status, "trying") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_TCC_BAD_DECISION),
				 errmsg("cannot %s global transaction %s: it is not decided yet",
						action, TccGidText(gid))));
	return true;
}

/* tcc_retry(gid): makes pending calls due now; a failed transaction resumes. */
Datum
tcc_retry(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *gid;

	TccRequireCoordinator();
	gid = GetGid(fcinfo, 0);
	if (!CheckActionable(gid, "retry", false))
		PG_RETURN_VOID();
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
	if (!CheckActionable(gid, "resolve", true))
		PG_RETURN_VOID();
	TccStoreAction(gid, "resolve", note);
	WatchTransaction();
	wake_at_commit = true;
	PG_RETURN_VOID();
}
