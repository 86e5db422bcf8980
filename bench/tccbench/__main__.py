"""The benchmark's program: python3 -m tccbench, run by bench/run.sh once the
cluster is up.  Sets the cluster up for the run (role bench, extensions),
starts the stubs, runs the scenarios, prints the health, the results table
and ONE JSON line; on failure the JSON line carries an error field."""

import os
import signal
import subprocess
import sys
import time

from . import baseline, drain, health, procs, s1, s2, s6, s7, s8, s9, s10, s11
from .config import Config
from .context import Bench
from .db import Db
from .report import Report, fmt
from .sampler import Pgss, worker_memory

# BENCH_ONLY names: the scenarios that can run alone, in run order
SCENARIOS = [("s1", s1.run_s1), ("s1b", s1.run_s1b), ("s1c", s1.run_s1c),
             ("s2", s2.run_s2), ("s3", drain.run_s3), ("s11", s11.run_s11),
             ("s5", drain.run_s5), ("s6", s6.run_s6), ("s10", s10.run_s10), ("s8", s8.run_s8),
             ("s7", s7.run_s7), ("s9", s9.run_s9),
             # last: it restarts the cluster (twice)
             ("s3w2", drain.run_s3w2)]


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived."""


def on_signal(signum, frame):
    """Turns a signal into an exception, so that everything is stopped."""
    raise Interrupted()


def setup(b):
    """The cluster's objects, the worker, the stub, the settings and a smoke
    transaction."""
    cfg, fig, db = b.cfg, b.fig, b.db
    db.app_q("CREATE ROLE bench SUPERUSER LOGIN")
    db.app_q("CREATE EXTENSION tcc")
    if cfg.pgss:
        db.app_q("CREATE EXTENSION pg_stat_statements")
    # the worker comes up within a second of CREATE EXTENSION
    b.worker_pid = b.find_worker()
    if not b.worker_pid:
        raise procs.Failed("the tcc coordinator worker did not start")
    b.stubs.start_nginx()
    r = subprocess.run([os.path.join(cfg.tmp, "plainpost"), cfg.stub + "/check/try", "1"],
                       stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        raise procs.Failed("the stub does not answer")

    print("\n==== settings")
    for name, value in db.rows("""
            SELECT name, current_setting(name)
              FROM pg_settings
             WHERE name IN ('server_version', 'max_connections', 'shared_buffers', 'fsync',
                            'synchronous_commit', 'full_page_writes', 'wal_level', 'wal_buffers',
                            'wal_sync_method', 'commit_delay', 'max_wal_size', 'checkpoint_timeout',
                            'max_locks_per_transaction', 'shared_preload_libraries',
                            'track_wal_io_timing', 'autovacuum', 'autovacuum_naptime',
                            'pg_stat_statements.track')
                OR name LIKE 'tcc.%'
             ORDER BY name"""):
        print("  %-28s %s" % (name, value))
        fig("settings." + name, value)
    version = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True).stderr
    print("  stub: nginx %s at %s, %d worker(s), keepalive on"
          % (version.strip().rsplit("/", 1)[-1], cfg.stub, cfg.nginx_workers))
    fstype = subprocess.run(["df", "-T", cfg.tmp], capture_output=True, text=True).stdout
    fstype = fstype.splitlines()[1].split()[1] if len(fstype.splitlines()) > 1 else "?"
    print("  data directory: %s (%s)" % (cfg.pgdata, fstype))
    print("  mode: %s; S1 %ds per client count (%s); S2 %d calls;"
          % (cfg.mode, cfg.duration, " ".join(map(str, cfg.clients)), cfg.s2_calls))
    print("        S3 %d gtx; S11 %d gtx; S5 %d gtx, outage >= %ds; S7 %d pending; S8 %ds"
          % (cfg.s3_gtx, cfg.s11_gtx, cfg.s5_gtx, cfg.s5_outage, cfg.s7_pending,
             cfg.s8_seconds))
    fig("settings.stub", "nginx %d worker(s) at %s" % (cfg.nginx_workers, cfg.stub))

    # the smoke test: one global transaction end to end
    smoke = db.psql(stdin="""BEGIN;
