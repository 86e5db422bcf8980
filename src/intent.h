/*-------------------------------------------------------------------------
 *
 * intent.h
 *	  The worker writes the intents backends hand it (intent.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/intent.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_INTENT_H
#define TCC_INTENT_H

#include "nodes/pg_list.h"

#include "request.h"

extern void TccIntentWrite(List *requests, TccReply *replies);

#endif							/* TCC_INTENT_H */
