#!/usr/bin/python3
# A refused try: branch 3 of 3 answers 409.
#
# docs/api.md (try refused raises SQLSTATE TC001; the coordinator starts
# cancelling at once, without waiting for the caller), docs/states.md (cancel
# in reverse registration order, one after the other; sent to every branch
# whose try succeeded, not to the refused one, which is skipped) and rule R3
# (no limbo: the global transaction ends cancelled without anyone acting, long
# before its deadline).

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_statuses, branch_urls, calls,  # noqa: E402
                      connect, error_of, gaps, message, pgcode, run, run1,
                      tp_rule, transaction, wait_status)
from tcclib import diag, done_testing, is_, like, ok  # noqa: E402

CANCEL_DELAY_MS = 150


def scenario(name, explicit):
    """Three branches, the third refused.  explicit: inside BEGIN, left
    open (aborted) while the coordinator cancels; else autocommit."""
    conn = connect(autocommit=True)
    prefixes = ["/t030/%s/%d" % (name, i) for i in (1, 2, 3)]
    for p in prefixes:
        tp_rule(p + "/cancel", delay_ms=CANCEL_DELAY_MS)
    tp_rule(prefixes[2] + "/try", status=409, body='{"error":"no stock"}')

    if explicit:
        run(conn, "BEGIN")
    gid = run1(conn, "SELECT tcc_begin('1 hour')")
    for p in prefixes[:2]:
        run(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
            (gid,) + branch_urls(p))
    t0 = time.monotonic()
    err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                   (gid,) + branch_urls(prefixes[2]))
    is_(pgcode(err), "TC001", "%s: a 409 on the try raises TC001" % name)
    like(message(err), r"branch 3", "%s: the error names branch 3" % name)

    # The caller does nothing more: its session stays open (in the explicit
    # case inside its failed transaction) while we watch from another one.
    st = wait_status(gid, ("cancelling", "cancelled"), 5)
    ok(st in ("cancelling", "cancelled"),
       "%s: the coordinator starts cancelling without the caller (%s)"
       % (name, st))
    st = wait_status(gid, "cancelled", 10)
    elapsed = time.monotonic() - t0
    is_(st, "cancelled", "%s: the global transaction ends cancelled" % name)
    ok(elapsed < 5.0, "%s: cancelled promptly, not at the deadline (%.2f s)"
       % (name, elapsed))
    is_((transaction(gid) or {}).get("decided_by"), "try failed",
        "%s: tcc.transactions says the failed try decided" % name)

    is_(branch_statuses(gid), ["cancelled", "cancelled", "skipped"],
        "%s: branches 1 and 2 cancelled, the refused branch 3 skipped" % name)
    cancels = calls(gid, "cancel")
    is_([r["branch"] for r in cancels], [2, 1],
        "%s: cancels in reverse registration order, none to branch 3" % name)
    is_([r["path"] for r in cancels],
        [prefixes[1] + "/cancel", prefixes[0] + "/cancel"],
        "%s: cancels went to the branches' cancel URLs" % name)
    g = gaps(cancels)
    if not ok(len(g) == 1 and g[0] >= CANCEL_DELAY_MS / 1000.0 * 0.95,
              "%s: the second cancel arrives after the first was answered"
              % name):
        diag("gaps between cancels (s): %r" % (g,))
    is_(calls(gid, "confirm"), [], "%s: no confirm was sent" % name)
    is_([r["branch"] for r in calls(gid, "try")], [1, 2, 3],
        "%s: each try was sent once" % name)

    if explicit:
        run(conn, "ROLLBACK")
    conn.close()


scenario("autocommit", explicit=False)
scenario("in-transaction", explicit=True)

done_testing()
