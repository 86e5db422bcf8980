#!/usr/bin/python3
# The confirm flow at every isolation level and in autocommit.
#
# docs/guarantees.md#isolation (everything holds at REPEATABLE READ and
# SERIALIZABLE, and in autocommit) and rule R2 (the confirm decision becomes
# durable exactly when the caller's transaction commits, atomically with the
# caller's own writes; if it rolls back, no confirm is ever sent).  The
# caller takes its snapshot before tcc_begin, so at REPEATABLE READ and
# SERIALIZABLE the rows the coordinator writes are newer than the snapshot.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_statuses, branch_urls, calls,  # noqa: E402
                      connect, error_of, pgcode, run, run1, wait_final)
from tcclib import diag, done_testing, is_, q, q1  # noqa: E402

q("CREATE TABLE IF NOT EXISTS t110_local (gid uuid PRIMARY KEY,"
  " level text NOT NULL)")


def flow(name, level, commit=True):
    """The whole flow in one transaction at level (None: autocommit).

    commit False: ROLLBACK after tcc_finish(gid, true).
    """
    conn = connect(autocommit=True)
    steps = []

    def step(sql, params=None):
        err = error_of(conn, sql, params)
        if err is not None:
            steps.append("%s: %s %s" % (sql.split("(")[0], err.pgcode,
                                        str(err).strip()))
        return err

    if level is not None:
        run(conn, "BEGIN ISOLATION LEVEL %s" % level)
        run(conn, "SELECT count(*) FROM t110_local")
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    results = []
    for i in (1, 2):
        try:
            results.append(run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                                (gid,) + branch_urls("/t110/%s/%d"
                                                     % (name, i))))
        except Exception as e:  # noqa: BLE001 - reported below
            steps.append("tcc_branch %d: %s %s" % (i, getattr(
                e, "pgcode", None), str(e).strip()))
            break
    if not steps:
        step("INSERT INTO t110_local VALUES (%s, %s)", (gid, name))
    if not steps:
        step("SELECT tcc_finish(%s, true)", (gid,))
    if level is not None:
        if commit and not steps:
            step("COMMIT")
        else:
            run(conn, "ROLLBACK")
    conn.close()
    if not is_(steps, [], "%s: every call succeeded" % name):
        for s in steps:
            diag(s)
    is_(results, [{"ok": True}, {"ok": True}],
        "%s: both tries answered" % name)
    return gid


levels = [("read-committed", "READ COMMITTED"),
          ("repeatable-read", "REPEATABLE READ"),
          ("serializable", "SERIALIZABLE"),
          ("autocommit", None)]

for name, level in levels:
    gid = flow(name, level)
    is_(wait_final(gid, 10), "confirmed", "%s: confirmed" % name)
    is_(branch_statuses(gid), ["confirmed", "confirmed"],
        "%s: both branches confirmed" % name)
    is_([r["branch"] for r in calls(gid, "confirm")], [1, 2],
        "%s: both confirms sent" % name)
    is_(q1("SELECT level FROM t110_local WHERE gid = %s", (str(gid),)),
        name, "%s: the caller's own insert committed" % name)

# R2: ROLLBACK after tcc_finish(gid, true) - no confirm, ever.
for name, level in (("rr-rollback", "REPEATABLE READ"),
                    ("serializable-rollback", "SERIALIZABLE")):
    gid = flow(name, level, commit=False)
    is_(wait_final(gid, 10), "cancelled",
        "%s: the rolled-back decision leaves the transaction cancelled"
        % name)
    is_(calls(gid, "confirm"), [], "%s: no confirm was sent" % name)
    is_([r["branch"] for r in calls(gid, "cancel")], [2, 1],
        "%s: both branches cancelled, in reverse order" % name)
    is_(branch_statuses(gid), ["cancelled", "cancelled"],
        "%s: branch statuses cancelled" % name)
    is_(q1("SELECT count(*) FROM t110_local WHERE gid = %s", (str(gid),)), 0,
        "%s: the caller's insert rolled back with it" % name)
    # the decision vanished with the rollback and the transaction was
    # cancelled since: it cannot confirm any more
    conn = connect()
    is_(pgcode(error_of(conn, "SELECT tcc_finish(%s, true)", (gid,))),
        "TC003", "%s: a later tcc_finish(gid, true) raises TC003" % name)
    conn.close()

q("DROP TABLE t110_local")

done_testing()
