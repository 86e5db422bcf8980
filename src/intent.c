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
#include "shmem.h"
#include "store.h"
#include "tcc.h"
#include "util.h"

/* room for a refusal's message before it is clipped to the reply's */
#define REFUSAL_MAX_LEN 1024

/* Sets a request's error reply. */
static void
Refuse(TccReply *reply, int sqlerrcode, const char *fmt,...) pg_attribute_printf(3, 4);

static void
Refuse(TccReply *reply, int sqlerrcode, const char *fmt,...)
{
	va_list		ap;
	char		buf[REFUSAL_MAX_LEN];

	reply->sqlerrcode = sqlerrcode;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	TccStrlcpy(reply->message, buf, sizeof(reply->message));
}

/* how much of a refused begin's kind and business key its message shows */
#define KIND_SHOWN 60
#define KEY_SHOWN 100

/* W3C trace flags 01, sampled: the flags of a trace not given */
#define TRACE_FLAGS_SAMPLED 1

/* Returns the index of gid in gids[0..n), or -1. */
static int
FindGid(pg_uuid_t *gids, int n, pg_uuid_t *gid)
{
	for (int i = 0; i < n; i++)
		if (memcmp(&gids[i], gid, sizeof(pg_uuid_t)) == 0)
			return i;
	return -1;
}

/* insert_gtxs' parameters, an array each: one row per begin */
enum GtxParam
{
	GTX_GID,
	GTX_OWNER,
	GTX_KIND,
	GTX_KEY,
	GTX_PARALLEL,
	GTX_DEADLINE,
	GTX_BEGIN_XID,
	GTX_TRACE_ID,
	GTX_TRACE_FLAGS,
	GTX_TRACESTATE,
	GTX_NPARAMS
};

/* and its one result column */
#define GTX_CREATED_GID 1

STMT(insert_gtxs, GTX_NPARAMS,
	 "INSERT INTO tcc._gtx (gid, owner, kind, business_key, parallel, deadline, begin_xid,"
	 "                      trace_id, trace_flags, tracestate)"
	 " SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
	 " ON CONFLICT (kind, business_key) WHERE business_key IS NOT NULL DO NOTHING"
	 " RETURNING gid",
	 UUIDARRAYOID, OIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
	 TIMESTAMPTZARRAYOID, XID8ARRAYOID, UUIDARRAYOID, INT2ARRAYOID,
	 TEXTARRAYOID);

/* branch_targets' columns, from 1: one row per transaction named */
enum TargetColumn
{
	TARGET_GID = 1,
	TARGET_STATUS,
	TARGET_DECIDED,
	TARGET_LAST_BRANCH,			/* its highest branch number, 0: none */
	TARGET_OWNER,
	TARGET_TRACE_ID,
	TARGET_TRACE_FLAGS,
	TARGET_TRACESTATE
};

STMT(branch_targets, 1,
	 "SELECT g.gid, g.status, d.gid IS NOT NULL,"
	 "       (SELECT COALESCE(pg_catalog.max(b.branch), 0)"
	 "          FROM tcc._branch b WHERE b.gid = g.gid),"
	 "       g.owner, COALESCE(g.trace_id, g.gid),"
	 "       COALESCE(g.trace_flags, 1::smallint), g.tracestate"
	 "  FROM tcc._gtx g LEFT JOIN tcc._decision d ON d.gid = g.gid"
	 " WHERE g.gid = ANY ($1)",
	 UUIDARRAYOID);

/* insert_branches' parameters, an array each: one row per branch */
enum BranchParam
{
	BR_GID,
	BR_NUMBER,					/* 0: refused, not written */
	BR_NAME,
	BR_TRY_URL,
	BR_CONFIRM_URL,
	BR_CANCEL_URL,
	BR_PAYLOAD,
	BR_HEADERS,					/* a line per header */
	BR_PROTOCOL,
	BR_TIMEOUT,
	BR_MAX_ATTEMPTS,
	BR_PASS,
	BR_NPARAMS
};

