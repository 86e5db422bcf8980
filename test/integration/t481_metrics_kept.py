#!/usr/bin/python3
# docs/views.md#metrics (1.2): the counters and histograms of tcc.metrics
# are kept as transactions end and calls are recorded, not recounted.  A
# counter equals a recount over every transaction ever finished and every
# call ever recorded, kept or purged, and none goes down across a restart,
# an immediate shutdown, a SIGKILL of the postmaster, or the purge.
# tcc.activity (1.2), kept the same way, counts each transaction begun and
# ended once, at its minute.
#
# The recount is tcc._metric_counts(NULL) (the kept rows).  Earlier tests
# of the suite wrote rows by hand, so the check is on what changed: from
# the start of this test, each counter moved exactly as the recount did.
#
# The callers here commit with synchronous_commit = off and the WAL writer
# is made slow (wal_writer_delay 10 s): a scrape sees their counts before
# their commits are durable, and must wait until they are, or the crash
# that follows would take back a count the scrape already showed.

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, connect, metrics_kept,  # noqa: E402
                      metrics_moved, metrics_recount, run1, system_settings)
from faultlib import wait_all_final, wait_cluster  # noqa: E402
from tcclib import (diag, done_testing, is_, ok, pg_ctl, q, q1,  # noqa: E402
                    restart, tp_rule, wait_until)

prefix = "/t481/%d" % int(time.time())
tp_rule(prefix + "/no/try", status=409, body="no")


def kept():
    """The counter and histogram samples of tcc.metrics."""
    return metrics_kept()


recount = metrics_recount
moved = metrics_moved


def went_down(a, b):
    """The samples of a that are lower in b."""
    return [(k, v, b.get(k, 0.0)) for k, v in a.items()
            if b.get(k, 0.0) < v - 1e-9 * max(1.0, abs(v))]


def work(n_ok, n_no, decide=True):
    """Global transactions from a caller with synchronous_commit off:
    n_ok of two branches that confirm (undecided when not decide), n_no
    whose second try is refused (cancelled).  Their gids."""
    conn = connect(options="-c synchronous_commit=off")
    gids = []
    try:
        for i in range(n_ok + n_no):
            b = prefix + ("/ok" if i < n_ok else "/no")
            gid = run1(conn, "SELECT tcc_begin(timeout => '1 hour')")
            run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                 (gid,) + branch_urls(prefix + "/ok"))
            try:
                run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                     (gid,) + branch_urls(b))
                if decide:
                    run1(conn, "SELECT tcc_finish(%s, true)", (gid,))
            except Exception:       # noqa: BLE001 - the refused try
                pass
            gids.append(gid)
    finally:
        conn.close()
    return gids


def check(label, m0, r0, before):
    """After label: no sample below what a scrape showed before, and every
    counter moved, since the start, as the recount did."""
    m, r = kept(), recount()
    is_(went_down(before, m), [],
        "%s: no counter or histogram sample went down" % label)
    d_m, d_r = moved(m0, m), moved(r0, r)
    if not is_(d_m, d_r, "%s: every counter moved as the recount" % label):
        for k in sorted(set(d_m) | set(d_r)):
            if d_m.get(k) != d_r.get(k):
                diag("  %r: kept %s, recount %s" % (k, d_m.get(k), d_r.get(k)))
    return m


def activity():
    """(begun, ended, confirmed) over every minute of tcc.activity."""
    return tuple(int(v or 0) for v in q(
        "SELECT sum(started), sum(finished), sum(confirmed)"
        "  FROM tcc.activity")[0])


def postmaster_pid():
    with open(os.path.join(os.environ["TCC_PGDATA"], "postmaster.pid")) as f:
        return int(f.readline())


# the bucket a duration counts in: the smallest bound not below it
is_([r[0] for r in q("SELECT tcc._metric_bucket(s) FROM unnest("
                     "'{0.001,0.005,0.0051,0.2,1,59,300,301}'::float8[]) s")],
    ["0.005", "0.005", "0.01", "0.25", "1", "60", "300", "+Inf"],
    "a duration counts in the bucket of the smallest bound not below it")

