#!/usr/bin/python3
# tcc_branches and tcc_run (docs/api.md, 1.1): several branches in one
# call, registered with one durable write and tried all at once.
#
#   success            the answers come back as an array in branch order
#                      (NULL for a branch without try); all the call's
#                      branches were written by one worker commit (R1 for
#                      all before the first try); confirmed in order
#   tcc_run            begin + branches + confirm decision: one worker commit
#                      records the transaction and its branches; the
#                      caller's COMMIT confirms (R2), its ROLLBACK cancels
#   refused            one refused among three: TC001 names it, only after
#                      every try answered; the other two are cancelled, the
#                      refused one is not
#   unknown            an HTTP 500: TC002 names it; all three are cancelled
#   overlap            three tries of 1 s each end well under 3 s, and the
#                      participant received them together
#   interrupted        statement_timeout and pg_cancel_backend stop the wait
#                      at once; the transaction cancels without waiting for
#                      its deadline
#   killed             the caller's backend dies while the tries are in
#                      flight: every branch whose try went out is cancelled
#                      (R1, R3), no confirm is sent
#   isolation          tcc_run at every isolation level and in autocommit

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_statuses, calls, connect, error_of,  # noqa: E402
                      message, pgcode, run, run1, wait_final)
from faultlib import (Background, sigkill_and_wait, terminate,  # noqa: E402
                      tries_seen)
from tcclib import (diag, done_testing, is_, like, ok, q, q1,  # noqa: E402
                    tp_rule, tp_url, wait_until)

import json  # noqa: E402

PROMPT = 10.0   # seconds a cancel decided by the worker may take


def spec(prefix, name=None, try_=True, **extra):
    """One element of a branches array for the participant's path prefix."""
    b = {"confirm": tp_url(prefix + "/confirm"),
         "cancel": tp_url(prefix + "/cancel")}
    if try_:
        b["try"] = tp_url(prefix + "/try")
    if name is not None:
        b["name"] = name
    b.update(extra)
    return b


def arr(*specs):
    return json.dumps(list(specs))


def cancels_and_confirms(gid):
    """(branches cancelled, branches confirmed) by the participant."""
    return (sorted({r["branch"] for r in calls(gid, "cancel")}),
            sorted({r["branch"] for r in calls(gid, "confirm")}))


def wait_ops(gid, cancels, timeout=PROMPT):
    """Wait until the branches in cancels all received a cancel."""
    return wait_until(lambda: cancels_and_confirms(gid)[0] == cancels,
                      timeout)


# ---------------------------------------------------------------- success
for i, body in enumerate(('{"n":1}', '{"n":2}', '{"n":3}')):
    tp_rule("/t140/ok/%d/try" % (i + 1), body=body)
conn = connect(autocommit=True)
run(conn, "BEGIN")
gid = run1(conn, "SELECT tcc_begin('1 min')")
answers = run1(conn, "SELECT tcc_branches(%s, %s)", (gid, arr(
    spec("/t140/ok/1", "one", payload={"a": 1},
         headers={"Authorization": "Bearer x"}),
    spec("/t140/ok/2", "two"),
    spec("/t140/ok/none", "no try", try_=False),
    spec("/t140/ok/3"))))
is_(answers, [{"n": 1}, {"n": 2}, None, {"n": 3}],
    "success: the answers in branch order, NULL for the branch without try")
is_(q1("SELECT count(DISTINCT xmin::text) FROM tcc._branch WHERE gid = %s",
       (gid,)), 1, "success: one worker commit wrote all four branches")
is_(q("SELECT branch, name FROM tcc.branches WHERE gid = %s ORDER BY branch",
      (gid,)), [(1, "one"), (2, "two"), (3, "no try"), (4, None)],
    "success: numbered in array order, with their names")
t1 = [r for r in tries_seen(gid) if r["branch"] == 1]
ok(len(t1) == 1 and json.loads(t1[0]["body"]) == {"a": 1}
   and t1[0]["headers"].get("Authorization") == "Bearer x",
   "success: branch 1's try carried its payload and header")
