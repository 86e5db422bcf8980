/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The coordinator's table access: every SPI statement on tcc.* tables.
 *
 * Two kinds of callers, two disciplines:
 *
 * - The initiator's backend only ever INSERTs (_decision, _try, _action),
 *   in its own transaction, and reads with the latest snapshot rather than
 *   its transaction snapshot.  A caller at REPEATABLE READ or SERIALIZABLE
 *   therefore sees rows the worker committed after its snapshot was taken,
 *   and never tries to UPDATE a row it cannot see (rule R2).  It switches to
 *   the tables' owner and a pinned search_path for the duration.
 *
 * - The worker owns every UPDATE.  Each global transaction moves through its
 *   states in one function per transition, named for it.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/procarray.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "tcc.h"

/* A statement prepared once per process and kept. */
typedef struct Stmt
{
	const char *sql;
	int			nargs;
	Oid			types[8];
	SPIPlanPtr	plan;
} Stmt;

#define STMT(name, n, sql, ...) \
	static Stmt name = {sql, n, {__VA_ARGS__}, NULL}

/* Runs a statement; returns the SPI result code. */
static int
Exec(Stmt *st, Datum *values, const char *nulls, bool read_only)
{
	int			rc;

	if (st->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(st->sql, st->nargs, st->types);

		if (plan == NULL)
			elog(ERROR, "tcc: could not prepare \"%s\": %s",
				 st->sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		st->plan = plan;
	}
	rc = SPI_execute_plan(st->plan, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "tcc: could not run \"%s\": %s",
			 st->sql, SPI_result_code_string(rc));
	return rc;
}

/* Runs a read with the latest snapshot, seeing our own earlier writes. */
static void
ExecLatest(Stmt *st, Datum *values, const char *nulls)
{
	CommandCounterIncrement();
	PushActiveSnapshot(GetLatestSnapshot());
	Exec(st, values, nulls, true);
	PopActiveSnapshot();
}

/* Returns column col (1-based) of result row row. */
static Datum
Col(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

/* Returns a text datum for s, or sets the null flag. */
static Datum
TextOrNull(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* ---------------------------------------------------------------------
 * The caller's side
 * ---------------------------------------------------------------------
 */

/* Returns the owner of schema tcc, who owns the coordinator tables. */
static Oid
TablesOwner(void)
{
	Oid			nsp = get_namespace_oid("tcc", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Switches to the owner of the tcc tables and a pinned search_path, and
 * connects SPI: callers need no privilege on the tables, and no object of
 * theirs can stand in for one of ours.
 */
void
TccEnterOwner(TccOwnerScope *scope)
{
	GetUserIdAndSecContext(&scope->save_user, &scope->save_sec);
	SetUserIdAndSecContext(TablesOwner(),
						   scope->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	scope->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "tcc: SPI_connect failed");
}

/* Undoes TccEnterOwner. */
void
TccLeaveOwner(TccOwnerScope *scope)
{
	SPI_finish();
	AtEOXact_GUC(true, scope->nest);
	SetUserIdAndSecContext(scope->save_user, scope->save_sec);
}

STMT(get_gtx, 1,
	 "SELECT g.owner, g.status, d.commit, g.deadline, u.branch, u.name, u.status"
	 "  FROM tcc._gtx g LEFT JOIN tcc._decision d ON d.gid = g.gid"
	 "  LEFT JOIN LATERAL ("
	 "       SELECT b.branch, b.name,"
	 "              CASE WHEN b.status = 'registered' THEN 'not tried' ELSE b.status END"
	 "         FROM tcc._branch b"
	 "         LEFT JOIN tcc._try t ON t.gid = b.gid AND t.branch = b.branch"
	 "        WHERE b.gid = g.gid AND b.try_url IS NOT NULL"
	 "          AND (t.gid IS NULL OR b.status <> 'registered')"
	 "        ORDER BY b.branch LIMIT 1) u (branch, name, status) ON true"
	 " WHERE g.gid = $1",
	 UUIDOID);

/*
 * Reads a global transaction as it is now, whatever the caller's snapshot,
 * with the first branch whose try did not succeed (a confirm needs them
 * all).  Returns false if there is no such gid.
 */
bool
TccStoreGetGtx(pg_uuid_t *gid, TccGtxInfo *info)
{
	TccOwnerScope scope;
	Datum		args[1] = {UUIDPGetDatum(gid)};
	bool		found;

	memset(info, 0, sizeof(TccGtxInfo));
	TccEnterOwner(&scope);
	ExecLatest(&get_gtx, args, NULL);
	found = (SPI_processed > 0);
	if (found)
	{
		bool		isnull;
		Datum		d;

		info->owner = DatumGetObjectId(Col(0, 1, &isnull));
		text_to_cstring_buffer(DatumGetTextPP(Col(0, 2, &isnull)),
							   info->status, sizeof(info->status));
		info->decision = DatumGetBool(Col(0, 3, &info->decided));
		info->decided = !info->decided;
		info->deadline = DatumGetTimestampTz(Col(0, 4, &isnull));
		d = Col(0, 5, &isnull);
		if (!isnull)
		{
			info->untried = DatumGetInt32(d);
			d = Col(0, 6, &isnull);
			if (!isnull)
				text_to_cstring_buffer(DatumGetTextPP(d), info->untried_name,
									   sizeof(info->untried_name));
			text_to_cstring_buffer(DatumGetTextPP(Col(0, 7, &isnull)),
								   info->untried_status,
								   sizeof(info->untried_status));
		}
	}
	TccLeaveOwner(&scope);
	return found;
}

STMT(insert_decision, 4,
	 "INSERT INTO tcc._decision (gid, commit, source, decided_by)"
	 " VALUES ($1, $2, $3, $4)",
	 UUIDOID, BOOLOID, TEXTOID, OIDOID);

/*
 * Inserts the decision in the caller's transaction: it becomes durable
 * exactly when the caller commits (rule R2).  The caller holds the gid's
 * lock, so the worker cannot decide concurrently.
 */
void
TccStoreDecide(pg_uuid_t *gid, bool commit, const char *source)
{
	TccOwnerScope scope;
	Oid			user = GetUserId();
	Datum		args[4];

	args[0] = UUIDPGetDatum(gid);
	args[1] = BoolGetDatum(commit);
	args[2] = CStringGetTextDatum(source);
	args[3] = ObjectIdGetDatum(user);
	TccEnterOwner(&scope);
	Exec(&insert_decision, args, NULL, false);
	TccLeaveOwner(&scope);
}

STMT(insert_try, 6,
	 "INSERT INTO tcc._try (gid, branch, started_at, duration_ms, http_status, body)"
	 " VALUES ($1, $2, $3, $4, $5, $6)",
	 UUIDOID, INT4OID, TIMESTAMPTZOID, FLOAT8OID, INT4OID, TEXTOID);

/* Records a successful try in the caller's transaction. */
void
TccStoreTried(TccCall *call)
{
	TccOwnerScope scope;
	Datum		args[6];
	char		nulls[6] = "      ";
	bool		body_ok;

	body_ok = call->body != NULL &&
		memchr(call->body, '\0', call->body_len) == NULL &&
		pg_verifymbstr(call->body, call->body_len, true);

	args[0] = UUIDPGetDatum(&call->gid);
	args[1] = Int32GetDatum(call->branch);
	args[2] = TimestampTzGetDatum(call->started_at);
	args[3] = Float8GetDatum(call->duration_ms);
	args[4] = Int32GetDatum(call->http_status);
	if (body_ok)
		args[5] = PointerGetDatum(cstring_to_text_with_len(call->body,
														   call->body_len));
	else
		nulls[5] = 'n';
	TccEnterOwner(&scope);
	Exec(&insert_try, args, nulls, false);
	TccLeaveOwner(&scope);
}

STMT(insert_action, 4,
	 "INSERT INTO tcc._action (gid, action, note, actor) VALUES ($1, $2, $3, $4)",
	 UUIDOID, TEXTOID, TEXTOID, OIDOID);

/* Records an operator action; the worker applies it after commit. */
void
TccStoreAction(pg_uuid_t *gid, const char *action, const char *note)
{
	TccOwnerScope scope;
	Oid			user = GetUserId();
	Datum		args[4];
	char		nulls[4] = "    ";

	args[0] = UUIDPGetDatum(gid);
	args[1] = CStringGetTextDatum(action);
	args[2] = TextOrNull(note, &nulls[2]);
	args[3] = ObjectIdGetDatum(user);
	TccEnterOwner(&scope);
	Exec(&insert_action, args, nulls, false);
	TccLeaveOwner(&scope);
}

/* ---------------------------------------------------------------------
 * The worker's side
 * ---------------------------------------------------------------------
 */

/* Starts one short unit of worker work: a transaction with SPI. */
void
TccStoreBeginWork(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "tcc: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

/* Commits a unit of worker work and reports its statistics. */
void
TccStoreEndWork(void)
{
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

STMT(insert_gtx, 7,
	 "INSERT INTO tcc._gtx (gid, owner, kind, business_key, parallel, deadline, begin_xid)"
	 " VALUES ($1, $2, $3, $4, $5, $6, $7)"
	 " ON CONFLICT (kind, business_key) DO NOTHING",
	 UUIDOID, OIDOID, TEXTOID, TEXTOID, BOOLOID, TIMESTAMPTZOID, XID8OID);

/* Request BEGIN: creates a global transaction in state trying. */
static void
CreateGtx(StringInfo msg, TccReply *reply)
{
	const char *gid = TccMsgGetText(msg, NULL);
	Oid			owner = (Oid) TccMsgGetInt64(msg);
	TimestampTz deadline = (TimestampTz) TccMsgGetInt64(msg);
	FullTransactionId fxid = FullTransactionIdFromU64((uint64) TccMsgGetInt64(msg));
	const char *kind = TccMsgGetText(msg, NULL);
	const char *key = TccMsgGetText(msg, NULL);
	bool		parallel = TccMsgGetInt64(msg) != 0;
	Datum		args[7];
	char		nulls[7] = "       ";

	args[0] = UUIDPGetDatum(gid);
	args[1] = ObjectIdGetDatum(owner);
	args[2] = TextOrNull(kind, &nulls[2]);
	args[3] = TextOrNull(key, &nulls[3]);
	args[4] = BoolGetDatum(parallel);
	args[5] = TimestampTzGetDatum(deadline);
	args[6] = FullTransactionIdGetDatum(fxid);
	Exec(&insert_gtx, args, nulls, false);
	if (SPI_processed == 0)
	{
		reply->sqlerrcode = ERRCODE_UNIQUE_VIOLATION;
		snprintf(reply->message, sizeof(reply->message),
				 "a global transaction of kind \"%.60s\" with business key \"%.100s\" already exists",
				 kind, key);
	}
}

STMT(branch_target, 1,
	 "SELECT g.status, d.gid IS NOT NULL,"
	 "       (SELECT COALESCE(pg_catalog.max(b.branch), 0) + 1"
	 "          FROM tcc._branch b WHERE b.gid = g.gid),"
	 "       g.owner"
	 "  FROM tcc._gtx g LEFT JOIN tcc._decision d ON d.gid = g.gid"
	 " WHERE g.gid = $1",
	 UUIDOID);

STMT(insert_branch, 8,
	 "INSERT INTO tcc._branch (gid, branch, name, try_url, confirm_url, cancel_url, payload, headers)"
	 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	 UUIDOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID);

/* Returns a gid as text, for messages. */
static char *
GidText(pg_uuid_t *gid)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(gid)));
}

/*
 * Request BRANCH: records a branch, numbered after the existing ones, while
 * the transaction is still undecided and only for its owner (or a
 * superuser) -- rule R1: intent before effect.  The gid's lock keeps a
 * concurrent tcc_finish from deciding meanwhile.
 */
static void
RegisterBranch(StringInfo msg, TccReply *reply)
{
	pg_uuid_t  *gid = (pg_uuid_t *) TccMsgGetText(msg, NULL);
	Oid			user = (Oid) TccMsgGetInt64(msg);
	bool		is_super = TccMsgGetInt64(msg) != 0;
	Datum		args[8];
	char		nulls[8] = "        ";
	int			nheaders;
	bool		isnull;
	char	   *status;
	bool		decided;
	int			branch;

	if (!TccLockGid(gid, false))
	{
		reply->sqlerrcode = ERRCODE_TCC_BAD_DECISION;
		snprintf(reply->message, sizeof(reply->message),
				 "global transaction %s is being decided by another transaction",
				 GidText(gid));
		return;
	}
	args[0] = UUIDPGetDatum(gid);
	Exec(&branch_target, args, NULL, false);
	if (SPI_processed == 0)
	{
		reply->sqlerrcode = ERRCODE_TCC_UNKNOWN_GID;
		snprintf(reply->message, sizeof(reply->message),
				 "global transaction %s does not exist", GidText(gid));
		return;
	}
	if (DatumGetObjectId(Col(0, 4, &isnull)) != user && !is_super)
	{
		reply->sqlerrcode = ERRCODE_INSUFFICIENT_PRIVILEGE;
		snprintf(reply->message, sizeof(reply->message),
				 "global transaction %s belongs to another role", GidText(gid));
		return;
	}
	status = TextDatumGetCString(Col(0, 1, &isnull));
	decided = DatumGetBool(Col(0, 2, &isnull));
	branch = DatumGetInt32(Col(0, 3, &isnull));
	if (decided || strcmp(status, "trying") != 0)
	{
		reply->sqlerrcode = ERRCODE_TCC_BAD_DECISION;
		snprintf(reply->message, sizeof(reply->message),
				 "global transaction %s is already %s", GidText(gid),
				 decided && strcmp(status, "trying") == 0 ? "decided" : status);
		return;
	}

	args[1] = Int32GetDatum(branch);
	args[3] = TextOrNull(TccMsgGetText(msg, NULL), &nulls[3]);
	args[4] = TextOrNull(TccMsgGetText(msg, NULL), &nulls[4]);
	args[5] = TextOrNull(TccMsgGetText(msg, NULL), &nulls[5]);
	args[6] = CStringGetTextDatum(TccMsgGetText(msg, NULL));
	args[2] = TextOrNull(TccMsgGetText(msg, NULL), &nulls[2]);
	nheaders = (int) TccMsgGetInt64(msg);
	if (nheaders > 0)
	{
		Datum	   *lines = palloc(sizeof(Datum) * nheaders);

		for (int i = 0; i < nheaders; i++)
			lines[i] = CStringGetTextDatum(TccMsgGetText(msg, NULL));
		args[7] = PointerGetDatum(construct_array(lines, nheaders, TEXTOID,
												  -1, false, TYPALIGN_INT));
	}
	else
		nulls[7] = 'n';
	Exec(&insert_branch, args, nulls, false);
	reply->branch = branch;
}

STMT(insert_attempt, 7,
	 "INSERT INTO tcc._attempt (gid, branch, op, started_at, duration_ms, http_status, error)"
	 " VALUES ($1, $2, $3, $4, $5, $6, $7)",
	 UUIDOID, INT4OID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID, INT4OID, TEXTOID);

/* Appends one HTTP call to the attempt log. */
static void
LogAttempt(pg_uuid_t *gid, int branch, const char *op, TimestampTz started,
		   double duration_ms, int http_status, const char *error)
{
	Datum		args[7];
	char		nulls[7] = "       ";

	args[0] = UUIDPGetDatum(gid);
	args[1] = Int32GetDatum(branch);
	args[2] = CStringGetTextDatum(op);
	args[3] = TimestampTzGetDatum(started);
	args[4] = Float8GetDatum(duration_ms);
	args[5] = Int32GetDatum(http_status);
	if (http_status == 0)
		nulls[5] = 'n';
	args[6] = TextOrNull(error && error[0] ? error : NULL, &nulls[6]);
	Exec(&insert_attempt, args, nulls, false);
}

STMT(decide_cancel, 3,
	 "INSERT INTO tcc._decision (gid, commit, source, decided_by)"
	 " SELECT $1, false, $2, $3"
	 "  WHERE NOT EXISTS (SELECT 1 FROM tcc._decision d WHERE d.gid = $1)"
	 "    AND EXISTS (SELECT 1 FROM tcc._gtx g WHERE g.gid = $1 AND g.status = 'trying')",
	 UUIDOID, TEXTOID, OIDOID);

/*
 * trying -> cancelling, decided by the worker (deadline passed, the
 * beginning transaction aborted, or a try failed).  Only under the gid's
 * lock: a tcc_finish in a still-open transaction holds it, and then the
 * worker leaves the gid alone, so exactly one decision wins (rule R4).
 * Returns false when the lock was not free.
 */
static bool
DecideCancel(pg_uuid_t *gid, const char *source)
{
	Datum		args[3];

	if (!TccLockGid(gid, false))
		return false;
	args[0] = UUIDPGetDatum(gid);
	args[1] = CStringGetTextDatum(source);
	args[2] = ObjectIdGetDatum(GetUserId());
	Exec(&decide_cancel, args, NULL, false);
	return true;
}

STMT(mark_try_failed, 5,
	 "UPDATE tcc._branch SET status = $3, last_http_status = $4, last_error = $5"
	 " WHERE gid = $1 AND branch = $2 AND status = 'registered'",
	 UUIDOID, INT4OID, TEXTOID, INT4OID, TEXTOID);

/*
 * Request TRY_FAILED: registered -> refused or unknown, then the global
 * transaction is cancelled at once, without waiting for the caller.
 */
static void
RecordTryFailed(StringInfo msg, TccReply *reply)
{
	pg_uuid_t  *gid = (pg_uuid_t *) TccMsgGetText(msg, NULL);
	int			branch = (int) TccMsgGetInt64(msg);
	const char *status = TccMsgGetText(msg, NULL);
	int			http_status = (int) TccMsgGetInt64(msg);
	const char *error = TccMsgGetText(msg, NULL);
	TimestampTz started = (TimestampTz) TccMsgGetInt64(msg);
	double		duration_ms = (double) TccMsgGetInt64(msg) / 1000.0;
	Datum		args[5];
	char		nulls[5] = "     ";

	args[0] = UUIDPGetDatum(gid);
	args[1] = Int32GetDatum(branch);
	args[2] = CStringGetTextDatum(status);
	args[3] = Int32GetDatum(http_status);
	if (http_status == 0)
		nulls[3] = 'n';
	args[4] = TextOrNull(error, &nulls[4]);
	Exec(&mark_try_failed, args, nulls, false);
	LogAttempt(gid, branch, "try", started, duration_ms, http_status, error);
	(void) DecideCancel(gid, "try failed");
}

/*
 * Writes a batch of requests in the current transaction, each in its own
 * subtransaction so that one bad request cannot sink the others.  Returns
 * one reply per request.
 */
TccReply *
TccStoreRequests(List *requests)
{
	TccReply   *replies = palloc0(sizeof(TccReply) * Max(list_length(requests), 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, requests)
	{
		TccRequest *req = lfirst(lc);
		TccReply   *reply = &replies[i++];
		MemoryContext old = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(old);
		PG_TRY();
		{
			req->data.cursor = 0;
			switch (req->kind)
			{
				case TCC_REQ_BEGIN:
					CreateGtx(&req->data, reply);
					break;
				case TCC_REQ_BRANCH:
					RegisterBranch(&req->data, reply);
					break;
				case TCC_REQ_TRY_FAILED:
					RecordTryFailed(&req->data, reply);
					break;
			}
			if (reply->sqlerrcode != 0)
				RollbackAndReleaseCurrentSubTransaction();
			else
				ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(old);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(old);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(old);
			CurrentResourceOwner = owner;
			reply->sqlerrcode = edata->sqlerrcode;
			strlcpy(reply->message, edata->message, sizeof(reply->message));
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
	return replies;
}

STMT(reset_in_flight, 0,
	 "UPDATE tcc._branch SET in_flight = false, due_at = now() WHERE in_flight");

/*
 * Worker start: calls that were in flight when the previous worker stopped
 * are due again (rule R5: retries survive everything).
 */
void
TccStoreStartup(void)
{
	Exec(&reset_in_flight, NULL, NULL, false);
}

STMT(gtx_phase, 1,
	 "SELECT g.status, g.parallel, d.commit"
	 "  FROM tcc._gtx g JOIN tcc._decision d ON d.gid = g.gid"
	 " WHERE g.gid = $1",
	 UUIDOID);

STMT(pending_branches, 1,
	 "SELECT branch, due_at IS NOT NULL OR in_flight FROM tcc._branch"
	 " WHERE gid = $1 AND status NOT IN ('confirmed', 'cancelled', 'skipped')"
	 " ORDER BY branch",
	 UUIDOID);

STMT(finish_gtx, 2,
	 "UPDATE tcc._gtx SET status = $2, finished_at = now(), last_error = NULL"
	 " WHERE gid = $1",
	 UUIDOID, TEXTOID);

STMT(schedule_all, 1,
	 "UPDATE tcc._branch SET due_at = now()"
	 " WHERE gid = $1 AND status NOT IN ('confirmed', 'cancelled', 'skipped')"
	 "   AND due_at IS NULL AND NOT in_flight",
	 UUIDOID);

STMT(schedule_one, 2,
	 "UPDATE tcc._branch SET due_at = now() WHERE gid = $1 AND branch = $2",
	 UUIDOID, INT4OID);

/* Returns the status of a gid and its decision; false if it has none. */
static bool
GetPhase(pg_uuid_t *gid, char **status, bool *parallel, bool *commit)
{
	Datum		args[1] = {UUIDPGetDatum(gid)};
	bool		isnull;

	Exec(&gtx_phase, args, NULL, false);
	if (SPI_processed == 0)
		return false;
	*status = TextDatumGetCString(Col(0, 1, &isnull));
	*parallel = DatumGetBool(Col(0, 2, &isnull));
	*commit = DatumGetBool(Col(0, 3, &isnull));
	return true;
}

/*
 * Moves phase two of a gid forward: confirming -> confirmed or cancelling
 * -> cancelled once no branch is pending; otherwise makes the next branch
 * due (registration order for confirm, reverse for cancel), or every
 * pending branch when the transaction is parallel.  Invariant: a branch is
 * called only while its transaction is confirming or cancelling, and in
 * sequential mode only after every branch before it has finished.
 */
static void
Advance(pg_uuid_t *gid)
{
	Datum		args[2];
	char	   *status;
	bool		parallel;
	bool		commit;
	uint64		n;
	int			next;
	bool		scheduled;
	bool		isnull;

	if (!GetPhase(gid, &status, &parallel, &commit))
		return;
	if (strcmp(status, "confirming") != 0 && strcmp(status, "cancelling") != 0)
		return;

	args[0] = UUIDPGetDatum(gid);
	Exec(&pending_branches, args, NULL, false);
	n = SPI_processed;
	if (n == 0)
	{
		args[1] = CStringGetTextDatum(commit ? "confirmed" : "cancelled");
		Exec(&finish_gtx, args, NULL, false);
		return;
	}
	if (parallel)
	{
		Exec(&schedule_all, args, NULL, false);
		return;
	}
	next = DatumGetInt32(Col(commit ? 0 : n - 1, 1, &isnull));
	scheduled = DatumGetBool(Col(commit ? 0 : n - 1, 2, &isnull));
	if (!scheduled)
	{
		args[1] = Int32GetDatum(next);
		Exec(&schedule_one, args, NULL, false);
	}
}

STMT(decided_gtxs, 0,
	 "UPDATE tcc._gtx g"
	 "   SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END,"
	 "       begin_xid = NULL"
	 "  FROM tcc._decision d"
	 " WHERE d.gid = g.gid AND g.status = 'trying'"
	 " RETURNING g.gid, d.commit");

STMT(skip_branches, 2,
	 "UPDATE tcc._branch SET status = 'skipped'"
	 " WHERE gid = $1 AND status NOT IN ('confirmed', 'cancelled', 'skipped')"
	 "   AND CASE WHEN $2 THEN confirm_url IS NULL"
	 "            ELSE cancel_url IS NULL OR status = 'refused' END",
	 UUIDOID, BOOLOID);

/*
 * trying -> confirming or cancelling, for every gid whose decision has
 * committed.  Branches the phase does not call (no URL for it, or a refused
 * try when cancelling) become skipped; then phase two starts.
 */
static void
StartPhaseTwo(void)
{
	uint64		n;
	pg_uuid_t  *gids;
	bool	   *commits;

	Exec(&decided_gtxs, NULL, NULL, false);
	n = SPI_processed;
	if (n == 0)
		return;
	gids = palloc(sizeof(pg_uuid_t) * n);
	commits = palloc(sizeof(bool) * n);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		gids[i] = *DatumGetUUIDP(Col(i, 1, &isnull));
		commits[i] = DatumGetBool(Col(i, 2, &isnull));
	}
	for (uint64 i = 0; i < n; i++)
	{
		Datum		args[2] = {UUIDPGetDatum(&gids[i]), BoolGetDatum(commits[i])};

		Exec(&skip_branches, args, NULL, false);
		Advance(&gids[i]);
	}
}

STMT(undecided_gtxs, 0,
	 "SELECT g.gid, g.begin_xid, g.deadline <= now(),"
	 "       EXISTS (SELECT 1 FROM tcc._branch b"
	 "                WHERE b.gid = g.gid AND b.status IN ('refused', 'unknown'))"
	 "  FROM tcc._gtx g"
	 " WHERE g.status = 'trying'"
	 "   AND NOT EXISTS (SELECT 1 FROM tcc._decision d WHERE d.gid = g.gid)"
	 " ORDER BY g.deadline LIMIT 1000");

STMT(forget_begin_xid, 1,
	 "UPDATE tcc._gtx SET begin_xid = NULL WHERE gid = $1",
	 UUIDOID);

typedef enum XidOutcome
{
	XID_RUNNING,
	XID_COMMITTED,
	XID_ABORTED
} XidOutcome;

/*
 * Returns what became of the transaction that began a gid.  One too old to
 * look up counts as committed: only the deadline can cancel it then.
 */
static XidOutcome
BeginOutcome(FullTransactionId fxid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	TransactionId xid = XidFromFullTransactionId(fxid);

	if (U64FromFullTransactionId(next) - U64FromFullTransactionId(fxid) >
		(uint64) 1 << 30)
		return XID_COMMITTED;
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		return XID_COMMITTED;
	if (TransactionIdIsInProgress(xid))
		return XID_RUNNING;
	if (TransactionIdDidCommit(xid))
		return XID_COMMITTED;
	return XID_ABORTED;
}

/*
 * Cancels undecided transactions that can no longer confirm: the deadline
 * passed, a try failed, or the transaction that began it aborted (rule R3).
 * Transactions whose finish is in an open transaction are left alone.
 */
static void
CancelStuck(void)
{
	uint64		n;
	pg_uuid_t  *gids;
	const char **reasons;
	int			decided = 0;

	Exec(&undecided_gtxs, NULL, NULL, false);
	n = SPI_processed;
	if (n == 0)
		return;
	gids = palloc(sizeof(pg_uuid_t) * n);
	reasons = palloc0(sizeof(char *) * n);
	for (uint64 i = 0; i < n; i++)
	{
		bool		xid_null;
		bool		isnull;
		Datum		xid;

		gids[i] = *DatumGetUUIDP(Col(i, 1, &isnull));
		xid = Col(i, 2, &xid_null);
		if (DatumGetBool(Col(i, 3, &isnull)))
			reasons[i] = "deadline";
		else if (DatumGetBool(Col(i, 4, &isnull)))
			reasons[i] = "try failed";
		else if (!xid_null)
		{
			switch (BeginOutcome(DatumGetFullTransactionId(xid)))
			{
				case XID_RUNNING:
					break;
				case XID_ABORTED:
					reasons[i] = "aborted";
					break;
				case XID_COMMITTED:
					reasons[i] = "";
					break;
			}
		}
	}
	for (uint64 i = 0; i < n && decided < 256; i++)
	{
		Datum		args[1] = {UUIDPGetDatum(&gids[i])};

		if (reasons[i] == NULL)
			continue;
		if (reasons[i][0] == '\0')
			Exec(&forget_begin_xid, args, NULL, false);
		else if (DecideCancel(&gids[i], reasons[i]))
			decided++;
	}
}

STMT(pending_actions, 0,
	 "SELECT id, gid, action FROM tcc._action WHERE NOT applied ORDER BY id LIMIT 100");

STMT(action_applied, 1,
	 "UPDATE tcc._action SET applied = true WHERE id = $1",
	 INT8OID);

STMT(resume_gtx, 1,
	 "UPDATE tcc._gtx g"
	 "   SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 "  FROM tcc._decision d"
	 " WHERE d.gid = g.gid AND g.gid = $1"
	 "   AND g.status IN ('failed', 'confirming', 'cancelling')",
	 UUIDOID);

STMT(resume_branches, 2,
	 "UPDATE tcc._branch"
	 "   SET due_at = now(),"
	 "       attempts = CASE WHEN attempts >= $2 THEN 0 ELSE attempts END"
	 " WHERE gid = $1 AND status NOT IN ('confirmed', 'cancelled', 'skipped')"
	 "   AND NOT in_flight AND (due_at IS NOT NULL OR attempts >= $2)",
	 UUIDOID, INT4OID);

STMT(resolve_gtx, 1,
	 "UPDATE tcc._gtx SET status = 'resolved', finished_at = now()"
	 " WHERE gid = $1 AND status NOT IN ('confirmed', 'cancelled', 'resolved')",
	 UUIDOID);

STMT(unschedule, 1,
	 "UPDATE tcc._branch SET due_at = NULL WHERE gid = $1",
	 UUIDOID);

/*
 * failed -> confirming or cancelling (tcc_retry): pending calls are due
 * now, and a branch that used up its attempts gets a fresh allowance.
 */
static void
Resume(pg_uuid_t *gid)
{
	Datum		args[2] = {UUIDPGetDatum(gid), Int32GetDatum(tcc_max_attempts)};

	Exec(&resume_gtx, args, NULL, false);
	if (SPI_processed == 0)
		return;
	Exec(&resume_branches, args, NULL, false);
	Advance(gid);
}

/* any non-final state -> resolved (tcc_resolve): no call is made again. */
static void
Resolve(pg_uuid_t *gid)
{
	Datum		args[1] = {UUIDPGetDatum(gid)};

	Exec(&resolve_gtx, args, NULL, false);
	Exec(&unschedule, args, NULL, false);
}

/* Applies operator actions committed since the last pass. */
static void
ApplyActions(void)
{
	uint64		n;
	int64	   *ids;
	pg_uuid_t  *gids;
	bool	   *resolves;

	Exec(&pending_actions, NULL, NULL, false);
	n = SPI_processed;
	if (n == 0)
		return;
	ids = palloc(sizeof(int64) * n);
	gids = palloc(sizeof(pg_uuid_t) * n);
	resolves = palloc(sizeof(bool) * n);
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(Col(i, 1, &isnull));
		gids[i] = *DatumGetUUIDP(Col(i, 2, &isnull));
		resolves[i] = strcmp(TextDatumGetCString(Col(i, 3, &isnull)),
							 "resolve") == 0;
	}
	for (uint64 i = 0; i < n; i++)
	{
		Datum		args[1] = {Int64GetDatum(ids[i])};

		if (resolves[i])
			Resolve(&gids[i]);
		else
			Resume(&gids[i]);
		Exec(&action_applied, args, NULL, false);
	}
}

/*
 * One settling pass: operator actions, then undecided transactions that
 * must be cancelled, then decided transactions entering phase two.
 */
void
TccStoreSettle(void)
{
	ApplyActions();
	CancelStuck();
	StartPhaseTwo();
}

STMT(branch_done, 4,
	 "UPDATE tcc._branch SET status = $3, attempts = attempts + 1,"
	 "       last_http_status = $4, last_error = NULL, in_flight = false, due_at = NULL"
	 " WHERE gid = $1 AND branch = $2",
	 UUIDOID, INT4OID, TEXTOID, INT4OID);

STMT(branch_failed, 4,
	 "UPDATE tcc._branch SET attempts = attempts + 1,"
	 "       last_http_status = $3, last_error = $4, in_flight = false"
	 " WHERE gid = $1 AND branch = $2"
	 " RETURNING attempts",
	 UUIDOID, INT4OID, INT4OID, TEXTOID);

STMT(branch_retry_at, 3,
	 "UPDATE tcc._branch SET due_at = now() + $3 * interval '1 ms'"
	 " WHERE gid = $1 AND branch = $2",
	 UUIDOID, INT4OID, INT4OID);

STMT(gtx_error, 2,
	 "UPDATE tcc._gtx SET last_error = $2 WHERE gid = $1",
	 UUIDOID, TEXTOID);

STMT(gtx_failed, 3,
	 "WITH f AS (UPDATE tcc._gtx SET status = 'failed', last_error = $3"
	 "            WHERE gid = $1 AND status IN ('confirming', 'cancelling')"
	 "           RETURNING gid)"
	 "SELECT pg_catalog.pg_notify('tcc_alert',"
	 "         pg_catalog.json_build_object('gid', $1, 'status', 'failed',"
	 "                                      'branch', $2, 'error', $3)::text)"
	 "  FROM f",
	 UUIDOID, INT4OID, TEXTOID);

/*
 * confirming or cancelling -> failed, when a branch used up
 * tcc.max_attempts; NOTIFY tcc_alert tells whoever listens.
 */
static void
MarkFailed(pg_uuid_t *gid, int branch, const char *error)
{
	Datum		args[3];

	args[0] = UUIDPGetDatum(gid);
	args[1] = Int32GetDatum(branch);
	args[2] = CStringGetTextDatum(error);
	Exec(&gtx_failed, args, NULL, false);
}

/*
 * Records the outcome of one confirm or cancel call: the branch is done and
 * phase two moves on, or it is retried after the backoff delay, or it used
 * up its attempts and the transaction fails.
 */
void
TccStoreResult(TccCall *call)
{
	bool		ok = call->http_status >= 200 && call->http_status <= 299;
	const char *op = TccOpName(call->op);
	Datum		args[4];
	char		nulls[4] = "    ";
	char	   *status;
	bool		parallel;
	bool		commit;
	int			attempts;
	bool		isnull;

	LogAttempt(&call->gid, call->branch, op, call->started_at,
			   call->duration_ms, call->http_status, call->error);
	args[0] = UUIDPGetDatum(&call->gid);
	args[1] = Int32GetDatum(call->branch);
	if (ok)
	{
		args[2] = CStringGetTextDatum(call->op == TCC_OP_CONFIRM ?
									  "confirmed" : "cancelled");
		args[3] = Int32GetDatum(call->http_status);
		Exec(&branch_done, args, NULL, false);
		Advance(&call->gid);
		return;
	}

	if (call->http_status == 409)
		ereport(WARNING,
				(errmsg("tcc: participant answered 409 to %s of branch %d",
						op, call->branch),
				 errdetail("A 409 is only meaningful for try; the call is retried.")));

	args[2] = Int32GetDatum(call->http_status);
	if (call->http_status == 0)
		nulls[2] = 'n';
	args[3] = CStringGetTextDatum(call->error);
	Exec(&branch_failed, args, nulls, false);
	if (SPI_processed == 0)
		return;
	attempts = DatumGetInt32(Col(0, 1, &isnull));

	if (!GetPhase(&call->gid, &status, &parallel, &commit) ||
		(strcmp(status, "confirming") != 0 && strcmp(status, "cancelling") != 0))
		return;
	if (attempts >= tcc_max_attempts)
	{
		MarkFailed(&call->gid, call->branch, call->error);
		return;
	}
	args[2] = Int32GetDatum(TccBackoffMs(attempts, call->retry_after_ms));
	Exec(&branch_retry_at, args, NULL, false);
	args[1] = CStringGetTextDatum(call->error);
	Exec(&gtx_error, args, NULL, false);
}

STMT(due_calls, 1,
	 "WITH due AS (SELECT gid, branch FROM tcc._branch"
	 "              WHERE due_at <= now() AND NOT in_flight"
	 "              ORDER BY due_at LIMIT $1)"
	 "UPDATE tcc._branch b SET in_flight = true, due_at = NULL"
	 "  FROM due, tcc._decision d"
	 " WHERE b.gid = due.gid AND b.branch = due.branch AND d.gid = b.gid"
	 " RETURNING b.gid, b.branch, d.commit, b.confirm_url, b.cancel_url,"
	 "           b.payload, b.headers",
	 INT4OID);

/*
 * Takes up to max_calls due branches, marks them in flight (so a crash makes
 * them due again) and returns their calls, allocated in cxt.
 */
List *
TccStoreDueCalls(int max_calls, MemoryContext cxt)
{
	Datum		args[1] = {Int32GetDatum(max_calls)};
	List	   *calls = NIL;

	if (max_calls <= 0)
		return NIL;
	Exec(&due_calls, args, NULL, false);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		TccCall    *call = palloc0(sizeof(TccCall));
		bool		isnull;
		bool		commit;
		Datum		d;

		call->gid = *DatumGetUUIDP(Col(i, 1, &isnull));
		call->branch = DatumGetInt32(Col(i, 2, &isnull));
		commit = DatumGetBool(Col(i, 3, &isnull));
		call->op = commit ? TCC_OP_CONFIRM : TCC_OP_CANCEL;
		call->url = TextDatumGetCString(Col(i, commit ? 4 : 5, &isnull));
		call->payload = TextDatumGetCString(Col(i, 6, &isnull));
		call->payload_len = strlen(call->payload);
		d = Col(i, 7, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			int			nelems;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, NULL, &nelems);
			call->headers = palloc(sizeof(char *) * nelems);
			for (int j = 0; j < nelems; j++)
				call->headers[j] = TextDatumGetCString(elems[j]);
			call->nheaders = nelems;
		}
		call->timeout_ms = tcc_request_timeout;
		calls = lappend(calls, call);
		MemoryContextSwitchTo(old);
	}
	return calls;
}

STMT(next_wake, 0,
	 "SELECT LEAST("
	 "  (SELECT pg_catalog.min(due_at) FROM tcc._branch WHERE due_at IS NOT NULL),"
	 "  (SELECT pg_catalog.min(deadline) FROM tcc._gtx WHERE status = 'trying'),"
	 "  (SELECT now() + interval '1 s' FROM tcc._gtx WHERE status = 'trying' LIMIT 1),"
	 "  (SELECT now() FROM tcc._action WHERE NOT applied LIMIT 1)),"
	 " (SELECT pg_catalog.count(*)::integer FROM tcc._branch"
	 "   WHERE due_at <= now() AND NOT in_flight)");

/*
 * Returns when the worker next has something to do: a due call, a
 * deadline, a check of undecided transactions; DT_NOEND when nothing.
 * Sets *queue_depth to the calls due now that are not in flight.
 */
TimestampTz
TccStoreNextWake(int *queue_depth)
{
	bool		isnull;
	Datum		d;

	Exec(&next_wake, NULL, NULL, false);
	*queue_depth = DatumGetInt32(Col(0, 2, &isnull));
	d = Col(0, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

STMT(purge, 1,
	 "WITH old AS ("
	 "  DELETE FROM tcc._gtx WHERE gid IN ("
	 "    SELECT gid FROM tcc._gtx"
	 "     WHERE finished_at < now() - $1 * interval '1 s'"
	 "     ORDER BY finished_at LIMIT 500 FOR UPDATE SKIP LOCKED)"
	 "  RETURNING gid),"
	 " d AS (DELETE FROM tcc._decision WHERE gid IN (SELECT gid FROM old)),"
	 " t AS (DELETE FROM tcc._try WHERE gid IN (SELECT gid FROM old)),"
	 " a AS (DELETE FROM tcc._attempt WHERE gid IN (SELECT gid FROM old)),"
	 " x AS (DELETE FROM tcc._action WHERE gid IN (SELECT gid FROM old))"
	 "SELECT pg_catalog.count(*)::integer FROM old",
	 INT4OID);

STMT(next_purge, 1,
	 "SELECT pg_catalog.min(finished_at) + $1 * interval '1 s' FROM tcc._gtx"
	 " WHERE finished_at IS NOT NULL",
	 INT4OID);

/*
 * Deletes one batch (at most 500) of final transactions older than
 * tcc.retention, with their branches, decisions, tries, attempts and
 * actions.  Returns when the next batch is due: soon after a full batch,
 * else when the oldest remaining one expires; DT_NOEND if none is left.
 */
TimestampTz
TccStorePurge(void)
{
	Datum		args[1] = {Int32GetDatum(tcc_retention)};
	bool		isnull;
	Datum		d;

	Exec(&purge, args, NULL, false);
	if (DatumGetInt32(Col(0, 1, &isnull)) >= 500)
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 100);
	Exec(&next_purge, args, NULL, false);
	d = Col(0, 1, &isnull);
	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}
