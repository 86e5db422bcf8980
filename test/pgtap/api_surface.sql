-- The SQL surface of docs/api.md (initiator and operator functions;
-- 1.1: tcc_branch's protocol, tcc_branches, tcc_run; 1.2: tcc_begin's and
-- tcc_run's trace context, tcc_branch's policy and pass_try_response,
-- tcc_pause, tcc_resume, tcc.destinations),
-- 8 (views with at least the listed columns) and 9 (barrier): names,
-- argument types, argument names (named notation such as
-- parallel => true), defaults and return types.
BEGIN;
SELECT plan(52);

SELECT has_extension('tcc');
SELECT has_schema('tcc');

-- Functions: visible with the default search_path, argument types as
-- docs/api.md lists them.
SELECT has_function('tcc_begin',
    ARRAY['interval', 'text', 'text', 'boolean', 'text', 'text']);
SELECT has_function('tcc_branch',
    ARRAY['uuid', 'text', 'text', 'text', 'jsonb', 'text', 'jsonb', 'text',
          'interval', 'integer', 'boolean']);
SELECT has_function('tcc_branches', ARRAY['uuid', 'jsonb']);
SELECT has_function('tcc_run',
    ARRAY['jsonb', 'interval', 'text', 'text', 'boolean', 'text', 'text']);
SELECT has_function('tcc_pause', ARRAY['text', 'text']);
SELECT has_function('tcc_resume', ARRAY['text']);
SELECT has_function('tcc_finish', ARRAY['uuid', 'boolean']);
SELECT has_function('tcc_wait', ARRAY['uuid', 'interval']);
SELECT has_function('tcc_retry', ARRAY['uuid']);
SELECT has_function('tcc_resolve', ARRAY['uuid', 'text']);
SELECT has_function('tcc_barrier', ARRAY['uuid', 'integer', 'text']);
SELECT has_function('tcc_barrier_cleanup', ARRAY['interval']);

SELECT function_returns('tcc_begin',
    ARRAY['interval', 'text', 'text', 'boolean', 'text', 'text'], 'uuid');
SELECT function_returns('tcc_branch',
    ARRAY['uuid', 'text', 'text', 'text', 'jsonb', 'text', 'jsonb', 'text',
          'interval', 'integer', 'boolean'],
    'jsonb');
SELECT function_returns('tcc_branches', ARRAY['uuid', 'jsonb'], 'jsonb');
SELECT function_returns('tcc_run',
    ARRAY['jsonb', 'interval', 'text', 'text', 'boolean', 'text', 'text'],
    'record');
SELECT function_returns('tcc_pause', ARRAY['text', 'text'], 'void');
SELECT function_returns('tcc_resume', ARRAY['text'], 'void');
SELECT function_returns('tcc_finish', ARRAY['uuid', 'boolean'], 'text');
SELECT function_returns('tcc_wait', ARRAY['uuid', 'interval'], 'text');
SELECT function_returns('tcc_retry', ARRAY['uuid'], 'void');
SELECT function_returns('tcc_resolve', ARRAY['uuid', 'text'], 'void');
SELECT function_returns('tcc_barrier', ARRAY['uuid', 'integer', 'text'], 'boolean');

-- Argument names and number of defaults.
CREATE FUNCTION pg_temp.args(fn text) RETURNS text
LANGUAGE sql AS $$
    SELECT array_to_string(p.proargnames, ',') || ' / ' || p.pronargdefaults
      FROM pg_proc p
     WHERE p.proname = fn AND pg_function_is_visible(p.oid)
$$;

SELECT is(pg_temp.args('tcc_begin'),
          'timeout,kind,business_key,parallel,traceparent,tracestate / 6',
          'tcc_begin argument names and defaults');
SELECT is(pg_temp.args('tcc_branch'),
          'gid,try_url,confirm_url,cancel_url,payload,name,headers,protocol,timeout,max_attempts,pass_try_response / 7',
          'tcc_branch argument names and defaults');
SELECT is(pg_temp.args('tcc_branches'), 'gid,branches / 0',
          'tcc_branches argument names');
