/*-------------------------------------------------------------------------
 *
 * states.h
 *	  The statuses of global transactions and branches as the worker's SQL
 *	  tests them (docs/states.md): one definition of each predicate and
 *	  expression, concatenated into the statements of settle.c, calls.c
 *	  and cancel.c.
 *
 * They are plain SQL text, not SQL functions: a function could hide the
 * status test from the planner and cost the partial indexes the worker's
 * statements use.  Each takes the alias (or column) it tests.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/states.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_STATES_H
#define TCC_STATES_H

/*
 * The final states of a global transaction (docs/states.md): no call is
 * made for it any more.  The one list of them: console/transactions.py's
 * FINAL and the status lists of the SQL scripts and of src/ name the same
 * states, which test/integration/t611_code_layout.py checks.
 */
#define TCC_FINAL_STATES "confirmed", "cancelled", "resolved"

/* the final statuses of a global transaction, as the worker writes them */
#define TCC_STATUS_CONFIRMED "confirmed"
#define TCC_STATUS_CANCELLED "cancelled"
/* the status of a global transaction before its decision */
#define TCC_STATUS_TRYING "trying"

/* branch alias b is not final yet: phase two may still call it */
#define TCC_SQL_BRANCH_OPEN(b) \
	b ".status NOT IN ('confirmed', 'cancelled', 'skipped')"

/* branch alias b's try failed: refused, or no answer that settles it */
#define TCC_SQL_TRY_FAILED(b) \
	b ".status IN ('refused', 'unknown')"

/* status column s is trying: undecided */
#define TCC_SQL_TRYING(s) \
	s " = 'trying'"

/* status column s is in phase two */
#define TCC_SQL_IN_PHASE_TWO(s) \
	s " IN ('confirming', 'cancelling')"

/* status column s may be retried (tcc_retry): failed or in phase two */
#define TCC_SQL_RETRYABLE(s) \
	s " IN ('failed', 'confirming', 'cancelling')"

/* status column s may be resolved (tcc_resolve): not final */
#define TCC_SQL_RESOLVABLE(s) \
	s " NOT IN ('confirmed', 'cancelled', 'resolved')"

/*
 * Whether branch alias b is not called in the phase decided by alias
 * dec's commit.  A refused try is not cancelled, but for a DTM participant:
 * DTM's server cancels every branch, and its barrier takes the cancel of a
 * refused try for an empty rollback (docs/states.md#phase-two).
 */
#define TCC_SQL_SKIPPED_IN_PHASE(dec, b) \
	"CASE WHEN " dec ".commit THEN " b ".confirm_url IS NULL" \
	"     ELSE " b ".cancel_url IS NULL" \
	"          OR (" b ".status = 'refused' AND " b ".protocol <> 'dtm') END"

/* the phase-two status of decision alias d */
#define TCC_SQL_PHASE_OF_DECISION(d) \
	"CASE WHEN " d ".commit THEN 'confirming' ELSE 'cancelling' END"

/* the phase-two status that final status s ends */
#define TCC_SQL_PHASE_OF_FINAL(s) \
	"CASE " s " WHEN 'confirmed' THEN 'confirming' ELSE 'cancelling' END"

/* the decision of transaction alias g in phase two, NULL outside it */
#define TCC_SQL_DECISION_OF_PHASE(g) \
	"CASE " g ".status WHEN 'confirming' THEN true" \
	"       WHEN 'cancelling' THEN false END"

/* the final status of a branch a call of operation op (text) completed */
#define TCC_SQL_FINAL_OF_OP(op) \
	"CASE WHEN " op " = 'confirm' THEN 'confirmed' ELSE 'cancelled' END"

#endif							/* TCC_STATES_H */
