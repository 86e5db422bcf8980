#!/usr/bin/python3
# Parallel phase two: tcc_begin(parallel => true).
#
# docs/api.md (tcc_begin's parallel argument: phase two to all branches at
# once) and docs/states.md ("With parallel => true, all branches of the phase
# are called at once"), for confirm and for cancel.  Each phase-two call takes
# 500 ms to answer; sent one after the other, three would arrive over 1 s.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_statuses, branch_urls, calls,  # noqa: E402
                      connect, run, run1, tp_rule, transaction, ts,
                      wait_final)
from tcclib import diag, done_testing, is_, ok  # noqa: E402

DELAY_MS = 500


def scenario(name, commit):
    """Three branches of a parallel transaction; phase-two calls slow."""
    op = "confirm" if commit else "cancel"
    prefixes = ["/t080/%s/%d" % (name, i) for i in (1, 2, 3)]
    for p in prefixes:
        tp_rule("%s/%s" % (p, op), delay_ms=DELAY_MS)
    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('1 min', parallel => true)")
    for p in prefixes:
        run(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
            (gid,) + branch_urls(p))
    run(conn, "SELECT tcc_finish(%s, %s)", (gid, commit))
    conn.commit()
    conn.close()

    final = "confirmed" if commit else "cancelled"
    is_(wait_final(gid, 10), final, "%s: the transaction ends %s"
        % (name, final))
    is_(branch_statuses(gid), [final] * 3, "%s: all three branches %s"
        % (name, final))
    reqs = calls(gid, op)
    is_(sorted(r["branch"] for r in reqs), [1, 2, 3],
        "%s: one %s per branch" % (name, op))
    if len(reqs) == 3:
        spread = (max(r["at"] for r in reqs) -
                  min(r["at"] for r in reqs)).total_seconds()
    else:
        spread = None
    if not ok(spread is not None and spread < 0.3,
              "%s: the three %ss arrive within 300 ms of each other"
              % (name, op)):
        diag("arrival spread: %r s" % (spread,))
    t = transaction(gid) or {}
    if reqs and t.get("finished_at"):
        # phase two took about one call's delay, not three
        took = (ts(t["finished_at"]) -
                min(r["at"] for r in reqs)).total_seconds()
    else:
        took = None
    if not ok(took is not None and took < 2 * DELAY_MS / 1000.0,
              "%s: phase two finished within %d ms of its first call"
              % (name, 2 * DELAY_MS)):
        diag("took: %r s" % (took,))
    other = "cancel" if commit else "confirm"
    is_(calls(gid, other), [], "%s: no %s was sent" % (name, other))


scenario("confirm", True)
scenario("cancel", False)

done_testing()
