#!/usr/bin/python3
# Branches with a NULL try, confirm or cancel URL, and tcc_finish(gid, false).
#
# docs/api.md (tcc_branch: any URL may be NULL; a NULL try_url registers
# a branch with no try phase and tcc_branch returns NULL; a NULL confirm_url
# or cancel_url means that phase is not called for the branch;
# tcc_finish(gid, false) cancels and returns 'cancelling') and docs/states.md
# (branch status skipped: phase not needed because there is no URL).

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_statuses, branch_urls, calls,  # noqa: E402
                      connect, error_of, pgcode, run1, wait_final)
from tcclib import diag, done_testing, is_, ok  # noqa: E402


def begin(conn):
    return run1(conn, "SELECT tcc_begin('1 min')")


def branch(conn, gid, try_url, confirm_url, cancel_url):
    """tcc_branch; returns (result, error)."""
    try:
        return run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                    (gid, try_url, confirm_url, cancel_url)), None
    except Exception as e:  # noqa: BLE001 - reported by the caller
        return None, e


# ---- NULL try_url: no try, tcc_branch returns NULL, confirm still sent.
conn = connect(autocommit=False)
gid = begin(conn)
_, c1, x1 = branch_urls("/t090/notry/1")
res, err = branch(conn, gid, None, c1, x1)
ok(err is None, "no-try: tcc_branch with a NULL try_url succeeds")
if err is not None:
    diag("error: %s" % err)
    conn.rollback()
is_(res, None, "no-try: tcc_branch returns NULL")
res2, err2 = branch(conn, gid, *branch_urls("/t090/notry/2"))
is_(res2, {"ok": True}, "no-try: a normal second branch returns its body")
e = error_of(conn, "SELECT tcc_finish(%s, true)", (gid,))
is_(pgcode(e), None, "no-try: tcc_finish(gid, true) accepts the untried"
    " branch")
conn.commit()
conn.close()
is_(wait_final(gid, 10), "confirmed", "no-try: the transaction confirms")
is_(branch_statuses(gid), ["confirmed", "confirmed"],
    "no-try: both branches confirmed")
is_([r["branch"] for r in calls(gid, "try")], [2],
    "no-try: no try call for branch 1, one for branch 2")
is_([r["branch"] for r in calls(gid, "confirm")], [1, 2],
    "no-try: confirm sent to both branches, in order")

# ---- NULL confirm_url: no confirm call, branch skipped, gtx confirmed.
conn = connect(autocommit=False)
gid = begin(conn)
t1, _, x1 = branch_urls("/t090/noconfirm/1")
res, err = branch(conn, gid, t1, None, x1)
is_(res, {"ok": True}, "no-confirm: the try is called and answers")
branch(conn, gid, *branch_urls("/t090/noconfirm/2"))
is_(run1(conn, "SELECT tcc_finish(%s, true)", (gid,)), "confirming",
    "no-confirm: tcc_finish(gid, true)")
conn.commit()
conn.close()
is_(wait_final(gid, 10), "confirmed", "no-confirm: the transaction confirms")
is_(branch_statuses(gid), ["skipped", "confirmed"],
    "no-confirm: branch 1 skipped, branch 2 confirmed")
is_([r["branch"] for r in calls(gid, "confirm")], [2],
    "no-confirm: a confirm only to branch 2")
is_([r["branch"] for r in calls(gid, "try")], [1, 2],
    "no-confirm: both tries were called")

# ---- NULL cancel_url on a cancelled gtx: no cancel call, branch skipped;
# tcc_finish(gid, false) cancels.
conn = connect(autocommit=False)
gid = begin(conn)
t1, c1, _ = branch_urls("/t090/nocancel/1")
branch(conn, gid, t1, c1, None)
branch(conn, gid, *branch_urls("/t090/nocancel/2"))
is_(run1(conn, "SELECT tcc_finish(%s, false)", (gid,)), "cancelling",
    "no-cancel: tcc_finish(gid, false) returns cancelling")
conn.commit()
conn.close()
is_(wait_final(gid, 10), "cancelled", "no-cancel: the transaction cancels")
is_(branch_statuses(gid), ["skipped", "cancelled"],
    "no-cancel: branch 1 skipped, branch 2 cancelled")
is_([r["branch"] for r in calls(gid, "cancel")], [2],
    "no-cancel: a cancel only to branch 2")
is_(calls(gid, "confirm"), [], "no-cancel: no confirm was sent")

# ---- tcc_finish(gid, false) with every URL given: every branch cancelled,
# in reverse order.
conn = connect(autocommit=False)
gid = begin(conn)
for i in (1, 2):
    branch(conn, gid, *branch_urls("/t090/cancel/%d" % i))
is_(run1(conn, "SELECT tcc_finish(%s, false)", (gid,)), "cancelling",
    "finish-false: tcc_finish(gid, false) returns cancelling")
conn.commit()
conn.close()
is_(wait_final(gid, 10), "cancelled", "finish-false: the transaction cancels")
is_(branch_statuses(gid), ["cancelled", "cancelled"],
    "finish-false: both branches cancelled")
is_([r["branch"] for r in calls(gid, "cancel")], [2, 1],
    "finish-false: cancels in reverse registration order")
is_(calls(gid, "confirm"), [], "finish-false: no confirm was sent")

# ---- Only a confirm URL (the "async-assured" shape) in autocommit.
conn = connect()
gid = begin(conn)
_, c1, _ = branch_urls("/t090/confirm-only/1")
res, err = branch(conn, gid, None, c1, None)
ok(err is None and res is None,
   "confirm-only: a branch with only a confirm URL returns NULL")
is_(run1(conn, "SELECT tcc_finish(%s, true)", (gid,)), "confirming",
    "confirm-only: tcc_finish(gid, true)")
conn.close()
is_(wait_final(gid, 10), "confirmed", "confirm-only: the transaction confirms")
is_([(r["branch"], r["op"]) for r in calls(gid)], [(1, "confirm")],
    "confirm-only: the participant saw exactly one call, the confirm")

done_testing()
