"""Private PostgreSQL clusters for the durability and failover tests.

The harness's cluster (test/run.sh) also holds the test participant's
request log (tp.requests), so it cannot be the cluster a test crashes on
purpose: the participant's own synchronous commits would flush the very WAL
the test wants to lose.  t500 and t510 therefore make clusters of their own
with the harness's binaries (TCC_PGBIN), tcc preloaded as in test/run.sh,
in the harness's scratch directory (TCC_TEST_DIR).  They listen on a Unix
socket only, in their own directory, with a port number just above the
harness's (PGPORT + 1, + 2, ...): a TCP port in the ephemeral range can be
held by a client connection's TIME_WAIT (even one of the test's own, such
as pg_basebackup's), and then a server cannot bind it.  The participant they call is still the
harness's, at TCC_TP_PORT.

Every process is stopped by pid: Cluster.stop() on the way out, and
stop_all() from an atexit hook for whatever is still running when a test
dies.
"""

import atexit
import contextlib
import os
import pwd
import signal
import subprocess
import sys
import time

import psycopg2

# tcclib first: its exit hook must run after stop_all (atexit is LIFO)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import tcclib  # noqa: E402

# settings every private cluster gets, as test/run.sh gives its own
BASE_SETTINGS = {
    "listen_addresses": "''",
    "max_connections": "100",
    "fsync": "off",
    "log_line_prefix": "'%m [%p] %q%b %a: '",
    "shared_preload_libraries": "'tcc'",
    "tcc.database": "'tcc_test'",
    "tcc.retry_interval": "'200ms'",
    "tcc.retry_max_interval": "'2s'",
}
# test/run.sh's suite "workers" runs the fault tests with several
# coordinator workers per database: the private clusters too
if os.environ.get("TCC_TEST_WORKERS"):
    BASE_SETTINGS["tcc.workers"] = str(int(os.environ["TCC_TEST_WORKERS"]))

_clusters = []


def port(offset):
    """A port for a private cluster: the harness's port plus offset."""
    return int(os.environ["PGPORT"]) + offset


def _as_postgres(cmd, check=True, timeout=120):
    """Run cmd as the postgres OS user; its output as text."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    res = subprocess.run(cmd, cwd=os.environ["TCC_TEST_DIR"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), res.stdout))
    return res


def _bin(name):
    """The path of PostgreSQL program name in the harness's binaries."""
    return os.path.join(os.environ["TCC_PGBIN"], name)