is_(run1(conn, "SELECT tcc_finish(%s)", (gid,)), "confirming",
    "success: tcc_finish confirms")
run(conn, "COMMIT")
is_(wait_final(gid), "confirmed", "success: confirmed")
is_([r["branch"] for r in calls(gid, "confirm")], [1, 2, 3, 4],
    "success: confirmed in registration order")

# caller rollback after tcc_branches succeeded: all branches cancel
run(conn, "BEGIN")
gid = run1(conn, "SELECT tcc_begin('1 hour')")
run(conn, "SELECT tcc_branches(%s, %s)", (gid, arr(
    spec("/t140/rb0/1"), spec("/t140/rb0/2"), spec("/t140/rb0/3"))))
run(conn, "ROLLBACK")
is_(wait_final(gid, PROMPT), "cancelled",
    "tcc_branches rolled back: cancelled promptly")
is_(cancels_and_confirms(gid), ([1, 2, 3], []),
    "tcc_branches rolled back: all three cancelled, no confirm")

# ---------------------------------------------------------------- tcc_run
run(conn, "BEGIN")
row = run(conn, "SELECT gid, responses FROM tcc_run(%s, '1 min', 'order',"
          " 't140-run')", (arr(spec("/t140/ok/1"), spec("/t140/ok/2")),))[0]
gid = row[0]
is_(row[1], [{"n": 1}, {"n": 2}], "tcc_run: the answers")
is_(q1("SELECT status FROM tcc.transactions WHERE gid = %s", (gid,)),
    "trying", "tcc_run: undecided until the caller commits")
is_(q1("SELECT count(DISTINCT x) FROM (SELECT xmin::text FROM tcc._gtx"
       " WHERE gid = %s UNION ALL SELECT xmin::text FROM tcc._branch"
       " WHERE gid = %s) s (x)", (gid, gid)), 1,
    "tcc_run: one worker commit wrote the transaction and its branches")
run(conn, "COMMIT")
is_(wait_final(gid), "confirmed", "tcc_run: the caller's COMMIT confirms")
is_(q1("SELECT kind || '/' || business_key FROM tcc.transactions"
       " WHERE gid = %s", (gid,)), "order/t140-run",
    "tcc_run: kind and business key recorded")
err = error_of(conn, "SELECT tcc_run(%s, '1 min', 'order', 't140-run')",
               (arr(spec("/t140/ok/1")),))
is_(pgcode(err), "23505", "tcc_run: a repeated business key is 23505")

run(conn, "BEGIN")
gid = run1(conn, "SELECT gid FROM tcc_run(%s)",
           (arr(spec("/t140/rb/1"), spec("/t140/rb/2")),))
run(conn, "ROLLBACK")
is_(wait_final(gid, PROMPT), "cancelled",
    "tcc_run rolled back: cancelled promptly")
is_(cancels_and_confirms(gid), ([1, 2], []),
    "tcc_run rolled back: both cancelled, no confirm")

# ---------------------------------------------------------------- refused
tp_rule("/t140/ref/2/try", status=409, body='{"why":"no"}')
tp_rule("/t140/ref/3/try", delay_ms=1000)
run(conn, "BEGIN")
gid = run1(conn, "SELECT tcc_begin('1 hour')")
started = time.monotonic()
err = error_of(conn, "SELECT tcc_branches(%s, %s)", (gid, arr(
    spec("/t140/ref/1", "debit"), spec("/t140/ref/2", "credit"),
    spec("/t140/ref/3", "fee"))))
took = time.monotonic() - started
run(conn, "ROLLBACK")
is_(pgcode(err), "TC001", "refused: TC001")
like(message(err), r"^try of branch 2 \(credit\) refused by the participant$",
     "refused: the message names branch 2")
ok(took >= 0.9, "refused: raised after the slow try answered too (%.2f s)"
   % took)
