/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The coordinator's table access: the saved statements and the helpers
 *	  that run them, the caller's reads and writes, and the worker's unit of
 *	  work (intent.c writes the intents, settle.c the moves after them).
 *
 * Two kinds of callers, two disciplines:
 *
 * - The initiator's backend only ever INSERTs (_decision, _try, _action),
 *   in its own transaction, and reads with the latest snapshot rather than
 *   its transaction snapshot.  A caller at REPEATABLE READ or SERIALIZABLE
 *   therefore sees rows the worker committed after its snapshot was taken,
 *   and never tries to UPDATE a row it cannot see (R2 of
 *   docs/guarantees.md).  It switches to the tables' owner and a pinned
 *   search_path for the duration.
 *
 * - The worker owns every UPDATE (intent.c, settle.c).  Each global
 *   transaction moves through its states in one function per transition,
 *   named for it.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "http.h"
#include "protocol.h"
#include "store.h"

/* whether the worker's current unit of work wrote a decision */
static bool decided_in_work = false;

/*
 * Runs a statement; returns the SPI result code.  Plans are generic from
 * the first run: the worker's statements take arrays, and a custom plan,
 * seeing how short the array is, always looks cheaper than the generic one
 * -- the plan cache then plans every run again.  How the plans stay index
 * lookups while the tables grow: see TccWorkerMain and the note on status
 * tests below.
 */
int
TccStoreExec(Stmt *st, Datum *values, const char *nulls, bool read_only)
{
	int			rc;

	if (st->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(st->sql, st->nargs, st->types,
											  CURSOR_OPT_GENERIC_PLAN);

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
	TccStoreExec(st, values, nulls, true);
	PopActiveSnapshot();
}

/* Returns column col (1-based) of result row row. */
Datum
TccStoreCol(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

/* Returns a text datum for s, or sets the null flag. */
Datum
TccStoreTextOrNull(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* Builds a one-dimensional array of n values of type typid; nulls may be NULL. */
Datum
TccStoreArray(Datum *values, bool *nulls, int n, Oid typid)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(typid, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs,
											  typid, typlen, typbyval,
											  typalign));
}

/*
 * Returns the strings of text[] column col of result row row, palloc'd in
 * the current memory context, and their number in *n; NULL and 0 for a
 * NULL column.
 */
char	  **
TccStoreTextArrayCol(int row, int col, int *n)
{
	bool		isnull;
	Datum		d = TccStoreCol(row, col, &isnull);
	Datum	   *elems;
	char	  **strings;

	*n = 0;
	if (isnull)
		return NULL;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, NULL, n);
	strings = palloc(sizeof(char *) * Max(*n, 1));
	for (int j = 0; j < *n; j++)
		strings[j] = TextDatumGetCString(elems[j]);
	pfree(elems);
	return strings;
}

/* the columns of TCC_CALL_POLICY, from its first */
enum PolicyColumn
{
	POLICY_TIMEOUT,
	POLICY_MAX_ATTEMPTS,
	POLICY_TRACE_ID,
	POLICY_TRACE_FLAGS,
	POLICY_TRACESTATE
};

/*
 * Reads the five columns of TCC_CALL_POLICY from column col of result row
 * row: a NULL timeout or max_attempts is 0 (the setting applies).
 */
void
TccStoreCallPolicy(int row, int col, int *timeout_ms, int *max_attempts,
				   TccTrace *trace)
{
	bool		isnull;
	Datum		d;

	d = TccStoreCol(row, col + POLICY_TIMEOUT, &isnull);
	*timeout_ms = isnull ? 0 : DatumGetInt32(d);
	d = TccStoreCol(row, col + POLICY_MAX_ATTEMPTS, &isnull);
	*max_attempts = isnull ? 0 : DatumGetInt32(d);
	d = TccStoreCol(row, col + POLICY_TRACE_ID, &isnull);
	memcpy(trace->id, DatumGetUUIDP(d)->data, TCC_TRACE_ID_LEN);
	d = TccStoreCol(row, col + POLICY_TRACE_FLAGS, &isnull);
	trace->flags = (uint8) DatumGetInt16(d);
	d = TccStoreCol(row, col + POLICY_TRACESTATE, &isnull);
	trace->state = isnull ? NULL : TextDatumGetCString(d);
}

/*
 * Returns the columns of st's parameters, with room for rows rows each: the
 * element type of each array parameter, no value NULL yet.
 */
