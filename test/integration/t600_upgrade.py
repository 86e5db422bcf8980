#!/usr/bin/python3
# Upgrading a live coordinator from the released 1.0 to this tree.
#
# README.md#upgrading-from-10 (1.0 is released; 1.1 ships with an upgrade
# script from 1.0), docs/states.md (states), R3 and R5 of docs/guarantees.md
# (nothing stays undecided; pending confirms survive restarts),
# docs/api.md#sqlstates (55000).
#
# Builds version 1.0 from the git history (commit TCC_1_0, the last of 1.0)
# into a private copy of PostgreSQL, starts a cluster of its own with it and
# makes transactions in every state: trying, confirming with a participant
# down, failed, confirmed and cancelled.  Then installs this tree's build
# (the files test/setup.sh installed) over 1.0 and restarts: while the
# database still holds the 1.0 objects, the new library refuses with 55000
# and a hint to run ALTER EXTENSION tcc UPDATE, its worker waits saying so,
# and nothing crashes.  After ALTER EXTENSION tcc UPDATE and with the
# participant back, every transaction settles and new ones work.  (1.2,
# docs/views.md#metrics) The update starts the counters of tcc.metrics from
# a recount of the kept rows, and they stay equal to it as the transactions
# settle.

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (diag, done_testing, is_, like, ok, q,  # noqa: E402
                    tp_requests, tp_rule, tp_url, wait_until)

TCC_1_0 = "d35e15d"     # the last commit of version 1.0
SYSTEM_PG_CONFIG = "/usr/lib/postgresql/15/bin/pg_config"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CRASH_MARKS = ("terminated by signal", "was terminated by",
               "terminating any other active server processes",
               "server process (PID")

suite_bin = os.environ["TCC_PGBIN"]
suite_lib = subprocess.check_output(
    [os.path.join(suite_bin, "pg_config"), "--pkglibdir"], text=True).strip()
suite_share = subprocess.check_output(
    [os.path.join(suite_bin, "pg_config"), "--sharedir"], text=True).strip()
system_lib = subprocess.check_output(
    [SYSTEM_PG_CONFIG, "--pkglibdir"], text=True).strip()
system_share = subprocess.check_output(
    [SYSTEM_PG_CONFIG, "--sharedir"], text=True).strip()

tmp = tempfile.mkdtemp(prefix="t600.", dir=os.environ.get("TCC_TEST_DIR"))
os.chmod(tmp, 0o755)
PG = os.path.join(tmp, "pg")            # DESTDIR of the private copy
LIB = PG + system_lib                   # its pkglibdir
EXT = os.path.join(PG + system_share, "extension")
BIN = os.path.join(os.path.dirname(LIB), "bin")
DATA = os.path.join(tmp, "data")
LOG = os.path.join(tmp, "server.log")
started = False


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


def free_port():
    """A port of PGPORT+1 .. PGPORT+9 that nothing listens on."""
    base = int(os.environ["PGPORT"])
    for port in range(base + 1, base + 10):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return port
    raise RuntimeError("no free port after %d" % base)


PORT = free_port()


def pg_ctl(*args):
    """pg_ctl on this test's cluster."""
    return sh(as_postgres([os.path.join(BIN, "pg_ctl"), "-D", DATA] +
                          list(args)), cwd=tmp)


def cleanup():
    """Stop this test's cluster and remove its files."""
    if started and os.path.exists(os.path.join(DATA, "postmaster.pid")):
        try:
            pg_ctl("stop", "-m", "immediate", "-w")
        except RuntimeError as e:
            diag(str(e))
    shutil.rmtree(tmp, ignore_errors=True)


atexit.register(cleanup)


def connect():
    """A connection to database coord of this test's cluster."""
    conn = psycopg2.connect(host="127.0.0.1", port=PORT, user="postgres",
                            dbname="coord",
                            application_name="t600 upgrade test")
    conn.autocommit = True
    return conn


def sql(query, params=None):
    """Rows of one statement on coord."""
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []
    finally:
        conn.close()


def sql1(query, params=None):
    """The first value of one statement on coord."""
    rows = sql(query, params)
    return rows[0][0] if rows else None


