#!/usr/bin/python3
# docs/views.md#tccattempts (1.2): a confirm or cancel call that ends its
# branch is kept in the branch's row (tcc._branch.done_started_at,
# done_duration_ms, last_http_status), not as a row of tcc._attempt; the
# calls that failed stay rows of tcc._attempt.  tcc.attempts shows every
# call either way, tcc_calls_total counts each once, and the purge takes
# both.
#   * a confirm answered 200 at once: no row in tcc._attempt, one in
#     tcc.attempts, with when it started and how long it took;
#   * a confirm answered 503 twice, then 200: two rows in tcc._attempt (the
#     failures), three in tcc.attempts, oldest first;
#   * a cancel after a refused try: the cancel kept in the branch;
#   * tcc_calls_total moved by exactly these calls, as the recount did.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_urls, connect, metrics_kept,  # noqa: E402
                      metrics_moved, metrics_recount, run, run1, tp_rule,
                      wait_final)
from tcclib import done_testing, is_, ok, q, q1, wait_until  # noqa: E402


def start(prefix, n=1, commit=True):
    """Begin, n branches under prefix (/1, /2...), finish; returns the gid
    (None for a refused try: the transaction is cancelled)."""
    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    try:
        for i in range(1, n + 1):
            run(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                (gid,) + branch_urls("%s/%d" % (prefix, i)))
        run(conn, "SELECT tcc_finish(%s, %s)", (gid, commit))
        conn.commit()
    except Exception:           # noqa: BLE001 - the refused try
        conn.rollback()
    conn.close()
    return gid


def rows_in_attempt(gid):
    return q1("SELECT count(*) FROM tcc._attempt WHERE gid = %s", (gid,))


def calls_total(m):
    return {k[3:5]: v for k, v in m.items() if k[0] == "tcc_calls_total"}


m0, r0 = metrics_kept(), metrics_recount()

tp_rule("/t483/flaky/1/confirm", fail_next=2, fail_status=503)
tp_rule("/t483/no/2/try", status=409, body="no")
ok_gid = start("/t483/ok", 2)
flaky = start("/t483/flaky")
no = start("/t483/no", 2)

is_(wait_final(ok_gid, 10), "confirmed", "the plain transaction is confirmed")
is_(wait_final(flaky, 20), "confirmed", "the flaky one is confirmed")
is_(wait_final(no, 10), "cancelled", "the refused one is cancelled")

# ---- a confirm that succeeds at once: its branch row, not tcc._attempt
is_(rows_in_attempt(ok_gid), 0,
    "a confirm answered 200 at once writes no row of tcc._attempt")
rows = attempts(ok_gid, "confirm")
is_([(a["branch"], a["http_status"], a["error"]) for a in rows],
    [(1, 200, None), (2, 200, None)],
    "tcc.attempts shows both confirms, answered 200, without error")
ok(all(a["started_at"] is not None and a["duration_ms"] is not None
       and a["duration_ms"] >= 0 for a in rows),
   "each with when it started and how long it took")
is_(q("SELECT branch, done_started_at IS NOT NULL, done_duration_ms >= 0,"
      "       last_http_status, status"
      "  FROM tcc._branch WHERE gid = %s ORDER BY branch", (ok_gid,)),
    [(1, True, True, 200, "confirmed"), (2, True, True, 200, "confirmed")],
    "the branch rows keep the call that ended them")
tries = attempts(ok_gid, "try")
ok(len(tries) == 2 and all(rows[i]["started_at"] > tries[i]["started_at"]
                           for i in range(2)),
   "each confirm started after its branch's try")

# ---- failures stay rows of tcc._attempt
is_(rows_in_attempt(flaky), 2, "the two 503 answers are rows of tcc._attempt")
rows = attempts(flaky, "confirm")
is_([a["http_status"] for a in rows], [503, 503, 200],
    "tcc.attempts shows the three confirm attempts, oldest first")
ok(rows[0]["error"] and rows[1]["error"] and rows[2]["error"] is None,
   "the failed ones carry an error, the last none")
is_(q1("SELECT attempts FROM tcc._branch WHERE gid = %s", (flaky,)), 3,
    "the branch counted three attempts")

# ---- a cancel kept in its branch
rows = attempts(no, "cancel")
is_([(a["branch"], a["http_status"]) for a in rows], [(1, 200)],
    "the cancel of the tried branch is in tcc.attempts (the refused one is"
    " not called)")
is_(q("SELECT op, branch FROM tcc._attempt WHERE gid = %s", (no,)),
    [("try", 2)], "tcc._attempt holds the refused try only, not the cancel")

# ---- counted once each, as the recount counts
ok(wait_until(lambda: metrics_moved(m0, metrics_kept())
              == metrics_moved(r0, metrics_recount()), 10),
   "every counter moved as the recount did")
moved = calls_total(metrics_moved(m0, metrics_kept()))
is_((moved.get(("confirm", "success")), moved.get(("confirm", "error")),
     moved.get(("cancel", "success"))), (3.0, 2.0, 1.0),
    "tcc_calls_total: 3 confirms succeeded, 2 failed, 1 cancel succeeded")

done_testing()
