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
#include "access/xlog.h"
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
#include "utils/inval.h"
#include "utils/lsyscache.h"
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

/* whether the worker's current unit of work wrote a decision */
static bool decided_in_work = false;

/*
 * Statements that look transactions up by gid test their status against an
 * expression (CASE on the decision, a parameter), never a constant: a
 * constant would let a plan, generic and made while the tables were still
 * empty, scan a whole partial index (trying, phase two) instead of looking
 * the gid up in the primary key.
 */
#define STMT(name, n, sql, ...) \
	static Stmt name = {sql, n, {__VA_ARGS__}, NULL}

/*
 * Runs a statement; returns the SPI result code.  Plans are generic from
 * the first run: the worker's statements take arrays, and a custom plan,
 * seeing how short the array is, always looks cheaper than the generic one
 * -- the plan cache then plans every run again.  How the plans stay index
 * lookups while the tables grow: see TccWorkerMain and the note on status
 * tests below.
 */
static int
Exec(Stmt *st, Datum *values, const char *nulls, bool read_only)
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

	reply->sqlerrcode = sqlerrcode;
	va_start(ap, fmt);
	vsnprintf(reply->message, sizeof(reply->message), fmt, ap);
	va_end(ap);
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
static Datum
MakeArray(Datum *values, bool *nulls, int n, Oid typid)
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
static Datum
GidArray(pg_uuid_t *gids, int n)
{
	Datum	   *values = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		values[i] = UUIDPGetDatum(&gids[i]);
	return MakeArray(values, NULL, n, UUIDOID);
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
			   *headers;
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

/* Adds a BEGIN or BRANCH request to the batch's columns. */
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
	}
	else
	{
		int			i = b->nbranch++;
		int			nheaders;
		bool		isnull;

		b->branch_req[i] = r;
		memcpy(&b->branch_gid[i], TccMsgGetText(msg, NULL), sizeof(pg_uuid_t));
		b->user[i] = (Oid) TccMsgGetInt64(msg);
		b->is_super[i] = TccMsgGetInt64(msg) != 0;
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
	args[0] = GidArray(b->begin_gid, b->nbegin);
	args[1] = MakeArray(b->owner, NULL, b->nbegin, OIDOID);
	args[2] = MakeArray(b->kind, b->kind_null, b->nbegin, TEXTOID);
	args[3] = MakeArray(b->key, b->key_null, b->nbegin, TEXTOID);
	args[4] = MakeArray(b->parallel, NULL, b->nbegin, BOOLOID);
	args[5] = MakeArray(b->deadline, NULL, b->nbegin, TIMESTAMPTZOID);
	args[6] = MakeArray(b->begin_xid, NULL, b->nbegin, XID8OID);
	Exec(&insert_gtxs, args, NULL, false);
	ncreated = (int) SPI_processed;
	created = palloc(sizeof(pg_uuid_t) * Max(ncreated, 1));
	for (int i = 0; i < ncreated; i++)
	{
		bool		isnull;

		created[i] = *DatumGetUUIDP(Col(i, 1, &isnull));
	}
	for (int i = 0; i < b->nbegin; i++)
	{
		if (FindGid(created, ncreated, &b->begin_gid[i]) < 0)
			Refuse(b->replies[b->begin_req[i]], ERRCODE_UNIQUE_VIOLATION,
				   "a global transaction of kind \"%.60s\" with business key \"%.100s\" already exists",
				   b->kind_null[i] ? "" : TextDatumGetCString(b->kind[i]),
				   b->key_null[i] ? "" : TextDatumGetCString(b->key[i]));
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

STMT(insert_branches, 8,
	 "INSERT INTO tcc._branch (gid, branch, name, try_url, confirm_url, cancel_url, payload, headers)"
	 " SELECT gid, branch, name, try_url, confirm_url, cancel_url, payload,"
	 "        pg_catalog.string_to_array(headers, E'\\n')"
	 "   FROM unnest($1, $2, $3, $4, $5, $6, $7, $8)"
	 "     AS r (gid, branch, name, try_url, confirm_url, cancel_url, payload, headers)"
	 "  WHERE branch > 0",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	 TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID);

/*
 * Branches: each is numbered after the existing ones of its transaction
 * and recorded while that transaction is undecided, and only for its owner
 * (or a superuser) -- rule R1: intent before effect.  The gid's lock keeps a
 * concurrent tcc_finish from deciding meanwhile.  One statement writes the
 * accepted ones: a refused one keeps branch number 0.
 */
static void
WriteBranches(IntentBatch *b)
{
	Datum		args[8];
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
	args[0] = GidArray(b->branch_gid, b->nbranch);
	Exec(&branch_targets, args, NULL, false);	/* args[0] serves again below */
	ngids = (int) SPI_processed;
	gids = palloc(sizeof(pg_uuid_t) * Max(ngids, 1));
	status = palloc(sizeof(char *) * Max(ngids, 1));
	decided = palloc(sizeof(bool) * Max(ngids, 1));
	last = palloc(sizeof(int) * Max(ngids, 1));
	owner = palloc(sizeof(Oid) * Max(ngids, 1));
	for (int g = 0; g < ngids; g++)
	{
		bool		isnull;

		gids[g] = *DatumGetUUIDP(Col(g, 1, &isnull));
		status[g] = TextDatumGetCString(Col(g, 2, &isnull));
		decided[g] = DatumGetBool(Col(g, 3, &isnull));
		last[g] = DatumGetInt32(Col(g, 4, &isnull));
		owner[g] = DatumGetObjectId(Col(g, 5, &isnull));
	}

	for (int i = 0; i < b->nbranch; i++)
	{
		TccReply   *reply = b->replies[b->branch_req[i]];
		pg_uuid_t  *gid = &b->branch_gid[i];
		int			g = FindGid(gids, ngids, gid);

		if (!b->locked[i])
			Refuse(reply, ERRCODE_TCC_BAD_DECISION,
				   "global transaction %s is being decided by another transaction",
				   TccGidText(gid));
		else if (g < 0)
			Refuse(reply, ERRCODE_TCC_UNKNOWN_GID,
				   "global transaction %s does not exist", TccGidText(gid));
		else if (owner[g] != b->user[i] && !b->is_super[i])
			Refuse(reply, ERRCODE_INSUFFICIENT_PRIVILEGE,
				   "global transaction %s belongs to another role",
				   TccGidText(gid));
		else if (decided[g] || strcmp(status[g], "trying") != 0)
			Refuse(reply, ERRCODE_TCC_BAD_DECISION,
				   "global transaction %s is already %s", TccGidText(gid),
				   decided[g] && strcmp(status[g], "trying") == 0 ?
				   "decided" : status[g]);
		else
			reply->branch = ++last[g];
		b->number[i] = Int32GetDatum(reply->branch);
	}

	args[1] = MakeArray(b->number, NULL, b->nbranch, INT4OID);
	args[2] = MakeArray(b->name, b->name_null, b->nbranch, TEXTOID);
	args[3] = MakeArray(b->try_url, b->try_null, b->nbranch, TEXTOID);
	args[4] = MakeArray(b->confirm_url, b->confirm_null, b->nbranch, TEXTOID);
	args[5] = MakeArray(b->cancel_url, b->cancel_null, b->nbranch, TEXTOID);
	args[6] = MakeArray(b->payload, NULL, b->nbranch, TEXTOID);
	args[7] = MakeArray(b->headers, b->headers_null, b->nbranch, TEXTOID);
	Exec(&insert_branches, args, NULL, false);
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
	Exec(&insert_attempt, args, nulls, false);
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
static bool
DecideCancel(pg_uuid_t *gid, const char *source)
{
	Datum		args[4];

	if (!TccLockGid(gid, false))
		return false;
	args[0] = UUIDPGetDatum(gid);
	args[1] = CStringGetTextDatum(source);
	args[2] = ObjectIdGetDatum(GetUserId());
	args[3] = CStringGetTextDatum("trying");
	Exec(&decide_cancel, args, NULL, false);
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
	Exec(&mark_try_failed, args, nulls, false);
	LogAttempt(gid, branch, "try", started, duration_ms, http_status, error);
	(void) DecideCancel(gid, "try failed");
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
	BatchInit(&batch, 1);
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

	BatchInit(&batch, n);
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
			strlcpy(single[r].reply->message, edata->message,
					sizeof(single[r].reply->message));
			FreeErrorData(edata);
		}
	}
}

/* Builds an int4[] of n integers. */
static Datum
IntArray(int *ints, int n)
{
	Datum	   *values = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		values[i] = Int32GetDatum(ints[i]);
	return MakeArray(values, NULL, n, INT4OID);
}

STMT(advance_info, 1,
	 "SELECT g.gid, g.parallel, d.commit, b.branch"
	 "  FROM (SELECT DISTINCT x FROM pg_catalog.unnest($1) x) a (gid)"
	 "  JOIN tcc._gtx g ON g.gid = a.gid"
	 "  JOIN tcc._decision d ON d.gid = g.gid"
	 "  LEFT JOIN tcc._branch b ON b.gid = g.gid"
	 "   AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')"
	 " WHERE g.status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 " ORDER BY g.gid, b.branch",
	 UUIDARRAYOID);

STMT(finish_gtxs, 2,
	 "UPDATE tcc._gtx g SET status = f.status, finished_at = pg_catalog.clock_timestamp(),"
	 "       last_error = NULL"
	 "  FROM unnest($1, $2) f (gid, status)"
	 " WHERE g.gid = f.gid"
	 "   AND g.status = CASE f.status WHEN 'confirmed' THEN 'confirming' ELSE 'cancelling' END",
	 UUIDARRAYOID, TEXTARRAYOID);

/* Transactions whose phase two has no branch pending, to be finished. */
typedef struct Finishing
{
	int			n;
	pg_uuid_t  *gids;
	Datum	   *statuses;
} Finishing;

/* Sets up an empty list with room for max transactions. */
static void
FinishingInit(Finishing *fin, int max)
{
	fin->n = 0;
	fin->gids = palloc(sizeof(pg_uuid_t) * Max(max, 1));
	fin->statuses = palloc(sizeof(Datum) * Max(max, 1));
}

/* Adds a transaction to the list. */
static void
FinishingAdd(Finishing *fin, pg_uuid_t *gid, bool commit)
{
	fin->gids[fin->n] = *gid;
	fin->statuses[fin->n++] = CStringGetTextDatum(commit ? "confirmed" : "cancelled");
}

/* confirming -> confirmed, cancelling -> cancelled, for the whole list. */
static void
Finish(Finishing *fin)
{
	Datum		args[2];

	if (fin->n == 0)
		return;
	args[0] = GidArray(fin->gids, fin->n);
	args[1] = MakeArray(fin->statuses, NULL, fin->n, TEXTOID);
	Exec(&finish_gtxs, args, NULL, false);
}

/*
 * Moves phase two of the given gids forward as the tables show it:
 * confirming -> confirmed or cancelling -> cancelled once no branch is
 * pending; otherwise schedules the next branch (registration order for
 * confirm, reverse for cancel), or every pending branch when the
 * transaction is parallel (schedule.c).  Invariant: a branch is called only
 * while its transaction is confirming or cancelling, and in sequential mode
 * only after every branch before it has finished.  force: due now even if
 * a backoff was waiting (tcc_retry).
 */
static void
Advance(pg_uuid_t *gids, int ngids, bool force)
{
	Datum		args[1];
	uint64		n;
	int		   *pending;
	Finishing	fin;
	TimestampTz now = GetCurrentTimestamp();
	uint64		i = 0;

	if (ngids == 0)
		return;
	args[0] = GidArray(gids, ngids);
	Exec(&advance_info, args, NULL, false);
	n = SPI_processed;
	pending = palloc(sizeof(int) * Max(n, 1));
	FinishingInit(&fin, ngids);
	while (i < n)
	{
		bool		isnull;
		pg_uuid_t	gid = *DatumGetUUIDP(Col(i, 1, &isnull));
		bool		parallel = DatumGetBool(Col(i, 2, &isnull));
		bool		commit = DatumGetBool(Col(i, 3, &isnull));
		int			npending = 0;

		for (; i < n && memcmp(DatumGetUUIDP(Col(i, 1, &isnull)), &gid,
							   sizeof(gid)) == 0; i++)
		{
			Datum		branch = Col(i, 4, &isnull);

			if (!isnull)
				pending[npending++] = DatumGetInt32(branch);
		}
		if (TccPhaseStart(&gid, commit, parallel, pending, npending, now, force))
			FinishingAdd(&fin, &gid, commit);
	}
	Finish(&fin);
}

STMT(in_phase_gtxs, 0,
	 "SELECT gid FROM tcc._gtx WHERE status IN ('confirming', 'cancelling')");

/* Collects the gids of the current result set's first column. */
static pg_uuid_t *
ResultGids(int *n)
{
	pg_uuid_t  *gids = palloc(sizeof(pg_uuid_t) * Max(SPI_processed, 1));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		gids[i] = *DatumGetUUIDP(Col(i, 1, &isnull));
	}
	*n = (int) SPI_processed;
	return gids;
}

