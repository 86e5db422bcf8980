"""S10 beside DTM: DTM's server and tcc on one machine and one cluster, the
same stub participant, two Go initiators with the same clients.

DTM's server is installed when the scenario runs, the way its Go users do,
by test/dtm_install.sh (go install of the pinned release from the Go module
proxy, into the scratch directory); its store is the database s10_dtm of
the benchmark cluster, with the schema of the module's own
sqls/dtmsvr.storage.postgres.sql.  bench/goload holds both initiators:
DTM's Go client (dtmcli.TccGlobalTransaction, two CallBranch) and pgx v5
running tcc_run with two branches.  Tries and cancels go to the bench's
nginx stub, confirms to a second nginx with the same configuration on its
own port, so that the confirm endpoint alone can go down.

Measured for each, one after the other: gtx/s, latency p50 / p99 (the
initiator's), CPU per gtx (the run's processes: the cluster, both nginx,
DTM's server, goload; and the whole machine's, which counts whatever else
runs) and WAL bytes per gtx from the load's start until everything is
settled, then the time to settle after
the confirm endpoint was down for S10_OUTAGE seconds under the same load.
Both coordinators keep their default retry settings.  Skipped, with the
reason, where there is no fit Go or the module proxy cannot be reached.
"""

import json
import os
import resource
import shutil
import socket
import subprocess
import time
import urllib.request

import psycopg

from . import procs
from .config import TARGETS
from .db import now
from .report import fmt

STORE_DB = "s10_dtm"


class Skip(Exception):
    """S10 cannot run here (the message says why)."""


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _go():
    """The go command, if it is go1.25 or newer (bench/goload's go.mod)."""
    go = shutil.which("go")
    if go is None:
        raise Skip("no go command on PATH (Go 1.25 or newer is needed)")
    v = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                       env=dict(os.environ, GOTOOLCHAIN="local")).stdout.strip()
    try:
        major, minor = (int(x) for x in v[2:].split(".")[:2])
    except ValueError:
        major, minor = 0, 0
    if (major, minor) < (1, 25):
        raise Skip("%s is %s; go1.25 or newer is needed" % (go, v or "unknown"))
    return go, v


def _step(cmd, cwd, env, log, timeout=1200):
    """Runs a build step with its output in a log file; its exit status."""
    with open(log, "w") as out:
        try:
            return subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return -1


def _tree_cpu(roots):
    """CPU seconds of processes and all their descendants, the children they
    reaped included (utime, stime, cutime, cstime of each live one)."""
    parent, ticks = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent[int(d)] = int(fields[1])
        ticks[int(d)] = sum(int(x) for x in fields[11:15])
    total = 0
    for pid, t in ticks.items():
        p = pid
        while p > 1 and p not in roots:
            p = parent.get(p, 0)
        if p in roots:
            total += t
    return total / procs.CLK_TCK


