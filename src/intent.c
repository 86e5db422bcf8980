/*-------------------------------------------------------------------------
 *
 * intent.c
 *	  The worker writes the intents backends hand it: new global
 *	  transactions, their branches, failed tries.
 *
 * R1 of docs/guarantees.md (intent before effect) needs each branch
 * written durably before its try is called, in a transaction the caller's
 * ROLLBACK cannot undo.  request.c carries the requests to the worker;
 * here the worker writes the requests of all waiting backends in its own
 * transaction, begins and branches in a few set-based statements whatever
 * their number, and answers each with its refusal, if any.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/intent.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "gid.h"
#include "intent.h"
#include "protocol.h"
#include "request.h"
#include "schedule.h"
#include "store.h"
#include "tcc.h"
#include "util.h"

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

/* One request, decoded, and its reply. */
typedef struct Intent
{
	TccRequest *req;
	TccReply   *reply;
	int			rows;			/* begin and branches: rows in a batch */
	TccBeginRequest begin;		/* TCC_REQ_BEGIN */
	TccBranchRequest branch;	/* TCC_REQ_BRANCH */
} Intent;

/*
 * The begins and branches of one batch, column by column, for set-based
 * writes: one statement per kind of intent, whatever the batch size.
 */
typedef struct IntentBatch
{
	int			n;				/* requests */
	Intent	  **intents;
	TccReply  **replies;
	int			nbegin;			/* begins: column arrays */
	int		   *begin_req;
	pg_uuid_t  *begin_gid;
	Datum	   *owner,
			   *kind,
			   *key,
			   *parallel,
			   *deadline,
			   *begin_xid,
			   *trace_id,
			   *trace_flags,
			   *tracestate;
	bool	   *kind_null,
			   *key_null,
			   *trace_null,
			   *flags_null,
			   *state_null;
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
			   *protocol,
			   *timeout,
			   *max_attempts,
			   *pass;
	bool	   *timeout_null,
			   *attempts_null,
			   *name_null,
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
	BATCH_ALLOC(b, intents, m);
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
	BATCH_ALLOC(b, trace_id, m);
	BATCH_ALLOC(b, trace_flags, m);
	BATCH_ALLOC(b, tracestate, m);
	BATCH_ALLOC(b, trace_null, m);
	BATCH_ALLOC(b, flags_null, m);
	BATCH_ALLOC(b, state_null, m);
	BATCH_ALLOC(b, timeout, m);
	BATCH_ALLOC(b, max_attempts, m);
	BATCH_ALLOC(b, pass, m);
	BATCH_ALLOC(b, timeout_null, m);
	BATCH_ALLOC(b, attempts_null, m);
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

/* Returns a text datum for s, and whether it is NULL. */
static Datum
TextDatum(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * Decodes a BEGIN or BRANCH request and counts the rows it adds to a
 * batch: one for a begin, one per branch it carries.
 */
static void
DecodeIntent(Intent *in)
{
	if (in->req->kind == TCC_REQ_BEGIN)
	{
		TccRequestGetBegin(in->req, &in->begin);
		in->rows = 1 + in->begin.nbranches;
	}
	else
	{
		TccRequestGetBranch(in->req, &in->branch);
		in->rows = in->branch.nbranches;
	}
}

/*
 * Adds n branches of one gid as consecutive rows of the batch (so they get
 * consecutive numbers), all answered by request r.
 */
static void
AddBranchRows(IntentBatch *b, int r, pg_uuid_t *gid, Oid user,
			  bool is_super, int n, TccBranchSpec *specs)
{
	for (int k = 0; k < n; k++)
	{
		TccBranchSpec *spec = &specs[k];
		int			i = b->nbranch++;
		bool		isnull;

		b->branch_req[i] = r;
		b->branch_gid[i] = *gid;
		b->user[i] = user;
		b->is_super[i] = is_super;
		b->try_url[i] = TextDatum(spec->urls[0], &b->try_null[i]);
		b->confirm_url[i] = TextDatum(spec->urls[1], &b->confirm_null[i]);
		b->cancel_url[i] = TextDatum(spec->urls[2], &b->cancel_null[i]);
		b->payload[i] = TextDatum(spec->payload, &isnull);
		b->name[i] = TextDatum(spec->name, &b->name_null[i]);
		b->headers_null[i] = (spec->nheaders == 0);
		if (spec->nheaders > 0)
		{
			/* one text, a line per header: a header line holds no LF */
			StringInfoData lines;

			initStringInfo(&lines);
			for (int h = 0; h < spec->nheaders; h++)
				appendStringInfo(&lines, "%s%s", h > 0 ? "\n" : "",
								 spec->headers[h]);
			b->headers[i] = CStringGetTextDatum(lines.data);
		}
		b->protocol[i] = CStringGetTextDatum(TccProtocolName(spec->protocol));
		b->timeout[i] = Int32GetDatum(spec->timeout_ms);
		b->timeout_null[i] = (spec->timeout_ms == 0);
		b->max_attempts[i] = Int32GetDatum(spec->max_attempts);
		b->attempts_null[i] = (spec->max_attempts == 0);
		b->pass[i] = BoolGetDatum(spec->pass_try_response);
	}
}

/*
 * Adds a BEGIN or BRANCH request to the batch's columns.  A BRANCH request
 * names one gid and carries one or more branches (tcc_branch,
 * tcc_branches); a BEGIN may carry the new transaction's first branches
 * (tcc_run), written after it in the same statement.
 */
static void
BatchAdd(IntentBatch *b, Intent *in)
{
	int			r = b->n++;

	b->intents[r] = in;
	b->replies[r] = in->reply;
	if (in->req->kind == TCC_REQ_BEGIN)
	{
		TccBeginRequest *begin = &in->begin;
		int			i = b->nbegin++;

		b->begin_req[i] = r;
		b->begin_gid[i] = begin->gid;
		b->owner[i] = ObjectIdGetDatum(begin->owner);
		b->deadline[i] = TimestampTzGetDatum(begin->deadline);
		b->begin_xid[i] = FullTransactionIdGetDatum(
			FullTransactionIdFromU64(begin->xid));
		b->kind[i] = TextDatum(begin->kind, &b->kind_null[i]);
		b->key[i] = TextDatum(begin->key, &b->key_null[i]);
		b->parallel[i] = BoolGetDatum(begin->parallel);
		/* no trace given: the gid is the trace id, flags 01 (sampled) */
		b->trace_null[i] = !begin->trace_given;
		b->flags_null[i] = !begin->trace_given || begin->trace.flags == 1;
		if (begin->trace_given)
		{
			pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

			memcpy(id->data, begin->trace.id, UUID_LEN);
			b->trace_id[i] = UUIDPGetDatum(id);
			b->trace_flags[i] = Int16GetDatum(begin->trace.flags);
		}
		b->tracestate[i] = TextDatum(begin->trace.state, &b->state_null[i]);
		AddBranchRows(b, r, &b->begin_gid[i], begin->owner, false,
					  begin->nbranches, begin->branches);
	}
	else
		AddBranchRows(b, r, &in->branch.gid, in->branch.user,
					  in->branch.is_super, in->branch.nbranches,
					  in->branch.branches);
}

STMT(insert_gtxs, 10,
	 "INSERT INTO tcc._gtx (gid, owner, kind, business_key, parallel, deadline, begin_xid,"
	 "                      trace_id, trace_flags, tracestate)"
	 " SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
	 " ON CONFLICT (kind, business_key) WHERE business_key IS NOT NULL DO NOTHING"
	 " RETURNING gid",
	 UUIDARRAYOID, OIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
	 TIMESTAMPTZARRAYOID, XID8ARRAYOID, UUIDARRAYOID, INT2ARRAYOID,
	 TEXTARRAYOID);

/*
 * Begins: creates the batch's global transactions in state trying; one
 * whose (kind, business_key) exists already is refused with 23505.
 */
static void
WriteBegins(IntentBatch *b)
{
	Datum		args[10];
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
	args[7] = TccStoreArray(b->trace_id, b->trace_null, b->nbegin, UUIDOID);
	args[8] = TccStoreArray(b->trace_flags, b->flags_null, b->nbegin, INT2OID);
	args[9] = TccStoreArray(b->tracestate, b->state_null, b->nbegin, TEXTOID);
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
	 "       g.owner, COALESCE(g.trace_id, g.gid),"
	 "       COALESCE(g.trace_flags, 1::smallint), g.tracestate"
	 "  FROM tcc._gtx g LEFT JOIN tcc._decision d ON d.gid = g.gid"
	 " WHERE g.gid = ANY ($1)",
	 UUIDARRAYOID);

STMT(insert_branches, 12,
	 "INSERT INTO tcc._branch (gid, branch, name, try_url, confirm_url, cancel_url, payload, headers, protocol,"
	 "                         timeout_ms, max_attempts, pass_try_response)"
	 " SELECT gid, branch, name, try_url, confirm_url, cancel_url, payload,"
	 "        pg_catalog.string_to_array(headers, E'\\n'), protocol, timeout_ms, max_attempts, pass"
	 "   FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
	 "     AS r (gid, branch, name, try_url, confirm_url, cancel_url, payload, headers, protocol,"
	 "           timeout_ms, max_attempts, pass)"
	 "  WHERE branch > 0",
	 UUIDARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	 TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
	 INT4ARRAYOID, BOOLARRAYOID);

/*
 * Branches: each is numbered after the existing ones of its transaction and
 * recorded while that transaction is undecided, and only for its owner (or a
 * superuser) -- R1 of docs/guarantees.md, intent before effect.  The gid's
 * lock keeps a concurrent tcc_finish from deciding meanwhile; an unknown gid
 * or another role's is refused before anything else and its lock given back
 * at once, so that such a request cannot hold up the owner.  One statement
 * writes the accepted ones: a refused one keeps branch number 0.
 */
static void
WriteBranches(IntentBatch *b)
{
	Datum		args[12];
	pg_uuid_t  *gids;
	char	  **status;
	bool	   *decided;
	int		   *last;
	Oid		   *owner;
	TccTrace   *trace;
	int			ngids;

	if (b->nbranch == 0)
		return;
	/* locks first, so that what is read next cannot be decided meanwhile */
	for (int i = 0; i < b->nbranch; i++)
		b->locked[i] = TccGidLock(&b->branch_gid[i], false);
	args[0] = TccStoreGidArray(b->branch_gid, b->nbranch);
	TccStoreExec(&branch_targets, args, NULL, false);	/* args[0] serves again below */
	ngids = (int) SPI_processed;
	gids = palloc(sizeof(pg_uuid_t) * Max(ngids, 1));
	status = palloc(sizeof(char *) * Max(ngids, 1));
	decided = palloc(sizeof(bool) * Max(ngids, 1));
	last = palloc(sizeof(int) * Max(ngids, 1));
	owner = palloc(sizeof(Oid) * Max(ngids, 1));
	trace = palloc0(sizeof(TccTrace) * Max(ngids, 1));
	for (int g = 0; g < ngids; g++)
	{
		bool		isnull;
		Datum		d;

		gids[g] = *DatumGetUUIDP(TccStoreCol(g, 1, &isnull));
		status[g] = TextDatumGetCString(TccStoreCol(g, 2, &isnull));
		decided[g] = DatumGetBool(TccStoreCol(g, 3, &isnull));
		last[g] = DatumGetInt32(TccStoreCol(g, 4, &isnull));
		owner[g] = DatumGetObjectId(TccStoreCol(g, 5, &isnull));
		memcpy(trace[g].id, DatumGetUUIDP(TccStoreCol(g, 6, &isnull))->data,
			   TCC_TRACE_ID_LEN);
		trace[g].flags = (uint8) DatumGetInt16(TccStoreCol(g, 7, &isnull));
		d = TccStoreCol(g, 8, &isnull);
		trace[g].state = isnull ? NULL : TextDatumGetCString(d);
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
				TccGidUnlock(gid);
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
			{
				/* the tries of the request carry the gid's trace context */
				reply->branch = number;
				memcpy(reply->trace_id, trace[g].id, TCC_TRACE_ID_LEN);
				reply->trace_flags = trace[g].flags;
				strlcpy(reply->tracestate, trace[g].state ? trace[g].state : "",
						sizeof(reply->tracestate));
			}
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
	args[9] = TccStoreArray(b->timeout, b->timeout_null, b->nbranch, INT4OID);
	args[10] = TccStoreArray(b->max_attempts, b->attempts_null, b->nbranch, INT4OID);
	args[11] = TccStoreArray(b->pass, NULL, b->nbranch, BOOLOID);
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
	args[6] = TccStoreTextOrNull(error && error[0] ? error : NULL, &nulls[6]);
	TccStoreExec(&insert_attempt, args, nulls, false);
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
RecordTryFailed(TccTryFailedRequest *failed)
{
	pg_uuid_t  *gid = &failed->gid;
	int			branch = failed->branch;
	const char *status = failed->status;
	int			http_status = failed->http_status;
	const char *error = failed->error;
	TimestampTz started = failed->started;
	double		duration_ms = failed->duration_ms;
	const char *source = "try failed";
	Datum		args[5];
	char		nulls[5] = "     ";

	args[0] = UUIDPGetDatum(gid);
	args[1] = Int32GetDatum(branch);
	args[2] = CStringGetTextDatum(status);
	args[3] = Int32GetDatum(http_status);
	if (http_status == 0)
		nulls[3] = 'n';
	args[4] = TccStoreTextOrNull(error, &nulls[4]);
	TccStoreExec(&mark_try_failed, args, nulls, false);
	LogAttempt(gid, branch, "try", started, duration_ms, http_status, error);
	/* a gid held by a caller is left to the worker's cancel pass (cancel.c) */
	if (TccGidTryLock(gid))
		(void) TccStoreDecideCancels(gid, &source, 1);
}

STMT(record_try_answers, 3,
	 "UPDATE tcc._branch b SET try_response = a.answer::jsonb"
	 "  FROM unnest($2, $3) a (branch, answer)"
	 " WHERE b.gid = $1 AND b.branch = a.branch AND b.pass_try_response",
	 UUIDOID, INT4ARRAYOID, TEXTARRAYOID);

/*
 * Request TRY_ANSWERS: keeps the answers of successful tries of branches
 * with pass_try_response in the worker's own transaction, so that their
 * confirm or cancel carries them whatever the caller does next
 * (docs/protocol.md#the-trys-answer-in-confirm-and-cancel).
 */
static void
RecordTryAnswers(TccTryAnswersRequest *r)
{
	Datum		args[3];
	Datum	   *branches = palloc(sizeof(Datum) * r->n);
	Datum	   *answers = palloc(sizeof(Datum) * r->n);
	bool	   *nulls = palloc(sizeof(bool) * r->n);

	for (int i = 0; i < r->n; i++)
	{
		branches[i] = Int32GetDatum(r->branches[i]);
		answers[i] = TextDatum(r->answers[i], &nulls[i]);
	}
	args[0] = UUIDPGetDatum(&r->gid);
	args[1] = TccStoreArray(branches, NULL, r->n, INT4OID);
	args[2] = TccStoreArray(answers, nulls, r->n, TEXTOID);
	TccStoreExec(&record_try_answers, args, NULL, false);
	/* a phase two begun meanwhile (the deadline) reads them when due */
	for (int i = 0; i < r->n; i++)
		TccSchedulePhaseCallForget(&r->gid, r->branches[i]);
}

/* Writes one request on its own (run in its own subtransaction). */
static void
WriteRequest(void *arg)
{
	Intent	   *in = arg;
	IntentBatch batch;

	if (in->req->kind == TCC_REQ_TRY_FAILED)
	{
		TccTryFailedRequest failed;

		TccRequestGetTryFailed(in->req, &failed);
		RecordTryFailed(&failed);
		return;
	}
	if (in->req->kind == TCC_REQ_TRY_ANSWERS)
	{
		TccTryAnswersRequest answers;

		TccRequestGetTryAnswers(in->req, &answers);
		RecordTryAnswers(&answers);
		return;
	}
	BatchInit(&batch, in->rows);
	BatchAdd(&batch, in);
	WriteBatch(&batch);
}

/*
 * Writes the requests of all waiting backends in the current transaction.
 * Begins and branches go in a few set-based statements, in one
 * subtransaction; a refusal (unknown gid, decided, ...) is a reply, not an
 * error.  Should the batch fail all the same, and for the rare failed try
 * and the answers of tries, each request is written in its own
 * subtransaction, so that one bad request cannot sink the others.  replies: one per request, zeroed, in
 * memory that outlives the unit of work.
 */
void
TccIntentWrite(List *requests, TccReply *replies)
{
	int			n = list_length(requests);
	Intent	   *intents = palloc0(sizeof(Intent) * Max(n, 1));
	Intent	  **single = palloc(sizeof(Intent *) * Max(n, 1));
	int			nsingle = 0;
	IntentBatch batch;
	ListCell   *lc;
	int			i = 0;
	int			rows = 0;

	foreach(lc, requests)
	{
		Intent	   *in = &intents[i];

		in->req = lfirst(lc);
		in->reply = &replies[i];
		if (in->req->kind != TCC_REQ_TRY_FAILED &&
			in->req->kind != TCC_REQ_TRY_ANSWERS)
		{
			DecodeIntent(in);
			rows += in->rows;
		}
		i++;
	}
	BatchInit(&batch, rows);
	for (i = 0; i < n; i++)
	{
		if (intents[i].req->kind == TCC_REQ_TRY_FAILED ||
			intents[i].req->kind == TCC_REQ_TRY_ANSWERS)
			single[nsingle++] = &intents[i];
		else
			BatchAdd(&batch, &intents[i]);
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
				single[nsingle++] = batch.intents[r];
			}
		}
	}
	for (int r = 0; r < nsingle; r++)
	{
		ErrorData  *edata = TccInSubtransaction(WriteRequest, single[r]);

		if (edata)
		{
			single[r]->reply->sqlerrcode = edata->sqlerrcode;
			TccStrlcpy(single[r]->reply->message, edata->message,
					   sizeof(single[r]->reply->message));
			FreeErrorData(edata);
		}
	}
}
