/*-------------------------------------------------------------------------
 *
 * pause.h
 *	  Paused destinations in the tables: pausing and resuming, the
 *	  worker's read (pause.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/pause.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_PAUSE_H
#define TCC_PAUSE_H

/* the caller's side */
extern bool TccPauseAdd(const char *destination, const char *note);
extern bool TccPauseRemove(const char *destination);

/* the worker's side */
extern void TccPauseLoad(uint32 generation);

#endif							/* TCC_PAUSE_H */
