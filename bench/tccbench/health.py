"""The end of a run: the worker's figures, the health of the cluster, where
time went over the whole run, and the results table."""

import re

from . import procs
from .config import TARGETS
from .report import fmt, row
from .sampler import worker_memory


def run_health(b):
    """Worker figures at the end, health counts and the server log."""
    fig, q = b.fig, b.q
    b.pgss.snap("end")
    cpu1, rss1, anon1 = procs.proc_usage(b.worker_pid)
    b.end_usage = (cpu1, rss1, anon1)
    pid_end = q("SELECT pid FROM pg_stat_activity WHERE backend_type = 'tcc coordinator'")
    fig("worker.pid_end", pid_end)
    fig("worker.cpu_s_end", fmt(cpu1, 2))
    fig("worker.rss_kb_end", rss1)
    fig("worker.rss_anon_kb_end", anon1)
    mem1 = worker_memory(b, "end")
    fig("worker.memory_contexts_bytes_end", mem1)
    if pid_end != b.worker_pid:
        b.anomaly("the worker's pid changed from %s to %s: it restarted" % (b.worker_pid, pid_end or "none"))

    print("\n==== health")
    pending, attention, failed, total = b.db.row("""
        SELECT (SELECT count(*) FROM tcc.pending), (SELECT count(*) FROM tcc.attention),
               (SELECT count(*) FROM tcc.transactions WHERE status = 'failed'),
               (SELECT count(*) FROM tcc.transactions)""")
    print("  transactions: %d in all, %d pending, %d needing attention, %d failed"
          % (total, pending, attention, failed))
    fig("health.transactions", total)
    fig("health.pending", pending)
    fig("health.attention", attention)
    fig("health.failed", failed)
    cpu0, rss0, anon0 = b.start_usage
    print("  worker: pid %s -> %s; cpu %ss -> %ss; rss %s -> %s kB (anon %s -> %s kB)"
          % (b.worker_pid, pid_end or "none", fmt(cpu0, 2), fmt(cpu1, 2), rss0, rss1, anon0, anon1))
    print("  worker memory contexts: %s -> %s bytes; largest at the end: %s"
          % (b.mem_start or "?", mem1 or "?", b.memory.get("end", "")))
    print("  tcc tables (size with indexes; updates, of them HOT; dead rows; autovacuums):")
    for rel, size, upd, hot, dead, av in b.db.rows("""
            SELECT s.relname, pg_size_pretty(pg_total_relation_size(s.relid)), s.n_tup_upd,
                   s.n_tup_hot_upd, s.n_dead_tup, s.autovacuum_count
              FROM pg_stat_user_tables s WHERE s.schemaname = 'tcc' AND s.n_tup_ins > 0
             ORDER BY s.relname"""):
        print("    %-10s %8s  %8s updates, %8s HOT; %8s dead; %s autovacuums"
              % (rel, size, upd, hot, dead, av))
        fig("health.tables.%s.updates" % rel, upd)
        fig("health.tables.%s.hot_updates" % rel, hot)
        fig("health.tables.%s.dead_rows" % rel, dead)
        fig("health.tables.%s.autovacuums" % rel, av)
    print("  indexes of tcc._branch: %s" % q("""
        SELECT string_agg(format('%s %s', c.relname, pg_size_pretty(pg_relation_size(c.oid))),
                          ', ' ORDER BY c.relname)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indrelid = 'tcc._branch'::regclass"""))
    if pending != 0:
        b.anomaly("%d transactions still pending at the end" % pending)
    if failed != 0:
        b.anomaly("%d transactions failed" % failed)

    with open(b.cfg.pglog, encoding="utf-8", errors="replace") as f:
        log = f.read().splitlines()
    # the workers a scenario terminated on purpose (S7) are not problems
    expected = ["[%d] FATAL:  terminating background worker" % p for p in b.restarted_pids] + \
        ["(PID %d) exited with exit code 1" % p for p in b.restarted_pids]
    if b.cluster_restarted:
        # a fast shutdown ends the sessions and autovacuum it finds
        expected += ["terminating autovacuum process due to administrator command",
                     "terminating connection due to administrator command"]
    problems = [ln for ln in log if re.search(
        r"(ERROR|FATAL|PANIC|WARNING): |terminated by signal|exited with exit code", ln)
        and not any(e in ln for e in expected)]
    fig("health.server_log_problems", len(problems))
    if problems:
        b.anomaly("%d ERROR/WARNING/FATAL lines or worker exits in the server log" % len(problems))
        print("  server log, first distinct problems:")
        counts = {}
        for ln in problems:
            ln = re.sub(r"^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] ", "", ln)
            counts[ln] = counts.get(ln, 0) + 1
        for ln, n in sorted(counts.items(), key=lambda e: (-e[1], e[0]))[:10]:
            print("    %7d %s" % (n, ln))
    else:
        print("  server log: no ERROR, WARNING, FATAL or worker exit")
    print("  checkpoints during the run: %d" % sum("checkpoint complete" in ln for ln in log))
    if b.cfg.pgss:
        print("\n==== where time goes over the whole run")
        b.pgss.top("start", "end", "whole run", 15)