is_(sorted(r["branch"] for r in tries_seen(gid)), [1, 2, 3],
    "refused: all three tries were sent")
is_(wait_final(gid, PROMPT), "cancelled", "refused: cancelled")
is_(cancels_and_confirms(gid), ([1, 3], []),
    "refused: branches 1 and 3 cancelled, the refused one not")
is_(branch_statuses(gid), ["cancelled", "skipped", "cancelled"],
    "refused: branch statuses")

# tcc_run refused in autocommit: its transaction is the statement's
err = error_of(conn, "SELECT tcc_run(%s, kind => 'order',"
               " business_key => 't140-run-ref')",
               (arr(spec("/t140/ref/1"), spec("/t140/ref/2", "credit")),))
is_(pgcode(err), "TC001", "tcc_run refused: TC001")
gid = q1("SELECT gid FROM tcc.transactions WHERE business_key ="
         " 't140-run-ref'")
is_(wait_final(gid, PROMPT), "cancelled", "tcc_run refused: cancelled")
is_(cancels_and_confirms(gid), ([1], []),
    "tcc_run refused: branch 1 cancelled, no confirm")

# ---------------------------------------------------------------- unknown
tp_rule("/t140/unk/1/try", status=500)
run(conn, "BEGIN")
gid = run1(conn, "SELECT tcc_begin('1 hour')")
err = error_of(conn, "SELECT tcc_branches(%s, %s)", (gid, arr(
    spec("/t140/unk/1"), spec("/t140/unk/2"), spec("/t140/unk/3"))))
run(conn, "ROLLBACK")
is_(pgcode(err), "TC002", "unknown: TC002")
like(message(err), r"^outcome of the try of branch 1 is unknown: HTTP 500$",
     "unknown: the message names branch 1")
is_(wait_final(gid, PROMPT), "cancelled", "unknown: cancelled")
is_(cancels_and_confirms(gid), ([1, 2, 3], []),
    "unknown: all three cancelled (an unknown try gets its cancel)")

# ---------------------------------------------------------------- overlap
for i in (1, 2, 3):
    tp_rule("/t140/par/%d/try" % i, delay_ms=1000)
started = time.monotonic()
gid = run1(conn, "SELECT gid FROM tcc_run(%s)", (arr(
    spec("/t140/par/1"), spec("/t140/par/2"), spec("/t140/par/3")),))
took = time.monotonic() - started
ok(took < 2.0, "overlap: three 1-s tries took %.2f s (< 2 s)" % took)
ats = sorted(r["at"] for r in tries_seen(gid))
spread = (ats[-1] - ats[0]).total_seconds() if len(ats) == 3 else None
ok(spread is not None and spread < 0.5,
   "overlap: the participant received the three tries within %s s" % spread)
is_(wait_final(gid), "confirmed", "overlap: confirmed")

# ---------------------------------------------------------------- interrupted
for i in (1, 2):
    tp_rule("/t140/int/%d/try" % i, delay_ms=5000)
run(conn, "SET statement_timeout = '500ms'")
gid = run1(conn, "SELECT tcc_begin('1 hour')")
started = time.monotonic()
err = error_of(conn, "SELECT tcc_branches(%s, %s)", (gid, arr(
    spec("/t140/int/1"), spec("/t140/int/2"))))
took = time.monotonic() - started
run(conn, "RESET statement_timeout")
is_(pgcode(err), "57014", "statement_timeout: 57014")
ok(took < 1.5, "statement_timeout: stopped the tries in %.2f s" % took)
is_(wait_final(gid, PROMPT), "cancelled",
    "statement_timeout: cancelled well before the deadline")
ok("confirm" not in {r["op"] for r in calls(gid)},
   "statement_timeout: no confirm")

gid = run1(conn, "SELECT tcc_begin('1 hour')")
pid = run1(conn, "SELECT pg_backend_pid()")
bg = Background(lambda: run(conn, "SELECT tcc_branches(%s, %s)", (gid, arr(
    spec("/t140/int/1"), spec("/t140/int/2")))))
