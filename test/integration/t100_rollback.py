#!/usr/bin/python3
# The caller's transaction rolls back after its tries succeeded.
#
# R1 of docs/guarantees.md (the branch, with its cancel URL, is durably
# recorded before the try and survives the caller's ROLLBACK, so every tried
# branch gets its cancel) and rule R3 (an undecided transaction is cancelled
# promptly, within seconds, when the transaction that began it has aborted; not
# at its deadline, here one hour away).  The same when the caller's backend is
# terminated in the middle of its transaction, and when it is terminated while
# a try is in progress (the branch and its cancel URL are already recorded
# then, and the branch with the unknown try outcome is cancelled).

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_statuses, branch_urls, calls,  # noqa: E402
                      connect, run, run1, status, tp_rule, transaction,
                      wait_status)
from tcclib import (done_testing, is_, ok, q, q1,  # noqa: E402
                    wait_until)


def scenario(name, end):
    """BEGIN; tcc_begin('1 hour'); two good branches; then end(conn)."""
    conn = connect(autocommit=True)
    run(conn, "BEGIN")
    gid = run1(conn, "SELECT tcc_begin('1 hour')")
    bodies = [run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                   (gid,) + branch_urls("/t100/%s/%d" % (name, i)))
              for i in (1, 2)]
    is_(bodies, [{"ok": True}, {"ok": True}],
        "%s: both tries succeeded" % name)
    is_(status(gid), "trying",
        "%s: the global transaction is visible to others, trying" % name)
    t0 = time.monotonic()
    end(conn)

    st = wait_status(gid, "cancelled", 5)
    elapsed = time.monotonic() - t0
    is_(st, "cancelled", "%s: cancelled within 5 s (%.2f s)"
        % (name, elapsed))
    is_((transaction(gid) or {}).get("decided_by"), "aborted",
        "%s: decided because the beginning transaction aborted" % name)
    is_(branch_statuses(gid), ["cancelled", "cancelled"],
        "%s: both branches survived the rollback and are cancelled" % name)
    is_([r["branch"] for r in calls(gid, "cancel")], [2, 1],
        "%s: each branch got one cancel, in reverse order" % name)
    is_(calls(gid, "confirm"), [], "%s: no confirm was sent" % name)


def rollback(conn):
    run(conn, "ROLLBACK")
    conn.close()


def terminate(conn):
    pid = conn.get_backend_pid()
    is_(q1("SELECT pg_terminate_backend(%s)", (pid,)), True,
        "terminate: the caller's backend is terminated")
    conn.close()


scenario("rollback", rollback)
scenario("terminate", terminate)

# R1 during the try: the branch and its cancel URL are visible to others
# while the participant is still working on the try, and when the caller's
# backend is terminated right then, the branch still gets its cancel.
tp_rule("/t100/mid-try/1/try", delay_ms=3000)
conn = connect(autocommit=True)
pid = conn.get_backend_pid()
run(conn, "BEGIN")
gid = run1(conn, "SELECT tcc_begin('1 hour')")
urls = branch_urls("/t100/mid-try/1")
outcome = {}


def call_try():
    try:
        outcome["result"] = run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                                 (gid,) + urls)
    except Exception as e:  # noqa: BLE001 - the expected way out
        outcome["error"] = e


caller = threading.Thread(target=call_try, daemon=True)
caller.start()
arrived = wait_until(lambda: calls(gid, "try"), 5)
ok(arrived, "mid-try: the try reached the participant")
rows = q("SELECT branch, cancel_url FROM tcc.branches WHERE gid = %s",
         (str(gid),))
is_(rows, [(1, urls[2])], "mid-try: while the try runs, the branch and its"
    " cancel URL are already recorded")
is_(q1("SELECT pg_terminate_backend(%s)", (pid,)), True,
    "mid-try: the caller's backend is terminated during the try")
caller.join(10)
ok(not caller.is_alive() and "result" not in outcome,
   "mid-try: the caller's tcc_branch did not succeed")
t0 = time.monotonic()
st = wait_status(gid, "cancelled", 5)
is_(st, "cancelled", "mid-try: cancelled within 5 s (%.2f s)"
    % (time.monotonic() - t0))
is_([r["branch"] for r in calls(gid, "cancel")], [1],
    "mid-try: the branch whose try outcome is unknown got a cancel")
is_(calls(gid, "confirm"), [], "mid-try: no confirm was sent")

done_testing()
