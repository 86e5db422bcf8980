-- S11: one two-branch global transaction, tried but not decided, whose
-- deadline is the moment :deadline (epoch seconds): every client's
-- transactions share it to the millisecond (a timeout counts whole
-- milliseconds from the call), so they all pass it together.
SELECT tcc_begin(pg_catalog.to_timestamp(:deadline) - pg_catalog.clock_timestamp(), :kind) AS gid \gset
SELECT tcc_branch(:gid, '@STUB@/a/try', '@STUB@/a/confirm', '@STUB@/a/cancel', '{"account": 1, "amount": 1}');
SELECT tcc_branch(:gid, '@STUB@/b/try', '@STUB@/b/confirm', '@STUB@/b/cancel', '{"account": 2, "amount": 1}');
