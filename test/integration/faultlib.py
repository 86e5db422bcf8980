"""Shared helpers for the fault-injection tests t2NN_*.py (docs/guarantees.md).

These tests break things on purpose -- roll back, kill backends, kill the
worker, restart the cluster -- and then check the rules R1-R6 from what the
coordinator's views and the test participant's request log (tp.requests)
show.  This module holds what several of them need:

  Caller          one initiator session (begin / branch / finish) that knows
                  its backend pid
  Background      run a blocking call in a thread and collect its outcome
  branch_urls     try / confirm / cancel URLs of one scripted branch
  phase_two       the confirm / cancel requests a gid's participants saw
  wait_status     poll tcc.transactions until a gid reaches a state
  setting         ALTER SYSTEM for the duration of a test, restored after
  sigkill_and_wait  SIGKILL a server process and wait for the crash restart
  explain_gid     what the coordinator and the participant know, for diag

Waits always poll with a deadline (tcclib.wait_until); nothing here sleeps
a fixed time to let something happen.
"""

import os
import signal
import sys
import threading

import psycopg2
import psycopg2.extensions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import tcclib  # noqa: E402
from tcclib import diag, is_, ok, q, q1, wait_until  # noqa: E402

FINAL = ("confirmed", "cancelled", "resolved")

ISOLATION = {
    "read committed": psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED,
    "repeatable read": psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ,
    "serializable": psycopg2.extensions.ISOLATION_LEVEL_SERIALIZABLE,
}

# A crash restart of the test cluster (recovery, worker start) is quick, but
# the machine is shared: allow for it.
RECOVERY_TIMEOUT = 60.0


# --------------------------------------------------------------------------
# Participant


def tp_base():
    """The test participant's base URL."""
    return "http://127.0.0.1:%s" % os.environ["TCC_TP_PORT"]


def branch_urls(prefix):
    """(try, confirm, cancel) URLs of the scripted branch at path prefix."""
    base = tp_base() + prefix
    return (base + "/try", base + "/confirm", base + "/cancel")


def phase_two(gid):
    """The confirm and cancel requests the participants saw for gid."""
    return [r for r in tcclib.tp_requests(str(gid))
            if r["op"] in ("confirm", "cancel")]


def ops_seen(gid):
    """The set of phase-two operations sent for gid ({'confirm'}, ...)."""
    return {r["op"] for r in phase_two(gid)}


def tries_seen(gid):
    """The try requests the participants saw for gid."""
    return [r for r in tcclib.tp_requests(str(gid)) if r["op"] == "try"]


def branches_with(gid, op):
    """Branch numbers that received at least one request of op."""
    return sorted({r["branch"] for r in tcclib.tp_requests(str(gid))
                   if r["op"] == op})


def keys_consistent(gid):
    """True when each branch's phase-two calls all carried the key
    <gid>.<branch>.<op> (docs/protocol.md); else a description of the
    first mismatch."""
    for r in phase_two(gid):
        want = "%s.%s.%s" % (gid, r["branch"], r["op"])
        if r["idem"] != want:
            return "request %s carried %r, expected %r" % (r["id"], r["idem"],
                                                          want)
    return True


# --------------------------------------------------------------------------
# The coordinator's view of a gid


def kill_caller(caller, how, label):
    """Kills the caller's backend: 'sigkill' (the cluster restarts; waits
    for it) or 'terminate' (pg_terminate_backend); records the outcome."""
    if how == "sigkill":
        ok(sigkill_and_wait(caller.pid) is not None,
           "%s: the cluster recovered from SIGKILL of the caller" % label)
    else:
        is_(terminate(caller.pid), True,
            "%s: pg_terminate_backend of the caller" % label)


def cancelled_only(gid, label):
    """R2/R4 checks for a gid that must never confirm: no confirm was sent,
    branches 1 and 2 got their cancel, one Idempotency-Key per branch and op.
    Returns True when all three hold."""
    good = ok("confirm" not in ops_seen(gid),
              "%s: no confirm ever sent" % label)
    good &= is_(branches_with(gid, "cancel"), [1, 2],
                "%s: both branches got their cancel" % label)
    good &= is_(keys_consistent(gid), True,
                "%s: one Idempotency-Key per branch and op" % label)
    return good


