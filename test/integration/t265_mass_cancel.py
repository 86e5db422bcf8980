#!/usr/bin/python3
# R3 of docs/guarantees.md (no limbo) at scale, with R4 (one outcome) kept:
# thousands of undecided transactions that can no longer confirm are
# cancelled in a few large batches, one worker pass after the other, and a
# bulk tcc_retry (docs/api.md) is applied at once, not a hundred at a time.
# docs/worker.md: the worker cancels "what can no longer confirm" in each
# turn; a full batch is not a blocked gid, so the next pass does not wait.
# With tcc.workers > 1 (docs/worker.md#several-workers) each worker does so
# for the gids it owns: the bounds below hold per worker.
#
#   deadline storm      STORM transactions of one branch begun in one
#                       transaction with one deadline, while a gid past its
#                       deadline is held by a tcc_finish(gid, true) left
#                       open, which keeps the worker's backoff for held gids
#                       at its 1 s ceiling.  All are decided by at most
#                       ceil(STORM / CANCEL_BATCH) + 1 worker transactions
#                       (their decisions' xmin), none of them waiting for
#                       that backoff after a full batch (the cancels go to a
#                       participant of the test's own that holds them until
#                       all are decided, so no pass records outcomes); then
#                       all are cancelled, and the held caller commits and
#                       its gid is confirmed, never cancelled.
#   aborted beginners   ABORTED transactions begun in a transaction that
#                       rolls back: all cancelled ('aborted'), by at most
#                       ceil(ABORTED / CANCEL_BATCH) worker transactions.
#   bulk tcc_retry      RETRY failed transactions retried in one transaction:
#                       every action applied by one worker transaction, and
#                       all confirmed.

import math
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import system_settings, tp_url  # noqa: E402
from faultlib import Caller, explain_gid, ops_seen, status  # noqa: E402
from tcclib import (PostHandler, connect, diag, done_testing,  # noqa: E402
                    is_, ok, q, q1, run, serve_http, tp_rule, wait_until,
                    workers)

CANCEL_BATCH = 1000         # gids the worker decides per pass (src/cancel.c)
ACTION_BATCH = 1000         # operator actions it applies per pass (settle.c)
STORM = 2500
ABORTED = 1500
RETRY = 250
LEAD = "15 s"               # from the storm's start to its deadline
BACKOFF_CEILING = 1.0       # the held-gid backoff's ceiling (src/worker.c)
SETTLE_LIMIT = 60           # seconds: R3's bound is "at the deadline"
W = workers()               # tcc.workers: each decides the gids it owns
RUN = int(time.time())      # kinds of this run: the run with several workers
                            # follows the first in the same database


def begin_many(conn, n, timeout, kind, base=None):
    """n tcc_begin calls in conn's open transaction, each with the time left
    until one moment: their deadlines fall within a millisecond (a timeout
    counts whole milliseconds from the call).  With base, each gets a branch
    without a try whose confirm and cancel go there."""
    branch = ("  PERFORM tcc_branch(g, NULL, '%s/confirm', '%s/cancel');"
              % (base, base)) if base else ""
    run(conn, "DO $$ DECLARE t timestamptz := clock_timestamp()"
              "  + interval '%s'; g uuid; BEGIN FOR i IN 1..%d LOOP"
              "  g := tcc_begin(t - clock_timestamp(), '%s');%s"
              " END LOOP; END $$" % (timeout, n, kind, branch))


class Holding(PostHandler):
    """Answers every POST with 200, once the test lets it (release)."""

    release = threading.Event()
    lock = threading.Lock()
    answered = 0

    def do_POST(self):
        self.read_body()
        Holding.release.wait(SETTLE_LIMIT)
        self.answer(200, b'{"ok":true}')
        with Holding.lock:
            Holding.answered += 1


def left_open(kind):
    """Transactions of kind not final yet (the table itself: a cheap poll
    that leaves the cores to the worker)."""
    return q1("SELECT count(*) FROM tcc._gtx WHERE kind = %s"
              " AND status IN ('trying', 'confirming', 'cancelling')", (kind,))


