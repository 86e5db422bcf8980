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
 * that the worker does not remember (schedulephase.c), it reads its branch
 * again and drops it if there is nothing to do.
 *
 * Calls that are due wait in a queue per destination (scheme, host and port of
 * the URL called), and destinations are served in turn, each up to its share
 * of the slots (tcc.destination_share), so that a participant that hangs holds
 * at most its share while the others go on (docs/worker.md).  A call's
 * destination is learned when it is first read (the schedule knows only gids
 * and branches); until then it waits in a queue of its own, and a call read
 * for a destination that is already full goes back to that destination's queue
 * unstarted.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "lib/ilist.h"
#include "lib/pairingheap.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "schedule.h"
#include "shmem.h"
#include "tcc.h"

typedef struct CallKey
{
	pg_uuid_t	gid;
	int32		branch;
} CallKey;

/* A destination: the calls due for it and how many are in flight. */
typedef struct Dest
{
	char		name[TCC_DEST_LEN];	/* hash key, first */
	uint64		key;			/* its calls' count in shared memory */
	int			in_flight;
	bool		paused;			/* tcc_pause: its calls wait, none starts */
	dlist_head	queue;			/* due calls, oldest first */
	dlist_node	ring_node;		/* in the ring while queue is not empty */
	int			last_http_status;	/* of its last call that ended */
	char		last_error[TCC_DEST_ERROR_LEN];
	int			report_due;		/* TccScheduleDestinations' counts */
	TimestampTz report_next;
} Dest;

/*
 * A branch's call.  There is one per pending call however large the
 * backlog, so it is kept small: the flags fill the key's padding, and a
 * call waits either in the heap or in a queue, never both, so the two
 * links share their memory.
 */
typedef struct ScheduledCall
{
	CallKey		key;			/* hash key, first */
	bool		waiting;		/* in the heap or a queue */
	bool		queued;			/* in a destination's queue */
	bool		in_flight;		/* taken, until its outcome is recorded */
	bool		answered;		/* in flight, its HTTP exchange over */
	union
	{
		pairingheap_node node;	/* in the heap, by due time */
		dlist_node	queue_node; /* in its destination's queue once due */
	};
	TimestampTz due_at;
	Dest	   *dest;			/* NULL until the call was read once */
} ScheduledCall;

/* initial size of the schedule's hash tables: they grow as needed */
#define SCHEDULE_HASH_SIZE 1024

/* tcc.destination_share is a percentage of tcc.max_concurrency */
#define SHARE_WHOLE 100

static HTAB *calls = NULL;
static pairingheap *due_heap = NULL;
static int	nwaiting = 0;

/* destinations; the ring holds those with due calls, served in turn */
static HTAB *dests = NULL;
static dlist_head ready_ring = DLIST_STATIC_INIT(ready_ring);
static Dest *unknown_dest = NULL;	/* calls not read yet */

