/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  The worker's in-memory schedule of confirm and cancel calls.
 *
 * Which calls are pending follows entirely from the coordinator tables: a
 * branch of a confirming or cancelling transaction that is not yet
 * confirmed, cancelled or skipped.  The schedule only says *when* each one
 * is due.  It lives in the worker's memory (a hash table by gid and branch,
 * and a pairing heap by due time), so finding due work costs no SQL and the
 * branch rows are not updated just to queue them.  After a restart it is
 * rebuilt from the tables and every pending call is due at once: retries
 * survive everything (rule R5), at the price of one early retry.
 *
 * The schedule is a hint, the tables are the truth: when a call comes due
 * the worker reads its branch again and drops it if there is nothing to do.
 *
 * Beside it, the worker remembers each transaction in phase two: its
 * decision and the branches not yet confirmed or cancelled.  The worker is
 * the only writer of those rows, so when a call succeeds it knows from
 * memory which branch comes next, or that the transaction is done, without
 * reading the tables again.  What it does not remember (after a restart,
 * after tcc_resolve, once the transaction failed) it reads from the tables.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/pairingheap.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "tcc.h"

typedef struct DueKey
{
	pg_uuid_t	gid;
	int32		branch;
} DueKey;

typedef struct DueEntry
{
	DueKey		key;			/* hash key, first */
	pairingheap_node node;
	TimestampTz due_at;
	bool		waiting;		/* in the heap */
	bool		in_flight;
} DueEntry;

/* A transaction in phase two, as the worker last wrote it. */
typedef struct PhaseEntry
{
	pg_uuid_t	gid;			/* hash key, first */
	bool		commit;
	bool		parallel;
	int			npending;
	int		   *pending;		/* branches still to call, ascending */
} PhaseEntry;

static HTAB *entries = NULL;
static pairingheap *heap = NULL;
static int	nwaiting = 0;
static HTAB *phases = NULL;
static MemoryContext phase_cxt = NULL;

/* Orders the heap so that the earliest due time is on top. */
static int
CompareDue(const pairingheap_node *a, const pairingheap_node *b, void *arg)
{
	const DueEntry *ea = pairingheap_const_container(DueEntry, node, a);
	const DueEntry *eb = pairingheap_const_container(DueEntry, node, b);

	if (ea->due_at < eb->due_at)
		return 1;
	if (ea->due_at > eb->due_at)
		return -1;
	return 0;
}

