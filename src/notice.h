/*-------------------------------------------------------------------------
 *
 * notice.h
 *	  What a transaction tells the coordinator workers when it ends
 *	  (notice.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/notice.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_NOTICE_H
#define TCC_NOTICE_H

#include "utils/uuid.h"

extern void TccNoticeDecided(pg_uuid_t *gid);
extern void TccNoticeWakeAtAbort(void);
extern void TccNoticePausesChanged(void);
extern void TccNoticeAction(void);

#endif							/* TCC_NOTICE_H */
