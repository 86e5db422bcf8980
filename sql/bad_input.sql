-- Bad input (docs/api.md: its functions, "Bad input" and "SQLSTATEs"):
-- every case raises an ERROR with the SQLSTATE docs/api.md#sqlstates names
-- and a lower-case message; nothing is written to the coordinator tables
-- and no HTTP call is made.  The last row of docs/api.md#bad-input
-- (functions called where the worker is not configured, 55000) is covered
-- by sql/not_configured.sql.
--
-- Each call runs through pg_temp.try_call, which shows "SQLSTATE: message"
-- (and the hint, if any) without the C source location.  Real gids are
-- random, so they are shown as <gid>; unknown gids are fixed and shown as
-- they are.  CR and LF in a message are shown as \r and \n.

-- Run stmt with $1 = gid and $2 = url, and show how it failed.
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
    msg := replace(replace(msg, E'\r', '\r'), E'\n', '\n');
    RETURN code || ': ' || msg
        || COALESCE(' (hint: ' || NULLIF(hint, '') || ')', '');
END
$$;

-- Run stmt like try_call, and show only the SQLSTATE.
CREATE FUNCTION pg_temp.try_code(stmt text, gid uuid DEFAULT NULL,
                                 url text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt USING gid, url;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
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
    UNION ALL SELECT 'tcc._action', count(*) FROM tcc._action
    UNION ALL SELECT 'tcc._barrier', count(*) FROM tcc._barrier
    UNION ALL SELECT 'tp.requests', count(*) FROM tp.requests
$$;

-- Participant URLs of this test: a call that should not happen would show
-- in tp.requests.
SELECT tp.url('/bad_input') AS url \gset

-- Two real global transactions: one left undecided (for the other-role
-- cases), one cancelled and final (for the decided cases).
SELECT tcc_begin('1 hour') AS undecided \gset
SELECT tcc_begin('1 hour') AS decided \gset
SELECT tcc_begin('1 hour') AS unparsed1 \gset
SELECT tcc_begin('1 hour') AS unparsed2 \gset
SELECT tcc_begin('1 hour') AS unparsed3 \gset
SELECT tcc_begin('1 hour') AS unparsed4 \gset
SELECT tcc_finish(:'decided', false);
SELECT tcc_wait(:'decided', '10 s');

-- A role that is not superuser and may call the functions.
CREATE ROLE tcc_bad_input_role;
GRANT EXECUTE ON FUNCTION tcc_begin(interval, text, text, boolean, text, text),
    tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean),
    tcc_finish(uuid, boolean), tcc_wait(uuid, interval), tcc_retry(uuid),
    tcc_resolve(uuid, text), tcc_barrier(uuid, integer, text)
    TO tcc_bad_input_role;

CREATE TEMP TABLE before AS SELECT * FROM pg_temp.footprint();

-- ---- unknown gid: TC004
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try',
    $2 || '/confirm', $2 || '/cancel')$$,
    '00000000-0000-0000-0000-00000000b001', :'url') AS branch_unknown;
SELECT pg_temp.try_call('SELECT tcc_finish($1)',
    '00000000-0000-0000-0000-00000000b002') AS finish_unknown;
SELECT pg_temp.try_call('SELECT tcc_finish($1, false)',
    '00000000-0000-0000-0000-00000000b003') AS finish_false_unknown;
SELECT pg_temp.try_call($$SELECT tcc_wait($1, '1 s')$$,
    '00000000-0000-0000-0000-00000000b004') AS wait_unknown;
SELECT pg_temp.try_call('SELECT tcc_retry($1)',
    '00000000-0000-0000-0000-00000000b005') AS retry_unknown;
SELECT pg_temp.try_call($$SELECT tcc_resolve($1, 'settled by hand')$$,
    '00000000-0000-0000-0000-00000000b006') AS resolve_unknown;

-- ---- gid of another role: 42501 for a role that is not superuser
SET ROLE tcc_bad_input_role;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try',
    $2 || '/confirm', $2 || '/cancel')$$, :'undecided', :'url')
    AS branch_other_role;
SELECT pg_temp.try_call('SELECT tcc_finish($1)', :'undecided')
    AS finish_other_role;
SELECT pg_temp.try_call('SELECT tcc_finish($1, false)', :'undecided')
    AS finish_false_other_role;