/*
 * Worker start: rebuilds the schedule from the tables; every pending call
 * of a confirming or cancelling transaction is due now (rule R5).  A
 * partial index keeps this proportional to the pending work, not to the
 * retained history.
 */
void
TccStoreStartup(void)
{
	pg_uuid_t  *gids;
	int			n;

	Exec(&in_phase_gtxs, NULL, NULL, false);
	gids = ResultGids(&n);
	Advance(gids, n, false);
}

/* whether branch b is not called in the phase decided by dec.commit */
#define SKIPPED_IN_PHASE \
	"CASE WHEN dec.commit THEN b.confirm_url IS NULL" \
	"     ELSE b.cancel_url IS NULL OR b.status = 'refused' END"

/*
 * The end of both statements that start phase two (dec holds the gids):
 * skips the branches the phase does not call and returns, per transaction,
 * its decision and the branches left to call.  The final SELECT still sees
 * the branches as they were, hence the skip condition again.
 */
#define PHASE_TWO_SKIP \
	"  RETURNING g.gid, d.commit, g.parallel)," \
	" skip AS (" \
	"  UPDATE tcc._branch b SET status = 'skipped'" \
	"    FROM dec" \
	"   WHERE b.gid = dec.gid" \
	"     AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')" \
	"     AND " SKIPPED_IN_PHASE ")" \
	"SELECT dec.gid, dec.commit, dec.parallel," \
	"       ARRAY(SELECT b.branch FROM tcc._branch b" \
	"              WHERE b.gid = dec.gid" \
	"                AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')" \
	"                AND NOT " SKIPPED_IN_PHASE \
	"              ORDER BY b.branch)" \
	"  FROM dec"

