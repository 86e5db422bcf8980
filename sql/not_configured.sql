-- Outside tcc.database the extension installs, and coordinator functions
-- raise SQLSTATE 55000 with a hint naming shared_preload_libraries and
-- tcc.database (README.md#installation, docs/api.md#bad-input and
-- docs/api.md#sqlstates).
\c tcc_other
CREATE EXTENSION tcc;

-- Run each call and show its SQLSTATE, message and whether the hint names
-- both settings, without the C source location of the error.
CREATE FUNCTION pg_temp.try_call(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    code text;
    msg text;
    hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE,
                            msg = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
    RETURN format('%s: %s (hint names shared_preload_libraries: %s, tcc.database: %s)',
                  code, msg,
                  hint LIKE '%shared_preload_libraries%',
                  hint LIKE '%tcc.database%');
END
$$;

SELECT pg_temp.try_call('SELECT tcc_begin()') AS tcc_begin;
SELECT pg_temp.try_call($$SELECT tcc_branch('00000000-0000-0000-0000-000000000001',
    'http://127.0.0.1:1/try', 'http://127.0.0.1:1/confirm',
    'http://127.0.0.1:1/cancel')$$) AS tcc_branch;
SELECT pg_temp.try_call($$SELECT tcc_finish('00000000-0000-0000-0000-000000000001')$$)
    AS tcc_finish;
SELECT pg_temp.try_call($$SELECT tcc_wait('00000000-0000-0000-0000-000000000001')$$)
    AS tcc_wait;

DROP EXTENSION tcc;