ok(wait_until(lambda: len(tries_seen(gid)) == 2, 10),
   "pg_cancel_backend: both tries reached the participant")
cancelled_at = time.monotonic()
q("SELECT pg_cancel_backend(%s)", (pid,))
kind, res = bg.result(10)
took = time.monotonic() - cancelled_at
is_((kind, getattr(res, "pgcode", None)), ("error", "57014"),
    "pg_cancel_backend: 57014")
ok(took < 1.0, "pg_cancel_backend: returned in %.2f s" % took)
is_(wait_final(gid, PROMPT), "cancelled", "pg_cancel_backend: cancelled")
conn.close()

# ---------------------------------------------------------------- killed
for how in ("terminate", "sigkill"):
    prefix = "/t140/kill-%s" % how
    for i in (1, 2, 3):
        tp_rule("%s/%d/try" % (prefix, i), delay_ms=3000)
    c = connect(autocommit=True)
    pid = run1(c, "SELECT pg_backend_pid()")
    run(c, "BEGIN")
    gid = run1(c, "SELECT tcc_begin('1 hour')")
    bg = Background(lambda: run(c, "SELECT tcc_branches(%s, %s)", (gid, arr(
        spec(prefix + "/1"), spec(prefix + "/2"), spec(prefix + "/3")))))
    ok(wait_until(lambda: len(tries_seen(gid)) == 3, 10),
       "%s: the three tries are in flight" % how)
    if how == "terminate":
        is_(terminate(pid), True, "terminate: pg_terminate_backend")
    else:
        ok(sigkill_and_wait(pid) is not None,
           "sigkill: the cluster recovered")
    bg.result(15)
    try:
        c.close()
    except Exception:  # noqa: BLE001 - the connection is gone
        pass
    is_(q1("SELECT count(*) FROM tcc.branches WHERE gid = %s", (gid,)), 3,
        "%s: the three branches survived (R1)" % how)
    is_(wait_final(gid, PROMPT + 20), "cancelled", "%s: cancelled" % how)
    is_(cancels_and_confirms(gid), ([1, 2, 3], []),
        "%s: every branch whose try went out got its cancel, no confirm"
        % how)

# ---------------------------------------------------------------- isolation
q("CREATE TABLE IF NOT EXISTS t140_local (gid uuid PRIMARY KEY,"
  " level text NOT NULL)")
for level in ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", None):
    name = level or "autocommit"
    c = connect(autocommit=True)
    b = arr(spec("/t140/iso/1"), spec("/t140/iso/2"))
    try:
        if level:
            run(c, "BEGIN ISOLATION LEVEL %s" % level)
            run(c, "SELECT count(*) FROM t140_local")
            gid = run1(c, "SELECT gid FROM tcc_run(%s)", (b,))
            run(c, "INSERT INTO t140_local VALUES (%s, %s)", (gid, name))
            run(c, "COMMIT")
        else:
            gid = run1(c, "SELECT gid FROM tcc_run(%s)", (b,))
        is_(wait_final(gid), "confirmed", "%s: tcc_run confirmed" % name)
        # tcc_branches step by step at the same level
        if level:
            run(c, "BEGIN ISOLATION LEVEL %s" % level)
            run(c, "SELECT count(*) FROM t140_local")
        gid = run1(c, "SELECT tcc_begin('1 min')")
        run(c, "SELECT tcc_branches(%s, %s)", (gid, b))
        run(c, "SELECT tcc_finish(%s)", (gid,))
        if level:
            run(c, "COMMIT")
        is_(wait_final(gid), "confirmed",
            "%s: tcc_begin, tcc_branches, tcc_finish confirmed" % name)
    except Exception as e:  # noqa: BLE001 - reported as a failure
        ok(False, "%s: %s" % (name, e))
        diag(str(e))
    finally:
        c.close()

done_testing()