def wait_kind(kind, limit):
    """Polls until no transaction of kind is open; returns the seconds it
    took, or None."""
    t0 = time.monotonic()
    if wait_until(lambda: left_open(kind) == 0, limit, 0.2):
        return time.monotonic() - t0
    return None


def statuses(kind):
    return dict(q("SELECT status, count(*) FROM tcc.transactions"
                  " WHERE kind = %s GROUP BY status", (kind,)))


def decision_passes(kind):
    """The worker transactions that decided the gids of kind, in order:
    (first decided_at, last decided_at, gids, owner) per decision xmin,
    the owner being the worker whose gids it decided (None if several)."""
    return q("SELECT min(d.decided_at), max(d.decided_at), count(*),"
             "       CASE WHEN min(o.w) = max(o.w) THEN min(o.w) END"
             "  FROM tcc._decision d JOIN tcc._gtx g ON g.gid = d.gid,"
             "       LATERAL (SELECT tcc._gid_owner(g.gid, %s)) o (w)"
             " WHERE g.kind = %s GROUP BY d.xmin::text::bigint"
             " ORDER BY min(d.decided_at)", (W, kind))


def owned(kind):
    """{worker: gids of kind it owns}."""
    return dict(q("SELECT tcc._gid_owner(gid, %s), count(*) FROM tcc._gtx"
                  " WHERE kind = %s GROUP BY 1", (W, kind)))


def check_passes(label, kind, passes, extra):
    """Each worker decided its share of kind in at most ceil(share /
    CANCEL_BATCH) + extra transactions, each of its own gids only."""
    ok(all(p[3] is not None for p in passes),
       "%s: each worker transaction decided gids of one worker" % label)
    for w, n in sorted(owned(kind).items()):
        mine = [p for p in passes if p[3] == w]
        most = math.ceil(n / CANCEL_BATCH) + extra
        ok(len(mine) <= most, "%s: worker %d decided its %d in %d worker"
           " transactions, at most %d" % (label, w, n, len(mine), most))


def deadline_storm():
    label = "deadline storm"
    kind = "t265 storm %s" % RUN
    srv, base = serve_http(Holding)
    held = Caller(autocommit=True)
    held_gid = held.begin("3 s")
    held.branch(held_gid, "/t265/held")
    holder = Caller()
    committed = False
    try:
        is_(holder.finish(held_gid, True), "confirming",
            "%s: tcc_finish(gid, true) before its deadline, left open"
            % label)
        conn = connect(autocommit=False)
        t0 = time.monotonic()
        begin_many(conn, STORM, LEAD, kind, base)
        conn.commit()
        conn.close()
        prep = time.monotonic() - t0
        deadline, spread, before = q(
            "SELECT min(deadline), max(deadline) - min(deadline),"
            "       bool_and(deadline > clock_timestamp())"
            "  FROM tcc.transactions WHERE kind = %s", (kind,))[0]
        if not ok(before, "%s: %d begun in one transaction (%.1f s), before"
                  " their deadlines (spread over %s)"
                  % (label, STORM, prep, spread)):
            return
        ok(wait_until(lambda: q1("SELECT count(*) FROM tcc._gtx g"
                                 " WHERE kind = %s AND NOT EXISTS (SELECT 1"
                                 " FROM tcc._decision d WHERE d.gid = g.gid)",
                                 (kind,)) == 0,
                      deadline.timestamp() - time.time() + SETTLE_LIMIT, 0.2),
           "%s: all decided" % label)
        passes = decision_passes(kind)
        Holding.release.set()
        is_(sum(p[2] for p in passes), STORM,
            "%s: one decision each" % label)
        # one more when a pass falls inside the deadlines' millisecond
        check_passes(label, kind, passes, 1)
        gaps = [(b[0] - a[1]).total_seconds()
                for w in range(W)
                for mine in [[p for p in passes if p[3] == w]]
                for a, b in zip(mine, mine[1:])]
        ok(all(g < BACKOFF_CEILING / 2 for g in gaps),
           "%s: no pass after a full batch waits for the backoff of held"
           " gids (gaps %s s)" % (label, [round(g, 3) for g in gaps]))
        wait_kind(kind, SETTLE_LIMIT)
        is_(statuses(kind), {"cancelled": STORM},
            "%s: all %d cancelled" % (label, STORM))
        late = q1("SELECT extract(epoch FROM max(finished_at) - %s)"
                  "  FROM tcc.transactions WHERE kind = %s", (deadline, kind))
        diag("%s: (gids, s after the deadline) per pass: %s; all final %s s"
             " after it, %d cancels answered"
             % (label, [(p[2], round((p[0] - deadline).total_seconds(), 3))
                        for p in passes], late, Holding.answered))
        is_(status(held_gid), "trying",
            "%s: the held gid is still undecided by the worker" % label)
        holder.commit()
        committed = True
    finally:
        Holding.release.set()
        if not committed:
            holder.rollback()
        holder.close()
        held.close()
        srv.shutdown()
        srv.server_close()
    final = wait_until(lambda: status(held_gid) in ("confirmed", "cancelled")
                       and status(held_gid), 15)
    if not is_(final, "confirmed", "%s: the held caller's COMMIT won: its"
               " gid is confirmed" % label):
        explain_gid(held_gid)
    is_(ops_seen(held_gid), {"confirm"},
        "%s: the held gid was sent confirms only" % label)