def counters_off():
    """The counter and histogram samples of tcc.metrics that differ from
    the recount of the kept rows (tcc._metric_counts): (sample, counter,
    recount)."""
    rows = sql("SELECT metric, status, kind, op, outcome, le,"
               "       c.value, r.value"
               "  FROM tcc._metric_counts(NULL) r"
               "  FULL JOIN (SELECT * FROM tcc.metrics"
               "              WHERE metric NOT IN (SELECT m FROM unnest(%s::text[]) m)) c"
               "    USING (metric, status, kind, op, outcome, le)",
               (["tcc_pending_transactions", "tcc_failed_transactions",
                 "tcc_attention_transactions", "tcc_calls_in_flight",
                 "tcc_oldest_pending_age_seconds", "tcc_worker_up"],))
    return [(r[:6], r[6], r[7]) for r in rows
            if r[6] is None or r[7] is None
            or abs(r[6] - r[7]) > 1e-9 * max(1.0, abs(r[7]))]


def error_of(query, params=None):
    """The psycopg2 error one statement on coord raises, or None."""
    try:
        sql(query, params)
    except psycopg2.Error as e:
        return e
    return None


def urls(name):
    """Try, confirm and cancel URLs of the test participant for a branch."""
    return tuple(tp_url("/t600/%s/%s" % (name, op))
                 for op in ("try", "confirm", "cancel"))


def begin_branches(names, timeout="1 min"):
    """tcc_begin and one tcc_branch per name, in autocommit; the gid."""
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT tcc_begin(%s)", (timeout,))
            gid = cur.fetchone()[0]
            for name in names:
                cur.execute("SELECT tcc_branch(%s, %s, %s, %s)",
                            (gid,) + urls(name))
        return gid
    finally:
        conn.close()


def status(gid):
    """The status of gid in tcc.transactions."""
    return sql1("SELECT status FROM tcc.transactions WHERE gid = %s", (gid,))


def wait_status(gid, wanted, timeout=20.0):
    """Poll until gid has status wanted; the last status seen."""
    last = [None]

    def check():
        last[0] = status(gid)
        return last[0] == wanted
    wait_until(check, timeout)
    return last[0]


def confirm_attempts(gid):
    """Number of confirm calls of gid in tcc.attempts."""
    return sql1("SELECT count(*) FROM tcc.attempts WHERE gid = %s"
                " AND op = 'confirm'", (gid,))


def set_system(**settings):
    """ALTER SYSTEM SET tcc.<name> = value for each setting, and reload."""
    for name, value in settings.items():
        sql("ALTER SYSTEM SET tcc.%s = %%s" % name, (str(value),))
    sql("SELECT pg_reload_conf()")


def log_text():
    """This cluster's server log."""
    with open(LOG, "rb") as f:
        return f.read().decode("utf-8", "replace")


def crash_lines():
    """Lines of the server log that tell of a crashed server process."""
    return [line for line in log_text().splitlines()
            if any(m in line for m in CRASH_MARKS)]


def agents(gid, op):
    """The User-Agent headers of the participant's op requests of gid."""
    return [{k.lower(): v for k, v in (r["headers"] or {}).items()}
            .get("user-agent") for r in tp_requests(gid) if r["op"] == op]


