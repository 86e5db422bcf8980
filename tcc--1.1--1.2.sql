/* tcc--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION tcc UPDATE TO '1.2'" to load this file. \quit

-- Version 1.2 of the SQL objects.  tcc--1.2.sql, the script a new install
-- runs, is built from tcc--1.1.sql followed by this file (Makefile), so a
-- fresh 1.2 and an updated 1.1 have the same objects by construction.

-- ---------------------------------------------------------------------------
-- History costs nothing (docs/views.md)
--
-- Every view and tcc.metrics costs what it returns, not what is kept:
--   * counters and histograms are kept as transactions finish and calls are
--     recorded (statement triggers on tcc._gtx, tcc._try and tcc._attempt
--     add a few rows to tcc._metric_delta in the statement that did it;
--     the worker folds them into tcc._metric_total), never recounted;
--   * a final transaction's status is read from its row, so a status is an
--     index condition: the rows of the views come in two arms, the final
--     transactions and the few not final (among which one still trying
--     takes its status from its decision);
--   * indexes for each filter a person or the console uses (status, kind,
--     business key without kind) that also give the newest-first order,
--     over the final row versions only;
--   * tcc.transactions has that order inside, like tcc.transaction_list,
--     so that ORDER BY created_at DESC ... LIMIT reads an index;
--   * tcc.pending, tcc.attention and the live part of tcc.stats read the
--     transactions not final (index _gtx_open); the rest of tcc.stats comes
--     from the counters and from the last five minutes.
-- ---------------------------------------------------------------------------

-- Indexes for what a person asks of the history: by status, by kind and
-- time, by business key without kind, the newest first.  Each covers the
-- final transactions only (finished_at IS NOT NULL): a final row version is
-- the last of its transaction, so each costs one entry per transaction, not
-- one per row version (a status change is not a HOT update: every index of
-- the table gets an entry for every version).  The transactions not final
-- are few and have _gtx_open, _gtx_trying and _gtx_phase_two.  _gtx_created
-- (1.1) is narrowed the same way.
DROP INDEX tcc._gtx_created;
CREATE INDEX _gtx_created ON tcc._gtx (created_at, gid)
    WHERE finished_at IS NOT NULL;
CREATE INDEX _gtx_status ON tcc._gtx (status, created_at, gid)
    WHERE finished_at IS NOT NULL;
CREATE INDEX _gtx_kind ON tcc._gtx (kind, created_at, gid)
    WHERE finished_at IS NOT NULL AND kind IS NOT NULL;
CREATE INDEX _gtx_business_key_any ON tcc._gtx (business_key)
    WHERE finished_at IS NOT NULL AND business_key IS NOT NULL;

-- (The rows of tcc.transactions are defined at the end of this script, once
-- the columns they show exist.)

-- Not final: finished_at is NULL exactly then (index _gtx_open).
CREATE OR REPLACE VIEW tcc.pending WITH (security_barrier) AS
SELECT * FROM tcc.transactions
 WHERE finished_at IS NULL
   AND status NOT IN ('confirmed', 'cancelled', 'resolved');

CREATE OR REPLACE VIEW tcc.attention WITH (security_barrier) AS
SELECT t.*,
       CASE WHEN t.status = 'failed'
            THEN 'failed: ' || COALESCE(t.last_error, 'attempts used up')
            ELSE 'not final one minute after its deadline' END AS why
  FROM tcc.transactions t
 WHERE t.finished_at IS NULL
   AND (t.status = 'failed'
        OR (t.status NOT IN ('confirmed', 'cancelled', 'resolved')
            AND t.deadline + interval '1 min' < pg_catalog.now()));

-- The confirm or cancel call that ends a branch's phase two is kept in the
-- branch's row, not as a row of tcc._attempt: one row written per call
-- that succeeds instead of two (the branch is updated anyway, and stays a
-- HOT update: no index names these columns).  tcc._attempt keeps the calls
-- that failed and the failed tries; a branch of a 1.1 transaction that
-- ended before the update has its call in tcc._attempt and these NULL.
ALTER TABLE tcc._branch
    ADD COLUMN done_started_at timestamptz,
    ADD COLUMN done_duration_ms double precision;
COMMENT ON COLUMN tcc._branch.done_started_at IS 'when the confirm or cancel call that ended the branch''s phase two started; NULL: none yet, or kept in tcc._attempt (1.1)';
COMMENT ON COLUMN tcc._branch.done_duration_ms IS 'how long that call took, in ms';

-- A call's gid is its transaction's: a condition on gid then reaches the
-- primary key of tcc._gtx, and the calls of that one transaction are read
-- (in 1.1 the view gave the calls' own gid, which no index of tcc._gtx
-- serves: a lookup by gid read every transaction).  Three arms: the calls
-- that failed, the tries, the calls that ended a branch (its row).
CREATE OR REPLACE VIEW tcc.attempts WITH (security_barrier) AS
SELECT g.gid, x.branch, x.op, x.started_at, x.duration_ms, x.http_status, x.error
  FROM tcc._own_gtx g
 CROSS JOIN LATERAL (
       SELECT a.branch, a.op, a.started_at, a.duration_ms, a.http_status, a.error
         FROM tcc._attempt a WHERE a.gid = g.gid
       UNION ALL
       SELECT t.branch, 'try', t.started_at, t.duration_ms, t.http_status, NULL
         FROM tcc._try t WHERE t.gid = g.gid
       UNION ALL
       SELECT b.branch, CASE b.status WHEN 'confirmed' THEN 'confirm' ELSE 'cancel' END,
              b.done_started_at, b.done_duration_ms, b.last_http_status, NULL
         FROM tcc._branch b
        WHERE b.gid = g.gid AND b.done_started_at IS NOT NULL) x;

-- ---- counters kept, not recounted

-- 1.1 kept here what purged transactions had counted; from 1.2 on it holds
-- every count: what the deltas added, folded.  Histogram buckets are kept
-- one per bucket (not cumulative); tcc.metrics adds them up.  owner is the
-- role of the transactions a row counts (0: not known, or not a count of
-- transactions): tcc.stats reads it in tcc_kept, tcc.metrics sums it away.
ALTER TABLE tcc._metric_retired RENAME TO _metric_total;
ALTER INDEX tcc._metric_retired_pkey RENAME TO _metric_total_pkey;
ALTER TABLE tcc._metric_total ADD COLUMN owner oid NOT NULL DEFAULT 0;
ALTER TABLE tcc._metric_total DROP CONSTRAINT _metric_total_pkey;
ALTER TABLE tcc._metric_total
    ADD CONSTRAINT _metric_total_pkey
    PRIMARY KEY (metric, status, kind, op, outcome, le, owner);
COMMENT ON TABLE tcc._metric_total IS 'the counters and histogram buckets of tcc.metrics, folded from tcc._metric_delta; written by the coordinator worker only';

CREATE TABLE tcc._metric_delta (
    metric text NOT NULL,
    status text NOT NULL DEFAULT '',
    kind text NOT NULL DEFAULT '',
    op text NOT NULL DEFAULT '',
    outcome text NOT NULL DEFAULT '',
    le text NOT NULL DEFAULT '',
    owner oid NOT NULL DEFAULT 0,
    value double precision NOT NULL
);
-- Rows come and go every second: vacuumed whenever autovacuum looks, so
-- that the dead ones a scrape reads past stay those of about a minute.
ALTER TABLE tcc._metric_delta SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
COMMENT ON TABLE tcc._metric_delta IS 'what each statement that finished transactions or recorded calls added to the counters, until the worker folds it into tcc._metric_total';

-- The histogram bounds in seconds, ascending, with the label of each: i is
-- the bucket's place (15: +Inf).
CREATE FUNCTION tcc._metric_bounds(OUT i integer, OUT le text, OUT bound double precision)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT u.i::integer, u.b::text, u.b
  FROM unnest('{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300}'::float8[])
       WITH ORDINALITY AS u(b, i)
UNION ALL
SELECT 15, '+Inf', 'Infinity'::float8
$$;
REVOKE ALL ON FUNCTION tcc._metric_bounds() FROM PUBLIC;

-- The label of the one bucket a duration in seconds falls in (the smallest
-- bound not below it; Prometheus's le is inclusive).  NULL for NULL.  The
-- width_bucket is how many of the 14 bounds are not below the duration, so
-- the smallest of them is the (15 - it)-th in ascending order; none: +Inf.
-- One expression, every name qualified and no SET: the planner inlines it
-- into the statements that count (a function it cannot inline is planned
-- again on every call).
CREATE FUNCTION tcc._metric_bucket(seconds double precision)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE pg_catalog.width_bucket(-seconds,
            '{-300,-60,-30,-10,-5,-2.5,-1,-0.5,-0.25,-0.1,-0.05,-0.025,-0.01,-0.005}'::pg_catalog.float8[])
       WHEN 0 THEN '+Inf'
       ELSE ('{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300}'::pg_catalog.float8[])
            [15 - pg_catalog.width_bucket(-seconds,
                  '{-300,-60,-30,-10,-5,-2.5,-1,-0.5,-0.25,-0.1,-0.05,-0.025,-0.01,-0.005}'::pg_catalog.float8[])]::text
       END
$$;
REVOKE ALL ON FUNCTION tcc._metric_bucket(double precision) FROM PUBLIC;

-- What an HTTP status counts as in tcc_calls_total.
CREATE FUNCTION tcc._metric_outcome(http_status integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN http_status BETWEEN 200 AND 299 THEN 'success'
            WHEN http_status = 409 THEN 'refused'
            WHEN http_status IS NULL THEN 'no_answer'
            ELSE 'error' END
$$;
REVOKE ALL ON FUNCTION tcc._metric_outcome(integer) FROM PUBLIC;

-- The samples that some calls add: tcc_calls_total by op and outcome, and
-- the try histogram (per bucket) for the tries among them.
CREATE FUNCTION tcc._metric_calls(ops text[], http_statuses integer[],
    durations_ms double precision[],
    OUT metric text, OUT op text, OUT outcome text, OUT le text,
    OUT value double precision)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH c AS (
    SELECT u.op, tcc._metric_outcome(u.st) AS outcome,
           u.ms / 1000 AS seconds
      FROM unnest(ops, http_statuses, durations_ms) AS u(op, st, ms)),
tries AS (SELECT seconds FROM c WHERE op = 'try' AND seconds IS NOT NULL)
SELECT 'tcc_calls_total', c.op, c.outcome, '', count(*)::float8
  FROM c GROUP BY c.op, c.outcome
UNION ALL
SELECT 'tcc_try_duration_seconds_bucket', '', '',
       tcc._metric_bucket(t.seconds), count(*)::float8
  FROM tries t GROUP BY 4
UNION ALL
SELECT 'tcc_try_duration_seconds_sum', '', '', '', sum(t.seconds)
  FROM tries t HAVING count(*) > 0
$$;
REVOKE ALL ON FUNCTION tcc._metric_calls(text[], integer[], double precision[]) FROM PUBLIC;

-- The samples that some transactions add as they end: tcc_transactions_total
-- by status, kind and owner, and the settle and end-to-end histograms (not
-- for resolved ones: a person ended those, and their times say nothing of
-- the coordinator).  settle: from decision to end; total: from begin to end.
CREATE FUNCTION tcc._metric_ended(statuses text[], kinds text[], owners oid[],
    settle double precision[], total double precision[],
    OUT metric text, OUT status text, OUT kind text, OUT le text,
    OUT owner oid, OUT value double precision)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH e AS (
    SELECT u.st, COALESCE(u.kind, '') AS kind, u.owner,
           CASE WHEN u.st <> 'resolved' THEN u.settle END AS settle,
           CASE WHEN u.st <> 'resolved' THEN u.total END AS total
      FROM unnest(statuses, kinds, owners, settle, total)
           AS u(st, kind, owner, settle, total)),
h(family, seconds) AS (
    SELECT 'tcc_settle_duration_seconds', e.settle FROM e WHERE e.settle IS NOT NULL
    UNION ALL
    SELECT 'tcc_transaction_duration_seconds', e.total FROM e WHERE e.total IS NOT NULL)
SELECT 'tcc_transactions_total', e.st, e.kind, '', e.owner, count(*)::float8
  FROM e GROUP BY e.st, e.kind, e.owner
UNION ALL
SELECT h.family || '_bucket', '', '', tcc._metric_bucket(h.seconds), 0::oid,
       count(*)::float8
  FROM h GROUP BY h.family, 4
UNION ALL
SELECT h.family || '_sum', '', '', '', 0::oid, sum(h.seconds) FROM h GROUP BY h.family
$$;
REVOKE ALL ON FUNCTION tcc._metric_ended(text[], text[], oid[], double precision[], double precision[]) FROM PUBLIC;

-- Statement triggers: each statement that records calls or ends
-- transactions adds what it counted, in the same transaction, so a count
-- commits, or vanishes, with what it counts.  Counted in C (src/counting.c)
-- from the statement's transition tables: the counts tcc._metric_calls and
-- tcc._metric_ended make from scratch, at the cost of a few short inserts.
-- A row of tcc._try is a try that was answered; tcc._attempt names its op.
CREATE FUNCTION tcc._count_calls() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'tcc_count_calls';
REVOKE ALL ON FUNCTION tcc._count_calls() FROM PUBLIC;

CREATE TRIGGER _try_counted AFTER INSERT ON tcc._try
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tcc._count_calls();
CREATE TRIGGER _attempt_counted AFTER INSERT ON tcc._attempt
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tcc._count_calls();

-- ---- activity per minute, for charts

-- Per minute and owner: transactions begun, ended, confirmed, and the sum
-- of the confirmed ones' decision-to-end seconds; kept like the counters
-- (deltas from the statements, folded by the worker), for tcc.activity.
-- Minutes older than tcc.retention are purged.
CREATE TABLE tcc._minute_delta (
    minute timestamptz NOT NULL,
    owner oid NOT NULL,
    started bigint NOT NULL DEFAULT 0,
    finished bigint NOT NULL DEFAULT 0,
    confirmed bigint NOT NULL DEFAULT 0,
    confirm_seconds double precision NOT NULL DEFAULT 0
);
ALTER TABLE tcc._minute_delta SET (autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);
COMMENT ON TABLE tcc._minute_delta IS 'what each statement that began or ended transactions added to tcc._minute_total, until the worker folds it';
CREATE TABLE tcc._minute_total (
    LIKE tcc._minute_delta INCLUDING DEFAULTS,
    PRIMARY KEY (minute, owner)
);
COMMENT ON TABLE tcc._minute_total IS 'transactions begun, ended and confirmed per minute and owner, and the confirmed ones'' seconds from decision to end; written by the coordinator worker only';

-- What a statement on tcc._gtx counts, in one trigger function (one call
-- per statement; src/counting.c says what it keeps):
--   * tcc.activity's minutes: every row inserted is begun (at the minute it
--     was created); rows that go final are ended (at the minute they
--     finished);
--   * a transaction ends when its row goes from a status that is not final
--     to one that is: tcc_transactions_total and the settle and end-to-end
--     histograms;
--   * tcc_kept: how many final transactions are kept, by status and owner
--     (not a Prometheus sample: tcc.stats reads it).
-- Each counts what the final rows a statement leaves count, less what the
-- final rows it found counted: a row that ends counts once, a final row
-- updated again (status, kind and times as they were) nets to nothing, a
-- deleted one (the purge) leaves tcc_kept.
CREATE FUNCTION tcc._count_gtx() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'tcc_count_gtx';
REVOKE ALL ON FUNCTION tcc._count_gtx() FROM PUBLIC;

CREATE TRIGGER _gtx_inserted_counted AFTER INSERT ON tcc._gtx
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tcc._count_gtx();
CREATE TRIGGER _gtx_updated_counted AFTER UPDATE ON tcc._gtx
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tcc._count_gtx();
CREATE TRIGGER _gtx_deleted_counted AFTER DELETE ON tcc._gtx
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tcc._count_gtx();

-- Folds the deltas into the totals, in one statement: a delta is counted
-- in the totals or still in the deltas, never both, never neither.  The
-- worker calls it as it goes; the readers read both tables, so how often
-- does not change a number.  Returns how many delta rows it folded.
CREATE FUNCTION tcc._metric_fold()
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
WITH d AS (DELETE FROM tcc._metric_delta RETURNING *),
s AS (
    INSERT INTO tcc._metric_total AS t
        (metric, status, kind, op, outcome, le, owner, value)
    SELECT metric, status, kind, op, outcome, le, owner, sum(value)
      FROM d GROUP BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (metric, status, kind, op, outcome, le, owner)
    DO UPDATE SET value = t.value + excluded.value),
m AS (DELETE FROM tcc._minute_delta RETURNING *),
n AS (
    INSERT INTO tcc._minute_total AS t
        (minute, owner, started, finished, confirmed, confirm_seconds)
    SELECT minute, owner, sum(started), sum(finished), sum(confirmed),
           sum(confirm_seconds)
      FROM m GROUP BY 1, 2
    ON CONFLICT (minute, owner)
    DO UPDATE SET started = t.started + excluded.started,
                  finished = t.finished + excluded.finished,
                  confirmed = t.confirmed + excluded.confirmed,
                  confirm_seconds = t.confirm_seconds + excluded.confirm_seconds)
SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM m)
$$;
REVOKE ALL ON FUNCTION tcc._metric_fold() FROM PUBLIC;

-- The Prometheus samples of some kept counts (one row per label set, owner
-- left out; histogram buckets one per bucket): counters as they are,
-- histograms with every bucket cumulative, their _sum and _count (the
-- buckets added up: no count is kept twice), zero when nothing was
-- observed.  Only the given families (all when NULL).
CREATE FUNCTION tcc._metric_add_up(metrics text[], statuses text[], kinds text[],
    ops text[], outcomes text[], les text[], vals double precision[],
    families text[],
    OUT metric text, OUT status text, OUT kind text, OUT op text,
    OUT outcome text, OUT le text, OUT value double precision)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH k AS (
    SELECT u.metric, u.status, u.kind, u.op, u.outcome, u.le, sum(u.value) AS value
      FROM unnest(metrics, statuses, kinds, ops, outcomes, les, vals)
           AS u(metric, status, kind, op, outcome, le, value)
     GROUP BY 1, 2, 3, 4, 5, 6),
hists(family) AS (
    SELECT f FROM unnest('{tcc_settle_duration_seconds,tcc_transaction_duration_seconds,tcc_try_duration_seconds}'::text[]) f
     WHERE families IS NULL OR f = ANY (families))
SELECT k.metric, k.status, k.kind, k.op, k.outcome, k.le, k.value
  FROM k
 WHERE k.metric IN ('tcc_transactions_total', 'tcc_calls_total')
   AND (families IS NULL OR k.metric = ANY (families))
UNION ALL
SELECT f.family || '_bucket', '', '', '', '', b.le,
       COALESCE(sum(k.value) FILTER (WHERE kb.i <= b.i), 0)
  FROM hists f
 CROSS JOIN tcc._metric_bounds() b
  LEFT JOIN (k JOIN tcc._metric_bounds() kb ON kb.le = k.le)
         ON k.metric = f.family || '_bucket'
 GROUP BY f.family, b.i, b.le
UNION ALL
SELECT f.family || '_sum', '', '', '', '', '', COALESCE(sum(k.value), 0)
  FROM hists f
  LEFT JOIN k ON k.metric = f.family || '_sum'
 GROUP BY f.family
UNION ALL
SELECT f.family || '_count', '', '', '', '', '', COALESCE(sum(k.value), 0)
  FROM hists f
  LEFT JOIN k ON k.metric = f.family || '_bucket'
 GROUP BY f.family
$$;
REVOKE ALL ON FUNCTION tcc._metric_add_up(text[], text[], text[], text[], text[], text[], double precision[], text[]) FROM PUBLIC;

-- A recount from the rows: the samples of the given kept transactions
-- (all when gids is NULL), one per bucket, as the triggers would have
-- counted them (tcc_kept too).  Reads every kept row when gids is NULL.
CREATE FUNCTION tcc._metric_recount(gids uuid[],
    OUT metric text, OUT status text, OUT kind text, OUT op text,
    OUT outcome text, OUT le text, OUT owner oid, OUT value double precision)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
WITH calls AS (
    SELECT a.op, a.http_status, a.duration_ms FROM tcc._attempt a
     WHERE gids IS NULL OR a.gid = ANY (gids)
    UNION ALL
    SELECT CASE b.status WHEN 'confirmed' THEN 'confirm' ELSE 'cancel' END,
           b.last_http_status, b.done_duration_ms
      FROM tcc._branch b
     WHERE b.done_started_at IS NOT NULL AND (gids IS NULL OR b.gid = ANY (gids))
    UNION ALL
    SELECT 'try', t.http_status, t.duration_ms FROM tcc._try t
     WHERE gids IS NULL OR t.gid = ANY (gids)),
ended AS (
    SELECT g.status, g.kind, g.owner,
           EXTRACT(epoch FROM g.finished_at - d.decided_at)::float8 AS settle,
           EXTRACT(epoch FROM g.finished_at - g.created_at)::float8 AS total
      FROM tcc._gtx g
      LEFT JOIN tcc._decision d ON d.gid = g.gid
     WHERE g.status IN ('confirmed', 'cancelled', 'resolved')
       AND (gids IS NULL OR g.gid = ANY (gids)))
SELECT c.metric, '', '', c.op, c.outcome, c.le, 0::oid, c.value
  FROM (SELECT array_agg(op) o, array_agg(http_status) s, array_agg(duration_ms) m
          FROM calls) a,
       tcc._metric_calls(a.o, a.s, a.m) c
UNION ALL
SELECT e.metric, e.status, e.kind, '', '', e.le, e.owner, e.value
  FROM (SELECT array_agg(status) s, array_agg(kind) k, array_agg(owner) o,
               array_agg(settle) st, array_agg(total) tt
          FROM ended) a,
       tcc._metric_ended(a.s, a.k, a.o, a.st, a.tt) e
UNION ALL
SELECT 'tcc_kept', e.status, '', '', '', '', e.owner, count(*)::float8
  FROM ended e GROUP BY e.status, e.owner
$$;
REVOKE ALL ON FUNCTION tcc._metric_recount(uuid[]) FROM PUBLIC;

-- The same recount as Prometheus samples, as in 1.1.  tcc.metrics no
-- longer uses it; it is what the counters are checked against.
CREATE OR REPLACE FUNCTION tcc._metric_counts(gids uuid[], families text[] DEFAULT NULL,
    OUT metric text, OUT status text, OUT kind text, OUT op text,
    OUT outcome text, OUT le text, OUT value double precision)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
SELECT x.*
  FROM (SELECT array_agg(metric) m, array_agg(status) s, array_agg(kind) k,
               array_agg(op) o, array_agg(outcome) oc, array_agg(le) l,
               array_agg(value) v
          FROM tcc._metric_recount(gids)) r,
       tcc._metric_add_up(r.m, r.s, r.k, r.o, r.oc, r.l, r.v, families) x
$$;

-- The counters start from that recount, plus what 1.1 kept of the purged
-- transactions (cumulative buckets then: taken apart here).
WITH retired AS (
    SELECT t.metric, t.status, t.kind, t.op, t.outcome, t.le,
           t.value - COALESCE(lag(t.value) OVER (PARTITION BY t.metric ORDER BY b.i), 0) AS value
      FROM tcc._metric_total t
      JOIN tcc._metric_bounds() b ON b.le = t.le
     WHERE t.metric LIKE '%\_bucket'
    UNION ALL
    SELECT t.metric, t.status, t.kind, t.op, t.outcome, t.le, t.value
      FROM tcc._metric_total t
     WHERE t.metric NOT LIKE '%\_bucket' AND t.metric NOT LIKE '%\_count'),
fresh AS (
    SELECT metric, status, kind, op, outcome, le, 0::oid AS owner, value FROM retired
    UNION ALL
    SELECT * FROM tcc._metric_recount(NULL)),
old AS (DELETE FROM tcc._metric_total)
INSERT INTO tcc._metric_delta (metric, status, kind, op, outcome, le, owner, value)
SELECT * FROM fresh WHERE value <> 0;
-- and the minutes from the kept transactions
INSERT INTO tcc._minute_delta (minute, owner, started)
SELECT date_trunc('minute', g.created_at), g.owner, count(*)
  FROM tcc._gtx g GROUP BY 1, 2;
INSERT INTO tcc._minute_delta (minute, owner, finished, confirmed, confirm_seconds)
SELECT date_trunc('minute', g.finished_at), g.owner, count(*),
       count(*) FILTER (WHERE g.status = 'confirmed'),
       COALESCE(sum(EXTRACT(epoch FROM g.finished_at - d.decided_at))
                FILTER (WHERE g.status = 'confirmed'), 0)
  FROM tcc._gtx g
  LEFT JOIN tcc._decision d ON d.gid = g.gid
 WHERE g.status IN ('confirmed', 'cancelled', 'resolved')
 GROUP BY 1, 2;
SELECT tcc._metric_fold();

-- Every sample: the kept counters (folded or not yet), and the live gauges.
-- SECURITY DEFINER so that a monitoring role sees the totals of every role
-- without seeing any transaction.  Before reading, it waits until every
-- transaction its snapshot sees is durable (flushed, and on the
-- synchronous standbys), so that a crash or a failover cannot take back a
-- count a scrape has shown: a caller with synchronous_commit off is seen
-- before its commit is durable.
CREATE FUNCTION tcc._wait_durable()
RETURNS void
AS 'MODULE_PATHNAME', 'tcc_wait_durable'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc._wait_durable() IS 'waits until the WAL written so far is flushed and on the synchronous standbys';
REVOKE ALL ON FUNCTION tcc._wait_durable() FROM PUBLIC;

CREATE OR REPLACE FUNCTION tcc_metrics(families text[] DEFAULT NULL,
    OUT metric text, OUT status text, OUT kind text, OUT op text,
    OUT outcome text, OUT le text, OUT value double precision)
RETURNS SETOF record
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
SELECT tcc._wait_durable();
WITH c AS (
    SELECT t.metric, t.status, t.kind, t.op, t.outcome, t.le, t.value
      FROM tcc._metric_total t
    UNION ALL
    SELECT d.metric, d.status, d.kind, d.op, d.outcome, d.le, d.value
      FROM tcc._metric_delta d)
SELECT x.*
  FROM (SELECT array_agg(metric) m, array_agg(status) s, array_agg(kind) k,
               array_agg(op) o, array_agg(outcome) oc, array_agg(le) l,
               array_agg(value) v
          FROM c) r,
       tcc._metric_add_up(r.m, r.s, r.k, r.o, r.oc, r.l, r.v, families) x
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

-- Per minute: the transactions begun, ended and confirmed, and the mean
-- confirm latency, of the current role (of every role for a superuser).
-- A condition on minute reaches the primary key of tcc._minute_total.
CREATE VIEW tcc.activity WITH (security_barrier) AS
SELECT m.minute,
       pg_catalog.sum(m.started)::bigint AS started,
       pg_catalog.sum(m.finished)::bigint AS finished,
       pg_catalog.sum(m.confirmed)::bigint AS confirmed,
       pg_catalog.sum(m.confirm_seconds) * 1000
           / NULLIF(pg_catalog.sum(m.confirmed), 0) AS confirm_avg_ms
  FROM (SELECT t.minute, t.owner, t.started, t.finished, t.confirmed, t.confirm_seconds
          FROM tcc._minute_total t
        UNION ALL
        SELECT d.minute, d.owner, d.started, d.finished, d.confirmed, d.confirm_seconds
          FROM tcc._minute_delta d) m
 WHERE m.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
    OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
 GROUP BY m.minute;
COMMENT ON VIEW tcc.activity IS 'per minute: global transactions begun, ended and confirmed, and the mean latency from decision to confirmed; kept as they happen, for charts (a minute with none has no row)';

-- Counts by status, as in 1.0 of the transactions kept: those not final
-- counted (few); the final ones from tcc_kept, which the statements that
-- end, insert and delete transactions keep up to date; started, finished
-- and the confirm latency over the last five minutes (indexes on
-- created_at and finished_at: what the window holds, not what is kept).
CREATE OR REPLACE VIEW tcc.stats WITH (security_barrier) AS
WITH me AS (
    SELECT r.oid, r.rolsuper FROM pg_catalog.pg_roles r
     WHERE r.rolname = CURRENT_USER),
live AS (
    SELECT t.status FROM tcc.transactions t WHERE t.finished_at IS NULL),
ended AS (
    SELECT c.status, pg_catalog.sum(c.value)::bigint AS n
      FROM (SELECT t.status, t.owner, t.value FROM tcc._metric_total t
             WHERE t.metric = 'tcc_kept'
            UNION ALL
            SELECT d.status, d.owner, d.value FROM tcc._metric_delta d
             WHERE d.metric = 'tcc_kept') c, me
     WHERE c.owner = me.oid OR me.rolsuper
     GROUP BY c.status),
recent AS (
    SELECT t.status, t.decided_at, t.finished_at FROM tcc.transactions t
     WHERE t.finished_at > pg_catalog.now() - interval '5 min')
SELECT (SELECT pg_catalog.count(*) FROM live WHERE status = 'trying') AS trying,
       (SELECT pg_catalog.count(*) FROM live WHERE status = 'confirming') AS confirming,
       (SELECT pg_catalog.count(*) FROM live WHERE status = 'cancelling') AS cancelling,
       COALESCE((SELECT n FROM ended WHERE status = 'confirmed'), 0) AS confirmed,
       COALESCE((SELECT n FROM ended WHERE status = 'cancelled'), 0) AS cancelled,
       (SELECT pg_catalog.count(*) FROM live WHERE status = 'failed') AS failed,
       COALESCE((SELECT n FROM ended WHERE status = 'resolved'), 0) AS resolved,
       (SELECT pg_catalog.count(*) FROM tcc.transactions t
         WHERE t.created_at > pg_catalog.now() - interval '5 min') AS started_5min,
       (SELECT pg_catalog.count(*) FROM recent) AS finished_5min,
       (SELECT pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM finished_at - decided_at) * 1000)
          FROM recent WHERE status = 'confirmed') AS confirm_p50_ms,
       (SELECT pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM finished_at - decided_at) * 1000)
          FROM recent WHERE status = 'confirmed') AS confirm_p99_ms;
COMMENT ON VIEW tcc.stats IS 'counts by status, transactions started and finished in the last 5 minutes, and the latency from decision to confirmed (p50, p99) over the last 5 minutes';

-- ---- Pausing destinations, per-branch policy, the try's answer, trace context
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

-- ---------------------------------------------------------------------------
-- Several workers per coordinator database (docs/worker.md#several-workers)
--
-- With tcc.workers > 1 each worker owns the gids tcc._gid_owner gives it
-- and its statements read only those.  tcc.worker has a row per worker.
-- ---------------------------------------------------------------------------

-- The worker that owns a gid: its last two bytes modulo the number of
-- workers; the C code (TccShmemOwner) says the same.
CREATE FUNCTION tcc._gid_owner(gid uuid, workers integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ((pg_catalog.get_byte(pg_catalog.uuid_send(gid), 14) << 8)
        | pg_catalog.get_byte(pg_catalog.uuid_send(gid), 15)) % workers
$$;
COMMENT ON FUNCTION tcc._gid_owner(uuid, integer) IS 'the coordinator worker (0 .. workers - 1) that owns a gid';
REVOKE ALL ON FUNCTION tcc._gid_owner(uuid, integer) FROM PUBLIC;

CREATE FUNCTION tcc_worker_states(OUT pid integer, OUT started_at timestamptz,
                                  OUT in_flight integer, OUT queue_depth integer,
                                  OUT last_error text, OUT worker integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'tcc_worker_states'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tcc_worker_states() IS 'live state of each coordinator worker of this database (tcc.workers): pid, start time, calls in flight, calls waiting, the error that last stopped it, its number; needs EXECUTE on tcc_worker_state()';
-- EXECUTE stays granted to PUBLIC: the function asks for EXECUTE on
-- tcc_worker_state(), which is what reading tcc.worker took until 1.2, so
-- that the roles given that can read tcc.worker still.

CREATE OR REPLACE VIEW tcc.worker AS SELECT * FROM @extschema@.tcc_worker_states();
COMMENT ON VIEW tcc.worker IS 'live state of the coordinator workers of this database, one row per worker (tcc.workers); pid is NULL when one is not running';

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

-- ---------------------------------------------------------------------------
-- The rows of the views of transactions (History costs nothing)

-- The rows of tcc.transactions, tcc.transaction_list and the views built on
-- them.  The columns of 1.1, then trace_id (the W3C trace id of the
-- transaction's calls: the gid's digits unless the caller gave one).  How
-- it is planned matters as much as
-- what it says (docs/views.md#why-the-views-plan-well):
--   * tcc._gtx is read as two arms of a UNION ALL: the final transactions
--     (finished_at set: the indexes _gtx_created, _gtx_status, _gtx_kind,
--     _gtx_business_key_any), whose status is the row's, so that a
--     condition on status is an index condition; and those not final (few:
--     _gtx_open), among which a row that says trying may already be
--     decided (the decision commits with the caller, the row is the
--     worker's) and takes its status from tcc._decision;
--   * each arm is a bare read of the table, and which rows an arm keeps is
--     said outside, in terms of the arm's constant: the planner folds it
--     per arm and, as the arms hold no condition of their own, can merge
--     their index scans in created_at order (it does not when an arm has a
--     WHERE);
--   * who sees what is the rule of tcc._own_gtx, written here for that
--     same reason (tcc._own_gtx is a view with a WHERE);
--   * the rest of a row comes from lookups on primary keys per row (lateral
--     subqueries the planner keeps as such, and scalar subqueries), not
--     joins, so that the only choice left to the planner is how to read
--     tcc._gtx: an order on created_at is then cheaper by index than by a
--     sort, even for every row, and a LIMIT stops it.
CREATE OR REPLACE VIEW tcc._transaction_rows AS
SELECT g.gid, g.kind, g.business_key,
       g.status,
       g.owner::pg_catalog.regrole AS owner,
       g.created_at, g.deadline,
       d.decided_at,
       g.finished_at,
       d.source AS decided_by,
       b.branches,
       ((SELECT pg_catalog.count(*) FROM tcc._attempt a WHERE a.gid = g.gid)
        + (SELECT pg_catalog.count(*) FROM tcc._try t WHERE t.gid = g.gid))::integer AS attempts,
       b.next_attempt_at,
       g.last_error,
       g.parallel,
       pg_catalog.replace(COALESCE(g.trace_id, g.gid)::text, '-', '') AS trace_id
  FROM (SELECT true AS final,
               o.gid, o.kind, o.business_key, o.status, o.owner, o.created_at,
               o.deadline, o.finished_at, o.last_error, o.parallel, o.trace_id
          FROM tcc._gtx o
        UNION ALL
        SELECT false,
               o.gid, o.kind, o.business_key,
               CASE WHEN o.status <> 'trying' THEN o.status
                    ELSE COALESCE((SELECT CASE WHEN x.commit THEN 'confirming' ELSE 'cancelling' END
                                     FROM tcc._decision x WHERE x.gid = o.gid), 'trying')
               END,
               o.owner, o.created_at,
               o.deadline, o.finished_at, o.last_error, o.parallel, o.trace_id
          FROM tcc._gtx o) g
  -- per row returned, one lookup each (OFFSET 0: kept a subquery, not
  -- made a join the planner could run as a hash join over every row)
  LEFT JOIN LATERAL (SELECT x.decided_at, x.source FROM tcc._decision x
                      WHERE x.gid = g.gid OFFSET 0) d ON true
  LEFT JOIN LATERAL (SELECT pg_catalog.count(*) AS branches,
                            pg_catalog.min(x.next_attempt_at) AS next_attempt_at
                       FROM tcc._branch x WHERE x.gid = g.gid OFFSET 0) b ON true
 WHERE ((g.final AND g.finished_at IS NOT NULL)
        OR (NOT g.final AND g.finished_at IS NULL))
   AND (g.owner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER)
        OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = CURRENT_USER));

-- Newest first inside, as tcc.transaction_list: a security-barrier view is
-- planned on its own, and only an order of its own lets a query's ORDER BY
-- created_at DESC ... LIMIT stop after the rows it asked for.
CREATE OR REPLACE VIEW tcc.transactions WITH (security_barrier) AS
SELECT * FROM tcc._transaction_rows
 ORDER BY created_at DESC, gid DESC;

COMMENT ON COLUMN tcc.transactions.trace_id IS 'the W3C trace id every call of the transaction carries: 32 lower-case hex digits';
