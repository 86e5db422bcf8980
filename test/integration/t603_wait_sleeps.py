#!/usr/bin/python3
# tcc_wait sleeps until the worker reports an outcome for its gid: a wait
# of several seconds costs its backend almost no CPU, it returns as soon
# as the transaction settles, and statement_timeout still stops it at once.
#
# docs/api.md (tcc_wait returns the status when final or when the
# timeout passes; every function is interruptible within 100 ms).

import datetime
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, connect, pgcode, run, run1,  # noqa: E402
                      error_of, tp_rule, transaction, ts)
from tcclib import diag, done_testing, is_, ok  # noqa: E402

SLOW_MS = 8000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def decided(prefix):
    """A committed confirm decision on one branch under prefix; its gid."""
    conn = connect(autocommit=False)
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    urls = branch_urls(prefix)
    run(conn, "SELECT tcc_branch(%s, NULL, %s, %s)", (gid, urls[1], urls[2]))
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    conn.commit()
    conn.close()
    return gid


tp_rule("/t603/slow/confirm", delay_ms=SLOW_MS)
conn = connect()
pid = run1(conn, "SELECT pg_backend_pid()")
gid = decided("/t603/slow")
before = cpu_seconds(pid)
t0 = time.monotonic()
status = run1(conn, "SELECT tcc_wait(%s, '60 s')", (gid,))
took = time.monotonic() - t0
returned = datetime.datetime.now(datetime.timezone.utc)
used = cpu_seconds(pid) - before
is_(status, "confirmed", "tcc_wait returns the final status")
ok(took >= SLOW_MS / 1000.0 - 1, "it waited for the slow confirm (%.1f s)"
   % took)
diag("tcc_wait waited %.2f s using %.3f s of CPU" % (took, used))
ok(used <= 0.05, "its backend used almost no CPU meanwhile (%.3f s)" % used)
lag = (returned - ts(transaction(gid)["finished_at"])).total_seconds()
diag("tcc_wait returned %.3f s after the transaction was final" % lag)
ok(lag < 0.5, "it returned promptly once the transaction was final")

# still interruptible
tp_rule("/t603/slow2/confirm", delay_ms=SLOW_MS)
gid = decided("/t603/slow2")
run(conn, "SET statement_timeout = '300ms'")
t0 = time.monotonic()
err = error_of(conn, "SELECT tcc_wait(%s, '60 s')", (gid,))
took = time.monotonic() - t0
is_(pgcode(err), "57014", "statement_timeout cancels a waiting tcc_wait")
ok(took < 1.5, "within moments (%.2f s)" % took)
run(conn, "RESET statement_timeout")

other = connect()
t0 = time.monotonic()


def cancel_later():
    """pg_cancel_backend on the waiting backend after a moment."""
    time.sleep(0.3)
    run(other, "SELECT pg_cancel_backend(%s)", (pid,))


t = threading.Thread(target=cancel_later)
t.start()
err = error_of(conn, "SELECT tcc_wait(%s, '60 s')", (gid,))
took = time.monotonic() - t0
t.join()
is_(pgcode(err), "57014", "pg_cancel_backend stops a waiting tcc_wait")
ok(took < 1.5, "within moments (%.2f s)" % took)
is_(run1(conn, "SELECT tcc_wait(%s, '60 s')", (gid,)), "confirmed",
    "the same session waits again afterwards")
conn.close()
other.close()
done_testing()
