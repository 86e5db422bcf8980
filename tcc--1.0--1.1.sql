/* tcc--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tcc UPDATE TO '1.1'" to load this file. \quit

-- Version 1.1 of the SQL objects.  tcc--1.1.sql, the script a new install
-- runs, is built from tcc--1.0.sql followed by this file (Makefile), so a
-- fresh 1.1 and an updated 1.0 have the same objects by construction.

-- ---------------------------------------------------------------------------
-- Who sees which transactions: one definition.
--
-- A role sees its own transactions, a superuser every one (docs/api.md).
-- tcc._own_gtx is that rule, once; every view that shows transactions or
-- their parts reads tcc._gtx through it.  It is private: only the views,
-- which read it with their owner's rights, use it; CURRENT_USER in it is
-- still the role that queries the view.
--
-- It is not a security barrier itself, so the planner pulls it up into the
-- view that reads it, and the filter stands beside that view's own joins
-- and quals: an index on created_at or gid stays usable for the ORDER BY
-- ... LIMIT of tcc.transaction_list and for a lookup by gid (a barrier here
-- would be planned on its own, and a page would sort every row).  That is
-- as safe as the filter written in each view: every view that reads it is
-- a security barrier, so a condition of the caller's query reaches the
-- rows before the filter only when it is leakproof, and no role but the
-- extension's owner can query tcc._own_gtx directly.
CREATE VIEW tcc._own_gtx AS
SELECT g.*
  FROM tcc._gtx g
 WHERE g.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
    OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER);
COMMENT ON VIEW tcc._own_gtx IS 'the transactions the current role may see: its own, every one for a superuser; read by the views, not by roles';
REVOKE ALL ON tcc._own_gtx FROM PUBLIC;

-- The views of 1.0 read tcc._gtx through tcc._own_gtx.  Each is replaced in
-- place (CREATE OR REPLACE), not dropped and created: the view keeps its
-- oid, so the SELECT grants given on it, its comments and the views built
-- on it (tcc.pending, tcc.attention, tcc.stats, and any of the users') stay
-- as they are.  The rule against OR REPLACE in these scripts is about
-- taking over an object that may already exist outside the extension; here
-- each view is already a member of the extension, and PostgreSQL refuses
-- an extension script that would replace an object the extension does not
-- own.  Columns, their order, names and types are those of 1.0 (a
-- replacement may not change them anyway), and so is every row a role sees.
-- A transaction as the views show it, one definition: tcc.transactions and
-- tcc.transaction_list (below) both read it.  Private and not a barrier,
-- like tcc._own_gtx and for the same reason: it is pulled up into the
-- security-barrier view that reads it, which plans as if the body were
-- written there.
CREATE VIEW tcc._transaction_rows AS
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
  FROM tcc._own_gtx g
  LEFT JOIN tcc._decision d ON d.gid = g.gid
  LEFT JOIN LATERAL (
       SELECT pg_catalog.count(*) AS branches,
              pg_catalog.min(x.next_attempt_at) AS next_attempt_at
         FROM tcc._branch x WHERE x.gid = g.gid) b ON true;
COMMENT ON VIEW tcc._transaction_rows IS 'the rows of tcc.transactions and tcc.transaction_list, before their order; read by those views, not by roles';
REVOKE ALL ON tcc._transaction_rows FROM PUBLIC;

CREATE OR REPLACE VIEW tcc.transactions WITH (security_barrier) AS
SELECT * FROM tcc._transaction_rows;

CREATE OR REPLACE VIEW tcc.branches WITH (security_barrier) AS
SELECT x.gid, x.branch, x.name, x.try_url, x.confirm_url, x.cancel_url,
       CASE WHEN x.status = 'registered' AND t.gid IS NOT NULL THEN 'tried'
            ELSE x.status END AS status,
       x.attempts,
       CASE WHEN x.attempts > 0 THEN x.last_http_status
            ELSE COALESCE(x.last_http_status, t.http_status) END AS last_http_status,
       x.last_error,
       x.next_attempt_at,
       x.created_at
  FROM tcc._own_gtx g
  JOIN tcc._branch x ON x.gid = g.gid
  LEFT JOIN tcc._try t ON t.gid = x.gid AND t.branch = x.branch;

CREATE OR REPLACE VIEW tcc.attempts WITH (security_barrier) AS
SELECT x.gid, x.branch, x.op, x.started_at, x.duration_ms, x.http_status, x.error
  FROM tcc._own_gtx g
 CROSS JOIN LATERAL (
       SELECT a.gid, a.branch, a.op, a.started_at, a.duration_ms, a.http_status, a.error
         FROM tcc._attempt a WHERE a.gid = g.gid
       UNION ALL
       SELECT t.gid, t.branch, 'try', t.started_at, t.duration_ms, t.http_status, NULL
         FROM tcc._try t WHERE t.gid = g.gid) x;

CREATE OR REPLACE VIEW tcc.actions WITH (security_barrier) AS
SELECT a.gid, a.action, a.actor::pg_catalog.regrole AS actor, a.at, a.note, a.applied
  FROM tcc._own_gtx g
  JOIN tcc._action a ON a.gid = g.gid;

-- ---------------------------------------------------------------------------
-- Metrics for Prometheus, and an index for paging through transactions.
--
-- tcc.metrics has one row per sample, named and labelled as Prometheus
-- expects (monitoring/queries.yaml maps it for
-- prometheus-postgres-exporter).  Counters and histograms are counted from
-- the rows the coordinator keeps; when tcc.retention deletes final
-- transactions, the worker adds what they counted to tcc._metric_retired in
-- the same statement, so counters never go down.  Gauges are read live.

-- Newest first, for keyset paging (the console's transaction list): all
-- transactions, and those not final yet (finished_at is set exactly when a
-- transaction becomes final), which are few however many are kept.
CREATE INDEX _gtx_created ON tcc._gtx (created_at, gid);
CREATE INDEX _gtx_open ON tcc._gtx (created_at, gid) WHERE finished_at IS NULL;

-- tcc.transactions, newest first.  A security-barrier view is planned on its
-- own, so an ORDER BY ... LIMIT on tcc.transactions sorts every row; this
-- view has the order inside, and a query's LIMIT and leakproof conditions
-- on created_at, gid, kind, business_key and finished_at reach the indexes.
CREATE VIEW tcc.transaction_list WITH (security_barrier) AS
SELECT * FROM tcc._transaction_rows
 ORDER BY created_at DESC, gid DESC;
COMMENT ON VIEW tcc.transaction_list IS 'tcc.transactions, newest first: page with LIMIT and WHERE (created_at, gid) below the last row seen; add finished_at IS NULL when looking for transactions that are not final';

CREATE TABLE tcc._metric_retired (
    metric text NOT NULL,
    status text NOT NULL DEFAULT '',
    kind text NOT NULL DEFAULT '',
    op text NOT NULL DEFAULT '',
    outcome text NOT NULL DEFAULT '',
    le text NOT NULL DEFAULT '',
    value double precision NOT NULL,
    PRIMARY KEY (metric, status, kind, op, outcome, le)
);
COMMENT ON TABLE tcc._metric_retired IS 'what deleted transactions (tcc.retention) counted in the counters and histograms of tcc.metrics; written by the coordinator worker only';

-- Counter and histogram samples of the given transactions (all when gids is
-- NULL), of the given families (all when families is NULL: a table that no
-- asked family needs is not read).  STABLE: the worker's purge calls it in
-- the statement that deletes those transactions, and it sees them as they
-- were before the delete.
CREATE FUNCTION tcc._metric_counts(gids uuid[], families text[] DEFAULT NULL,
    OUT metric text, OUT status text, OUT kind text, OUT op text,
    OUT outcome text, OUT le text, OUT value double precision)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
WITH wanted AS (
    SELECT families IS NULL
           OR families && '{tcc_transactions_total,tcc_settle_duration_seconds,tcc_transaction_duration_seconds}' AS ended,
           families IS NULL
           OR families && '{tcc_calls_total,tcc_try_duration_seconds}' AS calls),
chosen AS (
    -- either every transaction or those of gids: the other half of each
    -- UNION ALL below is skipped by a one-time filter, and the gids half
    -- reads by index
    SELECT g.* FROM tcc._gtx g WHERE gids IS NULL AND (SELECT ended FROM wanted)
    UNION ALL
    SELECT g.* FROM tcc._gtx g WHERE g.gid = ANY (gids) AND (SELECT ended FROM wanted)),
-- Histogram buckets: k = width_bucket(-value, neg) is how many of the 14
-- bounds are >= value, so a value counts in bucket i (ascending) when
-- k >= 15 - i.  The tables are read once each, grouped by k.
neg(b) AS (
    SELECT '{-300,-60,-30,-10,-5,-2.5,-1,-0.5,-0.25,-0.1,-0.05,-0.025,-0.01,-0.005}'::float8[]),
-- One pass, three small hash tables (grouping sets): by status and kind
-- (gset 3), by settle bucket (5), by end-to-end bucket (6).
ended AS (
    SELECT GROUPING(e.status, e.settle_k, e.total_k) AS gset,
           e.status, e.kind, e.settle_k, e.total_k,
           count(*) AS n, sum(e.settle) AS settle_sum, sum(e.total) AS total_sum
      FROM (SELECT v.status, v.kind, v.settle, v.total,
                   width_bucket(-v.settle, neg.b) AS settle_k,
                   width_bucket(-v.total, neg.b) AS total_k
              FROM (SELECT c.status, COALESCE(c.kind, '') AS kind,
                           CASE WHEN c.status <> 'resolved'
                                THEN EXTRACT(epoch FROM c.finished_at - d.decided_at)::float8
                           END AS settle,
                           CASE WHEN c.status <> 'resolved'
                                THEN EXTRACT(epoch FROM c.finished_at - c.created_at)::float8
                           END AS total
                      FROM chosen c
                      LEFT JOIN tcc._decision d ON d.gid = c.gid
                     WHERE c.status IN ('confirmed', 'cancelled', 'resolved')) v,
                   neg) e
     GROUP BY GROUPING SETS ((e.status, e.kind), (e.settle_k), (e.total_k))),
-- likewise: by op and outcome (gset 1), by try bucket (2)
calls AS (
    SELECT GROUPING(y.op, y.try_k) AS gset, y.op, y.outcome, y.try_k,
           count(*) AS n, sum(y.seconds) FILTER (WHERE y.op = 'try') AS try_sum
      FROM (SELECT x.op,
                   CASE WHEN x.http_status BETWEEN 200 AND 299 THEN 'success'
                        WHEN x.http_status = 409 THEN 'refused'
                        WHEN x.http_status IS NULL THEN 'no_answer'
                        ELSE 'error' END AS outcome,
                   CASE WHEN x.op = 'try'
                        THEN width_bucket(-x.duration_ms / 1000, neg.b) END AS try_k,
                   x.duration_ms / 1000 AS seconds
      FROM (SELECT a.op, a.http_status, a.duration_ms
              FROM tcc._attempt a WHERE gids IS NULL AND (SELECT calls FROM wanted)
            UNION ALL
            SELECT 'try', t.http_status, t.duration_ms
              FROM tcc._try t WHERE gids IS NULL AND (SELECT calls FROM wanted)
            UNION ALL
            SELECT a.op, a.http_status, a.duration_ms
              FROM tcc._attempt a WHERE a.gid = ANY (gids) AND (SELECT calls FROM wanted)
            UNION ALL
            SELECT 'try', t.http_status, t.duration_ms
              FROM tcc._try t WHERE t.gid = ANY (gids) AND (SELECT calls FROM wanted)) x,
           neg) y
     GROUP BY GROUPING SETS ((y.op, y.outcome), (y.try_k))),
observed(family, k, n, total) AS (
    SELECT 'tcc_settle_duration_seconds', settle_k, sum(n), sum(settle_sum)
      FROM ended WHERE gset = 5 AND settle_k IS NOT NULL GROUP BY 2
    UNION ALL
    SELECT 'tcc_transaction_duration_seconds', total_k, sum(n), sum(total_sum)
      FROM ended WHERE gset = 6 AND total_k IS NOT NULL GROUP BY 2
    UNION ALL
    SELECT 'tcc_try_duration_seconds', try_k, sum(n), sum(try_sum)
      FROM calls WHERE gset = 2 AND try_k IS NOT NULL GROUP BY 2),
hists(family) AS (
    SELECT f FROM unnest('{tcc_settle_duration_seconds,tcc_transaction_duration_seconds,tcc_try_duration_seconds}'::text[]) f
     WHERE families IS NULL OR f = ANY (families)),
bounds(i, le) AS (
    SELECT i, b::text
      FROM unnest('{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300}'::float8[])
           WITH ORDINALITY AS u(b, i)
    UNION ALL
    SELECT 15, '+Inf')
SELECT 'tcc_transactions_total', e.status, e.kind, '', '', '', sum(e.n)::float8
  FROM ended e
 WHERE e.gset = 3
   AND (families IS NULL OR 'tcc_transactions_total' = ANY (families))
 GROUP BY e.status, e.kind
UNION ALL
SELECT 'tcc_calls_total', '', '', c.op, c.outcome, '', sum(c.n)::float8
  FROM calls c
 WHERE c.gset = 1
   AND (families IS NULL OR 'tcc_calls_total' = ANY (families))
 GROUP BY c.op, c.outcome
UNION ALL
SELECT f.family || '_bucket', '', '', '', '', b.le,
       COALESCE(sum(o.n) FILTER (WHERE b.i = 15 OR o.k >= 15 - b.i), 0)::float8
  FROM hists f CROSS JOIN bounds b
  LEFT JOIN observed o ON o.family = f.family
 GROUP BY f.family, b.le
UNION ALL
SELECT f.family || '_sum', '', '', '', '', '', COALESCE(sum(o.total), 0)::float8
  FROM hists f LEFT JOIN observed o ON o.family = f.family
 GROUP BY f.family
UNION ALL
SELECT f.family || '_count', '', '', '', '', '', COALESCE(sum(o.n), 0)::float8
  FROM hists f LEFT JOIN observed o ON o.family = f.family
 GROUP BY f.family
$$;
COMMENT ON FUNCTION tcc._metric_counts(uuid[], text[]) IS 'counter and histogram samples of the given transactions (all when NULL), for tcc.metrics and the retention purge';
REVOKE ALL ON FUNCTION tcc._metric_counts(uuid[], text[]) FROM PUBLIC;

-- Every sample: counters and histograms of kept and deleted transactions,
-- and the live gauges.  SECURITY DEFINER so that a monitoring role sees the
-- totals of every role without seeing any transaction: no gid, URL, error
-- or business key leaves it.
CREATE FUNCTION tcc_metrics(families text[] DEFAULT NULL,
    OUT metric text, OUT status text, OUT kind text, OUT op text,
    OUT outcome text, OUT le text, OUT value double precision)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
SELECT c.metric, c.status, c.kind, c.op, c.outcome, c.le, sum(c.value)
  FROM (SELECT * FROM tcc._metric_counts(NULL, families)
        UNION ALL
        SELECT r.metric, r.status, r.kind, r.op, r.outcome, r.le, r.value
          FROM tcc._metric_retired r
         WHERE families IS NULL
            OR regexp_replace(r.metric, '_(bucket|sum|count)$', '') = ANY (families)) c
 GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT x.metric, '', '', '', '', '', x.value
  FROM (SELECT count(*) AS pending,
               count(*) FILTER (WHERE g.status = 'failed') AS failed,
               count(*) FILTER (WHERE g.status = 'failed'
                                   OR g.deadline + interval '1 min' < now()) AS attention,
               COALESCE(EXTRACT(epoch FROM now() - min(g.created_at)), 0) AS oldest
          FROM tcc._gtx g
         -- exactly the transactions not final: the index _gtx_open
         WHERE g.finished_at IS NULL) s,
       @extschema@.tcc_worker_state() w,
       LATERAL (VALUES ('tcc_pending_transactions', s.pending::float8),
                       ('tcc_failed_transactions', s.failed::float8),
                       ('tcc_attention_transactions', s.attention::float8),
                       ('tcc_oldest_pending_age_seconds', s.oldest::float8),
                       ('tcc_calls_in_flight', COALESCE(w.in_flight, 0)::float8),
                       ('tcc_worker_up', CASE WHEN w.pid IS NULL THEN 0 ELSE 1 END::float8)) x(metric, value)
 WHERE families IS NULL OR x.metric = ANY (families)
$$;
COMMENT ON FUNCTION tcc_metrics(text[]) IS 'Prometheus samples of every role''s transactions: counters, histograms (le) and gauges, of the given metric families (all when NULL); no gid, URL or error text';
REVOKE ALL ON FUNCTION tcc_metrics(text[]) FROM PUBLIC;

CREATE VIEW tcc.metrics AS SELECT * FROM tcc_metrics();
COMMENT ON VIEW tcc.metrics IS 'one row per Prometheus sample: metric name, labels (empty when not used; le for histogram buckets) and value';

-- pg_monitor, the predefined role for monitoring tools, may read the metrics
-- (totals only); other roles need a GRANT
GRANT USAGE ON SCHEMA tcc TO pg_monitor;
GRANT EXECUTE ON FUNCTION tcc_metrics(text[]) TO pg_monitor;
GRANT SELECT ON tcc.metrics TO pg_monitor;
-- ---------------------------------------------------------------------
-- Several branches in one call, one-call transactions, DTM participants
-- (docs/api.md and docs/protocol.md)
-- ---------------------------------------------------------------------

-- how each branch's participant speaks; the worker reads it for every
-- confirm and cancel
ALTER TABLE tcc._branch
    ADD COLUMN protocol text NOT NULL DEFAULT 'tcc'
        CONSTRAINT _branch_protocol CHECK (protocol IN ('tcc', 'dtm'));

-- tcc_branch takes a last parameter, protocol.  An overload beside the old
-- signature would make every call that leaves protocol out ambiguous, so
-- the function is replaced; the EXECUTE grants given on the old one are
-- given again on the new one.
DO $$
DECLARE
    grantees text[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT a.grantee::regrole::text)
      INTO grantees
      FROM pg_catalog.pg_proc p,
           LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = 'tcc_branch(uuid, text, text, text, jsonb, text, jsonb)'::regprocedure
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0
       AND a.grantee <> p.proowner;

    DROP FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb);
    CREATE FUNCTION tcc_branch(gid uuid,
                               try_url text, confirm_url text, cancel_url text,
                               payload jsonb DEFAULT '{}',
                               name text DEFAULT NULL,
                               headers jsonb DEFAULT NULL,
                               protocol text DEFAULT 'tcc')
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'tcc_branch'
    LANGUAGE C VOLATILE;
    REVOKE ALL ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text) FROM PUBLIC;
    IF grantees IS NOT NULL THEN
        EXECUTE pg_catalog.format(
            'GRANT EXECUTE ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text) TO %s',
            pg_catalog.array_to_string(grantees, ', '));
    END IF;
END
$$;
COMMENT ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text) IS 'records a branch durably, calls its try and returns the answer; protocol tcc or dtm';

CREATE FUNCTION tcc_branches(gid uuid, branches jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'tcc_branches'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_branches(uuid, jsonb) IS 'records several branches with one durable write, calls all their tries at once and returns the answers as an array in branch order';
REVOKE ALL ON FUNCTION tcc_branches(uuid, jsonb) FROM PUBLIC;

CREATE FUNCTION tcc_run(branches jsonb,
                        timeout interval DEFAULT NULL,
                        kind text DEFAULT NULL,
                        business_key text DEFAULT NULL,
                        parallel boolean DEFAULT false,
                        OUT gid uuid, OUT responses jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'tcc_run'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_run(jsonb, interval, text, text, boolean) IS 'begins a global transaction, tries every branch at once and decides confirm at the commit of the calling transaction';
REVOKE ALL ON FUNCTION tcc_run(jsonb, interval, text, text, boolean) FROM PUBLIC;
