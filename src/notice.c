/*-------------------------------------------------------------------------
 *
 * notice.c
 *	  What a backend's transaction tells the coordinator workers when it
 *	  ends: one transaction callback for the SQL functions of api.c and
 *	  ops.c.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/notice.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"

#include "notice.h"
#include "shmem.h"

/*
 * What the current transaction tells the workers when it ends, from one
 * transaction callback per backend registered at first use: at commit, the
 * gids it decided (handed to their owners, no polling delay), that the
 * pauses changed, that an operator's action waits; at abort, that a gid it
 * began, or whose lock it held in tcc_finish, can be cancelled now (R3;
 * the worker waits for that lock without polling).  A prepared transaction
 * tells nothing: the workers' own look every second finds its decisions and
 * actions once COMMIT PREPARED has run.
 */
typedef struct XactNotices
{
	bool		registered;
	bool		wake_at_abort;
	bool		pauses_changed;
	bool		action;
	int			ndecided;		/* counts past the array's end */
	pg_uuid_t	decided[TCC_DECIDED_PER_XACT];
} XactNotices;

static XactNotices notices;

/* The transaction callback: tells the workers what notices hold. */
static void
NoticeAtXactEnd(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (notices.ndecided > 0)
				TccHandDecided(notices.decided, notices.ndecided);
			if (notices.pauses_changed)
				TccPausesChanged();
			if (notices.action)
				TccWakeWorker(true, false);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (notices.wake_at_abort)
				TccWakeWorker(false, true);
			break;
		case XACT_EVENT_PREPARE:
			break;
		default:
			return;
	}
	notices.wake_at_abort = false;
	notices.pauses_changed = false;
	notices.action = false;
	notices.ndecided = 0;
}

/* Returns the current transaction's notices, the callback registered. */
static XactNotices *
Notices(void)
{
	if (!notices.registered)
	{
		RegisterXactCallback(NoticeAtXactEnd, NULL);
		notices.registered = true;
	}
	return &notices;
}

/* At commit, the owner of gid starts its phase two. */
void
TccNoticeDecided(pg_uuid_t *gid)
{
	XactNotices *n = Notices();

	if (n->ndecided < TCC_DECIDED_PER_XACT)
		n->decided[n->ndecided] = *gid;
	n->ndecided++;
}

/* At abort, the workers look for what can no longer confirm. */
void
TccNoticeWakeAtAbort(void)
{
	Notices()->wake_at_abort = true;
}

/* At commit, the pauses changed. */
void
TccNoticePausesChanged(void)
{
	Notices()->pauses_changed = true;
}

/* At commit, an operator's action waits for the workers. */
void
TccNoticeAction(void)
{
	Notices()->action = true;
}