TccStoreColumn *
TccStoreColumns(const Stmt *st, int rows)
{
	TccStoreColumn *cols = palloc0(sizeof(TccStoreColumn) * st->nargs);
	int			room = Max(rows, 1);

	for (int c = 0; c < st->nargs; c++)
	{
		cols[c].typid = get_element_type(st->types[c]);
		if (!OidIsValid(cols[c].typid))
			continue;
		cols[c].values = palloc0(sizeof(Datum) * room);
		cols[c].nulls = palloc0(sizeof(bool) * room);
	}
	return cols;
}

/* Sets a text value of a column, NULL for a NULL s. */
void
TccStoreSetText(TccStoreColumn *col, int row, const char *s)
{
	col->nulls[row] = (s == NULL);
	col->values[row] = s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * Sets params[c] to the array of the first nrows values of column c, for
 * each array parameter of st; the others are left to the caller.
 */
void
TccStoreColumnParams(const Stmt *st, TccStoreColumn *cols, int nrows,
					 Datum *params)
{
	for (int c = 0; c < st->nargs; c++)
	{
		if (OidIsValid(cols[c].typid))
			params[c] = TccStoreArray(cols[c].values, cols[c].nulls, nrows,
									  cols[c].typid);
	}
}

/* Builds a uuid[] of n gids. */
Datum
TccStoreGidArray(pg_uuid_t *gids, int n)
{
	Datum	   *values = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		values[i] = UUIDPGetDatum(&gids[i]);
	return TccStoreArray(values, NULL, n, UUIDOID);
}

/* ---------------------------------------------------------------------
 * The caller's side
 * ---------------------------------------------------------------------
 */

/* the owner of schema tcc, cached until a change to any schema */
static Oid	tables_owner = InvalidOid;
static bool owner_callback_registered = false;

/* Forgets the cached owner when pg_namespace changes. */
static void
ForgetTablesOwner(Datum arg, int cacheid, uint32 hashvalue)
{
	tables_owner = InvalidOid;
}

/* Returns the owner of schema tcc, who owns the coordinator tables. */
static Oid
TablesOwner(void)
{
	Oid			nsp;
	HeapTuple	tup;

	if (OidIsValid(tables_owner))
		return tables_owner;
	if (!owner_callback_registered)
	{
		CacheRegisterSyscacheCallback(NAMESPACEOID, ForgetTablesOwner, (Datum) 0);
		owner_callback_registered = true;
	}
	nsp = get_namespace_oid("tcc", false);
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	tables_owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return tables_owner;
}

/*
 * Switches to the owner of the tcc tables and a search path of pg_catalog
 * alone, and connects SPI: callers need no privilege on the tables, and no
 * object of theirs (not even a temporary one) can stand in for one of
 * ours.  The path is pushed as an override rather than set as search_path:
 * cheaper, and the saved plans, made under the same override, stay valid.
 * An error on the way out is cleaned up by the (sub)transaction's abort.
 */
void
TccStoreEnterOwner(TccOwnerScope *scope)
{
	OverrideSearchPath catalog_only = {NIL, true, false, 0};

	GetUserIdAndSecContext(&scope->save_user, &scope->save_sec);
	SetUserIdAndSecContext(TablesOwner(),
						   scope->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PushOverrideSearchPath(&catalog_only);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "tcc: SPI_connect failed");
}

/* Undoes TccStoreEnterOwner. */
void
TccStoreLeaveOwner(TccOwnerScope *scope)
{
	SPI_finish();
	PopOverrideSearchPath();
	SetUserIdAndSecContext(scope->save_user, scope->save_sec);
}

/* get_gtx's columns, from 1 */
enum GetGtxColumn
{
	GET_GTX_OWNER = 1,
	GET_GTX_STATUS,
	GET_GTX_COMMIT,				/* NULL: not decided */
	GET_GTX_DEADLINE,
	GET_GTX_UNTRIED,			/* NULL: every try succeeded */
	GET_GTX_UNTRIED_NAME,
	GET_GTX_UNTRIED_STATUS
};

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
	TccStoreEnterOwner(&scope);
	ExecLatest(&get_gtx, args, NULL);
	found = (SPI_processed > 0);
	if (found)
	{
		bool		isnull;
		Datum		d;

		info->owner = DatumGetObjectId(TccStoreCol(0, GET_GTX_OWNER, &isnull));
		d = TccStoreCol(0, GET_GTX_STATUS, &isnull);
		text_to_cstring_buffer(DatumGetTextPP(d), info->status,
							   sizeof(info->status));
		d = TccStoreCol(0, GET_GTX_COMMIT, &info->decided);
		info->decision = DatumGetBool(d);
		info->decided = !info->decided;
		d = TccStoreCol(0, GET_GTX_DEADLINE, &isnull);
		info->deadline = DatumGetTimestampTz(d);
		d = TccStoreCol(0, GET_GTX_UNTRIED, &isnull);
		if (!isnull)
		{
			info->untried = DatumGetInt32(d);
			d = TccStoreCol(0, GET_GTX_UNTRIED_NAME, &isnull);
			if (!isnull)
				text_to_cstring_buffer(DatumGetTextPP(d), info->untried_name,
									   sizeof(info->untried_name));
			d = TccStoreCol(0, GET_GTX_UNTRIED_STATUS, &isnull);
			text_to_cstring_buffer(DatumGetTextPP(d), info->untried_status,
								   sizeof(info->untried_status));
		}
	}
	TccStoreLeaveOwner(&scope);
	return found;
}

