"""S11: thousands of undecided transactions whose deadlines pass together,
and the time until the worker has cancelled them all, beside S3's drain of
as many decided ones."""

import time

from . import procs
from .config import DRAIN_TIMEOUT, PREPARE_CLIENTS, TARGETS
from .db import now
from .report import fmt, row
from .sampler import WaitSampler

KIND = "s11"
LEAD_MIN_S = 10         # the deadline is at least this far from the start
PREPARE_RATE = 400      # gtx/s assumed for the preparation when S3 did not run


def deadline_lead(b, n):
    """Seconds from now to the common deadline: the preparation of n
    transactions (at S3's rate when it ran) with half as much to spare."""
    g = b.report.get
    rate = PREPARE_RATE
    if g("s3.prepare_s") != "null" and g("s3.gtx") != "null" and float(g("s3.prepare_s")) > 0:
        rate = float(g("s3.gtx")) / float(g("s3.prepare_s"))
    return max(LEAD_MIN_S, 3 + 1.5 * n / rate)


def s3_equivalent(b, n):
    """S3's drain time scaled to n transactions (None when S3 did not run)."""
    g = b.report.get
    if g("s3.drain_s") == "null" or g("s3.gtx") in ("null", "0"):
        return None
    return float(g("s3.drain_s")) * n / float(g("s3.gtx"))


