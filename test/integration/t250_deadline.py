#!/usr/bin/python3
# R3 of docs/guarantees.md (no limbo): an undecided global transaction is
# cancelled when its deadline passes -- not before, and without anyone acting.
#
# tcc_begin('2 s') and one successfully tried branch, in a caller
# transaction that then commits without ever calling tcc_finish.  The
# transaction must be cancelled within deadline + 2 s: tcc.transactions shows
# it cancelled with finished_at no later than that, and the participant got
# the cancel no earlier than the deadline and no confirm.
#
#   explicit, read committed     BEGIN ... COMMIT
#   explicit, repeatable read    the same at REPEATABLE READ
#   autocommit                   each call its own transaction
#   try still in flight          the deadline passes while the try is being
#                                answered (3 s); cancelled all the same, and
#                                a tcc_finish(gid, true) afterwards fails TC003

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Background, Caller, explain_gid,  # noqa: E402
                      keys_consistent, phase_two, sqlstate, wait_status)
from tcclib import done_testing, is_, ok, q, tp_rule  # noqa: E402

TIMEOUT = "2 s"
GRACE = 2.0          # seconds after the deadline


def check(label, gid):
    """Cancelled, not before its deadline and within GRACE after it."""
    deadline = q("SELECT deadline FROM tcc.transactions WHERE gid = %s",
                 (gid,))[0][0]
    wait = max(0.0, deadline.timestamp() - time.time()) + GRACE + 1.0
    reached = wait_status(gid, ("cancelled", "confirmed", "failed"), wait)
    good = is_(reached, "cancelled", "%s: cancelled" % label)
    finished = q("SELECT finished_at FROM tcc.transactions WHERE gid = %s",
                 (gid,))[0][0]
    late = (finished - deadline).total_seconds() if finished else None
    good &= ok(late is not None and late <= GRACE,
               "%s: final within %.0f s of the deadline (%s s)"
               % (label, GRACE, None if late is None else round(late, 2)))
    calls = phase_two(gid)
    good &= ok(calls and all(r["op"] == "cancel" for r in calls),
               "%s: cancel sent, no confirm" % label)
    good &= ok(all(r["at"] >= deadline for r in calls),
               "%s: no cancel before the deadline" % label)
    good &= is_(keys_consistent(gid), True,
                "%s: Idempotency-Key <gid>.<branch>.cancel" % label)
    if not good:
        explain_gid(gid)


def explicit(label, isolation):
    caller = Caller(isolation)
    try:
        gid = caller.begin(TIMEOUT)
        caller.branch(gid, "/t250/%s" % label.replace(" ", "_"))
        caller.commit()
    finally:
        caller.close()
    check(label, gid)


def autocommit(label):
    caller = Caller(autocommit=True)
    try:
        gid = caller.begin(TIMEOUT)
        caller.branch(gid, "/t250/autocommit")
    finally:
        caller.close()
    check(label, gid)


def try_in_flight(label):
    prefix = "/t250/in_flight"
    tp_rule(prefix + "/try", delay_ms=3000)
    caller = Caller(autocommit=True)
    try:
        gid = caller.begin(TIMEOUT)
        slow = Background(lambda: caller.branch(gid, prefix))
        check(label, gid)
        outcome, _ = slow.result(10)
        ok(outcome in ("ok", "error"), "%s: the try returned" % label)
        try:
            caller.finish(gid, True)
            ok(False, "%s: tcc_finish(gid, true) afterwards fails" % label)
        except Exception as e:
            is_(sqlstate(e), "TC003",
                "%s: tcc_finish(gid, true) afterwards fails with TC003"
                % label)
    finally:
        caller.close()
    ok(all(r["op"] == "cancel" for r in phase_two(gid)),
       "%s: still no confirm" % label)


explicit("explicit read committed", "read committed")
explicit("explicit repeatable read", "repeatable read")
autocommit("autocommit")
try_in_flight("try still in flight")

done_testing()
