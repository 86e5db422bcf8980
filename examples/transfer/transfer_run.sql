-- transfer_run.sql - the same initiator as transfer.sql in one statement:
-- tcc_run begins the global transaction, records both branches with one
-- durable write, sends both tries at once and decides confirm as part of
-- this transaction, so COMMIT confirms and ROLLBACK cancels.
--
--   psql -d coord -v key=order-2 -v from=1 -v to=2 -v amount=10.00 \
--        -v bank1=http://127.0.0.1:18201 -v bank2=http://127.0.0.1:18202 \
--        -f transfer_run.sql

BEGIN;

SELECT gid, responses
  FROM tcc_run(jsonb_build_array(
           jsonb_build_object(
               'try', :'bank1' || '/try', 'confirm', :'bank1' || '/confirm',
               'cancel', :'bank1' || '/cancel',
               'payload', jsonb_build_object('account', :from, 'amount', :'amount'),
               'name', 'debit account ' || :from),
           jsonb_build_object(
               'try', :'bank2' || '/try', 'confirm', :'bank2' || '/confirm',
               'cancel', :'bank2' || '/cancel',
               'payload', jsonb_build_object('account', :to, 'amount', :'amount'),
               'name', 'credit account ' || :to)),
       kind => 'transfer', business_key => :'key');
\if :ERROR
    \echo '=> SQLSTATE' :LAST_ERROR_SQLSTATE: 'tcc_run failed; rolling back'
    ROLLBACK;
    \q
\endif

-- The initiator's own work goes here, in the same local transaction.

COMMIT;