STMT(insert_branches, BR_NPARAMS,
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

/* One request, decoded, and its reply. */
typedef struct Intent
{
	TccRequest *req;
	TccReply   *reply;
	int			rows;			/* begin and branches: rows in a batch */
	TccBeginRequest begin;		/* TCC_REQ_BEGIN */
	TccBranchRequest branch;	/* TCC_REQ_BRANCH */
} Intent;

/* A begin of a batch, beside its columns. */
typedef struct BeginRow
{
	TccReply   *reply;			/* of the request it comes with */
	pg_uuid_t	gid;
} BeginRow;

/* A branch of a batch, beside its columns. */
typedef struct BranchRow
{
	TccReply   *reply;			/* of the request it comes with */
	pg_uuid_t	gid;
	Oid			user;			/* who asks for it */
	bool		is_super;
	bool		locked;			/* its gid's lock taken */
} BranchRow;

/*
 * The begins and branches of one batch, column by column, for set-based
 * writes: one statement per kind of intent, whatever the batch size.
 */
typedef struct IntentBatch
{
	int			n;				/* requests */
	Intent	  **intents;
	int			nbegin;			/* begins */
	BeginRow   *begins;
	TccStoreColumn *gtx_cols;	/* per GTX_*: insert_gtxs' parameters */
	int			nbranch;		/* branches */
	BranchRow  *branches;
	TccStoreColumn *branch_cols;	/* per BR_*: insert_branches' */
} IntentBatch;

/* Sets up an empty batch with room for n rows (requests, begins, branches). */
static void
BatchInit(IntentBatch *b, int n)
{
	int			m = Max(n, 1);

	memset(b, 0, sizeof(IntentBatch));
	b->intents = palloc0(sizeof(Intent *) * m);
	b->begins = palloc0(sizeof(BeginRow) * m);
	b->gtx_cols = TccStoreColumns(&insert_gtxs, m);
	b->branches = palloc0(sizeof(BranchRow) * m);
	b->branch_cols = TccStoreColumns(&insert_branches, m);
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

/* Returns one text of a branch's headers, a line each (none holds a LF). */
static char *
HeaderLines(TccBranchSpec *spec)
{
	StringInfoData lines;

	initStringInfo(&lines);
	for (int h = 0; h < spec->nheaders; h++)
		appendStringInfo(&lines, "%s%s", h > 0 ? "\n" : "", spec->headers[h]);
	return lines.data;
}

/*
 * Adds n branches of one gid as consecutive rows of the batch (so they get
 * consecutive numbers), all answered by reply.
 */
static void
AddBranchRows(IntentBatch *b, TccReply *reply, pg_uuid_t *gid, Oid user,
			  bool is_super, int n, TccBranchSpec *specs)
{
	TccStoreColumn *c = b->branch_cols;

	for (int k = 0; k < n; k++)
	{
		TccBranchSpec *spec = &specs[k];
		int			i = b->nbranch++;
		BranchRow  *row = &b->branches[i];

		row->reply = reply;
		row->gid = *gid;
		row->user = user;
		row->is_super = is_super;
		c[BR_GID].values[i] = UUIDPGetDatum(&row->gid);
		TccStoreSetText(&c[BR_TRY_URL], i, spec->urls[TCC_OP_TRY]);
		TccStoreSetText(&c[BR_CONFIRM_URL], i, spec->urls[TCC_OP_CONFIRM]);
		TccStoreSetText(&c[BR_CANCEL_URL], i, spec->urls[TCC_OP_CANCEL]);
		TccStoreSetText(&c[BR_PAYLOAD], i, spec->payload);
		TccStoreSetText(&c[BR_NAME], i, spec->name);
		TccStoreSetText(&c[BR_HEADERS], i,
						spec->nheaders > 0 ? HeaderLines(spec) : NULL);
		TccStoreSetText(&c[BR_PROTOCOL], i, TccProtocolName(spec->protocol));
		/* 0: the setting applies, written as NULL */
		c[BR_TIMEOUT].values[i] = Int32GetDatum(spec->timeout_ms);
		c[BR_TIMEOUT].nulls[i] = (spec->timeout_ms == 0);
		c[BR_MAX_ATTEMPTS].values[i] = Int32GetDatum(spec->max_attempts);
		c[BR_MAX_ATTEMPTS].nulls[i] = (spec->max_attempts == 0);
		c[BR_PASS].values[i] = BoolGetDatum(spec->pass_try_response);
	}
}

/* Adds a BEGIN request's transaction to the batch's begins. */
static void
AddBeginRow(IntentBatch *b, TccReply *reply, TccBeginRequest *begin)
{
	TccStoreColumn *c = b->gtx_cols;
	int			i = b->nbegin++;
	BeginRow   *row = &b->begins[i];

	row->reply = reply;
	row->gid = begin->gid;
	c[GTX_GID].values[i] = UUIDPGetDatum(&row->gid);
	c[GTX_OWNER].values[i] = ObjectIdGetDatum(begin->owner);
	c[GTX_DEADLINE].values[i] = TimestampTzGetDatum(begin->deadline);
	c[GTX_BEGIN_XID].values[i] = FullTransactionIdGetDatum(
		FullTransactionIdFromU64(begin->xid));
	TccStoreSetText(&c[GTX_KIND], i, begin->kind);
	TccStoreSetText(&c[GTX_KEY], i, begin->key);
	c[GTX_PARALLEL].values[i] = BoolGetDatum(begin->parallel);
	/* no trace given: the gid is the trace id, flags 01 (sampled) */
	c[GTX_TRACE_ID].nulls[i] = !begin->trace_given;
	c[GTX_TRACE_FLAGS].nulls[i] = !begin->trace_given ||
		begin->trace.flags == TRACE_FLAGS_SAMPLED;
	if (begin->trace_given)
	{
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		memcpy(id->data, begin->trace.id, UUID_LEN);
		c[GTX_TRACE_ID].values[i] = UUIDPGetDatum(id);
		c[GTX_TRACE_FLAGS].values[i] = Int16GetDatum(begin->trace.flags);
	}
	TccStoreSetText(&c[GTX_TRACESTATE], i, begin->trace.state);
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
	b->intents[b->n++] = in;
	if (in->req->kind == TCC_REQ_BEGIN)
	{
		AddBeginRow(b, in->reply, &in->begin);
		AddBranchRows(b, in->reply, &in->begin.gid, in->begin.owner, false,
					  in->begin.nbranches, in->begin.branches);
	}
	else
		AddBranchRows(b, in->reply, &in->branch.gid, in->branch.user,
					  in->branch.is_super, in->branch.nbranches,
					  in->branch.branches);
}

/* Returns a text value of a column, "" if NULL, cut after len bytes. */
static char *
ShownText(TccStoreColumn *col, int row, int len)
{
	if (col->nulls[row])
		return "";
	return TccClip(TextDatumGetCString(col->values[row]), len);
}

/*
 * Begins: creates the batch's global transactions in state trying; one
 * whose (kind, business_key) exists already is refused with 23505.
 */
static void
WriteBegins(IntentBatch *b)
{
	Datum		args[GTX_NPARAMS];
	TccStoreColumn *c = b->gtx_cols;
	pg_uuid_t  *created;
	int			ncreated;

	if (b->nbegin == 0)
		return;
	TccStoreColumnParams(&insert_gtxs, c, b->nbegin, args);
	TccStoreExec(&insert_gtxs, args, NULL, false);
	ncreated = (int) SPI_processed;
	created = palloc(sizeof(pg_uuid_t) * Max(ncreated, 1));
	for (int i = 0; i < ncreated; i++)
	{
		bool		isnull;

		created[i] = *DatumGetUUIDP(TccStoreCol(i, GTX_CREATED_GID, &isnull));
	}
	for (int i = 0; i < b->nbegin; i++)
	{
		if (FindGid(created, ncreated, &b->begins[i].gid) < 0)
			Refuse(b->begins[i].reply, ERRCODE_UNIQUE_VIOLATION,
				   "a global transaction of kind \"%s\" with business key \"%s\" already exists",
				   ShownText(&c[GTX_KIND], i, KIND_SHOWN),
				   ShownText(&c[GTX_KEY], i, KEY_SHOWN));
	}
}

/* A transaction branches are added to, as branch_targets read it. */
typedef struct Target
{
	pg_uuid_t	gid;
	char	   *status;
	bool		decided;
	int			last;			/* its highest branch number so far */
	Oid			owner;
	TccTrace	trace;
} Target;

/*
 * Reads the transactions the batch's branches name (whose locks are
 * taken); returns them, and their number in *n.
 */
static Target *
ReadTargets(Datum gids, int *n)
{
	Datum		args[1] = {gids};
	Target	   *targets;

	TccStoreExec(&branch_targets, args, NULL, false);
	*n = (int) SPI_processed;
	targets = palloc0(sizeof(Target) * Max(*n, 1));
	for (int g = 0; g < *n; g++)
	{
		Target	   *t = &targets[g];
		bool		isnull;
		Datum		d;

		t->gid = *DatumGetUUIDP(TccStoreCol(g, TARGET_GID, &isnull));
		t->status = TextDatumGetCString(TccStoreCol(g, TARGET_STATUS, &isnull));
		t->decided = DatumGetBool(TccStoreCol(g, TARGET_DECIDED, &isnull));
		t->last = DatumGetInt32(TccStoreCol(g, TARGET_LAST_BRANCH, &isnull));
		t->owner = DatumGetObjectId(TccStoreCol(g, TARGET_OWNER, &isnull));
		d = TccStoreCol(g, TARGET_TRACE_ID, &isnull);
		memcpy(t->trace.id, DatumGetUUIDP(d)->data, TCC_TRACE_ID_LEN);
		d = TccStoreCol(g, TARGET_TRACE_FLAGS, &isnull);
		t->trace.flags = (uint8) DatumGetInt16(d);
		d = TccStoreCol(g, TARGET_TRACESTATE, &isnull);
		t->trace.state = isnull ? NULL : TextDatumGetCString(d);
	}
	return targets;
}

/* Returns the target of gid among targets[0..n), or NULL. */
static Target *
FindTarget(Target *targets, int n, pg_uuid_t *gid)
{
	for (int g = 0; g < n; g++)
		if (memcmp(&targets[g].gid, gid, sizeof(pg_uuid_t)) == 0)
			return &targets[g];
	return NULL;
}

/*
 * Numbers one branch of a batch after its transaction's existing ones, or
 * refuses its request (t: its transaction, NULL if unknown); returns the
 * number, 0 if refused.
 */
static int
NumberBranch(BranchRow *row, TccReply *reply, Target *t)
{
	pg_uuid_t  *gid = &row->gid;

	if (t == NULL || (t->owner != row->user && !row->is_super))
	{
		/* not the caller's to touch: give its lock back at once */
		if (row->locked)
			TccGidUnlock(gid);
		if (reply->sqlerrcode != 0)
			;					/* its request was refused already (a begin) */
		else if (t == NULL)
			Refuse(reply, ERRCODE_TCC_UNKNOWN_GID,
				   "global transaction %s does not exist", TccGidText(gid));
		else
			Refuse(reply, ERRCODE_INSUFFICIENT_PRIVILEGE,
				   "global transaction %s belongs to another role",
				   TccGidText(gid));
		return 0;
	}
	if (reply->sqlerrcode != 0)
		return 0;				/* another branch of its request was refused */
	if (!row->locked)
	{
		Refuse(reply, ERRCODE_TCC_BAD_DECISION,
			   "global transaction %s is being decided by another transaction",
			   TccGidText(gid));
		return 0;
	}
	if (t->decided || strcmp(t->status, "trying") != 0)
	{
		Refuse(reply, ERRCODE_TCC_BAD_DECISION,
			   "global transaction %s is already %s", TccGidText(gid),
			   t->decided && strcmp(t->status, "trying") == 0 ?
			   "decided" : t->status);
		return 0;
	}
	t->last++;
	if (reply->branch == 0)
	{
		/* the tries of the request carry the gid's trace context */
		reply->branch = t->last;
		memcpy(reply->trace_id, t->trace.id, TCC_TRACE_ID_LEN);
		reply->trace_flags = t->trace.flags;
		strlcpy(reply->tracestate, t->trace.state ? t->trace.state : "",
				sizeof(reply->tracestate));
	}
	return t->last;
}

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
	Datum		args[BR_NPARAMS];
	TccStoreColumn *c = b->branch_cols;
	Target	   *targets;
	int			ntargets;

	if (b->nbranch == 0)
		return;
	/* locks first, so that what is read next cannot be decided meanwhile */
	for (int i = 0; i < b->nbranch; i++)
		b->branches[i].locked = TccGidLock(&b->branches[i].gid, false);
	targets = ReadTargets(TccStoreArray(c[BR_GID].values, NULL, b->nbranch,
										UUIDOID), &ntargets);
	for (int i = 0; i < b->nbranch; i++)
	{
		BranchRow  *row = &b->branches[i];
		Target	   *t = FindTarget(targets, ntargets, &row->gid);

		c[BR_NUMBER].values[i] =
			Int32GetDatum(NumberBranch(row, row->reply, t));
	}
	/* a request is written whole or not at all */
	for (int i = 0; i < b->nbranch; i++)
	{
		if (b->branches[i].reply->sqlerrcode != 0)
			c[BR_NUMBER].values[i] = Int32GetDatum(0);
	}
	TccStoreColumnParams(&insert_branches, c, b->nbranch, args);
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

/* the first parameters of a statement on one branch's call: its key */
enum BranchKeyParam
{
	KEY_GID,
	KEY_BRANCH,
	KEY_NPARAMS
};

/* insert_attempt's parameters */
enum AttemptParam
{
	ATTEMPT_OP = KEY_NPARAMS,
	ATTEMPT_STARTED_AT,
	ATTEMPT_DURATION,
	ATTEMPT_HTTP_STATUS,		/* NULL: no answer */
	ATTEMPT_ERROR,
	ATTEMPT_NPARAMS
};

STMT(insert_attempt, ATTEMPT_NPARAMS,
	 "INSERT INTO tcc._attempt (" TCC_ATTEMPT_COLUMNS ")"
	 " VALUES ($1, $2, $3, $4, $5, $6, $7)",
	 UUIDOID, INT4OID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID, INT4OID, TEXTOID);

/*
 * Starts the nparams parameters of a statement on one branch's call: none
 * NULL yet, its key first.
 */
static void
SetKeyParams(Datum *args, char *nulls, int nparams, pg_uuid_t *gid,
			 int branch)
{
	memset(nulls, ' ', nparams);
	args[KEY_GID] = UUIDPGetDatum(gid);
	args[KEY_BRANCH] = Int32GetDatum(branch);
}

/*
 * Sets the HTTP status and error parameters of a statement on a call's
 * outcome, at positions status_at and error_at: NULL for no answer (status
 * 0) and for no error.
 */
static void
SetOutcomeParams(Datum *args, char *nulls, int status_at, int http_status,
				 int error_at, const char *error)
{
	args[status_at] = Int32GetDatum(http_status);
	nulls[status_at] = http_status == 0 ? 'n' : ' ';
	args[error_at] = TccStoreTextOrNull(error, &nulls[error_at]);
}

/* Appends one HTTP call to the attempt log. */
static void
LogAttempt(pg_uuid_t *gid, int branch, const char *op, TimestampTz started,
		   double duration_ms, int http_status, const char *error)
{
	Datum		args[ATTEMPT_NPARAMS];
	char		nulls[ATTEMPT_NPARAMS];

	SetKeyParams(args, nulls, ATTEMPT_NPARAMS, gid, branch);
	args[ATTEMPT_OP] = CStringGetTextDatum(op);
	args[ATTEMPT_STARTED_AT] = TimestampTzGetDatum(started);
	args[ATTEMPT_DURATION] = Float8GetDatum(duration_ms);
	SetOutcomeParams(args, nulls, ATTEMPT_HTTP_STATUS, http_status,
					 ATTEMPT_ERROR, error && error[0] ? error : NULL);
	TccStoreExec(&insert_attempt, args, nulls, false);
}

/* mark_try_failed's parameters */
enum TryFailedParam
{
	FAILED_STATUS = KEY_NPARAMS,
	FAILED_HTTP_STATUS,			/* NULL: no answer */
	FAILED_ERROR,
	FAILED_NPARAMS
};

STMT(mark_try_failed, FAILED_NPARAMS,
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
	const char *source = "try failed";
	Datum		args[FAILED_NPARAMS];
	char		nulls[FAILED_NPARAMS];

	SetKeyParams(args, nulls, FAILED_NPARAMS, gid, failed->branch);
	args[FAILED_STATUS] = CStringGetTextDatum(failed->status);
	SetOutcomeParams(args, nulls, FAILED_HTTP_STATUS, failed->http_status,
					 FAILED_ERROR, failed->error);
	TccStoreExec(&mark_try_failed, args, nulls, false);
	LogAttempt(gid, failed->branch, "try", failed->started,
			   failed->duration_ms, failed->http_status, failed->error);
	/* a gid held by a caller is left to the worker's cancel pass (cancel.c) */
	if (TccGidTryLock(gid))
		(void) TccStoreDecideCancels(gid, &source, 1);
}

/* record_try_answers' parameters: the gid, then an array each */
enum AnswerParam
{
	ANSWER_GID,
	ANSWER_BRANCH,
	ANSWER_TEXT,
	ANSWER_NPARAMS
};

STMT(record_try_answers, ANSWER_NPARAMS,
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
	Datum		args[ANSWER_NPARAMS];
	TccStoreColumn *c = TccStoreColumns(&record_try_answers, r->n);

	for (int i = 0; i < r->n; i++)
	{
		c[ANSWER_BRANCH].values[i] = Int32GetDatum(r->branches[i]);
		TccStoreSetText(&c[ANSWER_TEXT], i, r->answers[i]);
	}
	args[ANSWER_GID] = UUIDPGetDatum(&r->gid);
	TccStoreColumnParams(&record_try_answers, c, r->n, args);
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
 * subtransaction, so that one bad request cannot sink the others.
 * replies: one per request, zeroed, in memory that outlives the unit of
 * work.
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
				memset(batch.intents[r]->reply, 0, sizeof(TccReply));
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
