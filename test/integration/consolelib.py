"""Helpers of the console and metrics tests (t480, t490, t495).

Roles that log in with a password over TCP (pg_hba lines added for them and
removed again), extra servers started by the test and stopped by pid, the
directory where their screenshots and logs are kept, and a plain HTTP
client of the console (its own cookies, no redirects followed, server-sent
events read as they come).
"""

import contextlib
import http.client
import http.cookies
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
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
    tcc.worker, tcc.activity TO {r};
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


class Browser:
    """One browser's worth of cookies against the console at 127.0.0.1:port;
    answers are (status, headers, body text), redirects are not followed."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def cookie_header(self):
        """The Cookie header this browser sends."""
        return "; ".join("%s=%s" % kv for kv in self.cookies.items())

    def keep_cookies(self, resp):
        """Take the Set-Cookie headers of an answer (an expired one
        removes its cookie)."""
        for line in resp.headers.get_all("Set-Cookie") or []:
            c = http.cookies.SimpleCookie()
            c.load(line)
            for name, m in c.items():
                if m["max-age"] == "0" or "1970" in m["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = m.value

    def request(self, method, path, form=None, headers=None, timeout=20):
        """Send one request; (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        hdrs = {"Cookie": self.cookie_header()}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            self.keep_cookies(resp)
            return resp.status, resp.headers, text
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form, **kw):
        return self.request("POST", path, form=form, **kw)

    def form_token(self, page=None):
        """The anti-forgery token of the login form (fetched if no page is
        given)."""
        if page is None:
            page = self.get("/login")[2]
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        return m.group(1) if m else None

    def login(self, role, password, nxt=None):
        """Fetch the login form and send it; the answer to the POST."""
        form = {"csrf": self.form_token(), "role": role,
                "password": password}
        if nxt is not None:
            form["next"] = nxt
        return self.post("/login", form)

    def csrf(self, path="/"):
        """The session's anti-forgery token, from a page."""
        m = re.search(r'name="csrf" value="([^"]+)"', self.get(path)[2])
        return m.group(1) if m else None

    def stream(self, timeout=10):
        """GET /events: an open Stream (status 200) or (status, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        conn.request("GET", "/events", headers={"Cookie": self.cookie_header()})
        sock = conn.sock
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read().decode("utf-8", "replace")
            conn.close()
            return resp.status, body
        return Stream(sock, resp)


class Stream:
    """An open server-sent event stream of the console."""

    def __init__(self, sock, resp):
        self.sock, self.resp = sock, resp
        self.ended = False

    def events(self, seconds, until=None):
        """The (event, data) read within seconds, or until until(event,
        data) is true; self.ended once the server closed the stream."""
        got, event, data = [], None, []
        deadline = time.monotonic() + seconds
        while not self.ended and time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError):
                break
            except (OSError, http.client.HTTPException):
                line = b""
            if not line:
                self.ended = True
                break
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and event is not None:
                got.append((event, "\n".join(data)))
                if until is not None and until(event, "\n".join(data)):
                    break
                event, data = None, []
        return got

    def close(self):
        self.resp.close()
        self.sock.close()


def cpu_seconds(pid):
    """User and system CPU seconds a process has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
