#!/usr/bin/python3
# A large backlog read back at worker start costs the worker memory in
# proportion to it, and no more while it is read than once it is read: with
# 150,000 decided transactions whose confirms cannot be delivered (one
# participant refusing connections, one down), the restarted worker's
# private memory never exceeds a fixed bound per pending transaction.  And
# nothing is lost on the way: once the participant that was down listens
# again, every one of its pending confirms is delivered.
#
# R5 of docs/guarantees.md (retries survive a restart: the worker reads
# every pending call back) and docs/worker.md (the worker's cost follows the
# pending work).  The backlog is written straight into the coordinator tables, as a
# crash leaves it, so the test takes seconds, not the minutes 150,000
# tcc_begin / tcc_branch / tcc_finish round trips would.
# TCC_T604_N sets the refused backlog (default 150000).

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import connect, q1, resolve_confirming, run, wait_until  # noqa: E402
from tcclib import (diag, done_testing, kill_backend, ok,  # noqa: E402
                    rss_anon_kb, tp_down, tp_up, tp_url, wait_worker,
                    worker_pid)

N = int(os.environ.get("TCC_T604_N", "150000"))
# confirms to a participant that is down, then back
BACK = 2000
# nothing listens on port 1: every call is refused at once
DEAD = "http://127.0.0.1:1/t604/confirm"
# a worker that just started, before it reads anything back
BASE_KB = 8 * 1024
# bytes of worker memory per pending transaction, at the peak of the
# read-back: the schedule needs under 200; reading a backlog back once held
# another 150 or so per transaction until the read-back ended
PER_PENDING = 250


def pile(conn, n, url):
    """Writes n decided transactions whose one confirm goes to url."""
    run(conn, """
        CREATE TEMP TABLE t604_g AS
          SELECT pg_catalog.gen_random_uuid() AS gid
            FROM pg_catalog.generate_series(1, %d);
        INSERT INTO tcc._gtx (gid, owner, parallel, deadline, status)
          SELECT gid, (SELECT oid FROM pg_roles WHERE rolname = current_user),
                 false, now() + interval '1 h', 'confirming' FROM t604_g;
        INSERT INTO tcc._decision (gid, commit, source, decided_by)
          SELECT gid, true, 'caller',
                 (SELECT oid FROM pg_roles WHERE rolname = current_user)
            FROM t604_g;
        INSERT INTO tcc._branch (gid, branch, confirm_url, payload)
          SELECT gid, 1, %%s, '{"k":1}' FROM t604_g;
        DROP TABLE t604_g;
        """ % n, (url,))


def pending(url):
    """Transactions of this test confirming to url."""
    return q1("SELECT count(*) FROM tcc._gtx g JOIN tcc._branch b USING (gid)"
              " WHERE b.confirm_url = %s AND g.status = 'confirming'", (url,))


back_url = tp_url("/t604/confirm")
tp_down()
conn = connect(autocommit=False)
t0 = time.monotonic()
pile(conn, N, DEAD)
pile(conn, BACK, back_url)
conn.commit()
run(conn, "ANALYZE tcc._gtx, tcc._branch, tcc._decision")
conn.commit()
conn.close()
diag("%d + %d pending written in %.1f s"
     % (N, BACK, time.monotonic() - t0))

pid = worker_pid()
ok(pid is not None, "the worker runs")
kill_backend(pid)
new = wait_worker(30, other_than=pid)
ok(new is not None, "the worker is back after a restart")

# the worker's private memory, sampled while it reads the backlog back
peak = [0]
stop = threading.Event()


def sample():
    while not stop.is_set():
        try:
            kb = rss_anon_kb(new)
        except OSError:
            return
        peak[0] = max(peak[0], kb or 0)
        time.sleep(0.01)


sampler = threading.Thread(target=sample)
sampler.start()
try:
    # the first call goes out once the whole backlog is read back
    started = wait_until(
        lambda: q1("SELECT count(*) FROM tcc._attempt a"
                   "  JOIN tcc._branch b USING (gid, branch)"
                   " WHERE b.confirm_url = %s", (DEAD,)) > 0, 120, 0.2)
    time.sleep(1)
finally:
    stop.set()
    sampler.join()
ok(started, "the worker calls again after reading the backlog back")
held = rss_anon_kb(new)
diag("restarted worker RssAnon: peak %d kB, %d kB with the backlog read"
     " (%d B per pending at the peak)"
     % (peak[0], held, (peak[0] * 1024 - BASE_KB * 1024) // (N + BACK)))
ok(peak[0] * 1024 < BASE_KB * 1024 + PER_PENDING * (N + BACK),
   "reading the backlog back takes under %d B per pending transaction"
   % PER_PENDING)

# the participant is back: each of its confirms arrives, none is lost
tp_up()
ok(wait_until(lambda: pending(back_url) == 0, 120, 0.2),
   "all %d confirms to the participant that was down are done" % BACK)
missing = q1("SELECT count(*) FROM tcc._branch b"
             " WHERE b.confirm_url = %s AND NOT EXISTS ("
             "   SELECT 1 FROM tp.requests r"
             "    WHERE r.gid = b.gid AND r.op = 'confirm')", (back_url,))
ok(missing == 0, "the participant received every one of them (%d missing)"
   % missing)
ok(wait_until(
    lambda: q1("SELECT count(DISTINCT a.gid) FROM tcc._attempt a"
               "  JOIN tcc._branch b USING (gid, branch)"
               " WHERE b.confirm_url = %s", (DEAD,)) >= N, 120, 2),
   "each of the %d refused confirms was tried after the restart" % N)
ok(pending(DEAD) == N, "the refused ones are all still pending")

# clean up: nothing is called for these any more
resolve_confirming(DEAD)
done_testing()
