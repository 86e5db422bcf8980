#!/usr/bin/python3
# A finished call's memory is freed when the call ends: with one call held
# in flight by a slow participant, 150 confirms of 512 kB payloads that
# finish meanwhile leave the worker's private memory where it was.
#
# docs/worker.md (one worker serves every participant; no participant can
# hold the worker up for the others -- nor make it keep what others sent).

import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, connect, q, q1, run, run1,  # noqa: E402
                      system_settings, tp_rule, wait_until)
from tcclib import (diag, done_testing, ok, rss_anon_kb,  # noqa: E402
                    tp_down, tp_up, worker_pid)

N = 150
PAYLOAD = '{"pad": "%s"}' % ("x" * (512 * 1024 - 12))
LIMIT_KB = 25 * 1024     # 150 x 512 kB is 75 MB
RUN = "/t605/%s" % uuid.uuid4().hex[:8]


def decided(prefix, payload="{}"):
    """A committed confirm decision on one branch under prefix; its gid."""
    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('5 min')")
    urls = branch_urls(prefix)
    run(conn, "SELECT tcc_branch(%s, NULL, %s, %s, %s)",
        (gid, urls[1], urls[2], payload))
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    conn.commit()
    conn.close()
    return gid


def confirmed(pattern):
    """Confirmed branches whose confirm URL is LIKE pattern."""
    return q1("SELECT count(*) FROM tcc.branches WHERE confirm_url LIKE %s"
              " AND status = 'confirmed'", (pattern,))


with system_settings(request_timeout="2min"):
    tp_rule(RUN + "/slow/confirm", delay_ms=90000)
    slow = decided(RUN + "/slow")
    ok(wait_until(lambda: q1("SELECT count(*) FROM tp.requests"
                             " WHERE path = %s", (RUN + "/slow/confirm",)) == 1, 10),
       "a confirm hangs at the slow participant")
    pid = worker_pid()
    # a few big confirms first, so that what any call needs once is there
    for i in range(5):
        decided(RUN + "/warm", PAYLOAD)
    ok(wait_until(lambda: confirmed("%" + RUN + "/warm/%") == 5, 30),
       "the first big confirms are done")
    base = rss_anon_kb(pid)
    for i in range(N):
        decided(RUN + "/big", PAYLOAD)
    ok(wait_until(lambda: confirmed("%" + RUN + "/big/%") == N, 120),
       "%d confirms of 512 kB each are done" % N)
    after = rss_anon_kb(pid)
    ok(q1("SELECT status FROM tcc.transactions WHERE gid = %s",
          (slow,)) == "confirming", "the slow confirm is still in flight")
    diag("worker RssAnon %d kB before, %d kB after %d confirms of 512 kB"
         " (%+d kB)" % (base, after, N, after - base))
    ok(after - base < LIMIT_KB,
       "the worker's private memory grew by less than %d MB"
       % (LIMIT_KB // 1024))
    q("SELECT tcc_resolve(%s, 'test over')", (slow,))
    # the participant breaks its connections: the slow call ends now
    tp_down()
    tp_up()
done_testing()
