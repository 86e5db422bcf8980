#!/usr/bin/python3
# Pausing a destination (docs/api.md#pausing-a-destination, docs/worker.md):
#
#   held       while the test participant's destination is paused, its
#              confirm and cancel calls are not sent and count no attempt,
#              even with tcc.max_attempts = 1 (a paused destination never
#              makes a transaction failed); calls to another destination
#              (a witness server of the test's own) go on meanwhile
#   try        a try to the paused destination fails at once with TC002
#              and a message that says paused, and is not sent
#   view       tcc.destinations shows the pause (who, note) and the calls
#              held
#   restart    the pause survives a restart of the server (it is a row)
#   resume     tcc_resume makes the held calls due at once, a call waiting
#              out a one-hour backoff included: every transaction settles
#              within seconds; another destination's call waiting out its
#              backoff still waits

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_urls, calls, connect,  # noqa: E402
                      error_of, message, pgcode, system_settings,
                      wait_calls, wait_final)
from tcclib import (PostHandler, done_testing, is_, like, ok, q, q1,  # noqa: E402
                    restart, serve_http, tp_rule, wait_until, wait_worker)

DEST = "http://127.0.0.1:%s" % os.environ["TCC_TP_PORT"]


class Witness(PostHandler):
    """Answers 200, but 503 to the first call of a path ending in /flaky:
    the destination that is not paused."""

    flaky = 0

    def do_POST(self):
        self.read_body()
        if self.path.endswith("/flaky"):
            Witness.flaky += 1
            if Witness.flaky == 1:
                self.answer(503, b"{}")
                return
        self.answer(200, b"{}")


witness, witness_url = serve_http(Witness)


def witness_confirmed():
    """A transaction whose only branch (confirm) is at the witness is
    confirmed: the worker goes on with other destinations' calls."""
    gid = q1("SELECT tcc_begin('1 min')")
    q("SELECT tcc_branch(%s, NULL, %s, NULL)", (gid, witness_url + "/c"))
    q("SELECT tcc_finish(%s)", (gid,))
    return wait_final(gid) == "confirmed"


def destination():
    """The tcc.destinations row of the test participant, as a dict."""
    rows = q("SELECT row_to_json(d) FROM tcc.destinations d"
             " WHERE destination = %s", (DEST,))
    return rows[0][0] if rows else None


def begin_branch(path):
    """A transaction with one branch at the test participant; the gid."""
    gid = q1("SELECT tcc_begin('10 min')")
    q("SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + branch_urls(path))
    return gid


for p in ("/t810/a", "/t810/b", "/t810/d"):
    for op in ("try", "confirm", "cancel"):
        tp_rule("%s/%s" % (p, op))

try:
    # a confirm that fails once and then waits out a backoff of an hour
    with system_settings(retry_interval="1h", retry_max_interval="1h",
                         max_attempts=1000):
        tp_rule("/t810/d/confirm", fail_next=1, fail_status=503)
        late = begin_branch("/t810/d")
        q("SELECT tcc_finish(%s)", (late,))
        ok(wait_until(lambda: len(attempts(late, "confirm")) == 1, 10),
           "setup: a confirm failed once and waits for its retry in an hour")

        held = begin_branch("/t810/a")     # tried before the pause
        q("SELECT tcc_pause(%s, 'participant maintenance')", (DEST,))

    with system_settings(retry_interval="1h", retry_max_interval="1h",
                         max_attempts=1):
        q("SELECT tcc_finish(%s)", (held,))
        # ---- held
        ok(witness_confirmed(),
           "held: a transaction at another destination is confirmed")
        is_(calls(held, "confirm"), [],
            "held: no confirm was sent to the paused destination")
        is_(q1("SELECT attempts FROM tcc.branches WHERE gid = %s", (held,)), 0,
            "held: the held call counts no attempt")
        is_(q1("SELECT status FROM tcc.transactions WHERE gid = %s", (held,)),
            "confirming", "held: not failed with tcc.max_attempts = 1")

        # ---- try
        conn = connect()
        tried = q1("SELECT tcc_begin('10 min')")
        t0 = time.monotonic()
        err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                       (tried,) + branch_urls("/t810/b"))
        took = time.monotonic() - t0
        conn.close()
        is_(pgcode(err), "TC002", "try: TC002")
        like(message(err), r"destination %s is paused" % DEST,
             "try: the message says the destination is paused")
        ok(took < 2, "try: it fails at once (%.2f s)" % took)
        is_(calls(tried), [], "try: the try was not sent")

        # ---- view
        row = destination()
        ok(row is not None and row["paused"] and
           row["note"] == "participant maintenance" and
           row["paused_by"] == "postgres" and row["paused_at"] is not None,
           "view: tcc.destinations shows the pause, who paused and why")
        ok(wait_until(lambda: (destination() or {}).get("calls_due") == 3, 10),
           "view: three calls held (two confirms, one waiting out its"
           " backoff, and the cancel of the try that failed)")
        is_((destination() or {}).get("in_flight"), 0, "view: none in flight")

        # ---- restart
        restart()
        wait_worker()
        ok((destination() or {}).get("paused"),
           "restart: the destination is still paused")
        ok(witness_confirmed(),
           "restart: the worker confirms at another destination")
        is_(calls(held, "confirm"), [],
            "restart: still no confirm to the paused destination")
        # a confirm at another destination that waits out an hour's backoff
        other = q1("SELECT tcc_begin('10 min')")
        q("SELECT tcc_branch(%s, NULL, %s, NULL, max_attempts => 5)",
          (other, witness_url + "/flaky"))
        q("SELECT tcc_finish(%s)", (other,))
        ok(wait_until(lambda: len(attempts(other, "confirm")) == 1, 10),
           "restart: a confirm at another destination failed once")

    # ---- resume: retry_interval is an hour again, the calls due at once
    with system_settings(retry_interval="1h", retry_max_interval="1h"):
        t0 = time.monotonic()
        q("SELECT tcc_resume(%s)", (DEST,))
        is_([wait_final(g, 10) for g in (held, late)],
            ["confirmed", "confirmed"],
            "resume: the held confirm and the one waiting out its backoff"
            " are confirmed")
        ok(time.monotonic() - t0 < 10,
           "resume: within seconds (%.1f s), not an hour"
           % (time.monotonic() - t0))
        ok(wait_calls(tried, "cancel", 1), "resume: the held cancel is sent")
        is_(wait_final(tried), "cancelled",
            "resume: the transaction whose try was held is cancelled")
        is_(q1("SELECT count(*) FROM tcc.destinations WHERE paused"), 0,
            "resume: no destination is paused")
        is_((len(attempts(other, "confirm")),
             q1("SELECT status FROM tcc.transactions WHERE gid = %s",
                (other,))), (1, "confirming"),
            "resume: the other destination's call still waits out its"
            " backoff")
        q("SELECT tcc_retry(%s)", (other,))
        is_(wait_final(other), "confirmed", "and tcc_retry confirms it")
finally:
    q("DELETE FROM tcc._pause")
    q("SELECT tcc_resume(%s)", (DEST,))
    witness.shutdown()

done_testing()
