/*-------------------------------------------------------------------------
 *
 * request.c
 *	  Handing intents from a backend to the worker, and the answer back:
 *	  the requests' encoding and the hand-over through shared memory.
 *
 * Each kind of request is a typed struct (request.h) with one encoder,
 * run in the backend, and one decoder, run in the worker (intent.c writes
 * what it decodes).
 *
 * R1 of docs/guarantees.md (intent before effect) needs the branch written
 * durably before its try is called, in a transaction the caller's ROLLBACK
 * cannot undo.  The backend therefore encodes the request into its own slot in shared
 * memory (or a DSM segment when it is larger than the slot), wakes the
 * worker and sleeps on its latch.  The worker writes the requests of all
 * waiting backends in one transaction, commits once without waiting for the
 * WAL flush, then answers each slot with the commit's WAL position and sets
 * the requester's latch; the requester waits until that position is durable
 * (flushed, and confirmed by any synchronous standby: durable.c) before it
 * goes on (group commit does the rest).
 *
 * A backend that stops waiting (statement_timeout, cancel, error) leaves its
 * slot to the worker, which still writes the request and then frees the slot
 * without answering.  Such an intent is harmless: the branch was never tried,
 * so the cancel it will receive is an empty rollback.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/request.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "storage/backendid.h"
#include "storage/dsm.h"
#include "storage/latch.h"

#include "durable.h"
#include "protocol.h"
#include "request.h"
#include "shmem.h"

/*
 * Most branches one request may carry: a bound on what a decoder allocates
 * from a count it reads, far above what validate.c lets a caller pass.
 */
#define MAX_BRANCHES_PER_REQUEST 100000

/*
 * How often a backend looks at its slot while it waits: for the reply (the
 * worker sets the latch; this is only a safety net), and for an earlier
 * request the worker is still writing.
 */
#define REPLY_POLL_MS 1000
#define SLOT_FREE_POLL_MS 10

/* Appends a text field to a message; len -1 encodes NULL. */
static void
MsgPutText(StringInfo buf, const char *s, int len)
{
	int32		n = s ? len : -1;

	appendBinaryStringInfo(buf, (char *) &n, sizeof(n));
	if (s)
	{
		appendBinaryStringInfo(buf, s, len);
		appendStringInfoChar(buf, '\0');
	}
}

/* Appends an integer field to a message. */
static void
MsgPutInt64(StringInfo buf, int64 v)
{
	appendBinaryStringInfo(buf, (char *) &v, sizeof(v));
}

/* Reads the next text field (NUL-terminated in place); NULL for NULL. */
static const char *
MsgGetText(StringInfo buf, int *len)
{
	int32		n;
	const char *s;

	if (buf->cursor + (int) sizeof(n) > buf->len)
		elog(ERROR, "tcc request truncated");
	memcpy(&n, buf->data + buf->cursor, sizeof(n));
	buf->cursor += sizeof(n);
	if (len)
		*len = n;
	if (n < 0)
		return NULL;
	if (buf->cursor + n + 1 > buf->len)
		elog(ERROR, "tcc request truncated");
	s = buf->data + buf->cursor;
	buf->cursor += n + 1;
	return s;
}

/* Reads the next integer field. */
static int64
MsgGetInt64(StringInfo buf)
{
	int64		v;

	if (buf->cursor + (int) sizeof(v) > buf->len)
		elog(ERROR, "tcc request truncated");
	memcpy(&v, buf->data + buf->cursor, sizeof(v));
	buf->cursor += sizeof(v);
	return v;
}

/* Appends a text field that may be NULL. */
static void
MsgPutString(StringInfo buf, const char *s)
{
	MsgPutText(buf, s, s ? strlen(s) : 0);
}

/* Reads a text field into a C string pointing into the message. */
static char *
MsgGetString(StringInfo buf)
{
	return (char *) MsgGetText(buf, NULL);
}