/* Creates a hash table with fixed-size keys, in cxt. */
static HTAB *
MakeHash(const char *name, Size keysize, Size entrysize, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(name, 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Creates the empty schedule and the empty memory of phase two. */
void
TccScheduleInit(void)
{
	entries = MakeHash("tcc schedule", sizeof(DueKey), sizeof(DueEntry),
					   TopMemoryContext);
	heap = pairingheap_allocate(CompareDue, NULL);
	phase_cxt = AllocSetContextCreate(TopMemoryContext, "tcc phase two",
									  ALLOCSET_DEFAULT_SIZES);
	phases = MakeHash("tcc phase two", sizeof(pg_uuid_t), sizeof(PhaseEntry),
					  phase_cxt);
}

/*
 * Makes a branch's call due at due_at.  A call in flight is left alone (its
 * outcome decides what follows).  A waiting call moves earlier if force, or
 * keeps its time otherwise (so a backoff is not cut short by a sibling's
 * progress).
 */
void
TccSchedule(pg_uuid_t *gid, int branch, TimestampTz due_at, bool force)
{
	DueKey		key;
	DueEntry   *entry;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.gid = *gid;
	key.branch = branch;
	entry = hash_search(entries, &key, HASH_ENTER, &found);
	if (!found)
	{
		entry->in_flight = false;
		entry->waiting = false;
	}
	if (entry->in_flight)
		return;
	if (entry->waiting)
	{
		if (!force || due_at >= entry->due_at)
			return;
		pairingheap_remove(heap, &entry->node);
		nwaiting--;
	}
	entry->due_at = due_at;
	entry->waiting = true;
	pairingheap_add(heap, &entry->node);
	nwaiting++;
}

/*
 * Takes up to max calls due at now, marking them in flight; returns how
 * many were put into gids and branches.
 */
int
TccScheduleTake(TimestampTz now, int max, pg_uuid_t *gids, int *branches)
{
	int			n = 0;

	while (n < max && !pairingheap_is_empty(heap))
	{
		DueEntry   *entry = pairingheap_container(DueEntry, node,
												  pairingheap_first(heap));

		if (entry->due_at > now)
			break;
		(void) pairingheap_remove_first(heap);
		nwaiting--;
		entry->waiting = false;
		entry->in_flight = true;
		gids[n] = entry->key.gid;
		branches[n] = entry->key.branch;
		n++;
	}
	return n;
}

/* Forgets a branch's call: it finished, or there was nothing to do. */
void
TccScheduleDone(pg_uuid_t *gid, int branch)
{
	DueKey		key;
	DueEntry   *entry;

	memset(&key, 0, sizeof(key));
	key.gid = *gid;
	key.branch = branch;
	entry = hash_search(entries, &key, HASH_FIND, NULL);
	if (entry == NULL)
		return;
	if (entry->waiting)
	{
		pairingheap_remove(heap, &entry->node);
		nwaiting--;
	}
	hash_search(entries, &key, HASH_REMOVE, NULL);
}

/* Returns when the next waiting call is due, DT_NOEND if none is. */
TimestampTz
TccScheduleNext(void)
{
	if (pairingheap_is_empty(heap))
		return DT_NOEND;
	return pairingheap_container(DueEntry, node, pairingheap_first(heap))->due_at;
}

/* Returns how many calls wait for their time or a free slot. */
int
TccScheduleWaiting(void)
{
	return nwaiting;
}

/*
 * Schedules what comes next in a transaction's phase two: every pending
 * branch when it is parallel, else the first (confirm) or the last (cancel)
 * in registration order.
 */
static void
ScheduleNext(PhaseEntry *entry, TimestampTz now, bool force)
{
	if (entry->parallel)
	{
		for (int i = 0; i < entry->npending; i++)
			TccSchedule(&entry->gid, entry->pending[i], now, force);
	}
	else
		TccSchedule(&entry->gid,
					entry->pending[entry->commit ? 0 : entry->npending - 1],
					now, force);
}

/*
 * Takes a transaction in phase two as the tables show it now: its decision,
 * whether it is parallel, and its pending branches (ascending).  Remembers
 * it and schedules its next call(s), due at now (force: even if a backoff
 * was waiting).  Returns true, and forgets it, when no branch is pending:
 * the transaction is done.
 */
bool
TccPhaseStart(pg_uuid_t *gid, bool commit, bool parallel, int *pending,
			  int npending, TimestampTz now, bool force)
{
	PhaseEntry *entry;
	bool		found;

	if (npending == 0)
	{
		TccPhaseForget(gid);
		return true;
	}
	entry = hash_search(phases, gid, HASH_ENTER, &found);
	if (found)
		pfree(entry->pending);
	entry->commit = commit;
	entry->parallel = parallel;
	entry->npending = npending;
	entry->pending = MemoryContextAlloc(phase_cxt, sizeof(int) * npending);
	memcpy(entry->pending, pending, sizeof(int) * npending);
	ScheduleNext(entry, now, force);
	return false;
}

/*
 * A branch's confirm or cancel succeeded: takes it off its transaction's
 * pending branches in memory.  Returns TCC_PHASE_UNKNOWN when the
 * transaction is not remembered (the caller reads the tables),
 * TCC_PHASE_DONE, forgetting it, when that was its last pending branch
 * (*commit: its decision), else TCC_PHASE_GOING: the caller schedules what
 * is next with TccPhaseScheduleNext once all outcomes at hand are taken.
 */
TccPhaseStep
TccPhaseBranchDone(pg_uuid_t *gid, int branch, bool *commit)
{
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);
	int			i;

	if (entry == NULL)
		return TCC_PHASE_UNKNOWN;
	for (i = 0; i < entry->npending && entry->pending[i] != branch; i++)
		;
	if (i == entry->npending)
	{
		/* not what memory says: let the tables decide */
		TccPhaseForget(gid);
		return TCC_PHASE_UNKNOWN;
	}
	memmove(&entry->pending[i], &entry->pending[i + 1],
			sizeof(int) * (entry->npending - i - 1));
	entry->npending--;
	*commit = entry->commit;
	if (entry->npending > 0)
		return TCC_PHASE_GOING;
	TccPhaseForget(gid);
	return TCC_PHASE_DONE;
}

/* Schedules the next call(s) of a remembered transaction, due at now. */
void
TccPhaseScheduleNext(pg_uuid_t *gid, TimestampTz now)
{
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);

	if (entry != NULL)
		ScheduleNext(entry, now, false);
}

/*
 * Forgets a transaction's phase two (done, failed, resolved): what happens
 * to it next is read from the tables.
 */
void
TccPhaseForget(pg_uuid_t *gid)
{
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);

	if (entry == NULL)
		return;
	pfree(entry->pending);
	hash_search(phases, gid, HASH_REMOVE, NULL);
}
