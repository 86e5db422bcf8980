"""S1 (end to end at each client count), S4 (confirm lag at 32 clients),
S1b (one statement: tcc_run) and S1c (three slow participants)."""

import time

from . import procs
from .db import stats
from .report import fmt
from .sampler import WaitSampler


def ms(us):
    """Microseconds to milliseconds as text (None stays null)."""
    return "null" if us is None else fmt(us / 1000, 3)


def run_s1(b):
    """S1 at every client count of BENCH_CLIENTS, and S4 from c=32."""
    cfg, fig = b.cfg, b.fig
    print("\n==== S1 end to end: begin, 2 branches, finish, commit (%ds per client count)"
          % cfg.duration, flush=True)
    script = b.db.script("gtx")
    sampler = None
    for c in cfg.clients:
        kind = "s1_c%d" % c
        path = "s1.c%d" % c
        if c == 32:
            sampler = WaitSampler(b.db, cfg.duration + 30)
            b.pgss.snap("s1_c32_before")
        w0 = b.worker_cpu()
        wal0 = b.wal_snap()
        cpu_a = procs.host_cpu()
        run = b.db.pgbench(kind, c, script, "-T", str(cfg.duration), "-D", "kind=" + kind)
        cpu_b = procs.host_cpu()
        if c == 32:
            sampler.stop()
        b.wait_settled(kind, 60)
        w1 = b.worker_cpu()
        time.sleep(1.1)     # the worker's WAL counters reach pg_stat_wal within a second
        wal1 = b.wal_snap()
        if c == 32:
            b.pgss.snap("s1_c32_after")
        n, p50, p99, mean, mx = stats(run.latencies())
        confirmed, cancelled, other, lag50, lag99, lagmax = b.db.row("""
            SELECT count(*) FILTER (WHERE status = 'confirmed'),
                   count(*) FILTER (WHERE status = 'cancelled'),
                   count(*) FILTER (WHERE status NOT IN ('confirmed', 'cancelled')),
                   round(percentile_disc(0.5) WITHIN GROUP (ORDER BY lag_ms)::numeric, 3),
                   round(percentile_disc(0.99) WITHIN GROUP (ORDER BY lag_ms)::numeric, 3),
                   round(max(lag_ms)::numeric, 3)
              FROM (SELECT status, CASE WHEN status = 'confirmed'
                           THEN extract(epoch FROM finished_at - decided_at) * 1000 END AS lag_ms
                      FROM tcc.transactions WHERE kind = %s) s""", (kind,))
        # the HTTP part of tcc_branch: the try's own duration (tcc._try)
        try50, try99 = b.db.row("""
            SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY a.duration_ms)::numeric, 3),
                   round(percentile_disc(0.99) WITHIN GROUP (ORDER BY a.duration_ms)::numeric, 3)
              FROM tcc._try a JOIN tcc._gtx g USING (gid)
             WHERE g.kind = %s""", (kind,))
        print("  c=%-3s %9s gtx/s  latency p50 %s ms  p99 %s ms  (%s gtx, %s failed;"
              " db: %s confirmed, %s cancelled, %s other)"
              % (c, fmt(run.tps, 1), ms(p50), ms(p99), run.processed, run.failed,
                 confirmed, cancelled, other))
        print("        confirm lag p50 %s ms  p99 %s ms  max %s ms; worker cpu %ss (%s%% of one core)"
              % (lag50, lag99, lagmax, fmt(w1 - w0, 2), fmt(100 * (w1 - w0) / cfg.duration, 0)))
        fig(path + ".clients", c)
        wal = b.wal_figs(path, run.processed, wal0, wal1)
        busy, steal = b.host_figs(path, cpu_a, cpu_b)
        print("        try (HTTP only) p50 %s ms  p99 %s ms; WAL per gtx %s bytes, %s flushes (mean %s ms)"
              % (try50, try99, wal[0], wal[1], wal[2]))
        print("        machine cpu %s%% busy (%s%% steal) over %d cores" % (busy, steal, cfg.nproc),
              flush=True)
        fig(path + ".seconds", cfg.duration)
        fig(path + ".gtx_per_s", fmt(run.tps, 1))
        fig(path + ".p50_ms", ms(p50))
        fig(path + ".p99_ms", ms(p99))
        fig(path + ".mean_ms", ms(mean))
        fig(path + ".max_ms", ms(mx))
        fig(path + ".gtx", run.processed)
        fig(path + ".logged_gtx", n)
        fig(path + ".failed", run.failed)
        fig(path + ".db_confirmed", confirmed)
        fig(path + ".db_cancelled", cancelled)
        fig(path + ".db_other", other)
        fig(path + ".confirm_lag_p50_ms", lag50)
        fig(path + ".confirm_lag_p99_ms", lag99)
        fig(path + ".worker_cpu_s", fmt(w1 - w0, 2))
        fig(path + ".try_p50_ms", try50)
        fig(path + ".try_p99_ms", try99)
        b.worker_rss_fig(path)
        # cross-checks: every committed pgbench transaction is one confirmed gid
        if confirmed != run.processed:
            b.anomaly("S1 c=%d: pgbench committed %d transactions but %d gids of kind %s are confirmed"
                      % (c, run.processed, confirmed, kind))
        if n != run.processed:
            b.anomaly("S1 c=%d: pgbench reported %d transactions, its log holds %d"
                      % (c, run.processed, n))
        if other != 0:
            b.anomaly("S1 c=%d: %d gids of kind %s are neither confirmed nor cancelled"
                      % (c, other, kind))
    if 32 in cfg.clients:
        sampler.show("S1 c=32")
        b.pgss.top("s1_c32_before", "s1_c32_after", "during S1 c=32", 10)
        p50 = b.report.get("s1.c32.confirm_lag_p50_ms")
        p99 = b.report.get("s1.c32.confirm_lag_p99_ms")
        print("\n==== S4 confirm lag during S1 c=32 (decided_at to finished_at in tcc.transactions)")
        print("  p50 %s ms  p99 %s ms" % (p50, p99), flush=True)
        fig("s4.source", "S1 c=32")
        fig("s4.p50_ms", p50)
        fig("s4.p99_ms", p99)


