#!/usr/bin/python3
# Several coordinator workers per database (1.2, tcc.workers; docs/worker.md
# and docs/settings.md): with tcc.workers = 3 the database has three
# workers, each owning the gids tcc._gid_owner(gid, 3) gives it, and
# nothing a caller or an operator sees depends on which one owns a gid.
#
#   workers      tcc.worker has a row per worker (0, 1, 2) with distinct
#                pids, which pg_stat_activity shows as 'tcc coordinator';
#                tcc_worker_state() is one row for the database (worker
#                0's pid, the sums); tcc._gid_owner spreads gids over all
#   confirm      60 transactions of two branches, each branch confirmed
#                once, gids of every owner (R4)
#   tcc_wait     wakes up for a gid of each owner
#   deadline     30 undecided transactions cancelled together by their
#                deadline, every owner among them (R3)
#   aborted      callers that begin and roll back: cancelled (R3)
#   operator     tcc_retry and tcc_resolve of failed transactions of owners
#                1 and 2; NOTIFY tcc_alert for every failed one
#   limits       tcc.max_concurrency and tcc.destination_share bound the
#                database, not each worker: a destination whose confirms
#                hang gets one call at a time with a share of 25 % of 4
#                slots, four with 100 %, though its gids belong to three
#                workers; tcc.destinations shows it once
#   one dies     pg_terminate_backend of worker 1: it alone comes back, with
#                a new pid; what its share decided meanwhile is confirmed
#   metrics      tcc_metrics() moved as the recount did (docs/views.md)
#
# The test sets tcc.workers = 3 (ALTER SYSTEM and a restart) unless the
# cluster runs with 3 already, and puts it back afterwards, also when it
# fails.

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, connect, metrics_kept,  # noqa: E402
                      metrics_moved, metrics_recount, notifications, run,
                      run1, system_settings, wait_status)
from faultlib import (Background, Caller, explain_gid,  # noqa: E402
                      wait_all_final, wait_cluster)
from tcclib import (diag, done_testing, is_, ok, q, q1,  # noqa: E402
                    restart, still, tp_rule, wait_until, worker_pids)

W = 3                   # tcc.workers for this test
RUN = "/t245/%s" % uuid.uuid4().hex[:8]
DEST = "http://localhost:%s" % os.environ["TCC_TP_PORT"]   # the hanging one
GRACE = 3.0             # s after a deadline for the cancel to be final
PROMPT = 5.0            # s after a caller's rollback for its gid's cancel
HANG_MS = 6000          # how long the hanging destination holds a confirm


# --------------------------------------------------------------------------
# Gids and their owners


def owner(gid):
    """The worker that owns gid."""
    return q1("SELECT tcc._gid_owner(%s, %s)", (str(gid), W))


def owners(gids):
    """The set of owners of gids."""
    return {r[0] for r in q("SELECT DISTINCT tcc._gid_owner(g, %s)"
                            "  FROM unnest(%s::uuid[]) g", (W, list(gids)))}


def by_owner(gids):
    """{owner: [gids]}, in the order given."""
    out = {w: [] for w in range(W)}
    for g in gids:
        out[owner(g)].append(g)
    return out


def covering(make, at_least, each=(1, 1, 1), limit=300):
    """Call make(i) for i = 0, 1, ... (each call makes a gid) until there
    are at_least gids and each[w] of them belong to worker w; the gids."""
    gids, count = [], [0] * W
    while len(gids) < at_least or any(c < e for c, e in zip(count, each)):
        if len(gids) >= limit:
            diag("covering: %d gids and still %r of owners %r"
                 % (limit, count, each))
            break
        g = make(len(gids))
        gids.append(g)
        count[owner(g)] += 1
    return gids


def gtx(conn, prefix, branches=2, host=None, tries=True, decide=True,
        timeout="1 hour", commit=True):
    """One global transaction on conn (not autocommit): begun, branches
    under prefix/1, prefix/2, ... (tried unless not tries), decided
    confirm if decide, committed if commit; its gid as text."""
    gid = run1(conn, "SELECT tcc_begin(%s::interval)::text", (timeout,))
    for b in range(1, branches + 1):
        t, c, x = branch_urls("%s/%d" % (prefix, b), host)
        run(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
            (gid, t if tries else None, c, x))
    if decide:
        run(conn, "SELECT tcc_finish(%s, true)", (gid,))
    if commit:
        conn.commit()
    return gid


