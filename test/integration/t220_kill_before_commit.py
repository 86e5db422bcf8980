#!/usr/bin/python3
# R2 of docs/guarantees.md (decision = caller's commit): the confirm decision
# becomes durable exactly when the transaction that called tcc_finish(gid,
# true) commits.  Here that transaction never commits: its backend is killed
# after tcc_finish returned 'confirming' and before COMMIT -- by SIGKILL (the
# postmaster restarts everything) and by pg_terminate_backend.  The global
# transaction must end cancelled (R3), no confirm may ever be sent, and the
# tried branches must get their cancel.
#
#   ... in transaction   tcc_begin('1 hour') in the killed transaction: the
#                        beginning transaction aborted, so the cancel comes
#                        promptly.
#   ... begun before     tcc_begin('3 s') committed earlier in its own
#                        transaction: only the deadline cancels it.
#
# Afterwards a fresh tcc_finish(gid, true) must fail with TC003: the lost
# decision does not come back.
#
# Last, the same rule for a partial rollback: tcc_finish(gid, true) inside a
# savepoint that is rolled back, then COMMIT.  The decision went with the
# savepoint, so the transaction (tcc_begin('3 s')) is cancelled at its
# deadline and never confirmed.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Caller, cancelled_only, explain_gid, kill_caller,  # noqa: E402
                      ops_seen, sqlstate, status, wait_status)
from tcclib import diag, done_testing, is_, ok, q1  # noqa: E402

PROMPT = 10.0           # after the kill (and recovery)
AFTER_DEADLINE = 5.0


def final_after_deadline(gid):
    """gid's status once final, waiting up to AFTER_DEADLINE past its
    deadline."""
    deadline = q1("SELECT deadline FROM tcc.transactions WHERE gid = %s",
                  (gid,))
    return wait_status(gid, ("cancelled", "confirmed", "failed"),
                       max(0.0, deadline.timestamp() - time.time())
                       + AFTER_DEADLINE)


def run_case(label, how, begun_before):
    prefix = "/t220/%s" % label.replace(" ", "_")
    if begun_before:
        starter = Caller(autocommit=True)
        try:
            gid = starter.begin("3 s")
        finally:
            starter.close()
    caller = Caller()
    try:
        if not begun_before:
            gid = caller.begin("1 hour")
        caller.branch(gid, prefix + "/a")
        caller.branch(gid, prefix + "/b")
        is_(caller.finish(gid, True), "confirming",
            "%s: tcc_finish(gid, true) returned confirming" % label)
        kill_caller(caller, how, label)
        killed = time.monotonic()
    finally:
        caller.close()

    if begun_before:
        good = is_(final_after_deadline(gid), "cancelled",
                   "%s: cancelled within %.0f s of its deadline"
                   % (label, AFTER_DEADLINE))
    else:
        reached = wait_status(gid, ("cancelled", "confirmed", "failed"),
                              PROMPT)
        good = is_(reached, "cancelled",
                   "%s: cancelled within %.0f s (took %.1f s)"
                   % (label, PROMPT, time.monotonic() - killed))
    good &= cancelled_only(gid, label)

    again = Caller()
    try:
        again.finish(gid, True)
        again.commit()
        good &= ok(False, "%s: a new tcc_finish(gid, true) fails" % label)
    except Exception as e:
        good &= is_(sqlstate(e), "TC003",
                    "%s: a new tcc_finish(gid, true) fails with TC003"
                    % label)
    finally:
        again.close()
    good &= ok("confirm" not in ops_seen(gid) and status(gid) == "cancelled",
               "%s: still cancelled, still no confirm" % label)
    if not good:
        diag("status now: %s" % status(gid))
        explain_gid(gid)


def savepoint_case():
    label = "rolled-back savepoint"
    caller = Caller()
    try:
        gid = caller.begin("3 s")
        caller.branch(gid, "/t220/savepoint/a")
        caller.value("SAVEPOINT before_finish")
        is_(caller.finish(gid, True), "confirming",
            "%s: tcc_finish(gid, true) in the savepoint" % label)
        caller.value("ROLLBACK TO SAVEPOINT before_finish")
        caller.commit()
    finally:
        caller.close()
    good = is_(final_after_deadline(gid), "cancelled",
               "%s: cancelled at its deadline" % label)
    good &= ok("confirm" not in ops_seen(gid),
               "%s: no confirm ever sent" % label)
    if not good:
        explain_gid(gid)


run_case("sigkill in transaction", "sigkill", False)
run_case("terminate in transaction", "terminate", False)
run_case("sigkill begun before", "sigkill", True)
run_case("terminate begun before", "terminate", True)
savepoint_case()

done_testing()
