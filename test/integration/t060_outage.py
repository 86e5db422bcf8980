#!/usr/bin/python3
# A participant outage while a decided transaction's confirm is pending.
#
# R5 of docs/guarantees.md (pending confirm calls survive participant outages
# and continue with backoff until success), docs/protocol.md (a connection
# error on confirm is retried with backoff) and rule R3 (the transaction
# settles without anyone acting once the participant is back).
#
# The branches' URLs use the host name "localhost": the tries go through the
# caller's backend, so the worker has no kept-alive connection to that host
# when the participant stops listening, and each confirm really has to open
# a new connection (the participant's "down" refuses new connections only).

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_statuses, branch_urls,  # noqa: E402
                      calls, connect, run, run1, status, wait_final)
from tcclib import (done_testing, is_, ok, tp_down, tp_up,  # noqa: E402
                    wait_until)

prefixes = ["/t060/outage/1", "/t060/outage/2"]
conn = connect(autocommit=False)
gid = run1(conn, "SELECT tcc_begin('1 min')")
for p in prefixes:
    run(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
        (gid,) + branch_urls(p, host="localhost"))
is_([r["branch"] for r in calls(gid, "try")], [1, 2],
    "both tries answered before the outage")

tp_down()
try:
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    conn.commit()
    conn.close()

    # at least three failed confirm attempts while the participant is away
    failed = wait_until(lambda: len([a for a in attempts(gid, "confirm", 1)
                                     if a["error"]]) >= 3, 10)
    ok(failed, "confirm attempts fail while the participant is down")
    rows = attempts(gid, "confirm")
    ok(rows and all(a["http_status"] is None and a["error"] for a in rows),
       "the failed attempts are recorded with no HTTP status and an error")
    is_(status(gid), "confirming", "the transaction is still confirming")
    ok(all(a["branch"] == 1 for a in rows),
       "branch 2 waits while branch 1's confirm is failing")
finally:
    tp_up()

is_(wait_final(gid, 10), "confirmed",
    "confirmed on its own once the participant is back")
is_(branch_statuses(gid), ["confirmed", "confirmed"],
    "both branches are confirmed")
is_([r["branch"] for r in calls(gid, "confirm")], [1, 2],
    "the participant received one confirm per branch after the outage")
rows = attempts(gid, "confirm")
ok(len(rows) >= 5 and rows[-2]["http_status"] == 200
   and rows[-1]["http_status"] == 200 and rows[-1]["branch"] == 2,
   "tcc.attempts: the failed attempts, then a 200 for each branch")
is_(calls(gid, "cancel"), [], "no cancel was sent")

done_testing()