/* Orders the heap so that the earliest due time is on top. */
static int
CompareDue(const pairingheap_node *a, const pairingheap_node *b, void *arg)
{
	const ScheduledCall *ea =
		pairingheap_const_container(ScheduledCall, node, a);
	const ScheduledCall *eb =
		pairingheap_const_container(ScheduledCall, node, b);

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
	return hash_create(name, SCHEDULE_HASH_SIZE, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* Creates the empty schedule. */
void
TccScheduleInit(void)
{
	calls = MakeHash("tcc schedule", sizeof(CallKey), sizeof(ScheduledCall),
					 TopMemoryContext);
	due_heap = pairingheap_allocate(CompareDue, NULL);
	dests = MakeHash("tcc destinations", TCC_DEST_LEN, sizeof(Dest),
					 TopMemoryContext);
	unknown_dest = MemoryContextAllocZero(TopMemoryContext, sizeof(Dest));
	dlist_init(&unknown_dest->queue);
}

/*
 * Most calls one destination may have in flight (tcc.destination_share);
 * none while it is paused.
 */
static int
DestMaxInFlight(Dest *dest)
{
	if (dest == unknown_dest)
		return INT_MAX;
	if (dest->paused)
		return 0;
	return Max(1, (int) ((int64) tcc_max_concurrency * tcc_destination_share /
						 SHARE_WHOLE));
}

/* Finds or adds the destination of that name. */
static Dest *
FindOrAddDest(const char *name)
{
	char		key[TCC_DEST_LEN];
	Dest	   *dest;
	bool		found;

	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	dest = hash_search(dests, key, HASH_ENTER, &found);
	if (!found)
	{
		dest->key = TccShmemDestKey(key);
		dest->in_flight = 0;
		dest->paused = false;
		dest->last_http_status = 0;
		dest->last_error[0] = '\0';
		dlist_init(&dest->queue);
	}
	return dest;
}

/* Queues a due call at the end of its destination's queue. */
static void
AppendToDestQueue(ScheduledCall *entry)
{
	Dest	   *dest = entry->dest ? entry->dest : unknown_dest;

	if (dlist_is_empty(&dest->queue))
		dlist_push_tail(&ready_ring, &dest->ring_node);
	dlist_push_tail(&dest->queue, &entry->queue_node);
	entry->queued = true;
}

/* Takes a call off its destination's queue. */
static void
RemoveFromDestQueue(ScheduledCall *entry)
{
	Dest	   *dest = entry->dest ? entry->dest : unknown_dest;

	dlist_delete(&entry->queue_node);
	if (dlist_is_empty(&dest->queue))
		dlist_delete(&dest->ring_node);
	entry->queued = false;
}

/* Takes a call out of the heap or its queue, whichever holds it. */
static void
StopWaiting(ScheduledCall *entry)
{
	if (entry->queued)
		RemoveFromDestQueue(entry);
	else if (entry->waiting)
		pairingheap_remove(due_heap, &entry->node);
	else
		return;
	entry->waiting = false;
	nwaiting--;
}

/*
 * Counts one more call in flight to dest if it may start: not paused, and
 * below its share and tcc.max_concurrency, counted over all the workers of
 * the database (shmem.c).
 */
static bool
StartFlight(Dest *dest)
{
	if (dest->paused)
		return false;
	if (!TccShmemCallStart(dest->key, DestMaxInFlight(dest)))
		return false;
	dest->in_flight++;
	return true;
}

/*
 * Gives its destination's slot back: the call's HTTP exchange is over (or
 * it never started).
 */
static void
FreeSlot(ScheduledCall *entry)
{
	if (entry->in_flight && !entry->answered && entry->dest)
	{
		entry->dest->in_flight--;
		TccShmemCallEnd(entry->dest->key);
	}
	entry->answered = true;
}

/* Ends a call's time in flight: its destination has a slot free again. */
static void
EndFlight(ScheduledCall *entry)
{
	FreeSlot(entry);
	entry->in_flight = false;
	entry->answered = false;
}

/*
 * Looks up a branch's entry in the schedule (HASH_FIND or HASH_ENTER, as
 * hash_search takes them); *found as hash_search sets it.
 */
static ScheduledCall *
LookUpCall(pg_uuid_t *gid, int branch, HASHACTION action, bool *found)
{
	CallKey		key;

	memset(&key, 0, sizeof(key));
	key.gid = *gid;
	key.branch = branch;
	return hash_search(calls, &key, action, found);
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
	bool		found;
	ScheduledCall   *entry = LookUpCall(gid, branch, HASH_ENTER, &found);

	if (!found)
	{
		entry->in_flight = false;
		entry->answered = false;
		entry->waiting = false;
		entry->queued = false;
		entry->dest = NULL;
	}
	if (entry->in_flight)
		return;
	if (entry->queued)
		return;					/* due already */
	if (entry->waiting)
	{
		if (!force || due_at >= entry->due_at)
			return;
		StopWaiting(entry);
	}
	entry->due_at = due_at;
	entry->waiting = true;
	pairingheap_add(due_heap, &entry->node);
	nwaiting++;
}

/*
 * A branch's call failed and is due again at due_at: it leaves flight and
 * waits, keeping its destination.
 */
void
TccScheduleRetry(pg_uuid_t *gid, int branch, TimestampTz due_at)
{
	ScheduledCall   *entry = LookUpCall(gid, branch, HASH_FIND, NULL);

	if (entry == NULL)
	{
		TccSchedule(gid, branch, due_at, false);
		return;
	}
	EndFlight(entry);
	TccSchedule(gid, branch, due_at, false);
}

/*
 * A call read for starting goes to dest (its scheme, host and port).
 * Returns true if it may start: its destination has a slot free and is not
 * paused.  Else it goes back to the front of that destination's queue,
 * unstarted (a paused destination's calls count no attempt).
 */
bool
TccScheduleAdmit(pg_uuid_t *gid, int branch, const char *dest)
{
	ScheduledCall   *entry = LookUpCall(gid, branch, HASH_FIND, NULL);
	Dest	   *d;

	if (entry == NULL || !entry->in_flight)
		return true;
	d = FindOrAddDest(dest);
	if (entry->dest == d && !d->paused)
		return true;			/* counted when taken */
	EndFlight(entry);
	entry->dest = d;
	if (StartFlight(d))
	{
		entry->in_flight = true;
		entry->answered = false;
		return true;
	}
	if (dlist_is_empty(&d->queue))
		dlist_push_tail(&ready_ring, &d->ring_node);
	dlist_push_head(&d->queue, &entry->queue_node);
	entry->queued = true;
	entry->waiting = true;
	nwaiting++;
	return false;
}

/* Moves the calls due at now from the heap to their destinations' queues. */
static void
QueueCallsDueBy(TimestampTz now)
{
	while (!pairingheap_is_empty(due_heap))
	{
		ScheduledCall   *entry = pairingheap_container(ScheduledCall, node,
												  pairingheap_first(due_heap));

		if (entry->due_at > now)
			break;
		(void) pairingheap_remove_first(due_heap);
		AppendToDestQueue(entry);
	}
}

/*
 * Takes up to max calls due at now, marking them in flight; returns how
 * many were put into gids and branches.  Destinations are served in turn,
 * one call each per round, none beyond its share of the slots.
 */
int
TccScheduleTake(TimestampTz now, int max, pg_uuid_t *gids, int *branches)
{
	int			n = 0;
	bool		progress = true;

	QueueCallsDueBy(now);
	while (n < max && progress && !dlist_is_empty(&ready_ring))
	{
		dlist_mutable_iter it;
		dlist_head	served;

		/* one round: each destination in the ring once, in ring order */
		progress = false;
		dlist_init(&served);
		dlist_foreach_modify(it, &ready_ring)
		{
			Dest	   *dest = dlist_container(Dest, ring_node, it.cur);
			ScheduledCall   *entry;

			if (n >= max)
				break;
			/* a call not read yet is counted once its destination is known */
			if (dest != unknown_dest && !StartFlight(dest))
				continue;
			entry = dlist_head_element(ScheduledCall, queue_node, &dest->queue);
			RemoveFromDestQueue(entry);
			entry->waiting = false;
			nwaiting--;
			entry->in_flight = true;
			entry->answered = false;
			gids[n] = entry->key.gid;
			branches[n] = entry->key.branch;
			n++;
			progress = true;
			/* served: goes behind the others for the next round */
			if (!dlist_is_empty(&dest->queue))
			{
				dlist_delete(&dest->ring_node);
				dlist_push_tail(&served, &dest->ring_node);
			}
		}
		while (!dlist_is_empty(&served))
			dlist_push_tail(&ready_ring, dlist_pop_head_node(&served));
	}
	return n;
}

/* Forgets a branch's call: it finished, or there was nothing to do. */
void
TccScheduleDone(pg_uuid_t *gid, int branch)
{
	ScheduledCall   *entry = LookUpCall(gid, branch, HASH_FIND, NULL);

	if (entry == NULL)
		return;
	StopWaiting(entry);
	EndFlight(entry);
	hash_search(calls, &entry->key, HASH_REMOVE, NULL);
}

/*
 * Returns when the next waiting call is due, DT_NOEND if none is: now
 * when a due call's destination has a slot free (and room says the worker
 * has one), else when the next call in the heap is due.
 */
TimestampTz
TccScheduleNext(bool room)
{
	TimestampTz next = DT_NOEND;

	if (room)
	{
		dlist_iter	it;

		dlist_foreach(it, &ready_ring)
		{
			Dest	   *dest = dlist_container(Dest, ring_node, it.cur);

			if (dest == unknown_dest ||
				(!dest->paused &&
				 TccShmemDestRoom(dest->key, DestMaxInFlight(dest))))
				return 0;
		}
	}
	if (!pairingheap_is_empty(due_heap))
		next = pairingheap_container(ScheduledCall, node,
									 pairingheap_first(due_heap))->due_at;
	return next;
}

/* Returns how many calls wait for their time or a free slot. */
int
TccScheduleWaiting(void)
{
	return nwaiting;
}

/*
 * Sets which destinations are paused: the n in names, and no other.  The
 * calls of a destination paused wait in its queue; those of one resumed
 * are due at once, a backoff they were waiting out included
 * (docs/api.md#pausing-a-destination).
 */
void
TccSchedulePause(char **names, int n)
{
	HASH_SEQ_STATUS seq;
	Dest	   *dest;
	ScheduledCall   *entry;
	List	   *resumed = NIL;

	hash_seq_init(&seq, dests);
	while ((dest = hash_seq_search(&seq)) != NULL)
	{
		bool		paused = false;

		for (int i = 0; i < n && !paused; i++)
			paused = strcmp(dest->name, names[i]) == 0;
		if (dest->paused && !paused)
			resumed = lappend(resumed, dest);
		dest->paused = paused;
	}
	for (int i = 0; i < n; i++)
		FindOrAddDest(names[i])->paused = true;
	if (resumed == NIL)
		return;
	hash_seq_init(&seq, calls);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (entry->waiting && !entry->queued &&
			list_member_ptr(resumed, entry->dest))
		{
			pairingheap_remove(due_heap, &entry->node);
			AppendToDestQueue(entry);
		}
	}
	list_free(resumed);
}

/*
 * Notes the outcome of a call that ended, for its destination's report,
 * and gives its destination's slot back at once: another call may start
 * there before this outcome is recorded.  The call stays in flight for
 * the schedule (TccSchedule leaves it alone) until TccScheduleDone or
 * TccScheduleRetry.
 */
void
TccScheduleOutcome(pg_uuid_t *gid, int branch, int http_status,
				   const char *error)
{
	ScheduledCall   *entry = LookUpCall(gid, branch, HASH_FIND, NULL);

	if (entry == NULL || entry->dest == NULL)
		return;
	FreeSlot(entry);
	entry->dest->last_http_status = http_status;
	strlcpy(entry->dest->last_error, error, sizeof(entry->dest->last_error));
}

/*
 * Fills rows with up to max destinations that have calls waiting or in
 * flight, or are paused; returns how many.  Walks the whole schedule: only
 * done when someone reads tcc.destinations.
 */
int
TccScheduleDestinations(TccDestRow *rows, int max)
{
	HASH_SEQ_STATUS seq;
	Dest	   *dest;
	ScheduledCall   *entry;
	int			n = 0;

	hash_seq_init(&seq, dests);
	while ((dest = hash_seq_search(&seq)) != NULL)
	{
		dest->report_due = 0;
		dest->report_next = 0;
	}
	hash_seq_init(&seq, calls);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (!entry->waiting || entry->dest == NULL)
			continue;
		dest = entry->dest;
		if (dest->report_due++ == 0 || entry->due_at < dest->report_next)
			dest->report_next = entry->due_at;
	}
	hash_seq_init(&seq, dests);
	while ((dest = hash_seq_search(&seq)) != NULL)
	{
		TccDestRow *row = &rows[n];

		if (n >= max)
		{
			hash_seq_term(&seq);
			break;
		}
		if (dest->report_due == 0 && dest->in_flight == 0 && !dest->paused)
			continue;
		strlcpy(row->destination, dest->name, sizeof(row->destination));
		row->calls_due = dest->report_due;
		row->in_flight = dest->in_flight;
		row->last_http_status = dest->last_http_status;
		row->next_at = dest->report_next;
		strlcpy(row->last_error, dest->last_error, sizeof(row->last_error));
		n++;
	}
	return n;
}