SELECT pg_temp.try_call($$SELECT tcc_wait($1, '1 s')$$, :'undecided')
    AS wait_other_role;
SELECT pg_temp.try_call('SELECT tcc_retry($1)', :'decided')
    AS retry_other_role;
SELECT pg_temp.try_call($$SELECT tcc_resolve($1, 'not mine')$$, :'undecided')
    AS resolve_other_role;
RESET ROLE;

-- ---- branch or finish on a decided transaction: TC003
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try',
    $2 || '/confirm', $2 || '/cancel')$$, :'decided', :'url')
    AS branch_decided;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, $2 || '/confirm',
    NULL)$$, :'decided', :'url') AS branch_no_try_decided;
SELECT pg_temp.try_call('SELECT tcc_finish($1, true)', :'decided')
    AS finish_opposite;
-- the same decision again is a no-op, not an error
SELECT tcc_finish(:'decided', false) AS finish_same_again;
-- operator actions on a final transaction: a no-op with a NOTICE (its gid
-- is random, so the NOTICE is hidden here; t470 checks its text)
SET client_min_messages = warning;
SELECT pg_temp.try_call('SELECT tcc_retry($1)', :'decided') AS retry_final;
SELECT pg_temp.try_call($$SELECT tcc_resolve($1, 'too late')$$, :'decided')
    AS resolve_final;
RESET client_min_messages;

-- ---- URLs: 22023 (the checks run before the gid is looked up)
SELECT pg_temp.try_call($$SELECT tcc_branch($1, 'not-a-url', NULL, NULL)$$,
    :'undecided') AS url_not_a_url;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, 'not a url', NULL, NULL)$$,
    :'undecided') AS url_words;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, 'http//127.0.0.1/x', NULL,
    NULL)$$, :'undecided') AS url_no_colon;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, '', NULL, NULL)$$,
    :'undecided') AS url_empty;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, 'http://', NULL, NULL)$$,
    :'undecided') AS url_no_host;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, 'http://:80/x', NULL, NULL)$$,
    :'undecided') AS url_empty_host;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, '/bad_input/try', NULL, NULL)$$,
    :'undecided') AS url_relative;
SELECT pg_temp.try_call($$SELECT tcc_branch($1,
    'ftp://127.0.0.1/bad_input/try', NULL, NULL)$$,
    :'undecided') AS url_ftp;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, NULL,
    'file:///etc/passwd')$$, :'undecided') AS url_file;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    'gopher://127.0.0.1/x', NULL)$$, :'undecided') AS url_gopher;
SELECT pg_temp.try_call($$SELECT tcc_branch($1,
    replace($2, 'http://', 'http://user:secret@') || '/try', NULL, NULL)$$,
    :'undecided', :'url') AS url_credentials;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/a b', NULL, NULL)$$,
    :'undecided', :'url') AS url_space;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || E'/try\r\nX: y',
    NULL, NULL)$$, :'undecided', :'url') AS url_crlf;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || repeat('x', 5000),
    NULL, NULL)$$, :'undecided', :'url') AS url_too_long;
SELECT pg_temp.try_call('SELECT tcc_branch($1, NULL, NULL, NULL)',
    :'undecided') AS url_none;
-- http URLs that do not parse (libcurl refuses them): only the SQLSTATE is
-- shown, the message is the extension's to choose.  Each on a transaction
-- of its own, so that a try made by mistake cannot cancel another one.
SELECT pg_temp.try_code($$SELECT tcc_branch($1, 'http://[::1/x', NULL,
    NULL)$$, :'unparsed1') AS url_unclosed_bracket;
SELECT pg_temp.try_code($$SELECT tcc_branch($1, 'http://127.0.0.1:abc/x',
    NULL, NULL)$$, :'unparsed2') AS url_port_not_a_number;
SELECT pg_temp.try_code($$SELECT tcc_branch($1, 'http://127.0.0.1:99999/x',
    NULL, NULL)$$, :'unparsed3') AS url_port_out_of_range;
SELECT pg_temp.try_code($$SELECT tcc_branch($1, NULL, NULL,
    'http://[::1/cancel')$$, :'unparsed4') AS cancel_url_unclosed_bracket;

