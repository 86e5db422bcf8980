-- Bad input of what 1.2 adds for operations (docs/api.md#bad-input,
-- #pausing-a-destination, #per-branch-policy; docs/protocol.md#trace-context,
-- #the-trys-answer-in-confirm-and-cancel; docs/settings.md#tls): every case
-- raises an ERROR with SQLSTATE 22023 and a lower-case message, and nothing
-- is written to the coordinator tables (tcc._pause included) and no HTTP
-- call is made.  Also: tcc_pause, tcc_resume and tcc_destination_state are
-- not granted to PUBLIC.

-- Run stmt with $1 = gid and $2 = url, and show how it failed (SQLSTATE,
-- message, hint; gids shown as <gid>).
CREATE FUNCTION pg_temp.try_call(stmt text, gid uuid DEFAULT NULL,
                                 url text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    code text;
    msg text;
    hint text;
BEGIN
    EXECUTE stmt USING gid, url;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE,
                            msg = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
    msg := regexp_replace(msg,
        '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}',
        '<gid>', 'g');
    RETURN code || ': ' || msg
        || COALESCE(' (hint: ' || NULLIF(hint, '') || ')', '');
END
$$;

-- Rows in the coordinator tables and requests the test participant got.
CREATE FUNCTION pg_temp.footprint() RETURNS TABLE (what text, n bigint)
LANGUAGE sql AS $$
    SELECT 'tcc._gtx', count(*) FROM tcc._gtx
    UNION ALL SELECT 'tcc._branch', count(*) FROM tcc._branch
    UNION ALL SELECT 'tcc._decision', count(*) FROM tcc._decision
    UNION ALL SELECT 'tcc._try', count(*) FROM tcc._try
    UNION ALL SELECT 'tcc._attempt', count(*) FROM tcc._attempt
    UNION ALL SELECT 'tcc._pause', count(*) FROM tcc._pause
    UNION ALL SELECT 'tp.requests', count(*) FROM tp.requests
$$;

SELECT tp.url('/ops_bad_input') AS url \gset
SELECT tcc_begin('1 hour') AS gid \gset
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.footprint();

-- ---- tcc_pause / tcc_resume: a destination is scheme://host[:port]
SELECT pg_temp.try_call($$SELECT tcc_pause('localhost:8080')$$) AS no_scheme;
SELECT pg_temp.try_call($$SELECT tcc_pause('ftp://h.example')$$) AS other_scheme;
SELECT pg_temp.try_call($$SELECT tcc_pause('http://h.example/pay')$$) AS with_path;
SELECT pg_temp.try_call($$SELECT tcc_pause('http://h.example/')$$) AS with_slash;
SELECT pg_temp.try_call($$SELECT tcc_pause('http://u@h.example')$$) AS with_user;
SELECT pg_temp.try_call($$SELECT tcc_pause('http://h.example?x=1')$$) AS with_query;
SELECT pg_temp.try_call($$SELECT tcc_pause('http://')$$) AS no_host;
SELECT pg_temp.try_call($$SELECT tcc_pause('http://h.example:99999')$$) AS bad_port;
SELECT pg_temp.try_call($$SELECT tcc_pause(NULL)$$) AS null_destination;
SELECT pg_temp.try_call($$SELECT tcc_resume('h.example')$$) AS resume_no_scheme;
SELECT pg_temp.try_call($$SELECT tcc_resume(NULL)$$) AS resume_null;

-- ---- a branch's own timeout (1 ms - 1 h) and max_attempts (1 - 10000)
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    timeout => '0 s')$$, :'gid', :'url') AS timeout_zero;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    timeout => '0.5 ms')$$, :'gid', :'url') AS timeout_below_1ms;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    timeout => '-1 s')$$, :'gid', :'url') AS timeout_negative;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    timeout => '1 hour 1 ms')$$, :'gid', :'url') AS timeout_over_1h;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    max_attempts => 0)$$, :'gid', :'url') AS attempts_zero;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    max_attempts => 10001)$$, :'gid', :'url') AS attempts_over;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    protocol => 'dtm', pass_try_response => true)$$, :'gid', :'url')
    AS pass_with_dtm;

