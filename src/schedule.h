/*-------------------------------------------------------------------------
 *
 * schedule.h
 *	  When each pending confirm / cancel call is due (schedule.c), and what
 *	  is next of each transaction's phase two (schedulephase.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/schedule.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_SCHEDULE_H
#define TCC_SCHEDULE_H

#include "datatype/timestamp.h"
#include "utils/uuid.h"

#include "protocol.h"
#include "shmem.h"
#include "tcc.h"

/* the calls: when each is due, admitted by its destination's share */
extern void TccScheduleInit(void);
extern void TccSchedule(pg_uuid_t *gid, int branch, TimestampTz due_at,
						bool force);
extern void TccScheduleRetry(pg_uuid_t *gid, int branch, TimestampTz due_at);
extern int	TccScheduleTake(TimestampTz now, int max, pg_uuid_t *gids,
							int *branches);
extern bool TccScheduleAdmit(pg_uuid_t *gid, int branch, const char *dest);
extern void TccScheduleDone(pg_uuid_t *gid, int branch);
extern TimestampTz TccScheduleNext(bool room);
extern int	TccScheduleWaiting(void);

/* paused destinations (docs/api.md#pausing-a-destination) */
extern void TccSchedulePause(char **dests, int n);
extern void TccScheduleOutcome(pg_uuid_t *gid, int branch, int http_status,
							   const char *error);


extern int	TccScheduleDestinations(TccDestRow *rows, int max);

/* what a successful call did to its transaction's phase two */
typedef enum TccPhaseStep
{
	TCC_PHASE_UNKNOWN,			/* not remembered: read the tables */
	TCC_PHASE_GOING,			/* branches are still pending */
	TCC_PHASE_DONE				/* no branch is pending any more */
} TccPhaseStep;

/* the transactions: which branches are called next (schedulephase.c) */
extern bool TccSchedulePhaseStart(pg_uuid_t *gid, bool commit, bool parallel,
								  int *pending, int npending, TimestampTz now,
								  bool force);
extern TccPhaseStep TccSchedulePhaseBranchDone(pg_uuid_t *gid, int branch,
											   bool *commit);
extern void TccSchedulePhaseNext(pg_uuid_t *gid, TimestampTz now);
extern void TccSchedulePhaseForget(pg_uuid_t *gid);

/*
 * What a pending branch's call sends, remembered from the start of its
 * transaction's phase two so that the call needs no read when it is due.
 */
typedef struct TccPhaseCall
{
	char	   *url;
	char	   *payload;
	int			payload_len;
	char	  **headers;		/* "Name: value" lines */
	int			nheaders;
	int			attempts;		/* phase-two attempts before the next one */
	TccProtocol protocol;
	int			timeout_ms;		/* 0: tcc.request_timeout */
	int			max_attempts;	/* 0: tcc.max_attempts */
	TccTrace	trace;
} TccPhaseCall;

extern void TccSchedulePhaseRemember(pg_uuid_t *gid, int branch,
									 const TccPhaseCall *what);
extern const TccPhaseCall *TccSchedulePhaseCall(pg_uuid_t *gid, int branch,
												bool *commit);
extern void TccSchedulePhaseCallForget(pg_uuid_t *gid, int branch);

#endif							/* TCC_SCHEDULE_H */