def statuses(gids):
    """{status: count} of gids."""
    return dict(q("SELECT status, count(*) FROM tcc.transactions"
                  " WHERE gid = ANY(%s::uuid[]) GROUP BY status",
                  (list(gids),)))


def phase_two_counts(gids):
    """(cancels, branches cancelled, confirms, branches confirmed) the
    participant saw for gids."""
    return q("SELECT count(*) FILTER (WHERE op = 'cancel'),"
             "       count(DISTINCT (gid, branch)) FILTER (WHERE op = 'cancel'),"
             "       count(*) FILTER (WHERE op = 'confirm'),"
             "       count(DISTINCT (gid, branch)) FILTER (WHERE op = 'confirm')"
             "  FROM tp.requests WHERE gid = ANY(%s::uuid[])",
             (list(gids),))[0]


# --------------------------------------------------------------------------
# Metrics (as t481_metrics_kept.py compares them)


def kept():
    """The counter and histogram samples of tcc_metrics()."""
    return metrics_kept("tcc_metrics()")


recount = metrics_recount
moved = metrics_moved


# --------------------------------------------------------------------------
# The parts


def check_workers():
    """Three workers, each with its row, pid and backend."""
    cols = [d for d in q("SELECT attname FROM pg_attribute"
                         " WHERE attrelid = 'tcc.worker'::regclass"
                         "   AND attnum > 0 AND NOT attisdropped"
                         " ORDER BY attnum")]
    is_([c[0] for c in cols],
        ["pid", "started_at", "in_flight", "queue_depth", "last_error",
         "worker"], "workers: tcc.worker has the columns of 1.2")
    ok(wait_until(lambda: q1("SELECT count(*) FROM tcc.worker"
                             " WHERE pid IS NOT NULL") == W, 30),
       "workers: every worker shows a pid in tcc.worker")
    rows = q("SELECT worker, pid, started_at <= now() FROM tcc.worker"
             " ORDER BY worker")
    is_([r[0] for r in rows], list(range(W)),
        "workers: tcc.worker has %d rows, workers 0 .. %d" % (W, W - 1))
    pids = [r[1] for r in rows]
    ok(None not in pids and len(set(pids)) == W,
       "workers: distinct pids, none NULL (%r)" % (pids,))
    ok(all(r[2] for r in rows), "workers: each has started_at")
    is_(worker_pids(), sorted(p for p in pids if p is not None),
        "workers: pg_stat_activity shows %d 'tcc coordinator' backends in"
        " tcc_test, the pids of tcc.worker" % W)
    is_(q("SELECT count(*), min(pid) FROM tcc_worker_state()"),
        [(1, rows[0][1])],
        "workers: tcc_worker_state() is one row, with worker 0's pid")
    is_(q("SELECT min(o), max(o), count(DISTINCT o),"
          "       bool_and(o = tcc._gid_owner(g, %s)),"
          "       bool_and(tcc._gid_owner(g, 1) = 0)"
          "  FROM (SELECT g, tcc._gid_owner(g, %s) o"
          "          FROM (SELECT gen_random_uuid() g"
          "                  FROM generate_series(1, 300)) s) t", (W, W)),
        [(0, W - 1, W, True, True)],
        "workers: tcc._gid_owner(gid, 3) spreads 300 gids over 0 .. 2, the"
        " same each time; with one worker it is 0")
    return dict((r[0], r[1]) for r in rows)


def check_confirm():
    """60 transactions of two branches confirm, each branch once."""
    conn = connect(autocommit=False)
    try:
        gids = [gtx(conn, RUN + "/ok") for _ in range(60)]
    finally:
        conn.close()
    left = wait_all_final(gids, 30)
    is_(statuses(gids), {"confirmed": 60},
        "confirm: 60 transactions of two branches end confirmed")
    for g in left[:3]:
        explain_gid(g)
    is_(owners(gids), set(range(W)),
        "confirm: their gids belong to all %d workers" % W)
    is_(phase_two_counts(gids), (0, 0, 120, 120),
        "confirm: each of the 120 branches confirmed exactly once, no"
        " cancel")