/* Reads a gid field. */
static void
MsgGetGid(StringInfo buf, pg_uuid_t *gid)
{
	memcpy(gid, MsgGetText(buf, NULL), sizeof(pg_uuid_t));
}

/* Appends n branches: their count, then each one's fields. */
static void
PutBranches(StringInfo msg, TccBranchSpec *specs, int n)
{
	MsgPutInt64(msg, n);
	for (int b = 0; b < n; b++)
	{
		TccBranchSpec *spec = &specs[b];

		for (int i = 0; i < 3; i++)
			MsgPutString(msg, spec->urls[i]);
		MsgPutText(msg, spec->payload, strlen(spec->payload));
		MsgPutString(msg, spec->name);
		MsgPutInt64(msg, spec->nheaders);
		for (int i = 0; i < spec->nheaders; i++)
			MsgPutText(msg, spec->headers[i], strlen(spec->headers[i]));
		MsgPutInt64(msg, spec->protocol);
		MsgPutInt64(msg, spec->timeout_ms);
		MsgPutInt64(msg, spec->max_attempts);
		MsgPutInt64(msg, spec->pass_try_response);
	}
}

/*
 * Reads n branches written by PutBranches, their count already read; the
 * strings point into the message.
 */
static TccBranchSpec *
GetBranches(StringInfo msg, int n)
{
	TccBranchSpec *specs = palloc0(sizeof(TccBranchSpec) * Max(n, 1));

	for (int b = 0; b < n; b++)
	{
		TccBranchSpec *spec = &specs[b];

		for (int i = 0; i < 3; i++)
			spec->urls[i] = MsgGetString(msg);
		spec->payload = MsgGetString(msg);
		spec->name = MsgGetString(msg);
		spec->nheaders = (int) MsgGetInt64(msg);
		if (spec->nheaders > 0)
			spec->headers = palloc(sizeof(char *) * spec->nheaders);
		for (int i = 0; i < spec->nheaders; i++)
			spec->headers[i] = MsgGetString(msg);
		spec->protocol = (TccProtocol) MsgGetInt64(msg);
		spec->timeout_ms = (int) MsgGetInt64(msg);
		spec->max_attempts = (int) MsgGetInt64(msg);
		spec->pass_try_response = MsgGetInt64(msg) != 0;
	}
	return specs;
}

/* Encodes a BEGIN request; its branches, if any, follow it. */
void
TccRequestPutBegin(StringInfo msg, TccBeginRequest *r)
{
	MsgPutText(msg, (char *) r->gid.data, UUID_LEN);
	MsgPutInt64(msg, r->owner);
	MsgPutInt64(msg, r->deadline);
	MsgPutInt64(msg, (int64) r->xid);
	MsgPutString(msg, r->kind);
	MsgPutString(msg, r->key);
	MsgPutInt64(msg, r->parallel);
	MsgPutText(msg, r->trace_given ? (char *) r->trace.id : NULL,
			   TCC_TRACE_ID_LEN);
	MsgPutInt64(msg, r->trace.flags);
	MsgPutString(msg, r->trace.state);
	if (r->nbranches > 0)
		PutBranches(msg, r->branches, r->nbranches);
}

/* Decodes a BEGIN request. */
void
TccRequestGetBegin(TccRequest *req, TccBeginRequest *r)
{
	StringInfo	msg = &req->data;
	const char *id;

	msg->cursor = 0;
	MsgGetGid(msg, &r->gid);
	r->owner = (Oid) MsgGetInt64(msg);
	r->deadline = (TimestampTz) MsgGetInt64(msg);
	r->xid = (uint64) MsgGetInt64(msg);
	r->kind = MsgGetString(msg);
	r->key = MsgGetString(msg);
	r->parallel = MsgGetInt64(msg) != 0;
	id = MsgGetText(msg, NULL);
	r->trace_given = (id != NULL);
	if (id)
		memcpy(r->trace.id, id, TCC_TRACE_ID_LEN);
	r->trace.flags = (uint8) MsgGetInt64(msg);
	r->trace.state = MsgGetString(msg);
	r->nbranches = 0;
	if (msg->cursor < msg->len)
		r->nbranches = (int) MsgGetInt64(msg);
	if (r->nbranches < 0 || r->nbranches > MAX_BRANCHES_PER_REQUEST)
		elog(ERROR, "tcc: request with %d branches", r->nbranches);
	r->branches = GetBranches(msg, r->nbranches);
}

