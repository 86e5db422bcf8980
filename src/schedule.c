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

static HTAB *entries = NULL;
static pairingheap *heap = NULL;
static int	nwaiting = 0;

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

/* Creates the empty schedule. */
void
TccScheduleInit(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(DueKey);
	ctl.entrysize = sizeof(DueEntry);
	ctl.hcxt = TopMemoryContext;
	entries = hash_create("tcc schedule", 1024, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	heap = pairingheap_allocate(CompareDue, NULL);
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
