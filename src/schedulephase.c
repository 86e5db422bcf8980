/*-------------------------------------------------------------------------
 *
 * schedulephase.c
 *	  The worker's memory of each transaction in phase two: which of its
 *	  branches are called next, and what their calls send.
 *
 * The worker remembers each transaction in phase two: its decision and the
 * branches not yet confirmed or cancelled.  The worker is the only writer
 * of those rows, so when a call succeeds it knows from memory which branch
 * comes next, or that the transaction is done, without reading the tables
 * again.  What it does not remember (after a restart, after tcc_resolve,
 * once the transaction failed) it reads from the tables.  When a branch's
 * call is due is the schedule's business (schedule.c): this file hands it
 * the branches that come next.
 *
 * For a phase two it started itself, the worker also remembers what each
 * pending branch's call sends (URL, payload, headers), read with the start:
 * a due call then costs no read.  That memory has a ceiling
 * (CALLS_MAX_BYTES); beyond it, and after a restart or a failed call, the
 * call is read from the tables when it is due.
 *
 * The functions are declared in schedule.h, beside the schedule they feed.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/schedulephase.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "schedule.h"

/* A transaction in phase two, as the worker last wrote it. */
typedef struct PhaseEntry
{
	pg_uuid_t	gid;			/* hash key, first */
	bool		commit;
	bool		parallel;
	int			npending;
	int			lo;				/* pending[lo .. hi - 1] may be pending */
	int			hi;
	int		   *pending;		/* branches, ascending */
	bool	   *done;			/* per pending[]: no longer pending */
	int			one_pending;	/* pending[] of a single branch */
	bool		one_done;
	TccPhaseCall **calls;		/* per pending[]: its call, or NULL; NULL
								 * when none is remembered */
	TccPhaseCall *one_call;		/* calls[] of a single branch */
} PhaseEntry;

/* most memory the remembered calls of phase two may hold */
#define CALLS_MAX_BYTES (32 * 1024 * 1024)

/* initial size of the hash table of transactions: it grows as needed */
#define PHASES_HASH_SIZE 1024

static Size calls_bytes = 0;
static HTAB *phases = NULL;
static MemoryContext phase_cxt = NULL;

/*
 * Returns the transactions in phase two, by gid; creates the empty table,
 * in a memory context of its own, the first time.
 */