def status(gid):
    """A gid's status in tcc.transactions (None if unknown)."""
    return q1("SELECT status FROM tcc.transactions WHERE gid = %s",
              (str(gid),))


def wait_status(gid, wanted, timeout):
    """Poll until gid's status is one of wanted (a str or a tuple); returns
    the status reached, or None when the timeout passed first."""
    if isinstance(wanted, str):
        wanted = (wanted,)

    def reached():
        s = status(gid)
        return s if s in wanted else None
    return wait_until(reached, timeout, 0.05)


def wait_all_final(gids, timeout):
    """Poll until every gid is final; returns the list of those that are
    not final when the timeout passed (empty on success)."""
    gids = [str(g) for g in gids]
    left = []

    def all_final():
        rows = q("SELECT gid::text, status FROM tcc.transactions"
                 " WHERE gid = ANY(%s::uuid[])", (gids,))
        final = {g for g, s in rows if s in FINAL}
        left[:] = [g for g in gids if g not in final]
        return not left
    wait_until(all_final, timeout, 0.1)
    return list(left)


def explain_gid(gid):
    """Print what the coordinator and the participant know about gid."""
    gid = str(gid)
    try:
        diag("transaction %s: %r" % (gid, q(
            "SELECT status, decided_by, deadline, decided_at, finished_at,"
            "       last_error FROM tcc.transactions WHERE gid = %s",
            (gid,))))
        for row in q("SELECT branch, status, attempts, last_http_status,"
                     "       last_error, next_attempt_at"
                     "  FROM tcc.branches WHERE gid = %s ORDER BY branch",
                     (gid,)):
            diag("  branch %r" % (row,))
        for row in q("SELECT branch, op, http_status, error, started_at"
                     "  FROM tcc.attempts WHERE gid = %s"
                     " ORDER BY started_at", (gid,)):
            diag("  attempt %r" % (row,))
        for r in tcclib.tp_requests(gid):
            diag("  participant saw %s branch %s %s -> %s at %s"
                 % (r["op"], r["branch"], r["path"], r["status"], r["at"]))
    except psycopg2.Error as e:
        diag("explain_gid: %s" % str(e).strip())