STMT(start_phase_two, 1,
	 "WITH dec AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END,"
	 "         begin_xid = NULL"
	 "    FROM tcc._decision d"
	 "   WHERE d.gid = g.gid AND g.gid IN ("
	 "         SELECT t.gid FROM tcc._gtx t JOIN tcc._decision e ON e.gid = t.gid"
	 "          WHERE t.status = 'trying' LIMIT $1)"
	 PHASE_TWO_SKIP,
	 INT4OID);

STMT(start_phase_two_of, 2,
	 "WITH dec AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END,"
	 "         begin_xid = NULL"
	 "    FROM tcc._decision d"
	 "   WHERE d.gid = g.gid AND g.gid = ANY ($1) AND g.status = $2"
	 PHASE_TWO_SKIP,
	 UUIDARRAYOID, TEXTOID);

#define PHASE_BATCH 2000

/*
 * trying -> confirming or cancelling, for the given gids if gids is not
 * NULL, else for up to PHASE_BATCH gids whose decision has committed (a
 * scan of every transaction still trying).  Branches the phase does not
 * call (no URL for it, or a refused try when cancelling) become skipped;
 * then phase two starts, or the transaction is finished at once if no
 * branch is left to call.  Returns true if more decided gids may be
 * waiting.
 */
static bool
StartPhaseTwo(pg_uuid_t *decided, int ndecided)
{
	Datum		args[2];
	Finishing	fin;
	TimestampTz now = GetCurrentTimestamp();
	uint64		n;

	if (decided != NULL)
	{
		args[0] = GidArray(decided, ndecided);
		args[1] = CStringGetTextDatum("trying");
		Exec(&start_phase_two_of, args, NULL, false);
	}
	else
	{
		args[0] = Int32GetDatum(PHASE_BATCH);
		Exec(&start_phase_two, args, NULL, false);
	}
	n = SPI_processed;
	FinishingInit(&fin, (int) n);
	for (uint64 r = 0; r < n; r++)
	{
		bool		isnull;
		pg_uuid_t	gid = *DatumGetUUIDP(Col(r, 1, &isnull));
		bool		commit = DatumGetBool(Col(r, 2, &isnull));
		bool		parallel = DatumGetBool(Col(r, 3, &isnull));
		Datum	   *elems;
		int			nelems;
		int		   *pending;

		deconstruct_array(DatumGetArrayTypeP(Col(r, 4, &isnull)), INT4OID,
						  sizeof(int32), true, TYPALIGN_INT,
						  &elems, NULL, &nelems);
		pending = palloc(sizeof(int) * Max(nelems, 1));
		for (int j = 0; j < nelems; j++)
			pending[j] = DatumGetInt32(elems[j]);
		if (TccPhaseStart(&gid, commit, parallel, pending, nelems, now, false))
			FinishingAdd(&fin, &gid, commit);
	}
	Finish(&fin);
	return decided == NULL && n >= PHASE_BATCH;
}

