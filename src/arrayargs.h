/*-------------------------------------------------------------------------
 *
 * arrayargs.h
 *	  The array parameters of a statement, built a row at a time
 *	  (arrayargs.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/arrayargs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_ARRAYARGS_H
#define TCC_ARRAYARGS_H

#include "utils/uuid.h"

/*
 * One array of element type types[c] per column c; column c of row r is
 * values[c * max + r] (nulls likewise).  A statement that unnests its
 * arrays into rows takes them as its parameters.
 */
typedef struct TccArgs
{
	int			ncols;
	int			max;			/* rows there is room for */
	int			nrows;
	const Oid  *types;
	Datum	   *values;
	bool	   *nulls;
} TccArgs;

extern void TccArgsInit(TccArgs *a, const Oid *types, int ncols, int max);
extern int	TccArgsAddRow(TccArgs *a);
extern void TccArgsSet(TccArgs *a, int r, int col, Datum value);
extern void TccArgsSetNull(TccArgs *a, int r, int col);
extern void TccArgsSetGid(TccArgs *a, int r, int col, pg_uuid_t *gid);
extern void TccArgsBuild(TccArgs *a, Datum *args);

#endif							/* TCC_ARRAYARGS_H */
