/*-------------------------------------------------------------------------
 *
 * cancel.h
 *	  The worker's cancels of undecided global transactions that can no
 *	  longer confirm (cancel.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/cancel.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_CANCEL_H
#define TCC_CANCEL_H

#include "datatype/timestamp.h"

/* what a cancel pass left undecided */
typedef enum TccCancelLeft
{
	TCC_CANCEL_DONE,			/* nothing that can be decided now */
	TCC_CANCEL_MORE,			/* a full batch was decided and more are
								 * waiting: the next pass comes at once */
	TCC_CANCEL_BLOCKED			/* gids whose locks were held: looked at
								 * again after a delay */
} TccCancelLeft;

/* what a cancel pass did (TccCancelStuck) */
typedef struct TccCancelPass
{
	bool		decided;		/* it decided some: their phases two start */
	TccCancelLeft left;			/* what it left undecided */
	bool		look_for_failed_tries;	/* the next pass must, whatever it
										 * is told: this one left some */
} TccCancelPass;

extern TccCancelPass TccCancelStuck(bool look_for_failed_tries);
extern TimestampTz TccCancelNextDeadline(void);

#endif							/* TCC_CANCEL_H */