q("ALTER SYSTEM SET wal_writer_delay = '10s'")
q("SELECT pg_reload_conf()")
try:
    m0, r0, a0 = kept(), recount(), activity()

    # ---- transactions end, calls are made: counted as they happen
    gids = work(6, 3)
    is_(wait_all_final(gids, 30), [], "the first transactions are final")
    a1 = activity()
    is_(tuple(b - a for a, b in zip(a0, a1)), (9, 9, 6),
        "tcc.activity: 9 begun, 9 ended, 6 of them confirmed")
    ok(wait_until(lambda: moved(m0, kept()) == moved(r0, recount()), 10),
       "the counters moved as the recount did")
    m = check("after the first transactions", m0, r0, m0)

    # ---- a restart
    restart("fast")
    ok(wait_cluster() is not None, "restarted, with a coordinator worker")
    m = check("after a restart", m0, r0, m)

    # ---- an immediate shutdown right after a scrape that saw new tries
    # (undecided: nothing else makes the worker flush)
    work(4, 0, decide=False)
    seen = kept()
    ok(seen.get(("tcc_calls_total", "", "", "try", "success", ""), 0)
       > m.get(("tcc_calls_total", "", "", "try", "success", ""), 0),
       "a scrape sees the new tries")
    restart("immediate")
    ok(wait_cluster() is not None, "up again after an immediate shutdown")
    m = check("after an immediate shutdown", m0, r0, seen)

    # ---- SIGKILL of the postmaster, likewise
    work(4, 0, decide=False)
    seen = kept()
    pid = postmaster_pid()
    children = [p for (p,) in q("SELECT pid FROM pg_stat_activity")]
    os.kill(pid, signal.SIGKILL)

    def gone():
        for p in children + [pid]:
            try:
                os.kill(p, 0)
                return False
            except ProcessLookupError:
                pass
        return True
    ok(wait_until(gone, 30, 0.1), "every server process exited")
    ok(wait_until(lambda: pg_ctl("start", "-w", "-t", "60", "-l",
                                 os.environ["TCC_PGLOG"],
                                 check=False).returncode == 0, 60, 0.5),
       "the cluster starts again")
    ok(wait_cluster() is not None, "with a coordinator worker")
    m = check("after a SIGKILL of the postmaster", m0, r0, seen)

    # ---- the purge: the transactions go, their counts stay
    mine = q1("SELECT count(*) FROM tcc._gtx WHERE gid = ANY (%s::uuid[])",
              (gids,))
    before = kept()
    r1 = recount()
    with system_settings(retention="1s"):
        ok(wait_until(lambda: q1("SELECT count(*) FROM tcc._gtx"
                                 " WHERE gid = ANY (%s::uuid[])", (gids,))
                      == 0, 30), "tcc.retention deletes the %d final"
           " transactions of this test" % mine)
    after = kept()
    is_(went_down(before, after), [], "the purge: no sample went down")
    is_(moved(before, after), {}, "the purge: no sample moved")
    is_(moved(m0, after), moved(r0, r1),
        "after the purge, the counters still equal the recount made"
        " before it")
    ok(wait_until(lambda: q1("SELECT count(*) FROM tcc._metric_delta") == 0,
                  10), "the worker folds the deltas into tcc._metric_total")
    is_(moved(after, kept()), {}, "folding changes no sample")
finally:
    q("ALTER SYSTEM RESET wal_writer_delay")
    q("SELECT pg_reload_conf()")

# the undecided ones: cancel them now
q("SELECT tcc_resolve(gid, 't481 cleanup') FROM tcc.transactions"
  " WHERE gid IN (SELECT gid FROM tcc._gtx WHERE status = 'trying'"
  "               AND deadline > now() + interval '30 min')")

done_testing()
