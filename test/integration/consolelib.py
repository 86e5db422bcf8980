"""Helpers of the console and metrics tests (t480, t490).

Roles that log in with a password over TCP (pg_hba lines added for them and
removed again), extra servers started by the test and stopped by pid, and
the directory where their screenshots and logs are kept.
"""

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import diag, q, q1, wait_until  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TP_PORT = int(os.environ.get("TCC_TP_PORT", "18080"))
PGPORT = int(os.environ.get("PGPORT", "25329"))
PYTHON = "/usr/bin/python3"


def extra_port(n):
    """The n-th extra port of this run: the participant's port + n."""
    return TP_PORT + n


def output_dir(name):
    """test/output/<name> (kept after the run; ignored by git), or
    $TCC_TEST_OUTPUT/<name>."""
    base = os.environ.get("TCC_TEST_OUTPUT") or os.path.join(ROOT, "test",
                                                              "output")
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    return d


GRANTS = """
GRANT USAGE ON SCHEMA tcc TO {r};
GRANT EXECUTE ON FUNCTION
    tcc_begin(interval, text, text, boolean, text, text),
    tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean),
    tcc_finish(uuid, boolean), tcc_wait(uuid, interval),
    tcc_retry(uuid), tcc_resolve(uuid, text), tcc_worker_state() TO {r};
GRANT SELECT ON tcc.transactions, tcc.transaction_list, tcc.branches,
    tcc.attempts, tcc.actions, tcc.pending, tcc.attention, tcc.stats,
    tcc.worker TO {r};
"""


@contextlib.contextmanager
def password_roles(roles, app_grants=True, member_of=None):
    """Create login roles {name: password} (the application grants, or
    membership in member_of) and make 127.0.0.1 ask them for their
    password (scram-sha-256); undo the pg_hba lines at the end."""
    hba = os.path.join(os.environ["TCC_PGDATA"], "pg_hba.conf")
    with open(hba) as fh:
        before = fh.read()
    for name, pw in roles.items():
        if not q1("SELECT count(*) FROM pg_roles WHERE rolname = %s", (name,)):
            q('CREATE ROLE "%s" LOGIN' % name)
        q('ALTER ROLE "%s" PASSWORD %%s' % name, (pw,))
        if app_grants:
            q(GRANTS.format(r='"%s"' % name))
        if member_of:
            q('GRANT %s TO "%s"' % (member_of, name))
    lines = "".join("host all %s 127.0.0.1/32 scram-sha-256\n" % n
                    for n in roles)
    with open(hba, "w") as fh:
        fh.write(lines + before)
    q("SELECT pg_reload_conf()")
    try:
        yield
    finally:
        with open(hba, "w") as fh:
            fh.write(before)
        q("SELECT pg_reload_conf()")


def role_dsn(role, password):
    """libpq connection string of the test database as role."""
    return ("host=127.0.0.1 port=%d dbname=%s user=%s password=%s"
            % (PGPORT, os.environ.get("PGDATABASE", "tcc_test"), role,
               password))


class Server:
    """A process this test started: stopped by its pid, also on failure."""

    def __init__(self, name, argv, env=None, log_dir=None):
        self.name = name
        self.log = open(os.path.join(log_dir or output_dir("logs"),
                                     name + ".log"), "w")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def wait_http(self, url, timeout=30.0):
        """Wait until url answers (any HTTP status); False if it never
        does or the process exits."""
        def up():
            if self.proc.poll() is not None:
                return True
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return True
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
        return wait_until(up, timeout, 0.1) and self.proc.poll() is None

    def stop(self):
        """SIGTERM its process group (by pid), SIGKILL after 10 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()

    def tail(self, n=30):
        """The last lines of its log, for a diagnostic."""
        self.log.flush()
        with open(self.log.name) as fh:
            for line in fh.readlines()[-n:]:
                diag("%s: %s" % (self.name, line.rstrip()))


def start_console(port, log_dir=None, extra=()):
    """The console on 127.0.0.1:port against the test database."""
    srv = Server("console", [PYTHON, os.path.join(ROOT, "console", "app.py"),
                             "--db", "host=127.0.0.1 port=%d dbname=%s"
                             % (PGPORT, os.environ.get("PGDATABASE",
                                                       "tcc_test")),
                             "--port", str(port)] + list(extra),
                 log_dir=log_dir)
    if not srv.wait_http("http://127.0.0.1:%d/login" % port):
        srv.tail()
        srv.stop()
        raise RuntimeError("the console did not start")
    return srv
