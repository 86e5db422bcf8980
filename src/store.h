/*-------------------------------------------------------------------------
 *
 * store.h
 *	  What the two table-access files share: saved statements and the
 *	  helpers that run them and read their results.
 *
 * store.c holds the caller's side and the worker's intents; settle.c the
 * worker's moves on the tables after that (phase two, deadlines, operator
 * actions, call outcomes, purge).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/store.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_STORE_H
#define TCC_STORE_H

#include "executor/spi.h"

#include "tcc.h"

/* A statement prepared once per process and kept. */
typedef struct Stmt
{
	const char *sql;
	int			nargs;
	Oid			types[10];
	SPIPlanPtr	plan;
} Stmt;

/*
 * Statements that look transactions up by gid test their status against an
 * expression (CASE on the decision, a parameter), never a constant: a
 * constant would let a plan, generic and made while the tables were still
 * empty, scan a whole partial index (trying, phase two) instead of looking
 * the gid up in the primary key.
 */
#define STMT(name, n, sql, ...) \
	static Stmt name = {sql, n, {__VA_ARGS__}, NULL}

extern int	TccStoreExec(Stmt *st, Datum *values, const char *nulls, bool read_only);
extern Datum TccStoreCol(int row, int col, bool *isnull);
extern Datum TccStoreArray(Datum *values, bool *nulls, int n, Oid typid);
extern Datum TccStoreGidArray(pg_uuid_t *gids, int n);
extern bool TccStoreDecideCancel(pg_uuid_t *gid, const char *source);

#endif							/* TCC_STORE_H */
