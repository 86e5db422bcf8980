/*-------------------------------------------------------------------------
 *
 * store.c
 *	  The coordinator's table access: the caller's side, the worker's
 *	  units of work and the intents it writes (settle.c has the rest).
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
#include "access/xlog.h"
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
#include "utils/xid8.h"

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
TccEnterOwner(TccOwnerScope *scope)
{
	OverrideSearchPath catalog_only = {NIL, true, false, 0};

	GetUserIdAndSecContext(&scope->save_user, &scope->save_sec);
	SetUserIdAndSecContext(TablesOwner(),
						   scope->save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PushOverrideSearchPath(&catalog_only);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "tcc: SPI_connect failed");
}

/* Undoes TccEnterOwner. */
void
TccLeaveOwner(TccOwnerScope *scope)
{
	SPI_finish();
	PopOverrideSearchPath();
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

		info->owner = DatumGetObjectId(TccStoreCol(0, 1, &isnull));
		text_to_cstring_buffer(DatumGetTextPP(TccStoreCol(0, 2, &isnull)),
							   info->status, sizeof(info->status));
		info->decision = DatumGetBool(TccStoreCol(0, 3, &info->decided));
		info->decided = !info->decided;
		info->deadline = DatumGetTimestampTz(TccStoreCol(0, 4, &isnull));
		d = TccStoreCol(0, 5, &isnull);
		if (!isnull)
		{
			info->untried = DatumGetInt32(d);
			d = TccStoreCol(0, 6, &isnull);
			if (!isnull)
				text_to_cstring_buffer(DatumGetTextPP(d), info->untried_name,
									   sizeof(info->untried_name));
			text_to_cstring_buffer(DatumGetTextPP(TccStoreCol(0, 7, &isnull)),
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
	TccStoreExec(&insert_decision, args, NULL, false);
	TccLeaveOwner(&scope);
}

STMT(insert_tries, 6,
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
	Datum		args[6];
	Datum	   *cols[6];
	bool	   *body_null = palloc(sizeof(bool) * n);

	if (n == 0)
		return;
	for (int c = 0; c < 6; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		TccCall    *call = calls[i];

		body_null[i] = call->body == NULL ||
			memchr(call->body, '\0', call->body_len) != NULL ||
			!pg_verifymbstr(call->body, call->body_len, true);
		cols[0][i] = UUIDPGetDatum(&call->gid);
		cols[1][i] = Int32GetDatum(call->branch);
		cols[2][i] = TimestampTzGetDatum(call->started_at);
		cols[3][i] = Float8GetDatum(call->duration_ms);
		cols[4][i] = Int32GetDatum(call->http_status);
		cols[5][i] = body_null[i] ? (Datum) 0 :
			PointerGetDatum(cstring_to_text_with_len(call->body, call->body_len));
	}
	args[0] = TccStoreArray(cols[0], NULL, n, UUIDOID);
	args[1] = TccStoreArray(cols[1], NULL, n, INT4OID);
	args[2] = TccStoreArray(cols[2], NULL, n, TIMESTAMPTZOID);
	args[3] = TccStoreArray(cols[3], NULL, n, FLOAT8OID);
	args[4] = TccStoreArray(cols[4], NULL, n, INT4OID);
	args[5] = TccStoreArray(cols[5], body_null, n, TEXTOID);
	TccEnterOwner(&scope);
	TccStoreExec(&insert_tries, args, NULL, false);
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
	TccStoreExec(&insert_action, args, nulls, false);
	TccLeaveOwner(&scope);
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

/* Sets a request's error reply. */
static void
Refuse(TccReply *reply, int sqlerrcode, const char *fmt,...) pg_attribute_printf(3, 4);

static void
Refuse(TccReply *reply, int sqlerrcode, const char *fmt,...)
{
	va_list		ap;
	char		buf[1024];

	reply->sqlerrcode = sqlerrcode;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	TccStrlcpy(reply->message, buf, sizeof(reply->message));
}

/* Returns the index of gid in gids[0..n), or -1. */
static int
FindGid(pg_uuid_t *gids, int n, pg_uuid_t *gid)
{
	for (int i = 0; i < n; i++)
		if (memcmp(&gids[i], gid, sizeof(pg_uuid_t)) == 0)
			return i;
	return -1;
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

/* Builds a uuid[] of n gids. */
Datum
TccStoreGidArray(pg_uuid_t *gids, int n)
{
	Datum	   *values = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		values[i] = UUIDPGetDatum(&gids[i]);
	return TccStoreArray(values, NULL, n, UUIDOID);
}

/*
 * The begins and branches of one batch, column by column, for set-based
 * writes: one statement per kind of intent, whatever the batch size.
 */
typedef struct IntentBatch
{
	int			n;				/* requests */
	TccRequest **reqs;
	TccReply  **replies;
	int			nbegin;			/* begins: column arrays */
	int		   *begin_req;
	pg_uuid_t  *begin_gid;
	Datum	   *owner,
			   *kind,
			   *key,
			   *parallel,
			   *deadline,
			   *begin_xid;
	bool	   *kind_null,
			   *key_null;
	int			nbranch;		/* branches */
	int		   *branch_req;
	pg_uuid_t  *branch_gid;
	Oid		   *user;
	bool	   *is_super;
	Datum	   *number,
			   *name,
			   *try_url,
			   *confirm_url,
			   *cancel_url,
			   *payload,
			   *headers,
			   *protocol;
	bool	   *name_null,
			   *try_null,
			   *confirm_null,
			   *cancel_null,
			   *headers_null;
	bool	   *locked;
} IntentBatch;

#define BATCH_ALLOC(b, field, n) ((b)->field = palloc0(sizeof(*(b)->field) * (n)))

/* Sets up an empty batch with room for n requests. */
static void
BatchInit(IntentBatch *b, int n)
{
	int			m = Max(n, 1);

	memset(b, 0, sizeof(IntentBatch));
	BATCH_ALLOC(b, reqs, m);
	BATCH_ALLOC(b, replies, m);
	BATCH_ALLOC(b, begin_req, m);
	BATCH_ALLOC(b, begin_gid, m);
	BATCH_ALLOC(b, owner, m);
	BATCH_ALLOC(b, kind, m);
	BATCH_ALLOC(b, key, m);
	BATCH_ALLOC(b, parallel, m);
	BATCH_ALLOC(b, deadline, m);
	BATCH_ALLOC(b, begin_xid, m);
	BATCH_ALLOC(b, kind_null, m);
	BATCH_ALLOC(b, key_null, m);
	BATCH_ALLOC(b, branch_req, m);
	BATCH_ALLOC(b, branch_gid, m);
	BATCH_ALLOC(b, user, m);
	BATCH_ALLOC(b, is_super, m);
	BATCH_ALLOC(b, number, m);
	BATCH_ALLOC(b, name, m);
	BATCH_ALLOC(b, try_url, m);
	BATCH_ALLOC(b, confirm_url, m);
	BATCH_ALLOC(b, cancel_url, m);
	BATCH_ALLOC(b, payload, m);
	BATCH_ALLOC(b, headers, m);
	BATCH_ALLOC(b, protocol, m);
	BATCH_ALLOC(b, name_null, m);
	BATCH_ALLOC(b, try_null, m);
	BATCH_ALLOC(b, confirm_null, m);
	BATCH_ALLOC(b, cancel_null, m);
	BATCH_ALLOC(b, headers_null, m);
	BATCH_ALLOC(b, locked, m);
}

/* Reads a text field of a message into a datum and its null flag. */
static Datum
MsgText(StringInfo msg, bool *isnull)
{
	const char *s = TccMsgGetText(msg, NULL);

	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * Returns the rows a BEGIN or BRANCH request adds to a batch: one for a
 * begin, one per branch it carries.
 */
static int
RequestRows(TccRequest *req)
{
	StringInfo	msg = &req->data;
	int			rows = 0;
	int			n = 0;

	msg->cursor = 0;
	(void) TccMsgGetText(msg, NULL);	/* gid */
	if (req->kind == TCC_REQ_BEGIN)
	{
		rows = 1;
		for (int i = 0; i < 3; i++)
			(void) TccMsgGetInt64(msg); /* owner, deadline, xid */
		(void) TccMsgGetText(msg, NULL);	/* kind */
		(void) TccMsgGetText(msg, NULL);	/* business key */
		(void) TccMsgGetInt64(msg); /* parallel */
		if (msg->cursor < msg->len)
			n = (int) TccMsgGetInt64(msg);
	}
	else
	{
		(void) TccMsgGetInt64(msg); /* user */
		(void) TccMsgGetInt64(msg); /* superuser */
		n = (int) TccMsgGetInt64(msg);
		if (n < 1)
			elog(ERROR, "tcc: branch request with %d branches", n);
	}
	if (n < 0 || n > 100000)
		elog(ERROR, "tcc: request with %d branches", n);
	return rows + n;
}

/*
 * Adds n branches of one gid, read from msg, as consecutive rows of the
 * batch (so they get consecutive numbers), all answered by request r.
 */
static void
AddBranchRows(IntentBatch *b, int r, pg_uuid_t *gid, Oid user,
			  bool is_super, int n, StringInfo msg)
{
	for (int k = 0; k < n; k++)
	{
		int			i = b->nbranch++;
		int			nheaders;
		bool		isnull;

		b->branch_req[i] = r;
		b->branch_gid[i] = *gid;
		b->user[i] = user;
		b->is_super[i] = is_super;
		b->try_url[i] = MsgText(msg, &b->try_null[i]);
		b->confirm_url[i] = MsgText(msg, &b->confirm_null[i]);
		b->cancel_url[i] = MsgText(msg, &b->cancel_null[i]);
		b->payload[i] = MsgText(msg, &isnull);
		b->name[i] = MsgText(msg, &b->name_null[i]);
		nheaders = (int) TccMsgGetInt64(msg);
		b->headers_null[i] = (nheaders == 0);
		if (nheaders > 0)
		{
			/* one text, a line per header: a header line holds no LF */
			StringInfoData lines;

			initStringInfo(&lines);
			for (int h = 0; h < nheaders; h++)
				appendStringInfo(&lines, "%s%s", h > 0 ? "\n" : "",
								 TccMsgGetText(msg, NULL));
			b->headers[i] = CStringGetTextDatum(lines.data);
		}
		b->protocol[i] = CStringGetTextDatum(
			TccProtocolName((TccProtocol) TccMsgGetInt64(msg)));
	}
}

/*
 * Adds a BEGIN or BRANCH request to the batch's columns.  A BRANCH request
 * names one gid and carries one or more branches (tcc_branch,
 * tcc_branches); a BEGIN may carry the new transaction's first branches
 * (tcc_run), written after it in the same statement.
 */
static void
BatchAdd(IntentBatch *b, TccRequest *req, TccReply *reply)
{
	StringInfo	msg = &req->data;
	int			r = b->n++;

	b->reqs[r] = req;
	b->replies[r] = reply;
	msg->cursor = 0;
	if (req->kind == TCC_REQ_BEGIN)
	{
		int			i = b->nbegin++;

		b->begin_req[i] = r;
		memcpy(&b->begin_gid[i], TccMsgGetText(msg, NULL), sizeof(pg_uuid_t));
		b->owner[i] = ObjectIdGetDatum((Oid) TccMsgGetInt64(msg));
		b->deadline[i] = TimestampTzGetDatum((TimestampTz) TccMsgGetInt64(msg));
		b->begin_xid[i] = FullTransactionIdGetDatum(
			FullTransactionIdFromU64((uint64) TccMsgGetInt64(msg)));
		b->kind[i] = MsgText(msg, &b->kind_null[i]);
		b->key[i] = MsgText(msg, &b->key_null[i]);
		b->parallel[i] = BoolGetDatum(TccMsgGetInt64(msg) != 0);
		if (msg->cursor < msg->len)
			AddBranchRows(b, r, &b->begin_gid[i], DatumGetObjectId(b->owner[i]),
						  false, (int) TccMsgGetInt64(msg), msg);
	}
	else
	{
		pg_uuid_t	gid;
		Oid			user;
		bool		is_super;

		memcpy(&gid, TccMsgGetText(msg, NULL), sizeof(pg_uuid_t));
		user = (Oid) TccMsgGetInt64(msg);
		is_super = TccMsgGetInt64(msg) != 0;
		AddBranchRows(b, r, &gid, user, is_super, (int) TccMsgGetInt64(msg),
					  msg);
	}
}

STMT(insert_gtxs, 7,
	 "INSERT INTO tcc._gtx (gid, owner, kind, business_key, parallel, deadline, begin_xid)"
	 " SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7)"
	 " ON CONFLICT (kind, business_key) WHERE business_key IS NOT NULL DO NOTHING"
	 " RETURNING gid",
	 UUIDARRAYOID, OIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
	 TIMESTAMPTZARRAYOID, XID8ARRAYOID);

/*
 * Begins: creates the batch's global transactions in state trying; one
 * whose (kind, business_key) exists already is refused with 23505.
 */
static void
WriteBegins(IntentBatch *b)
{
	Datum		args[7];
	pg_uuid_t  *created;
	int			ncreated;

	if (b->nbegin == 0)
		return;
	args[0] = TccStoreGidArray(b->begin_gid, b->nbegin);
	args[1] = TccStoreArray(b->owner, NULL, b->nbegin, OIDOID);
	args[2] = TccStoreArray(b->kind, b->kind_null, b->nbegin, TEXTOID);
	args[3] = TccStoreArray(b->key, b->key_null, b->nbegin, TEXTOID);
	args[4] = TccStoreArray(b->parallel, NULL, b->nbegin, BOOLOID);
	args[5] = TccStoreArray(b->deadline, NULL, b->nbegin, TIMESTAMPTZOID);
	args[6] = TccStoreArray(b->begin_xid, NULL, b->nbegin, XID8OID);
	TccStoreExec(&insert_gtxs, args, NULL, false);
	ncreated = (int) SPI_processed;
	created = palloc(sizeof(pg_uuid_t) * Max(ncreated, 1));
	for (int i = 0; i < ncreated; i++)
	{
		bool		isnull;

		created[i] = *DatumGetUUIDP(TccStoreCol(i, 1, &isnull));
	}
	for (int i = 0; i < b->nbegin; i++)
	{
		if (FindGid(created, ncreated, &b->begin_gid[i]) < 0)
			Refuse(b->replies[b->begin_req[i]], ERRCODE_UNIQUE_VIOLATION,
				   "a global transaction of kind \"%s\" with business key \"%s\" already exists",
				   b->kind_null[i] ? "" : TccClip(TextDatumGetCString(b->kind[i]), 60),
				   b->key_null[i] ? "" : TccClip(TextDatumGetCString(b->key[i]), 100));
	}
}

STMT(branch_targets, 1,
	 "SELECT g.gid, g.status, d.gid IS NOT NULL,"
	 "       (SELECT COALESCE(pg_catalog.max(b.branch), 0)"
	 "          FROM tcc._branch b WHERE b.gid = g.gid),"
	 "       g.owner"
	 "  FROM tcc._gtx g LEFT JOIN tcc._decision d ON d.gid = g.gid"
	 " WHERE g.gid = ANY ($1)",
	 UUIDARRAYOID);

STMT(insert_branches, 9,
	 "INSERT INTO tcc._branch (gid, branch, name, try_url, confirm_url, cancel_url, payload, headers, protocol)"
	 " SELECT gid, branch, name, try_url, confirm_url, cancel_url, payload,"
	 "        pg_catalog.string_to_array(headers, E'\\n'), protocol"
	 "   FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9)"
	 "     AS r (gid, branch, name, try_url, confirm_url, cancel_url, payload, headers, protocol)"
	 "  WHERE branch > 0",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	 TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID);

/*
 * Branches: each is numbered after the existing ones of its transaction
 * and recorded while that transaction is undecided, and only for its owner
 * (or a superuser) -- rule R1: intent before effect.  The gid's lock keeps a
 * concurrent tcc_finish from deciding meanwhile; an unknown gid or another
 * role's is refused before anything else and its lock given back at once,
 * so that such a request cannot hold up the owner.  One statement writes
 * the accepted ones: a refused one keeps branch number 0.
 */
static void
WriteBranches(IntentBatch *b)
{
	Datum		args[9];
	pg_uuid_t  *gids;
	char	  **status;
	bool	   *decided;
	int		   *last;
	Oid		   *owner;
	int			ngids;

	if (b->nbranch == 0)
		return;
	/* locks first, so that what is read next cannot be decided meanwhile */
	for (int i = 0; i < b->nbranch; i++)
		b->locked[i] = TccLockGid(&b->branch_gid[i], false);
	args[0] = TccStoreGidArray(b->branch_gid, b->nbranch);
	TccStoreExec(&branch_targets, args, NULL, false);	/* args[0] serves again below */
	ngids = (int) SPI_processed;
	gids = palloc(sizeof(pg_uuid_t) * Max(ngids, 1));
	status = palloc(sizeof(char *) * Max(ngids, 1));
	decided = palloc(sizeof(bool) * Max(ngids, 1));
	last = palloc(sizeof(int) * Max(ngids, 1));
	owner = palloc(sizeof(Oid) * Max(ngids, 1));
	for (int g = 0; g < ngids; g++)
	{
		bool		isnull;

		gids[g] = *DatumGetUUIDP(TccStoreCol(g, 1, &isnull));
		status[g] = TextDatumGetCString(TccStoreCol(g, 2, &isnull));
		decided[g] = DatumGetBool(TccStoreCol(g, 3, &isnull));
		last[g] = DatumGetInt32(TccStoreCol(g, 4, &isnull));
		owner[g] = DatumGetObjectId(TccStoreCol(g, 5, &isnull));
	}

	for (int i = 0; i < b->nbranch; i++)
	{
		TccReply   *reply = b->replies[b->branch_req[i]];
		pg_uuid_t  *gid = &b->branch_gid[i];
		int			g = FindGid(gids, ngids, gid);
		int			number = 0;

		if (g < 0 || (owner[g] != b->user[i] && !b->is_super[i]))
		{
			/* not the caller's to touch: give its lock back at once */
			if (b->locked[i])
				TccUnlockGid(gid);
			if (reply->sqlerrcode != 0)
				;				/* its request was refused already (a begin) */
			else if (g < 0)
				Refuse(reply, ERRCODE_TCC_UNKNOWN_GID,
					   "global transaction %s does not exist", TccGidText(gid));
			else
				Refuse(reply, ERRCODE_INSUFFICIENT_PRIVILEGE,
					   "global transaction %s belongs to another role",
					   TccGidText(gid));
		}
		else if (reply->sqlerrcode != 0)
			;					/* another branch of its request was refused */
		else if (!b->locked[i])
			Refuse(reply, ERRCODE_TCC_BAD_DECISION,
				   "global transaction %s is being decided by another transaction",
				   TccGidText(gid));
		else if (decided[g] || strcmp(status[g], "trying") != 0)
			Refuse(reply, ERRCODE_TCC_BAD_DECISION,
				   "global transaction %s is already %s", TccGidText(gid),
				   decided[g] && strcmp(status[g], "trying") == 0 ?
				   "decided" : status[g]);
		else
		{
			number = ++last[g];
			if (reply->branch == 0)
				reply->branch = number;
		}
		b->number[i] = Int32GetDatum(number);
	}
	/* a request is written whole or not at all */
	for (int i = 0; i < b->nbranch; i++)
	{
		if (b->replies[b->branch_req[i]]->sqlerrcode != 0)
			b->number[i] = Int32GetDatum(0);
	}

	args[1] = TccStoreArray(b->number, NULL, b->nbranch, INT4OID);
	args[2] = TccStoreArray(b->name, b->name_null, b->nbranch, TEXTOID);
	args[3] = TccStoreArray(b->try_url, b->try_null, b->nbranch, TEXTOID);
	args[4] = TccStoreArray(b->confirm_url, b->confirm_null, b->nbranch, TEXTOID);
	args[5] = TccStoreArray(b->cancel_url, b->cancel_null, b->nbranch, TEXTOID);
	args[6] = TccStoreArray(b->payload, NULL, b->nbranch, TEXTOID);
	args[7] = TccStoreArray(b->headers, b->headers_null, b->nbranch, TEXTOID);
	args[8] = TccStoreArray(b->protocol, NULL, b->nbranch, TEXTOID);
	TccStoreExec(&insert_branches, args, NULL, false);
}

/* Writes a batch of begins and branches (run in a subtransaction). */
static void
WriteBatch(void *arg)
{
	IntentBatch *b = arg;

	/* begins first: a branch may name a transaction begun in this batch */
	WriteBegins(b);
	WriteBranches(b);
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
	TccStoreExec(&insert_attempt, args, nulls, false);
}

STMT(decide_cancel, 4,
	 "INSERT INTO tcc._decision (gid, commit, source, decided_by)"
	 " SELECT $1, false, $2, $3"
	 "  WHERE NOT EXISTS (SELECT 1 FROM tcc._decision d WHERE d.gid = $1)"
	 "    AND EXISTS (SELECT 1 FROM tcc._gtx g WHERE g.gid = $1 AND g.status = $4)",
	 UUIDOID, TEXTOID, OIDOID, TEXTOID);

/*
 * trying -> cancelling, decided by the worker (deadline passed, the
 * beginning transaction aborted, or a try failed).  Only under the gid's
 * lock: a tcc_finish in a still-open transaction holds it, and then the
 * worker leaves the gid alone, so exactly one decision wins (rule R4).
 * Returns false when the lock was not free.
 */
bool
TccStoreDecideCancel(pg_uuid_t *gid, const char *source)
{
	Datum		args[4];

	if (!TccLockGid(gid, false))
		return false;
	args[0] = UUIDPGetDatum(gid);
	args[1] = CStringGetTextDatum(source);
	args[2] = ObjectIdGetDatum(GetUserId());
	args[3] = CStringGetTextDatum("trying");
	TccStoreExec(&decide_cancel, args, NULL, false);
	if (SPI_processed > 0)
		decided_in_work = true;
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
	TccStoreExec(&mark_try_failed, args, nulls, false);
	LogAttempt(gid, branch, "try", started, duration_ms, http_status, error);
	(void) TccStoreDecideCancel(gid, "try failed");
}

/* One request and its reply, for WriteRequest. */
typedef struct RequestWork
{
	TccRequest *req;
	TccReply   *reply;
} RequestWork;

/* Writes one request on its own (run in its own subtransaction). */
static void
WriteRequest(void *arg)
{
	RequestWork *work = arg;
	IntentBatch batch;

	if (work->req->kind == TCC_REQ_TRY_FAILED)
	{
		work->req->data.cursor = 0;
		RecordTryFailed(&work->req->data, work->reply);
		return;
	}
	BatchInit(&batch, RequestRows(work->req));
	BatchAdd(&batch, work->req, work->reply);
	WriteBatch(&batch);
}

/*
 * Writes the requests of all waiting backends in the current transaction.
 * Begins and branches go in a few set-based statements, in one
 * subtransaction; a refusal (unknown gid, decided, ...) is a reply, not an
 * error.  Should the batch fail all the same, and for the rare failed try,
 * each request is written in its own subtransaction, so that one bad
 * request cannot sink the others.  replies: one per request, zeroed, in
 * memory that outlives the unit of work.
 */
void
TccStoreRequests(List *requests, TccReply *replies)
{
	int			n = list_length(requests);
	RequestWork *single = palloc(sizeof(RequestWork) * Max(n, 1));
	int			nsingle = 0;
	IntentBatch batch;
	ListCell   *lc;
	int			i = 0;
	int			rows = 0;

	foreach(lc, requests)
	{
		TccRequest *req = lfirst(lc);

		if (req->kind != TCC_REQ_TRY_FAILED)
			rows += RequestRows(req);
	}
	BatchInit(&batch, rows);
	foreach(lc, requests)
	{
		TccRequest *req = lfirst(lc);

		if (req->kind == TCC_REQ_TRY_FAILED)
			single[nsingle++] = (RequestWork) {req, &replies[i]};
		else
			BatchAdd(&batch, req, &replies[i]);
		i++;
	}
	if (batch.n > 0)
	{
		ErrorData  *edata = TccInSubtransaction(WriteBatch, &batch);

		if (edata)
		{
			ereport(LOG,
					(errmsg("tcc: writing %d intents together failed, writing each on its own: %s",
							batch.n, edata->message)));
			FreeErrorData(edata);
			for (int r = 0; r < batch.n; r++)
			{
				memset(batch.replies[r], 0, sizeof(TccReply));
				single[nsingle++] = (RequestWork) {batch.reqs[r], batch.replies[r]};
			}
		}
	}
	for (int r = 0; r < nsingle; r++)
	{
		ErrorData  *edata = TccInSubtransaction(WriteRequest, &single[r]);

		if (edata)
		{
			single[r].reply->sqlerrcode = edata->sqlerrcode;
			TccStrlcpy(single[r].reply->message, edata->message,
					   sizeof(single[r].reply->message));
			FreeErrorData(edata);
		}
	}
}
