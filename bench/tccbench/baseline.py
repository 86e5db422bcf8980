"""The baseline measured in the same run: plain PostgreSQL under pgbench's
simple-update at 32 clients, in a database of its own on the bench cluster,
before the tcc scenarios; every throughput of the run is also printed as a
ratio to it, so that runs on different machines (or under different loads)
compare."""

import os
import subprocess

from .config import TARGETS
from .db import Pgbench
from .report import fmt, row

DATABASE = "baseline"
SCALE = 10
CLIENTS = 32
JOBS = 2

# the ratios with a target: figure -> target name
TARGETED = {"s1.c32.gtx_per_s": "s1_ratio_min", "s1b.gtx_per_s": "s1b_ratio_min"}

# the throughputs shown as ratios: (label, figure, unit)
THROUGHPUTS = [("S1 c=%d", "s1.c%d.gtx_per_s", "gtx/s"),
               ("S1b tcc_run c=32", "s1b.gtx_per_s", "gtx/s"),
               ("S3 drain", "s3.phase2_calls_per_s", "calls/s"),
               ("S3 drain, share 100, 1 worker", "s3w1.phase2_calls_per_s", "calls/s"),
               ("S3 drain, share 100, 2 workers", "s3w2.phase2_calls_per_s", "calls/s"),
               ("S11 cancels", "s11.cancel_calls_per_s", "calls/s"),
               ("S7 drain", "s7.phase2_calls_per_s", "calls/s"),
               ("S8 c=32", "s8.gtx_per_s", "gtx/s"),
               ("S10 tcc", "s10.tcc.gtx_per_s", "gtx/s"),
               ("S10 DTM", "s10.dtm.gtx_per_s", "gtx/s")]


def _pgbench(b, *args):
    """The command line of pgbench on the baseline database, as postgres."""
    cfg = b.cfg
    return [os.path.join(cfg.pgbin, "pgbench"), "-h", "127.0.0.1", "-p", str(cfg.port),
            "-U", "postgres"] + list(args) + [DATABASE]


def run_baseline(b):
    """pgbench -b simple-update, 32 clients, -j 2, BENCH_SECONDS, on a fresh
    database initialised at scale 10; records baseline.tps."""
    cfg, fig = b.cfg, b.fig
    print("\n==== baseline: pgbench -b simple-update, %d clients (-j %d), %ds, scale %d,"
          " database %s" % (CLIENTS, JOBS, cfg.duration, SCALE, DATABASE), flush=True)
    b.db.app_q("CREATE DATABASE %s" % DATABASE)
    init = subprocess.run(_pgbench(b, "-i", "-q", "-s", str(SCALE)),
                          capture_output=True, text=True)
    if init.returncode != 0:
        b.anomaly("baseline: pgbench -i failed: %s" % init.stderr.strip()[-300:])
        return
    name = "baseline"
    out = open(os.path.join(cfg.logdir, name + ".out"), "w")
    proc = subprocess.Popen(_pgbench(b, "-b", "simple-update", "-c", str(CLIENTS),
                                     "-j", str(JOBS), "-T", str(cfg.duration)),
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    b.db.running.append(proc)
    run = Pgbench(b.db, name, proc)
    run.wait()
    print("  %s TPS (%d transactions, %d failed); each throughput below is also shown"
          " as a ratio to it" % (fmt(run.tps, 1), run.processed, run.failed), flush=True)
    fig("baseline.command", "pgbench -b simple-update -c %d -j %d -T %d, scale %d"
        % (CLIENTS, JOBS, cfg.duration, SCALE))
    fig("baseline.tps", fmt(run.tps, 1))
    fig("baseline.transactions", run.processed)


def ratios(b):
    """Records ratio.* (each throughput of the run over the baseline's TPS)
    and prints them; nothing when the baseline did not run."""
    g = b.report.get
    base = g("baseline.tps")
    if base == "null" or float(base) <= 0:
        return
    print("\n==== throughput / pgbench simple-update at 32 clients (%s TPS)" % base)
    row("throughput", "value", "unit", "ratio")
    labels = []
    for label, path, unit in THROUGHPUTS:
        if "%d" in path:
            labels += [(label % c, path % c, unit) for c in b.cfg.clients]
        else:
            labels.append((label, path, unit))
    for label, path, unit in labels:
        v = g(path)
        if v == "null":
            continue
        ratio = fmt(float(v) / float(base), 2)
        b.fig("ratio." + path.replace(".", "_"), ratio)
        target = TARGETED.get(path)
        if target:
            met = b.report.target(target.replace("_min", ""), ratio, ">=", TARGETS[target])
            row(label, v, unit, "%s >= %s" % (ratio, TARGETS[target]), met)
        else:
            row(label, v, unit, ratio)