SELECT tcc_begin(kind => 'smoke') AS gid \\gset
SELECT tcc_branch(:'gid', '%(s)s/a/try', '%(s)s/a/confirm', '%(s)s/a/cancel') IS NOT NULL;
SELECT tcc_finish(:'gid');
COMMIT;
SELECT tcc_wait(:'gid', '10 s');
""" % {"s": cfg.stub})
    if smoke.strip().splitlines()[-1:] != ["confirmed"]:
        raise procs.Failed("smoke test failed: %s" % smoke)

    b.start_usage = procs.proc_usage(b.worker_pid)
    cpu0, rss0, anon0 = b.start_usage
    print("  worker: pid %s, cpu %ss, rss %s kB (anon %s kB) at start"
          % (b.worker_pid, fmt(cpu0, 2), rss0, anon0))
    fig("worker.pid_start", b.worker_pid)
    fig("worker.cpu_s_start", fmt(cpu0, 2))
    fig("worker.rss_kb_start", rss0)
    fig("worker.rss_anon_kb_start", anon0)
    b.mem_start = worker_memory(b, "start")
    print("  worker memory contexts: %s bytes at start" % (b.mem_start or "?"), flush=True)
    fig("worker.memory_contexts_bytes_start", b.mem_start)
    b.pgss.snap("start")


def run(b):
    """The scenarios the settings ask for, then the report."""
    cfg = b.cfg
    if cfg.soak:
        s6.run_soak(b)
        print()
        return
    if cfg.only:
        names = dict(SCENARIOS)
        unknown = [n for n in cfg.only if n not in names]
        if unknown:
            raise procs.Failed("BENCH_ONLY: unknown scenario %s (known: %s)"
                               % (" ".join(unknown), " ".join(names)))
    if cfg.baseline:
        baseline.run_baseline(b)
    if cfg.only:
        for name, fn in SCENARIOS:
            if name in cfg.only:
                fn(b)
        baseline.ratios(b)
        print()
        return
    for _, fn in SCENARIOS:
        fn(b)
    health.run_health(b)
    health.print_table(b)
    baseline.ratios(b)
    b.fig("finished_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    b.fig("host.load_1min_end", procs.load_1min())
    print()


def server_log_tail(cfg):
    """The tail of the server log, memory context dumps left out."""
    try:
        with open(cfg.pglog, encoding="utf-8", errors="replace") as f:
            lines = [ln for ln in f.read().splitlines() if "LOG:  level: " not in ln]
    except OSError:
        return
    print("---- tail of the server log (memory context dumps left out)")
    print("\n".join(lines[-40:]))


def main():
    """Runs the benchmark; the exit status: 0, 1 on failure, 130 interrupted."""
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cfg = Config()
    os.makedirs(cfg.logdir, exist_ok=True)
    report = Report()
    fig = report.fig
    fig("bench", "tcc")
    fig("mode", cfg.mode)
    fig("commit", os.environ.get("BENCH_COMMIT", "unknown"))
    fig("started_at", os.environ.get("BENCH_STARTED_AT", ""))
    fig("tcc_so_sha256", os.environ.get("BENCH_TCC_SO_SHA256", ""))
    fig("host.cpus", cfg.nproc)
    fig("host.load_1min", os.environ.get("BENCH_LOAD_START", procs.load_1min()))
    fig("sync_standby", cfg.sync_standby)
    db = Db(cfg, report)
    stubs = None
    status = 0
    try:
        stubs = procs.Stubs(cfg)
        b = Bench(cfg, report, db, stubs, Pgss(db, cfg.pgss))
        setup(b)
        run(b)
    except Interrupted:
        report.error = "interrupted"
        status = 130
    except Exception as e:      # noqa: BLE001 - any failure ends in the JSON line
        print("bench: %s" % e, file=sys.stderr, flush=True)
        report.error = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        status = 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if stubs is not None:
        stubs.stop_all()
    try:
        db.close()
    except Exception:           # noqa: BLE001 - the server may be gone
        pass
    if status != 0 and status != 130:
        server_log_tail(cfg)
    report.print_json()
    with open(os.path.join(cfg.tmp, "json_printed"), "w"):
        pass
    return status


if __name__ == "__main__":
    sys.exit(main())
