"""S8: full load for minutes with tcc.retention = '1 min'.

32 pgbench clients run S1b's transaction (tcc_run) for BENCH_S8_SECONDS
while the
worker purges every final transaction older than a minute.  Every
BENCH_S8_INTERVAL seconds: the throughput over the interval (transactions
of kind s8 created in it, by the server's clock), the WAL written per
global transaction over it, the size of each of tcc's tables with its
indexes and TOAST (pg_total_relation_size), and the worker's RssAnon.  Flatness: the mean of each over the last window against
the first window after BENCH_S8_WARMUP seconds (a window is a minute, or
less in a short run).
"""

import time

from . import procs
from .config import TARGETS
from .report import fmt, row

TABLES_SQL = """
SELECT c.relname, pg_total_relation_size(c.oid) / 1024
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'tcc' AND c.relkind = 'r'
 ORDER BY c.relname"""


def mean(vals):
    """The mean of a list, or None if it is empty."""
    return sum(vals) / len(vals) if vals else None


def run_s8(b):
    """S8: the load, the samples, the verdict."""
    cfg, fig, q = b.cfg, b.fig, b.q
    secs, step = cfg.s8_seconds, cfg.s8_interval
    print("\n==== S8 steady state: %ds of S1b at c=32 with tcc.retention = '1min', sampled every %ds"
          % (secs, step), flush=True)
    q("ALTER SYSTEM SET tcc.retention = '1min'")
    q("SELECT pg_reload_conf()")
    time.sleep(0.5)
    print("  ALTER SYSTEM SET tcc.retention = '1min'; reloaded (tcc.retention is now %s)"
          % q("SHOW tcc.retention"), flush=True)
    run = b.db.pgbench("s8", 32, b.db.script("run"), "-T", str(secs), "-D", "kind=s8", log=False,
                       wait=False)
    t0 = last = float(q("SELECT extract(epoch FROM clock_timestamp())"))
    series = {"at_s": [], "gtx_per_s": [], "wal_bytes_per_gtx": [], "tables_kb": [],
              "rss_anon_kb": []}
    wal = b.wal_snap()
    per_table = {}
    k = 1
    while run.proc.poll() is None:
        while run.proc.poll() is None and time.time() < t0 + k * step:
            time.sleep(0.2)
        if run.proc.poll() is not None:
            break
        k += 1
        at = float(q("SELECT extract(epoch FROM clock_timestamp())"))
        n = q("""SELECT count(*) FROM tcc._gtx WHERE kind = 's8'
                   AND created_at >= to_timestamp(%s) AND created_at < to_timestamp(%s)""", (last, at))
        sizes = b.db.rows(TABLES_SQL)
        anon = procs.proc_usage(b.worker_pid)[2]
        wal1 = b.wal_snap()
        per_gtx = (float(wal1[0]) - float(wal[0])) / n if n else None
        wal = wal1
        total = sum(s for _, s in sizes)
        series["at_s"].append(round(at - t0))
        series["gtx_per_s"].append(round(n / (at - last), 1))
        series["wal_bytes_per_gtx"].append(round(per_gtx) if per_gtx else None)
        series["tables_kb"].append(total)
        series["rss_anon_kb"].append(anon)
        for rel, size in sizes:
            per_table.setdefault(rel, []).append(size)
        print("  %5ss  %7s gtx/s  WAL %6s B/gtx  tcc tables %8s kB (%s)  worker RssAnon %6s kB"
              % (round(at - t0), fmt(n / (at - last), 1), fmt(per_gtx, 0), total,
                 ", ".join("%s %d" % (r, s) for r, s in sizes if s >= 1024), anon), flush=True)
        last = at
    run.wait()
    b.wait_settled("s8", 60)
    left = q("SELECT count(*) FROM tcc._gtx WHERE kind = 's8'")
    q("ALTER SYSTEM RESET tcc.retention")
    q("SELECT pg_reload_conf()")
    print("  %d transactions at %s gtx/s; %d of them still in the tables at the end (the rest purged);"
          " ALTER SYSTEM RESET tcc.retention; reloaded" % (run.processed, fmt(run.tps, 1), left))
    fig("s8.seconds", secs)
    fig("s8.interval_s", step)
    fig("s8.retention", "1min")
    fig("s8.gtx", run.processed)
    fig("s8.gtx_per_s", fmt(run.tps, 1))
    fig("s8.gtx_left_end", left)
    fig("s8.series", {**series, "table_kb": per_table})
    verdict(b, series)
    b.worker_rss_fig("s8")


def verdict(b, series):
    """Compares the last window with the first one after the warm-up:
    ratios of the means, and whether all three stay within the target."""
    cfg, fig = b.cfg, b.fig
    window = min(60, (cfg.s8_seconds - cfg.s8_warmup) / 2)
    at = series["at_s"]
    first = [i for i, t in enumerate(at) if cfg.s8_warmup < t <= cfg.s8_warmup + window]
    last = [i for i, t in enumerate(at) if t > at[-1] - window] if at else []
    fig("s8.flat.window_s", fmt(window, 0))
    flat = bool(first and last)
    lo, hi = TARGETS["s8_ratio_min"], TARGETS["s8_ratio_max"]
    for key in ("gtx_per_s", "wal_bytes_per_gtx", "tables_kb", "rss_anon_kb"):
        a = mean([series[key][i] for i in first if series[key][i] is not None])
        z = mean([series[key][i] for i in last if series[key][i] is not None])
        ratio = z / a if a and z is not None else None
        fig("s8.flat.%s_ratio" % key, fmt(ratio, 2))
        flat = flat and ratio is not None and lo <= ratio <= hi
    # the purge starts a minute in: a shorter run cannot show a steady state
    judged = cfg.s8_seconds >= cfg.s8_warmup + 120
    fig("s8.flat.flat", ("true" if flat else "false") if judged else None)
    print("  last %ss against the first %ss after %ss of warm-up: throughput x%s, WAL per gtx x%s,"
          " tables x%s, worker RssAnon x%s -> %s"
          % (fmt(window, 0), fmt(window, 0), cfg.s8_warmup, b.report.get("s8.flat.gtx_per_s_ratio"),
             b.report.get("s8.flat.wal_bytes_per_gtx_ratio"),
             b.report.get("s8.flat.tables_kb_ratio"), b.report.get("s8.flat.rss_anon_kb_ratio"),
             ("flat" if flat else "NOT flat") if judged
             else "no verdict (under warm-up + 120 s: the purge has barely started)"), flush=True)


def table_rows(b):
    """S8's rows of the results table, if it ran."""
    rep, g = b.report, b.report.get
    if g("s8.seconds") == "null":
        return
    row("S8 %ss at c=32, retention 1min" % g("s8.seconds"), g("s8.gtx_per_s"), "gtx/s")
    flat = g("s8.flat.flat")
    met = rep.target("s8_flat", {"true": "1", "false": "0"}.get(flat), ">=", 1)
    row("S8 last/first: gtx/s, WAL/gtx, tables, mem",
        "%s / %s / %s / %s" % (g("s8.flat.gtx_per_s_ratio"), g("s8.flat.wal_bytes_per_gtx_ratio"),
                               g("s8.flat.tables_kb_ratio"), g("s8.flat.rss_anon_kb_ratio")),
        "ratio",
        "%s-%s" % (TARGETS["s8_ratio_min"], TARGETS["s8_ratio_max"]), met if flat != "null" else "")
