"""The benchmark's settings, read once from the environment.

bench/run.sh documents every BENCH_* variable and exports the values it
resolved itself (ports, scratch directory, mode); the defaults of the rest
live here, with the quick run's in the second column.
"""

import os

# targets: they live only here, and a missed one does not fail the run
TARGETS = {
    "s1_gtx_per_s": 2500,
    "s1b_gtx_per_s": 4000,
    "s1c_run_p50_ms": 70,
    "s2_overhead_p50_us": 300,
    "s3_calls_per_s": 30000,
    "s3_worker_us_per_call": 30,
    "s4_p99_ms": 50,
    "s7_rss_anon_max_kb": 200 * 1024,
    "s8_ratio_min": 0.8,
    "s8_ratio_max": 1.25,
    "s9_query_ms": 20,
    "s9_page_ms": 100,
    "s10_gtx_ratio_min": 3,         # tcc's gtx/s over DTM's
    "s10_cpu_ratio_max": 0.333,     # tcc's CPU per gtx over DTM's (the run's processes)
    "s1_ratio_min": 0.6,            # S1 at 32 clients over pgbench simple-update at 32
    "s1b_ratio_min": 1.0,           # S1b over pgbench simple-update at 32
    "s11_vs_s3_max": 2,
    "s3_workers2_ratio_min": 1.6,   # S3 with tcc.workers = 2 over S3 with 1             # S11's time to cancel N over S3's drain of N
}

PREPARE_CLIENTS = 16    # sessions that create the S3 / S5 transactions
DRAIN_TIMEOUT = 300     # seconds a phase two may take before it counts as stuck


def _env(name, full, quick, is_quick):
    """An integer setting: the environment's value, else the mode's default."""
    value = os.environ.get(name, "")
    if value != "":
        return int(value)
    return quick if is_quick else full


class Config:
    """Everything a scenario may need to know about the run."""

    def __init__(self):
        e = os.environ
        self.quick = e.get("BENCH_QUICK", "0") == "1"
        self.mode = "quick" if self.quick else "full"
        q = self.quick
        self.duration = _env("BENCH_SECONDS", 15, 5, q)
        self.s2_calls = _env("BENCH_S2_CALLS", 2000, 500, q)
        self.s1c_gtx = _env("BENCH_S1C_GTX", 200, 40, q)
        self.s3_gtx = _env("BENCH_S3_GTX", 20000, 4000, q)
        self.s5_gtx = _env("BENCH_S5_GTX", 10000, 2000, q)
        self.s11_gtx = _env("BENCH_S11_GTX", 10000, 2000, q)
        self.s5_outage = _env("BENCH_S5_OUTAGE", 5, 3, q)
        self.s6_seconds = _env("BENCH_S6_SECONDS", 15, 5, q)
        self.s6_hang = _env("BENCH_S6_HANG", 1000, 1000, q)
        self.s7_pending = _env("BENCH_S7_PENDING", 1000000, 20000, q)
        self.s7_outage = _env("BENCH_S7_OUTAGE", 30, 10, q)
        self.s8_seconds = _env("BENCH_S8_SECONDS", 600, 60, q)
        self.s8_interval = _env("BENCH_S8_INTERVAL", 15, 10, q)
        self.s8_warmup = _env("BENCH_S8_WARMUP", 60, 20, q)
        self.s9_rows = _env("BENCH_S9_ROWS", 10000000, 1000000, q)
        self.s10_seconds = _env("BENCH_S10_SECONDS", 15, 5, q)
        self.s10_outage = _env("BENCH_S10_OUTAGE", 10, 10, q)
        self.s10_clients = _env("BENCH_S10_CLIENTS", 32, 32, q)
        self.dtm_version = e.get("BENCH_DTM_VERSION", "v1.19.0")
        self.baseline = e.get("BENCH_BASELINE", "1") == "1"
        self.soak = e.get("BENCH_SOAK", "0") == "1"
        self.soak_seconds = _env("BENCH_SOAK_SECONDS", 600, 600, q)
        self.clients = [int(c) for c in e.get("BENCH_CLIENTS", "1 8 32").split()]
        self.pgss = e.get("BENCH_PGSS", "1") == "1"
        self.nginx_workers = _env("BENCH_NGINX_WORKERS", 1, 1, q)
        self.sync_standby = e.get("BENCH_SYNC_STANDBY", "0")
        self.only = [s for s in e.get("BENCH_ONLY", "").replace(",", " ").split()]
        # resolved by bench/run.sh
        self.root = e["BENCH_ROOT"]
        self.tmp = e["BENCH_TMP"]
        self.pgbin = e["BENCH_PGBIN"]
        self.pgdata = e["BENCH_PGDATA"]
        self.pglog = e["BENCH_PGLOG"]
        self.port = int(e["BENCH_PORT"])
        self.stub_port = int(e["BENCH_STUB_PORT"])
        self.slow_port = self.stub_port + 1
        self.hang_port = _env("BENCH_HANG_PORT", self.stub_port + 2,
                              self.stub_port + 2, q)
        self.stub = "http://127.0.0.1:%d" % self.stub_port
        self.slow = "http://127.0.0.1:%d" % self.slow_port
        self.hang = "http://127.0.0.1:%d" % self.hang_port
        self.s10_confirm_port = _env("BENCH_S10_CONFIRM_PORT", self.stub_port + 3,
                                     self.stub_port + 3, q)
        self.logdir = os.path.join(self.tmp, "logs")
        self.nproc = os.cpu_count() or 1
