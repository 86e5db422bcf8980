#!/usr/bin/python3
# R5 of docs/guarantees.md (retries survive everything) and R4 (one outcome):
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
# Then the same with the caller at synchronous_commit = off, restarted as
# soon as the first confirm reaches the participant: the caller's commit
# record may not have been flushed yet, but a confirm was sent, so the
# decision must survive (R2, R4) and all 100 must still end confirmed.
#
# The participant keeps a database connection per request it is answering,
# so this test raises max_connections for its duration.  All 100 confirms go
# to one destination, so it lets one destination use every slot
# (tcc.destination_share = 100).

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Caller, explain_gid, max_connections,  # noqa: E402
                      wait_all_final, wait_cluster)
from coordlib import system_settings  # noqa: E402
from tcclib import (done_testing, is_, ok, q, q1, restart,  # noqa: E402
                    tp_rule, wait_until)

N = 100
CONFIRM_DELAY_MS = 2500
SETTLE = 90.0           # after the restart, for all 100 to confirm

def run_case(label, async_commit):
    prefix = "/t230/%s/%d" % (label.replace(" ", "_"), int(time.time()))
    tp_rule(prefix + "/confirm", delay_ms=CONFIRM_DELAY_MS)
    caller = Caller()
    try:
        if async_commit:
            caller.value("SET synchronous_commit = off")
        gids = []
        for i in range(N):
            gid = caller.begin("1 hour")
            caller.branch(gid, prefix)
            caller.finish(gid, True)
            gids.append(gid)
        caller.commit()
    finally:
        caller.close()
    is_(len(gids), N, "%s: %d transactions decided in one commit"
        % (label, N))

    if async_commit:
        ok(wait_until(lambda: q1("SELECT count(*) FROM tp.requests"
                                 " WHERE path = %s AND op = 'confirm'",
                                 (prefix + "/confirm",)) >= 1, 30),
           "%s: the first confirm reached the participant" % label)
    else:
        ok(wait_until(
            lambda: q1("SELECT sum(in_flight) FROM tcc.worker") >= N and
            q1("SELECT count(*) FROM tp.requests"
               " WHERE path = %s AND op = 'confirm'",
               (prefix + "/confirm",)) >= N, 30),
           "%s: the worker has all %d confirms in flight, the participant"
           " holds them" % (label, N))
        is_(q1("SELECT count(*) FROM tcc.transactions"
               " WHERE gid = ANY(%s::uuid[]) AND status = 'confirming'",
               (gids,)),
            N, "%s: all %d still confirming when the cluster stops"
            % (label, N))

    t0 = time.monotonic()
    restart("immediate")
    ok(wait_cluster() is not None, "%s: the cluster is back after an"
       " immediate restart, with its worker" % label)

    left = wait_all_final(gids, SETTLE)
    is_(len(left), 0, "%s: all %d transactions final within %.0f s"
        " (took %.1f s)" % (label, N, SETTLE, time.monotonic() - t0))
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[]) AND status = 'confirmed'", (gids,)),
        N, "%s: all %d confirmed" % (label, N))
    for gid in left[:3]:
        explain_gid(gid)

    rows = q("SELECT op, count(*), count(DISTINCT gid),"
             "       count(*) FILTER (WHERE idem <> gid || '.' || branch"
             "                                      || '.' || op)"
             "  FROM tp.requests WHERE gid = ANY(%s::uuid[])"
             " GROUP BY op ORDER BY op", (gids,))
    by_op = {r[0]: r[1:] for r in rows}
    is_(by_op.get("cancel"), None, "%s: no cancel sent to any of them"
        % label)
    confirm = by_op.get("confirm", (0, 0, 0))
    is_(confirm[1], N, "%s: every transaction's branch got a confirm"
        % label)
    is_(confirm[2], 0, "%s: every confirm carried <gid>.<branch>.confirm"
        % label)
    resent = confirm[0] - confirm[1]
    ok(resent > 0, "%s: confirms cut off by the restart were sent again"
       " (%d)" % (label, resent))
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[])"
           "   AND decided_by IS DISTINCT FROM 'caller'", (gids,)),
        0, "%s: every decision is the caller's" % label)


with max_connections(300), system_settings(destination_share=100):
    run_case("synchronous commit", False)
    run_case("asynchronous commit", True)

done_testing()