SELECT is(pg_temp.args('tcc_run'),
          'branches,timeout,kind,business_key,parallel,traceparent,tracestate,gid,responses / 6',
          'tcc_run argument names (with its OUT parameters) and defaults');
SELECT is(pg_temp.args('tcc_finish'), 'gid,commit / 1',
          'tcc_finish argument names and defaults');
SELECT is(pg_temp.args('tcc_wait'), 'gid,timeout / 1',
          'tcc_wait argument names and defaults');
SELECT is(pg_temp.args('tcc_retry'), 'gid / 0', 'tcc_retry argument names');
SELECT is(pg_temp.args('tcc_resolve'), 'gid,note / 0',
          'tcc_resolve argument names');
SELECT is(pg_temp.args('tcc_barrier'), 'gid,branch,op / 0',
          'tcc_barrier argument names');
SELECT is(pg_temp.args('tcc_barrier_cleanup'), 'older_than / 0',
          'tcc_barrier_cleanup argument names');
SELECT is(pg_temp.args('tcc_pause'), 'destination,note / 1',
          'tcc_pause argument names and defaults');
SELECT is(pg_temp.args('tcc_resume'), 'destination / 0',
          'tcc_resume argument names');

-- Views in schema tcc, each with at least the columns docs/api.md#views lists.
SELECT has_view('tcc', 'transactions', 'view tcc.transactions');
SELECT has_view('tcc', 'branches', 'view tcc.branches');
SELECT has_view('tcc', 'attempts', 'view tcc.attempts');
SELECT has_view('tcc', 'pending', 'view tcc.pending');
SELECT has_view('tcc', 'attention', 'view tcc.attention');
SELECT has_view('tcc', 'stats', 'view tcc.stats');
SELECT has_view('tcc', 'destinations', 'view tcc.destinations');

-- The documented columns of a view that it lacks.
CREATE FUNCTION pg_temp.missing(view text, cols text[]) RETURNS text[]
LANGUAGE sql AS $$
    SELECT coalesce(array_agg(c ORDER BY c), '{}')
      FROM unnest(cols) AS c
     WHERE NOT EXISTS (SELECT FROM information_schema.columns i
                        WHERE i.table_schema = 'tcc'
                          AND i.table_name = view
                          AND i.column_name = c)
$$;

CREATE TEMP TABLE gtx_cols AS
SELECT ARRAY['gid', 'kind', 'business_key', 'status', 'owner', 'created_at',
             'deadline', 'decided_at', 'finished_at', 'branches', 'attempts',
             'next_attempt_at', 'last_error'] AS cols;

SELECT is(pg_temp.missing('transactions', cols), '{}',
          'tcc.transactions has the documented columns') FROM gtx_cols;
SELECT is(pg_temp.missing('pending', cols), '{}',
          'tcc.pending has the columns of tcc.transactions') FROM gtx_cols;
SELECT is(pg_temp.missing('attention', cols || ARRAY['why']), '{}',
          'tcc.attention has the columns of tcc.transactions and why')
  FROM gtx_cols;
SELECT is(pg_temp.missing('branches',
              ARRAY['gid', 'branch', 'name', 'try_url', 'confirm_url',
                    'cancel_url', 'status', 'attempts', 'last_http_status',
                    'last_error', 'next_attempt_at']), '{}',
          'tcc.branches has the documented columns');
SELECT is(pg_temp.missing('transactions', ARRAY['trace_id']), '{}',
          'tcc.transactions has trace_id');
SELECT is(pg_temp.missing('branches', ARRAY['timeout', 'max_attempts']), '{}',
          'tcc.branches has timeout and max_attempts');
SELECT is(pg_temp.missing('destinations',
              ARRAY['destination', 'paused', 'paused_at', 'paused_by', 'note',
                    'calls_due', 'in_flight', 'last_http_status',
                    'last_error', 'next_attempt_at']), '{}',
          'tcc.destinations has the documented columns');
SELECT is(pg_temp.missing('attempts',
              ARRAY['gid', 'branch', 'op', 'started_at', 'duration_ms',
                    'http_status', 'error']), '{}',
          'tcc.attempts has the documented columns');

SELECT * FROM finish();
ROLLBACK;