-- outside tcc.allowed_urls, for each of the three URLs
SET tcc.allowed_urls = 'http://127.0.0.1:1/bad_input/, https://tcc.invalid/';
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try',
    'http://127.0.0.1:1/bad_input/confirm',
    'http://127.0.0.1:1/bad_input/cancel')$$,
    :'undecided', :'url') AS try_url_not_allowed;
SELECT pg_temp.try_call($$SELECT tcc_branch($1,
    'http://127.0.0.1:1/bad_input/try', $2 || '/confirm',
    'http://127.0.0.1:1/bad_input/cancel')$$,
    :'undecided', :'url') AS confirm_url_not_allowed;
SELECT pg_temp.try_call($$SELECT tcc_branch($1,
    'http://127.0.0.1:1/bad_input/try',
    'http://127.0.0.1:1/bad_input/confirm', $2 || '/cancel')$$,
    :'undecided', :'url') AS cancel_url_not_allowed;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    'http://tcc.invalid/x', NULL)$$,
    :'undecided') AS scheme_not_allowed;
RESET tcc.allowed_urls;

-- ---- payload over tcc.max_payload_size: 54000
SET tcc.max_payload_size = '1kB';
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try',
    $2 || '/confirm', $2 || '/cancel',
    jsonb_build_object('pad', repeat('x', 2000)))$$,
    :'undecided', :'url') AS payload_too_large;
RESET tcc.max_payload_size;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try',
    $2 || '/confirm', $2 || '/cancel',
    jsonb_build_object('pad', repeat('x', 1100 * 1024)))$$,
    :'undecided', :'url') AS payload_over_default;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try',
    $2 || '/confirm', $2 || '/cancel', NULL)$$,
    :'undecided', :'url') AS payload_null;

-- ---- headers: 22023
-- CR, LF in values
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Note": "a\r\nInjected: yes"}')$$,
    :'undecided', :'url') AS header_value_crlf;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Note": "a\nb"}')$$,
    :'undecided', :'url') AS header_value_lf;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Note": "a\rb"}')$$,
    :'undecided', :'url') AS header_value_cr;
-- CR, LF and other non-token characters in names
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Note\r\nInjected": "a"}')$$,
    :'undecided', :'url') AS header_name_crlf;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X Note": "a"}')$$,
    :'undecided', :'url') AS header_name_space;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Note:": "a"}')$$,
    :'undecided', :'url') AS header_name_colon;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"": "a"}')$$,
    :'undecided', :'url') AS header_name_empty;
-- NUL cannot even reach tcc: jsonb refuses \u0000 (22P05) in the caller's
-- own statement, for names and values alike
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Note": "a\u0000b"}')$$,
    :'undecided', :'url') AS header_value_nul;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-\u0000": "a"}')$$,
    :'undecided', :'url') AS header_name_nul;
-- headers the protocol sets itself, in any letter case
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"Tcc-Gid": "00000000-0000-0000-0000-000000000000"}')$$,
    :'undecided', :'url') AS header_tcc_gid;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"tcc-op": "confirm"}')$$,
    :'undecided', :'url') AS header_tcc_op;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"TCC-BRANCH": "1"}')$$,
    :'undecided', :'url') AS header_tcc_branch;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"Tcc-Anything": "x"}')$$,
    :'undecided', :'url') AS header_tcc_other;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"Idempotency-Key": "x"}')$$,
    :'undecided', :'url') AS header_idempotency_key;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"idempotency-key": "x"}')$$,
    :'undecided', :'url') AS header_idempotency_key_lower;
-- not an object of strings
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '["Authorization", "Bearer x"]')$$,
    :'undecided', :'url') AS headers_array;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '"Authorization: Bearer x"')$$,
    :'undecided', :'url') AS headers_string;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Count": 1}')$$,
    :'undecided', :'url') AS header_value_number;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Nested": {"a": "b"}}')$$,
    :'undecided', :'url') AS header_value_object;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', NULL, '{"X-Null": null}')$$,
    :'undecided', :'url') AS header_value_null;

-- ---- negative or zero timeout: 22023
SELECT pg_temp.try_call($$SELECT tcc_begin('0')$$) AS begin_zero;
SELECT pg_temp.try_call($$SELECT tcc_begin('-1 s')$$) AS begin_negative;
SELECT pg_temp.try_call($$SELECT tcc_begin('1 day -86400 s')$$)
    AS begin_zero_in_parts;
