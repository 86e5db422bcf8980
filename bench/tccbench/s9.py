"""S9 (history): N kept transactions generated straight into the tables,
then every query a person, the console or a scraper runs, timed; their
plans go to the log.  The targets: each query at most S9_QUERY_MS, each
console page at most S9_PAGE_MS (full run, p50 of S9_RUNS).  Then the
purge of most of that history (tcc.retention lowered from 7 days to 1):
S4's confirm lag while it runs against its quiet value, at most twice."""

import os
import statistics
import time

from . import s9console

from .config import TARGETS
from .db import now
from .report import fmt, row

S9_RUNS = 5

# what a person or a scraper asks (name, SQL); %(gid)s, %(key)s, %(at)s are
# filled from the generated rows
QUERIES = [
    ("metrics", "SELECT * FROM tcc.metrics"),
    ("newest 50", "SELECT * FROM tcc.transactions ORDER BY created_at DESC LIMIT 50"),
    ("status failed", "SELECT * FROM tcc.transactions WHERE status = 'failed'"),
    ("attention", "SELECT * FROM tcc.attention"),
    ("pending", "SELECT * FROM tcc.pending"),
    ("stats", "SELECT * FROM tcc.stats"),
    ("list cancelled", "SELECT * FROM tcc.transaction_list WHERE status = 'cancelled' LIMIT 51"),
    ("list resolved (none)", "SELECT * FROM tcc.transaction_list WHERE status = 'resolved' LIMIT 51"),
    ("business key", "SELECT * FROM tcc.transactions WHERE business_key = %(key)s"),
    ("kind and time", "SELECT * FROM tcc.transaction_list WHERE kind = 'k3'"
                      " AND created_at >= %(at)s::timestamptz - interval '1 day'"
                      " AND created_at < %(at)s::timestamptz LIMIT 51"),
    ("by gid", "SELECT * FROM tcc.transactions WHERE gid = %(gid)s"),
    ("branches of gid", "SELECT * FROM tcc.branches WHERE gid = %(gid)s"),
    ("attempts of gid", "SELECT * FROM tcc.attempts WHERE gid = %(gid)s"),
    ("list newest page", "SELECT * FROM tcc.transaction_list LIMIT 51"),
    ("list next page", "SELECT * FROM tcc.transaction_list"
                       " WHERE created_at <= %(at)s AND (created_at < %(at)s OR gid < %(gid)s)"
                       " LIMIT 51"),
    ("list not final", "SELECT * FROM tcc.transaction_list WHERE finished_at IS NULL LIMIT 51"),
]


def timed(conn, sql, params):
    """Seconds one run of sql takes, its rows fetched."""
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(sql, params)
        cur.fetchall()
    return time.perf_counter() - t0


def generate(b, n):
    """n kept transactions into the tables; prints time and size."""
    t0 = now()
    b.db.psql("-v", "n=%d" % n, "-v", "owner=postgres", "-f",
              os.path.join(b.cfg.root, "bench", "sql", "history.sql"))
    secs = now() - t0
    size = b.q("SELECT pg_database_size(current_database())")
    print("  generated %d transactions (2 branches, 2 tries, 2 phase-two calls each)"
          " in %s s; database %s MB" % (n, fmt(secs, 0), fmt(size / 1048576, 0)), flush=True)
    return secs, size


