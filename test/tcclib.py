"""Helpers for tcc's integration tests (run by test/run.sh through prove).

Each test file is a standalone script that imports this module and prints
TAP.  The harness exports:

  PGHOST PGPORT PGUSER PGDATABASE   the test cluster and coordinator database
                                    (tcc_test; tcc_test2 is the second one
                                    tcc.database lists)
  TCC_PGDATA TCC_PGBIN TCC_PGLOG    data directory, binaries, server log
  TCC_TP_PORT                       the test participant's port

Use Debian's python3 (it has psycopg2):  /usr/bin/python3 test/integration/x.py
"""

import atexit
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid

import psycopg2

# --------------------------------------------------------------------------
# TAP

_count = 0
_failed = 0
_planned = None
_done = False
_died = False


def _out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def plan(n):
    """Announce that n tests will run."""
    global _planned
    _planned = n
    _out("1..%d" % n)


def done_testing():
    """Close a test file without a plan announced up front."""
    global _done, _planned
    _done = True
    if _planned is None:
        _planned = _count
        _out("1..%d" % _count)


def diag(msg):
    """A diagnostic line, on stderr (prove shows it)."""
    for line in str(msg).splitlines() or [""]:
        sys.stderr.write("# %s\n" % line)
    sys.stderr.flush()


def note(msg):
    """A comment line, on stdout (shown by prove -v)."""
    for line in str(msg).splitlines() or [""]:
        _out("# %s" % line)


def ok(cond, name=""):
    """Pass if cond is true.  Returns cond as a boolean."""
    global _count, _failed
    _count += 1
    name = name.replace("\n", " ").replace("#", "\\#")
    if cond:
        _out("ok %d - %s" % (_count, name))
    else:
        _failed += 1
        _out("not ok %d - %s" % (_count, name))
        diag("  Failed test '%s'" % name)
        for frame in reversed(traceback.extract_stack()):
            if frame.filename != __file__:
                diag("  at %s line %d." % (os.path.basename(frame.filename),
                                           frame.lineno))
                break
    return bool(cond)


def is_(got, want, name=""):
    """Pass if got == want; show both when not."""
    res = ok(got == want, name)
    if not res:
        diag("         got: %r" % (got,))
        diag("    expected: %r" % (want,))
    return res


def isnt(got, unwanted, name=""):
    """Pass if got != unwanted."""
    res = ok(got != unwanted, name)
    if not res:
        diag("         got: %r" % (got,))
        diag("    expected: anything else")
    return res


def like(got, pattern, name=""):
    """Pass if the regular expression pattern matches str(got)."""
    res = ok(got is not None and re.search(pattern, str(got)) is not None,
             name)
    if not res:
        diag("                  %r" % (got,))
        diag("    doesn't match '%s'" % pattern)
    return res


def bail_out(reason):
    """Stop the whole test run."""
    _out("Bail out! %s" % reason)
    os._exit(255)


def _excepthook(etype, value, tb):
    global _died
    _died = True
    diag("test died:")
    for line in traceback.format_exception(etype, value, tb):
        diag(line.rstrip("\n"))


def _at_exit():
    code = min(_failed, 254)
    if _died:
        code = 255
    if _planned is None:
        if not _died:
            diag("no plan: call plan(n) or done_testing()")
        _out("1..%d" % _count)
        code = 255
    elif _planned != _count:
        diag("planned %d tests but ran %d" % (_planned, _count))
        code = 255
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


sys.excepthook = _excepthook
atexit.register(_at_exit)

# --------------------------------------------------------------------------
# Database


def connect(autocommit=True, dbname=None, user=None, options=None):
    """A new connection to the test cluster (libpq reads PG* from the env),
    as role user if given (the test cluster trusts loopback), with libpq
    options (e.g. "-c name=value") if given."""
    kw = {"application_name": "tcc integration test"}
    for k, v in (("dbname", dbname), ("user", user), ("options", options)):
        if v is not None:
            kw[k] = v
    conn = psycopg2.connect("", **kw)
    conn.autocommit = autocommit
    return conn