SELECT pg_temp.try_call($$SELECT tcc_begin('-1 mon')$$) AS begin_negative_month;
SELECT pg_temp.try_call($$SELECT tcc_wait($1, '0')$$, :'undecided')
    AS wait_zero;
SELECT pg_temp.try_call($$SELECT tcc_wait($1, '-5 min')$$, :'undecided')
    AS wait_negative;
SELECT pg_temp.try_call($$SELECT tcc_wait($1, NULL)$$, :'undecided')
    AS wait_null;

-- ---- barrier op other than try, confirm, cancel: 22023
SELECT pg_temp.try_call($$SELECT tcc_barrier($1, 1, 'commit')$$,
    '00000000-0000-0000-0000-00000000b010') AS barrier_commit;
SELECT pg_temp.try_call($$SELECT tcc_barrier($1, 1, 'TRY')$$,
    '00000000-0000-0000-0000-00000000b011') AS barrier_upper_case;
SELECT pg_temp.try_call($$SELECT tcc_barrier($1, 1, '')$$,
    '00000000-0000-0000-0000-00000000b012') AS barrier_empty;
SELECT pg_temp.try_call($$SELECT tcc_barrier($1, 1, NULL)$$,
    '00000000-0000-0000-0000-00000000b013') AS barrier_null;

-- ---- other invalid arguments: 22023
SELECT pg_temp.try_call($$SELECT tcc_branch(NULL, $2 || '/try', NULL,
    NULL)$$, NULL, :'url') AS branch_null_gid;
SELECT pg_temp.try_call('SELECT tcc_finish($1, NULL)', :'undecided')
    AS finish_null_commit;
SELECT pg_temp.try_call('SELECT tcc_resolve($1, NULL)', :'undecided')
    AS resolve_null_note;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/try', NULL, NULL,
    '{}', repeat('n', 1001))$$, :'undecided', :'url') AS name_too_long;
SELECT pg_temp.try_call($$SELECT tcc_begin('1 min', NULL, 'key')$$)
    AS business_key_without_kind;

-- ---- as a role that is not superuser, the same checks apply
SET ROLE tcc_bad_input_role;
SELECT pg_temp.try_call($$SELECT tcc_begin('-1 s')$$) AS role_begin_negative;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, 'ftp://127.0.0.1/x', NULL,
    NULL)$$, :'undecided') AS role_url_ftp;
SELECT pg_temp.try_call($$SELECT tcc_branch($1,
    'http://127.0.0.1:1/bad_input/try', NULL, NULL, '{}', NULL,
    '{"Tcc-Gid": "x"}')$$, :'undecided') AS role_header_reserved;
-- tcc.allowed_urls and tcc.max_payload_size are superuser settings
SELECT pg_temp.try_call($$SET tcc.allowed_urls = ''$$) AS role_set_allowed_urls;
SELECT pg_temp.try_call($$SET tcc.max_payload_size = '1GB'$$)
    AS role_set_max_payload_size;
RESET ROLE;

-- Nothing was written and the participant got no request.
SELECT b.what, b.n = a.n AS unchanged
  FROM before b JOIN pg_temp.footprint() a USING (what)
 ORDER BY b.what;

-- Clean up: the undecided transactions cancel, the role goes.
SELECT tcc_finish(:'undecided', false);
SELECT tcc_wait(:'undecided', '10 s');
-- The transactions of the unparsable URLs end resolved or cancelled (should
-- a URL have been registered by mistake, no call stays retried).
CREATE TEMP TABLE unparsed AS
SELECT unnest(ARRAY[:'unparsed1', :'unparsed2', :'unparsed3',
                    :'unparsed4']::uuid[]) AS g;
DO $$
DECLARE
    u record;
BEGIN
    FOR u IN SELECT g FROM unparsed LOOP
        BEGIN
            PERFORM tcc_resolve(u.g, 'bad_input cleanup');
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT bool_and(tcc_wait(g, '10 s') IN ('cancelled', 'resolved')) AS settled
  FROM unparsed;
DROP OWNED BY tcc_bad_input_role;
DROP ROLE tcc_bad_input_role;
