/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  The rows a statement writes at once, built a row at a time over the
 *	  columns of its array parameters (store.c's TccStoreColumn): one
 *	  struct of arrays instead of one local array per parameter.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/batch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_BATCH_H
#define TCC_BATCH_H

#include "store.h"

/* Rows a statement writes at once: its parameters' columns (store.c). */
typedef struct TccBatch
{
	const Stmt *st;
	TccStoreColumn *cols;
	int			n;				/* rows so far */
} TccBatch;

/* Starts an empty batch of st's rows, with room for max of them. */
static inline void
TccBatchInit(TccBatch *b, const Stmt *st, int max)
{
	b->st = st;
	b->cols = TccStoreColumns(st, max);
	b->n = 0;
}

/* Sets column col of row r to value. */
static inline void
TccBatchSet(TccBatch *b, int r, int col, Datum value)
{
	b->cols[col].values[r] = value;
	b->cols[col].nulls[r] = false;
}

/* Sets column col of row r to NULL. */
static inline void
TccBatchSetNull(TccBatch *b, int r, int col)
{
	b->cols[col].values[r] = (Datum) 0;
	b->cols[col].nulls[r] = true;
}

/* Writes the batch's columns as st's array parameters into params. */
static inline void
TccBatchParams(TccBatch *b, Datum *params)
{
	TccStoreColumnParams(b->st, b->cols, b->n, params);
}

/* Sets column col of row r to a copy of gid. */
static inline void
TccBatchSetGid(TccBatch *b, int r, int col, pg_uuid_t *gid)
{
	pg_uuid_t  *copy = palloc(sizeof(pg_uuid_t));

	*copy = *gid;
	TccBatchSet(b, r, col, UUIDPGetDatum(copy));
}

#endif							/* TCC_BATCH_H */
