#!/usr/bin/python3
# DTM's own participant code against tcc (docs/protocol.md#dtm-protocol-mode,
# README.md#moving-from-dtm): test/dtmbank is a bank written as DTM's
# documentation shows its TCC participants, in Go with DTM's client library
# (dtmcli) and its branch barrier on PostgreSQL (DTM's own barrier table).
# The same five transfers are driven once by tcc, with branches of protocol
# 'dtm', and once by DTM's server (v1.19.0, installed from the Go module
# proxy by test/dtm_install.sh, its store a database of the test cluster)
# with DTM's Go initiator (dtmcli.TccGlobalTransaction2):
#
#   confirm     both tries succeed: confirmed, the money moved once
#   refused     bank 2 refuses its try (409 FAILURE): cancelled; bank 1's
#               cancel gives the money back, bank 2's is an empty rollback
#               (its try's barrier row rolled back with its refusal)
#   empty       bank 2's try never arrives (nothing listens at its try URL):
#               cancelled, bank 2's cancel is an empty rollback
#   hanging     bank 2's try is held 4 s, past the coordinator's limit (tcc:
#               the session's tcc.request_timeout of 1 s; DTM: the
#               transaction's TimeoutToFail of 1 s): cancelled, its cancel
#               an empty rollback, the late try does nothing
#               (docs/protocol.md#delivery: empty rollback, hanging try)
#   duplicate   bank 1 answers its first confirm ONGOING after the work
#               committed: the confirm is delivered again and the barrier
#               skips it (confirm and cancel are delivered at least once)
#
# Under both coordinators: the same outcome, the same requests at the bank
# (route, branch_id, op, whether it acted, HTTP status), the same barrier
# rows and the same balances, each also checked against what is written
# here.  The initiators see different errors (tcc: SQLSTATEs; DTM: its
# client's errors); each is checked against its own expectation.

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from golib import go_command, go_env  # noqa: E402
from tcclib import (connect, diag, done_testing, is_, ok, q, q1,  # noqa: E402
                    run, run1, wait_until)

import psycopg2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PSQL = os.path.join(os.environ["TCC_PGBIN"], "psql")
BANK_DB, STORE_DB = "t335_bank", "t335_dtm"

tmp = tempfile.mkdtemp(prefix="t335.", dir=os.environ.get("TCC_TEST_DIR"))
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stop(p):
    """Stops a process this test started, by its pid."""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cleanup():
    for p in procs:
        stop(p)
    for db in (BANK_DB, STORE_DB):
        q("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
    shutil.rmtree(tmp, ignore_errors=True)


def step(name, cmd, env=None, timeout=900, cwd=None):
    """Runs a build or install step; True if it succeeded."""
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        rc, out = r.returncode, r.stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        rc, out = -1, str(e)
    if rc != 0:
        diag("%s: %s exited %s:\n%s" % (name, " ".join(cmd), rc, out))
    return ok(rc == 0, "%s (%.0f s)" % (name, time.monotonic() - t0))


def psql_file(db, path):
    subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db,
                    "-f", path], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL,
                   env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))


def start(name, cmd, env=None):
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                         stdout=open(os.path.join(tmp, name + ".log"), "w"),
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# ---------------------------------------------------------------- set-up

go, why = go_command()
if go is None:
    ok(False, "a go command fit to build test/dtmbank: %s" % why)
    done_testing()
    sys.exit(0)
