/*-------------------------------------------------------------------------
 *
 * backoff.h
 *	  The delay before a confirm or cancel is retried (backoff.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/backoff.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_BACKOFF_H
#define TCC_BACKOFF_H

extern int64 TccBackoffMs(int attempt, int retry_after_ms);

#endif							/* TCC_BACKOFF_H */
