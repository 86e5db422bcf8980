-- S1c: three participants that answer in 50 ms (@SLOW@), one tcc_run: the
-- three tries go out at once.
BEGIN;
SELECT gid FROM tcc_run('[{"try": "@SLOW@/a/try", "confirm": "@SLOW@/a/confirm", "cancel": "@SLOW@/a/cancel"}, {"try": "@SLOW@/b/try", "confirm": "@SLOW@/b/confirm", "cancel": "@SLOW@/b/cancel"}, {"try": "@SLOW@/c/try", "confirm": "@SLOW@/c/confirm", "cancel": "@SLOW@/c/cancel"}]', kind => :kind);
COMMIT;
