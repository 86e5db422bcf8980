#!/usr/bin/python3
# A confirm that never succeeds: failed after tcc.max_attempts, an alert,
# then tcc_retry once the participant is fixed.
#
# docs/states.md (confirming -> failed after max_attempts; tcc_retry resumes),
# docs/worker.md (after tcc.max_attempts failed attempts of a branch the
# transaction becomes failed and NOTIFY tcc_alert carries {"gid", "status",
# "branch"} and no error text), docs/api.md (tcc_retry: failed goes back to
# confirming) and docs/states.md: order (branch 2 is not confirmed before
# branch 1). Runs with tcc.max_attempts = 3 (ALTER SYSTEM, reset at the end).

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_statuses, branch_urls,  # noqa: E402
                      branches, calls, connect, notifications, run, run1,
                      status, system_settings, tp_rule, transaction,
                      wait_final, wait_status)
from tcclib import diag, done_testing, is_, like, ok  # noqa: E402

prefixes = ["/t070/failed/1", "/t070/failed/2"]
tp_rule(prefixes[0] + "/confirm", status=500, body='{"error":"down"}')

with system_settings(max_attempts=3):
    listener = connect()
    run(listener, "LISTEN tcc_alert")

    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    for p in prefixes:
        run(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
            (gid,) + branch_urls(p))
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    conn.commit()

    is_(wait_final(gid, 10), "failed",
        "the transaction becomes failed (tcc_wait returns it)")
    is_(status(gid), "failed", "tcc.transactions shows failed")
    rows = attempts(gid, "confirm")
    is_([(a["branch"], a["http_status"]) for a in rows],
        [(1, 500), (1, 500), (1, 500)],
        "exactly tcc.max_attempts = 3 confirm attempts, all to branch 1")
    b = branches(gid)
    is_([x["status"] for x in b], ["tried", "tried"],
        "neither branch is confirmed")
    ok(b and b[0]["next_attempt_at"] is None,
       "branch 1 has no further attempt scheduled")
    is_(b[0]["attempts"] if b else None, 3,
        "tcc.branches counts 3 attempts for branch 1")
    is_(calls(gid, "confirm", 2), [],
        "branch 2 was never sent a confirm (registration order)")
    like((transaction(gid) or {}).get("last_error"), r"500",
         "tcc.transactions.last_error tells what failed")

    def mine(payloads):
        for p in payloads:
            try:
                if json.loads(p).get("gid") == str(gid):
                    return True
            except (ValueError, AttributeError):
                pass
        return False
    got = notifications(listener, mine, 5)
    alerts = []
    for p in got:
        try:
            d = json.loads(p)
        except ValueError:
            continue
        if isinstance(d, dict) and d.get("gid") == str(gid):
            alerts.append(d)
    if not is_(len(alerts), 1, "one tcc_alert notification for the gid"):
        diag("payloads: %r" % (got,))
    alert = alerts[0] if alerts else {}
    is_(alert.get("status"), "failed", "the alert says status failed")
    is_(alert.get("branch"), 1, "the alert names branch 1")
    is_(sorted(alert.keys()), ["branch", "gid", "status"],
        "the alert has gid, status and branch, and no error text")

    # The participant is fixed; an operator retries.
    tp_rule(prefixes[0] + "/confirm", status=200)
    conn.autocommit = True
    run(conn, "SELECT tcc_retry(%s)", (gid,))
    conn.close()
    # the worker applies the retry after its commit: until then the
    # transaction is still failed, which tcc_wait would return at once
    wait_status(gid, ("confirming", "confirmed"))
    is_(wait_final(gid, 10), "confirmed",
        "after tcc_retry the transaction settles confirmed")
    is_(branch_statuses(gid), ["confirmed", "confirmed"],
        "both branches are confirmed")
    reqs = calls(gid, "confirm")
    is_([(r["branch"], r["status"]) for r in reqs],
        [(1, 500), (1, 500), (1, 500), (1, 200), (2, 200)],
        "the participant saw 3 failures, then branch 1 and branch 2")
    is_(calls(gid, "cancel"), [], "no cancel was sent")
    listener.close()

done_testing()
