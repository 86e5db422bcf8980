"""S2: the try overhead of tcc_branch over a plain kept-alive POST."""

import os
import re
import subprocess

from .db import column, num, stats
from .report import fmt


def run_s2(b):
    """S2_CALLS sequential tcc_branch on one gid (pgbench, autocommit) and in
    one transaction (psql with \\timing), beside plainpost's libcurl POSTs
    and SELECT 1."""
    cfg, fig = b.cfg, b.fig
    calls = cfg.s2_calls
    logdir = cfg.logdir
    print("\n==== S2 try overhead: %d sequential tcc_branch on one gid vs plain libcurl POSTs"
          % calls, flush=True)
    gid = b.db.app_q("SELECT tcc_begin(interval '1 hour', 's2')")
    plain_txt = os.path.join(logdir, "s2_plain.txt")
    with open(plain_txt, "w") as out:
        r = subprocess.run([os.path.join(cfg.tmp, "plainpost"), cfg.stub + "/s2/try",
                            str(calls)], stdout=out)
    if r.returncode != 0:
        b.anomaly("S2: plainpost failed")
    branch = b.db.pgbench("s2_branch", 1, b.db.script("branch"), "-t", str(calls),
                          "-D", "gid=%s" % gid)
    select1 = b.db.pgbench("s2_select1", 1, b.db.script("select1"), "-t", str(calls))
    # breakdown: the same calls inside ONE transaction (psql, \timing), so the
    # caller's commit -- which must flush WAL, tcc_branch having written the
    # try's row -- is not part of each call
    xgid = b.db.app_q("SELECT tcc_begin(interval '1 hour', 's2')")
    lines = ["\\timing on", "BEGIN;"]
    stmt = ("SELECT tcc_branch('%s', '%s/s2/try', '%s/s2/confirm', '%s/s2/cancel',"
            " '{\"amount\": 1}');" % (xgid, cfg.stub, cfg.stub, cfg.stub))
    lines += [stmt] * calls + ["COMMIT;"]
    xact_sql = os.path.join(cfg.tmp, "s2_in_xact.sql")
    with open(xact_sql, "w") as f:
        f.write("\n".join(lines) + "\n")
    xact = []
    try:
        out = b.db.psql("-f", xact_sql)
        times = re.findall(r"^Time: ([0-9.]*) ms", out, re.M)
        xact = ["%.1f" % (float(t) * 1000) for t in times[1:-1]]
    except RuntimeError:
        b.anomaly("S2: tcc_branch in one transaction failed")
    with open(os.path.join(logdir, "s2_in_xact.txt"), "w") as f:
        f.write("".join(x + "\n" for x in xact))
    pn, pp50, pp99, pmean, _ = stats(column(plain_txt, 0))
    bn, bp50, bp99, bmean, _ = stats(branch.latencies())
    xn, xp50, xp99, xmean, _ = stats([float(x) for x in xact])
    sn, sp50, sp99, smean, _ = stats(select1.latencies())

    def diff(a, c):
        return "null" if a is None or c is None else fmt(a - c, 0)
    ov50, ov99 = diff(bp50, pp50), diff(bp99, pp99)
    def tenth(v):
        return "null" if v is None else "%.1f" % v
    for label, n, p50, p99, mean in (
            ("plain libcurl POST", pn, num(pp50), num(pp99), pmean),
            ("tcc_branch, autocommit (pgbench)", bn, num(bp50), num(bp99), bmean),
            ("tcc_branch, one transaction (psql)", xn, tenth(xp50), tenth(xp99), xmean),
            ("SELECT 1 (pgbench, context)", sn, num(sp50), num(sp99), smean)):
        print("  %-34s p50 %8s us  p99 %8s us  mean %8s us  (n=%s)"
              % (label, p50, p99, fmt(mean, 1), n))
    print("  tcc_branch (autocommit) minus plain POST: p50 +%s us  p99 +%s us;"
          " in one transaction: p50 +%s us  p99 +%s us"
          % (ov50, ov99, diff(xp50, pp50), diff(xp99, pp99)), flush=True)
    fig("s2.calls", calls)
    fig("s2.plain_post.p50_us", num(pp50))
    fig("s2.plain_post.p99_us", num(pp99))
    fig("s2.plain_post.mean_us", fmt(pmean, 1))
    fig("s2.tcc_branch.p50_us", num(bp50))
    fig("s2.tcc_branch.p99_us", num(bp99))
    fig("s2.tcc_branch.mean_us", fmt(bmean, 1))
    fig("s2.tcc_branch_in_xact.p50_us", tenth(xp50))
    fig("s2.tcc_branch_in_xact.p99_us", tenth(xp99))
    fig("s2.tcc_branch_in_xact.mean_us", fmt(xmean, 1))
    fig("s2.select1.p50_us", num(sp50))
    fig("s2.select1.p99_us", num(sp99))
    fig("s2.overhead_p50_us", ov50)
    fig("s2.overhead_p99_us", ov99)
    fig("s2.overhead_in_xact_p50_us", diff(xp50, pp50))
    fig("s2.overhead_in_xact_p99_us", diff(xp99, pp99))
    for g, what in ((gid, ""), (xgid, " in one transaction")):
        n = b.q("SELECT count(*) FROM tcc.branches WHERE gid = %s", (g,))
        if n != calls:
            b.anomaly("S2: %d tcc_branch calls%s but gid %s has %d branches" % (calls, what, g, n))
    if xn != calls:
        b.anomaly("S2: %d calls in one transaction, %d timings" % (calls, xn))
    # confirm the S2 gids (their branches one after the other) before moving on
    for g in (gid, xgid):
        try:
            b.db.app_q("SELECT tcc_finish(%s)", (g,))
        except Exception:     # noqa: BLE001 - recorded, the run goes on
            b.anomaly("S2: tcc_finish failed")
    b.wait_settled("s2", 120)
    b.worker_rss_fig("s2")