env = go_env(go)
for db in (BANK_DB, STORE_DB):
    q("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
    q("CREATE DATABASE %s" % db)
try:
    built = step("dtmbank builds with dtmcli and pgx from the Go module proxy",
                 [go, "build", "-o", os.path.join(tmp, "dtmbank"), "."],
                 env, cwd=os.path.join(ROOT, "test", "dtmbank"))
    installed = step("DTM's server installs from the Go module proxy",
                     ["bash", os.path.join(ROOT, "test", "dtm_install.sh"),
                      os.path.join(tmp, "dtm")], env)
    if not (built and installed):
        raise RuntimeError("cannot go on without dtmbank and DTM's server")
    with open(os.path.join(tmp, "dtm", "module")) as f:
        sqls = os.path.join(f.read().strip(), "sqls")
    # DTM's own schemas, from the module's SQL files in the module cache
    psql_file(BANK_DB, os.path.join(sqls, "dtmcli.barrier.postgres.sql"))
    psql_file(STORE_DB, os.path.join(sqls, "dtmsvr.storage.postgres.sql"))

    bank_port, dtm_port = free_port(), free_port()
    busi = "http://127.0.0.1:%d/api/busi" % bank_port
    dtm = "http://127.0.0.1:%d/api/dtmsvr" % dtm_port
    pidfile = os.path.join(tmp, "dtmbank.pid")
    start("dtmbank", [os.path.join(tmp, "dtmbank"), "serve", "-port",
                      str(bank_port), "-pidfile", pidfile, "-dsn",
                      "host=127.0.0.1 port=%s dbname=%s user=postgres"
                      % (os.environ["PGPORT"], BANK_DB)])
    dtm_env = dict(os.environ, STORE_DRIVER="postgres", STORE_HOST="127.0.0.1",
                   STORE_PORT=os.environ["PGPORT"], STORE_USER="postgres",
                   STORE_PASSWORD="unused", STORE_DB=STORE_DB,
                   STORE_SCHEMA="public", HTTP_PORT=str(dtm_port),
                   GRPC_PORT=str(free_port()), JSON_RPC_PORT=str(free_port()),
                   TRANS_CRON_INTERVAL="1", LOG_LEVEL="warn")
    start("dtm", [os.path.join(tmp, "dtm", "bin", "dtm")], dtm_env)
    if not ok(wait_until(lambda: os.path.exists(pidfile), 30),
              "dtmbank listens") or \
            not ok(wait_until(lambda: http_ok(dtm + "/newGid"), 30, 0.2),
                   "DTM's server answers"):
        raise RuntimeError("a server did not start")
except Exception:
    for name in ("dtmbank", "dtm"):
        path = os.path.join(tmp, name + ".log")
        if os.path.exists(path):
            diag("%s log:\n%s" % (name, open(path).read()[-3000:]))
    cleanup()
    raise

bank = connect(dbname=BANK_DB)
closed = "http://127.0.0.1:%d/api/busi/TransInTry" % free_port()

# ---------------------------------------------------------------- drivers


def by_tcc(scenario, to):
    """One transfer driven by tcc; (gid, what the initiator saw)."""
    conn = connect()
    try:
        if scenario == "hanging":
            run(conn, "SET tcc.request_timeout = '1s'")
        run(conn, "BEGIN")
        gid = run1(conn, "SELECT tcc_begin(kind => 't335')")
        try:
            for n, (route, account) in enumerate(
                    (("TransOut", 1), ("TransIn", to)), 1):
                try_url = busi + "/%sTry" % route
                if route == "TransIn" and scenario == "empty":
                    try_url = closed
                run(conn, "SELECT tcc_branch(%s, %s, %s, %s, %s, name => %s,"
                    " protocol => 'dtm')",
                    (gid, try_url, busi + "/%sConfirm" % route,
                     busi + "/%sCancel" % route,
                     json.dumps({"account": account, "amount": "30.00"}),
                     route))
            run(conn, "SELECT tcc_finish(%s)", (gid,))
            run(conn, "COMMIT")
            seen = "ok"
        except psycopg2.Error as e:
            run(conn, "ROLLBACK")
            seen = e.pgcode
    finally:
        conn.close()
    status = q1("SELECT tcc_wait(%s, '30 s')", (gid,))
    return str(gid), seen, status


def dtm_status(gid):
    s = q1("SELECT status FROM trans_global WHERE gid = %s", (gid,),
           dbname=STORE_DB)
    return s if s in ("succeed", "failed") else None


def by_dtm(scenario, to):
    """One transfer driven by DTM's server and Go client."""
    cmd = [os.path.join(tmp, "dtmbank"), "tcc", "-dtm", dtm, "-busi", busi,
           "-to", str(to)]
    if scenario == "empty":
        cmd += ["-try-in", closed]
    if scenario == "hanging":
        cmd += ["-timeout-to-fail", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out["error"]:
        diag("dtm %s: %s" % (scenario, out["error"].splitlines()[0][:200]))
    seen = "ok" if not out["error"] else out.get("failure", "error")
    status = wait_until(lambda: dtm_status(out["gid"]), 30, 0.1)
    status = {"succeed": "confirmed", "failed": "cancelled"}.get(status,
                                                                status)
    return out["gid"], seen, status


# ---------------------------------------------------------------- scenarios

# scenario: (to account, hook path, hook, requests at the bank as
# (route, branch_id, op, acted, HTTP status), barrier rows (branch_id, op,
# reason), outcome, balances of A and B after it)
OK = 200
SCENARIOS = [
    ("confirm", 2, None, None,
     [("TransInConfirm", "02", "confirm", True, OK),
      ("TransInTry", "02", "try", True, OK),
      ("TransOutConfirm", "01", "confirm", True, OK),
      ("TransOutTry", "01", "try", True, OK)],
     [("01", "confirm", "confirm"), ("01", "try", "try"),
      ("02", "confirm", "confirm"), ("02", "try", "try")],
     "confirmed", ("970.00/0.00", "30.00/0.00")),
    # both cancel every registered branch, the refused one too (an empty
    # rollback at the bank): tcc does so for a branch of protocol 'dtm'
    # (docs/states.md#phase-two)
    ("refused", 3, None, None,
     [("TransInCancel", "02", "cancel", False, OK),
      ("TransInTry", "02", "try", False, 409),
      ("TransOutCancel", "01", "cancel", True, OK),
      ("TransOutTry", "01", "try", True, OK)],
     [("01", "cancel", "cancel"), ("01", "try", "try"),
      ("02", "cancel", "cancel"), ("02", "try", "cancel")],
     "cancelled", ("970.00/0.00", "30.00/0.00")),
    ("empty", 2, None, None,
     [("TransInCancel", "02", "cancel", False, OK),
      ("TransOutCancel", "01", "cancel", True, OK),
      ("TransOutTry", "01", "try", True, OK)],
     [("01", "cancel", "cancel"), ("01", "try", "try"),
      ("02", "cancel", "cancel"), ("02", "try", "cancel")],
     "cancelled", ("970.00/0.00", "30.00/0.00")),
    ("hanging", 2, "/api/busi/TransInTry", "delay_ms = 4000",
     [("TransInCancel", "02", "cancel", False, OK),
      ("TransInTry", "02", "try", False, OK),
      ("TransOutCancel", "01", "cancel", True, OK),
      ("TransOutTry", "01", "try", True, OK)],
     [("01", "cancel", "cancel"), ("01", "try", "try"),
      ("02", "cancel", "cancel"), ("02", "try", "cancel")],
     "cancelled", ("970.00/0.00", "30.00/0.00")),
    ("duplicate", 2, "/api/busi/TransOutConfirm", "ongoing = 1",
     [("TransInConfirm", "02", "confirm", True, OK),
      ("TransInTry", "02", "try", True, OK),
      ("TransOutConfirm", "01", "confirm", False, OK),
      ("TransOutConfirm", "01", "confirm", True, 425),
      ("TransOutTry", "01", "try", True, OK)],
     [("01", "confirm", "confirm"), ("01", "try", "try"),
      ("02", "confirm", "confirm"), ("02", "try", "try")],
     "confirmed", ("940.00/0.00", "60.00/0.00")),
]
# what each initiator sees: tcc's SQLSTATE, or DTM's client error
SEEN = {"tcc": {"confirm": "ok", "refused": "TC001", "empty": "TC002",
                "hanging": "TC002", "duplicate": "ok"},
        "dtm": {"confirm": "ok", "refused": "FAILURE", "empty": "error",
                "hanging": "FAILURE", "duplicate": "ok"}}


def requests(gid, n):
    """The bank's requests of a gid, once there are n of them (sorted)."""
    def got():
        rows = run(bank, "SELECT split_part(path, '/', 4), branch_id, op,"
                   " acted, status FROM bank.requests WHERE gid = %s"
                   " ORDER BY 1, 2, 3, 4, 5", (gid,))
        return rows if len(rows) >= n else None
    return [tuple(r) for r in (wait_until(got, 20, 0.1) or run(
        bank, "SELECT split_part(path, '/', 4), branch_id, op, acted, status"
        " FROM bank.requests WHERE gid = %s ORDER BY 1, 2, 3, 4, 5", (gid,)))]


results = {}
try:
    for coordinator, drive in (("tcc", by_tcc), ("dtm", by_dtm)):
        run(bank, "TRUNCATE bank.accounts, bank.hooks, bank.requests,"
            " dtm_barrier.barrier")
        run(bank, "INSERT INTO bank.accounts VALUES (1, 1, 1000, 0),"
            " (2, 2, 0, 0)")
        for (name, to, path, hook, want_requests, want_barrier, want_status,
             want_balances) in SCENARIOS:
            if path:
                run(bank, "INSERT INTO bank.hooks (path) VALUES (%s)", (path,))
                run(bank, "UPDATE bank.hooks SET %s WHERE path = %%s" % hook,
                    (path,))
            if isinstance(want_requests, dict):
                want_requests = want_requests[coordinator]
                want_barrier = want_barrier[coordinator]
            t0 = time.monotonic()
            gid, seen, status = drive(name, to)
            got_requests = requests(gid, len(want_requests))
            run(bank, "TRUNCATE bank.hooks")
            barrier = [tuple(r) for r in run(
                bank, "SELECT branch_id, op, reason FROM dtm_barrier.barrier"
                " WHERE gid = %s ORDER BY 1, 2, 3", (gid,))]
            balances = tuple(
                run1(bank, "SELECT balance || '/' || frozen FROM bank.accounts"
                     " WHERE bank = %s AND id = %s", (b, b)) for b in (1, 2))
            label = "%s, %s:" % (coordinator, name)
            is_(status, want_status, "%s the transfer is %s (%.1f s)"
                % (label, want_status, time.monotonic() - t0))
            is_(seen, SEEN[coordinator][name],
                "%s the initiator sees %s" % (label, SEEN[coordinator][name]))
            is_(got_requests, want_requests, "%s the bank's requests: route,"
                " branch_id, op, acted, HTTP status" % label)
            is_(barrier, want_barrier, "%s DTM's barrier rows" % label)
            is_(balances, want_balances, "%s balances A %s, B %s"
                % ((label,) + want_balances))
            results[coordinator, name] = (status, got_requests, barrier,
                                          balances)
    for name in [s[0] for s in SCENARIOS]:
        is_(results.get(("tcc", name)), results.get(("dtm", name)),
            "%s: tcc and DTM's server leave the bank the same" % name)
finally:
    bank.close()
    cleanup()

done_testing()