# ---- version 1.0, built from the git history into a private copy
src = os.path.join(tmp, "src-1.0")
os.mkdir(src)
archive = subprocess.run(["git", "-C", ROOT, "archive", TCC_1_0],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
if not ok(archive.returncode == 0,
          "version 1.0 (commit %s) is in the git history" % TCC_1_0):
    diag(archive.stderr.decode(errors="replace"))
    done_testing()
    sys.exit(0)
subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
build = ["make", "-C", src, "-j2", "PG_CONFIG=" + SYSTEM_PG_CONFIG,
         "with_llvm=no"]
sh(build)

# PostgreSQL finds its share and lib directories relative to its binaries:
# a copy of the suite's installation, without tcc, is self-contained
os.makedirs(os.path.dirname(os.path.dirname(LIB)))
os.makedirs(os.path.dirname(PG + system_share))
shutil.copytree(os.path.dirname(suite_lib), os.path.dirname(LIB),
                symlinks=True, ignore=shutil.ignore_patterns("bitcode"))
shutil.copytree(suite_share, PG + system_share, symlinks=True)
for f in os.listdir(EXT):
    if f == "tcc.control" or f.startswith("tcc--"):
        os.remove(os.path.join(EXT, f))
os.remove(os.path.join(LIB, "tcc.so"))
sh(build + ["install", "DESTDIR=" + PG])
is_(sorted(f for f in os.listdir(EXT) if f.startswith("tcc")),
    ["tcc--1.0.sql", "tcc.control"],
    "the private copy holds version 1.0's extension files only")

if os.geteuid() == 0:
    shutil.chown(tmp, "postgres", "postgres")
sh(as_postgres([os.path.join(BIN, "initdb"), "-D", DATA, "--auth=trust",
                "--username=postgres", "--encoding=UTF8", "--locale=C",
                "--no-sync"]), cwd=tmp)
subprocess.run(as_postgres([os.path.join(BIN, "postgres"), "--single", "-D",
                            DATA, "postgres"]), cwd=tmp,
               input="CREATE DATABASE coord\n", text=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
               check=True)
with open(os.path.join(DATA, "postgresql.conf"), "a") as f:
    f.write("""
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = off
jit = off
log_line_prefix = '%%m [%%p] %%q%%b %%a: '
shared_preload_libraries = 'tcc'
tcc.database = 'coord'
tcc.retry_interval = '200ms'
tcc.retry_max_interval = '1s'
""" % (PORT, tmp))
pg_ctl("start", "-w", "-t", "60", "-l", LOG)
started = True

sql("CREATE EXTENSION tcc")
is_(sql1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.0",
    "1.0: CREATE EXTENSION tcc installs version 1.0")

# ---- transactions in every state, made by version 1.0
for name in ("ok1", "ok2", "ref1", "fail1", "down1", "try1", "try2"):
    tp_rule("/t600/%s/try" % name)
    tp_rule("/t600/%s/confirm" % name)
    tp_rule("/t600/%s/cancel" % name)
tp_rule("/t600/ref2/try", status=409)
tp_rule("/t600/fail1/confirm", status=503)
tp_rule("/t600/down1/confirm", status=503)

confirmed = begin_branches(["ok1", "ok2"])
sql("SELECT tcc_finish(%s, true)", (confirmed,))
is_(wait_status(confirmed, "confirmed"), "confirmed",
    "1.0: a transaction is confirmed")

cancelled = None
conn = connect()
with conn.cursor() as cur:
    cur.execute("SELECT tcc_begin('1 min')")
    cancelled = cur.fetchone()[0]
    cur.execute("SELECT tcc_branch(%s, %s, %s, %s)", (cancelled,) +
                urls("ref1"))
    try:
        cur.execute("SELECT tcc_branch(%s, %s, %s, %s)", (cancelled,) +
                    urls("ref2"))
        refused = None
    except psycopg2.Error as e:
        refused = e.pgcode
conn.close()
is_(refused, "TC001", "1.0: a refused try raises TC001")
is_(wait_status(cancelled, "cancelled"), "cancelled",
    "1.0: that transaction is cancelled")

set_system(max_attempts=2)
failed = begin_branches(["fail1"])
sql("SELECT tcc_finish(%s, true)", (failed,))
is_(wait_status(failed, "failed"), "failed",
    "1.0: a transaction whose confirm is refused twice is failed")
set_system(max_attempts=1000)

down = begin_branches(["down1"])
sql("SELECT tcc_finish(%s, true)", (down,))
ok(wait_until(lambda: confirm_attempts(down) >= 2, 20),
   "1.0: a transaction keeps retrying its confirm, the participant down")
is_(status(down), "confirming", "1.0: that transaction is confirming")

trying = begin_branches(["try1", "try2"], "10 min")
is_(status(trying), "trying", "1.0: a transaction tried, not yet decided")
is_(set(agents(trying, "try")), {"tcc/1.0"},
    "1.0: the tries were sent by the 1.0 library (User-Agent tcc/1.0)")
before = dict(sql("SELECT gid, status FROM tcc.transactions"))

# ---- this tree's build over 1.0, the database still at 1.0
pg_ctl("stop", "-m", "fast", "-w")
for f in os.listdir(os.path.join(suite_share, "extension")):
    if f == "tcc.control" or f.startswith("tcc--"):
        shutil.copy(os.path.join(suite_share, "extension", f), EXT)
shutil.copy(os.path.join(suite_lib, "tcc.so"), LIB)
log_at = os.path.getsize(LOG)
pg_ctl("start", "-w", "-t", "60", "-l", LOG)

is_(sql1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.0",
    "new library: the database still holds the 1.0 objects")
is_(dict(sql("SELECT gid, status FROM tcc.transactions")), before,
    "new library: every transaction is still there, in its state")
ok(wait_until(lambda: sql1("SELECT count(*) FROM pg_stat_activity"
                           " WHERE backend_type = 'tcc coordinator'") == 1,
              20),
   "new library: the coordinator worker runs")
ok(wait_until(lambda: "ALTER EXTENSION tcc UPDATE" in log_text()[log_at:],
              20),
   "new library: the worker says in the log that it waits for"
   " ALTER EXTENSION tcc UPDATE")
for call in ("SELECT tcc_begin()",
             "SELECT tcc_finish('%s', true)" % trying,
             "SELECT tcc_retry('%s')" % failed):
    err = error_of(call)
    if not ok(err is not None and err.pgcode == "55000"
              and "ALTER EXTENSION tcc UPDATE" in (err.diag.message_hint
                                                   or ""),
              "new library, 1.0 objects: %s refuses with 55000 and the hint"
              " to update" % call.split("(")[0]) and err is not None:
        diag("%s: %s (hint: %s)" % (err.pgcode, err.diag.message_primary,
                                    err.diag.message_hint))
is_(sql1("SELECT count(*) FROM tcc.branches"), 8,
    "new library, 1.0 objects: the views still read")
is_(crash_lines(), [], "new library, 1.0 objects: no server process crashed")

# ---- ALTER EXTENSION tcc UPDATE, the participant back: all settle
sql("ALTER EXTENSION tcc UPDATE")
is_(sql1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.2",
    "ALTER EXTENSION tcc UPDATE brings the objects to 1.2")
is_(counters_off(), [],
    "the update starts every counter from the recount of the kept rows")
tp_rule("/t600/fail1/confirm")
tp_rule("/t600/down1/confirm")
ok(wait_until(lambda: "tcc coordinator started" in log_text()[log_at:], 20),
   "after the update, the worker starts its work")
is_(wait_status(down, "confirmed"), "confirmed",
    "the transaction that was confirming is confirmed once its participant"
    " is back")
sql("SELECT tcc_retry(%s)", (failed,))
is_(wait_status(failed, "confirmed"), "confirmed",
    "the failed transaction is confirmed after tcc_retry")
is_(sql1("SELECT tcc_finish(%s, true)", (trying,)), "confirming",
    "the transaction tried under 1.0 is decided with the new library")
is_(wait_status(trying, "confirmed"), "confirmed",
    "and it is confirmed")
is_((status(confirmed), status(cancelled)), ("confirmed", "cancelled"),
    "the final transactions stay as they were")
is_(set(agents(trying, "confirm")), {"tcc/1.2"},
    "the new library sent the confirms (User-Agent tcc/1.2)")

fresh = begin_branches(["ok1"])
sql("SELECT tcc_finish(%s, true)", (fresh,))
is_(wait_status(fresh, "confirmed"), "confirmed",
    "a new transaction after the update is confirmed")
is_(sql1("SELECT count(*) FROM tcc.transactions WHERE status NOT IN"
         " ('confirmed', 'cancelled')"), 0,
    "every transaction has settled")
ok(wait_until(lambda: counters_off() == [], 10),
   "as they settled, every counter kept equal to the recount")
lines = crash_lines()
is_(lines, [], "no server process crashed during the whole upgrade")
like(log_text()[log_at:], r"extension version 1\.0 is installed",
     "the log names the installed version")

done_testing()
