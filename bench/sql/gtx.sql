-- S1: one global transaction as an application runs it: begin, two branches
-- (each a durable intent plus a synchronous try), decide, commit.
-- @STUB@ is replaced by the stub participant's base URL; :kind tags the run.
BEGIN;
SELECT tcc_begin(kind => :kind) AS gid \gset
SELECT tcc_branch(:gid, '@STUB@/a/try', '@STUB@/a/confirm', '@STUB@/a/cancel', '{"account": 1, "amount": 1}');
SELECT tcc_branch(:gid, '@STUB@/b/try', '@STUB@/b/confirm', '@STUB@/b/cancel', '{"account": 2, "amount": 1}');
SELECT tcc_finish(:gid);
COMMIT;
