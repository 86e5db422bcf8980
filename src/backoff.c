/*-------------------------------------------------------------------------
 *
 * backoff.c
 *	  The retry delay of confirm and cancel calls.
 *
 * Attempt n waits tcc.retry_interval * 2^(n-1), capped at
 * tcc.retry_max_interval, with +/-10 % jitter so that many transactions
 * failing together do not retry in lock step.  A Retry-After header from
 * the participant replaces the computed delay (still capped).
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

#include "tcc.h"

/* Returns the delay in ms before the retry that follows failed attempt n. */
int
TccBackoffMs(int attempt, int retry_after_ms)
{
	double		delay;

	if (retry_after_ms >= 0)
		return Min(retry_after_ms, tcc_retry_max_interval);

	delay = (double) tcc_retry_interval * pow(2.0, Max(attempt, 1) - 1);
	delay = Min(delay, (double) tcc_retry_max_interval);
	delay *= 0.9 + 0.2 * pg_prng_double(&pg_global_prng_state);
	return (int) Max(delay, 1.0);
}
