"""S6 (noisy neighbour: confirm lag to the stub while another participant
hangs) and the soak (full load for a long time, one participant hanging)."""

import time

from . import procs
from .db import now
from .report import fmt


def run_s6(b):
    """S6: confirm lag from 8 clients for S6_SECONDS, first quiet, then while
    S6_HANG decided transactions wait on a participant that never answers."""
    cfg, fig = b.cfg, b.fig
    print("\n==== S6 noisy neighbour: confirm lag to the stub, quiet and while %d confirms hang elsewhere"
          % cfg.s6_hang, flush=True)
    script = b.db.script("gtx")
    run = b.db.pgbench("s6_quiet", 8, script, "-T", str(cfg.s6_seconds), "-D", "kind=s6_quiet")
    b.wait_settled("s6_quiet", 60)
    q50, q99, qmax = b.lag_stats("s6_quiet")
    print("  quiet:  c=8 %s gtx/s; confirm lag p50 %s ms  p99 %s ms  max %s ms"
          % (fmt(run.tps, 1), q50, q99, qmax), flush=True)
    b.stubs.start_hang()
    b.decide_hanging("s6_hang", cfg.s6_hang)
    time.sleep(1)
    run = b.db.pgbench("s6_noisy", 8, script, "-T", str(cfg.s6_seconds), "-D", "kind=s6_noisy")
    in_flight = b.q("SELECT in_flight FROM tcc.worker")
    b.wait_settled("s6_noisy", 120)
    n50, n99, nmax = b.lag_stats("s6_noisy")
    print("  noisy:  c=8 %s gtx/s; confirm lag p50 %s ms  p99 %s ms  max %s ms"
          " (%s calls in flight at the end)" % (fmt(run.tps, 1), n50, n99, nmax, in_flight),
          flush=True)
    b.stubs.stop_hang()
    b.resolve_kind("s6_hang")
    fig("s6.seconds", cfg.s6_seconds)
    fig("s6.hanging_gtx", cfg.s6_hang)
    fig("s6.quiet.confirm_lag_p50_ms", q50)
    fig("s6.quiet.confirm_lag_p99_ms", q99)
    fig("s6.noisy.confirm_lag_p50_ms", n50)
    fig("s6.noisy.confirm_lag_p99_ms", n99)
    fig("s6.noisy.confirm_lag_max_ms", nmax)


def run_soak(b):
    """The soak (BENCH_SOAK=1): S1's transactions from 16 sessions for
    SOAK_SECONDS while one participant always hangs and new transactions for
    it keep coming; the worker's memory sampled every 30 s."""
    cfg, fig = b.cfg, b.fig
    secs = cfg.soak_seconds
    print("\n==== soak: %ds of S1 at c=16 while a participant hangs on every call" % secs, flush=True)
    b.stubs.start_hang()
    b.decide_hanging("soak_hang", cfg.s6_hang)
    run = b.db.pgbench("soak", 16, b.db.script("gtx"), "-T", str(secs), "-D", "kind=soak",
                       wait=False)
    t0 = now()
    samples = 0
    while run.proc.poll() is None:
        cpu, rss, anon = procs.proc_usage(b.worker_pid)
        flight, queue = b.db.row("SELECT in_flight, queue_depth FROM tcc.worker")
        at = fmt(now() - t0, 0)
        print("  %5ss  worker rss %7s kB  anon %7s kB  cpu %8ss  in flight %4s  queued %6s"
              % (at, rss, anon, fmt(cpu, 2), flight, queue), flush=True)
        fig("soak.samples.%d.at_s" % samples, at)
        fig("soak.samples.%d.rss_kb" % samples, rss)
        fig("soak.samples.%d.rss_anon_kb" % samples, anon)
        samples += 1
        # more work for the hanging participant, a batch every 30 s
        b.decide_hanging("soak_hang", 100)
        for _ in range(30):
            if run.proc.poll() is not None:
                break
            time.sleep(1)
    run.wait()
    b.wait_settled("soak", 60)
    cpu, rss, anon = procs.proc_usage(b.worker_pid)
    confirmed = b.q("SELECT count(*) FROM tcc._gtx WHERE kind = 'soak' AND status = 'confirmed'")
    print("  end: worker rss %s kB, anon %s kB, cpu %ss; %d confirmed, %s gtx/s"
          % (rss, anon, fmt(cpu, 2), confirmed, fmt(confirmed / secs, 1)), flush=True)
    fig("soak.seconds", secs)
    fig("soak.confirmed", confirmed)
    fig("soak.gtx_per_s", fmt(confirmed / secs, 1))
    fig("soak.rss_anon_kb_end", anon)
    b.stubs.stop_hang()
    b.resolve_kind("soak_hang")
    pid_end = b.q("SELECT pid FROM pg_stat_activity WHERE backend_type = 'tcc coordinator'")
    if pid_end != b.worker_pid:
        b.anomaly("the worker's pid changed from %s to %s: it restarted" % (b.worker_pid, pid_end or "none"))
