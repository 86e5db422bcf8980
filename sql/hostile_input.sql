-- Hostile input (docs/settings.md, docs/api.md#bad-input and
-- docs/api.md#sqlstates):
--  * tcc.allowed_urls (1.1): entries are URLs; a participant URL is allowed
--    when scheme, host and port equal an entry's (a missing port is the
--    scheme's default) and its path, dot segments resolved, equals the
--    entry's path or lies under it at a '/' boundary; the URL called is the
--    one checked; paths a server might decode differently are refused.
--  * headers that try to set a reserved one with '_' for '-', in any case.
--  * error messages never cut a multibyte character: a client whose
--    encoding is LATIN1 gets the SQLSTATE of the error, not 22021.
-- Refusals raise 22023 and call nothing.

-- Run stmt with $1 = gid and $2 = url, and show how it failed.
CREATE FUNCTION pg_temp.try_call(stmt text, gid uuid DEFAULT NULL,
                                 url text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    code text;
    msg text;
BEGIN
    EXECUTE stmt USING gid, url;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN code || ': ' || msg;
END
$$;

SELECT tp.url('/hostile') AS base \gset
SELECT tcc_begin('1 hour') AS g \gset
SELECT tcc_begin('1 hour') AS g_ok \gset

-- ---- tcc.allowed_urls
SELECT format('%s/allowed/, http://127.0.0.1, %s/exact', :'base', :'base')
    AS allowed \gset
SET tcc.allowed_urls TO :'allowed';
-- dot segments are resolved before the check: this is /hostile/admin/try
SELECT pg_temp.try_call($$SELECT tcc_branch($1, $2 || '/allowed/../admin/try',
    NULL, NULL)$$, :'g', :'base') AS dot_segments_out;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || '/allowed/a/./b/../../../admin', NULL)$$, :'g', :'base')
    AS more_dot_segments_out;
-- another host whose text starts like an allowed one, another port
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, 'http://127.0.0.12/x',
    NULL)$$, :'g') AS longer_host;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    'http://127.0.0.1:8080/x', NULL)$$, :'g') AS other_port;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, 'https://127.0.0.1/x',
    NULL)$$, :'g') AS other_scheme;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    'http://127.0.0.1.evil.invalid/x', NULL)$$, :'g') AS host_suffix;
-- a path that only starts with an entry's text is not under it
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, $2 || '/allowedX/x',
    NULL)$$, :'g', :'base') AS sibling_path;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, $2 || '/allowed',
    NULL)$$, :'g', :'base') AS above_trailing_slash_entry;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, $2 || '/exactly',
    NULL)$$, :'g', :'base') AS sibling_of_exact;
-- what a server might decode into another path
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || '/allowed/%2e%2e/admin', NULL)$$, :'g', :'base') AS encoded_dots;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || '/allowed/.%2E/admin', NULL)$$, :'g', :'base') AS half_encoded_dots;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || '/allowed/..%2fadmin', NULL)$$, :'g', :'base') AS encoded_slash;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || '/allowed/..%5Cadmin', NULL)$$, :'g', :'base') AS encoded_backslash;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || E'/allowed/..\\admin', NULL)$$, :'g', :'base') AS backslash;
SELECT count(*) AS branches_refused_urls FROM tcc._branch WHERE gid = :'g';

-- allowed: under an entry, at it, at the scheme's default port, any case of
-- scheme and host; dot segments that stay inside
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    'http://127.0.0.1/any/path', NULL)$$, :'g_ok') AS default_port;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    'HTTP://127.0.0.1:80/x?y=/../z', NULL)$$, :'g_ok') AS explicit_port;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, $2 || '/exact', NULL)$$,
    :'g_ok', :'base') AS exact;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, $2 || '/exact/sub',
    NULL)$$, :'g_ok', :'base') AS under_exact;
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || '/allowed/a/../b', NULL)$$, :'g_ok', :'base') AS dots_inside;
-- the URL called is the URL checked: the participant sees the resolved path
SELECT tcc_branch(:'g_ok', :'base' || '/allowed/sub/../try', NULL, NULL)
    AS try_answer;
SELECT path FROM tp.requests WHERE starts_with(path, '/hostile/')
 ORDER BY id;
RESET tcc.allowed_urls;

-- without tcc.allowed_urls, encoded dots are the participant's business
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL,
    $2 || '/free/%2e%2e/x', NULL)$$, :'g_ok', :'base') AS encoded_dots_unfenced;

-- ---- reserved headers, also with '_' for '-' and in any case
SELECT pg_temp.try_call(format($$SELECT tcc_branch($1, NULL, $2 || '/h',
    NULL, '{}', NULL, %L)$$, h), :'g', :'base') AS reserved_header
  FROM unnest(ARRAY['{"Tcc_Op": "confirm"}', '{"tcc_gid": "x"}',
                    '{"TCC_BRANCH": "1"}', '{"Idempotency_Key": "x"}',
                    '{"IDEMPOTENCY_key": "x"}', '{"Content_Type": "x"}',
                    '{"Transfer_Encoding": "x"}', '{"User_Agent": "x"}',
                    '{"Tcc-Op": "x"}']) AS h;
SELECT count(*) AS branches_refused_headers FROM tcc._branch WHERE gid = :'g';
SELECT pg_temp.try_call($$SELECT tcc_branch($1, NULL, $2 || '/h', NULL, '{}',
    NULL, '{"X_Tcc_Op": "fine", "Tcc": "fine too"}')$$, :'g_ok', :'base')
    AS unreserved_headers;

-- ---- messages cut on character boundaries
-- kind and key hold multibyte characters (e acute) at the point where the
-- message cuts them; a LATIN1 client can show it, so it gets the error the
-- server raised: 23505 and 22023
SET client_encoding TO 'LATIN1';
\set VERBOSITY sqlstate
SELECT tcc_begin('1 hour', 'k' || repeat(chr(233), 100),
                 'b' || repeat(chr(233), 200)) IS NOT NULL AS begun;
SELECT tcc_begin('1 hour', 'k' || repeat(chr(233), 100),
                 'b' || repeat(chr(233), 200));
SELECT tcc_barrier('20000000-0000-0000-0000-000000000001', 1,
                   'x' || repeat(chr(233), 100));
\set VERBOSITY default
RESET client_encoding;
-- and in the server's encoding the message ends on a whole character
SELECT pg_temp.try_call($$SELECT tcc_begin('1 hour',
    'k' || repeat(chr(233), 100), 'b' || repeat(chr(233), 200))$$)
    = '23505: a global transaction of kind "k' || repeat(chr(233), 29)
      || '" with business key "b' || repeat(chr(233), 49) || '" already exists'
    AS whole_characters;

-- ---- clean up: nothing left undecided
SELECT tcc_finish(gid, false) FROM tcc._gtx
 WHERE gid IN (:'g', :'g_ok') OR kind LIKE 'k%' ORDER BY created_at;