def _stat(pid):
    """The fields of /proc/pid/stat after the command name (state, ppid,
    ...), or None if pid is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces
    return stat[stat.rindex(")") + 2:].split()


def _ppid(pid):
    """The parent pid of pid, or None if it is gone."""
    fields = _stat(pid)
    return None if fields is None else int(fields[1])


def proc_state(pid):
    """The one-letter state of process pid (R, S, T, ...) or None."""
    fields = _stat(pid)
    return None if fields is None else fields[0]


def alive(pid):
    """True while process pid exists (and is not a zombie)."""
    return proc_state(pid) not in (None, "Z")


class Cluster:
    """One private cluster: data directory, port, log, and its processes."""

    def __init__(self, name, port_):
        self.name = name
        self.port = port_
        # the run with several workers makes its clusters beside the first
        # run's, which stay until the end for their logs
        if os.environ.get("TCC_TEST_WORKERS"):
            name += "-w" + os.environ["TCC_TEST_WORKERS"]
        self.dir = os.path.join(os.environ["TCC_TEST_DIR"], name)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.pm_pid = None
        _clusters.append(self)

    def _mkdir(self):
        """Make the cluster's directory, owned by postgres."""
        if os.path.exists(self.dir):
            raise RuntimeError("%s exists already" % self.dir)
        os.makedirs(self.dir, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def configure(self, settings, conf_file="postgresql.conf"):
        """Append settings (name -> value as written in the file)."""
        with open(os.path.join(self.data, conf_file), "a") as f:
            f.write("\n# ---- %s (test/integration/clusterlib.py)\n"
                    % self.name)
            for k, v in settings.items():
                f.write("%s = %s\n" % (k, v))

    def _own_settings(self):
        """The settings that differ between clusters: port and socket."""
        return {"port": str(self.port),
                "unix_socket_directories": "'%s'" % self.dir}

    def init(self, settings=None):
        """initdb, the coordinator database tcc_test, the settings."""
        self._mkdir()
        _as_postgres([_bin("initdb"), "-D", self.data, "--auth=trust",
                      "--username=postgres", "--encoding=UTF8",
                      "--locale=C", "--no-sync"])
        res = subprocess.run(
            (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0
             else []) + [_bin("postgres"), "--single", "-D", self.data,
                         "postgres"],
            cwd=self.dir, input="CREATE DATABASE tcc_test\n", text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if res.returncode != 0:
            raise RuntimeError("creating tcc_test failed:\n" + res.stdout)
        conf = dict(BASE_SETTINGS)
        conf.update(self._own_settings())
        conf.update(settings or {})
        self.configure(conf)

    def basebackup_from(self, primary, settings=None):
        """Make this cluster a streaming standby of primary
        (pg_basebackup -R, fast checkpoint); settings override the
        primary's copied ones."""
        self._mkdir()
        _as_postgres([_bin("pg_basebackup"), "-h", primary.dir,
                      "-p", str(primary.port), "-U", "postgres",
                      "-D", self.data, "-R", "-c", "fast", "-X", "stream",
                      "--no-sync"])
        conf = self._own_settings()
        conf.update(settings or {})
        # after what pg_basebackup -R wrote there, so these win
        self.configure(conf, "postgresql.auto.conf")

    def start(self, timeout=60):
        """pg_ctl start, waiting until the server accepts connections."""
        res = _as_postgres([_bin("pg_ctl"), "-D", self.data, "-l", self.log,
                            "-w", "-t", str(timeout), "start"], check=False)
        if res.returncode != 0:
            raise RuntimeError("%s did not start:\n%s\n%s"
                               % (self.name, res.stdout,
                                  "\n".join(self.log_tail(15))))
        self.pm_pid = self.postmaster_pid()

    def postmaster_pid(self):
        """The postmaster's pid from postmaster.pid, or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def children(self):
        """The pids of the postmaster's children."""
        pm = self.pm_pid
        if pm is None:
            return []
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _ppid(int(entry)) == pm:
                pids.append(int(entry))
        return pids

    def kill_all(self, timeout=30):
        """SIGKILL every process of the cluster, by pid: first all are
        frozen with SIGSTOP (the postmaster first, so that it starts
        nobody and kills nobody), so that none of them gets to write
        anything between the first kill and the last.  Returns once all
        are gone."""
        pm = self.pm_pid
        if pm is None or not alive(pm):
            return
        os.kill(pm, signal.SIGSTOP)
        pids = self.children()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        for pid in pids + [pm]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # the postmaster's pid must be gone, not just a zombie: a new
        # postmaster takes a live pid in postmaster.pid for a running server
        deadline = time.monotonic() + timeout
        while (any(alive(p) for p in pids)
               or os.path.exists("/proc/%d" % pm)):
            if time.monotonic() > deadline:
                raise RuntimeError("processes of %s survived SIGKILL"
                                   % self.name)
            time.sleep(0.05)
        self.pm_pid = None

    def stop(self):
        """Stop the cluster if it runs (immediate shutdown, then SIGKILL
        by pid for whatever is left); never raises."""
        try:
            if self.pm_pid is None:
                self.pm_pid = self.postmaster_pid()
            pm = self.pm_pid
            if pm is None or not alive(pm):
                self.pm_pid = None
                return
            # a process held with SIGSTOP must run to take its SIGQUIT
            for pid in self.children() + [pm]:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            res = _as_postgres([_bin("pg_ctl"), "-D", self.data, "-m",
                                "immediate", "-w", "-t", "20", "stop"],
                               check=False, timeout=60)
            if res.returncode != 0 or alive(pm):
                self.kill_all()
            self.pm_pid = None
        except Exception as e:  # clean-up must go on with the others
            sys.stderr.write("# stopping %s: %s\n" % (self.name, e))

    def promote(self, timeout=60):
        """pg_ctl promote, waiting until the promotion is complete."""
        _as_postgres([_bin("pg_ctl"), "-D", self.data, "-w", "-t",
                      str(timeout), "promote"])

    def dsn(self, dbname="tcc_test"):
        """The libpq connection string of this cluster's database dbname."""
        return ("host=%s port=%d dbname=%s user=postgres"
                % (self.dir, self.port, dbname))

    def connect(self, dbname="tcc_test", autocommit=True,
                application_name="tcc integration test"):
        """A new connection to this cluster."""
        conn = psycopg2.connect(self.dsn(dbname), connect_timeout=10,
                                application_name=application_name)
        conn.autocommit = autocommit
        return conn

    def q(self, sql, params=None, dbname="tcc_test"):
        """Run one statement on a fresh connection; its rows."""
        with contextlib.closing(self.connect(dbname)) as conn:
            return tcclib.run(conn, sql, params)

    def q1(self, sql, params=None, dbname="tcc_test"):
        """The first column of the first row of sql, or None."""
        with contextlib.closing(self.connect(dbname)) as conn:
            return tcclib.run1(conn, sql, params)

    def pids_of(self, backend_type):
        """pids of pg_stat_activity rows of backend_type."""
        return [r[0] for r in self.q(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = %s",
            (backend_type,))]

    def log_tail(self, n=40):
        """The last n lines of the server log."""
        try:
            with open(self.log, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []
        return lines[-n:]


class Watchdog(Exception):
    """Raised in the main thread when a test overruns its time limit."""


def watchdog(seconds):
    """Raise Watchdog in the main thread after seconds, so that a test that
    hangs still stops its clusters (in its finally blocks) and fails."""
    def fire(signum, frame):
        raise Watchdog("test still running after %d s" % seconds)
    signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)


def stop_all():
    """Stop every cluster made here that still runs."""
    for c in _clusters:
        c.stop()


atexit.register(stop_all)
