#!/usr/bin/python3
# A backlog of pending confirms costs the worker memory in proportion to
# it, and little: with one participant refusing connections while tens of
# thousands of decided transactions pile up, and after the worker restarts
# and reads them all back, its private memory stays a few hundred bytes
# per pending transaction.
#
# docs/worker.md (one worker serves every role and participant; no participant
# can hold the worker up for the others) and R5 of docs/guarantees.md (retries
# survive a restart: the worker reads every pending call back). TCC_T601_N sets
# the backlog (default 20000).

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import connect, q1, resolve_confirming, run, wait_until  # noqa: E402
from tcclib import (diag, done_testing, ok, rss_anon_kb,  # noqa: E402
                    worker_pid)
from tcclib import kill_backend, wait_worker  # noqa: E402

N = int(os.environ.get("TCC_T601_N", "20000"))
CHUNK = 500
THREADS = 4
# nothing listens on port 1: every call is refused at once
DEAD = "http://127.0.0.1:1/t601/confirm"
# bytes of worker memory per pending transaction that count as small
PER_PENDING = 1000


def pile(count):
    """Decides count transactions whose one confirm goes to DEAD."""
    conn = connect()
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        run(conn, """
            DO $$
            DECLARE g uuid;
            BEGIN
              FOR i IN 1..%d LOOP
                g := tcc_begin('1 h');
                PERFORM tcc_branch(g, NULL, '%s', NULL, '{"k":1}');
                PERFORM tcc_finish(g, true);
              END LOOP;
            END $$""" % (n, DEAD))
        done += n
    conn.close()


def pending():
    """Transactions of this test still confirming."""
    return q1("SELECT count(*) FROM tcc._gtx g JOIN tcc._branch b USING (gid)"
              " WHERE b.confirm_url = %s AND g.status = 'confirming'", (DEAD,))


def attempts(distinct):
    """Confirm attempts of this test's transactions (or their gids)."""
    return q1("SELECT count(%s a.gid) FROM tcc._attempt a"
              "  JOIN tcc._branch b USING (gid, branch)"
              " WHERE b.confirm_url = %%s AND a.op = 'confirm'"
              % ("DISTINCT" if distinct else ""), (DEAD,))


pid = worker_pid()
ok(pid is not None, "the worker runs")
base = rss_anon_kb(pid)
diag("worker RssAnon before: %d kB" % base)

t0 = time.monotonic()
threads = [threading.Thread(target=pile, args=(N // THREADS,))
           for _ in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
total = (N // THREADS) * THREADS
diag("%d decided in %.1f s" % (total, time.monotonic() - t0))

ok(wait_until(lambda: pending() == total and attempts(True) >= total, 300),
   "every one of the %d is confirming and its confirm was tried" % total)
time.sleep(1)
grown = rss_anon_kb(pid) - base
diag("worker RssAnon after the backlog: %d kB (+%d kB, %d B per pending)"
     % (base + grown, grown, grown * 1024 // total))
if not ok(grown * 1024 < PER_PENDING * total,
          "the worker holds under %d B per pending transaction" % PER_PENDING):
    diag("grew %d kB for %d pending" % (grown, total))

# a restart reads every pending call back at once (R5)
kill_backend(pid)
new = wait_worker(30, other_than=pid)
ok(new is not None, "the worker is back after a restart")
base2 = rss_anon_kb(new)
before = attempts(False)
ok(wait_until(lambda: attempts(False) >= before + total, 300),
   "after the restart every pending confirm was tried again")
time.sleep(1)
after = rss_anon_kb(new)
diag("restarted worker RssAnon: %d kB at start, %d kB with the backlog read"
     " back (+%d B per pending)" % (base2, after,
                                    (after - base2) * 1024 // total))
ok(after * 1024 < PER_PENDING * total + base * 1024,
   "the restarted worker holds under %d B per pending transaction"
   % PER_PENDING)

# clean up: nothing is called for these any more
resolve_confirming(DEAD)
done_testing()
