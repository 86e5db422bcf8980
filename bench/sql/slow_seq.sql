-- S1c: the same three participants with three tcc_branch calls, one after
-- the other.
BEGIN;
SELECT tcc_begin(kind => :kind) AS gid \gset
SELECT tcc_branch(:gid, '@SLOW@/a/try', '@SLOW@/a/confirm', '@SLOW@/a/cancel');
SELECT tcc_branch(:gid, '@SLOW@/b/try', '@SLOW@/b/confirm', '@SLOW@/b/cancel');
SELECT tcc_branch(:gid, '@SLOW@/c/try', '@SLOW@/c/confirm', '@SLOW@/c/cancel');
SELECT tcc_finish(:gid);
COMMIT;
