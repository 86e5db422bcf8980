"""S3 (the worker drains thousands of decided transactions) and S5
(recovery after the participant refused connections for a while)."""

import time

from . import procs
from .config import DRAIN_TIMEOUT, TARGETS
from .db import now
from .report import fmt
from .sampler import WaitSampler, worker_memory


def drain(b, kind, workers=1):
    """S3's measure under a kind: S3_GTX tried transactions decided in one
    transaction; the drain by the workers that run.  Returns calls/s."""
    cfg, fig = b.cfg, b.fig
    print("\n==== %s worker drain: %d decided two-branch transactions ready at once"
          " (tcc.workers = %d)" % (kind.upper(), cfg.s3_gtx, workers), flush=True)
    _, prepare_s = b.prepare_gtx(kind, cfg.s3_gtx)
    fig(kind + ".prepare_s", prepare_s)
    b.pgss.snap(kind + "_before")
    w0 = b.workers_cpu()
    sampler = WaitSampler(b.db, DRAIN_TIMEOUT + 60)
    wal0 = b.wal_snap()
    cpu_a = procs.host_cpu()
    decided, decide_s, committed_at = b.decide_all(kind)
    print("  decided %d in one transaction (%ss including COMMIT); draining..." % (decided, decide_s),
          flush=True)
    if workers == 1:
        # the worker's memory a moment into the drain (it answers from inside a pass)
        pause = 0.15 * cfg.s3_gtx / 4000
        time.sleep(pause)
        mem_mid = worker_memory(b, kind + "_mid")
    b.wait_settled(kind, DRAIN_TIMEOUT)
    cpu_b = procs.host_cpu()
    sampler.stop()
    w1 = b.workers_cpu()
    time.sleep(1.1)
    wal1 = b.wal_snap()
    b.pgss.snap(kind + "_after")
    fig(kind + ".gtx", decided)
    fig(kind + ".workers", workers)
    wal = b.wal_figs(kind, decided, wal0, wal1)
    busy, steal = b.host_figs(kind, cpu_a, cpu_b)
    drain_s = b.last_finished(kind) - committed_at
    confirmed, other, first_s, last_s, calls, ok_calls, bad_calls = b.db.row("""
        WITH g AS (SELECT gid, status FROM tcc.transactions WHERE kind = %(k)s),
             a AS (SELECT a.* FROM tcc.attempts a JOIN g USING (gid) WHERE a.op = 'confirm')
        SELECT (SELECT count(*) FROM g WHERE status = 'confirmed'),
               (SELECT count(*) FROM g WHERE status <> 'confirmed'),
               round((extract(epoch FROM min(started_at)) - %(c)s)::numeric, 3),
               round((extract(epoch FROM max(started_at + duration_ms * interval '1 ms')) - %(c)s)::numeric, 3),
               count(*),
               count(*) FILTER (WHERE http_status BETWEEN 200 AND 299),
               count(*) FILTER (WHERE http_status IS NULL OR http_status NOT BETWEEN 200 AND 299)
          FROM a""", {"c": committed_at, "k": kind})
    calls_per_s = fmt(ok_calls / drain_s if drain_s > 0 else 0, 0)
    print("  drained in %ss: %d confirmed, %d not; %d confirm calls ok, %d failed -> %s phase-two calls/s"
          % (fmt(drain_s, 3), confirmed, other, ok_calls, bad_calls, calls_per_s))
    print("  first confirm started %ss after COMMIT, last answered at %ss;"
          " workers' cpu %ss; WAL per gtx %s bytes, %s flushes"
          % (first_s, last_s, fmt(w1 - w0, 2), wal[0], wal[1]))
    print("  machine cpu %s%% busy (%s%% steal) over %d cores" % (busy, steal, cfg.nproc))
    fig(kind + ".decide_s", decide_s)
    fig(kind + ".drain_s", fmt(drain_s, 3))
    fig(kind + ".phase2_calls", ok_calls)
    fig(kind + ".phase2_calls_per_s", calls_per_s)
    fig(kind + ".failed_calls", bad_calls)
    fig(kind + ".first_call_after_s", first_s)
    fig(kind + ".last_call_done_s", last_s)
    fig(kind + ".confirmed", confirmed)
    fig(kind + ".worker_cpu_s", fmt(w1 - w0, 2))
    us_per_call = fmt((w1 - w0) * 1e6 / ok_calls if ok_calls else 0, 1)
    fig(kind + ".worker_cpu_us_per_call", us_per_call)
    if workers == 1:
        b.worker_rss_fig(kind)
        fig(kind + ".worker_memory_contexts_mid_drain_bytes", mem_mid)
        print("  worker memory contexts %ss into the drain: %s bytes; largest: %s"
              % (fmt(pause, 2), mem_mid or "?", b.memory.get(kind + "_mid", "")), flush=True)
    if confirmed != decided:
        b.anomaly("%s: %d decided, %d confirmed" % (kind.upper(), decided, confirmed))
    if ok_calls != 2 * decided:
        b.anomaly("%s: %d confirm calls expected, %d succeeded (%d attempts)"
                  % (kind.upper(), 2 * decided, ok_calls, calls))
    sampler.show("the %s drain" % kind.upper())
    b.pgss.top(kind + "_before", kind + "_after",
               "during the %s decision and drain" % kind.upper(), 10)
    return float(calls_per_s)


def run_s3(b):
    """S3: S3_GTX tried transactions decided in one transaction; the drain."""
    drain(b, "s3")


