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
 * that the worker does not remember (below), it reads its branch again and
 * drops it if there is nothing to do.
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
 * Beside it, the worker remembers each transaction in phase two: its
 * decision and the branches not yet confirmed or cancelled.  The worker is
 * the only writer of those rows, so when a call succeeds it knows from
 * memory which branch comes next, or that the transaction is done, without
 * reading the tables again.  What it does not remember (after a restart,
 * after tcc_resolve, once the transaction failed) it reads from the tables.
 *
 * For a phase two it started itself, the worker also remembers what each
 * pending branch's call sends (URL, payload, headers), read with the start:
 * a due call then costs no read.  That memory has a ceiling
 * (CALLS_MAX_BYTES); beyond it, and after a restart or a failed call, the
 * call is read from the tables when it is due.
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
#include "tcc.h"

typedef struct DueKey
{
	pg_uuid_t	gid;
	int32		branch;
} DueKey;

/* A destination: the calls due for it and how many are in flight. */
typedef struct Dest
{
	char		name[TCC_DEST_LEN];	/* hash key, first */
	int			in_flight;
	bool		paused;			/* tcc_pause: its calls wait, none starts */
	dlist_head	ready;			/* due calls, oldest first */
	dlist_node	ring_node;		/* in the ring while ready is not empty */
	int			last_http_status;	/* of its last call that ended */
	char		last_error[200];
	int			report_due;		/* TccScheduleDestinations' counts */
	TimestampTz report_next;
} Dest;

/*
 * A branch's call.  There is one per pending call however large the
 * backlog, so it is kept small: the flags fill the key's padding, and a
 * call waits either in the heap or in a queue, never both, so the two
 * links share their memory.
 */
typedef struct DueEntry
{
	DueKey		key;			/* hash key, first */
	bool		waiting;		/* in the heap or a queue */
	bool		ready;			/* in a destination's queue */
	bool		in_flight;
	union
	{
		pairingheap_node node;	/* in the heap, by due time */
		dlist_node	ready_node; /* in its destination's queue once due */
	};
	TimestampTz due_at;
	Dest	   *dest;			/* NULL until the call was read once */
} DueEntry;

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
static Size calls_bytes = 0;

static HTAB *entries = NULL;
static pairingheap *heap = NULL;
static int	nwaiting = 0;
static HTAB *phases = NULL;
static MemoryContext phase_cxt = NULL;

/* destinations; the ring holds those with due calls, served in turn */
static HTAB *dests = NULL;
static dlist_head ring = DLIST_STATIC_INIT(ring);
static Dest *unknown_dest = NULL;	/* calls not read yet */

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
	dests = MakeHash("tcc destinations", TCC_DEST_LEN, sizeof(Dest),
					 TopMemoryContext);
	unknown_dest = MemoryContextAllocZero(TopMemoryContext, sizeof(Dest));
	dlist_init(&unknown_dest->ready);
}

/*
 * Most calls one destination may have in flight (tcc.destination_share);
 * none while it is paused.
 */
static int
DestLimit(Dest *dest)
{
	if (dest == unknown_dest)
		return INT_MAX;
	if (dest->paused)
		return 0;
	return Max(1, (int) ((int64) tcc_max_concurrency * tcc_destination_share / 100));
}

/* Finds or adds the destination of that name. */
static Dest *
GetDest(const char *name)
{
	char		key[TCC_DEST_LEN];
	Dest	   *dest;
	bool		found;

	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	dest = hash_search(dests, key, HASH_ENTER, &found);
	if (!found)
	{
		dest->in_flight = 0;
		dest->paused = false;
		dest->last_http_status = 0;
		dest->last_error[0] = '\0';
		dlist_init(&dest->ready);
	}
	return dest;
}

/* Queues a due call at the end of its destination's queue. */
static void
MakeReady(DueEntry *entry)
{
	Dest	   *dest = entry->dest ? entry->dest : unknown_dest;

	if (dlist_is_empty(&dest->ready))
		dlist_push_tail(&ring, &dest->ring_node);
	dlist_push_tail(&dest->ready, &entry->ready_node);
	entry->ready = true;
}

/* Takes a call off its destination's queue. */
static void
UnReady(DueEntry *entry)
{
	Dest	   *dest = entry->dest ? entry->dest : unknown_dest;

	dlist_delete(&entry->ready_node);
	if (dlist_is_empty(&dest->ready))
		dlist_delete(&dest->ring_node);
	entry->ready = false;
}

