/*-------------------------------------------------------------------------
 *
 * purge.h
 *	  Deleting final global transactions after tcc.retention (purge.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/purge.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_PURGE_H
#define TCC_PURGE_H

#include "datatype/timestamp.h"

extern TimestampTz TccPurge(void);

#endif							/* TCC_PURGE_H */
