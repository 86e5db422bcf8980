/*-------------------------------------------------------------------------
 *
 * store.h
 *	  The coordinator's table access (store.c): saved statements and the
 *	  helpers that run them and build their array parameters, the caller's
 *	  reads and writes, the worker's unit of work.
 *
 * store.c holds what every table-access file needs; intent.c writes the
 * intents backends hand the worker; settle.c the worker's moves on the
 * tables after that (phase two, deadlines, operator actions, call
 * outcomes, purge).
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

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "utils/uuid.h"

#include "http.h"
#include "tcc.h"

/* most parameters a saved statement takes */
#define TCC_STMT_MAX_ARGS 16

/* A statement prepared once per process and kept. */
typedef struct Stmt
{
	const char *sql;
	int			nargs;
	Oid			types[TCC_STMT_MAX_ARGS];
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

/*
 * The columns of a recorded call (tcc._attempt), in the order the
 * statements that record calls give them (intent.c, settle.c).
 */
#define TCC_ATTEMPT_COLUMNS \
	"gid, branch, op, started_at, duration_ms, http_status, error"

/*
 * What the confirm or cancel of branch b sends, for the statements that
 * read due calls (settle.c, calls.c): its body -- the payload, or with
 * pass_try_response the payload and the try's answer -- and its headers
 * (docs/protocol.md#the-trys-answer-in-confirm-and-cancel).
 */
#define TCC_CALL_BODY \
	"CASE WHEN b.pass_try_response" \
	" THEN pg_catalog.jsonb_build_object('payload', b.payload::jsonb," \
	"                                    'try_response', b.try_response)::text" \
	" ELSE b.payload END"
#define TCC_CALL_HEADERS \
	"CASE WHEN b.pass_try_response" \
	" THEN pg_catalog.array_append(b.headers, 'Tcc-Body: wrapped')" \
	" ELSE b.headers END"
/* and its policy and trace context, g being its transaction (five columns) */
#define TCC_CALL_POLICY(g) \
	"b.timeout_ms, b.max_attempts, COALESCE(" g ".trace_id, " g ".gid)," \
	" COALESCE(" g ".trace_flags, 1::smallint), " g ".tracestate"

/* saved statements and their results */
extern int	TccStoreExec(Stmt *st, Datum *values, const char *nulls, bool read_only);
extern Datum TccStoreCol(int row, int col, bool *isnull);
extern Datum TccStoreTextOrNull(const char *s, char *null);
extern Datum TccStoreArray(Datum *values, bool *nulls, int n, Oid typid);
extern Datum TccStoreGidArray(pg_uuid_t *gids, int n);
extern char **TccStoreTextArrayCol(int row, int col, int *n);

/*
 * The array parameters of a statement that writes many rows at once, kept
 * column by column while the rows are added: column c holds the elements
 * of parameter $c+1 (a parameter that is no array has no use for its own).
 */
typedef struct TccStoreColumn
{
	Oid			typid;			/* element type; InvalidOid: no array */
	Datum	   *values;			/* per row */
	bool	   *nulls;			/* per row: NULL */
} TccStoreColumn;

extern TccStoreColumn *TccStoreColumns(const Stmt *st, int rows);
extern void TccStoreSetText(TccStoreColumn *col, int row, const char *s);
extern void TccStoreColumnParams(const Stmt *st, TccStoreColumn *cols,
								 int nrows, Datum *params);
extern void TccStoreCallPolicy(int row, int col, int *timeout_ms,
							   int *max_attempts, TccTrace *trace);

/* state saved while a caller runs as the owner of the tcc tables */
typedef struct TccOwnerScope
{
	Oid			save_user;
	int			save_sec;
} TccOwnerScope;

extern void TccStoreEnterOwner(TccOwnerScope *scope);
extern void TccStoreLeaveOwner(TccOwnerScope *scope);

/* room for the status of a transaction or a branch, with its NUL */
#define TCC_STATUS_LEN 16

/* what a backend sees of a global transaction */
typedef struct TccGtxInfo
{
	Oid			owner;
	char		status[TCC_STATUS_LEN];
	bool		decided;
	bool		decision;
	TimestampTz deadline;
	int			untried;		/* first branch not tried successfully, or 0 */
	char		untried_name[TCC_MAX_NAME + 1];
	char		untried_status[TCC_STATUS_LEN];
} TccGtxInfo;

/* the caller's side */
extern bool TccStoreGetGtx(pg_uuid_t *gid, TccGtxInfo *info);
extern void TccStoreDecide(pg_uuid_t *gid, bool commit, const char *source);
extern void TccStoreTried(TccCall **calls, int n);
extern void TccStoreAction(pg_uuid_t *gid, const char *action,
						   const char *note);

/* the worker's side */
extern void TccStoreBeginWork(void);
extern XLogRecPtr TccStoreEndWork(void);
extern uint64 TccStoreDecideCancels(pg_uuid_t *gids, const char **sources,
									 int n);

#endif							/* TCC_STORE_H */
