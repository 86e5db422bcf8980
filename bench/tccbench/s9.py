"""S9 (history): N kept transactions generated straight into the tables,
then every query a person, the console or a scraper runs, timed; their
plans go to the log.  The targets: each query at most S9_QUERY_MS, each
console page at most S9_PAGE_MS (full run, p50 of S9_RUNS)."""

import os
import statistics
import time

from .config import TARGETS
from .db import now
from .report import fmt

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
