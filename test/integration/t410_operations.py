#!/usr/bin/python3
# Operating tcc from psql (docs/api.md: tcc_retry and tcc_resolve, both
# recorded with who, when and note and visible in the views; docs/states.md:
# failed -> confirming by tcc_retry, any non-final -> resolved by tcc_resolve
# with no more calls; docs/worker.md: retention; docs/api.md#views: the views
# tcc.attention, tcc.stats and tcc.worker).

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (done_testing, is_, isnt, like, ok, q, q1,  # noqa: E402
                    still, tp_requests, tp_rule, tp_url, wait_until, worker_pid,
                    worker_pids, workers)

# test/run.sh sets tcc.retry_interval = 200ms and retry_max_interval = 2s.
QUIET = 2.5          # seconds: more than two of the longest retry delays


def setting(name):
    """The current value of a setting, as SHOW gives it."""
    return q1("SHOW %s" % name)


ORIGINAL = {}


def alter_system(name, value):
    """ALTER SYSTEM name (None resets), reload, and wait until in force."""
    ORIGINAL.setdefault(name, setting(name))
    if value is None:
        q("ALTER SYSTEM RESET %s" % name)
        want = ORIGINAL[name]
    else:
        q("ALTER SYSTEM SET %s = %%s" % name, (value,))
        want = value
    q("SELECT pg_reload_conf()")
    ok(wait_until(lambda: setting(name) == want, 10),
       "%s = %s" % (name, want))
    # the worker reloads at its next turn after SIGHUP
    time.sleep(0.3)


def reset_all():
    """Put every setting this test changes back to the file's value."""
    changed = q("SELECT name FROM pg_file_settings"
                " WHERE sourcefile LIKE '%%postgresql.auto.conf'"
                "   AND name IN ('tcc.max_attempts', 'tcc.retry_interval',"
                "                'tcc.retry_max_interval', 'tcc.retention')")
    for (name,) in changed:
        q("ALTER SYSTEM RESET %s" % name)
    if changed:
        q("SELECT pg_reload_conf()")
        time.sleep(0.3)


def status(gid):
    """The status tcc.transactions shows."""
    return q1("SELECT status FROM tcc.transactions WHERE gid = %s", (gid,))


def wait_status(gid, want, timeout=20):
    """Wait until gid shows status want; the status it ends with."""
    wait_until(lambda: status(gid) == want, timeout)
    return status(gid)


def ops(gid, op=None):
    """How many requests the participant got for gid (of op, if given)."""
    return len([r for r in tp_requests(gid) if op is None or r["op"] == op])


def new_gtx(tag, timeout="1 hour"):
    """A gid with one branch at /t410/<tag>/{try,confirm,cancel}, tried."""
    gid = q1("SELECT tcc_begin(%s)", (timeout,))
    q("SELECT tcc_branch(%s, %s, %s, %s, '{}', %s)",
      (gid, tp_url("/t410/%s/try" % tag), tp_url("/t410/%s/confirm" % tag),
       tp_url("/t410/%s/cancel" % tag), tag))
    return gid


def confirm(gid):
    """Decide confirm in an autocommit call."""
    return q1("SELECT tcc_finish(%s, true)", (gid,))


