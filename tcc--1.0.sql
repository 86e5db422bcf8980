/* tcc--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION tcc" to load this file. \quit

-- Tables.  Who writes what is part of the design (SPEC R1, R2):
--   _gtx, _branch, _attempt: written only by the coordinator worker, in its
--     own transactions, so they survive the caller's ROLLBACK.
--   _decision, _try, _action: only ever INSERTed by the caller's transaction,
--     so they commit or vanish with it, and a caller at REPEATABLE READ never
--     has to UPDATE a row it cannot see.

CREATE SCHEMA tcc;
COMMENT ON SCHEMA tcc IS 'tcc coordinator tables and views';

CREATE TABLE tcc._gtx (
    gid uuid PRIMARY KEY,
    owner oid NOT NULL,
    kind text,
    business_key text,
    parallel boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    deadline timestamptz NOT NULL,
    begin_xid xid8,
    status text NOT NULL DEFAULT 'trying',
    finished_at timestamptz,
    last_error text
) WITH (fillfactor = 80);
-- only transactions with a business key are indexed by it: the others, most
-- of them, cost no entry here on each of their three row versions
CREATE UNIQUE INDEX _gtx_business_key ON tcc._gtx (kind, business_key)
    WHERE business_key IS NOT NULL;
CREATE INDEX _gtx_trying ON tcc._gtx (deadline) WHERE status = 'trying';
CREATE INDEX _gtx_phase_two ON tcc._gtx (gid) WHERE status IN ('confirming', 'cancelling');
CREATE INDEX _gtx_finished ON tcc._gtx (finished_at) WHERE finished_at IS NOT NULL;
COMMENT ON TABLE tcc._gtx IS 'global transactions; written by the coordinator worker only';

CREATE TABLE tcc._branch (
    gid uuid NOT NULL,
    branch integer NOT NULL,
    name text,
    try_url text,
    confirm_url text,
    cancel_url text,
    payload text NOT NULL,
    headers text[],
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    status text NOT NULL DEFAULT 'registered',
    attempts integer NOT NULL DEFAULT 0,
    last_http_status integer,
    last_error text,
    next_attempt_at timestamptz,
    PRIMARY KEY (gid, branch)
) WITH (fillfactor = 70);
COMMENT ON TABLE tcc._branch IS 'branches; written by the coordinator worker only.  No column the worker updates is indexed, so its updates stay HOT; when a call is due lives in the worker''s memory and follows from these rows after a restart';

CREATE TABLE tcc._decision (
    gid uuid PRIMARY KEY,
    commit boolean NOT NULL,
    source text NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    decided_by oid NOT NULL
);
COMMENT ON TABLE tcc._decision IS 'the one decision of each global transaction; inserted by tcc_finish in the caller''s transaction, or by the worker';

CREATE TABLE tcc._try (
    gid uuid NOT NULL,
    branch integer NOT NULL,
    started_at timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    http_status integer NOT NULL,
    body text,
    PRIMARY KEY (gid, branch)
);
COMMENT ON TABLE tcc._try IS 'successful tries; inserted by tcc_branch in the caller''s transaction';

CREATE TABLE tcc._attempt (
    gid uuid NOT NULL,
    branch integer NOT NULL,
    op text NOT NULL,
    started_at timestamptz NOT NULL,
    duration_ms double precision,
    http_status integer,
    error text
);
CREATE INDEX _attempt_gid ON tcc._attempt (gid, branch);
COMMENT ON TABLE tcc._attempt IS 'phase-two calls and failed tries; written by the coordinator worker only';

CREATE TABLE tcc._action (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gid uuid NOT NULL,
    action text NOT NULL,
    note text,
    actor oid NOT NULL,
    at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    applied boolean NOT NULL DEFAULT false
);
CREATE INDEX _action_pending ON tcc._action (id) WHERE NOT applied;
CREATE INDEX _action_gid ON tcc._action (gid);
COMMENT ON TABLE tcc._action IS 'operator actions (retry, resolve); inserted by the caller, applied by the worker';

CREATE TABLE tcc._barrier (
    gid uuid NOT NULL,
    branch integer NOT NULL,
    op text NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (gid, branch, op)
);
CREATE INDEX _barrier_created ON tcc._barrier (created_at);
COMMENT ON TABLE tcc._barrier IS 'participant barrier: one row per (gid, branch, op) handled; written in the participant''s transaction';

-- Views

CREATE VIEW tcc.transactions WITH (security_barrier) AS
SELECT g.gid, g.kind, g.business_key,
       CASE WHEN g.status = 'trying' AND d.gid IS NOT NULL
            THEN CASE WHEN d.commit THEN 'confirming' ELSE 'cancelling' END
            ELSE g.status END AS status,
       g.owner::pg_catalog.regrole AS owner,
       g.created_at, g.deadline, d.decided_at, g.finished_at,
       d.source AS decided_by,
       b.branches,
       ((SELECT pg_catalog.count(*) FROM tcc._attempt a WHERE a.gid = g.gid)
        + (SELECT pg_catalog.count(*) FROM tcc._try t WHERE t.gid = g.gid))::integer AS attempts,
       b.next_attempt_at,
       g.last_error,
       g.parallel
  FROM tcc._gtx g
  LEFT JOIN tcc._decision d ON d.gid = g.gid
  LEFT JOIN LATERAL (
       SELECT pg_catalog.count(*) AS branches,
              pg_catalog.min(x.next_attempt_at) AS next_attempt_at
         FROM tcc._branch x WHERE x.gid = g.gid) b ON true
 WHERE g.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
    OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER);
COMMENT ON VIEW tcc.transactions IS 'one row per global transaction';
COMMENT ON COLUMN tcc.transactions.attempts IS 'HTTP calls made for this transaction (tries, confirms, cancels), as listed in tcc.attempts';
COMMENT ON COLUMN tcc.transactions.decided_by IS 'who decided: caller, deadline, aborted (the beginning transaction rolled back) or try failed';

CREATE VIEW tcc.branches WITH (security_barrier) AS
SELECT x.gid, x.branch, x.name, x.try_url, x.confirm_url, x.cancel_url,
       CASE WHEN x.status = 'registered' AND t.gid IS NOT NULL THEN 'tried'
            ELSE x.status END AS status,
       x.attempts,
       CASE WHEN x.attempts > 0 THEN x.last_http_status
            ELSE COALESCE(x.last_http_status, t.http_status) END AS last_http_status,
       x.last_error,
       x.next_attempt_at,
       x.created_at
  FROM tcc._gtx g
  JOIN tcc._branch x ON x.gid = g.gid
  LEFT JOIN tcc._try t ON t.gid = x.gid AND t.branch = x.branch
 WHERE g.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
    OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER);
COMMENT ON VIEW tcc.branches IS 'one row per branch of a global transaction';
COMMENT ON COLUMN tcc.branches.attempts IS 'confirm or cancel calls made for this branch so far';
COMMENT ON COLUMN tcc.branches.last_http_status IS 'HTTP status of the last confirm or cancel call (of the try while there was none); NULL when the last call got no answer';

CREATE VIEW tcc.attempts WITH (security_barrier) AS
SELECT x.gid, x.branch, x.op, x.started_at, x.duration_ms, x.http_status, x.error
  FROM tcc._gtx g
 CROSS JOIN LATERAL (
       SELECT a.gid, a.branch, a.op, a.started_at, a.duration_ms, a.http_status, a.error
         FROM tcc._attempt a WHERE a.gid = g.gid
       UNION ALL
       SELECT t.gid, t.branch, 'try', t.started_at, t.duration_ms, t.http_status, NULL
         FROM tcc._try t WHERE t.gid = g.gid) x
 WHERE g.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
    OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER);
COMMENT ON VIEW tcc.attempts IS 'one row per HTTP call made to a participant';

CREATE VIEW tcc.actions WITH (security_barrier) AS
SELECT a.gid, a.action, a.actor::pg_catalog.regrole AS actor, a.at, a.note, a.applied
  FROM tcc._gtx g
  JOIN tcc._action a ON a.gid = g.gid
 WHERE g.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
    OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER);
COMMENT ON VIEW tcc.actions IS 'operator actions (tcc_retry, tcc_resolve): who, when, note, and whether the worker has applied them';

CREATE VIEW tcc.pending WITH (security_barrier) AS
SELECT * FROM tcc.transactions
 WHERE status NOT IN ('confirmed', 'cancelled', 'resolved');
COMMENT ON VIEW tcc.pending IS 'global transactions that are not final yet';

CREATE VIEW tcc.attention WITH (security_barrier) AS
SELECT t.*,
       CASE WHEN t.status = 'failed'
            THEN 'failed: ' || COALESCE(t.last_error, 'attempts used up')
            ELSE 'not final one minute after its deadline' END AS why
  FROM tcc.transactions t
 WHERE t.status = 'failed'
    OR (t.status NOT IN ('confirmed', 'cancelled', 'resolved')
        AND t.deadline + interval '1 min' < pg_catalog.now());
COMMENT ON VIEW tcc.attention IS 'global transactions that need a person: failed, or not final one minute past the deadline';
COMMENT ON COLUMN tcc.attention.why IS 'why the transaction needs attention';

CREATE VIEW tcc.stats WITH (security_barrier) AS
SELECT pg_catalog.count(*) FILTER (WHERE status = 'trying') AS trying,
       pg_catalog.count(*) FILTER (WHERE status = 'confirming') AS confirming,
       pg_catalog.count(*) FILTER (WHERE status = 'cancelling') AS cancelling,
       pg_catalog.count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
       pg_catalog.count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       pg_catalog.count(*) FILTER (WHERE status = 'failed') AS failed,
       pg_catalog.count(*) FILTER (WHERE status = 'resolved') AS resolved,
       pg_catalog.count(*) FILTER (WHERE created_at > pg_catalog.now() - interval '5 min') AS started_5min,
       pg_catalog.count(*) FILTER (WHERE finished_at > pg_catalog.now() - interval '5 min') AS finished_5min,
       pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY confirm_ms)
           FILTER (WHERE confirm_ms IS NOT NULL) AS confirm_p50_ms,
       pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY confirm_ms)
           FILTER (WHERE confirm_ms IS NOT NULL) AS confirm_p99_ms
  FROM (SELECT t.status, t.created_at, t.finished_at,
               CASE WHEN t.status = 'confirmed'
                     AND t.finished_at > pg_catalog.now() - interval '5 min'
                    THEN EXTRACT(epoch FROM t.finished_at - t.decided_at) * 1000
               END AS confirm_ms
          FROM tcc.transactions t) s;
COMMENT ON VIEW tcc.stats IS 'counts by status, transactions started and finished in the last 5 minutes, and the latency from decision to confirmed (p50, p99) over the last 5 minutes';

-- Functions

CREATE FUNCTION tcc_begin(timeout interval DEFAULT NULL,
                          kind text DEFAULT NULL,
                          business_key text DEFAULT NULL,
                          parallel boolean DEFAULT false)
RETURNS uuid
AS 'MODULE_PATHNAME', 'tcc_begin'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_begin(interval, text, text, boolean) IS 'starts a global transaction and returns its gid';

CREATE FUNCTION tcc_branch(gid uuid,
                           try_url text, confirm_url text, cancel_url text,
                           payload jsonb DEFAULT '{}',
                           name text DEFAULT NULL,
                           headers jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'tcc_branch'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb) IS 'records a branch durably, calls its try and returns the answer';

CREATE FUNCTION tcc_finish(gid uuid, commit boolean DEFAULT true)
RETURNS text
AS 'MODULE_PATHNAME', 'tcc_finish'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_finish(uuid, boolean) IS 'decides a global transaction: confirm (true) or cancel (false), at the commit of the calling transaction';

CREATE FUNCTION tcc_wait(gid uuid, timeout interval DEFAULT '30 s')
RETURNS text
AS 'MODULE_PATHNAME', 'tcc_wait'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_wait(uuid, interval) IS 'waits until a global transaction is final or the timeout passes, and returns its status';

CREATE FUNCTION tcc_retry(gid uuid)
RETURNS void
AS 'MODULE_PATHNAME', 'tcc_retry'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_retry(uuid) IS 'makes pending confirm or cancel calls due now; a failed transaction resumes';

CREATE FUNCTION tcc_resolve(gid uuid, note text)
RETURNS void
AS 'MODULE_PATHNAME', 'tcc_resolve'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_resolve(uuid, text) IS 'records that a person settled the transaction by hand: no more calls are made';

CREATE FUNCTION tcc_worker_state(OUT pid integer, OUT started_at timestamptz,
                                 OUT in_flight integer, OUT queue_depth integer,
                                 OUT last_error text)
RETURNS record
AS 'MODULE_PATHNAME', 'tcc_worker_state'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_worker_state() IS 'live state of the coordinator worker: pid, start time, calls in flight, calls waiting for their retry time or a free slot, the error that last stopped it';

CREATE VIEW tcc.worker AS SELECT * FROM tcc_worker_state();
COMMENT ON VIEW tcc.worker IS 'live state of the coordinator worker (one row; pid is NULL when it is not running)';

CREATE FUNCTION tcc_barrier(gid uuid, branch integer, op text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'tcc_barrier'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_barrier(uuid, integer, text) IS 'participant barrier: true when this try, confirm or cancel should act; false for a duplicate, an empty rollback or a hanging try';

CREATE FUNCTION tcc_barrier_cleanup(older_than interval)
RETURNS bigint
AS 'MODULE_PATHNAME', 'tcc_barrier_cleanup'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_barrier_cleanup(interval) IS 'deletes barrier rows older than the given age; returns how many';

REVOKE ALL ON FUNCTION tcc_begin(interval, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_finish(uuid, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_wait(uuid, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_retry(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_resolve(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_worker_state() FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_barrier(uuid, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tcc_barrier_cleanup(interval) FROM PUBLIC;
