"""S7: a million pending confirms while the participant is down, then back.

The backlog is made fast, by SQL: one transaction inserts N / 2 two-branch
transactions (N = BENCH_S7_PENDING pending confirm calls) into tcc's tables in the shape the API and the worker leave
them once phase two has started -- _gtx in state confirming, two _branch
rows, two _try rows (successful tries), a _decision to confirm by the
caller.  The worker is then restarted (pg_terminate_backend; the
postmaster starts a new one within a second), and the new worker reads the
backlog back as after any restart.  The stub is stopped first, so every
confirm is refused and retried (tcc.retry_interval 200ms,
tcc.retry_max_interval 2s, as in S5); the worker's private memory
(RssAnon) is sampled every half second.  Once the worker holds the whole
backlog and BENCH_S7_OUTAGE seconds have passed, the stub comes back and
the drain is timed to the last confirmed transaction.
"""

import time

from . import procs
from .config import TARGETS
from .db import now
from .report import fmt, row
from .sampler import RssSampler, worker_memory

BACKLOG_SQL = """
BEGIN;
CREATE TEMP TABLE s7_gid ON COMMIT DROP AS
    SELECT gen_random_uuid() AS gid FROM generate_series(1, %(n)d);
INSERT INTO tcc._gtx (gid, owner, kind, parallel, deadline, status)
    SELECT gid, 'postgres'::regrole, 's7', false, now() + interval '1 day', 'confirming'
      FROM s7_gid;
INSERT INTO tcc._branch (gid, branch, try_url, confirm_url, cancel_url, payload)
    SELECT gid, b, format('%(stub)s/%%s/try', b), format('%(stub)s/%%s/confirm', b),
           format('%(stub)s/%%s/cancel', b), format('{"account": %%s, "amount": 1}', b)
      FROM s7_gid, generate_series(1, 2) b;
INSERT INTO tcc._try (gid, branch, started_at, duration_ms, http_status, body)
    SELECT gid, b, clock_timestamp(), 0.1, 200, '{"ok":true}'
      FROM s7_gid, generate_series(1, 2) b;
INSERT INTO tcc._decision (gid, commit, source, decided_by)
    SELECT gid, true, 'caller', 'postgres'::regrole FROM s7_gid;
COMMIT;
"""


def restart_worker(b):
    """Terminates the worker and waits for the postmaster's new one; returns
    its pid (None if none came)."""
    old = b.worker_pid
    b.q("SELECT pg_terminate_backend(%s, 10000)", (old,))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid = b.q("SELECT pid FROM pg_stat_activity WHERE backend_type = 'tcc coordinator'")
        if pid and pid != old:
            return pid
        time.sleep(0.1)
    return None


