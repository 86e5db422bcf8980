-- bench S9: :n kept global transactions of two branches each, generated
-- straight into the coordinator's tables (no HTTP, no worker), as a week of
-- history looks: created over the last 7 days, most confirmed, one in ten
-- cancelled; 50 failed and 200 still confirming.  The statement triggers
-- count them as they go in (a million at a time), so tcc.metrics and
-- tcc.stats show them.  Run with psql -v n=... -v owner=...
SET synchronous_commit = off;
SET maintenance_work_mem = '1GB';
SET work_mem = '256MB';
CREATE TEMP TABLE s9 AS
SELECT gen_random_uuid() AS gid, i,
       now() - interval '7 days' * (1 - i::float8 / :n) AS created_at,
       CASE WHEN i % (:n / 50) = 7 THEN 'failed'
            WHEN i % (:n / 200) = 3 THEN 'confirming'
            WHEN i % 10 = 0 THEN 'cancelled'
            ELSE 'confirmed' END AS status
  FROM generate_series(1, :n) i;
CREATE INDEX ON s9 (i);
ANALYZE s9;
SELECT set_config('s9.owner', :'owner', false);
DO $$
DECLARE
    lo bigint := 0;
    n bigint := (SELECT count(*) FROM s9);
    owner oid := current_setting('s9.owner')::regrole;
BEGIN
    WHILE lo < n LOOP
        INSERT INTO tcc._gtx (gid, owner, kind, business_key, parallel, created_at,
                              deadline, status, finished_at)
        SELECT gid, owner, 'k' || (i % 20),
               CASE WHEN i % 4 = 0 THEN 'order-' || i END, false, created_at,
               created_at + interval '30 s', status,
               CASE WHEN status IN ('confirmed', 'cancelled')
                    THEN created_at + interval '40 ms' END
          FROM s9 WHERE i > lo AND i <= lo + 1000000;
        INSERT INTO tcc._decision (gid, commit, source, decided_at, decided_by)
        SELECT gid, status <> 'cancelled', 'caller', created_at + interval '10 ms', owner
          FROM s9 WHERE i > lo AND i <= lo + 1000000;
        INSERT INTO tcc._branch (gid, branch, try_url, confirm_url, cancel_url,
                                 payload, created_at, status, attempts)
        SELECT gid, b, 'http://127.0.0.1:1/try', 'http://127.0.0.1:1/confirm',
               'http://127.0.0.1:1/cancel', '{}', created_at,
               CASE status WHEN 'confirmed' THEN 'confirmed'
                           WHEN 'cancelled' THEN 'cancelled' ELSE 'tried' END, 1
          FROM s9, generate_series(1, 2) b WHERE i > lo AND i <= lo + 1000000;
        INSERT INTO tcc._try (gid, branch, started_at, duration_ms, http_status)
        SELECT gid, b, created_at, 3, 200
          FROM s9, generate_series(1, 2) b WHERE i > lo AND i <= lo + 1000000;
        INSERT INTO tcc._attempt (gid, branch, op, started_at, duration_ms, http_status)
        SELECT gid, b, CASE WHEN status = 'cancelled' THEN 'cancel' ELSE 'confirm' END,
               created_at + interval '20 ms', 2,
               CASE WHEN status = 'failed' THEN 500 ELSE 200 END
          FROM s9, generate_series(1, 2) b WHERE i > lo AND i <= lo + 1000000;
        lo := lo + 1000000;
    END LOOP;
END
$$;
VACUUM ANALYZE tcc._gtx, tcc._decision, tcc._branch, tcc._try, tcc._attempt;