def print_table(b):
    """The results table, with the targets checked and recorded."""
    cfg, rep = b.cfg, b.report
    g = rep.get
    t = TARGETS
    print("\n==== results (%s mode; the machine may be shared: figures are noisy)" % cfg.mode)
    row("scenario", "value", "unit", "target", "")
    for c in cfg.clients:
        met, tgt = "", ""
        if c == 32:
            met = rep.target("s1_c32_gtx_per_s", g("s1.c32.gtx_per_s"), ">=", t["s1_gtx_per_s"])
            tgt = ">= %d" % t["s1_gtx_per_s"]
        row("S1 c=%d throughput" % c, g("s1.c%d.gtx_per_s" % c), "gtx/s", tgt, met)
        row("S1 c=%d latency p50" % c, g("s1.c%d.p50_ms" % c), "ms")
        row("S1 c=%d latency p99" % c, g("s1.c%d.p99_ms" % c), "ms")
    met = rep.target("s1b_gtx_per_s", g("s1b.gtx_per_s"), ">=", t["s1b_gtx_per_s"])
    row("S1b tcc_run c=32 throughput", g("s1b.gtx_per_s"), "gtx/s", ">= %d" % t["s1b_gtx_per_s"], met)
    row("S1b tcc_run c=32 latency p50", g("s1b.p50_ms"), "ms")
    met = rep.target("s1c_run_p50_ms", g("s1c.run_p50_ms"), "<=", t["s1c_run_p50_ms"])
    row("S1c tcc_run, 3 x 50 ms, p50", g("s1c.run_p50_ms"), "ms", "<= %d" % t["s1c_run_p50_ms"], met)
    row("S1c 3 x tcc_branch, p50", g("s1c.seq_p50_ms"), "ms")
    row("S2 plain POST p50 / p99", "%s / %s" % (g("s2.plain_post.p50_us"), g("s2.plain_post.p99_us")), "us")
    row("S2 tcc_branch p50 / p99", "%s / %s" % (g("s2.tcc_branch.p50_us"), g("s2.tcc_branch.p99_us")), "us")
    row("S2 same, in one transaction", "%s / %s" % (g("s2.tcc_branch_in_xact.p50_us"),
                                                    g("s2.tcc_branch_in_xact.p99_us")), "us")
    met = rep.target("s2_overhead_p50_us", g("s2.overhead_p50_us"), "<=", t["s2_overhead_p50_us"])
    row("S2 overhead p50", "+" + g("s2.overhead_p50_us"), "us", "<= %d" % t["s2_overhead_p50_us"], met)
    row("S2 overhead p99", "+" + g("s2.overhead_p99_us"), "us")
    row("S3 drain of %s gtx" % g("s3.gtx"), g("s3.drain_s"), "s")
    row("S3 first confirm after COMMIT", g("s3.first_call_after_s"), "s")
    met = rep.target("s3_phase2_calls_per_s", g("s3.phase2_calls_per_s"), ">=", t["s3_calls_per_s"])
    row("S3 phase-two calls", g("s3.phase2_calls_per_s"), "calls/s", ">= %d" % t["s3_calls_per_s"], met)
    met = rep.target("s3_worker_us_per_call", g("s3.worker_cpu_us_per_call"), "<=",
                     t["s3_worker_us_per_call"])
    row("S3 worker cpu per call", g("s3.worker_cpu_us_per_call"), "us",
        "<= %d" % t["s3_worker_us_per_call"], met)
    row("S4 confirm lag p50 (S1 c=32)", g("s4.p50_ms"), "ms")
    met = rep.target("s4_p99_ms", g("s4.p99_ms"), "<=", t["s4_p99_ms"])
    row("S4 confirm lag p99 (S1 c=32)", g("s4.p99_ms"), "ms", "<= %d" % t["s4_p99_ms"], met)
    row("S5 settle after stub restart", g("s5.settle_s"), "s")
    row("S5 outage / failed attempts", "%s / %s" % (g("s5.outage_s"), g("s5.failed_attempts_in_outage")),
        "s / n")
    row("S6 confirm lag p50 quiet / noisy", "%s / %s" % (g("s6.quiet.confirm_lag_p50_ms"),
                                                         g("s6.noisy.confirm_lag_p50_ms")), "ms")
    row("S6 confirm lag p99 quiet / noisy", "%s / %s" % (g("s6.quiet.confirm_lag_p99_ms"),
                                                         g("s6.noisy.confirm_lag_p99_ms")), "ms")
    extra_rows(b)
    cpu0, rss0, _ = b.start_usage
    cpu1, rss1, _ = b.end_usage
    row("worker cpu start / end", "%s / %s" % (fmt(cpu0, 2), fmt(cpu1, 2)), "s")
    row("worker rss start / end", "%s / %s" % (rss0, rss1), "kB")
    row("anomalies", len(rep.anomalies), "")
    for a in rep.anomalies:
        print("  - %s" % a)


def extra_rows(b):
    """Rows of the scenarios the table gained later (S11, S7, S8, S9), when they ran."""
    from . import s7, s8, s9, s11
    s11.table_rows(b)
    s7.table_rows(b)
    s8.table_rows(b)
    s9.table_rows(b)