def check_wait():
    """tcc_wait returns the final status for a gid of each owner."""
    tp_rule(RUN + "/wait/1/confirm", delay_ms=500)
    conn = connect(autocommit=False)
    try:
        gids = covering(lambda i: gtx(conn, RUN + "/wait", branches=1,
                                      decide=False), W)
    finally:
        conn.close()
    one = [ws[0] for ws in by_owner(gids).values() if ws]

    def waited(gid):
        t0 = time.monotonic()
        return q1("SELECT tcc_wait(%s, '20 s')", (gid,)), \
            time.monotonic() - t0
    waits = [Background(lambda g=g: waited(g)) for g in one]
    ok(wait_until(lambda: q1("SELECT count(*) FROM pg_stat_activity"
                             " WHERE state = 'active'"
                             "   AND query LIKE 'SELECT tcc_wait(%%'")
                  >= len(one), 10),
       "tcc_wait: a caller waits on a gid of each owner")
    for g in gids:
        q("SELECT tcc_finish(%s, true)", (g,))
    got = [w.result(25) for w in waits]
    is_([(o, v[0] if o == "ok" else v) for o, v in got],
        [("ok", "confirmed")] * W,
        "tcc_wait: each returns confirmed (owners %r)"
        % sorted(owner(g) for g in one))
    slow = [round(v[1], 1) for o, v in got if o == "ok" and v[1] > 10]
    is_(slow, [], "tcc_wait: woken by the owner, not by its timeout")
    wait_all_final(gids, 10)


def check_deadline():
    """30 undecided transactions cancelled by their deadline together."""
    conn = connect(autocommit=False)
    try:
        gids = covering(lambda i: gtx(conn, RUN + "/late", branches=1,
                                      decide=False, timeout="2 s"), 30)
    finally:
        conn.close()
    is_(owners(gids), set(range(W)),
        "deadline: %d undecided transactions, gids of every owner"
        % len(gids))
    left = wait_all_final(gids, 2 + GRACE + 10)
    is_(statuses(gids), {"cancelled": len(gids)},
        "deadline: all %d cancelled" % len(gids))
    for g in left[:3]:
        explain_gid(g)
    rows = q("SELECT count(*) FILTER (WHERE decided_by = 'deadline'),"
             "       count(*) FILTER (WHERE finished_at"
             "                              <= deadline + %s * interval '1 s'),"
             "       max(extract(epoch FROM finished_at - deadline))"
             "  FROM tcc.transactions WHERE gid = ANY(%s::uuid[])",
             (GRACE, gids))[0]
    is_(rows[:2], (len(gids), len(gids)),
        "deadline: each decided by its deadline and final within %.0f s of"
        " it (latest %.2f s)" % (GRACE, float(rows[2] or 0)))
    _, cancelled, confirms, _ = phase_two_counts(gids)
    is_((cancelled, confirms), (len(gids), 0),
        "deadline: every branch got its cancel, none a confirm")


def check_aborted():
    """Callers that begin and roll back: their gids are cancelled."""
    ended = {}

    def aborted(i):
        caller = Caller()
        try:
            gid = caller.begin("1 hour")
            caller.branch(gid, "%s/abort/%d" % (RUN, i))
            caller.rollback()
            ended[gid] = time.monotonic()
        finally:
            caller.close()
        return gid
    gids = covering(aborted, W)
    left = wait_all_final(gids, PROMPT + 5)
    is_(statuses(gids), {"cancelled": len(gids)},
        "aborted: %d beginners rolled back (owners %r), all cancelled"
        % (len(gids), sorted(owners(gids))))
    for g in left[:3]:
        explain_gid(g)
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[]) AND decided_by = 'aborted'",
           (gids,)), len(gids), "aborted: decided by the aborted beginner")
    _, cancelled, confirms, _ = phase_two_counts(gids)
    is_((cancelled, confirms), (len(gids), 0),
        "aborted: their branches got a cancel, no confirm")