STMT(undecided_gtxs, 0,
	 "SELECT g.gid, g.begin_xid, g.deadline <= now(), f.failed"
	 "  FROM tcc._gtx g"
	 " CROSS JOIN LATERAL (SELECT EXISTS ("
	 "       SELECT 1 FROM tcc._branch b"
	 "        WHERE b.gid = g.gid AND b.status IN ('refused', 'unknown'))) f (failed)"
	 " WHERE g.status = 'trying'"
	 "   AND (g.deadline <= now() OR g.begin_xid IS NOT NULL OR f.failed)"
	 "   AND NOT EXISTS (SELECT 1 FROM tcc._decision d WHERE d.gid = g.gid)"
	 " ORDER BY g.deadline");

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
 * Every such transaction is looked at, however many are open.  Those whose
 * lock is held (a finish in an open transaction, or an aborting caller not
 * yet gone) are left for a later pass: *blocked says so.  Returns true if
 * it decided any.
 */
static bool
CancelStuck(bool *blocked)
{
	uint64		n;
	pg_uuid_t  *gids;
	const char **reasons;
	int			decided = 0;

	Exec(&undecided_gtxs, NULL, NULL, false);
	n = SPI_processed;
	if (n == 0)
		return false;
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
		else
			*blocked = true;
	}
	if (decided >= 256)
		*blocked = true;
	return decided > 0;
}