/* Takes a call out of the heap or its queue, whichever holds it. */
static void
Unwait(DueEntry *entry)
{
	if (entry->ready)
		UnReady(entry);
	else if (entry->waiting)
		pairingheap_remove(heap, &entry->node);
	else
		return;
	entry->waiting = false;
	nwaiting--;
}

/* Ends a call's time in flight: its destination has a slot free again. */
static void
Land(DueEntry *entry)
{
	if (entry->in_flight && entry->dest)
		entry->dest->in_flight--;
	entry->in_flight = false;
}

/*
 * Looks up a branch's entry in the schedule (HASH_FIND or HASH_ENTER, as
 * hash_search takes them); *found as hash_search sets it.
 */
static DueEntry *
LookUp(pg_uuid_t *gid, int branch, HASHACTION action, bool *found)
{
	DueKey		key;

	memset(&key, 0, sizeof(key));
	key.gid = *gid;
	key.branch = branch;
	return hash_search(entries, &key, action, found);
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
	DueEntry   *entry = LookUp(gid, branch, HASH_ENTER, &found);

	if (!found)
	{
		entry->in_flight = false;
		entry->waiting = false;
		entry->ready = false;
		entry->dest = NULL;
	}
	if (entry->in_flight)
		return;
	if (entry->ready)
		return;					/* due already */
	if (entry->waiting)
	{
		if (!force || due_at >= entry->due_at)
			return;
		Unwait(entry);
	}
	entry->due_at = due_at;
	entry->waiting = true;
	pairingheap_add(heap, &entry->node);
	nwaiting++;
}

/*
 * A branch's call failed and is due again at due_at: it leaves flight and
 * waits, keeping its destination.
 */
void
TccScheduleRetry(pg_uuid_t *gid, int branch, TimestampTz due_at)
{
	DueEntry   *entry = LookUp(gid, branch, HASH_FIND, NULL);

	if (entry == NULL)
	{
		TccSchedule(gid, branch, due_at, false);
		return;
	}
	Land(entry);
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
	DueEntry   *entry = LookUp(gid, branch, HASH_FIND, NULL);
	Dest	   *d;

	if (entry == NULL || !entry->in_flight)
		return true;
	d = GetDest(dest);
	if (entry->dest == d && !d->paused)
		return true;			/* counted when taken */
	Land(entry);
	entry->dest = d;
	if (d->in_flight < DestLimit(d))
	{
		entry->in_flight = true;
		d->in_flight++;
		return true;
	}
	if (dlist_is_empty(&d->ready))
		dlist_push_tail(&ring, &d->ring_node);
	dlist_push_head(&d->ready, &entry->ready_node);
	entry->ready = true;
	entry->waiting = true;
	nwaiting++;
	return false;
}

/* Moves the calls due at now from the heap to their destinations' queues. */
static void
MoveDue(TimestampTz now)
{
	while (!pairingheap_is_empty(heap))
	{
		DueEntry   *entry = pairingheap_container(DueEntry, node,
												  pairingheap_first(heap));

		if (entry->due_at > now)
			break;
		(void) pairingheap_remove_first(heap);
		MakeReady(entry);
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

	MoveDue(now);
	while (n < max && progress && !dlist_is_empty(&ring))
	{
		dlist_mutable_iter it;
		dlist_head	served;

		/* one round: each destination in the ring once, in ring order */
		progress = false;
		dlist_init(&served);
		dlist_foreach_modify(it, &ring)
		{
			Dest	   *dest = dlist_container(Dest, ring_node, it.cur);
			DueEntry   *entry;

			if (n >= max)
				break;
			if (dest->in_flight >= DestLimit(dest))
				continue;
			entry = dlist_head_element(DueEntry, ready_node, &dest->ready);
			UnReady(entry);
			entry->waiting = false;
			nwaiting--;
			entry->in_flight = true;
			if (entry->dest)
				dest->in_flight++;
			gids[n] = entry->key.gid;
			branches[n] = entry->key.branch;
			n++;
			progress = true;
			/* served: goes behind the others for the next round */
			if (!dlist_is_empty(&dest->ready))
			{
				dlist_delete(&dest->ring_node);
				dlist_push_tail(&served, &dest->ring_node);
			}
		}
		while (!dlist_is_empty(&served))
			dlist_push_tail(&ring, dlist_pop_head_node(&served));
	}
	return n;
}

/* Forgets a branch's call: it finished, or there was nothing to do. */
void
TccScheduleDone(pg_uuid_t *gid, int branch)
{
	DueEntry   *entry = LookUp(gid, branch, HASH_FIND, NULL);

	if (entry == NULL)
		return;
	Unwait(entry);
	Land(entry);
	hash_search(entries, &entry->key, HASH_REMOVE, NULL);
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

		dlist_foreach(it, &ring)
		{
			Dest	   *dest = dlist_container(Dest, ring_node, it.cur);

			if (dest->in_flight < DestLimit(dest))
				return 0;
		}
	}
	if (!pairingheap_is_empty(heap))
		next = pairingheap_container(DueEntry, node,
									 pairingheap_first(heap))->due_at;
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
	DueEntry   *entry;
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
		GetDest(names[i])->paused = true;
	if (resumed == NIL)
		return;
	hash_seq_init(&seq, entries);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (entry->waiting && !entry->ready &&
			list_member_ptr(resumed, entry->dest))
		{
			pairingheap_remove(heap, &entry->node);
			MakeReady(entry);
		}
	}
	list_free(resumed);
}