def _children_cpu():
    """CPU seconds of this program's reaped children (goload among them)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _tail(path, n=5):
    with open(path, errors="replace") as f:
        return " | ".join(f.read().strip().splitlines()[-n:])


class Side:
    """The processes and connections S10 starts; stop() ends them by pid."""

    def __init__(self, b):
        self.b = b
        self.cfg = b.cfg
        self.dir = os.path.join(b.cfg.tmp, "s10")
        os.makedirs(self.dir, exist_ok=True)
        self.confirm_proc = self.dtm_proc = self.store = None
        self.confirm_port = self.cfg.s10_confirm_port
        self.confirm = "http://127.0.0.1:%d" % self.confirm_port
        self.env = dict(os.environ, GOTOOLCHAIN="local", GO111MODULE="on",
                        GOFLAGS="-mod=readonly -buildvcs=false")

    def build(self):
        """goload and DTM's server, from the Go module proxy."""
        go, version = _go()
        self.goload = os.path.join(self.dir, "goload")
        log = os.path.join(self.dir, "goload-build.log")
        t0 = now()
        rc = _step([go, "build", "-o", self.goload, "."],
                   os.path.join(self.cfg.root, "bench", "goload"), self.env, log)
        if rc != 0:
            raise Skip("building bench/goload failed (the Go module proxy?): %s" % _tail(log))
        log = os.path.join(self.dir, "dtm-install.log")
        env = dict(self.env, DTM_VERSION=self.cfg.dtm_version)
        rc = _step(["bash", os.path.join(self.cfg.root, "test", "dtm_install.sh"),
                    os.path.join(self.dir, "dtm")], self.cfg.root, env, log)
        if rc in (3, 4):
            raise Skip("installing DTM %s failed: %s" % (self.cfg.dtm_version, _tail(log)))
        if rc != 0:
            raise procs.Failed("installing DTM %s failed: %s" % (self.cfg.dtm_version, _tail(log)))
        print("  built goload and DTM %s with %s in %ss"
              % (self.cfg.dtm_version, version, fmt(now() - t0, 0)), flush=True)
        self.b.fig("s10.dtm_version", self.cfg.dtm_version)
        self.b.fig("s10.go_version", version)

    def start(self):
        """The store database, the confirm stub and DTM's server."""
        b, cfg = self.b, self.cfg
        b.db.app_q("CREATE DATABASE %s" % STORE_DB)
        with open(os.path.join(self.dir, "dtm", "module")) as f:
            sql = os.path.join(f.read().strip(), "sqls", "dtmsvr.storage.postgres.sql")
        subprocess.run([os.path.join(cfg.pgbin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "-h", "127.0.0.1", "-p", str(cfg.port), "-U", "postgres",
                        "-d", STORE_DB, "-f", sql], check=True, capture_output=True,
                       env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))
        self.store = psycopg.connect(host="127.0.0.1", port=cfg.port, user="bench",
                                     dbname=STORE_DB, autocommit=True)
        if procs.port_busy(self.confirm_port):
            raise procs.Failed("port %d is in use (set BENCH_S10_CONFIRM_PORT)" % self.confirm_port)
        ndir = os.path.join(self.dir, "nginx")
        os.makedirs(ndir, exist_ok=True)
        with open(os.path.join(ndir, "nginx.conf"), "w") as f:
            f.write(procs.NGINX_CONF % {"workers": cfg.nginx_workers, "dir": ndir,
                                        "port": self.confirm_port})
        self.nginx_cmd = ["/usr/sbin/nginx", "-p", ndir, "-e", os.path.join(ndir, "error.log"),
                          "-c", os.path.join(ndir, "nginx.conf")]
        self.confirm_up()
        self.dtm_port = _free_port()
        self.dtm = "http://127.0.0.1:%d/api/dtmsvr" % self.dtm_port
        env = dict(os.environ, STORE_DRIVER="postgres", STORE_HOST="127.0.0.1",
                   STORE_PORT=str(cfg.port), STORE_USER="postgres", STORE_PASSWORD="unused",
                   STORE_DB=STORE_DB, STORE_SCHEMA="public", HTTP_PORT=str(self.dtm_port),
                   GRPC_PORT=str(_free_port()), JSON_RPC_PORT=str(_free_port()),
                   LOG_LEVEL="warn")
        with open(os.path.join(self.dir, "dtm.log"), "w") as out:
            self.dtm_proc = subprocess.Popen([os.path.join(self.dir, "dtm", "bin", "dtm")],
                                             env=env, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.dtm + "/newGid", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.dtm_proc.poll() is not None:
                break
            time.sleep(0.2)
        raise procs.Failed("DTM's server did not start: %s"
                           % _tail(os.path.join(self.dir, "dtm.log")))

    def roots(self):
        """The run's processes: the cluster's postmaster, both nginx and
        DTM's server (goload is counted as this program's child)."""
        with open(os.path.join(self.cfg.pgdata, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        return {postmaster, self.b.stubs.nginx.pid, self.confirm_proc.pid, self.dtm_proc.pid}

    def confirm_up(self):
        with open(os.path.join(self.dir, "nginx", "stdout.log"), "a") as out:
            self.confirm_proc = subprocess.Popen(self.nginx_cmd, stdin=subprocess.DEVNULL,
                                                 stdout=out, stderr=subprocess.STDOUT)
        procs.wait_port(self.confirm_port, self.confirm_proc, "the confirm stub")

    def confirm_down(self):
        procs.stop(self.confirm_proc)
        self.confirm_proc = None

    def stop(self):
        procs.stop(self.dtm_proc)
        procs.stop(self.confirm_proc)
        if self.store is not None:
            self.store.close()
        try:
            self.b.db.app_q("DROP DATABASE IF EXISTS %s WITH (FORCE)" % STORE_DB)
        except Exception:       # noqa: BLE001 - the cluster may be gone
            pass

    # ------------------------------------------------------------ load

    def load(self, system, kind, seconds):
        """Runs goload; its JSON result."""
        cfg = self.cfg
        cmd = [self.goload, system, "-stub", cfg.stub, "-confirm", self.confirm,
               "-clients", str(cfg.s10_clients), "-seconds", str(seconds)]
        if system == "dtm":
            cmd += ["-dtm", self.dtm]
        else:
            cmd += ["-kind", kind, "-dsn", "host=127.0.0.1 port=%d user=postgres dbname=bench"
                    % cfg.port]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300)
        if r.returncode != 0:
            raise procs.Failed("goload %s exited %d: %s" % (system, r.returncode, r.stderr[-500:]))
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if res["errors"]:
            self.b.anomaly("S10 %s: %d global transactions failed: %s"
                           % (system, res["errors"], res.get("first_error", "")[:200]))
        return res

    def open_count(self, system, kind):
        if system == "tcc":
            return self.b.open_count(kind)
        return self.store.execute("SELECT count(*) FROM trans_global WHERE status"
                                  " NOT IN ('succeed', 'failed')").fetchone()[0]

    def done_count(self, system, kind):
        if system == "tcc":
            return self.b.q("SELECT count(*) FROM tcc._gtx WHERE kind = %s AND"
                            " status = 'confirmed'", (kind,))
        return self.store.execute("SELECT count(*) FROM trans_global"
                                  " WHERE status = 'succeed'").fetchone()[0]

    def wait_settled(self, system, kind, limit):
        """Seconds until nothing is left to confirm (polled every 0.25 s)."""
        t0 = now()
        while self.open_count(system, kind):
            if now() - t0 > limit:
                self.b.anomaly("S10 %s: %d transactions not settled after %ds"
                               % (system, self.open_count(system, kind), limit))
                return None
            time.sleep(0.25)
        return now() - t0

    def measure(self, system):
        """Throughput, latency, CPU and WAL per gtx of one system."""
        b, cfg = self.b, self.cfg
        kind = "s10_" + system
        done0 = self.done_count(system, kind)
        roots = self.roots()
        wal0, cpu0 = b.wal_snap(), procs.host_cpu()
        own0 = _tree_cpu(roots) + _children_cpu()
        res = self.load(system, kind, cfg.s10_seconds)
        tail = self.wait_settled(system, kind, 300)
        own1 = _tree_cpu(roots) + _children_cpu()
        wal1, cpu1 = b.wal_snap(), procs.host_cpu()
        gtx = res["gtx"]
        confirmed = self.done_count(system, kind) - done0
        if confirmed != gtx:
            b.anomaly("S10 %s: %d global transactions completed, %d confirmed"
                      % (system, gtx, confirmed))
        busy = (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])
        out = {"gtx": gtx, "gtx_per_s": fmt(gtx / res["seconds"], 1),
               "p50_ms": fmt(res["p50_ms"], 2), "p99_ms": fmt(res["p99_ms"], 2),
               "cpu_ms_per_gtx": fmt(busy / procs.CLK_TCK * 1000 / gtx if gtx else 0, 3),
               "own_cpu_ms_per_gtx": fmt((own1 - own0) * 1000 / gtx if gtx else 0, 3),
               "wal_bytes_per_gtx": fmt((float(wal1[0]) - float(wal0[0])) / gtx if gtx else 0, 0),
               "confirm_tail_s": fmt(tail, 2)}
        for k, v in out.items():
            b.fig("s10.%s.%s" % (system, k), v)
        print("  %-4s %6d gtx in %ss: %s gtx/s, p50 %s ms, p99 %s ms; cpu per gtx %s ms"
              " (host %s ms); WAL %s bytes/gtx; settled %ss after the load"
              % (system, gtx, fmt(res["seconds"], 1), out["gtx_per_s"], out["p50_ms"],
                 out["p99_ms"], out["own_cpu_ms_per_gtx"], out["cpu_ms_per_gtx"],
                 out["wal_bytes_per_gtx"], out["confirm_tail_s"]), flush=True)
        return out

    def outage(self, system):
        """The load for S10_OUTAGE s while the confirm endpoint is down; the
        time from its return until everything is settled."""
        b, cfg = self.b, self.cfg
        kind = "s10_%s_outage" % system
        self.confirm_down()
        down_at = now()
        res = self.load(system, kind, cfg.s10_outage)
        self.confirm_up()
        up_at = now()
        settle = self.wait_settled(system, kind, 600)
        b.fig("s10.%s.outage_gtx" % system, res["gtx"])
        b.fig("s10.%s.outage_s" % system, fmt(up_at - down_at, 2))
        b.fig("s10.%s.settle_s" % system, fmt(settle, 2))
        print("  %-4s confirm endpoint down %ss under load (%d gtx): all settled %ss after it"
              " came back" % (system, fmt(up_at - down_at, 1), res["gtx"], fmt(settle, 2)),
              flush=True)
        return fmt(settle, 2)


def run_s10(b):
    """S10: DTM's server and tcc side by side (see the module's text)."""
    cfg = b.cfg
    print("\n==== S10 beside DTM: DTM %s and tcc, %d Go clients, two-branch TCC against the stub"
          % (cfg.dtm_version, cfg.s10_clients), flush=True)
    side = Side(b)
    try:
        side.build()
        side.start()
        retry = b.q("SELECT current_setting('tcc.retry_interval')")
        print("  retries at their defaults: tcc.retry_interval %s (doubling);"
              " DTM RetryInterval 10 s (doubling), TransCronInterval 3 s" % retry, flush=True)
        figs = {s: side.measure(s) for s in ("dtm", "tcc")}
        for s in ("dtm", "tcc"):
            figs[s]["settle_s"] = side.outage(s)
    except Skip as e:
        print("  S10 skipped: %s" % e, flush=True)
        b.fig("s10.skipped", str(e))
        return
    finally:
        side.stop()
    print("\n  %-38s %12s %12s %10s" % ("S10", "DTM", "tcc", "tcc/DTM"))
    for key, label in (("gtx_per_s", "gtx/s"), ("p50_ms", "latency p50 ms"),
                       ("p99_ms", "latency p99 ms"),
                       ("own_cpu_ms_per_gtx", "CPU ms per gtx (the run's processes)"),
                       ("cpu_ms_per_gtx", "host CPU ms per gtx (whole machine)"),
                       ("wal_bytes_per_gtx", "WAL bytes per gtx"),
                       ("settle_s", "settle after %d s confirm outage s" % cfg.s10_outage)):
        d, t = figs["dtm"][key], figs["tcc"][key]
        ratio = fmt(float(t) / float(d), 2) if d not in ("null", None) and t != "null" \
            and float(d) else "null"
        b.fig("s10.ratio.%s" % key, ratio)
        print("  %-38s %12s %12s %10s" % (label, d, t, ratio))
    gtx_met = b.report.target("s10_gtx_ratio", b.report.get("s10.ratio.gtx_per_s"), ">=",
                              TARGETS["s10_gtx_ratio_min"])
    cpu_met = b.report.target("s10_cpu_ratio", b.report.get("s10.ratio.own_cpu_ms_per_gtx"), "<=",
                              TARGETS["s10_cpu_ratio_max"])
    print("  targets: tcc/DTM gtx/s >= %s: %s; CPU per gtx (the run's processes) <= %s: %s"
          % (TARGETS["s10_gtx_ratio_min"], {"true": "met"}.get(gtx_met, "MISSED"),
             TARGETS["s10_cpu_ratio_max"], {"true": "met"}.get(cpu_met, "MISSED")))
    print(flush=True)