STMT(pending_actions, 0,
	 "SELECT id, gid, action FROM tcc._action WHERE NOT applied ORDER BY id LIMIT 100");

STMT(action_applied, 1,
	 "UPDATE tcc._action SET applied = true WHERE id = $1",
	 INT8OID);

STMT(resume_gtx, 2,
	 "WITH g AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 "    FROM tcc._decision d"
	 "   WHERE d.gid = g.gid AND g.gid = $1"
	 "     AND g.status IN ('failed', 'confirming', 'cancelling')"
	 "  RETURNING g.gid)"
	 "UPDATE tcc._branch b SET attempts = 0, next_attempt_at = NULL"
	 "  FROM g"
	 " WHERE b.gid = g.gid AND b.attempts >= $2"
	 "   AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')",
	 UUIDOID, INT4OID);

STMT(resolve_gtx, 1,
	 "UPDATE tcc._gtx SET status = 'resolved', finished_at = pg_catalog.clock_timestamp()"
	 " WHERE gid = $1 AND status NOT IN ('confirmed', 'cancelled', 'resolved')",
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
	Advance(gid, 1, true);
}

/*
 * any non-final state -> resolved (tcc_resolve): no call is made again
 * (scheduled ones are dropped when they come due).
 */
static void
Resolve(pg_uuid_t *gid)
{
	Datum		args[1] = {UUIDPGetDatum(gid)};

	Exec(&resolve_gtx, args, NULL, false);
	TccPhaseForget(gid);
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
 * One settling pass.  actions: apply operator actions and start phase two
 * of every decided transaction; stuck: cancel undecided transactions that
 * can no longer confirm (*blocked: some could not be decided yet);
 * decided: gids whose decisions just committed, to start by key.  Returns
 * true if more work is waiting already.
 */
bool
TccStoreSettle(bool actions, bool stuck, pg_uuid_t *decided, int ndecided,
			   bool *blocked)
{
	bool		more = false;

	*blocked = false;
	if (actions)
		ApplyActions();
	if (stuck && CancelStuck(blocked))
		actions = true;
	if (actions)
		more = StartPhaseTwo(NULL, 0);
	else if (ndecided > 0)
		(void) StartPhaseTwo(decided, ndecided);
	return more;
}

STMT(record_results, 8,
	 "WITH r AS ("
	 "  SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8)"
	 "    AS r (gid, branch, op, started_at, duration_ms, http_status, error, next_at)),"
	 " a AS ("
	 "  INSERT INTO tcc._attempt (gid, branch, op, started_at, duration_ms, http_status, error)"
	 "  SELECT gid, branch, op, started_at, duration_ms, http_status, error FROM r)"
	 "UPDATE tcc._branch b"
	 "   SET status = CASE WHEN r.error IS NOT NULL THEN b.status"
	 "                     WHEN r.op = 'confirm' THEN 'confirmed' ELSE 'cancelled' END,"
	 "       attempts = b.attempts + 1, last_http_status = r.http_status,"
	 "       last_error = r.error, next_attempt_at = r.next_at"
	 "  FROM r WHERE b.gid = r.gid AND b.branch = r.branch",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	 FLOAT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID);

STMT(record_failures, 4,
	 "WITH f AS ("
	 "  SELECT gid, pg_catalog.bool_or(exhausted) AS exhausted,"
	 "         (pg_catalog.array_agg(branch ORDER BY exhausted DESC))[1] AS branch,"
	 "         (pg_catalog.array_agg(error ORDER BY exhausted DESC))[1] AS error"
	 "    FROM unnest($1, $2, $3, $4) AS f (gid, branch, error, exhausted)"
	 "   GROUP BY gid),"
	 " u AS ("
	 "  UPDATE tcc._gtx g"
	 "     SET last_error = f.error,"
	 "         status = CASE WHEN f.exhausted THEN 'failed' ELSE g.status END"
	 "    FROM f JOIN tcc._decision d ON d.gid = f.gid"
	 "   WHERE g.gid = f.gid"
	 "     AND g.status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 "  RETURNING g.gid, g.status)"
	 "SELECT pg_catalog.pg_notify('tcc_alert',"
	 "         pg_catalog.json_build_object('gid', f.gid, 'status', 'failed',"
	 "                                      'branch', f.branch, 'error', f.error)::text)"
	 "  FROM f JOIN u ON u.gid = f.gid"
	 " WHERE u.status = 'failed'",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, BOOLARRAYOID);