def log_lines(pattern=None, last=40):
    """The last lines of the server log (matching pattern if given)."""
    try:
        with open(os.environ["TCC_PGLOG"], errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        return ["(no server log: %s)" % e]
    if pattern is not None:
        lines = [line for line in lines if pattern in line]
    return lines[-last:]


def diag_log(pattern=None, last=40):
    """Show the tail of the server log as diagnostics."""
    diag("---- server log%s" % (" lines with %r" % pattern if pattern else ""))
    for line in log_lines(pattern, last):
        diag(line)


# --------------------------------------------------------------------------
# Sessions


def sqlstate(exc):
    """The SQLSTATE of a psycopg2 error, or None."""
    return getattr(exc, "pgcode", None)


class Caller:
    """One initiator session.  Not autocommit unless asked: the first call
    opens a transaction, commit() or rollback() ends it."""

    def __init__(self, isolation="read committed", autocommit=False,
                 application_name="tcc fault test caller"):
        self.conn = psycopg2.connect("", application_name=application_name)
        self.conn.set_session(isolation_level=ISOLATION[isolation],
                              autocommit=autocommit)
        self.pid = self.conn.get_backend_pid()

    def value(self, sql, params=None):
        """Run one statement in this session; its first column, or None."""
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return None
            row = cur.fetchone()
            return row[0] if row else None

    def begin(self, timeout=None, kind=None, business_key=None):
        """tcc_begin; returns the gid as text."""
        return self.value("SELECT tcc_begin(%s::interval, %s, %s)::text",
                          (timeout, kind, business_key))

    def branch(self, gid, prefix, payload="{}", name=None):
        """tcc_branch with the scripted branch at prefix; returns the try's
        answer."""
        try_url, confirm_url, cancel_url = branch_urls(prefix)
        return self.value("SELECT tcc_branch(%s, %s, %s, %s, %s::jsonb, %s)",
                          (gid, try_url, confirm_url, cancel_url, payload,
                           name))

    def finish(self, gid, commit=True):
        """tcc_finish; returns 'confirming' or 'cancelling'."""
        return self.value("SELECT tcc_finish(%s, %s)", (gid, commit))

    def commit(self):
        self.conn.commit()

    def rollback(self):
        self.conn.rollback()

    def close(self):
        """Close the connection, ignoring a connection already gone."""
        try:
            self.conn.close()
        except psycopg2.Error:
            pass


class Background:
    """Runs fn() in a thread; result() waits for it and returns
    ("ok", value) or ("error", exception)."""

    def __init__(self, fn):
        self.outcome = None
        self.thread = threading.Thread(target=self._run, args=(fn,),
                                       daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.outcome = ("ok", fn())
        except Exception as e:  # the outcome is what the test checks
            self.outcome = ("error", e)

    def result(self, timeout):
        """The outcome, or ("running", None) if fn did not end in time."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            return ("running", None)
        return self.outcome


# --------------------------------------------------------------------------
# Cluster


def server_now():
    """The server's clock (timestamptz)."""
    return q1("SELECT clock_timestamp()")


def wait_server_time(ts, timeout):
    """Poll until the server's clock has passed ts; True if it did."""
    return bool(wait_until(
        lambda: q1("SELECT clock_timestamp() > %s", (ts,)), timeout, 0.05))


def wait_cluster(timeout=RECOVERY_TIMEOUT, other_than=None):
    """Wait until the cluster accepts connections and every coordinator
    worker runs (tcc.workers of them), none with the pid other_than;
    returns a worker's pid as tcclib.wait_worker does."""
    if not wait_until(lambda: q1("SELECT 1") == 1, timeout):
        return None
    return tcclib.wait_worker(timeout, other_than=other_than)


def sigkill_and_wait(pid, timeout=RECOVERY_TIMEOUT):
    """SIGKILL a server process, then wait for the crash restart it causes
    to finish: the old workers gone (the restart replaces every one), new
    ones running.  Returns a new worker's pid or None."""
    old_worker = tcclib.worker_pid()
    os.kill(pid, signal.SIGKILL)
    return wait_cluster(timeout, other_than=old_worker)


def terminate(pid):
    """pg_terminate_backend(pid), waiting for the backend to exit."""
    return q1("SELECT pg_terminate_backend(%s, 10000)", (pid,))


def _reload_and_wait(name, shown):
    q("SELECT pg_reload_conf()")
    if shown is not None:
        wait_until(lambda: q1("SELECT current_setting(%s)", (name,)) == shown,
                   10)


class setting:
    """ALTER SYSTEM SET name = value (reloaded) for a with-block; reset
    when the block ends, also on failure."""

    def __init__(self, name, value, shown=None):
        self.name = name
        self.value = value
        self.shown = shown

    def __enter__(self):
        q("ALTER SYSTEM SET %s = '%s'" % (self.name, self.value))
        _reload_and_wait(self.name, self.shown)
        return self

    def __exit__(self, *exc):
        try:
            wait_until(lambda: q1("SELECT 1") == 1, RECOVERY_TIMEOUT)
            q("ALTER SYSTEM RESET %s" % self.name)
            q("SELECT pg_reload_conf()")
        except psycopg2.Error as e:
            diag("could not reset %s: %s" % (self.name, str(e).strip()))
        return False


class max_connections:
    """Raise max_connections (needs a restart) for a with-block; restored
    with another restart when it ends.  The test participant shares at
    most 16 connections among the requests it answers (test/participant.py);
    tests that keep many sessions open at once need more than the
    harness's 100."""

    def __init__(self, n):
        self.n = n
        self.changed = False

    def __enter__(self):
        if int(q1("SHOW max_connections")) < self.n:
            q("ALTER SYSTEM SET max_connections = %d" % self.n)
            self.changed = True
            tcclib.restart("fast")
            wait_cluster()
        return self

    def __exit__(self, *exc):
        if self.changed:
            try:
                wait_until(lambda: q1("SELECT 1") == 1, RECOVERY_TIMEOUT)
                q("ALTER SYSTEM RESET max_connections")
                tcclib.restart("fast")
                wait_cluster()
            except (psycopg2.Error, RuntimeError) as e:
                diag("could not restore max_connections: %s" % e)
        return False
