#!/usr/bin/python3
# A try whose outcome is unknown: timeout, HTTP 500, connection refused (and
# two more rows of the table: 503, connection closed without an answer).
#
# docs/api.md (try outcome unknown raises SQLSTATE TC002 and the global
# transaction starts cancelling at once), docs/protocol.md (response table:
# 503, any other non-2xx, timeout and connection errors are "unknown" for a
# try; a try is never retried) and docs/states.md (cancel is sent to every
# branch whose try succeeded *or whose outcome is unknown*, in reverse
# registration order). tcc.request_timeout is a user setting for the try
# (docs/settings.md).

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_statuses, branch_urls,  # noqa: E402
                      calls, connect, error_of, message, pgcode, run, run1,
                      tp_rule, wait_status)
from tcclib import diag, done_testing, is_, like, ok  # noqa: E402


def scenario(name, setup, urls=None, settings=None, max_seconds=None):
    """Branch 1 succeeds, branch 2's try has an unknown outcome.

    setup(prefix) installs the participant rules of branch 2; urls, when
    given, replaces branch 2's URLs; settings are SET on the caller's
    session; max_seconds bounds how long the failing tcc_branch may take.
    """
    p1, p2 = "/t040/%s/1" % name, "/t040/%s/2" % name
    setup(p2)
    conn = connect()
    for k, v in (settings or {}).items():
        run(conn, "SET %s = %%s" % k, (v,))
    gid = run1(conn, "SELECT tcc_begin('1 hour')")
    run(conn, "SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + branch_urls(p1))
    t0 = time.monotonic()
    err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                   (gid,) + (urls or branch_urls(p2)))
    elapsed = time.monotonic() - t0
    conn.close()

    if not is_(pgcode(err), "TC002", "%s: the try raises TC002" % name):
        diag("error: %s" % (err,))
    like(message(err), r"branch 2", "%s: the error names branch 2" % name)
    if max_seconds is not None:
        ok(elapsed < max_seconds,
           "%s: tcc_branch gave up within %.1f s (%.2f s)"
           % (name, max_seconds, elapsed))

    is_(wait_status(gid, "cancelled", 10), "cancelled",
        "%s: the global transaction ends cancelled" % name)
    is_(branch_statuses(gid), ["cancelled", "cancelled"],
        "%s: the unknown branch 2 is cancelled too, as is branch 1" % name)
    cancels = calls(gid, "cancel")
    is_([r["branch"] for r in cancels], [2, 1],
        "%s: cancel sent to branch 2, then branch 1" % name)
    is_(calls(gid, "confirm"), [], "%s: no confirm was sent" % name)
    tries = attempts(gid, "try", 2)
    if not ok(len(tries) == 1 and tries[0]["error"] is not None,
              "%s: tcc.attempts records the one failed try of branch 2"
              " with its error" % name):
        diag("try attempts of branch 2: %r" % (tries,))
    return gid, tries


# Timeout: the participant answers after 2 s, the caller waits 300 ms.
gid, tries = scenario(
    "timeout",
    lambda p: tp_rule(p + "/try", delay_ms=2000),
    settings={"tcc.request_timeout": "300ms"}, max_seconds=1.5)
is_(len(calls(gid, "try", 2)), 1, "timeout: the try was sent once, not"
    " retried")

# HTTP 500.
gid, tries = scenario(
    "http500", lambda p: tp_rule(p + "/try", status=500))
is_(tries[0]["http_status"] if tries else None, 500,
    "http500: the attempt records HTTP 500")

# HTTP 503 (retried for confirm/cancel, but unknown for a try).
gid, tries = scenario(
    "http503", lambda p: tp_rule(p + "/try", status=503, retry_after="1"))
is_(len(calls(gid, "try", 2)), 1, "http503: the try was not retried")

# The connection is closed without an answer.
scenario("closed", lambda p: tp_rule(p + "/try", status=0))

# Connection refused: nothing listens on port 1; confirm and cancel go to
# the participant, so the cancel of branch 2 can be seen.
_, confirm_url, cancel_url = branch_urls("/t040/refused/2")
scenario("refused", lambda p: None,
         urls=("http://127.0.0.1:1/t040/refused/2/try", confirm_url,
               cancel_url),
         max_seconds=5.0)

done_testing()
