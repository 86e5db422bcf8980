/* tcc--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tcc UPDATE TO '1.2'" to load this file. \quit

-- Version 1.2 of the SQL objects.  tcc--1.2.sql, the script a new install
-- runs, is built from tcc--1.1.sql followed by this file (Makefile), so a
-- fresh 1.2 and an updated 1.1 have the same objects by construction.

-- ---- (issue 25) pause, per-branch policy, try response, trace context
-- (docs/api.md#pausing-a-destination, #per-branch-policy,
-- docs/protocol.md#the-trys-answer-in-confirm-and-cancel and
-- #trace-context)

-- Paused destinations.  A row is inserted or deleted in the operator's own
-- transaction (tcc_pause, tcc_resume); the worker reads them again at its
-- commit, and at its start, so a pause outlives restarts and failovers.
CREATE TABLE tcc._pause (
    destination text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    paused_by oid NOT NULL,
    note text
);
COMMENT ON TABLE tcc._pause IS 'paused destinations (scheme://host:port): their confirm and cancel calls wait, their tries fail at once; written by tcc_pause and tcc_resume';

-- A branch's own policy and the try's answer passed on.  Columns added
-- without a default the rows need rewriting for: a live 1.1 branch reads
-- as one with no policy of its own, not passing the try's answer.
ALTER TABLE tcc._branch
    ADD COLUMN timeout_ms integer
        CONSTRAINT _branch_timeout_ms CHECK (timeout_ms BETWEEN 1 AND 3600000),
    ADD COLUMN max_attempts integer
        CONSTRAINT _branch_max_attempts CHECK (max_attempts BETWEEN 1 AND 10000),
    ADD COLUMN pass_try_response boolean NOT NULL DEFAULT false,
    ADD COLUMN try_response jsonb,
    ADD CONSTRAINT _branch_pass_try_response
        CHECK (NOT (pass_try_response AND protocol = 'dtm'));
COMMENT ON COLUMN tcc._branch.timeout_ms IS 'time limit of each of its calls in ms; NULL: tcc.request_timeout';
COMMENT ON COLUMN tcc._branch.max_attempts IS 'failed confirm or cancel attempts before its transaction is failed; NULL: tcc.max_attempts';
COMMENT ON COLUMN tcc._branch.try_response IS 'the try''s JSON answer, kept for confirm and cancel when pass_try_response';

-- The trace context of a global transaction.  NULL trace_id: the gid is
-- the trace id; NULL trace_flags: 01 (sampled); so a transaction begun
-- without one costs nothing here, and a live 1.1 one gets a trace too.
ALTER TABLE tcc._gtx
    ADD COLUMN trace_id uuid,
    ADD COLUMN trace_flags smallint
        CONSTRAINT _gtx_trace_flags CHECK (trace_flags BETWEEN 0 AND 255),
    ADD COLUMN tracestate text;
COMMENT ON COLUMN tcc._gtx.trace_id IS 'W3C trace id of every call (16 bytes); NULL: the gid';

-- tcc_begin and tcc_run take a trace context, tcc_branch a policy and
-- pass_try_response.  As in 1.1 for tcc_branch's protocol, each is
-- replaced (an overload would make calls that leave the new parameters out
-- ambiguous) and the EXECUTE grants on the old one are given again on the
-- new one.
DO $$
DECLARE
    f record;
    grantees text[];
BEGIN
    FOR f IN
        SELECT * FROM (VALUES
            ('tcc_begin(interval, text, text, boolean)',
             'tcc_begin(interval, text, text, boolean, text, text)',
             $c$CREATE FUNCTION tcc_begin(timeout interval DEFAULT NULL,
                                          kind text DEFAULT NULL,
                                          business_key text DEFAULT NULL,
                                          parallel boolean DEFAULT false,
                                          traceparent text DEFAULT NULL,
                                          tracestate text DEFAULT NULL)
                RETURNS uuid AS 'MODULE_PATHNAME', 'tcc_begin'
                LANGUAGE C VOLATILE$c$),
            ('tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text)',
             'tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean)',
             $c$CREATE FUNCTION tcc_branch(gid uuid,
                                           try_url text, confirm_url text, cancel_url text,
                                           payload jsonb DEFAULT '{}',
                                           name text DEFAULT NULL,
                                           headers jsonb DEFAULT NULL,
                                           protocol text DEFAULT 'tcc',
                                           timeout interval DEFAULT NULL,
                                           max_attempts integer DEFAULT NULL,
                                           pass_try_response boolean DEFAULT false)
                RETURNS jsonb AS 'MODULE_PATHNAME', 'tcc_branch'
                LANGUAGE C VOLATILE$c$),
            ('tcc_run(jsonb, interval, text, text, boolean)',
             'tcc_run(jsonb, interval, text, text, boolean, text, text)',
             $c$CREATE FUNCTION tcc_run(branches jsonb,
                                        timeout interval DEFAULT NULL,
                                        kind text DEFAULT NULL,
                                        business_key text DEFAULT NULL,
                                        parallel boolean DEFAULT false,
                                        traceparent text DEFAULT NULL,
                                        tracestate text DEFAULT NULL,
                                        OUT gid uuid, OUT responses jsonb)
                RETURNS record AS 'MODULE_PATHNAME', 'tcc_run'
                LANGUAGE C VOLATILE$c$)) v (old, new, create_it)
    LOOP
        SELECT pg_catalog.array_agg(DISTINCT a.grantee::regrole::text)
          INTO grantees
          FROM pg_catalog.pg_proc p,
               LATERAL pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid = f.old::regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0
           AND a.grantee <> p.proowner;
        EXECUTE pg_catalog.format('DROP FUNCTION %s', f.old);
        EXECUTE f.create_it;
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.new);
        IF grantees IS NOT NULL THEN
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s',
                                      f.new, pg_catalog.array_to_string(grantees, ', '));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tcc_begin(interval, text, text, boolean, text, text) IS 'starts a global transaction and returns its gid; traceparent and tracestate: the W3C trace its calls join';
COMMENT ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean) IS 'records a branch durably, calls its try and returns the answer; protocol tcc or dtm; the branch''s own call timeout and max_attempts; pass_try_response: confirm and cancel carry the try''s answer';
COMMENT ON FUNCTION tcc_run(jsonb, interval, text, text, boolean, text, text) IS 'begins a global transaction, tries every branch at once and decides confirm at the commit of the calling transaction';

CREATE FUNCTION tcc_pause(destination text, note text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'tcc_pause'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_pause(text, text) IS 'pauses a destination (scheme://host[:port]) from the commit on: its confirm and cancel calls wait without counting attempts, its tries fail at once';
REVOKE ALL ON FUNCTION tcc_pause(text, text) FROM PUBLIC;

CREATE FUNCTION tcc_resume(destination text)
RETURNS void
AS 'MODULE_PATHNAME', 'tcc_resume'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_resume(text) IS 'resumes a paused destination from the commit on: the calls held for it are due at once';
REVOKE ALL ON FUNCTION tcc_resume(text) FROM PUBLIC;

CREATE FUNCTION tcc_destination_state(OUT destination text, OUT calls_due integer,
                                      OUT in_flight integer, OUT last_http_status integer,
                                      OUT last_error text, OUT next_attempt_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'tcc_destination_state'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_destination_state() IS 'what the coordinator worker has for each destination with calls waiting or in flight: calls due, in flight, the last call''s status and error, the next call''s time';
REVOKE ALL ON FUNCTION tcc_destination_state() FROM PUBLIC;

-- Every role's destinations: granted to no one (operators only).
CREATE VIEW tcc.destinations AS
SELECT COALESCE(p.destination, s.destination) AS destination,
       p.destination IS NOT NULL AS paused,
       p.paused_at,
       p.paused_by::pg_catalog.regrole AS paused_by,
       p.note,
       COALESCE(s.calls_due, 0) AS calls_due,
       COALESCE(s.in_flight, 0) AS in_flight,
       s.last_http_status,
       s.last_error,
       s.next_attempt_at
  FROM tcc._pause p
  FULL JOIN @extschema@.tcc_destination_state() s ON s.destination = p.destination;
COMMENT ON VIEW tcc.destinations IS 'one row per destination (scheme://host:port) with confirm or cancel calls waiting or in flight, or paused; reading it needs EXECUTE on tcc_destination_state()';

-- tcc.branches: the branch's own policy, appended (a replaced view keeps
-- its columns and adds new ones at the end only)
CREATE OR REPLACE VIEW tcc.branches WITH (security_barrier) AS
SELECT x.gid, x.branch, x.name, x.try_url, x.confirm_url, x.cancel_url,
       CASE WHEN x.status = 'registered' AND t.gid IS NOT NULL THEN 'tried'
            ELSE x.status END AS status,
       x.attempts,
       CASE WHEN x.attempts > 0 THEN x.last_http_status
            ELSE COALESCE(x.last_http_status, t.http_status) END AS last_http_status,
       x.last_error,
       x.next_attempt_at,
       x.created_at,
       x.timeout_ms * interval '1 ms' AS timeout,
       x.max_attempts,
       x.pass_try_response
  FROM tcc._own_gtx g
  JOIN tcc._branch x ON x.gid = g.gid
  LEFT JOIN tcc._try t ON t.gid = x.gid AND t.branch = x.branch;
COMMENT ON COLUMN tcc.branches.timeout IS 'the time limit of each of its calls; NULL: tcc.request_timeout';
COMMENT ON COLUMN tcc.branches.max_attempts IS 'failed confirm or cancel attempts before the transaction is failed; NULL: tcc.max_attempts';

-- tcc.transactions: trace_id appended (issue 25).  Kept to this one view
-- and one expression on purpose: the rows themselves are defined in
-- tcc._transaction_rows.
CREATE OR REPLACE VIEW tcc.transactions WITH (security_barrier) AS
SELECT r.*,
       (SELECT pg_catalog.replace(COALESCE(x.trace_id, x.gid)::text, '-', '')
          FROM tcc._gtx x WHERE x.gid = r.gid) AS trace_id
  FROM tcc._transaction_rows r;
COMMENT ON COLUMN tcc.transactions.trace_id IS 'the W3C trace id every call of the transaction carries: 32 lower-case hex digits';