static HTAB *
Phases(void)
{
	HASHCTL		ctl;

	if (phases != NULL)
		return phases;
	phase_cxt = AllocSetContextCreate(TopMemoryContext, "tcc phase two",
									  ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(PhaseEntry);
	ctl.hcxt = phase_cxt;
	phases = hash_create("tcc phase two", PHASES_HASH_SIZE, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	return phases;
}

/*
 * Schedules what comes next in a transaction's phase two: every pending
 * branch when it is parallel, else the first (confirm) or the last (cancel)
 * in registration order.
 */
static void
ScheduleNextCalls(PhaseEntry *entry, TimestampTz now, bool force)
{
	if (entry->parallel)
	{
		for (int i = entry->lo; i < entry->hi; i++)
		{
			if (!entry->done[i])
				TccSchedule(&entry->gid, entry->pending[i], now, force);
		}
	}
	else
		TccSchedule(&entry->gid,
					entry->pending[entry->commit ? entry->lo : entry->hi - 1],
					now, force);
}

/* Frees a remembered call. */
static void
FreeRememberedCall(TccPhaseCall *call)
{
	calls_bytes -= GetMemoryChunkSpace(call);
	pfree(call);
}

/* Frees what a remembered transaction holds beside its hash entry. */
static void
FreePhaseMemory(PhaseEntry *entry)
{
	if (entry->calls != NULL)
	{
		for (int i = 0; i < entry->hi; i++)
		{
			if (entry->calls[i] != NULL)
				FreeRememberedCall(entry->calls[i]);
		}
		if (entry->calls != &entry->one_call)
			pfree(entry->calls);
		entry->calls = NULL;
	}
	if (entry->pending == &entry->one_pending)
		return;
	pfree(entry->pending);
	pfree(entry->done);
}

/*
 * Returns the index of branch among entry's pending branches that are not
 * done yet, -1 if it is not one of them.
 */
static int
PendingIndex(PhaseEntry *entry, int branch)
{
	int			lo = entry->lo;
	int			hi = entry->hi;

	/* binary search: the branches are ascending */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (entry->pending[mid] < branch)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == entry->hi || entry->pending[lo] != branch || entry->done[lo])
		return -1;
	return lo;
}

/*
 * Takes a transaction in phase two as the tables show it now: its decision,
 * whether it is parallel, and its pending branches (ascending).  Remembers
 * it and schedules its next call(s), due at now (force: even if a backoff
 * was waiting).  Returns true, and forgets it, when no branch is pending:
 * the transaction is done.
 */
bool
TccSchedulePhaseStart(pg_uuid_t *gid, bool commit, bool parallel,
					  int *pending, int npending, TimestampTz now, bool force)
{
	PhaseEntry *entry;
	bool		found;

	if (npending == 0)
	{
		TccSchedulePhaseForget(gid);
		return true;
	}
	entry = hash_search(Phases(), gid, HASH_ENTER, &found);
	if (found)
		FreePhaseMemory(entry);
	entry->commit = commit;
	entry->parallel = parallel;
	entry->npending = npending;
	entry->lo = 0;
	entry->hi = npending;
	entry->calls = NULL;
	if (npending == 1)
	{
		/* the common case costs no allocation beside the entry */
		entry->pending = &entry->one_pending;
		entry->done = &entry->one_done;
		entry->one_done = false;
	}
	else
	{
		entry->pending = MemoryContextAlloc(phase_cxt, sizeof(int) * npending);
		entry->done = MemoryContextAllocZero(phase_cxt, sizeof(bool) * npending);
	}
	memcpy(entry->pending, pending, sizeof(int) * npending);
	ScheduleNextCalls(entry, now, force);
	return false;
}

/*
 * A branch's confirm or cancel succeeded: takes it off its transaction's
 * pending branches in memory.  Returns TCC_PHASE_UNKNOWN when the
 * transaction is not remembered (the caller reads the tables),
 * TCC_PHASE_DONE, forgetting it, when that was its last pending branch
 * (*commit: its decision), else TCC_PHASE_GOING: the caller schedules what
 * is next with TccSchedulePhaseNext once all outcomes at hand are taken.
 */
TccPhaseStep
TccSchedulePhaseBranchDone(pg_uuid_t *gid, int branch, bool *commit)
{
	PhaseEntry *entry = hash_search(Phases(), gid, HASH_FIND, NULL);
	int			lo;

	if (entry == NULL)
		return TCC_PHASE_UNKNOWN;
	lo = PendingIndex(entry, branch);
	if (lo < 0)
	{
		/* not what memory says: let the tables decide */
		TccSchedulePhaseForget(gid);
		return TCC_PHASE_UNKNOWN;
	}
	if (entry->calls != NULL && entry->calls[lo] != NULL)
	{
		FreeRememberedCall(entry->calls[lo]);
		entry->calls[lo] = NULL;
	}
	entry->done[lo] = true;
	entry->npending--;
	while (entry->lo < entry->hi && entry->done[entry->lo])
		entry->lo++;
	while (entry->hi > entry->lo && entry->done[entry->hi - 1])
		entry->hi--;
	*commit = entry->commit;
	if (entry->npending > 0)
		return TCC_PHASE_GOING;
	TccSchedulePhaseForget(gid);
	return TCC_PHASE_DONE;
}

/*
 * Schedules the next call of a remembered sequential transaction, due at
 * now.  A parallel one has every pending branch scheduled already (each
 * failed call schedules its own retry), so a success there costs nothing
 * more: phase two stays O(branches).
 */
void
TccSchedulePhaseNext(pg_uuid_t *gid, TimestampTz now)
{
	PhaseEntry *entry = hash_search(Phases(), gid, HASH_FIND, NULL);

	if (entry != NULL && !entry->parallel)
		ScheduleNextCalls(entry, now, false);
}

/*
 * Forgets a transaction's phase two (done, failed, resolved): what happens
 * to it next is read from the tables.
 */
void
TccSchedulePhaseForget(pg_uuid_t *gid)
{
	PhaseEntry *entry = hash_search(Phases(), gid, HASH_FIND, NULL);

	if (entry == NULL)
		return;
	FreePhaseMemory(entry);
	hash_search(Phases(), gid, HASH_REMOVE, NULL);
}

/*
 * Returns a copy of what, in one chunk of phase_cxt: the struct, the header
 * pointers, then the strings.
 */
static TccPhaseCall *
CopyCall(const TccPhaseCall *what)
{
	Size		url_len = strlen(what->url) + 1;
	Size		payload_len = strlen(what->payload) + 1;
	Size		state_len = what->trace.state ? strlen(what->trace.state) + 1 : 0;
	Size		size;
	TccPhaseCall *call;
	char	   *p;

	size = MAXALIGN(sizeof(TccPhaseCall)) +
		MAXALIGN(sizeof(char *) * what->nheaders);
	for (int h = 0; h < what->nheaders; h++)
		size += strlen(what->headers[h]) + 1;
	size += url_len + payload_len + state_len;

	call = MemoryContextAlloc(phase_cxt, size);
	*call = *what;
	p = (char *) call + MAXALIGN(sizeof(TccPhaseCall));
	call->headers = (char **) p;
	p += MAXALIGN(sizeof(char *) * what->nheaders);
	for (int h = 0; h < what->nheaders; h++)
	{
		Size		len = strlen(what->headers[h]) + 1;

		memcpy(p, what->headers[h], len);
		call->headers[h] = p;
		p += len;
	}
	memcpy(p, what->url, url_len);
	call->url = p;
	p += url_len;
	memcpy(p, what->payload, payload_len);
	call->payload = p;
	call->payload_len = (int) payload_len - 1;
	p += payload_len;
	if (state_len > 0)
	{
		memcpy(p, what->trace.state, state_len);
		call->trace.state = p;
	}
	return call;
}

/*
 * Remembers what the call of a pending branch of a remembered transaction
 * sends, as read at the start of its phase two (attempts: made so far).
 * Nothing is remembered beyond CALLS_MAX_BYTES: that call is read from the
 * tables when it is due.
 */
void
TccSchedulePhaseRemember(pg_uuid_t *gid, int branch, const TccPhaseCall *what)
{
	PhaseEntry *entry = hash_search(Phases(), gid, HASH_FIND, NULL);
	TccPhaseCall *call;
	int			i;

	if (entry == NULL || (i = PendingIndex(entry, branch)) < 0 ||
		calls_bytes >= CALLS_MAX_BYTES)
		return;
	call = CopyCall(what);
	calls_bytes += GetMemoryChunkSpace(call);

	if (entry->calls == NULL)
	{
		if (entry->pending == &entry->one_pending)
		{
			entry->one_call = NULL;
			entry->calls = &entry->one_call;
		}
		else
			entry->calls = MemoryContextAllocZero(phase_cxt,
												  sizeof(TccPhaseCall *) * entry->hi);
	}
	if (entry->calls[i] != NULL)
		FreeRememberedCall(entry->calls[i]);
	entry->calls[i] = call;
}

/*
 * Returns what the call of a pending branch sends, if it is remembered
 * (*commit: its transaction's decision); NULL otherwise (the caller reads
 * it from the tables).
 */
const TccPhaseCall *
TccSchedulePhaseCall(pg_uuid_t *gid, int branch, bool *commit)
{
	PhaseEntry *entry = hash_search(Phases(), gid, HASH_FIND, NULL);
	int			i;

	if (entry == NULL || entry->calls == NULL ||
		(i = PendingIndex(entry, branch)) < 0)
		return NULL;
	*commit = entry->commit;
	return entry->calls[i];
}

/*
 * Forgets what the call of a branch sends (its call failed: the retry
 * reads the branch again, with its attempts so far).
 */
void
TccSchedulePhaseCallForget(pg_uuid_t *gid, int branch)
{
	PhaseEntry *entry = hash_search(Phases(), gid, HASH_FIND, NULL);
	int			i;

	if (entry == NULL || entry->calls == NULL ||
		(i = PendingIndex(entry, branch)) < 0 || entry->calls[i] == NULL)
		return;
	FreeRememberedCall(entry->calls[i]);
	entry->calls[i] = NULL;
}