def aborted_beginners():
    label = "aborted beginners"
    kind = "t265 aborted %s" % RUN
    conn = connect(autocommit=False)
    begin_many(conn, ABORTED, "1 hour", kind)
    run(conn, "ROLLBACK")
    conn.close()
    took = wait_kind(kind, SETTLE_LIMIT)
    ok(took is not None, "%s: all final (%.2f s after the ROLLBACK)"
       % (label, took or -1))
    is_(statuses(kind), {"cancelled": ABORTED},
        "%s: all %d cancelled" % (label, ABORTED))
    is_(q1("SELECT count(*) FROM tcc.transactions WHERE kind = %s"
           " AND decided_by = 'aborted'", (kind,)), ABORTED,
        "%s: each decided by the worker as 'aborted'" % label)
    check_passes(label, kind, decision_passes(kind), 0)


def bulk_retry():
    label = "bulk tcc_retry"
    kind = "t265 retry %s" % RUN
    confirm = "/t265/retry/%s/confirm" % RUN
    tp_rule(confirm, status=500, body='{"error":"down"}')
    with system_settings(max_attempts=1):
        conn = connect(autocommit=False)
        run(conn, "DO $$ DECLARE g uuid; BEGIN FOR i IN 1..%d LOOP"
                  "  g := tcc_begin(interval '1 hour', '%s');"
                  "  PERFORM tcc_branch(g, NULL, '%s', '%s');"
                  "  PERFORM tcc_finish(g);"
                  " END LOOP; END $$"
            % (RETRY, kind, tp_url(confirm), tp_url("/t265/retry/cancel")))
        conn.commit()
        wait_kind(kind, SETTLE_LIMIT)
        is_(statuses(kind), {"failed": RETRY},
            "%s: %d failed after one attempt each" % (label, RETRY))
        tp_rule(confirm, status=200)
        run(conn, "SELECT count(tcc_retry(gid)) FROM tcc.transactions"
                  " WHERE kind = %s", (kind,))
        conn.commit()
        conn.close()
        t0 = time.monotonic()
        done = wait_until(lambda: statuses(kind) == {"confirmed": RETRY},
                          SETTLE_LIMIT, 0.2)
        ok(done, "%s: all final (%.2f s after the COMMIT)"
           % (label, time.monotonic() - t0))
        is_(statuses(kind), {"confirmed": RETRY},
            "%s: all %d confirmed" % (label, RETRY))
        passes = dict(q("SELECT tcc._gid_owner(a.gid, %s),"
                        "       count(DISTINCT a.xmin::text) FROM tcc._action a"
                        " JOIN tcc._gtx g ON g.gid = a.gid"
                        " WHERE g.kind = %s AND a.applied GROUP BY 1",
                        (W, kind)))
        is_(passes, {w: math.ceil(n / ACTION_BATCH)
                     for w, n in owned(kind).items()},
            "%s: every action applied by one transaction of its worker"
            % label)


deadline_storm()
aborted_beginners()
bulk_retry()

done_testing()
