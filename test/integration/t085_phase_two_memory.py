#!/usr/bin/python3
# Phase two moves on from what the worker remembers of each transaction; a
# transaction that failed or was resolved meanwhile is read from the tables
# again, and a call still in flight for it changes nothing.
#
# docs/states.md (parallel phase two; confirming -> failed after
# max_attempts; tcc_retry resumes; any non-final -> resolved by tcc_resolve,
# after which no call is made) and docs/worker.md (backoff, max_attempts).
# Runs with tcc.max_attempts = 3 (ALTER SYSTEM, reset at the end);
# test/run.sh sets tcc.retry_interval = 200ms.

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_statuses, branch_urls,  # noqa: E402
                      calls, connect, run, run1, status, system_settings,
                      tp_rule, wait_final, wait_status)
from tcclib import diag, done_testing, is_, ok, wait_until  # noqa: E402

SLOW_MS = 2000


def decided(prefixes, parallel):
    """A committed confirm decision on one branch per prefix; its gid."""
    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('1 min', parallel => %s)", (parallel,))
    for p in prefixes:
        run(conn, "SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + branch_urls(p))
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    conn.commit()
    conn.close()
    return gid


def statuses_by_branch(gid, op):
    """(branch, HTTP status) of each op call the participant answered."""
    return sorted((r["branch"], r["status"]) for r in calls(gid, op))


def recorded(gid, n):
    """Waits until the worker recorded n confirm attempts of gid."""
    return wait_until(lambda: len(attempts(gid, "confirm")) >= n,
                      SLOW_MS / 1000.0 + 5)


with system_settings(max_attempts=3):
    # ------------------------------------------------------------------
    # Parallel: branch 2 uses up its attempts while branches 1 and 3 are
    # still answering; their success must not finish the transaction.
    prefixes = ["/t085/par/%d" % i for i in (1, 2, 3)]
    tp_rule(prefixes[0] + "/confirm", delay_ms=SLOW_MS)
    tp_rule(prefixes[1] + "/confirm", status=503)
    tp_rule(prefixes[2] + "/confirm", delay_ms=SLOW_MS)
    gid = decided(prefixes, True)

    is_(wait_status(gid, "failed", 10), "failed",
        "parallel: the transaction fails once branch 2 used up its attempts")
    if not ok(recorded(gid, 5),
              "parallel: the worker records the two slow answers after that"):
        diag("attempts: %r" % (attempts(gid, "confirm"),))
    time.sleep(0.5)     # time to (wrongly) move on, were it to
    is_(status(gid), "failed",
        "parallel: the slow successes of branches 1 and 3 leave it failed")
    is_(branch_statuses(gid), ["confirmed", "tried", "confirmed"],
        "parallel: branches 1 and 3 are confirmed, branch 2 is not")
    is_(statuses_by_branch(gid, "confirm"),
        [(1, 200), (2, 503), (2, 503), (2, 503), (3, 200)],
        "parallel: one call each to branches 1 and 3, three to branch 2")

    tp_rule(prefixes[1] + "/confirm", status=200)
    conn = connect()
    run(conn, "SELECT tcc_retry(%s)", (gid,))
    conn.close()
    wait_status(gid, ("confirming", "confirmed"))
    is_(wait_final(gid, 10), "confirmed",
        "parallel: after tcc_retry the transaction is confirmed")
    is_(statuses_by_branch(gid, "confirm"),
        [(1, 200), (2, 200), (2, 503), (2, 503), (2, 503), (3, 200)],
        "parallel: tcc_retry called only branch 2, once more")

    # ------------------------------------------------------------------
    # Sequential: resolved while branch 1's confirm is in flight; its
    # answer comes after, and branch 2 is never called.
    prefixes = ["/t085/seq/1", "/t085/seq/2"]
    tp_rule(prefixes[0] + "/confirm", delay_ms=SLOW_MS)
    gid = decided(prefixes, False)
    wait_status(gid, "confirming")
    time.sleep(0.3)     # branch 1's confirm is under way
    conn = connect()
    run(conn, "SELECT tcc_resolve(%s, 'settled by hand')", (gid,))
    conn.close()
    is_(wait_status(gid, "resolved", 5), "resolved",
        "sequential: tcc_resolve makes it resolved during the call")
    ok(recorded(gid, 1), "sequential: the worker records branch 1's answer")
    time.sleep(0.5)     # time to (wrongly) call branch 2, were it to
    is_(status(gid), "resolved", "sequential: it stays resolved")
    is_(statuses_by_branch(gid, "confirm"), [(1, 200)],
        "sequential: branch 1 answered, branch 2 was never called")

done_testing()