def run_s1b(b):
    """S1b: BEGIN; SELECT tcc_run(2 branches); COMMIT from 32 clients."""
    cfg, fig = b.cfg, b.fig
    print("\n==== S1b one statement: BEGIN; SELECT tcc_run(2 branches); COMMIT (32 clients, %ds)"
          % cfg.duration, flush=True)
    run = b.db.pgbench("s1b", 32, b.db.script("run"), "-T", str(cfg.duration), "-D", "kind=s1b")
    b.wait_settled("s1b", 60)
    n, p50, p99, _, _ = stats(run.latencies())
    confirmed = b.q("SELECT count(*) FROM tcc._gtx WHERE kind = 's1b' AND status = 'confirmed'")
    print("  c=32  %9s gtx/s  latency p50 %s ms  p99 %s ms  (%s gtx, %s failed; db: %s confirmed)"
          % (fmt(run.tps, 1), ms(p50), ms(p99), run.processed, run.failed, confirmed), flush=True)
    fig("s1b.clients", 32)
    fig("s1b.gtx_per_s", fmt(run.tps, 1))
    fig("s1b.p50_ms", ms(p50))
    fig("s1b.p99_ms", ms(p99))
    fig("s1b.gtx", run.processed)
    fig("s1b.failed", run.failed)
    fig("s1b.db_confirmed", confirmed)
    if confirmed != run.processed:
        b.anomaly("S1b: pgbench committed %d transactions but %d gids of kind s1b are confirmed"
                  % (run.processed, confirmed))


def run_s1c(b):
    """S1c: three participants answering in 50 ms, tcc_run against three
    tcc_branch calls, one client."""
    cfg, fig = b.cfg, b.fig
    n = cfg.s1c_gtx
    print("\n==== S1c three participants answering in 50 ms: %d x tcc_run vs %d x three tcc_branch"
          " (1 client)" % (n, n), flush=True)
    b.stubs.start_slow()
    run = b.db.pgbench("s1c_run", 1, b.db.script("slow_run"), "-t", str(n), "-D", "kind=s1c")
    seq = b.db.pgbench("s1c_seq", 1, b.db.script("slow_seq"), "-t", str(n), "-D", "kind=s1c")
    b.wait_settled("s1c", 60)
    b.stubs.stop_slow()
    rn, rp50, rp99, _, _ = stats(run.latencies())
    sn, sp50, sp99, _, _ = stats(seq.latencies())
    print("  %-34s p50 %8s ms  p99 %8s ms  (n=%s)"
          % ("tcc_run, three tries at once", ms(rp50), ms(rp99), rn))
    print("  %-34s p50 %8s ms  p99 %8s ms  (n=%s)"
          % ("three tcc_branch, one by one", ms(sp50), ms(sp99), sn), flush=True)
    fig("s1c.gtx", n)
    fig("s1c.run_p50_ms", ms(rp50))
    fig("s1c.run_p99_ms", ms(rp99))
    fig("s1c.seq_p50_ms", ms(sp50))
    fig("s1c.seq_p99_ms", ms(sp99))
    confirmed = b.q("SELECT count(*) FROM tcc._gtx WHERE kind = 's1c' AND status = 'confirmed'")
    if confirmed != 2 * n:
        b.anomaly("S1c: %d transactions but %d gids of kind s1c are confirmed" % (2 * n, confirmed))
