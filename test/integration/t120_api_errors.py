#!/usr/bin/python3
# Errors of the initiator API.
#
# docs/api.md: tcc_finish(gid, true) requires every branch tried
# successfully, else TC003 naming the branch; calling tcc_finish again with
# the same decision is a no-op (same word returned), with the opposite
# decision or after a timeout cancel it raises TC003; an unknown gid raises
# TC004 for tcc_branch and tcc_finish; a duplicate (kind, business_key)
# raises 23505.  Section 11: errors write nothing and call no participant
# (unknown gid, branch on a decided transaction).  Section 12: the codes.

import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_statuses, branch_urls, calls,  # noqa: E402
                      connect, error_of, message, pgcode, run, run1, status,
                      tp_requests, tp_rule, wait_final, wait_status)
from tcclib import diag, done_testing, is_, like, note, ok, q1  # noqa: E402


def expect(conn, code, sql, params, name):
    """Run sql expecting SQLSTATE code; returns the error."""
    err = error_of(conn, sql, params)
    if not is_(pgcode(err), code, name):
        diag("error: %s" % (err,))
    return err


BRANCH_SQL = "SELECT tcc_branch(%s, %s, %s, %s, name => %s)"

# ---- A branch not tried successfully: its try's success was rolled back
# with a savepoint, so the branch is registered but not tried.
conn = connect()
run(conn, "BEGIN")
gid = run1(conn, "SELECT tcc_begin('1 min')")
run(conn, BRANCH_SQL, (gid,) + branch_urls("/t120/untried/1") + ("cash",))
run(conn, "SAVEPOINT s")
run(conn, BRANCH_SQL, (gid,) + branch_urls("/t120/untried/2") + ("stock",))
run(conn, "ROLLBACK TO SAVEPOINT s")
err = expect(conn, "TC003", "SELECT tcc_finish(%s, true)", (gid,),
             "untried: tcc_finish(gid, true) raises TC003")
like(message(err), r"branch 2 \(stock\)",
     "untried: the message names branch 2 and its name")
run(conn, "ROLLBACK")
conn.close()
is_(wait_final(gid, 10), "cancelled", "untried: the transaction is cancelled")
is_(calls(gid, "confirm"), [], "untried: no confirm was sent")
is_([r["branch"] for r in calls(gid, "cancel")], [2, 1],
    "untried: both branches get a cancel (branch 2's try did happen)")

# ---- A refused branch: tcc_finish(gid, true) cannot confirm.
tp_rule("/t120/refused/2/try", status=409)
conn = connect()
gid = run1(conn, "SELECT tcc_begin('1 min')")
run(conn, BRANCH_SQL, (gid,) + branch_urls("/t120/refused/1") + (None,))
expect(conn, "TC001", BRANCH_SQL,
       (gid,) + branch_urls("/t120/refused/2") + (None,),
       "refused: the refused try raises TC001")
err = expect(conn, "TC003", "SELECT tcc_finish(%s, true)", (gid,),
             "refused: tcc_finish(gid, true) then raises TC003")
note("refused: tcc_finish message: %s" % message(err))
conn.close()
is_(wait_final(gid, 10), "cancelled", "refused: the transaction is cancelled")
is_(calls(gid, "confirm"), [], "refused: no confirm was sent")

# ---- Unknown gid: TC004, no participant call.
conn = connect()
nobody = str(uuid.uuid4())
expect(conn, "TC004", BRANCH_SQL,
       (nobody,) + branch_urls("/t120/nogid/1") + (None,),
       "unknown gid: tcc_branch raises TC004")
is_(tp_requests("/t120/nogid/"), [],
    "unknown gid: no try call was made")
expect(conn, "TC004", "SELECT tcc_finish(%s, true)", (nobody,),
       "unknown gid: tcc_finish(gid, true) raises TC004")
expect(conn, "TC004", "SELECT tcc_finish(%s, false)", (nobody,),
       "unknown gid: tcc_finish(gid, false) raises TC004")
is_(q1("SELECT count(*) FROM tcc.transactions WHERE gid = %s", (nobody,)), 0,
    "unknown gid: nothing was written")
conn.close()

