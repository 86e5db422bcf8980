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

import os
import sys

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tcclib import (diag, done_testing, is_, like, ok,  # noqa: E402
                    tp_requests, tp_rule, tp_url, wait_until)
from upgradelib import OldCluster  # noqa: E402

TCC_1_0 = "d35e15d"     # the last commit of version 1.0

c = OldCluster(TCC_1_0, "t600", "tcc.retry_interval = '200ms'\n"
               "tcc.retry_max_interval = '1s'\n")
sql, sql1, error_of, connect = c.sql, c.sql1, c.error_of, c.connect
set_system, log_text, crash_lines = c.set_system, c.log_text, c.crash_lines
status, wait_status = c.status, c.wait_status


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


def confirm_attempts(gid):
    """Number of confirm calls of gid in tcc.attempts."""
    return sql1("SELECT count(*) FROM tcc.attempts WHERE gid = %s"
                " AND op = 'confirm'", (gid,))


def agents(gid, op):
    """The User-Agent headers of the participant's op requests of gid."""
    return [{k.lower(): v for k, v in (r["headers"] or {}).items()}
            .get("user-agent") for r in tp_requests(gid) if r["op"] == op]


# ---- version 1.0, built from the git history into a private copy
if not ok(c.found, "version 1.0 (commit %s) is in the git history" % TCC_1_0):
    diag(c.why)
    done_testing()
    sys.exit(0)
is_(c.extension_files(), ["tcc--1.0.sql", "tcc.control"],
    "the private copy holds version 1.0's extension files only")

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
log_at = c.install_current()

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