/*
 * Records the outcomes of finished confirm and cancel calls, all at once:
 * a branch is done and phase two moves on (from memory where the worker
 * remembers the transaction, else from the tables); or it is retried after
 * the backoff delay; or it used up tcc.max_attempts and its transaction
 * goes confirming / cancelling -> failed, with NOTIFY tcc_alert.
 */
void
TccStoreResults(TccCall **calls, int n)
{
	Datum	   *gids = palloc(sizeof(Datum) * n);
	Datum	   *branches = palloc(sizeof(Datum) * n);
	Datum	   *ops = palloc(sizeof(Datum) * n);
	Datum	   *started = palloc(sizeof(Datum) * n);
	Datum	   *durations = palloc(sizeof(Datum) * n);
	Datum	   *statuses = palloc(sizeof(Datum) * n);
	bool	   *status_nulls = palloc(sizeof(bool) * n);
	Datum	   *errors = palloc(sizeof(Datum) * n);
	bool	   *error_nulls = palloc(sizeof(bool) * n);
	Datum	   *next_at = palloc(sizeof(Datum) * n);
	bool	   *next_nulls = palloc(sizeof(bool) * n);
	Datum	   *exhausted = palloc(sizeof(Datum) * n);
	TccCall   **done = palloc(sizeof(TccCall *) * n);
	pg_uuid_t  *going = palloc(sizeof(pg_uuid_t) * n);
	pg_uuid_t  *unknown = palloc(sizeof(pg_uuid_t) * n);
	int			ngoing = 0;
	int			nunknown = 0;
	Finishing	fin;
	Datum	   *fail_gids = palloc(sizeof(Datum) * n);
	Datum	   *fail_branches = palloc(sizeof(Datum) * n);
	Datum	   *fail_errors = palloc(sizeof(Datum) * n);
	int			ndone = 0;
	int			nfail = 0;
	TimestampTz now = GetCurrentTimestamp();
	Datum		args[8];

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		TccCall    *call = calls[i];
		bool		ok = call->http_status >= 200 && call->http_status <= 299;

		gids[i] = UUIDPGetDatum(&call->gid);
		branches[i] = Int32GetDatum(call->branch);
		ops[i] = CStringGetTextDatum(TccOpName(call->op));
		started[i] = TimestampTzGetDatum(call->started_at);
		durations[i] = Float8GetDatum(call->duration_ms);
		statuses[i] = Int32GetDatum(call->http_status);
		status_nulls[i] = (call->http_status == 0);
		errors[i] = CStringGetTextDatum(call->error);
		error_nulls[i] = ok;
		next_nulls[i] = true;
		TccScheduleDone(&call->gid, call->branch);
		if (ok)
		{
			done[ndone++] = call;
			continue;
		}
		if (call->http_status == 409)
			ereport(WARNING,
					(errmsg("tcc: participant answered 409 to %s of branch %d",
							TccOpName(call->op), call->branch),
					 errdetail("A 409 is only meaningful for try; the call is retried.")));
		fail_gids[nfail] = gids[i];
		fail_branches[nfail] = branches[i];
		fail_errors[nfail] = errors[i];
		exhausted[nfail] = BoolGetDatum(call->attempts + 1 >= tcc_max_attempts);
		nfail++;
		/* a transaction that fails is read from the tables from now on */
		if (call->attempts + 1 >= tcc_max_attempts)
			TccPhaseForget(&call->gid);
		if (call->attempts + 1 < tcc_max_attempts)
		{
			TimestampTz at = TimestampTzPlusMilliseconds(now,
														 TccBackoffMs(call->attempts + 1,
																	  call->retry_after_ms));

			next_at[i] = TimestampTzGetDatum(at);
			next_nulls[i] = false;
			TccSchedule(&call->gid, call->branch, at, false);
		}
	}

	args[0] = MakeArray(gids, NULL, n, UUIDOID);
	args[1] = MakeArray(branches, NULL, n, INT4OID);
	args[2] = MakeArray(ops, NULL, n, TEXTOID);
	args[3] = MakeArray(started, NULL, n, TIMESTAMPTZOID);
	args[4] = MakeArray(durations, NULL, n, FLOAT8OID);
	args[5] = MakeArray(statuses, status_nulls, n, INT4OID);
	args[6] = MakeArray(errors, error_nulls, n, TEXTOID);
	args[7] = MakeArray(next_at, next_nulls, n, TIMESTAMPTZOID);
	Exec(&record_results, args, NULL, false);

	if (nfail > 0)
	{
		args[0] = MakeArray(fail_gids, NULL, nfail, UUIDOID);
		args[1] = MakeArray(fail_branches, NULL, nfail, INT4OID);
		args[2] = MakeArray(fail_errors, NULL, nfail, TEXTOID);
		args[3] = MakeArray(exhausted, NULL, nfail, BOOLOID);
		Exec(&record_failures, args, NULL, false);
	}

	/* all outcomes first, then what comes next: a sibling may be among them */
	FinishingInit(&fin, ndone);
	for (int i = 0; i < ndone; i++)
	{
		bool		commit;

		switch (TccPhaseBranchDone(&done[i]->gid, done[i]->branch, &commit))
		{
			case TCC_PHASE_UNKNOWN:
				unknown[nunknown++] = done[i]->gid;
				break;
			case TCC_PHASE_GOING:
				going[ngoing++] = done[i]->gid;
				break;
			case TCC_PHASE_DONE:
				FinishingAdd(&fin, &done[i]->gid, commit);
				break;
		}
	}
	for (int i = 0; i < ngoing; i++)
		TccPhaseScheduleNext(&going[i], now);
	Finish(&fin);
	Advance(unknown, nunknown, false);
}

