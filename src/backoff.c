/*-------------------------------------------------------------------------
 *
 * backoff.c
 *	  The retry delay of confirm and cancel calls.
 *
 * Attempt n waits tcc.retry_interval * 2^(n-1), capped at
 * tcc.retry_max_interval, with +/-10 % jitter so that many transactions
 * failing together do not retry in lock step.  A Retry-After the
 * participant sent with 425, 429 or 503 (http.c keeps no other) lengthens
 * the delay to at least its value; the cap holds all the same.  The delay
 * is computed in 64 bits and saturates, so no setting can make it negative.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/backoff.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"

#include "backoff.h"
#include "tcc.h"

/* each failed attempt multiplies the delay by this */
#define BACKOFF_FACTOR 2.0

/* the jitter: the delay times a factor in [0.9, 1.1) */
#define JITTER_LOW 0.9
#define JITTER_SPAN 0.2

/*
 * Returns the delay in ms before the retry that follows failed attempt n:
 * the longer of the backoff and retry_after_ms (-1: none), at most
 * tcc.retry_max_interval (+10 % jitter), at least 1 ms.
 */
int64
TccBackoffMs(int attempt, int retry_after_ms)
{
	double		delay;

	/* pow() saturates to infinity, Min() brings it back to the cap */
	delay = (double) tcc_retry_interval *
		pow(BACKOFF_FACTOR, Max(attempt, 1) - 1);
	delay = Min(delay, (double) tcc_retry_max_interval);
	delay *= JITTER_LOW + JITTER_SPAN * pg_prng_double(&pg_global_prng_state);
	if (retry_after_ms >= 0)
		delay = Max(delay, Min((double) retry_after_ms,
							   (double) tcc_retry_max_interval));
	return (int64) Max(delay, 1.0);
}
