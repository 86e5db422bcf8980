#!/usr/bin/python3
# R5 of docs/guarantees.md (retries survive everything) and R3 (no limbo, "even
# when ... the worker dies"), docs/worker.md (the worker is restarted by the
# postmaster).
#
# A batch of 30 decided global transactions, two branches each, confirms
# held 1.5 s by the participant.  Once some transactions have moved on to
# their second branch (phase two is half done), the worker is killed:
#
#   SIGKILL   the postmaster treats it as a crash and restarts every process
#   SIGTERM   the worker exits; the postmaster starts a new one
#
# A new worker must come back and every transaction must end confirmed: the
# confirms cut off are sent again (same Idempotency-Key), branch 2 is never
# confirmed before branch 1 answered (docs/states.md: order), and no cancel is
# sent to any of them (R4).
#
# With tcc.workers > 1 (test/run.sh's suite "workers") the worker killed is
# one that has confirms in flight: SIGTERM replaces it alone, the others
# keep their pids; SIGKILL restarts them all.

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Caller, explain_gid, wait_all_final,  # noqa: E402
                      wait_cluster)
from tcclib import (done_testing, is_, ok, q, q1, tp_rule,  # noqa: E402
                    wait_until, worker_pids, workers)

N = 30
CONFIRM_DELAY_MS = 1500
SETTLE = 60.0


def order_violations(gids):
    """Gids whose branch 2 got a confirm before branch 1's confirm was
    answered 2xx (the participant records a request before answering it,
    so a request of branch 2 must come after one of branch 1 answered
    2xx)."""
    return q("SELECT b.gid FROM tp.requests b"
             " WHERE b.gid = ANY(%s::uuid[]) AND b.op = 'confirm'"
             "   AND b.branch = 2"
             "   AND NOT EXISTS (SELECT 1 FROM tp.requests a"
             "                    WHERE a.gid = b.gid AND a.op = 'confirm'"
             "                      AND a.branch = 1 AND a.id < b.id"
             "                      AND a.status BETWEEN 200 AND 299)",
             (gids,))


def run_case(label, sig):
    prefix = "/t240/%s/%d" % (label, int(time.time()))
    for b in ("a", "b"):
        tp_rule("%s/%s/confirm" % (prefix, b), delay_ms=CONFIRM_DELAY_MS)
    caller = Caller()
    try:
        gids = []
        for i in range(N):
            gid = caller.begin("1 hour")
            caller.branch(gid, prefix + "/a")
            caller.branch(gid, prefix + "/b")
            caller.finish(gid, True)
            gids.append(gid)
        caller.commit()
    finally:
        caller.close()

    ok(wait_until(lambda: q1("SELECT count(*) FROM tp.requests"
                             " WHERE gid = ANY(%s::uuid[]) AND branch = 2"
                             "   AND op = 'confirm'", (gids,)), 30),
       "%s: phase two reached branch 2 of some transactions" % label)
    confirmed = q1("SELECT count(*) FROM tcc.transactions"
                   " WHERE gid = ANY(%s::uuid[]) AND status = 'confirmed'",
                   (gids,))
    ok(confirmed < N, "%s: killed in the middle of the batch (%d of %d"
       " confirmed)" % (label, confirmed, N))

    # the worker with the most calls in flight (with one worker, it)
    old = q1("SELECT pid FROM tcc.worker WHERE pid IS NOT NULL"
             " ORDER BY in_flight DESC, pid LIMIT 1")
    others = [p for p in worker_pids() if p != old]
    os.kill(old, sig)
    t0 = time.monotonic()
    new = wait_cluster(other_than=old)
    ok(new is not None, "%s: a new worker runs" % label)
    shown = []

    def replaced():
        shown[:] = [r[0] for r in q("SELECT pid FROM tcc.worker"
                                    " ORDER BY pid")]
        return new in shown and old not in shown and len(shown) == workers()
    ok(wait_until(replaced, 10),
       "%s: tcc.worker shows the new worker (rows %r)" % (label, shown))
    if sig == signal.SIGTERM:
        is_(sorted(set(shown) - {new}), others,
            "%s: the other workers kept their pids" % label)

    left = wait_all_final(gids, SETTLE)
    is_(len(left), 0, "%s: all %d final within %.0f s (took %.1f s)"
        % (label, N, SETTLE, time.monotonic() - t0))
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[]) AND status = 'confirmed'", (gids,)),
        N, "%s: all %d confirmed" % (label, N))
    for gid in left[:3]:
        explain_gid(gid)

    counts = q("SELECT count(*) FILTER (WHERE op = 'cancel'),"
               "       count(DISTINCT (gid, branch))"
               "         FILTER (WHERE op = 'confirm'),"
               "       count(*) FILTER (WHERE op = 'confirm'),"
               "       count(*) FILTER (WHERE op IN ('confirm', 'cancel')"
               "                          AND idem <> gid || '.' || branch"
               "                                      || '.' || op)"
               "  FROM tp.requests WHERE gid = ANY(%s::uuid[])", (gids,))[0]
    is_(counts[0], 0, "%s: no cancel sent" % label)
    is_(counts[1], 2 * N, "%s: every branch got a confirm" % label)
    ok(counts[2] > 2 * N, "%s: confirms cut off were sent again (%d extra)"
       % (label, counts[2] - 2 * N))
    is_(counts[3], 0, "%s: every call carried <gid>.<branch>.<op>" % label)
    is_(order_violations(gids), [],
        "%s: branch 2 confirmed only after branch 1 answered" % label)


run_case("sigkill", signal.SIGKILL)
run_case("sigterm", signal.SIGTERM)

done_testing()