STMT(load_calls, 2,
	 "SELECT k.i, d.commit, b.confirm_url, b.cancel_url, b.payload, b.headers, b.attempts"
	 "  FROM unnest($1, $2) WITH ORDINALITY AS k (gid, branch, i)"
	 "  JOIN tcc._branch b ON b.gid = k.gid AND b.branch = k.branch"
	 "  JOIN tcc._gtx g ON g.gid = k.gid"
	 "  JOIN tcc._decision d ON d.gid = k.gid"
	 " WHERE g.status = CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END"
	 "   AND b.status NOT IN ('confirmed', 'cancelled', 'skipped')",
	 UUIDARRAYOID, INT4ARRAYOID);

/*
 * Reads the calls for branches the schedule says are due, allocated in
 * cxt.  A branch with nothing left to do (finished, resolved, failed
 * meanwhile) is dropped from the schedule.
 */
List *
TccStoreLoadCalls(pg_uuid_t *gids, int *branches, int n, MemoryContext cxt)
{
	Datum		args[2];
	bool	   *found;
	List	   *calls = NIL;

	if (n == 0)
		return NIL;
	args[0] = GidArray(gids, n);
	args[1] = IntArray(branches, n);
	Exec(&load_calls, args, NULL, false);
	found = palloc0(sizeof(bool) * n);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		TccCall    *call = palloc0(sizeof(TccCall));
		bool		isnull;
		int			i = (int) DatumGetInt64(Col(r, 1, &isnull)) - 1;
		bool		commit = DatumGetBool(Col(r, 2, &isnull));
		Datum		d;

		found[i] = true;
		call->gid = gids[i];
		call->branch = branches[i];
		call->op = commit ? TCC_OP_CONFIRM : TCC_OP_CANCEL;
		call->url = TextDatumGetCString(Col(r, commit ? 3 : 4, &isnull));
		call->payload = TextDatumGetCString(Col(r, 5, &isnull));
		call->payload_len = strlen(call->payload);
		d = Col(r, 6, &isnull);
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
		call->attempts = DatumGetInt32(Col(r, 7, &isnull));
		call->timeout_ms = tcc_request_timeout;
		calls = lappend(calls, call);
		MemoryContextSwitchTo(old);
	}
	for (int i = 0; i < n; i++)
	{
		if (!found[i])
			TccScheduleDone(&gids[i], branches[i]);
	}
	return calls;
}

STMT(next_deadline, 0,
	 "SELECT pg_catalog.min(deadline) FROM tcc._gtx WHERE status = 'trying'");

/*
 * Returns the earliest deadline of an undecided transaction, DT_NOEND when
 * there is none.
 */
TimestampTz
TccStoreNextDeadline(void)
{
	bool		isnull;
	Datum		d;

	Exec(&next_deadline, NULL, NULL, false);
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
	 " b AS (DELETE FROM tcc._branch WHERE gid IN (SELECT gid FROM old)),"
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
