"""A cluster of an upgrade test's own, running a released version of tcc.

Used by the upgrade tests (t600 from 1.0, t820 from 1.1).  OldCluster builds
the version of a git commit into a private copy of the suite's PostgreSQL
(without this tree's tcc), makes a cluster with database coord as its
coordinator database on a free port next to the suite's, and starts it.
install_current() then puts this tree's build (the files test/setup.sh
installed for the suite) over it and restarts: the upgrade as a package
upgrade does it.  Everything is removed at exit.
"""

import atexit
import os
import shutil
import socket
import subprocess
import tempfile

import psycopg2

from tcclib import wait_until

SYSTEM_PG_CONFIG = "/usr/lib/postgresql/15/bin/pg_config"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CRASH_MARKS = ("terminated by signal", "was terminated by",
               "terminating any other active server processes",
               "server process (PID")


def sh(cmd, **kw):
    """Run a command; its output; raise with the output if it fails."""
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), res.stdout))
    return res.stdout


def as_postgres(cmd):
    """cmd run as the postgres OS user when we are root."""
    return (["runuser", "-u", "postgres", "--"] + cmd
            if os.geteuid() == 0 else cmd)


def pg_config(binary, what):
    """One pg_config answer of the PostgreSQL whose pg_config is binary."""
    return subprocess.check_output([binary, what], text=True).strip()


def free_port():
    """A port of PGPORT+1 .. PGPORT+9 that nothing listens on."""
    base = int(os.environ["PGPORT"])
    for port in range(base + 1, base + 10):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return port
    raise RuntimeError("no free port after %d" % base)