def check_operator():
    """tcc_retry and tcc_resolve on failed gids of owners 1 and 2."""
    listener = connect()
    run(listener, "LISTEN tcc_alert")
    conn = connect(autocommit=False)

    def failing(i):
        prefix = "%s/fail/%d" % (RUN, i)
        tp_rule(prefix + "/1/confirm", status=500, body="down")
        return gtx(conn, prefix, branches=1)
    try:
        with system_settings(max_attempts=2):
            gids = covering(failing, 0, each=(0, 2, 2))
            path = {g: "%s/fail/%d/1/confirm" % (RUN, i)
                    for i, g in enumerate(gids)}
            ok(wait_until(lambda: statuses(gids) == {"failed": len(gids)},
                          20),
               "operator: %d transactions failed (confirm answered 500)"
               % len(gids))
            got = notifications(listener, lambda ps: all(
                any(g in p for p in ps) for g in gids), 10)
            is_(sorted(g for g in gids if not any(g in p for p in got)), [],
                "operator: NOTIFY tcc_alert for every one of them")
            mine = by_owner(gids)
            for w in (1, 2):
                retry, resolve = mine[w][0], mine[w][1]
                tp_rule(path[retry], status=200)
                q("SELECT tcc_retry(%s)", (retry,))
                is_(wait_status(retry, "confirmed", 15), "confirmed",
                    "operator: tcc_retry of a failed gid of worker %d:"
                    " confirmed" % w)
                q("SELECT tcc_resolve(%s, 't245 by hand')", (resolve,))
                is_(wait_status(resolve, "resolved", 10), "resolved",
                    "operator: tcc_resolve of a failed gid of worker %d:"
                    " resolved" % w)
                ok(wait_until(lambda: q(
                    "SELECT gid::text, action, applied FROM tcc.actions"
                    " WHERE gid IN (%s, %s) ORDER BY action",
                    (retry, resolve)) == [(resolve, "resolve", True),
                                          (retry, "retry", True)], 10),
                   "operator: tcc.actions shows both applied (worker %d)"
                   % w)
            for g in gids:
                if q1("SELECT status FROM tcc.transactions WHERE gid = %s",
                      (g,)) == "failed":
                    q("SELECT tcc_resolve(%s, 't245 cleanup')", (g,))
    finally:
        conn.close()
        listener.close()


def received(prefix):
    """Confirm calls the participant received under prefix."""
    return q1("SELECT count(*) FROM tp.requests WHERE path LIKE %s",
              (prefix + "%/confirm",))


def most_at_once(prefix, before):
    """The most confirms under prefix that the participant held at once,
    of those that came before the server time before (each was held
    HANG_MS from its arrival)."""
    return q1("SELECT max(n) FROM (SELECT (SELECT count(*) FROM tp.requests s"
              "   WHERE s.path LIKE %(p)s AND s.at < %(b)s"
              "     AND s.at <= r.at"
              "     AND r.at < s.at + %(ms)s * interval '1 ms') n"
              "  FROM tp.requests r WHERE r.path LIKE %(p)s AND r.at < %(b)s) x",
              {"p": prefix + "%/confirm", "b": before, "ms": HANG_MS})


def hanging(prefix, at_least, each):
    """Decided transactions whose one confirm goes to the hanging
    destination under prefix; their gids."""
    conn = connect(autocommit=False)

    def make(i):
        tp_rule("%s/%d/1/confirm" % (prefix, i), delay_ms=HANG_MS)
        return gtx(conn, "%s/%d" % (prefix, i), branches=1, host="localhost",
                   tries=False)
    try:
        return covering(make, at_least, each)
    finally:
        conn.close()


def release(prefix, gids):
    """Let the hanging destination answer at once; the server time before
    it did, once every gid is confirmed."""
    at = q1("SELECT clock_timestamp()")
    for i in range(len(gids)):
        tp_rule("%s/%d/1/confirm" % (prefix, i), delay_ms=0)
    left = wait_all_final(gids, HANG_MS / 1000.0 + 30)
    is_(statuses(gids), {"confirmed": len(gids)},
        "limits: every confirm to the hanging destination is done in the end")
    for g in left[:3]:
        explain_gid(g)
    return at


