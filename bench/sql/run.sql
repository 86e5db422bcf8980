-- S1b: one global transaction in one statement: tcc_run begins it, records
-- both branches with one durable write, sends both tries at once and
-- decides confirm; the caller's COMMIT confirms.
-- @STUB@ is replaced by the stub participant's base URL; :kind tags the run.
BEGIN;
SELECT gid FROM tcc_run('[{"try": "@STUB@/a/try", "confirm": "@STUB@/a/confirm", "cancel": "@STUB@/a/cancel", "payload": {"account": 1, "amount": 1}}, {"try": "@STUB@/b/try", "confirm": "@STUB@/b/confirm", "cancel": "@STUB@/b/cancel", "payload": {"account": 2, "amount": 1}}]', kind => :kind);
COMMIT;
