#!/usr/bin/python3
# A branch's own policy and the try's answer passed on
# (docs/api.md#per-branch-policy,
# docs/protocol.md#the-trys-answer-in-confirm-and-cancel):
#
#   try timeout    tcc_branch(timeout => '200 ms') times the try out after
#                  200 ms (TC002), tcc.request_timeout being 10 s
#   call timeout   a branch's "timeout" of tcc_branches bounds each of its
#                  confirm attempts
#   max_attempts   a branch's "max_attempts" = 2 fails its transaction after
#                  2 attempts, tcc.max_attempts being 50; tcc_retry gives it
#                  2 more, not 50 less the ones made
#   view           tcc.branches shows timeout and max_attempts (NULL: the
#                  settings), keys of tcc_run too
#   pass           with pass_try_response, confirm and cancel carry
#                  {"payload": ..., "try_response": ...} and Tcc-Body:
#                  wrapped; the try and the other branches are unchanged;
#                  the answer survives the caller's ROLLBACK and a
#                  sibling's refused try (the cancel carries it); an answer
#                  that is not JSON is null

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_urls, calls, connect,  # noqa: E402
                      error_of, header, pgcode, run, run1, wait_calls,
                      wait_final, wait_status)
from tcclib import done_testing, is_, ok, q, q1, tp_rule  # noqa: E402


def spec(prefix, **extra):
    """One element of a branches array with the participant's URLs."""
    t, c, x = branch_urls(prefix)
    return dict({"try": t, "confirm": c, "cancel": x}, **extra)


for p in ("/t811/slow", "/t811/calls", "/t811/plain", "/t811/pass",
          "/t811/rb", "/t811/text", "/t811/run"):
    for op in ("try", "confirm", "cancel"):
        tp_rule("%s/%s" % (p, op))

# ---- try timeout
tp_rule("/t811/slow/try", delay_ms=3000)
conn = connect()
gid = q1("SELECT tcc_begin('1 min')")
t0 = time.monotonic()
err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s, timeout => '200 ms')",
               (gid,) + branch_urls("/t811/slow"))
took = time.monotonic() - t0
is_(pgcode(err), "TC002", "try timeout: the try timed out: TC002")
ok(took < 2, "try timeout: after the branch's 200 ms (%.2f s)" % took)
conn.close()

# ---- call timeout and max_attempts
tp_rule("/t811/calls/confirm", delay_ms=3000)
gid = q1("SELECT tcc_begin('1 min')")
q("SELECT tcc_branches(%s, %s)", (gid, json.dumps([
    spec("/t811/calls", timeout="300 ms", max_attempts=2),
    spec("/t811/plain")])))
is_(q("SELECT branch, timeout::text, max_attempts FROM tcc.branches"
      " WHERE gid = %s ORDER BY branch", (gid,)),
    [(1, "00:00:00.3", 2), (2, None, None)],
    "view: tcc.branches shows the branch's timeout and max_attempts,"
    " NULL for the settings")
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_status(gid, ["failed"], 20), "failed",
    "max_attempts: failed after the branch's own limit")
made = attempts(gid, "confirm", 1)
is_(len(made), 2, "max_attempts: after 2 attempts, tcc.max_attempts being 50")
ok(made and all(a["duration_ms"] < 2000 for a in made),
   "call timeout: each confirm attempt was cut at the branch's 300 ms (%s)"
   % [round(a["duration_ms"]) for a in made])
q("SELECT tcc_retry(%s)", (gid,))
is_(wait_status(gid, ["failed"], 20), "failed",
    "max_attempts: failed again after tcc_retry")
is_(len(attempts(gid, "confirm", 1)), 4,
    "max_attempts: tcc_retry gave the branch its 2 attempts again")
q("SELECT tcc_resolve(%s, 'test over')", (gid,))

# tcc_run's elements take the same keys
row = q("SELECT gid FROM tcc_run(%s)", (json.dumps([
    spec("/t811/run", timeout="1 s", max_attempts=7,
         pass_try_response=True)]),))
is_(q("SELECT timeout::text, max_attempts, pass_try_response"
      " FROM tcc.branches WHERE gid = %s", (row[0][0],)),
    [("00:00:01", 7, True)], "view: tcc_run's element keys")

# ---- pass: the try's answer in confirm
tp_rule("/t811/pass/try", body='{"id": 42}')
gid = q1("SELECT tcc_begin('1 min')")
q("SELECT tcc_branch(%s, %s, %s, %s, '{\"amount\": 5}',"
  " pass_try_response => true)", (gid,) + branch_urls("/t811/pass"))
q("SELECT tcc_branch(%s, %s, %s, %s, '{\"amount\": 6}')",
  (gid,) + branch_urls("/t811/plain"))
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "pass: confirmed")
try_req = calls(gid, "try", 1)[0]
confirm = calls(gid, "confirm", 1)[0]
plain = calls(gid, "confirm", 2)[0]
is_(json.loads(try_req["body"]), {"amount": 5}, "pass: the try is unchanged")
is_(header(try_req, "Tcc-Body"), None, "pass: the try has no Tcc-Body")
is_(json.loads(confirm["body"]),
    {"payload": {"amount": 5}, "try_response": {"id": 42}},
    "pass: the confirm carries the payload and the try's answer")
is_(header(confirm, "Tcc-Body"), "wrapped",
    "pass: the confirm says Tcc-Body: wrapped")
is_((json.loads(plain["body"]), header(plain, "Tcc-Body")),
    ({"amount": 6}, None), "pass: a branch without it gets the bare payload")

# the caller rolls back after the try: the cancel carries the answer
tp_rule("/t811/rb/try", body='{"id": 7}')
conn = connect()
run(conn, "BEGIN")
gid = run1(conn, "SELECT tcc_begin('1 min')")
run(conn, "SELECT tcc_branch(%s, %s, %s, %s, pass_try_response => true)",
    (gid,) + branch_urls("/t811/rb"))
run(conn, "ROLLBACK")
conn.close()
ok(wait_calls(gid, "cancel", 1), "pass: rolled back, the branch is cancelled")
is_(json.loads(calls(gid, "cancel")[0]["body"]),
    {"payload": {}, "try_response": {"id": 7}},
    "pass: the cancel carries the answer, the caller's ROLLBACK"
    " notwithstanding")

# a sibling's try is refused: the cancel carries the answer all the same
tp_rule("/t811/sib/try", body='{"id": 9}')
tp_rule("/t811/sib/confirm")
tp_rule("/t811/sib/cancel")
tp_rule("/t811/no/try", status=409)
gid = q1("SELECT tcc_begin('1 min')")
err = error_of(connect(), "SELECT tcc_branches(%s, %s)", (gid, json.dumps([
    spec("/t811/sib", pass_try_response=True), spec("/t811/no")])))
is_(pgcode(err), "TC001", "pass: a sibling's try is refused")
ok(wait_calls(gid, "cancel", 1), "pass: the branch tried is cancelled")
is_(json.loads(calls(gid, "cancel", 1)[0]["body"]),
    {"payload": {}, "try_response": {"id": 9}},
    "pass: its cancel carries its try's answer")

# an answer that is not JSON is passed as null
tp_rule("/t811/text/try", body="created", content_type="text/plain")
gid = q1("SELECT tcc_begin('1 min')")
q("SELECT tcc_branch(%s, %s, %s, %s, pass_try_response => true)",
  (gid,) + branch_urls("/t811/text"))
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "pass: a text answer, confirmed")
is_(json.loads(calls(gid, "confirm")[0]["body"]),
    {"payload": {}, "try_response": None},
    "pass: an answer that is not JSON is passed as null")

done_testing()
