#!/usr/bin/python3
# Retries of a failing confirm, with backoff and Retry-After.
#
# docs/protocol.md (a confirm answered 503 or 429 is retried and a Retry-After
# header, in seconds or as an HTTP date, is honoured; a 409 on confirm is a
# protocol error, retried; a timeout is retried with backoff), docs/worker.md
# (backoff: attempt n waits tcc.retry_interval * 2^(n-1), capped, +/-10 %
# jitter) and docs/api.md#views (every HTTP call is recorded in tcc.attempts).
# The test cluster runs with tcc.retry_interval = 200ms and
# tcc.retry_max_interval = 2s (test/run.sh).

import email.utils
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_statuses, branch_urls,  # noqa: E402
                      calls, connect, gaps, run, run1, status,
                      system_settings, tp_rule, wait_final)
from tcclib import (diag, done_testing, is_, note, ok,  # noqa: E402
                    wait_until)

RETRY_INTERVAL = 0.2


def start(prefix):
    """Begin, one branch under prefix, finish and commit; returns the gid."""
    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    run(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
        (gid,) + branch_urls(prefix))
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    conn.commit()
    conn.close()
    return gid


# The scenarios without setting changes run side by side: each is a global
# transaction of its own, so they do not wait for each other.
RULES = {
    # 503 three times, then 200: four attempts with growing gaps
    "backoff": dict(fail_next=3, fail_status=503),
    # Retry-After: 1 on a failing confirm: the next attempt waits a second
    # although tcc.retry_interval is 200 ms
    "retry-after-503": dict(fail_next=1, fail_status=503, retry_after="1"),
    "retry-after-429": dict(fail_next=1, fail_status=429, retry_after="1"),
    # Retry-After as an HTTP date about 3 s ahead (whole seconds)
    "retry-after-date": dict(fail_next=1, fail_status=503,
                             retry_after=email.utils.formatdate(
                                 time.time() + 3, usegmt=True)),
    # 409 is a protocol error for confirm: logged and retried, not final
    "conflict": dict(fail_next=2, fail_status=409),
}
gids = {}
for name, rule in RULES.items():
    tp_rule("/t050/%s/1/confirm" % name, **rule)
    gids[name] = start("/t050/%s/1" % name)

# ---- backoff
gid = gids["backoff"]
is_(wait_final(gid, 10), "confirmed",
    "backoff: confirmed after three 503 answers")
is_(branch_statuses(gid), ["confirmed"], "backoff: the branch is confirmed")
rows = attempts(gid, "confirm")
is_([a["http_status"] for a in rows], [503, 503, 503, 200],
    "backoff: exactly four confirm attempts in tcc.attempts: 503 x3, 200")
ok(all(a["error"] for a in rows[:3]) and rows[-1:] and not rows[-1]["error"],
   "backoff: failed attempts carry an error, the successful one none")
reqs = calls(gid, "confirm")
is_([r["status"] for r in reqs], [503, 503, 503, 200],
    "backoff: the participant saw the same four confirms")
g = gaps(reqs)
diag_gaps = "gaps (s): %s" % ", ".join("%.3f" % x for x in g)
if not ok(len(g) == 3 and g[0] >= RETRY_INTERVAL * 0.85,
          "backoff: the first retry waits about tcc.retry_interval"):
    diag(diag_gaps)
if not ok(len(g) == 3 and g[0] < g[1] < g[2],
          "backoff: the gaps between attempts grow"):
    diag(diag_gaps)
# 200, 400, 800 ms with +/-10 % jitter: each gap at least ~1.5x the last
if not ok(len(g) == 3 and g[1] >= 1.5 * g[0] and g[2] >= 1.5 * g[1],
          "backoff: each gap roughly doubles the previous one"):
    diag(diag_gaps)
is_(len(calls(gid, "try")), 1, "backoff: the try was sent once")

# ---- Retry-After in seconds
for code in (503, 429):
    gid = gids["retry-after-%d" % code]
    is_(wait_final(gid, 10), "confirmed",
        "retry-after %d: confirmed after one failing answer" % code)
    reqs = calls(gid, "confirm")
    is_([r["status"] for r in reqs], [code, 200],
        "retry-after %d: two confirms, %d then 200" % (code, code))
    g = gaps(reqs)
    if not ok(len(g) == 1 and g[0] >= 0.95,
              "retry-after %d: the retry came at least 1 s later" % code):
        diag("gap (s): %r" % (g,))
    is_([a["http_status"] for a in attempts(gid, "confirm")], [code, 200],
        "retry-after %d: tcc.attempts records both" % code)

# ---- Retry-After as an HTTP date
gid = gids["retry-after-date"]
is_(wait_final(gid, 10), "confirmed",
    "retry-after date: confirmed after one 503")
g = gaps(calls(gid, "confirm"))
if not ok(len(g) == 1 and g[0] >= 1.5,
          "retry-after date: the retry waited for the date (about 2-3 s)"):
    diag("gap (s): %r" % (g,))

# ---- 409 on confirm
gid = gids["conflict"]
is_(wait_final(gid, 10), "confirmed", "409: confirmed after two 409 answers")
is_([a["http_status"] for a in attempts(gid, "confirm")], [409, 409, 200],
    "409: the confirm was retried until 200")
is_(calls(gid, "cancel"), [], "409: no cancel was sent")

# A confirm that times out (tcc.request_timeout, a sighup setting for the
# worker) is retried with backoff.
prefix = "/t050/timeout/1"
tp_rule(prefix + "/confirm", delay_ms=1500)
with system_settings(request_timeout="300ms"):
    gid = start(prefix)
    timed_out = wait_until(
        lambda: len([a for a in attempts(gid, "confirm") if a["error"]]) >= 2,
        10)
    ok(timed_out, "timeout: confirm attempts time out and are retried")
    rows = attempts(gid, "confirm")
    ok(rows and all(a["http_status"] is None and a["error"]
                    and a["duration_ms"] < 1000 for a in rows),
       "timeout: each attempt gave up after about 300 ms, with an error")
    if rows:
        note("timeout: %s after %.0f ms" % (rows[0]["error"],
                                            rows[0]["duration_ms"]))
    is_(status(gid), "confirming", "timeout: still confirming")
    tp_rule(prefix + "/confirm", delay_ms=0)
    is_(wait_final(gid, 10), "confirmed",
        "timeout: confirmed once the participant answers in time")

done_testing()
