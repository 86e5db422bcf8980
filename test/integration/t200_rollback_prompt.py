#!/usr/bin/python3
# R3 of docs/guarantees.md (no limbo): an undecided global transaction is
# cancelled promptly -- within seconds, not at its deadline -- when the
# transaction that began it aborts.  Also R2 (a ROLLBACK after tcc_finish(gid,
# true) means no confirm is ever sent) and docs/states.md (cancel goes to every
# tried branch, in reverse registration order), at every isolation level
# (docs/guarantees.md, "Isolation").
#
# Each case: BEGIN; tcc_begin('1 hour'); two branches tried; then the
# transaction ends without committing (ROLLBACK, an error, or the client
# going away).  Both branches must be cancelled within 5 s, and no confirm
# may reach a participant.
#
# The last case repeats the plain rollback while 1000 other global
# transactions are open and undecided (begun, committed, deadline in an hour,
# earlier than ours): a busy coordinator must still notice the abort
# promptly.  They are cancelled afterwards.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Caller, branches_with, explain_gid,  # noqa: E402
                      keys_consistent, ops_seen, phase_two, wait_all_final,
                      wait_status)
from tcclib import done_testing, is_, ok  # noqa: E402

PROMPT = 5.0        # seconds from the end of the caller's transaction


def check_cancelled(label, gid, ended_at):
    """The gid is cancelled within PROMPT of ended_at, with a cancel to
    each branch in reverse order and no confirm."""
    reached = wait_status(gid, ("cancelled", "confirmed", "failed"),
                          PROMPT - (time.monotonic() - ended_at))
    took = time.monotonic() - ended_at
    good = is_(reached, "cancelled",
               "%s: cancelled within %.0f s (took %.1f s)"
               % (label, PROMPT, took))
    ops = ops_seen(gid)
    good &= ok("confirm" not in ops, "%s: no confirm sent" % label)
    good &= is_(branches_with(gid, "cancel"), [1, 2],
                "%s: cancel sent to both tried branches" % label)
    first = {}
    for r in phase_two(gid):
        first.setdefault(r["branch"], r["id"])
    good &= ok(first.get(2, 0) < first.get(1, 0),
               "%s: branch 2 cancelled before branch 1" % label)
    good &= is_(keys_consistent(gid), True,
                "%s: Idempotency-Key <gid>.<branch>.cancel" % label)
    if not good:
        explain_gid(gid)


def run_case(label, isolation, ending, finish_first, timeout="1 hour"):
    """One global transaction begun and tried in a caller transaction that
    then ends without committing, as ending says."""
    prefix = "/t200/%s" % label.replace(" ", "_").replace(",", "")
    caller = Caller(isolation)
    try:
        gid = caller.begin(timeout)
        caller.branch(gid, prefix + "/a")
        caller.branch(gid, prefix + "/b")
        if finish_first:
            is_(caller.finish(gid, True), "confirming",
                "%s: tcc_finish(gid, true) before the abort" % label)
        if ending == "rollback":
            caller.rollback()
        elif ending == "error":
            try:
                caller.value("SELECT 1 / 0")
            except Exception:
                pass
            caller.rollback()
        elif ending == "disconnect":
            caller.close()
        ended = time.monotonic()
    finally:
        caller.close()
    check_cancelled(label, gid, ended)


for iso in ("read committed", "repeatable read", "serializable"):
    run_case("%s, rollback" % iso, iso, "rollback", False)
    run_case("%s, rollback after finish" % iso, iso, "rollback", True)

run_case("error then rollback", "read committed", "error", False)
run_case("client disconnects", "read committed", "disconnect", False)
run_case("client disconnects after finish", "read committed", "disconnect",
         True)

others = []
bulk = Caller(autocommit=True)
try:
    for _ in range(1000):
        others.append(bulk.begin("1 hour"))
    run_case("rollback among 1000 undecided", "read committed", "rollback",
             False, "2 hours")
finally:
    for gid in others:
        bulk.finish(gid, False)
    bulk.close()
    is_(wait_all_final(others, 60), [], "the 1000 others cancelled again")

done_testing()