def set_share(b, share):
    """ALTER SYSTEM SET tcc.destination_share (None: RESET); reload."""
    if share is None:
        b.q("ALTER SYSTEM RESET tcc.destination_share")
    else:
        b.q("ALTER SYSTEM SET tcc.destination_share = %d" % share)
    b.q("SELECT pg_reload_conf()")
    print("  tcc.destination_share = %s" % (share or "default"), flush=True)


def run_s3w2(b):
    """S3 with tcc.workers = 1, then = 2 (the cluster restarted before and
    after), both with tcc.destination_share = 100, and the throughput of
    two over one.  S3's calls all go to one destination: at the default
    share its 32 slots cap a drain whatever the number of workers, once
    one worker keeps them busy; with the share at 100 the drain measures
    what the workers can do."""
    set_share(b, 100)
    try:
        one = drain(b, "s3w1", workers=1)
        b.set_workers(2)
        try:
            per_s = drain(b, "s3w2", workers=2)
        finally:
            b.set_workers(None)
    finally:
        set_share(b, None)
    if one > 0:
        ratio = fmt(per_s / one, 2)
        b.fig("s3w2.vs_s3w1", ratio)
        met = b.report.target("s3_workers2_ratio", ratio, ">=", TARGETS["s3_workers2_ratio_min"])
        print("  S3 with 2 workers / S3 with 1, destination share 100: %s (target >= %s)%s"
              % (ratio, TARGETS["s3_workers2_ratio_min"], "" if met == "true" else "  MISSED"), flush=True)


def run_s5(b):
    """S5: S5_GTX transactions decided while the stub refuses connections;
    the stub comes back after every gid failed once and S5_OUTAGE passed."""
    cfg, fig, q = b.cfg, b.fig, b.q
    print("\n==== S5 recovery: %d transactions decide while the stub refuses connections"
          % cfg.s5_gtx, flush=True)
    b.prepare_gtx("s5", cfg.s5_gtx)
    b.set_retry("200ms", "2s")
    print("  ALTER SYSTEM SET tcc.retry_interval = '200ms', tcc.retry_max_interval = '2s'; reloaded")
    fig("s5.retry_interval_ms", 200)
    fig("s5.retry_max_interval_ms", 2000)
    time.sleep(0.5)
    b.stubs.stop_nginx()
    if procs.port_busy(cfg.stub_port):
        b.anomaly("S5: something still listens on port %d" % cfg.stub_port)
    down_at = now()
    decided, _, _ = b.decide_all("s5")
    print("  stub stopped; decided %d in one transaction; waiting for every gid to fail at least once"
          % decided, flush=True)
    limit = cfg.s5_outage + 120
    while True:
        failing = q("""SELECT count(DISTINCT a.gid) FROM tcc._attempt a
                         JOIN tcc._gtx g USING (gid) WHERE g.kind = 's5' AND a.op = 'confirm'""")
        elapsed = now() - down_at
        if failing >= decided and elapsed >= cfg.s5_outage:
            break
        if elapsed >= limit:
            b.anomaly("S5: after %ss only %d of %d gids had a confirm attempt"
                      % (fmt(elapsed, 1), failing, decided))
            break
        time.sleep(0.2)
    b.stubs.start_nginx()
    up_at = now()
    outage_s = fmt(up_at - down_at, 2)
    failed_during = q("""SELECT count(*) FROM tcc._attempt a JOIN tcc._gtx g USING (gid)
                          WHERE g.kind = 's5' AND a.op = 'confirm'""")
    print("  stub back after %ss (%d failed confirm attempts); settling..." % (outage_s, failed_during),
          flush=True)
    b.wait_settled("s5", DRAIN_TIMEOUT)
    settle_s = fmt(b.last_finished("s5") - up_at, 3)
    confirmed, failed, other, max_attempts, total, ok_after = b.db.row("""
        WITH g AS (SELECT gid, status FROM tcc.transactions WHERE kind = 's5')
        SELECT (SELECT count(*) FROM g WHERE status = 'confirmed'),
               (SELECT count(*) FROM g WHERE status = 'failed'),
               (SELECT count(*) FROM g WHERE status NOT IN ('confirmed', 'failed')),
               (SELECT max(b.attempts) FROM tcc.branches b JOIN g USING (gid)),
               (SELECT count(*) FROM tcc.attempts a JOIN g USING (gid) WHERE a.op = 'confirm'),
               (SELECT count(*) FROM tcc.attempts a JOIN g USING (gid)
                 WHERE a.op = 'confirm' AND a.http_status BETWEEN 200 AND 299)""")
    print("  settled %ss after the stub came back: %d confirmed, %d failed, %d other;"
          " %d confirm attempts (%d ok), at most %s per branch"
          % (settle_s, confirmed, failed, other, total, ok_after, max_attempts))
    b.set_retry(None, None)
    print("  ALTER SYSTEM RESET of both; reloaded", flush=True)
    fig("s5.gtx", decided)
    fig("s5.outage_s", outage_s)
    fig("s5.failed_attempts_in_outage", failed_during)
    fig("s5.settle_s", settle_s)
    fig("s5.confirmed", confirmed)
    fig("s5.failed", failed)
    fig("s5.confirm_attempts", total)
    fig("s5.max_attempts_per_branch", max_attempts)
    b.worker_rss_fig("s5")
    if confirmed != decided:
        b.anomaly("S5: %d decided, %d confirmed, %d failed, %d other"
                  % (decided, confirmed, failed, other))
    if ok_after != 2 * decided:
        b.anomaly("S5: %d successful confirm calls expected, %d seen" % (2 * decided, ok_after))
