/*-------------------------------------------------------------------------
 *
 * rows.h
 *	  Reading a result set the caller holds, by column number: the readers
 *	  of the worker's statements (settle.c, calls.c, cancel.c) are handed
 *	  the result they read instead of taking SPI's latest one.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/rows.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_ROWS_H
#define TCC_ROWS_H

#include "executor/spi.h"

/* Returns column col (from 1) of row r of rows. */
static inline Datum
TccRowsCol(const SPITupleTable *rows, uint64 r, int col, bool *isnull)
{
	return SPI_getbinval(rows->vals[r], rows->tupdesc, col, isnull);
}

#endif							/* TCC_ROWS_H */