def run_s9(b):
    """S9: history of S9_ROWS kept transactions, then each query S9_RUNS
    times (p50 and max, ms), and the plans in the log."""
    cfg, fig = b.cfg, b.fig
    n = cfg.s9_rows
    print("\n==== S9 history: the views, the console's queries and a scrape at %d kept transactions"
          % n, flush=True)
    secs, size = generate(b, n)
    fig("s9.rows", n)
    fig("s9.generate_s", fmt(secs, 0))
    fig("s9.database_mb", fmt(size / 1048576, 0))
    gid, at = b.db.row("SELECT gid::text, created_at::text FROM tcc._gtx"
                       " ORDER BY created_at DESC OFFSET %d LIMIT 1" % (n // 2))
    key = b.q("SELECT business_key FROM tcc._gtx WHERE business_key IS NOT NULL"
              " ORDER BY created_at DESC LIMIT 1")
    params = {"gid": gid, "key": key, "at": at}
    conn = b.db.app()
    plans = os.path.join(cfg.logdir, "s9_plans.txt")
    worst = 0.0
    with open(plans, "w", encoding="utf-8") as out:
        for name, sql in QUERIES:
            with conn.cursor() as cur:
                cur.execute("EXPLAIN " + sql, params)
                out.write("==== %s\n%s\n%s\n\n" % (name, sql,
                                                   "\n".join(r[0] for r in cur.fetchall())))
            runs = [timed(conn, sql, params) * 1000 for _ in range(S9_RUNS)]
            p50 = statistics.median(runs)
            worst = max(worst, p50)
            print("  %-22s p50 %8s ms  max %8s ms" % (name, fmt(p50, 2), fmt(max(runs), 2)),
                  flush=True)
            slug = name.replace(" ", "_").replace("(", "").replace(")", "")
            fig("s9.query.%s.p50_ms" % slug, fmt(p50, 2))
    print("  plans: %s" % plans, flush=True)
    fig("s9.query_p50_max_ms", fmt(worst, 2))
    b.report.target("s9_query_ms", worst, "<=", TARGETS["s9_query_ms"])
    s9console.run_pages(b, gid, key, at)
    run_s9_purge(b)


def lag_run(b, kind):
    """S4: S1's transactions from 32 clients for BENCH_SECONDS: gtx/s and
    the confirm lag p50 / p99 (ms)."""
    run = b.db.pgbench(kind, 32, b.db.script("gtx"), "-T", str(b.cfg.duration),
                       "-D", "kind=" + kind, log=False)
    b.wait_settled(kind, 120)
    p50, p99, _ = b.lag_stats(kind)
    return run.tps, p50, p99


def run_s9_purge(b):
    """S9's second half: S4 quiet, then S4 while the purge deletes the
    history older than a day (six sevenths of it)."""
    fig, q = b.fig, b.q
    print("\n==== S9 purge: confirm lag (S4: S1 at c=32) quiet, then while lowering tcc.retention"
          " from 7 days to 1 day purges", flush=True)
    tps, q50, q99 = lag_run(b, "s9_quiet")
    print("  quiet:        %s gtx/s; confirm lag p50 %s ms  p99 %s ms" % (fmt(tps, 1), q50, q99),
          flush=True)
    kept0 = q("SELECT count(*) FROM tcc._gtx")
    q("ALTER SYSTEM SET tcc.retention = '1d'")
    q("SELECT pg_reload_conf()")
    t0 = now()
    tps2, p50, p99 = lag_run(b, "s9_purging")
    secs = now() - t0
    kept1 = q("SELECT count(*) FROM tcc._gtx")
    q("ALTER SYSTEM RESET tcc.retention")
    q("SELECT pg_reload_conf()")
    purged = kept0 - kept1
    print("  while purging: %s gtx/s; confirm lag p50 %s ms  p99 %s ms; %d transactions purged"
          " in %s s (%s/s)" % (fmt(tps2, 1), p50, p99, purged, fmt(secs, 0),
                             fmt(purged / secs, 0)), flush=True)
    ratio = float(p99) / float(q99) if q99 and p99 is not None and float(q99) > 0 else None
    print("  p99 while purging / quiet: %s (target <= 2)" % fmt(ratio, 2), flush=True)
    fig("s9.purge.quiet_gtx_per_s", fmt(tps, 1))
    fig("s9.purge.quiet_lag_p99_ms", q99)
    fig("s9.purge.purging_gtx_per_s", fmt(tps2, 1))
    fig("s9.purge.purging_lag_p99_ms", p99)
    fig("s9.purge.purged", purged)
    fig("s9.purge.purged_per_s", fmt(purged / secs, 0))
    fig("s9.purge.p99_ratio", fmt(ratio, 2))
    b.report.target("s9_purge_p99_ratio", ratio, "<=", 2)


def table_rows(b):
    """S9's rows of the results table, if it ran (the targets were recorded
    as it ran)."""
    g = b.report.get
    if g("s9.rows") == "null":
        return
    row("S9 slowest query p50 at %s kept" % g("s9.rows"), g("s9.query_p50_max_ms"), "ms",
        "<= %d" % TARGETS["s9_query_ms"], g("targets.s9_query_ms.met"))
    row("S9 slowest console page p50", g("s9.page_p50_max_ms"), "ms",
        "<= %d" % TARGETS["s9_page_ms"], g("targets.s9_page_ms.met"))
    row("S9 S4 p99 quiet / purging", "%s / %s" % (g("s9.purge.quiet_lag_p99_ms"),
                                                  g("s9.purge.purging_lag_p99_ms")), "ms",
        "ratio <= 2", g("targets.s9_purge_p99_ratio.met"))