/* insert_decision's parameters */
enum DecisionParam
{
	DECISION_GID,
	DECISION_COMMIT,
	DECISION_SOURCE,
	DECISION_BY,
	DECISION_NPARAMS
};

STMT(insert_decision, DECISION_NPARAMS,
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
	Datum		args[DECISION_NPARAMS];

	args[DECISION_GID] = UUIDPGetDatum(gid);
	args[DECISION_COMMIT] = BoolGetDatum(commit);
	args[DECISION_SOURCE] = CStringGetTextDatum(source);
	args[DECISION_BY] = ObjectIdGetDatum(user);
	TccStoreEnterOwner(&scope);
	TccStoreExec(&insert_decision, args, NULL, false);
	TccStoreLeaveOwner(&scope);
}

/* insert_tries' parameters, an array each: one row per try */
enum TriesParam
{
	TRIES_GID,
	TRIES_BRANCH,
	TRIES_STARTED_AT,
	TRIES_DURATION,
	TRIES_HTTP_STATUS,
	TRIES_BODY,
	TRIES_NPARAMS
};

STMT(insert_tries, TRIES_NPARAMS,
	 "INSERT INTO tcc._try (gid, branch, started_at, duration_ms, http_status, body)"
	 " SELECT * FROM unnest($1, $2, $3, $4, $5, $6)",
	 UUIDARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID,
	 INT4ARRAYOID, TEXTARRAYOID);

/*
 * Records successful tries in the caller's transaction, in one statement.
 * A body that is not valid text is recorded as NULL.
 */
void
TccStoreTried(TccCall **calls, int n)
{
	TccOwnerScope scope;
	Datum		args[TRIES_NPARAMS];
	TccStoreColumn *cols;

	if (n == 0)
		return;
	cols = TccStoreColumns(&insert_tries, n);
	for (int i = 0; i < n; i++)
	{
		TccCall    *call = calls[i];
		bool		body_null;

		body_null = call->body == NULL ||
			memchr(call->body, '\0', call->body_len) != NULL ||
			!pg_verifymbstr(call->body, call->body_len, true);
		cols[TRIES_GID].values[i] = UUIDPGetDatum(&call->gid);
		cols[TRIES_BRANCH].values[i] = Int32GetDatum(call->branch);
		cols[TRIES_STARTED_AT].values[i] =
			TimestampTzGetDatum(call->started_at);
		cols[TRIES_DURATION].values[i] = Float8GetDatum(call->duration_ms);
		cols[TRIES_HTTP_STATUS].values[i] = Int32GetDatum(call->http_status);
		cols[TRIES_BODY].nulls[i] = body_null;
		if (!body_null)
			cols[TRIES_BODY].values[i] = PointerGetDatum(
				cstring_to_text_with_len(call->body, call->body_len));
	}
	TccStoreColumnParams(&insert_tries, cols, n, args);
	TccStoreEnterOwner(&scope);
	TccStoreExec(&insert_tries, args, NULL, false);
	TccStoreLeaveOwner(&scope);
}

/* insert_action's parameters */
enum ActionParam
{
	ACTION_GID,
	ACTION_NAME,
	ACTION_NOTE,				/* NULL: none */
	ACTION_ACTOR,
	ACTION_NPARAMS
};

STMT(insert_action, ACTION_NPARAMS,
	 "INSERT INTO tcc._action (gid, action, note, actor) VALUES ($1, $2, $3, $4)",
	 UUIDOID, TEXTOID, TEXTOID, OIDOID);