mine = []
reset_all()
try:
    # ------------------------------------------------------ tcc.worker
    # one row per worker (tcc.workers of them; one by default)
    w = q("SELECT pid, started_at, in_flight, queue_depth, last_error,"
          "       started_at <= now() FROM tcc.worker ORDER BY pid")
    is_(len(w), workers(), "tcc.worker has one row per worker (%d)"
        % workers())
    is_([r[0] for r in w], worker_pids(),
        "tcc.worker pid is the coordinator's")
    ok(w and all(r[1] is not None and r[5] for r in w),
       "tcc.worker started_at is set")
    ok(w and all(r[2] is not None and r[2] >= 0 for r in w), "in_flight >= 0")
    ok(w and all(r[3] is not None and r[3] >= 0 for r in w),
       "queue_depth >= 0")

    # a slow confirm shows as in flight
    tp_rule("/t410/slow/confirm", delay_ms=3000)
    slow = new_gtx("slow")
    mine.append(slow)
    confirm(slow)
    ok(wait_until(lambda: q1("SELECT sum(in_flight) FROM tcc.worker") >= 1,
                  5),
       "tcc.worker shows the slow confirm in flight")
    is_(wait_status(slow, "confirmed"), "confirmed", "the slow one confirms")
    ok(wait_until(lambda: q1("SELECT sum(in_flight) FROM tcc.worker") == 0,
                  5),
       "in_flight back to 0")

    # ------------------------------------------------------- tcc.stats
    quick = []
    for i in range(5):
        g = new_gtx("stats")
        mine.append(g)
        quick.append(g)
        confirm(g)
    for g in quick:
        wait_status(g, "confirmed")
    is_([status(g) for g in quick], ["confirmed"] * 5,
        "five quick transactions confirmed")
    # one statement, one snapshot: the view and the counts it summarises
    st = q("SELECT s.trying, s.confirming, s.cancelling, s.confirmed,"
           "       s.cancelled, s.failed, s.resolved, s.started_5min,"
           "       s.finished_5min, s.confirm_p50_ms, s.confirm_p99_ms,"
           "       (SELECT array_agg(array[t.status, t.n::text]"
           "                         ORDER BY t.status)"
           "          FROM (SELECT status, count(*) AS n FROM tcc.transactions"
           "                 GROUP BY status) t)"
           "  FROM tcc.stats s")
    is_(len(st), 1, "tcc.stats has one row")
    st = st[0]
    by_status = dict((k, int(v)) for k, v in st[11])
    names = ("trying", "confirming", "cancelling", "confirmed", "cancelled",
             "failed", "resolved")
    is_(dict((n, v) for n, v in zip(names, st[:7]) if v), by_status,
        "tcc.stats counts by status agree with tcc.transactions")
    ok(st[3] >= 6, "at least six confirmed (%d)" % st[3])
    ok(st[7] >= 6 and st[8] >= 6,
       "started and finished in the last 5 min count them (%d, %d)"
       % (st[7], st[8]))
    p50, p99 = st[9], st[10]
    ok(p50 is not None and p99 is not None and 0 <= p50 <= p99,
       "confirm latency p50 %r <= p99 %r" % (p50, p99))
    ok(p99 >= 2500, "p99 covers the slow confirm (%r ms)" % p99)

    # ------------------------------------ failed, attention, resolve, retry
    alter_system("tcc.max_attempts", "2")
    tp_rule("/t410/res/confirm", status=500)
    res = new_gtx("res")
    mine.append(res)
    confirm(res)
    is_(wait_status(res, "failed"), "failed",
        "a confirm answered 500 twice: failed")
    is_(ops(res, "confirm"), 2, "after max_attempts (2) calls")
    att = q("SELECT why, status FROM tcc.attention WHERE gid = %s", (res,))
    is_(len(att), 1, "tcc.attention lists the failed transaction")
    like(att and att[0][0], r"^failed", "with a why that says failed (%r)"
         % (att and att[0][0],))
    like(att and att[0][0], "500", "and names the error")

    # resolve: status resolved, no more calls, the action recorded
    q("SELECT tcc_resolve(%s, 'refunded by hand, ticket 42')", (res,))
    is_(wait_status(res, "resolved", 10), "resolved",
        "tcc_resolve: the failed transaction becomes resolved")
    ok(q1("SELECT finished_at IS NOT NULL FROM tcc.transactions"
          " WHERE gid = %s", (res,)), "resolved has finished_at")
    n = ops(res)
    ok(still(lambda: ops(res) == n, QUIET),
       "no call to the participant after resolve (%.1f s)" % QUIET)
    is_(q1("SELECT count(*) FROM tcc.attention WHERE gid = %s", (res,)), 0,
        "a resolved transaction leaves tcc.attention")
    is_(q1("SELECT count(*) FROM tcc.pending WHERE gid = %s", (res,)), 0,
        "and tcc.pending")
    act = q("SELECT action, actor::text, note, at <= now(), applied"
            "  FROM tcc.actions WHERE gid = %s", (res,))
    is_(act, [("resolve", "postgres", "refunded by hand, ticket 42", True,
               True)],
        "tcc.actions shows the resolve: who, when, the note, applied")
    is_(q1("SELECT count(*) FROM tcc.branches WHERE gid = %s"
           "   AND next_attempt_at IS NOT NULL", (res,)), 0,
        "no branch of a resolved transaction has a next attempt")
    is_(q1("SELECT next_attempt_at FROM tcc.transactions WHERE gid = %s",
           (res,)), None, "nor the transaction")

    # retry: failed goes back to confirming and confirms once the
    # participant answers; an unchanged participant fails it again after a
    # fresh allowance of attempts
    tp_rule("/t410/ret/confirm", status=500)
    ret = new_gtx("ret")
    mine.append(ret)
    confirm(ret)
    is_(wait_status(ret, "failed"), "failed", "second failed transaction")
    q("SELECT tcc_retry(%s)", (ret,))
    ok(wait_until(lambda: ops(ret, "confirm") >= 3, 10),
       "tcc_retry: the confirm is called again at once")
    is_(wait_status(ret, "failed"), "failed",
        "still answered 500: failed again")
    ok(wait_until(lambda: ops(ret, "confirm") == 4, 5)
       and still(lambda: ops(ret, "confirm") == 4, 1.0),
       "after a fresh allowance of max_attempts (2 more calls, %d in all)"
       % ops(ret, "confirm"))
    tp_rule("/t410/ret/confirm", status=200)
    q("SELECT tcc_retry(%s)", (ret,))
    is_(wait_status(ret, "confirmed"), "confirmed",
        "tcc_retry after the participant recovered: confirmed")
    is_(q("SELECT action, actor::text, note, applied FROM tcc.actions"
          " WHERE gid = %s ORDER BY at", (ret,)),
        [("retry", "postgres", None, True)] * 2,
        "tcc.actions shows both retries")
    is_(q1("SELECT status FROM tcc.branches WHERE gid = %s", (ret,)),
        "confirmed", "the branch is confirmed")
    alter_system("tcc.max_attempts", None)

    # retry makes a pending call due now: with a long retry interval the
    # second confirm would wait 20 s; tcc_retry brings it forward
    alter_system("tcc.retry_interval", "20s")
    alter_system("tcc.retry_max_interval", "1min")
    tp_rule("/t410/due/confirm", fail_next=1, fail_status=503)
    due = new_gtx("due")
    mine.append(due)
    confirm(due)
    ok(wait_until(lambda: ops(due, "confirm") == 1, 10),
       "the first confirm answered 503")
    ok(wait_until(lambda: q1("SELECT next_attempt_at > now() + interval '10 s'"
                             " FROM tcc.branches WHERE gid = %s", (due,)), 5),
       "its retry is due in about 20 s")
    is_(status(due), "confirming", "still confirming")
    t0 = time.monotonic()
    q("SELECT tcc_retry(%s)", (due,))
    is_(wait_status(due, "confirmed", 10), "confirmed",
        "tcc_retry on a confirming transaction: confirmed at once")
    ok(time.monotonic() - t0 < 5, "within 5 s, not 20 (%.1f s)"
       % (time.monotonic() - t0))
    alter_system("tcc.retry_interval", None)
    alter_system("tcc.retry_max_interval", None)

    # tcc.attention also lists a transaction that is not final one minute
    # after its deadline.  That needs a minute of waiting; instead this
    # test moves the deadline of a cancelling transaction (whose cancel
    # keeps failing) an hour back, as a superuser writing the private
    # table.  The worker only reads the deadline of undecided transactions,
    # so this changes nothing but what the view computes.
    tp_rule("/t410/late/cancel", status=503)
    late = new_gtx("late")
    mine.append(late)
    q("SELECT tcc_finish(%s, false)", (late,))
    ok(wait_until(lambda: ops(late, "cancel") >= 1, 10),
       "a cancel that keeps failing")
    is_(q1("SELECT count(*) FROM tcc.attention WHERE gid = %s", (late,)), 0,
        "not in tcc.attention before its deadline")
    q("UPDATE tcc._gtx SET deadline = deadline - interval '2 hours'"
      " WHERE gid = %s", (late,))
    att = q("SELECT status, why FROM tcc.attention WHERE gid = %s", (late,))
    is_(att, [("cancelling", "not final one minute after its deadline")],
        "tcc.attention lists it past deadline + 1 min, with why")
    undecided = q1("SELECT tcc_begin('1 hour')")
    mine.append(undecided)
    is_(q1("SELECT count(*) FROM tcc.attention WHERE gid = %s", (undecided,)),
        0, "an undecided one within its deadline is not in tcc.attention")
    q("SELECT tcc_resolve(%s, 'cancelled by hand')", (late,))
    is_(wait_status(late, "resolved", 10), "resolved",
        "tcc_resolve on a cancelling transaction: resolved")
    n = ops(late)
    ok(still(lambda: ops(late) == n, QUIET), "no more cancel calls")

    # a non-final one that stays during retention: failed
    alter_system("tcc.max_attempts", "1")
    tp_rule("/t410/keep/confirm", status=500)
    keep_failed = new_gtx("keep")
    mine.append(keep_failed)
    confirm(keep_failed)
    is_(wait_status(keep_failed, "failed"), "failed",
        "a failed transaction to outlive retention")
    alter_system("tcc.max_attempts", None)

    # --------------------------------------------------------- retention
    final = [g for g in mine if status(g) in ("confirmed", "cancelled",
                                              "resolved")]
    ok(len(final) >= 8, "%d final transactions of this test" % len(final))
    ok(q1("SELECT count(*) FROM tcc.attempts WHERE gid = ANY(%s::uuid[])",
          (final,)) > 0, "they have attempts")
    alter_system("tcc.retention", "1s")
    gone = wait_until(lambda: q1("SELECT count(*) FROM tcc._gtx"
                                 " WHERE gid = ANY(%s::uuid[])", (final,))
                      == 0, 15)
    ok(gone, "tcc.retention = 1s: final transactions disappear")
    for t in ("_branch", "_decision", "_try", "_attempt", "_action"):
        is_(q1("SELECT count(*) FROM tcc.%s WHERE gid = ANY(%%s::uuid[])" % t,
               (final,)), 0, "and their rows in tcc.%s" % t)
    is_(q1("SELECT count(*) FROM tcc._gtx"
           " WHERE finished_at < now() - interval '5 s'"), 0,
        "no final transaction older than a few seconds is left at all")
    is_(status(undecided), "trying", "an undecided transaction stays")
    is_(status(keep_failed), "failed", "a failed transaction stays")
    ok(q1("SELECT count(*) FROM tcc.attempts WHERE gid = %s",
          (keep_failed,)) >= 1, "with its attempts")
    alter_system("tcc.retention", None)
    ok(still(lambda: status(undecided) == "trying"
             and status(keep_failed) == "failed", 1.0),
       "non-final transactions still there after retention is back")
finally:
    reset_all()
    for g in mine:
        s = status(g)
        if s == "trying":
            q("SELECT tcc_finish(%s, false)", (g,))
        elif s in ("failed", "confirming", "cancelling"):
            q("SELECT tcc_resolve(%s, 't410 cleanup')", (g,))
    isnt(worker_pid(), None, "the worker is running at the end")

done_testing()