def run_s11(b):
    """S11: S11_GTX tried, undecided two-branch transactions with one
    deadline; the time from it until the last is cancelled."""
    cfg, fig = b.cfg, b.fig
    n = cfg.s11_gtx
    print("\n==== S11 mass cancel: %d undecided two-branch transactions whose deadlines pass together"
          % n, flush=True)
    lead = deadline_lead(b, n)
    deadline = float(b.q("SELECT extract(epoch FROM clock_timestamp())")) + lead
    per = (n + PREPARE_CLIENTS - 1) // PREPARE_CLIENTS
    t0 = now()
    b.db.pgbench(KIND, PREPARE_CLIENTS, b.db.script("prepare_deadline"), "-t", str(per),
                 "-D", "kind=" + KIND, "-D", "deadline=%.6f" % deadline)
    prepare_s = now() - t0
    prepared, spread_ms, late = b.db.row("""
        SELECT count(*), round(extract(epoch FROM max(deadline) - min(deadline))::numeric * 1000, 3),
               count(*) FILTER (WHERE created_at >= deadline)
          FROM tcc._gtx WHERE kind = %s AND status = 'trying'""", (KIND,))
    print("  prepared %d tried, undecided transactions in %ss from %d sessions; their deadlines"
          " lie within %s ms, %ss after the start" % (prepared, fmt(prepare_s, 2), PREPARE_CLIENTS,
                                                     spread_ms, fmt(lead, 1)), flush=True)
    if late or now() >= deadline:
        b.anomaly("S11: the preparation outran the deadline (%d begun after it)" % late)
    b.pgss.snap("s11_before")
    w0 = b.worker_cpu()
    wal0 = b.wal_snap()
    while now() < deadline:
        time.sleep(min(0.05, max(deadline - now(), 0)))
    sampler = WaitSampler(b.db, DRAIN_TIMEOUT + 60)
    cpu_a = procs.host_cpu()
    b.wait_settled(KIND, DRAIN_TIMEOUT)
    cpu_b = procs.host_cpu()
    sampler.stop()
    w1 = b.worker_cpu()
    time.sleep(1.1)
    wal1 = b.wal_snap()
    b.pgss.snap("s11_after")
    cancelled, other, by_deadline, passes, first_s, ok_calls, bad_calls, cancel_s = b.db.row("""
        WITH g AS (SELECT gid, status, finished_at, deadline FROM tcc._gtx WHERE kind = %(k)s),
             t AS (SELECT min(deadline) AS at FROM g),
             a AS (SELECT a.* FROM tcc.attempts a JOIN g USING (gid) WHERE a.op = 'cancel')
        SELECT (SELECT count(*) FROM g WHERE status = 'cancelled'),
               (SELECT count(*) FROM g WHERE status <> 'cancelled'),
               (SELECT count(*) FROM tcc._decision d JOIN g USING (gid) WHERE d.source = 'deadline'),
               (SELECT count(DISTINCT d.xmin::text) FROM tcc._decision d JOIN g USING (gid)),
               round(extract(epoch FROM (SELECT min(started_at) FROM a) - (SELECT at FROM t))::numeric, 3),
               (SELECT count(*) FROM a WHERE http_status BETWEEN 200 AND 299),
               (SELECT count(*) FROM a WHERE http_status IS NULL OR http_status NOT BETWEEN 200 AND 299),
               extract(epoch FROM (SELECT max(finished_at) FROM g) - (SELECT at FROM t))""",
                                                                                   {"k": KIND})
    cancel_s = float(cancel_s or 0)
    calls_per_s = fmt(ok_calls / cancel_s if cancel_s > 0 else 0, 0)
    busy, steal = b.host_figs("s11", cpu_a, cpu_b)
    wal = b.wal_figs("s11", prepared, wal0, wal1)
    print("  all cancelled %ss after the deadline: %d cancelled, %d not; %d decided in %d worker"
          " transactions; %d cancel calls ok, %d failed -> %s calls/s"
          % (fmt(cancel_s, 3), cancelled, other, by_deadline, passes, ok_calls, bad_calls, calls_per_s))
    print("  first cancel started %ss after the deadline; worker cpu %ss; WAL per gtx %s bytes;"
          " machine cpu %s%% busy (%s%% steal)" % (first_s, fmt(w1 - w0, 2), wal[0], busy, steal))
    fig("s11.gtx", prepared)
    fig("s11.prepare_s", fmt(prepare_s, 2))
    fig("s11.deadline_spread_ms", spread_ms)
    fig("s11.cancel_s", fmt(cancel_s, 3))
    fig("s11.cancelled", cancelled)
    fig("s11.decision_passes", passes)
    fig("s11.first_call_after_s", first_s)
    fig("s11.cancel_calls", ok_calls)
    fig("s11.failed_calls", bad_calls)
    fig("s11.cancel_calls_per_s", calls_per_s)
    fig("s11.worker_cpu_s", fmt(w1 - w0, 2))
    fig("s11.worker_cpu_us_per_call", fmt((w1 - w0) * 1e6 / ok_calls if ok_calls else 0, 1))
    s3 = s3_equivalent(b, prepared)
    if s3:
        ratio = fmt(cancel_s / s3, 2)
        met = b.report.target("s11_vs_s3", ratio, "<=", TARGETS["s11_vs_s3_max"])
        fig("s11.s3_drain_s_same_n", fmt(s3, 3))
        fig("s11.vs_s3", ratio)
        print("  S3 drained %s gtx in %ss: %ss for %d; S11 / S3 = %s (target <= %s: %s)"
              % (b.report.get("s3.gtx"), b.report.get("s3.drain_s"), fmt(s3, 3), prepared, ratio,
                 TARGETS["s11_vs_s3_max"], {"true": "met"}.get(met, "MISSED")), flush=True)
    else:
        print("  (S3 did not run: no ratio to its drain)", flush=True)
    b.worker_rss_fig("s11")
    if cancelled != prepared or prepared != n:
        b.anomaly("S11: %d wanted, %d prepared, %d cancelled" % (n, prepared, cancelled))
    if ok_calls != 2 * prepared:
        b.anomaly("S11: %d cancel calls expected, %d succeeded" % (2 * prepared, ok_calls))
    if by_deadline != prepared:
        b.anomaly("S11: %d decided at the deadline, of %d" % (by_deadline, prepared))
    sampler.show("the S11 cancels")
    b.pgss.top("s11_before", "s11_after", "during the S11 cancels", 10)


def table_rows(b):
    """S11's rows of the results table, if it ran."""
    g = b.report.get
    if g("s11.gtx") == "null":
        return
    row("S11 cancel of %s at one deadline" % g("s11.gtx"), g("s11.cancel_s"), "s")
    row("S11 cancel calls", g("s11.cancel_calls_per_s"), "calls/s")
    met = g("targets.s11_vs_s3.met")
    row("S11 / S3 drain of as many", g("s11.vs_s3"), "ratio", "<= %s" % TARGETS["s11_vs_s3_max"],
        met if met != "null" else "")