# ---- Finish twice with the same decision: a no-op returning the same word;
# the opposite decision raises TC003.
for commit, word, final, op in ((True, "confirming", "confirmed", "confirm"),
                                (False, "cancelling", "cancelled", "cancel")):
    name = "again-%s" % op
    conn = connect()
    run(conn, "BEGIN")
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    for i in (1, 2):
        run(conn, BRANCH_SQL,
            (gid,) + branch_urls("/t120/%s/%d" % (name, i)) + (None,))
    is_(run1(conn, "SELECT tcc_finish(%s, %s)", (gid, commit)), word,
        "%s: tcc_finish returns %s" % (name, word))
    is_(run1(conn, "SELECT tcc_finish(%s, %s)", (gid, commit)), word,
        "%s: the same decision again in the same transaction returns %s"
        % (name, word))
    run(conn, "SAVEPOINT s")
    expect(conn, "TC003", "SELECT tcc_finish(%s, %s)", (gid, not commit),
           "%s: the opposite decision in the same transaction raises TC003"
           % name)
    run(conn, "ROLLBACK TO SAVEPOINT s")
    run(conn, "COMMIT")
    is_(run1(conn, "SELECT tcc_finish(%s, %s)", (gid, commit)), word,
        "%s: the same decision after commit returns %s" % (name, word))
    expect(conn, "TC003", "SELECT tcc_finish(%s, %s)", (gid, not commit),
           "%s: the opposite decision after commit raises TC003" % name)
    is_(wait_final(gid, 10), final, "%s: the transaction ends %s"
        % (name, final))
    is_(run1(conn, "SELECT tcc_finish(%s, %s)", (gid, commit)), word,
        "%s: the same decision once %s returns %s" % (name, final, word))
    expect(conn, "TC003", "SELECT tcc_finish(%s, %s)", (gid, not commit),
           "%s: the opposite decision once %s raises TC003" % (name, final))
    is_(sorted(r["branch"] for r in calls(gid, op)), [1, 2],
        "%s: exactly one %s per branch" % (name, op))
    other = "cancel" if commit else "confirm"
    is_(calls(gid, other), [], "%s: no %s was sent" % (name, other))
    is_(status(gid), final, "%s: still %s" % (name, final))

    # ---- tcc_branch on the decided transaction: TC003, no call.
    expect(conn, "TC003", BRANCH_SQL,
           (gid,) + branch_urls("/t120/%s/late" % name) + (None,),
           "%s: tcc_branch on a decided transaction raises TC003" % name)
    is_(tp_requests("/t120/%s/late/" % name), [],
        "%s: no try call for the late branch" % name)
    is_(len(branch_statuses(gid)), 2, "%s: no branch was added" % name)
    conn.close()

# ---- After a timeout cancel, tcc_finish(gid, true) raises TC003.
conn = connect()
gid = run1(conn, "SELECT tcc_begin('200 ms')")
run(conn, BRANCH_SQL, (gid,) + branch_urls("/t120/timeout/1") + (None,))
is_(wait_status(gid, "cancelled", 10), "cancelled",
    "timeout: cancelled at its deadline")
expect(conn, "TC003", "SELECT tcc_finish(%s, true)", (gid,),
       "timeout: tcc_finish(gid, true) raises TC003")
is_(calls(gid, "confirm"), [], "timeout: no confirm was sent")
conn.close()

# ---- (kind, business_key) duplicate: 23505.
conn = connect()
key = "order-%s" % uuid.uuid4()
first = run1(conn, "SELECT tcc_begin('1 min', 't120', %s)", (key,))
ok(first is not None, "business key: the first tcc_begin succeeds")
expect(conn, "23505", "SELECT tcc_begin('1 min', 't120', %s)", (key,),
       "business key: the same (kind, business_key) raises 23505")
is_(q1("SELECT count(*) FROM tcc.transactions"
       " WHERE kind = 't120' AND business_key = %s", (key,)), 1,
    "business key: no second transaction was written")
run(conn, "BEGIN")
expect(conn, "23505", "SELECT tcc_begin('1 min', 't120', %s)", (key,),
       "business key: also inside a transaction")
run(conn, "ROLLBACK")
other = error_of(conn, "SELECT tcc_begin('1 min', 't120-other', %s)", (key,))
is_(pgcode(other), None, "business key: the same key with another kind is"
    " accepted")
is_(status(first), "trying", "business key: the first transaction is"
    " untouched")
run(conn, "SELECT tcc_finish(%s, false)", (first,))
conn.close()

done_testing()