def check_limits():
    """The database's slots and a destination's share, across workers."""
    with system_settings(max_concurrency=4, request_timeout="30s"):
        ok(wait_until(lambda: q1("SELECT sum(in_flight) FROM tcc.worker")
                      == 0, 30), "limits: no call in flight to begin with")
        is_(q1("SELECT current_setting('tcc.destination_share')"), "25",
            "limits: tcc.destination_share is 25 (one slot of four)")
        one = RUN + "/hang1"
        gids = hanging(one, 9, (2, 2, 2))
        is_(owners(gids), set(range(W)),
            "limits: %d confirms to one destination, gids of every owner"
            % len(gids))
        ok(wait_until(lambda: received(one) >= 1, 10),
           "limits: the hanging destination got its first confirm")
        ok(still(lambda: received(one) == 1, 1.5),
           "limits: while it hangs, no second confirm goes there")
        # one row for the destination, the sums of every worker's calls
        ok(wait_until(lambda: q("SELECT count(*), sum(in_flight),"
                                "       sum(calls_due)"
                                "  FROM tcc.destinations"
                                " WHERE destination = %s", (DEST,))
                      == [(1, 1, len(gids) - 1)], 10),
           "limits: tcc.destinations shows the destination once: 1 in"
           " flight, %d due" % (len(gids) - 1))
        is_(q("SELECT destination FROM tcc.destinations"
              " GROUP BY destination HAVING count(*) > 1"), [],
            "limits: no destination shows twice in tcc.destinations")
        ok(wait_until(lambda: q1(
            "SELECT (SELECT row(pid, in_flight, queue_depth)"
            "          FROM tcc_worker_state())"
            "     = (SELECT row((SELECT pid FROM tcc.worker WHERE worker = 0),"
            "                   sum(in_flight)::integer,"
            "                   sum(queue_depth)::integer) FROM tcc.worker)"),
            10),
           "limits: tcc_worker_state() is worker 0's pid and the sums of"
           " in_flight and queue_depth")
        t0 = time.monotonic()
        conn = connect(autocommit=False)
        try:
            fine = covering(lambda i: gtx(conn, RUN + "/fine", branches=1,
                                          tries=False), W)
        finally:
            conn.close()
        left = wait_all_final(fine, 10)
        took = time.monotonic() - t0
        ok(not left and took < 8.0,
           "limits: confirms to another destination, of every owner, done"
           " meanwhile (%.1f s)" % took)
        before = release(one, gids)
        is_(most_at_once(one, before), 1,
            "limits: at most 1 confirm to the destination at a time, though"
            " its gids belong to %d workers" % W)

        with system_settings(destination_share=100):
            ok(wait_until(lambda: q1("SELECT sum(in_flight)"
                                     "  FROM tcc.worker") == 0, 30),
               "limits: no call in flight before the share of 100")
            four = RUN + "/hang4"
            gids = hanging(four, 12, (4, 4, 4))
            ok(wait_until(lambda: received(four) >= 4, 10),
               "limits: with tcc.destination_share = 100 the destination"
               " gets all 4 slots at once")
            ok(still(lambda: received(four) <= 4, 1.5),
               "limits: and no fifth confirm while they hang")
            before = release(four, gids)
            is_(most_at_once(four, before), 4,
                "limits: at most 4 confirms at a time (tcc.max_concurrency),"
                " over %d workers" % W)


