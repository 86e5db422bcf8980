/*-------------------------------------------------------------------------
 *
 * coordinator.h
 *	  Whether this backend can use the coordinator (coordinator.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/coordinator.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_COORDINATOR_H
#define TCC_COORDINATOR_H

extern void TccCoordinatorRequire(void);
extern char *TccCoordinatorInstalledVersion(void);

#endif							/* TCC_COORDINATOR_H */