def run(conn, sql, params=None):
    """Run one statement on conn; its rows ([] if it returns none)."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []


def run1(conn, sql, params=None):
    """Run one statement on conn; the first column of its first row."""
    rows = run(conn, sql, params)
    return rows[0][0] if rows else None


def q(sql, params=None, dbname=None):
    """Run one statement on a fresh connection; its rows ([] if none)."""
    conn = connect(dbname=dbname)
    try:
        return run(conn, sql, params)
    finally:
        conn.close()


def q1(sql, params=None, dbname=None):
    """Run one statement; the first column of its first row, or None."""
    rows = q(sql, params, dbname)
    return rows[0][0] if rows else None


def rss_anon_kb(pid):
    """RssAnon of a process in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return None


def timed(fn, *args):
    """(seconds fn took, its result or the exception it raised)."""
    t0 = time.monotonic()
    try:
        res = fn(*args)
    except Exception as e:       # noqa: BLE001 - reported by the caller
        res = e
    return time.monotonic() - t0, res


def wait_until(fn, timeout=10.0, interval=0.05):
    """Call fn until it returns a true value or timeout seconds pass.

    Returns that value, or None on timeout.  Connection errors (the server
    restarting) count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except psycopg2.OperationalError as e:
            last_error = e
        if time.monotonic() >= deadline:
            if last_error is not None:
                diag("wait_until: last error: %s" % str(last_error).strip())
            return None
        time.sleep(interval)


def still(fn, seconds):
    """True if fn() stays true for the whole window (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not fn():
            return False
        time.sleep(0.1)
    return fn()


# --------------------------------------------------------------------------
# Test participant (test/participant.py)

_RULE_ARGS = ("status", "body", "delay_ms", "retry_after", "fail_next",
              "fail_status", "content_type")


def tp_rule(path, **kw):
    """Set the participant's rule for path; keywords as in tp.set_rule."""
    for k in kw:
        if k not in _RULE_ARGS:
            raise TypeError("tp_rule: unknown argument %s" % k)
    args = "".join(", %s => %%(%s)s" % (k, k) for k in kw)
    q("SELECT tp.set_rule(%%(path)s%s)" % args, dict(kw, path=path))


def tp_reset():
    """Forget all participant rules and recorded requests."""
    q("SELECT tp.reset()")


def tp_requests(key=None):
    """Recorded requests, oldest first, as dicts.

    key: a gid (uuid or its text) selects that transaction's requests; any
    other string selects requests whose path starts with it; None, all.
    """
    cols = ("id", "at", "method", "path", "headers", "body", "gid", "branch",
            "op", "idem", "status")
    sql = "SELECT %s FROM tp.requests" % ", ".join(cols)
    params = None
    gid = None
    if isinstance(key, uuid.UUID):
        gid = str(key)
    elif isinstance(key, str):
        try:
            gid = str(uuid.UUID(key))
        except ValueError:
            gid = None
    if gid is not None:
        sql += " WHERE gid = %s"
        params = (gid,)
    elif key is not None:
        sql += " WHERE starts_with(path, %s)"
        params = (key,)
    sql += " ORDER BY id"
    return [dict(zip(cols, row)) for row in q(sql, params)]


def tp_url(path):
    """The participant's URL for path."""
    return q1("SELECT tp.url(%s)", (path,))


def _tp_state(down, timeout):
    q("SELECT tp.%s()" % ("down" if down else "up"))
    if not wait_until(lambda: q1("SELECT down FROM tp.state") is down,
                      timeout):
        raise RuntimeError("participant did not go %s"
                           % ("down" if down else "up"))


def tp_down(timeout=10.0):
    """Make the participant refuse connections; returns once it does."""
    _tp_state(True, timeout)


def tp_up(timeout=10.0):
    """Make the participant listen again; returns once it does."""
    _tp_state(False, timeout)


# --------------------------------------------------------------------------
# A participant of the test's own, for answers test/participant.py cannot
# give (raw bytes, redirects)


class PostHandler(http.server.BaseHTTPRequestHandler):
    """Base of a test's own POST handler: quiet, keeps connections alive."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def read_body(self):
        """The request's body (bytes)."""
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, code, body, headers=None):
        """Send status code with a JSON body (bytes) and extra headers."""
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_http(handler):
    """Serve handler on a free port of 127.0.0.1 from a daemon thread;
    returns the server (shutdown() stops it) and its base URL."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d" % srv.server_address[1]


# --------------------------------------------------------------------------
# Server log

# lines that tell of a server process that crashed
CRASH_MARKS = ("terminated by signal", "was terminated by",
               "terminating any other active server processes",
               "server process (PID")


def log_size():
    """Current size of the server log."""
    return os.path.getsize(os.environ["TCC_PGLOG"])


def log_since(offset):
    """Server log text written since offset."""
    with open(os.environ["TCC_PGLOG"], "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def crashes(offset):
    """Log lines since offset that tell of a crashed server process."""
    return [line for line in log_since(offset).splitlines()
            if any(m in line for m in CRASH_MARKS)]


# --------------------------------------------------------------------------
# Cluster control


def pg_ctl(*args, check=True):
    """Run pg_ctl on the test cluster (as postgres when we are root)."""
    cmd = [os.path.join(os.environ["TCC_PGBIN"], "pg_ctl"),
           "-D", os.environ["TCC_PGDATA"]] + list(args)
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    res = subprocess.run(cmd, cwd=os.path.dirname(os.environ["TCC_PGDATA"]),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    if check and res.returncode != 0:
        raise RuntimeError("pg_ctl %s failed:\n%s"
                           % (" ".join(args), res.stdout))
    return res


def restart(mode="fast"):
    """Restart the test cluster (mode fast or immediate); wait until up."""
    pg_ctl("restart", "-w", "-t", "60", "-m", mode,
           "-l", os.environ["TCC_PGLOG"])


def kill_backend(pid, sig=signal.SIGTERM):
    """Send sig to a server process."""
    os.kill(pid, sig)


def workers(dbname=None):
    """How many coordinator workers a database of tcc.database has: the
    setting tcc.workers (1 where the server has no such setting)."""
    n = q1("SELECT current_setting('tcc.workers', true)", dbname=dbname)
    return int(n) if n else 1


def worker_pids(dbname=None):
    """The pids of the coordinator workers of database dbname (None: the
    test database) that run now, lowest first."""
    return [r[0] for r in q("SELECT pid FROM pg_stat_activity"
                            " WHERE backend_type = 'tcc coordinator'"
                            "   AND datname = current_database()"
                            " ORDER BY pid", dbname=dbname)]


def worker_pid(dbname=None):
    """The pid of the coordinator worker of database dbname (None: the
    test database), or None.  With several workers (tcc.workers > 1) it
    is one of them, the lowest pid; worker_pids() gives them all."""
    pids = worker_pids(dbname)
    return pids[0] if pids else None


def wait_worker(timeout=15.0, other_than=None, dbname=None):
    """Wait until every coordinator worker of database dbname (None: the
    test database) runs, tcc.workers of them, none with the pid
    other_than.  Returns worker_pid() when other_than is None, else the
    pid of the worker started last (the one that replaced other_than);
    None on timeout.  With one worker both are its pid."""
    def found():
        n = workers(dbname)
        rows = q("SELECT pid FROM pg_stat_activity"
                 " WHERE backend_type = 'tcc coordinator'"
                 "   AND datname = current_database()"
                 " ORDER BY backend_start DESC, pid", dbname=dbname)
        pids = [r[0] for r in rows]
        if len(pids) != n or other_than in pids:
            return None
        return min(pids) if other_than is None else pids[0]
    return wait_until(found, timeout)