/* Records an operator action; the worker applies it after commit. */
void
TccStoreAction(pg_uuid_t *gid, const char *action, const char *note)
{
	TccOwnerScope scope;
	Oid			user = GetUserId();
	Datum		args[ACTION_NPARAMS];
	char		nulls[ACTION_NPARAMS];

	memset(nulls, ' ', sizeof(nulls));
	args[ACTION_GID] = UUIDPGetDatum(gid);
	args[ACTION_NAME] = CStringGetTextDatum(action);
	args[ACTION_NOTE] = TccStoreTextOrNull(note, &nulls[ACTION_NOTE]);
	args[ACTION_ACTOR] = ObjectIdGetDatum(user);
	TccStoreEnterOwner(&scope);
	TccStoreExec(&insert_action, args, nulls, false);
	TccStoreLeaveOwner(&scope);
}

/* ---------------------------------------------------------------------
 * The worker's side
 * ---------------------------------------------------------------------
 */

/* the memory context current when the unit of work began */
static MemoryContext work_caller_cxt = NULL;

/*
 * Starts one short unit of worker work: a transaction with SPI.  What is
 * allocated until TccStoreEndWork lives in SPI's memory and goes with it;
 * results that must outlive the unit go in memory the caller provides.
 */
void
TccStoreBeginWork(void)
{
	work_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "tcc: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	decided_in_work = false;
}

/*
 * Commits a unit of worker work and reports its statistics; returns the
 * end of its commit record in the WAL.  The commit waits for its WAL flush
 * only when the work wrote a decision: a cancel decided by the worker must
 * survive a crash before any cancel is sent (rule R4).  Intents are flushed
 * by the backends waiting for them (request.c); everything else the worker
 * writes can be derived again after a crash (a call is at worst repeated).
 */
XLogRecPtr
TccStoreEndWork(void)
{
	PopActiveSnapshot();
	SPI_finish();
	SetConfigOption("synchronous_commit", decided_in_work ? "on" : "off",
					PGC_SUSET, PGC_S_OVERRIDE);
	CommitTransactionCommand();
	/* the commit leaves TopMemoryContext current: back to the caller's */
	MemoryContextSwitchTo(work_caller_cxt);
	pgstat_report_stat(false);
	return XactLastCommitEnd;
}

/* decide_cancels' parameters */
enum CancelsParam
{
	CANCELS_GIDS,				/* an array */
	CANCELS_SOURCES,			/* an array, per gid: why */
	CANCELS_BY,
	CANCELS_STATUS,				/* only a transaction in this status */
	CANCELS_NPARAMS
};

STMT(decide_cancels, CANCELS_NPARAMS,
	 "INSERT INTO tcc._decision (gid, commit, source, decided_by)"
	 " SELECT c.gid, false, c.source, $3"
	 "   FROM unnest($1, $2) c (gid, source)"
	 "   JOIN tcc._gtx g ON g.gid = c.gid AND g.status = $4"
	 "  WHERE NOT EXISTS (SELECT 1 FROM tcc._decision d WHERE d.gid = c.gid)",
	 UUIDARRAYOID, TEXTARRAYOID, OIDOID, TEXTOID);

/*
 * trying -> cancelling, decided by the worker (deadline passed, the
 * beginning transaction aborted, or a try failed), for n gids in one
 * statement; sources[i] says why for gids[i].  The caller holds each gid's
 * lock (TccGidTryLock), taken without waiting: a tcc_finish in a
 * still-open transaction holds it, and then the worker leaves that gid
 * alone, so exactly one decision wins (rule R4).  A gid decided or moved on
 * meanwhile is left as it is.  Returns how many were decided.
 */
uint64
TccStoreDecideCancels(pg_uuid_t *gids, const char **sources, int n)
{
	Datum		args[CANCELS_NPARAMS];
	Datum	   *texts;

	if (n == 0)
		return 0;
	texts = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		texts[i] = CStringGetTextDatum(sources[i]);
	args[CANCELS_GIDS] = TccStoreGidArray(gids, n);
	args[CANCELS_SOURCES] = TccStoreArray(texts, NULL, n, TEXTOID);
	args[CANCELS_BY] = ObjectIdGetDatum(GetUserId());
	args[CANCELS_STATUS] = CStringGetTextDatum("trying");
	TccStoreExec(&decide_cancels, args, NULL, false);
	if (SPI_processed > 0)
		decided_in_work = true;
	return SPI_processed;
}
