-- transfer.sql - the initiator: move :amount from account :from in bank1 to
-- account :to in bank2 as one global transaction.  Run with psql in the
-- coordinator database:
--
--   psql -d coord -v key=order-1 -v from=1 -v to=2 -v amount=10.00 \
--        -v bank1=http://127.0.0.1:18201 -v bank2=http://127.0.0.1:18202 \
--        -f transfer.sql
--
-- key is the business key: a second request with the same key is refused
-- with SQLSTATE 23505 instead of transferring twice.  On any error the
-- script rolls back; the coordinator then cancels the tries that succeeded.

BEGIN;

SELECT tcc_begin(kind => 'transfer', business_key => :'key') AS gid \gset
\if :ERROR
    \echo '=> SQLSTATE' :LAST_ERROR_SQLSTATE: 'tcc_begin failed; rolling back'
    ROLLBACK;
    \q
\endif
\echo 'global transaction' :gid

-- Branch 1: bank1 takes the amount off account :from and holds it.
SELECT tcc_branch(:'gid',
                  :'bank1' || '/try', :'bank1' || '/confirm', :'bank1' || '/cancel',
                  jsonb_build_object('account', :from, 'amount', :'amount'),
                  name => 'debit account ' || :from) AS bank1_try;
\if :ERROR
    \echo '=> SQLSTATE' :LAST_ERROR_SQLSTATE: 'bank1''s try failed; rolling back'
    ROLLBACK;
    \q
\endif

-- Branch 2: bank2 holds the amount for account :to.
SELECT tcc_branch(:'gid',
                  :'bank2' || '/try', :'bank2' || '/confirm', :'bank2' || '/cancel',
                  jsonb_build_object('account', :to, 'amount', :'amount'),
                  name => 'credit account ' || :to) AS bank2_try;
\if :ERROR
    \echo '=> SQLSTATE' :LAST_ERROR_SQLSTATE: 'bank2''s try failed; rolling back'
    ROLLBACK;
    \q
\endif

-- The initiator's own work goes here, in the same local transaction (for
-- example INSERT INTO transfers ...).  In the demo's outage scenarios,
-- run.sh stops bank2's service at this point with the shell command in
-- $TRANSFER_BETWEEN (unset: nothing happens).
\! eval "$TRANSFER_BETWEEN"

-- The decision: confirm both branches once this transaction commits.
SELECT tcc_finish(:'gid') AS decision;
COMMIT;
