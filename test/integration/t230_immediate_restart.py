#!/usr/bin/python3
# SPEC section 6, R5 (retries survive everything) and R4 (one outcome):
# pending confirm calls survive an immediate shutdown of the cluster.
#
# 100 global transactions, one branch each, are decided (tcc_finish(gid,
# true)) and committed at once, so the worker starts all 100 confirms
# together (tcc.max_concurrency 128).  The participant holds each confirm for
# 2.5 s.  While they are in flight the cluster is restarted with pg_ctl -m
# immediate (no shutdown checkpoint, nothing flushed on the way out).
# Afterwards every one must end confirmed, no cancel may be sent to any of
# them, and the confirms cut off by the restart are sent again with the same
# Idempotency-Key.
#
# The participant keeps a database connection per request it is answering,
# so this test raises max_connections for its duration.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Caller, explain_gid, max_connections,  # noqa: E402
                      wait_all_final, wait_cluster)
from tcclib import (done_testing, is_, ok, q, q1, restart,  # noqa: E402
                    tp_rule, wait_until)

N = 100
CONFIRM_DELAY_MS = 2500
SETTLE = 90.0           # after the restart, for all 100 to confirm

PREFIX = "/t230/%d" % int(time.time())

with max_connections(300):
    tp_rule(PREFIX + "/confirm", delay_ms=CONFIRM_DELAY_MS)
    caller = Caller()
    try:
        gids = []
        for i in range(N):
            gid = caller.begin("1 hour")
            caller.branch(gid, PREFIX)
            caller.finish(gid, True)
            gids.append(gid)
        caller.commit()
    finally:
        caller.close()
    is_(len(gids), N, "%d transactions decided in one commit" % N)

    ok(wait_until(
        lambda: q1("SELECT in_flight FROM tcc.worker") >= N and
        q1("SELECT count(*) FROM tp.requests"
           " WHERE path = %s AND op = 'confirm'",
           (PREFIX + "/confirm",)) >= N, 30),
       "the worker has all %d confirms in flight, the participant holds them"
       % N)
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[]) AND status = 'confirming'", (gids,)),
        N, "all %d still confirming when the cluster stops" % N)

    t0 = time.monotonic()
    restart("immediate")
    ok(wait_cluster() is not None,
       "the cluster is back after an immediate restart, with its worker")

    left = wait_all_final(gids, SETTLE)
    is_(len(left), 0, "all %d transactions final within %.0f s (took %.1f s)"
        % (N, SETTLE, time.monotonic() - t0))
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[]) AND status = 'confirmed'", (gids,)),
        N, "all %d confirmed" % N)
    for gid in left[:3]:
        explain_gid(gid)

    rows = q("SELECT op, count(*), count(DISTINCT gid),"
             "       count(*) FILTER (WHERE idem <> gid || '.' || branch"
             "                                      || '.' || op)"
             "  FROM tp.requests WHERE gid = ANY(%s::uuid[])"
             " GROUP BY op ORDER BY op", (gids,))
    by_op = {r[0]: r[1:] for r in rows}
    is_(by_op.get("cancel"), None, "no cancel sent to any of them")
    confirm = by_op.get("confirm", (0, 0, 0))
    is_(confirm[1], N, "every transaction's branch got a confirm")
    is_(confirm[2], 0, "every confirm carried <gid>.<branch>.confirm")
    resent = confirm[0] - confirm[1]
    ok(resent > 0, "confirms cut off by the restart were sent again (%d)"
       % resent)
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[])"
           "   AND decided_by IS DISTINCT FROM 'caller'", (gids,)),
        0, "every decision is the caller's")

done_testing()
