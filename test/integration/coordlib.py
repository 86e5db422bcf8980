"""Helpers shared by the coordinator-core integration tests (t020-t120).

Built on test/tcclib.py: TAP output, connections, the test participant.
This module adds what the coordinator tests keep needing: participant URLs
for a branch, the state of a global transaction as the tcc views show it,
the requests the participant received per operation, SQLSTATE capture and
temporary sighup settings.

Import it from a test file with

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from coordlib import *
"""

import contextlib
import datetime
import os
import select
import sys
import time

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (connect, diag, q, q1, run, run1,  # noqa: E402
                    tp_requests, tp_rule, tp_url, wait_until)

# tcclib's database and participant helpers are re-exported for convenience.
__all__ = [
    "attempts", "branch_statuses", "branch_urls", "branches", "call_branches",
    "calls", "connect", "drop_roles", "error_of", "gaps", "header",
    "login_roles", "message",
    "notifications", "pgcode", "q", "q1", "resolve_confirming", "run", "run1",
    "sqlstate",
    "status", "system_settings", "tp_requests", "tp_rule", "tp_url",
    "transaction", "ts", "wait_calls", "wait_final", "wait_status",
    "wait_until",
]

# --------------------------------------------------------------------------
# Participant URLs


def branch_urls(prefix, host=None):
    """The try, confirm and cancel URLs of one branch under path prefix.

    prefix "/t020/a/1" gives ".../t020/a/1/try", "/confirm" and "/cancel".
    host replaces 127.0.0.1 (e.g. "localhost", so that the worker cannot
    reuse a kept-alive connection it opened for another test).
    """
    urls = tuple(tp_url("%s/%s" % (prefix, op))
                 for op in ("try", "confirm", "cancel"))
    if host is not None:
        urls = tuple(u.replace("//127.0.0.1:", "//%s:" % host, 1)
                     for u in urls)
    return urls


# --------------------------------------------------------------------------
# Running SQL (run and run1 come from tcclib) and catching errors


def error_of(conn, sql, params=None):
    """Run sql on conn expecting an error: the psycopg2 error, or None.

    The statement's result is dropped when it succeeds.  On an explicit
    transaction the caller decides whether to roll back afterwards.
    """
    try:
        run(conn, sql, params)
    except psycopg2.Error as e:
        return e
    return None


def pgcode(err):
    """The SQLSTATE of a psycopg2 error, or None for no error."""
    return None if err is None else err.pgcode


def sqlstate(conn, sql, params=None):
    """The SQLSTATE sql fails with on conn, or None if it works."""
    return pgcode(error_of(conn, sql, params))


def message(err):
    """The primary message of a psycopg2 error, or None."""
    if err is None or err.diag is None:
        return None
    return err.diag.message_primary


# --------------------------------------------------------------------------
# Coordinator state, as the views show it


def status(gid):
    """The status of gid in tcc.transactions, or None."""
    return q1("SELECT status FROM tcc.transactions WHERE gid = %s",
              (str(gid),))


def transaction(gid):
    """The tcc.transactions row of gid as a dict, or None."""
    rows = q("SELECT row_to_json(t)::jsonb FROM tcc.transactions t"
             " WHERE gid = %s", (str(gid),))
    return rows[0][0] if rows else None


def ts(value):
    """A timestamp from a row_to_json dict (ISO 8601 text) as a datetime."""
    return None if value is None else datetime.datetime.fromisoformat(value)


def branch_statuses(gid):
    """The branches' statuses, in branch order."""
    return [r[0] for r in q("SELECT status FROM tcc.branches WHERE gid = %s"
                            " ORDER BY branch", (str(gid),))]


def branches(gid):
    """The tcc.branches rows of gid as dicts, in branch order."""
    return [r[0] for r in q("SELECT row_to_json(b)::jsonb FROM tcc.branches b"
                            " WHERE gid = %s ORDER BY branch", (str(gid),))]


def attempts(gid, op=None, branch=None):
    """The tcc.attempts rows of gid as dicts, oldest first.

    Each has gid, branch, op, started_at, duration_ms, http_status, error.
    """
    cols = ("gid", "branch", "op", "started_at", "duration_ms",
            "http_status", "error")
    sql = "SELECT %s FROM tcc.attempts WHERE gid = %%s" % ", ".join(cols)
    params = [str(gid)]
    if op is not None:
        sql += " AND op = %s"
        params.append(op)
    if branch is not None:
        sql += " AND branch = %s"
        params.append(branch)
    sql += " ORDER BY started_at, branch"
    return [dict(zip(cols, r)) for r in q(sql, params)]


def wait_status(gid, wanted, timeout=10.0):
    """Poll until gid's status is one of wanted; return the last status.

    wanted: a status or a collection of them.
    """
    if isinstance(wanted, str):
        wanted = (wanted,)
    last = [None]

    def check():
        last[0] = status(gid)
        return last[0] in wanted
    wait_until(check, timeout)
    return last[0]


def wait_final(gid, timeout=10.0):
    """tcc_wait: the status once final (or failed), else when timeout ends."""
    return q1("SELECT tcc_wait(%s, %s * interval '1 s')",
              (str(gid), float(timeout)))


# --------------------------------------------------------------------------
# What the participant received


def calls(gid, op=None, branch=None):
    """Participant requests carrying Tcc-Gid gid, oldest first.

    op and branch filter on the Tcc-Op and Tcc-Branch headers.
    """
    return [r for r in tp_requests(gid)
            if (op is None or r["op"] == op)
            and (branch is None or r["branch"] == branch)]