def run_s7(b):
    """S7: the backlog, the restart, the outage, the drain, the memory."""
    cfg, fig, q = b.cfg, b.fig, b.q
    gtx = cfg.s7_pending // 2      # two branches each: n pending confirm calls
    n = 2 * gtx
    print("\n==== S7 backlog: %d pending confirms while the participant is down, then back" % n,
          flush=True)
    b.set_retry("200ms", "2s")
    print("  ALTER SYSTEM SET tcc.retry_interval = '200ms', tcc.retry_max_interval = '2s'; reloaded")
    b.stubs.stop_nginx()
    anon0 = procs.proc_usage(b.worker_pid)[2]
    t0 = time.monotonic()
    b.db.psql(stdin=BACKLOG_SQL % {"n": gtx, "stub": cfg.stub})
    insert_s = time.monotonic() - t0
    print("  stub stopped; %d two-branch transactions in phase two (%d pending confirms) inserted"
          " in %ss (%s gtx/s, one transaction)"
          % (gtx, n, fmt(insert_s, 1), fmt(gtx / insert_s, 0)), flush=True)
    old_pid = b.worker_pid
    pid = restart_worker(b)
    if pid is None:
        raise procs.Failed("S7: no new worker after pg_terminate_backend(%s)" % old_pid)
    b.worker_pid = pid
    b.restarted_pids.append(old_pid)
    down_at = time.monotonic()
    rss = RssSampler(pid, 0.5)
    rss.set_phase("down")
    print("  worker %s terminated; the new worker %s reads the backlog back" % (old_pid, pid), flush=True)
    limit = cfg.s7_outage + 600
    loaded_s = None
    while True:
        elapsed = time.monotonic() - down_at
        if loaded_s is None:
            # the transactions are sequential: one call of each is due at a
            # time, its second branch's once the first is confirmed
            held = q("SELECT in_flight + queue_depth FROM tcc.worker")
            if held is not None and held >= gtx:
                loaded_s = elapsed
                print("  the worker holds the first call of all %d transactions after %ss" % (gtx, fmt(loaded_s, 1)),
                      flush=True)
        if loaded_s is not None and elapsed >= cfg.s7_outage:
            break
        if elapsed >= limit:
            b.anomaly("S7: after %ss the worker held %s calls of %d transactions" % (fmt(elapsed, 0), held, gtx))
            break
        time.sleep(1)
    mem_down = worker_memory(b, "s7_down")
    failed = q("""SELECT count(*) FROM tcc._attempt a JOIN tcc._gtx g USING (gid)
                   WHERE g.kind = 's7' AND a.op = 'confirm'""")
    rss.set_phase("drain")
    b.stubs.start_nginx()
    up_at = now()
    outage_s = time.monotonic() - down_at
    print("  stub back after %ss (%d failed confirm attempts); worker RssAnon max %s kB while down;"
          " memory contexts %s bytes; draining..." % (fmt(outage_s, 1), failed, rss.max.get("down"),
                                                       mem_down or "?"), flush=True)
    b.wait_settled("s7", max(300, gtx // 1000), interval=1)
    rss.stop()
    drain_s = b.last_finished("s7") - up_at
    confirmed, other = b.db.row("""SELECT count(*) FILTER (WHERE status = 'confirmed'),
                                          count(*) FILTER (WHERE status <> 'confirmed')
                                     FROM tcc._gtx WHERE kind = 's7'""")
    calls_per_s = 2 * confirmed / drain_s if drain_s > 0 else 0
    hwm = procs.vm_hwm(pid)
    print("  drained in %ss: %d confirmed, %d not -> %s phase-two calls/s; worker RssAnon max %s kB"
          " during the drain, %s kB now (%s kB in the worker before S7); VmHWM %s kB"
          % (fmt(drain_s, 1), confirmed, other, fmt(calls_per_s, 0), rss.max.get("drain"),
             procs.proc_usage(pid)[2], anon0, hwm), flush=True)
    b.set_retry(None, None)
    print("  ALTER SYSTEM RESET of both; reloaded")
    fig("s7.pending", n)
    fig("s7.gtx", gtx)
    fig("s7.backlog", "sql, then a worker restart")
    fig("s7.insert_s", fmt(insert_s, 1))
    fig("s7.worker_pid_before", old_pid)
    fig("s7.worker_pid_after", pid)
    fig("s7.loaded_s", fmt(loaded_s, 1))
    fig("s7.outage_s", fmt(outage_s, 1))
    fig("s7.failed_attempts_in_outage", failed)
    fig("s7.worker_rss_anon_kb_before", anon0)
    fig("s7.worker_rss_anon_max_down_kb", rss.max.get("down"))
    fig("s7.worker_rss_anon_max_drain_kb", rss.max.get("drain"))
    fig("s7.worker_memory_contexts_down_bytes", mem_down)
    fig("s7.worker_vm_hwm_kb", hwm)
    fig("s7.drain_s", fmt(drain_s, 2))
    fig("s7.confirmed", confirmed)
    fig("s7.phase2_calls_per_s", fmt(calls_per_s, 0))
    s3 = b.report.get("s3.phase2_calls_per_s")
    fig("s7.drain_vs_s3", fmt(calls_per_s / float(s3), 2) if s3 not in ("null", "0") else None)
    # RssAnon every half second, as [seconds, kB] pairs, thinned to ~100
    step = max(1, len(rss.series) // 100)
    fig("s7.rss_anon_series", [list(p) for p in rss.series[::step]])
    b.worker_rss_fig("s7")
    if confirmed != gtx:
        b.anomaly("S7: %d transactions pending, %d confirmed, %d other" % (gtx, confirmed, other))


def table_rows(b):
    """S7's rows of the results table, if it ran."""
    rep, g = b.report, b.report.get
    if g("s7.pending") == "null":
        return
    peak = max((int(v) for v in (g("s7.worker_rss_anon_max_down_kb"),
                                 g("s7.worker_rss_anon_max_drain_kb")) if v != "null"), default=None)
    met = rep.target("s7_worker_rss_anon_max_kb", peak, "<=", TARGETS["s7_rss_anon_max_kb"])
    row("S7 %s pending: RssAnon down/drain" % g("s7.pending"),
        "%s / %s" % (g("s7.worker_rss_anon_max_down_kb"), g("s7.worker_rss_anon_max_drain_kb")),
        "kB", "<= %d" % TARGETS["s7_rss_anon_max_kb"], met)
    row("S7 drain", g("s7.drain_s"), "s")
    met = rep.target("s7_phase2_calls_per_s", g("s7.phase2_calls_per_s"), ">=", TARGETS["s3_calls_per_s"])
    row("S7 drain phase-two calls", g("s7.phase2_calls_per_s"), "calls/s",
        ">= %d" % TARGETS["s3_calls_per_s"], met)
