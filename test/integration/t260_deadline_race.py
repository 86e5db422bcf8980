#!/usr/bin/python3
# R4 of docs/guarantees.md (one outcome): "A timeout cancel never overrides a
# tcc_finish(gid, true) whose transaction is still in progress: exactly one
# of them wins."  And the worker does not wait for that transaction: while
# it holds the gid, other global transactions still settle promptly.
#
#   held past the deadline    tcc_begin('3 s') and a tried branch, committed;
#                             then tcc_finish(gid, true) in a transaction that
#                             stays open until 2 s after the deadline, then
#                             COMMIT -- at each isolation level.  Either the
#                             COMMIT succeeds and the gid ends confirmed, or
#                             the finish / COMMIT fails with TC003 and it ends
#                             cancelled; never both a confirm and a cancel.
#                             While it is open, another gid is confirmed
#                             within 5 s and an undecided one with a 1 s
#                             deadline is cancelled within 2 s of it.
#   too late                  tcc_finish(gid, true) after the worker cancelled
#                             at the deadline: TC003, and no confirm.
#   close races               20 gids with a 1.5 s deadline, each decided in
#                             its own session at a moment spread around its
#                             deadline and committed a little later: for each,
#                             the COMMIT succeeded exactly when it ends
#                             confirmed, and its participants saw one outcome.

import datetime
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Caller, explain_gid, ops_seen, sqlstate,  # noqa: E402
                      status, wait_all_final, wait_server_time, wait_status)
from tcclib import diag, done_testing, is_, ok, q1, wait_until  # noqa: E402

SIDE_CONFIRM = 5.0
GRACE = 2.0


def begun_and_tried(prefix, timeout):
    """A gid with one tried branch, begun and tried in autocommit."""
    caller = Caller(autocommit=True)
    try:
        gid = caller.begin(timeout)
        caller.branch(gid, prefix)
    finally:
        caller.close()
    return gid


def _seconds(s):
    return datetime.timedelta(seconds=s)


def deadline_of(gid):
    return q1("SELECT deadline FROM tcc.transactions WHERE gid = %s", (gid,))


def side_traffic(label):
    """While a gid is held: a decided gid confirms promptly and an
    undecided one is cancelled at its deadline."""
    prefix = "/t260/side/%s" % label.replace(" ", "_")
    caller = Caller()
    try:
        gid = caller.begin("1 min")
        caller.branch(gid, prefix + "/confirmed")
        caller.finish(gid, True)
        caller.commit()
    finally:
        caller.close()
    t0 = time.monotonic()
    is_(wait_status(gid, ("confirmed", "cancelled", "failed"), SIDE_CONFIRM),
        "confirmed", "%s: meanwhile another gid confirmed within %.0f s"
        " (took %.1f s)" % (label, SIDE_CONFIRM, time.monotonic() - t0))

    other = begun_and_tried(prefix + "/undecided", "1 s")
    limit = deadline_of(other).timestamp() - time.time() + GRACE
    is_(wait_status(other, ("confirmed", "cancelled", "failed"), limit),
        "cancelled", "%s: meanwhile an undecided gid is cancelled within"
        " %.0f s of its deadline" % (label, GRACE))


def held_past_deadline(isolation):
    label = "held past the deadline, %s" % isolation
    gid = begun_and_tried("/t260/held/%s" % isolation.replace(" ", "_"),
                          "3 s")
    caller = Caller(isolation)
    committed = False
    error = None
    try:
        try:
            is_(caller.finish(gid, True), "confirming",
                "%s: tcc_finish(gid, true) before the deadline" % label)
            side_traffic(label)
            deadline = deadline_of(gid)
            ok(wait_server_time(deadline + _seconds(GRACE), 30),
               "%s: the deadline passed %.0f s ago, still open"
               % (label, GRACE))
            caller.commit()
            committed = True
        except Exception as e:
            error = e
            caller.rollback()
    finally:
        caller.close()

    final = wait_status(gid, ("confirmed", "cancelled"), 15)
    ops = ops_seen(gid)
    good = ok(not ({"confirm", "cancel"} <= ops),
              "%s: never both a confirm and a cancel (%s)"
              % (label, sorted(ops)))
    if committed:
        good &= is_(final, "confirmed",
                    "%s: COMMIT succeeded, so it is confirmed" % label)
        good &= is_(ops, {"confirm"}, "%s: only confirms sent" % label)
    else:
        good &= is_(sqlstate(error), "TC003",
                    "%s: the decision failed with TC003" % label)
        good &= is_(final, "cancelled",
                    "%s: the decision failed, so it is cancelled" % label)
        good &= is_(ops, {"cancel"}, "%s: only cancels sent" % label)
    if not good:
        diag("error: %r" % (error,))
        explain_gid(gid)


def too_late():
    label = "too late"
    gid = begun_and_tried("/t260/too_late", "1 s")
    is_(wait_status(gid, ("cancelled", "confirmed", "failed"), 10),
        "cancelled", "%s: cancelled at the deadline" % label)
    caller = Caller()
    try:
        caller.finish(gid, True)
        caller.commit()
        ok(False, "%s: tcc_finish(gid, true) fails" % label)
    except Exception as e:
        is_(sqlstate(e), "TC003",
            "%s: tcc_finish(gid, true) fails with TC003" % label)
    finally:
        caller.close()
    is_(ops_seen(gid), {"cancel"}, "%s: only cancels sent" % label)


def close_races(n, seed):
    label = "close races"
    rng = random.Random(seed)
    gids = [begun_and_tried("/t260/race/%d" % i, "1500 ms") for i in range(n)]
    plans = [(gid, rng.uniform(-0.4, 0.4), rng.uniform(0.0, 0.5))
             for gid in gids]
    results = {}

    def decide(gid, offset, hold):
        caller = Caller()
        try:
            deadline = deadline_of(gid)
            wait_server_time(deadline + _seconds(offset), 30)
            caller.finish(gid, True)
            # the transaction stays open a while after deciding
            end = time.monotonic() + hold
            wait_until(lambda: time.monotonic() >= end, hold + 1, 0.01)
            caller.commit()
            results[gid] = ("committed", None)
        except Exception as e:
            results[gid] = ("failed", sqlstate(e))
        finally:
            caller.close()

    threads = [threading.Thread(target=decide, args=p) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    left = wait_all_final(gids, 15)
    is_(left, [], "%s: all %d final" % (label, n))
    bad = []
    for gid in gids:
        outcome, code = results.get(gid, ("missing", None))
        ops = ops_seen(gid)
        final = status(gid)
        if outcome == "committed":
            good = final == "confirmed" and ops == {"confirm"}
        else:
            good = (code == "TC003" and final == "cancelled"
                    and ops == {"cancel"})
        if not good:
            bad.append((gid, outcome, code, final, sorted(ops)))
    won = sum(1 for o, _ in results.values() if o == "committed")
    is_(bad, [], "%s: each gid has exactly one outcome, the one its caller"
        " saw (%d confirmed, %d cancelled)" % (label, won, n - won))
    for b in bad[:3]:
        explain_gid(b[0])


for iso in ("read committed", "repeatable read", "serializable"):
    held_past_deadline(iso)
too_late()
seed = int(os.environ.get("TCC_RACE_SEED", random.randrange(1 << 30)))
diag("close races: seed %d (TCC_RACE_SEED to repeat)" % seed)
close_races(20, seed)

done_testing()