class OldCluster:
    """A cluster running the tcc of commit, with conf appended to its
    postgresql.conf (tcc preloaded for database coord already)."""

    def __init__(self, commit, label, conf=""):
        suite_config = os.path.join(os.environ["TCC_PGBIN"], "pg_config")
        self.suite_lib = pg_config(suite_config, "--pkglibdir")
        self.suite_share = pg_config(suite_config, "--sharedir")
        system_lib = pg_config(SYSTEM_PG_CONFIG, "--pkglibdir")
        system_share = pg_config(SYSTEM_PG_CONFIG, "--sharedir")
        self.label = label
        self.tmp = tempfile.mkdtemp(prefix=label + ".",
                                    dir=os.environ.get("TCC_TEST_DIR"))
        os.chmod(self.tmp, 0o755)
        self.started = False
        atexit.register(self.cleanup)
        pg = os.path.join(self.tmp, "pg")       # DESTDIR of the private copy
        self.lib = pg + system_lib
        self.ext = os.path.join(pg + system_share, "extension")
        self.bin = os.path.join(os.path.dirname(self.lib), "bin")
        self.data = os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "server.log")
        self.port = free_port()

        # the old version, built from the git history
        src = os.path.join(self.tmp, "src")
        os.mkdir(src)
        archive = subprocess.run(["git", "-C", ROOT, "archive", commit],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        self.found = archive.returncode == 0
        if not self.found:
            self.why = archive.stderr.decode(errors="replace")
            return
        subprocess.run(["tar", "-x", "-C", src], input=archive.stdout,
                       check=True)
        build = ["make", "-C", src, "-j2", "PG_CONFIG=" + SYSTEM_PG_CONFIG,
                 "with_llvm=no"]
        sh(build)
        # PostgreSQL finds its share and lib directories relative to its
        # binaries: a copy of the suite's installation, without tcc, is
        # self-contained
        os.makedirs(os.path.dirname(os.path.dirname(self.lib)))
        os.makedirs(os.path.dirname(pg + system_share))
        shutil.copytree(os.path.dirname(self.suite_lib),
                        os.path.dirname(self.lib), symlinks=True,
                        ignore=shutil.ignore_patterns("bitcode"))
        shutil.copytree(self.suite_share, pg + system_share, symlinks=True)
        for f in os.listdir(self.ext):
            if f == "tcc.control" or f.startswith("tcc--"):
                os.remove(os.path.join(self.ext, f))
        os.remove(os.path.join(self.lib, "tcc.so"))
        sh(build + ["install", "DESTDIR=" + pg])

        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres", "postgres")
        sh(as_postgres([os.path.join(self.bin, "initdb"), "-D", self.data,
                        "--auth=trust", "--username=postgres",
                        "--encoding=UTF8", "--locale=C", "--no-sync"]),
           cwd=self.tmp)
        subprocess.run(as_postgres([os.path.join(self.bin, "postgres"),
                                    "--single", "-D", self.data, "postgres"]),
                       cwd=self.tmp, input="CREATE DATABASE coord\n",
                       text=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("""
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = off
jit = off
log_line_prefix = '%%m [%%p] %%q%%b %%a: '
shared_preload_libraries = 'tcc'
tcc.database = 'coord'
""" % (self.port, self.tmp) + conf)
        self.pg_ctl("start", "-w", "-t", "60", "-l", self.log)
        self.started = True

    def extension_files(self):
        """The tcc files of the private copy's extension directory."""
        return sorted(f for f in os.listdir(self.ext) if f.startswith("tcc"))

    def pg_ctl(self, *args):
        """pg_ctl on this cluster."""
        return sh(as_postgres([os.path.join(self.bin, "pg_ctl"), "-D",
                               self.data] + list(args)), cwd=self.tmp)

    def install_current(self):
        """Stops, puts this tree's build over the old one, starts again.
        Returns the size of the log before the start."""
        self.pg_ctl("stop", "-m", "fast", "-w")
        ext = os.path.join(self.suite_share, "extension")
        for f in os.listdir(ext):
            if f == "tcc.control" or f.startswith("tcc--"):
                shutil.copy(os.path.join(ext, f), self.ext)
        shutil.copy(os.path.join(self.suite_lib, "tcc.so"), self.lib)
        at = os.path.getsize(self.log)
        self.pg_ctl("start", "-w", "-t", "60", "-l", self.log)
        return at

    def cleanup(self):
        """Stop this cluster and remove its files."""
        if self.started and os.path.exists(os.path.join(self.data,
                                                        "postmaster.pid")):
            try:
                self.pg_ctl("stop", "-m", "immediate", "-w")
            except RuntimeError:
                pass
        self.started = False
        shutil.rmtree(self.tmp, ignore_errors=True)

    def connect(self, user="postgres"):
        """An autocommit connection to database coord."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=user,
                                dbname="coord",
                                application_name=self.label)
        conn.autocommit = True
        return conn

    def sql(self, query, params=None, user="postgres"):
        """Rows of one statement on coord."""
        conn = self.connect(user)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description is not None else []
        finally:
            conn.close()

    def sql1(self, query, params=None, user="postgres"):
        """The first value of one statement on coord."""
        rows = self.sql(query, params, user)
        return rows[0][0] if rows else None

    def error_of(self, query, params=None):
        """The psycopg2 error one statement on coord raises, or None."""
        try:
            self.sql(query, params)
        except psycopg2.Error as e:
            return e
        return None

    def status(self, gid):
        """The status of gid in tcc.transactions."""
        return self.sql1("SELECT status FROM tcc.transactions"
                         " WHERE gid = %s", (gid,))

    def wait_status(self, gid, wanted, timeout=20.0):
        """Poll until gid has status wanted; the last status seen."""
        last = [None]

        def check():
            last[0] = self.status(gid)
            return last[0] == wanted
        wait_until(check, timeout)
        return last[0]

    def set_system(self, **settings):
        """ALTER SYSTEM SET tcc.<name> = value for each, and reload."""
        for name, value in settings.items():
            self.sql("ALTER SYSTEM SET tcc.%s = %%s" % name, (str(value),))
        self.sql("SELECT pg_reload_conf()")

    def log_text(self):
        """This cluster's server log."""
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def crash_lines(self):
        """Lines of the server log that tell of a crashed server process."""
        return [line for line in self.log_text().splitlines()
                if any(m in line for m in CRASH_MARKS)]
