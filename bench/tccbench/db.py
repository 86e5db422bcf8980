"""Connections to the benchmark cluster, pgbench and psql.

The workload (pgbench, and the few statements of the scenarios) runs as
postgres; the benchmark's own queries -- polls, figures, samples -- as the
superuser bench, so that pg_stat_statements can tell them apart.
"""

import os
import re
import subprocess
import time

import psycopg


def now():
    """Seconds since the epoch, as a float."""
    return time.time()


class Db:
    """The benchmark's connections: bench (its own) and postgres (workload)."""

    def __init__(self, cfg, report):
        self.cfg = cfg
        self.report = report
        self._bench = None
        self._app = None
        self.running = []       # pgbench processes, stopped by close()

    def connect(self, user, appname=None, autocommit=True):
        """A new connection to database bench."""
        kw = {}
        if appname:
            kw["application_name"] = appname
        return psycopg.connect(host="127.0.0.1", port=self.cfg.port, user=user,
                               dbname="bench", autocommit=autocommit, **kw)

    def bench(self):
        """The benchmark's own connection (role bench)."""
        if self._bench is None or self._bench.closed:
            self._bench = self.connect("bench", "bench_poll")
        return self._bench

    def app(self):
        """The workload's connection for single statements (role postgres)."""
        if self._app is None or self._app.closed:
            self._app = self.connect("postgres", "psql")
        return self._app

    def rows(self, sql, params=None):
        """All rows of a query of the benchmark's own."""
        with self.bench().cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def row(self, sql, params=None):
        """The first row of a query of the benchmark's own (or Nones)."""
        r = self.rows(sql, params)
        return r[0] if r else None

    def q(self, sql, params=None):
        """The one value of a query of the benchmark's own."""
        r = self.row(sql, params)
        return None if r is None else r[0]

    def app_q(self, sql, params=None):
        """The one value of a workload statement (role postgres)."""
        with self.app().cursor() as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return None
            r = cur.fetchone()
            return None if r is None else r[0]

    def close(self):
        """Stops pgbench runs still going; closes both connections (they are
        opened again when next used)."""
        for proc in self.running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for c in (self._bench, self._app):
            if c is not None and not c.closed:
                c.close()
        self._bench = self._app = None

    # ------------------------------------------------------------ tools

    def script(self, name):
        """A pgbench script from bench/sql with the stubs' URLs filled in."""
        with open(os.path.join(self.cfg.root, "bench", "sql", name + ".sql")) as f:
            text = f.read()
        text = text.replace("@STUB@", self.cfg.stub).replace("@SLOW@", self.cfg.slow)
        path = os.path.join(self.cfg.tmp, name + ".sql")
        with open(path, "w") as f:
            f.write(text)
        return path

    def pgbench(self, name, clients, script, *args, log=True, wait=True):
        """Runs pgbench (prepared protocol) as postgres.  Per-transaction
        latencies go to logs/NAME.*, its output to logs/NAME.out.  With
        wait=False returns the process; else a Pgbench result."""
        cfg = self.cfg
        jobs = min(clients, cfg.nproc)
        cmd = [os.path.join(cfg.pgbin, "pgbench"), "-n", "-M", "prepared",
               "-h", "127.0.0.1", "-p", str(cfg.port), "-U", "postgres",
               "-c", str(clients), "-j", str(jobs), "-f", script]
        if log:
            cmd += ["--log", "--log-prefix=%s/%s" % (cfg.logdir, name)]
        cmd += list(args) + ["bench"]
        out = open(os.path.join(cfg.logdir, name + ".out"), "w")
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        out.close()
        self.running.append(proc)
        run = Pgbench(self, name, proc)
        if wait:
            run.wait()
        return run

    def psql(self, *args, user="postgres", stdin=None):
        """Runs psql on database bench; its standard output."""
        cmd = [os.path.join(self.cfg.pgbin, "psql"), "-X", "-q", "-At",
               "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
               str(self.cfg.port), "-U", user, "-d", "bench"] + list(args)
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql failed: %s" % r.stderr.strip())
        return r.stdout


class Pgbench:
    """One pgbench run and what its output says."""

    def __init__(self, db, name, proc):
        self.db = db
        self.name = name
        self.proc = proc
        self.rc = None
        self.tps = 0.0
        self.processed = 0
        self.failed = 0

    def wait(self):
        """Waits for pgbench; reads tps and counts; records an anomaly if it
        failed or aborted clients.  Returns its exit status."""
        self.rc = self.proc.wait()
        path = os.path.join(self.db.cfg.logdir, self.name + ".out")
        with open(path) as f:
            text = f.read()
        m = re.findall(r"^tps = ([0-9.]*) ", text, re.M)
        self.tps = float(m[-1]) if m else 0.0
        m = re.search(r"^number of transactions actually processed: ([0-9]*)", text, re.M)
        self.processed = int(m.group(1)) if m else 0
        m = re.search(r"^number of failed transactions: ([0-9]*)", text, re.M)
        self.failed = int(m.group(1)) if m else 0
        if self.rc != 0 or "aborted" in text:
            bad = [ln for ln in text.splitlines()
                   if re.search("error|abort", ln, re.I)][:3]
            self.db.report.anomaly("pgbench %s exited %s: %s "
                                   % (self.name, self.rc, " ".join(bad)))
        return self.rc

    def latencies(self):
        """The per-transaction latencies (µs) of its log files."""
        logdir = self.db.cfg.logdir
        vals = []
        for fn in sorted(os.listdir(logdir)):
            if re.fullmatch(re.escape(self.name) + r"\.[0-9]+(\.[0-9]+)?", fn):
                vals += column(os.path.join(logdir, fn), 2)
        return vals


def column(path, index):
    """The numbers in one (0-based) column of a whitespace-separated file."""
    vals = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) > index and re.fullmatch(r"[0-9]+(\.[0-9]+)?", parts[index]):
                vals.append(float(parts[index]))
    return vals


def stats(vals):
    """(n, p50, p99, mean, max) of numbers, nearest-rank percentiles; Nones
    when there are none."""
    if not vals:
        return 0, None, None, None, None
    a = sorted(vals)
    n = len(a)

    def rank(p):
        r = int(p * n)
        if r < p * n:
            r += 1
        return a[max(r, 1) - 1]
    return n, rank(0.5), rank(0.99), sum(a) / n, a[-1]


def num(v):
    """A value read from a file as the text it had: 1084 or 37.3."""
    if v is None:
        return "null"
    return "%d" % v if float(v).is_integer() else str(float(v))
