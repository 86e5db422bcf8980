-- S2: one more branch of the same global transaction (:gid): the durable
-- intent written by the worker, then the synchronous try.
SELECT tcc_branch(:gid, '@STUB@/s2/try', '@STUB@/s2/confirm', '@STUB@/s2/cancel', '{"amount": 1}');
