#!/usr/bin/python3
# A participant that hangs does not hold the worker up for the others:
# calls to one destination (scheme, host, port) use at most their share of
# tcc.max_concurrency, and destinations are served in turn.
#
# docs/worker.md (1.1: no participant, transaction or role can hold the
# worker up for the others) and docs/settings.md (tcc.destination_share).
# With tcc.max_concurrency = 4 and the default share (25 %), one
# destination gets one slot.  The hanging destination is the participant
# reached as "localhost", the healthy one the same participant reached as
# 127.0.0.1: two destinations.

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, calls, connect, q1, run, run1,  # noqa: E402
                      system_settings, tp_rule, wait_final)
from tcclib import diag, done_testing, is_, ok, wait_until  # noqa: E402

HANG_MS = 8000
NHANG = 8
RUN = "/t602/%s" % uuid.uuid4().hex[:8]


def decided(prefix, host=None):
    """A committed confirm decision on one branch under prefix; its gid."""
    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    urls = branch_urls(prefix, host)
    run(conn, "SELECT tcc_branch(%s, NULL, %s, %s)", (gid, urls[1], urls[2]))
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    conn.commit()
    conn.close()
    return gid


def received(prefix):
    """Confirm calls the participant received under prefix."""
    return q1("SELECT count(*) FROM tp.requests WHERE path LIKE %s",
              (prefix + "%/confirm",))


with system_settings(max_concurrency=4, request_timeout="30s"):
    # calls another test left in flight would hold slots of their own
    ok(wait_until(lambda: q1("SELECT sum(in_flight) FROM tcc.worker") == 0,
                  60),
       "the worker has no call in flight to begin with")
    is_(q1("SELECT current_setting('tcc.destination_share', true)"), "25",
        "tcc.destination_share is 25 (percent) by default")
    hang = []
    for i in range(NHANG):
        path = RUN + "/hang/%d" % i
        tp_rule(path + "/confirm", delay_ms=HANG_MS)
        hang.append(decided(path, host="localhost"))
    ok(wait_until(lambda: received(RUN + "/hang/") >= 1, 10),
       "the hanging participant got its first confirm")
    time.sleep(1)           # time for more to (wrongly) go out, were they to
    is_(received(RUN + "/hang/"), 1,
        "while it hangs, its destination holds one slot of the four")

    t0 = time.monotonic()
    gid = decided(RUN + "/ok/1")
    is_(wait_final(gid, 20), "confirmed",
        "a confirm to a healthy participant completes meanwhile")
    took = time.monotonic() - t0
    diag("healthy confirm took %.2f s while %d confirms hung" % (took, NHANG))
    ok(took < 3.0, "promptly: in %.2f s (under 3 s; a slot was free)" % took)
    is_(len(calls(gid, "confirm")), 1, "it was called once")
    ok(received(RUN + "/hang/") < NHANG,
       "the hanging destination is still waiting for its turn")

    # the hanging ones all get through in turn once it answers
    for i in range(NHANG):
        tp_rule(RUN + "/hang/%d/confirm" % i, delay_ms=0)
    for g in hang:
        if wait_final(g, 60) != "confirmed":
            diag("not confirmed: %s" % g)
    ok(all(q1("SELECT status FROM tcc.transactions WHERE gid = %s",
              (str(g),)) == "confirmed" for g in hang),
       "every confirm to the slow destination is done in the end")
done_testing()
