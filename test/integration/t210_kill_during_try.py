#!/usr/bin/python3
# R1 of docs/guarantees.md (intent before effect) and R3 (no limbo) when the
# caller's backend dies while a try is in flight.
#
# The participant holds the try of branch 2 for 3 s; meanwhile the caller's
# backend is killed.  Every branch registered before the kill survives it (R1)
# and is cancelled (R3), and no confirm is ever sent.
#
#   sigkill in transaction    tcc_begin('1 hour') in the killed transaction;
#                             SIGKILL makes the postmaster restart everything.
#                             The beginning transaction aborted, so the
#                             cancel comes promptly after recovery.
#   terminate in transaction  the same with pg_terminate_backend (no crash
#                             restart).
#   sigkill, autocommit       tcc_begin('4 s') committed on its own, each
#                             tcc_branch its own transaction: only the
#                             deadline can cancel, so it must do so shortly
#                             after it.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Background, Caller, cancelled_only, explain_gid,  # noqa: E402
                      kill_caller, status, tries_seen, wait_status)
from tcclib import (diag, done_testing, is_, ok, q1, tp_rule,  # noqa: E402
                    wait_until)

SLOW_TRY_MS = 3000
PROMPT = 10.0       # after recovery, for an aborted beginning transaction
AFTER_DEADLINE = 5.0


def slow_try_started(gid):
    """True once the participant has received the try of branch 2."""
    return any(r["branch"] == 2 for r in tries_seen(gid))


def run_case(label, how, autocommit):
    prefix = "/t210/%s" % label.replace(" ", "_").replace(",", "")
    tp_rule(prefix + "/b/try", delay_ms=SLOW_TRY_MS)
    caller = Caller(autocommit=autocommit)
    slow = None
    try:
        gid = caller.begin("4 s" if autocommit else "1 hour")
        caller.branch(gid, prefix + "/a")
        slow = Background(lambda: caller.branch(gid, prefix + "/b"))
        ok(wait_until(lambda: slow_try_started(gid), 10),
           "%s: the try of branch 2 reached the participant" % label)
        kill_caller(caller, how, label)
        recovered = time.monotonic()
        kind, err = slow.result(SLOW_TRY_MS / 1000.0 + 10)
        is_(kind, "error", "%s: the caller's tcc_branch failed" % label)
    finally:
        caller.close()

    # R1: both intents survived the caller's death
    is_(q1("SELECT count(*) FROM tcc.branches WHERE gid = %s", (gid,)), 2,
        "%s: both branches are recorded" % label)

    if autocommit:
        deadline = q1("SELECT deadline FROM tcc.transactions WHERE gid = %s",
                      (gid,))
        reached = wait_status(gid, ("cancelled", "confirmed", "failed"),
                              max(0.0, (deadline.timestamp() - time.time()))
                              + AFTER_DEADLINE)
        finished = q1("SELECT finished_at FROM tcc.transactions"
                      " WHERE gid = %s", (gid,))
        good = is_(reached, "cancelled",
                   "%s: cancelled by its deadline" % label)
        good &= ok(finished is not None and
                   (finished - deadline).total_seconds() <= AFTER_DEADLINE,
                   "%s: finished within %.0f s of the deadline (%s)"
                   % (label, AFTER_DEADLINE,
                      finished - deadline if finished else None))
    else:
        reached = wait_status(gid, ("cancelled", "confirmed", "failed"),
                              PROMPT)
        good = is_(reached, "cancelled",
                   "%s: cancelled within %.0f s of recovery (took %.1f s)"
                   % (label, PROMPT, time.monotonic() - recovered))
    good &= cancelled_only(gid, label)
    if not good:
        diag("status now: %s" % status(gid))
        explain_gid(gid)


run_case("sigkill in transaction", "sigkill", False)
run_case("terminate in transaction", "terminate", False)
run_case("sigkill autocommit", "sigkill", True)

done_testing()