-- the same as keys of tcc_branches and tcc_run elements
SELECT pg_temp.try_call(format($$SELECT tcc_branches($1, '[{"try":"%s/try","timeout":"2 hours"}]')$$, :'url'), :'gid') AS key_timeout_over;
SELECT pg_temp.try_call(format($$SELECT tcc_branches($1, '[{"try":"%s/try","timeout":5}]')$$, :'url'), :'gid') AS key_timeout_number;
SELECT pg_temp.try_call(format($$SELECT tcc_branches($1, '[{"try":"%s/try","max_attempts":0}]')$$, :'url'), :'gid') AS key_attempts_zero;
SELECT pg_temp.try_call(format($$SELECT tcc_branches($1, '[{"try":"%s/try","max_attempts":2.5}]')$$, :'url'), :'gid') AS key_attempts_fraction;
SELECT pg_temp.try_call(format($$SELECT tcc_branches($1, '[{"try":"%s/try","max_attempts":"3"}]')$$, :'url'), :'gid') AS key_attempts_string;
SELECT pg_temp.try_call(format($$SELECT tcc_branches($1, '[{"try":"%s/try","max_attempts":1e12}]')$$, :'url'), :'gid') AS key_attempts_huge;
SELECT pg_temp.try_call(format($$SELECT tcc_branches($1, '[{"try":"%s/try","pass_try_response":"yes"}]')$$, :'url'), :'gid') AS key_pass_string;
SELECT pg_temp.try_call(format($$SELECT tcc_run('[{"try":"%s/try","protocol":"dtm","pass_try_response":true}]')$$, :'url')) AS run_pass_with_dtm;

-- ---- trace context: an invalid traceparent or tracestate
SELECT pg_temp.try_call($$SELECT tcc_begin(traceparent => 'not-a-traceparent')$$) AS traceparent_garbage;
SELECT pg_temp.try_call($$SELECT tcc_begin(traceparent => '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01')$$) AS traceparent_upper_case;
SELECT pg_temp.try_call($$SELECT tcc_begin(traceparent => '00-00000000000000000000000000000000-00f067aa0ba902b7-01')$$) AS trace_id_zero;
SELECT pg_temp.try_call($$SELECT tcc_begin(traceparent => '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01')$$) AS parent_id_zero;
SELECT pg_temp.try_call($$SELECT tcc_begin(traceparent => 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')$$) AS version_ff;
SELECT pg_temp.try_call($$SELECT tcc_begin(traceparent => '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x')$$) AS version_00_longer;
SELECT pg_temp.try_call($$SELECT tcc_begin(tracestate => 'a=1')$$) AS tracestate_alone;
SELECT pg_temp.try_call($$SELECT tcc_begin(traceparent => '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate => E'a=1\nb=2')$$) AS tracestate_newline;
SELECT pg_temp.try_call(format($$SELECT tcc_run('[{"try":"%s/try"}]', traceparent => 'x')$$, :'url')) AS run_traceparent;
SELECT pg_temp.try_call($$SET tcc.traceparent = '00-xyz'$$) AS setting_traceparent;

-- ---- the protocol's headers may not be set through headers
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    headers => '{"traceparent": "x"}')$$, :'gid', :'url') AS header_traceparent;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    headers => '{"TRACESTATE": "x"}')$$, :'gid', :'url') AS header_tracestate;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    headers => '{"TCC-Body": "wrapped"}')$$, :'gid', :'url') AS header_tcc_body;

-- ---- TLS files (docs/settings.md#tls): refused by ALTER SYSTEM when the
-- file cannot be read or holds no PEM of its kind (relative paths are in
-- the data directory)
ALTER SYSTEM SET tcc.ca_file = '/nonexistent/ca.pem';
ALTER SYSTEM SET tcc.client_cert = 'PG_VERSION';
ALTER SYSTEM SET tcc.client_key = 'PG_VERSION';
SELECT count(*) AS tls_settings_in_auto_conf
  FROM pg_file_settings WHERE name LIKE 'tcc.c%';

-- nothing was written, nothing was called
SELECT b.what, b.n AS before, a.n AS after
  FROM before b JOIN pg_temp.footprint() a USING (what)
 WHERE a.n <> b.n;

-- ---- privileges: pausing affects every role's calls
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
  FROM pg_proc p
 WHERE p.proname IN ('tcc_pause', 'tcc_resume', 'tcc_destination_state')
 ORDER BY 1;
SELECT has_table_privilege('public', 'tcc.destinations', 'SELECT')
    AS public_may_read_destinations;

-- ---- a destination is named as the worker names it: scheme and host in
-- lower case, the port made explicit
BEGIN;
SELECT tcc_pause('HTTP://Pay.Example'), tcc_pause('https://pay.example:8443');
SELECT destination FROM tcc._pause ORDER BY 1;
ROLLBACK;
