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
#include "utils/uuid.h"

/* Returns column col (from 1) of row r of rows. */
static inline Datum
TccRowsCol(const SPITupleTable *rows, uint64 r, int col, bool *isnull)
{
	return SPI_getbinval(rows->vals[r], rows->tupdesc, col, isnull);
}

/* Collects the gids of the first column of rows (*n of them), palloc'd. */
static inline pg_uuid_t *
TccRowsGids(const SPITupleTable *rows, int *n)
{
	pg_uuid_t  *gids = palloc(sizeof(pg_uuid_t) * Max(rows->numvals, 1));

	for (uint64 i = 0; i < rows->numvals; i++)
	{
		bool		isnull;

		gids[i] = *DatumGetUUIDP(TccRowsCol(rows, i, 1, &isnull));
	}
	*n = (int) rows->numvals;
	return gids;
}

#endif							/* TCC_ROWS_H */