def check_one_dies(pids):
    """Worker 1 dies: it alone comes back; its share goes on."""
    victim = pids[1]
    conn = connect(autocommit=False)
    try:
        # decided in a transaction that commits while the worker is down
        gids = covering(lambda i: gtx(conn, RUN + "/down", commit=False), 9,
                        each=(1, 3, 1))
        is_(q1("SELECT pg_terminate_backend(%s, 10000)", (victim,)), True,
            "one dies: pg_terminate_backend of worker 1")
        conn.commit()
        down = q("SELECT (SELECT pid FROM tcc_worker_state()),"
                 "       (SELECT pid FROM tcc.worker WHERE worker = 1)")[0]
    finally:
        conn.close()
    is_(down, (None, None),
        "one dies: while worker 1 is down, tcc.worker and tcc_worker_state()"
        " show no pid for it")
    ok(wait_until(lambda: q1("SELECT pid FROM tcc.worker WHERE worker = 1")
                  not in (None, victim), 30),
       "one dies: worker 1 comes back with a new pid")
    now = dict(q("SELECT worker, pid FROM tcc.worker"))
    is_((now.get(0), now.get(2)), (pids[0], pids[2]),
        "one dies: workers 0 and 2 keep their pids")
    ok(wait_until(lambda: worker_pids() == sorted(now.values()), 10),
       "one dies: pg_stat_activity shows the %d workers of tcc.worker (%r)"
       % (W, sorted(now.values())))
    left = wait_all_final(gids, 30)
    mine = by_owner(gids)[1]
    is_(statuses(mine), {"confirmed": len(mine)},
        "one dies: the %d transactions of its share decided while it was"
        " down end confirmed" % len(mine))
    is_(statuses(gids), {"confirmed": len(gids)},
        "one dies: and the others' %d" % (len(gids) - len(mine)))
    for g in left[:3]:
        explain_gid(g)
    cancels, _, _, confirmed = phase_two_counts(gids)
    is_((cancels, confirmed), (0, 2 * len(gids)),
        "one dies: every branch confirmed, no cancel")


def check_metrics(m0, r0):
    """The counters moved as the recount did; one worker_up sample."""
    ok(wait_until(lambda: moved(m0, kept()) == moved(r0, recount()), 15),
       "metrics: the counters settle")
    d_m, d_r = moved(m0, kept()), moved(r0, recount())
    if not is_(d_m, d_r, "metrics: tcc_metrics() moved as the recount did"):
        for k in sorted(set(d_m) | set(d_r)):
            if d_m.get(k) != d_r.get(k):
                diag("  %r: kept %s, recount %s" % (k, d_m.get(k), d_r.get(k)))
    ended = {}
    for k, v in d_m.items():
        if k[0] == "tcc_transactions_total":
            ended[k[1]] = ended.get(k[1], 0) + v
    ok(ended.get("confirmed", 0) >= 60 + 9 + 12 + 9
       and ended.get("cancelled", 0) >= 30 + W
       and ended.get("resolved", 0) >= 2,
       "metrics: tcc_transactions_total counts the transactions of this"
       " test (%r)" % (ended,))
    is_(q("SELECT value FROM tcc_metrics() WHERE metric = 'tcc_worker_up'"),
        [(1.0,)], "metrics: one tcc_worker_up sample for the database: 1")


# --------------------------------------------------------------------------

def workers_setting():
    """tcc.workers as the server shows it (None: no such setting)."""
    return q1("SELECT current_setting('tcc.workers', true)")


before = workers_setting()
auto_before = q1("SELECT setting FROM pg_file_settings"
                 " WHERE name = 'tcc.workers'"
                 "   AND sourcefile LIKE '%%postgresql.auto.conf'"
                 " ORDER BY seqno DESC LIMIT 1")
changed = before != str(W)
try:
    if changed:
        q("ALTER SYSTEM SET tcc.workers = %d" % W)
        restart("fast")
    ok(wait_cluster() is not None, "the cluster runs with its workers")
    is_(workers_setting(), str(W), "tcc.workers is %d" % W)
    m0, r0 = kept(), recount()
    pids = check_workers()
    check_confirm()
    check_wait()
    check_deadline()
    check_aborted()
    check_operator()
    check_limits()
    check_one_dies(pids)
    check_metrics(m0, r0)
finally:
    if changed:
        try:
            wait_until(lambda: q1("SELECT 1") == 1, 60)
            if auto_before is None:
                q("ALTER SYSTEM RESET tcc.workers")
            else:
                q("ALTER SYSTEM SET tcc.workers = %s", (auto_before,))
            restart("fast")
            wait_cluster()
        except Exception as e:      # noqa: BLE001 - reported, then checked
            diag("could not restore tcc.workers: %s" % e)
        is_(workers_setting(), before,
            "tcc.workers is back to %s" % before)

done_testing()
