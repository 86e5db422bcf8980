-- The participant barrier (docs/protocol.md#participant-barrier):
-- tcc_barrier lets each try, confirm and cancel of a branch act at most
-- once, makes a cancel whose try never ran do nothing (empty rollback) and a
-- try that arrives after its cancel do nothing (hanging); its rows belong to
-- the calling transaction; tcc_barrier_cleanup deletes old rows.  Bad
-- arguments raise 22023 (docs/api.md#bad-input, docs/api.md#sqlstates).  Runs
-- in the coordinator database, then again in tcc_other, which is not
-- tcc.database.  Racing sessions are covered by
-- test/integration/t300_barrier_race.py.

-- Duplicates: each operation acts once.
SELECT tcc_barrier('10000000-0000-0000-0000-000000000001', 1, 'try') AS first_try;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000001', 1, 'try') AS repeated_try;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000001', 1, 'confirm') AS first_confirm;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000001', 1, 'confirm') AS repeated_confirm;

-- Try, then cancel: the cancel acts, once.
SELECT tcc_barrier('10000000-0000-0000-0000-000000000002', 1, 'try') AS try;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000002', 1, 'cancel') AS first_cancel;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000002', 1, 'cancel') AS repeated_cancel;

-- Cancel before any try: an empty rollback, and the try that arrives
-- afterwards hangs and does nothing.
SELECT tcc_barrier('10000000-0000-0000-0000-000000000003', 1, 'cancel') AS empty_rollback;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000003', 1, 'cancel') AS repeated_cancel;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000003', 1, 'try') AS hanging_try;

-- Branches of the same gid are independent.
SELECT tcc_barrier('10000000-0000-0000-0000-000000000003', 2, 'try') AS other_branch_try;

-- What was recorded: one row per (gid, branch, op), and which operation
-- wrote it (the empty rollback wrote the try's row itself).
SELECT gid, branch, op, reason
  FROM tcc._barrier
 WHERE gid::text LIKE '10000000-%'
 ORDER BY gid, branch, op;

-- Barrier rows belong to the participant's transaction: rolled back with
-- it, the try acts again when redelivered.
BEGIN;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000004', 1, 'try') AS try_in_aborted_xact;
ROLLBACK;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000004', 1, 'try') AS try_after_rollback;

-- A cancel that rolled back did not block the try either.
BEGIN;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000005', 1, 'cancel') AS cancel_in_aborted_xact;
ROLLBACK;
SELECT tcc_barrier('10000000-0000-0000-0000-000000000005', 1, 'try') AS try_after_rollback;

-- Bad arguments: SQLSTATE and message of each, without the source location.
DO $$
DECLARE
    stmt text;
    code text;
    msg text;
BEGIN
    FOREACH stmt IN ARRAY ARRAY[
        $s$SELECT tcc_barrier('10000000-0000-0000-0000-000000000009', 1, 'commit')$s$,
        $s$SELECT tcc_barrier('10000000-0000-0000-0000-000000000009', 1, 'TRY')$s$,
        $s$SELECT tcc_barrier('10000000-0000-0000-0000-000000000009', 1, '')$s$,
        $s$SELECT tcc_barrier('10000000-0000-0000-0000-000000000009', 0, 'try')$s$,
        $s$SELECT tcc_barrier(NULL, 1, 'try')$s$,
        $s$SELECT tcc_barrier('10000000-0000-0000-0000-000000000009', NULL, 'try')$s$,
        $s$SELECT tcc_barrier('10000000-0000-0000-0000-000000000009', 1, NULL)$s$,
        $s$SELECT tcc_barrier_cleanup(NULL)$s$,
        $s$SELECT tcc_barrier_cleanup('-1 day')$s$]
    LOOP
        BEGIN
            EXECUTE stmt;
            RAISE NOTICE '%: no error', stmt;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE,
                                    msg = MESSAGE_TEXT;
            RAISE NOTICE '%: % %', stmt, code, msg;
        END;
    END LOOP;
END
$$;

-- None of the bad calls wrote a row.
SELECT count(*) AS rows_of_bad_calls
  FROM tcc._barrier
 WHERE gid = '10000000-0000-0000-0000-000000000009';

-- Cleanup: rows older than the given age go, newer ones stay.  Age the
-- rows of gids 1 and 2 (four rows) by a day.
UPDATE tcc._barrier SET created_at = created_at - interval '1 day'
 WHERE gid IN ('10000000-0000-0000-0000-000000000001',
               '10000000-0000-0000-0000-000000000002');
SELECT tcc_barrier_cleanup('1 hour') AS deleted;
SELECT tcc_barrier_cleanup('1 hour') AS deleted_again;
SELECT DISTINCT gid
  FROM tcc._barrier
 WHERE gid::text LIKE '10000000-%'
 ORDER BY gid;

-- Once the rows are gone, a late duplicate is no longer recognised: keep
-- them longer than any redelivery can take.
SELECT tcc_barrier('10000000-0000-0000-0000-000000000001', 1, 'try') AS try_after_cleanup;

-- Leave no rows behind in the coordinator database.
UPDATE tcc._barrier SET created_at = created_at - interval '1 day'
 WHERE gid::text LIKE '10000000-%';
SELECT tcc_barrier_cleanup('1 hour') AS deleted_the_rest;

-- The same in a database that is not tcc.database: the barrier needs no
-- coordinator.  Several steps per query, evaluated in the order listed.
\c tcc_other
CREATE EXTENSION tcc;

SELECT s.step, s.gid, s.op, tcc_barrier(s.gid::uuid, 1, s.op) AS act
  FROM (VALUES (1, '20000000-0000-0000-0000-000000000001', 'try'),
               (2, '20000000-0000-0000-0000-000000000001', 'try'),
               (3, '20000000-0000-0000-0000-000000000001', 'confirm'),
               (4, '20000000-0000-0000-0000-000000000001', 'confirm'),
               (5, '20000000-0000-0000-0000-000000000002', 'try'),
               (6, '20000000-0000-0000-0000-000000000002', 'cancel'),
               (7, '20000000-0000-0000-0000-000000000002', 'cancel'),
               (8, '20000000-0000-0000-0000-000000000003', 'cancel'),
               (9, '20000000-0000-0000-0000-000000000003', 'try'))
       AS s(step, gid, op);

BEGIN;
SELECT tcc_barrier('20000000-0000-0000-0000-000000000004', 1, 'try') AS try_in_aborted_xact;
ROLLBACK;
SELECT tcc_barrier('20000000-0000-0000-0000-000000000004', 1, 'try') AS try_after_rollback;

DO $$
BEGIN
    PERFORM tcc_barrier('20000000-0000-0000-0000-000000000009', 1, 'undo');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'bad op: %', SQLSTATE;
END
$$;

-- Cleanup: age gid 1 (two rows) by a day; then age everything, and a tiny
-- age deletes the rest.
UPDATE tcc._barrier SET created_at = created_at - interval '1 day'
 WHERE gid = '20000000-0000-0000-0000-000000000001';
SELECT tcc_barrier_cleanup('1 hour') AS deleted;
UPDATE tcc._barrier SET created_at = created_at - interval '1 day';
SELECT tcc_barrier_cleanup('1 ms') AS deleted_the_rest;

DROP EXTENSION tcc;