/* Notes the outcome of a call that ended, for its destination's report. */
void
TccScheduleOutcome(pg_uuid_t *gid, int branch, int http_status,
				   const char *error)
{
	DueEntry   *entry = LookUp(gid, branch, HASH_FIND, NULL);

	if (entry == NULL || entry->dest == NULL)
		return;
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
	DueEntry   *entry;
	int			n = 0;

	hash_seq_init(&seq, dests);
	while ((dest = hash_seq_search(&seq)) != NULL)
	{
		dest->report_due = 0;
		dest->report_next = 0;
	}
	hash_seq_init(&seq, entries);
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
FreeCall(TccPhaseCall *call)
{
	calls_bytes -= GetMemoryChunkSpace(call);
	pfree(call);
}

/* Frees what a remembered transaction holds beside its hash entry. */
static void
FreePending(PhaseEntry *entry)
{
	if (entry->calls != NULL)
	{
		for (int i = 0; i < entry->hi; i++)
		{
			if (entry->calls[i] != NULL)
				FreeCall(entry->calls[i]);
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
FindPending(PhaseEntry *entry, int branch)
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
	entry = hash_search(phases, gid, HASH_ENTER, &found);
	if (found)
		FreePending(entry);
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
	ScheduleNext(entry, now, force);
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
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);
	int			lo;

	if (entry == NULL)
		return TCC_PHASE_UNKNOWN;
	lo = FindPending(entry, branch);
	if (lo < 0)
	{
		/* not what memory says: let the tables decide */
		TccSchedulePhaseForget(gid);
		return TCC_PHASE_UNKNOWN;
	}
	if (entry->calls != NULL && entry->calls[lo] != NULL)
	{
		FreeCall(entry->calls[lo]);
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
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);

	if (entry != NULL && !entry->parallel)
		ScheduleNext(entry, now, false);
}

/*
 * Forgets a transaction's phase two (done, failed, resolved): what happens
 * to it next is read from the tables.
 */
void
TccSchedulePhaseForget(pg_uuid_t *gid)
{
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);

	if (entry == NULL)
		return;
	FreePending(entry);
	hash_search(phases, gid, HASH_REMOVE, NULL);
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
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);
	Size		url_len = strlen(what->url) + 1;
	Size		payload_len = strlen(what->payload) + 1;
	Size		state_len = what->trace.state ? strlen(what->trace.state) + 1 : 0;
	Size		size;
	TccPhaseCall *call;
	char	   *p;
	int			i;

	if (entry == NULL || (i = FindPending(entry, branch)) < 0 ||
		calls_bytes >= CALLS_MAX_BYTES)
		return;
	size = MAXALIGN(sizeof(TccPhaseCall)) +
		MAXALIGN(sizeof(char *) * what->nheaders);
	for (int h = 0; h < what->nheaders; h++)
		size += strlen(what->headers[h]) + 1;
	size += url_len + payload_len + state_len;

	/* one chunk: the struct, the header pointers, then the strings */
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
		FreeCall(entry->calls[i]);
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
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);
	int			i;

	if (entry == NULL || entry->calls == NULL ||
		(i = FindPending(entry, branch)) < 0)
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
	PhaseEntry *entry = hash_search(phases, gid, HASH_FIND, NULL);
	int			i;

	if (entry == NULL || entry->calls == NULL ||
		(i = FindPending(entry, branch)) < 0 || entry->calls[i] == NULL)
		return;
	FreeCall(entry->calls[i]);
	entry->calls[i] = NULL;
}