/* Encodes a BRANCH request. */
void
TccRequestPutBranch(StringInfo msg, TccBranchRequest *r)
{
	MsgPutText(msg, (char *) r->gid.data, UUID_LEN);
	MsgPutInt64(msg, r->user);
	MsgPutInt64(msg, r->is_super);
	PutBranches(msg, r->branches, r->nbranches);
}

/* Decodes a BRANCH request. */
void
TccRequestGetBranch(TccRequest *req, TccBranchRequest *r)
{
	StringInfo	msg = &req->data;

	msg->cursor = 0;
	MsgGetGid(msg, &r->gid);
	r->user = (Oid) MsgGetInt64(msg);
	r->is_super = MsgGetInt64(msg) != 0;
	r->nbranches = (int) MsgGetInt64(msg);
	if (r->nbranches < 1)
		elog(ERROR, "tcc: branch request with %d branches", r->nbranches);
	if (r->nbranches > MAX_BRANCHES_PER_REQUEST)
		elog(ERROR, "tcc: request with %d branches", r->nbranches);
	r->branches = GetBranches(msg, r->nbranches);
}

/* Encodes a TRY_FAILED request. */
void
TccRequestPutTryFailed(StringInfo msg, TccTryFailedRequest *r)
{
	MsgPutText(msg, (char *) r->gid.data, UUID_LEN);
	MsgPutInt64(msg, r->branch);
	MsgPutText(msg, r->status, strlen(r->status));
	MsgPutInt64(msg, r->http_status);
	MsgPutText(msg, r->error, strlen(r->error));
	MsgPutInt64(msg, r->started);
	MsgPutInt64(msg, (int64) (r->duration_ms * 1000.0));
}

/* Decodes a TRY_FAILED request. */
void
TccRequestGetTryFailed(TccRequest *req, TccTryFailedRequest *r)
{
	StringInfo	msg = &req->data;

	msg->cursor = 0;
	MsgGetGid(msg, &r->gid);
	r->branch = (int) MsgGetInt64(msg);
	r->status = MsgGetText(msg, NULL);
	r->http_status = (int) MsgGetInt64(msg);
	r->error = MsgGetText(msg, NULL);
	r->started = (TimestampTz) MsgGetInt64(msg);
	r->duration_ms = (double) MsgGetInt64(msg) / 1000.0;
}

/* Encodes a TRY_ANSWERS request. */
void
TccRequestPutTryAnswers(StringInfo msg, TccTryAnswersRequest *r)
{
	MsgPutText(msg, (char *) r->gid.data, UUID_LEN);
	MsgPutInt64(msg, r->n);
	for (int i = 0; i < r->n; i++)
	{
		MsgPutInt64(msg, r->branches[i]);
		MsgPutString(msg, r->answers[i]);
	}
}

/* Decodes a TRY_ANSWERS request; the answers point into the message. */
void
TccRequestGetTryAnswers(TccRequest *req, TccTryAnswersRequest *r)
{
	StringInfo	msg = &req->data;

	msg->cursor = 0;
	MsgGetGid(msg, &r->gid);
	r->n = (int) MsgGetInt64(msg);
	if (r->n < 1 || r->n > MAX_BRANCHES_PER_REQUEST)
		elog(ERROR, "tcc: request with %d answers", r->n);
	r->branches = palloc(sizeof(int) * r->n);
	r->answers = palloc(sizeof(char *) * r->n);
	for (int i = 0; i < r->n; i++)
	{
		r->branches[i] = (int) MsgGetInt64(msg);
		r->answers[i] = MsgGetString(msg);
	}
}

