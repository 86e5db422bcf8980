-- S3, S5: one two-branch global transaction, tried but not decided yet
-- (each statement in autocommit).  Its deadline is an hour away so that it
-- waits, undecided, until the scenario decides all of them at once.
SELECT tcc_begin(interval '1 hour', :kind) AS gid \gset
SELECT tcc_branch(:gid, '@STUB@/a/try', '@STUB@/a/confirm', '@STUB@/a/cancel', '{"account": 1, "amount": 1}');
SELECT tcc_branch(:gid, '@STUB@/b/try', '@STUB@/b/confirm', '@STUB@/b/cancel', '{"account": 2, "amount": 1}');
