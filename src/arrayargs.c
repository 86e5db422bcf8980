/*-------------------------------------------------------------------------
 *
 * arrayargs.c
 *	  The array parameters of a statement, built a row at a time: a
 *	  struct of arrays, one per column, instead of one local array per
 *	  parameter.
 *
 * The worker writes many rows in one statement by passing one array per
 * column and unnesting them together (settle.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/arrayargs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/array.h"
#include "utils/lsyscache.h"

#include "arrayargs.h"

/* Sets up ncols empty columns of element types types with room for max rows. */
void
TccArgsInit(TccArgs *a, const Oid *types, int ncols, int max)
{
	a->ncols = ncols;
	a->max = Max(max, 1);
	a->nrows = 0;
	a->types = types;
	a->values = palloc0(sizeof(Datum) * ncols * a->max);
	a->nulls = palloc0(sizeof(bool) * ncols * a->max);
}

/* Returns the number of a new row, its columns all zero. */
int
TccArgsAddRow(TccArgs *a)
{
	Assert(a->nrows < a->max);
	return a->nrows++;
}

/* Sets column col of row r to value. */
void
TccArgsSet(TccArgs *a, int r, int col, Datum value)
{
	a->values[col * a->max + r] = value;
	a->nulls[col * a->max + r] = false;
}

/* Sets column col of row r to NULL. */
void
TccArgsSetNull(TccArgs *a, int r, int col)
{
	a->values[col * a->max + r] = (Datum) 0;
	a->nulls[col * a->max + r] = true;
}

/* Sets column col of row r to a copy of gid. */
void
TccArgsSetGid(TccArgs *a, int r, int col, pg_uuid_t *gid)
{
	pg_uuid_t  *copy = palloc(sizeof(pg_uuid_t));

	*copy = *gid;
	TccArgsSet(a, r, col, UUIDPGetDatum(copy));
}

/* Writes the columns, one array each, into args[0 .. ncols - 1]. */
void
TccArgsBuild(TccArgs *a, Datum *args)
{
	for (int c = 0; c < a->ncols; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {a->nrows};
		int			lbs[1] = {1};

		get_typlenbyvalalign(a->types[c], &typlen, &typbyval, &typalign);
		args[c] = PointerGetDatum(construct_md_array(a->values + c * a->max,
													 a->nulls + c * a->max,
													 1, dims, lbs,
													 a->types[c], typlen,
													 typbyval, typalign));
	}
}