/*
 * True when a message of len bytes fits in a slot; a larger one goes
 * through a DSM segment.
 */
static bool
FitsInSlot(int len)
{
	return len <= TCC_SLOT_INLINE;
}

/* Returns this backend's request slot. */
static TccSlot *
MySlot(void)
{
	if (MyBackendId < 1 || MyBackendId > TccShmemRoot->nslots)
		elog(ERROR, "tcc: backend id %d has no request slot", MyBackendId);
	return TccShmemSlot(TccState, MyBackendId - 1);
}

/*
 * Waits until an earlier request left behind in this slot is written.  A
 * slot found DONE holds the answer to a backend that exited while waiting
 * (FATAL skips its clean-up): nobody will read it, so it is free.
 */
static void
WaitSlotFree(TccSlot *slot)
{
	for (;;)
	{
		TccSlotState state;

		SpinLockAcquire(&slot->mutex);
		if (slot->state == TCC_SLOT_DONE)
			slot->state = TCC_SLOT_FREE;
		state = slot->state;
		SpinLockRelease(&slot->mutex);
		if (state == TCC_SLOT_FREE)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 SLOT_FREE_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Puts a message into this backend's slot and wakes the worker.  Returns
 * the DSM segment holding a large message (the caller detaches it).
 */
static dsm_segment *
PostRequest(TccSlot *slot, TccRequestKind kind, StringInfo msg, bool wait)
{
	dsm_segment *seg = NULL;

	WaitSlotFree(slot);
	if (!FitsInSlot(msg->len))
	{
		seg = dsm_create(msg->len, 0);
		dsm_pin_mapping(seg);
		memcpy(dsm_segment_address(seg), msg->data, msg->len);
		slot->dsm = dsm_segment_handle(seg);
	}
	else
		memcpy(slot->data, msg->data, msg->len);
	slot->len = msg->len;
	slot->kind = kind;

	SpinLockAcquire(&slot->mutex);
	slot->requester = wait ? MyLatch : NULL;
	slot->state = TCC_SLOT_PENDING;
	SpinLockRelease(&slot->mutex);

	SpinLockAcquire(&TccState->mutex);
	TccState->requests_pending++;
	SpinLockRelease(&TccState->mutex);
	TccWakeWorker(false, false);
	return seg;
}

/*
 * Hands a request to the worker and waits until it is durably written;
 * raises the worker's error, if any.
 */
void
TccRequestSubmit(TccRequestKind kind, StringInfo msg, TccReply *reply)
{
	TccSlot    *slot = MySlot();
	dsm_segment *volatile seg = NULL;

	/* a standby has no worker until it is promoted */
	TccDurableRequirePrimary();
	seg = PostRequest(slot, kind, msg, true);
	PG_TRY();
	{
		for (;;)
		{
			bool		done;

			SpinLockAcquire(&slot->mutex);
			done = (slot->state == TCC_SLOT_DONE);
			if (done)
			{
				*reply = slot->reply;
				slot->state = TCC_SLOT_FREE;
			}
			SpinLockRelease(&slot->mutex);
			if (done)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 REPLY_POLL_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		/* nobody waits any longer: the worker writes it and frees the slot */
		SpinLockAcquire(&slot->mutex);
		if (slot->state == TCC_SLOT_DONE)
			slot->state = TCC_SLOT_FREE;
		else
			slot->requester = NULL;
		SpinLockRelease(&slot->mutex);
		if (seg)
			dsm_detach(seg);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (seg)
		dsm_detach(seg);

	if (reply->sqlerrcode != 0)
		ereport(ERROR,
				(errcode(reply->sqlerrcode),
				 errmsg("%s", reply->message)));

	/*
	 * The worker commits without waiting for its WAL flush and moves on;
	 * the flush, and the synchronous standbys' confirmation, are ours to
	 * wait for, together with every other backend waiting at the same
	 * moment.  A branch must be durable before its try (R1), and a gid once
	 * handed out must survive a crash and a failover (R3).
	 */
	TccDurableWait(reply->lsn);
}

/*
 * Hands a request to the worker without waiting for it, on an error path
 * where waiting is not possible: an interrupt or an error is being raised,
 * and the wait would serve interrupts.  Small messages only (a DSM segment
 * would have to outlive the error), and only when this backend's slot is
 * free.  Otherwise the request is dropped, with a LOG line saying why, and
 * false returned.
 *
 * Dropping is safe for its one use, telling the worker that a try was
 * interrupted (tries.c): that only hastens a cancel which happens anyway.
 * The same error aborts the caller's transaction; a gid begun in it is
 * cancelled at once (the worker looks when a beginner aborts), any other at
 * its deadline (R3 of docs/guarantees.md), and the cancel goes to every
 * branch whose try may have been sent (docs/states.md).
 */
bool
TccRequestSubmitNoWait(TccRequestKind kind, StringInfo msg)
{
	TccSlot    *slot = MySlot();
	TccSlotState state;

	if (!FitsInSlot(msg->len))
	{
		ereport(LOG,
				(errmsg("tcc: request of %d bytes not handed to the worker: larger than a slot",
						msg->len)));
		return false;
	}
	SpinLockAcquire(&slot->mutex);
	state = slot->state;
	SpinLockRelease(&slot->mutex);
	if (state != TCC_SLOT_FREE)
	{
		ereport(LOG,
				(errmsg("tcc: request not handed to the worker: this backend's slot still holds an earlier one")));
		return false;
	}
	(void) PostRequest(slot, kind, msg, false);
	return true;
}

/*
 * Worker: takes every pending request out of its database's slots, copying
 * each into the current memory context.
 */
List *
TccRequestTakeAll(void)
{
	List	   *requests = NIL;
	int			pending;

	SpinLockAcquire(&TccState->mutex);
	pending = TccState->requests_pending;
	TccState->requests_pending = 0;
	SpinLockRelease(&TccState->mutex);
	if (pending == 0)
		return NIL;

	for (int i = 0; i < TccShmemRoot->nslots; i++)
	{
		TccSlot    *slot = TccShmemSlot(TccState, i);
		TccRequest *req;
		bool		taken;

		SpinLockAcquire(&slot->mutex);
		taken = (slot->state == TCC_SLOT_PENDING);
		if (taken)
			slot->state = TCC_SLOT_TAKEN;
		SpinLockRelease(&slot->mutex);
		if (!taken)
			continue;

		req = palloc0(sizeof(TccRequest));
		req->kind = slot->kind;
		req->slot = i;
		initStringInfo(&req->data);
		if (!FitsInSlot(slot->len))
		{
			dsm_segment *seg = dsm_attach(slot->dsm);

			if (seg == NULL)
			{
				/* the requester is gone and took its message along */
				TccReply	lost = {0};

				TccRequestReply(req, &lost);
				continue;
			}
			appendBinaryStringInfo(&req->data, dsm_segment_address(seg),
								   slot->len);
			dsm_detach(seg);
		}
		else
			appendBinaryStringInfo(&req->data, slot->data, slot->len);
		requests = lappend(requests, req);
	}
	return requests;
}

/* Worker: answers a request, or frees its slot if nobody waits. */
void
TccRequestReply(TccRequest *req, TccReply *reply)
{
	TccSlot    *slot = TccShmemSlot(TccState, req->slot);
	Latch	   *latch;

	SpinLockAcquire(&slot->mutex);
	latch = slot->requester;
	if (latch)
	{
		slot->reply = *reply;
		slot->state = TCC_SLOT_DONE;
	}
	else
		slot->state = TCC_SLOT_FREE;
	SpinLockRelease(&slot->mutex);
	if (latch)
		SetLatch(latch);
}

/* Worker: true if a backend has posted a request not yet taken. */
bool
TccRequestsPending(void)
{
	bool		pending;

	SpinLockAcquire(&TccState->mutex);
	pending = TccState->requests_pending > 0;
	SpinLockRelease(&TccState->mutex);
	return pending;
}
