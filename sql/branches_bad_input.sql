-- Bad input to tcc_branches and tcc_run (docs/api.md, and its "Bad
-- input"): every element of the array is checked as tcc_branch checks its
-- arguments, and keys tcc does not know are refused; any bad element fails
-- the whole call with the SQLSTATE docs/api.md#sqlstates names, before
-- anything is written or called.
-- The message's context names the element.

-- Run stmt with $1 = gid and $2 = url, and show how it failed (SQLSTATE,
-- message, hint, and the context line naming the element, if any).
CREATE FUNCTION pg_temp.try_call(stmt text, gid uuid DEFAULT NULL,
                                 url text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    code text;
    msg text;
    hint text;
    ctx text;
BEGIN
    EXECUTE stmt USING gid, url;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE,
                            msg = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT,
                            ctx = PG_EXCEPTION_CONTEXT;
    msg := regexp_replace(msg,
        '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}',
        '<gid>', 'g');
    ctx := substring(ctx from 'element [0-9]+ of branches');
    RETURN code || ': ' || msg
        || COALESCE(' (hint: ' || NULLIF(hint, '') || ')', '')
        || COALESCE(' [' || ctx || ']', '');
END
$$;

-- Rows in the coordinator tables and requests the test participant got.
CREATE FUNCTION pg_temp.footprint() RETURNS TABLE (what text, n bigint)
LANGUAGE sql AS $$
    SELECT 'tcc._gtx', count(*) FROM tcc._gtx
    UNION ALL SELECT 'tcc._branch', count(*) FROM tcc._branch
    UNION ALL SELECT 'tcc._decision', count(*) FROM tcc._decision
    UNION ALL SELECT 'tcc._try', count(*) FROM tcc._try
    UNION ALL SELECT 'tp.requests', count(*) FROM tp.requests
$$;

SELECT tp.url('/branches_bad_input') AS url \gset
SELECT tcc_begin('1 hour') AS gid \gset
SELECT tcc_begin('1 hour') AS decided \gset
SELECT tcc_finish(:'decided', false);
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.footprint();

-- Run tcc_branches on the undecided gid with branches $b (the text of a
-- jsonb array, where $URL stands for the participant's URL).
CREATE FUNCTION pg_temp.branches(b text, gid uuid, url text) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.try_call('SELECT tcc_branches($1, '
        || quote_literal(replace(b, '$URL', url)) || '::jsonb)', gid, url)
$$;

-- ---- the array itself: 22023
SELECT pg_temp.branches('null', :'gid', :'url') AS json_null;
SELECT pg_temp.branches('{}', :'gid', :'url') AS object;
SELECT pg_temp.branches('"x"', :'gid', :'url') AS scalar;
SELECT pg_temp.branches('[]', :'gid', :'url') AS empty;
SELECT pg_temp.try_call('SELECT tcc_branches($1, NULL)', :'gid') AS sql_null;
SELECT pg_temp.try_call('SELECT tcc_branches(NULL, ''[{"try":"http://x/"}]'')') AS null_gid;
SELECT pg_temp.branches('[1]', :'gid', :'url') AS element_number;
SELECT pg_temp.branches('[[]]', :'gid', :'url') AS element_array;
SELECT pg_temp.branches('[null]', :'gid', :'url') AS element_null;

-- ---- keys: unknown ones are refused, whatever the case
SELECT pg_temp.branches('[{"try":"$URL/t","tries":1}]', :'gid', :'url') AS unknown_key;
SELECT pg_temp.branches('[{"Try":"$URL/t"}]', :'gid', :'url') AS key_case;
SELECT pg_temp.branches('[{"try_url":"$URL/t"}]', :'gid', :'url') AS key_of_tcc_branch;
SELECT pg_temp.branches('[{}]', :'gid', :'url') AS no_url;
SELECT pg_temp.branches('[{"try":null,"confirm":null,"cancel":null}]', :'gid', :'url') AS all_urls_null;

-- ---- URLs: 22023, the second element bad
SELECT pg_temp.branches('[{"try":"$URL/t"},{"try":"ftp://x/t"}]', :'gid', :'url') AS ftp;
SELECT pg_temp.branches('[{"try":"$URL/t"},{"confirm":"not a url"}]', :'gid', :'url') AS unparsed;
SELECT pg_temp.branches('[{"try":"$URL/t"},{"cancel":5}]', :'gid', :'url') AS url_number;
SELECT pg_temp.branches('[{"try":{"u":1}}]', :'gid', :'url') AS url_object;
SET tcc.allowed_urls = 'http://127.0.0.1:1/only';
SELECT pg_temp.branches('[{"try":"$URL/t"}]', :'gid', :'url') AS not_allowed;
RESET tcc.allowed_urls;

-- ---- payload: null refused (22023), too large 54000; any JSON value else
SELECT pg_temp.branches('[{"try":"$URL/t","payload":null}]', :'gid', :'url') AS payload_null;
SET tcc.max_payload_size = 1;
SELECT pg_temp.try_call('SELECT tcc_branches($1, jsonb_build_array(jsonb_build_object(''try'', $2 || ''/t'', ''payload'', repeat(''x'', 2000))))', :'gid', :'url') AS payload_large;
RESET tcc.max_payload_size;

-- ---- name: a string of at most 1000 bytes
SELECT pg_temp.branches('[{"try":"$URL/t","name":7}]', :'gid', :'url') AS name_number;
SELECT pg_temp.try_call('SELECT tcc_branches($1, jsonb_build_array(jsonb_build_object(''try'', $2 || ''/t'', ''name'', repeat(''n'', 1001))))', :'gid', :'url') AS name_long;

-- ---- headers: as tcc_branch's
SELECT pg_temp.branches('[{"try":"$URL/t","headers":"x"}]', :'gid', :'url') AS headers_string;
SELECT pg_temp.branches('[{"try":"$URL/t","headers":{"A":1}}]', :'gid', :'url') AS header_number;
SELECT pg_temp.branches('[{"try":"$URL/t","headers":{"tcc_gid":"x"}}]', :'gid', :'url') AS header_reserved;
SELECT pg_temp.branches('[{"try":"$URL/t","headers":{"Idempotency-Key":"x"}}]', :'gid', :'url') AS header_idem;
SELECT pg_temp.branches('[{"try":"$URL/t","headers":{"A":"x\ny"}}]', :'gid', :'url') AS header_lf;
SELECT pg_temp.branches('[{"try":"$URL/t","headers":{"A b":"x"}}]', :'gid', :'url') AS header_name;

-- ---- protocol: tcc or dtm
SELECT pg_temp.branches('[{"try":"$URL/t","protocol":"xa"}]', :'gid', :'url') AS protocol_other;
SELECT pg_temp.branches('[{"try":"$URL/t","protocol":null}]', :'gid', :'url') AS protocol_null;
SELECT pg_temp.branches('[{"try":"$URL/t","protocol":"DTM"}]', :'gid', :'url') AS protocol_case;
SELECT pg_temp.try_call('SELECT tcc_branch($1, $2 || ''/t'', NULL, NULL, protocol => ''saga'')', :'gid', :'url') AS branch_protocol;

-- ---- more branches than tcc.max_branches_per_call
SET tcc.max_branches_per_call = 2;
SELECT pg_temp.branches('[{"try":"$URL/t"},{"try":"$URL/t"},{"try":"$URL/t"}]', :'gid', :'url') AS too_many;
RESET tcc.max_branches_per_call;

-- ---- unknown gid (TC004), decided gid (TC003): refused by the worker
SELECT pg_temp.branches('[{"try":"$URL/t"}]', '00000000-0000-0000-0000-00000000b002', :'url') AS unknown_gid;
SELECT pg_temp.branches('[{"try":"$URL/t"},{"try":"$URL/t"}]', :'decided', :'url') AS decided_gid;

-- ---- tcc_run: the same checks, and tcc_begin's
SELECT pg_temp.try_call('SELECT tcc_run(''[{"try":"ftp://x/t"}]'')') AS run_ftp;
SELECT pg_temp.try_call('SELECT tcc_run(''[]'')') AS run_empty;
SELECT pg_temp.try_call('SELECT tcc_run(NULL)') AS run_null;
SELECT pg_temp.try_call('SELECT tcc_run(''[{"try":"http://127.0.0.1:1/t"}]'', ''-1 s'')') AS run_timeout;
SELECT pg_temp.try_call('SELECT tcc_run(''[{"try":"http://127.0.0.1:1/t"}]'', business_key => ''k'')') AS run_key_no_kind;

-- Nothing was written and the participant got no request.
SELECT b.what, a.n - b.n AS added
  FROM before b JOIN pg_temp.footprint() a USING (what)
 ORDER BY b.what;

SELECT tcc_finish(:'gid', false);