def call_branches(gid, op):
    """The Tcc-Branch of each op request of gid, in arrival order."""
    return [r["branch"] for r in calls(gid, op)]


def wait_calls(gid, op, n, timeout=10.0):
    """Poll until the participant has at least n op requests of gid."""
    return wait_until(lambda: len(calls(gid, op)) >= n, timeout)


def header(req, name):
    """A recorded request's header, looked up case-insensitively."""
    for k, v in (req.get("headers") or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def gaps(reqs):
    """Seconds between consecutive recorded requests' arrival times."""
    return [(b["at"] - a["at"]).total_seconds()
            for a, b in zip(reqs, reqs[1:])]


# --------------------------------------------------------------------------
# Roles


def drop_roles(roles):
    """Drop those of roles that exist, and what they own or were granted."""
    for r in roles:
        if q1("SELECT count(*) FROM pg_roles WHERE rolname = %s", (r,)):
            q("DROP OWNED BY %s" % r)
            q("DROP ROLE %s" % r)


def login_roles(roles, grants, granted):
    """Make roles anew (drop_roles, then CREATE ROLE ... LOGIN); run
    grants, SQL with {r} for the role, for each role in granted."""
    drop_roles(roles)
    for r in roles:
        q("CREATE ROLE %s LOGIN" % r)
    for r in granted:
        q(grants.format(r=r))


# --------------------------------------------------------------------------
# Settings and notifications


@contextlib.contextmanager
def system_settings(**settings):
    """ALTER SYSTEM SET the tcc.<name> settings and reload, for a block.

    Waits until a new session sees every value; afterwards resets them
    (ALTER SYSTEM RESET) and reloads again, also when the block fails.
    """
    before = {k: q1("SELECT current_setting(%s)", ("tcc." + k,))
              for k in settings}
    try:
        for k, v in settings.items():
            q("ALTER SYSTEM SET tcc.%s = %s" % (k, "%s"), (str(v),))
        q("SELECT pg_reload_conf()")
        for k, v in settings.items():
            if not wait_until(lambda: q1("SELECT current_setting(%s)",
                                         ("tcc." + k,)) == str(v), 10):
                raise RuntimeError("tcc.%s did not become %s" % (k, v))
        yield
    finally:
        for k in settings:
            q("ALTER SYSTEM RESET tcc.%s" % k)
        q("SELECT pg_reload_conf()")
        for k, v in before.items():
            if not wait_until(lambda: q1("SELECT current_setting(%s)",
                                         ("tcc." + k,)) == v, 10):
                diag("tcc.%s was not restored to %s" % (k, v))


def notifications(conn, until, timeout=10.0):
    """Collect NOTIFY payloads on a LISTENing autocommit conn.

    Returns the payloads received once until(payloads) is true, or all of
    them when timeout seconds pass first.
    """
    got = []
    deadline = time.monotonic() + timeout
    while True:
        conn.poll()
        while conn.notifies:
            got.append(conn.notifies.pop(0).payload)
        if until(got):
            return got
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        select.select([conn], [], [], min(left, 0.5))


def resolve_confirming(url):
    """Marks resolved every transaction still confirming towards url, so
    the worker calls it no more; rows the worker holds locked are left for
    the next round, so neither waits for the other."""
    for _ in range(1000):
        left = q1("""
            WITH r AS (
              UPDATE tcc._gtx SET status = 'resolved', finished_at = now()
               WHERE gid IN (SELECT g.gid FROM tcc._gtx g
                               JOIN tcc._branch b USING (gid)
                              WHERE b.confirm_url = %s AND g.status = 'confirming'
                                FOR UPDATE OF g SKIP LOCKED)
              RETURNING 1)
            SELECT (SELECT count(*) FROM tcc._gtx g JOIN tcc._branch b USING (gid)
                     WHERE b.confirm_url = %s AND g.status = 'confirming')
                   - (SELECT count(*) FROM r)""", (url, url))
        if left == 0:
            return
        time.sleep(0.1)


# ------------------------------------------------------------ metrics


# the samples of tcc.metrics that are gauges (read live), not counters
METRIC_GAUGES = ("tcc_pending_transactions", "tcc_failed_transactions",
                 "tcc_attention_transactions", "tcc_oldest_pending_age_seconds",
                 "tcc_calls_in_flight", "tcc_worker_up")


def metrics_kept(source="tcc.metrics"):
    """The counter and histogram samples of source (tcc.metrics, or
    tcc_metrics()), {(metric, labels...): value}."""
    return {tuple(r[:6]): r[6] for r in q("SELECT * FROM %s" % source)
            if r[0] not in METRIC_GAUGES}


def metrics_recount():
    """The same samples, recounted from the kept rows."""
    return {tuple(r[:6]): r[6]
            for r in q("SELECT * FROM tcc._metric_counts(NULL)")}


def metrics_moved(a, b):
    """{sample: b - a} for the samples that differ (sums of seconds are
    floats added in another order: a relative 1e-9 is no difference)."""
    out = {}
    for k in set(a) | set(b):
        d = b.get(k, 0.0) - a.get(k, 0.0)
        if abs(d) > 1e-9 * max(1.0, abs(b.get(k, 0.0))):
            out[k] = round(d, 6)
    return out
