#!/usr/bin/python3
# R6 of docs/guarantees.md (no open transaction across the network): neither
# the worker nor tcc_branch holds row locks on coordinator tables while waiting
# for a participant, so a slow participant slows down only its own caller.
#
#   slow try       Session A is in tcc_branch, its try held 3 s by the
#                  participant (inside A's open transaction, which began the
#                  gid).
#   slow confirm   The worker has a confirm in flight, held 3 s.
#
# While each wait lasts, other sessions run complete global transactions on
# other gids: every tcc_begin / tcc_branch / tcc_finish / COMMIT must return
# within LIMIT (1.5 s, against a 3 s wait), and those transactions must be
# confirmed before the slow call even returns.  Meanwhile we sample, many
# times:
#
#   - pgrowlocks() over every tcc table: the rows locked (FOR UPDATE/SHARE or
#     by an UPDATE/DELETE in progress) and the pids holding them.  A's pid
#     must never appear.  The worker may lock rows in its short settling
#     transactions; it must never be seen holding one in a transaction older
#     than 1 s (a lock held across the 3 s call would be).
#   - pg_locks: the relation locks A holds on objects of schema tcc.  A waits
#     inside a statement of an open transaction, so AccessShareLock on what
#     that statement read is expected and harmless (it conflicts only with
#     ACCESS EXCLUSIVE, e.g. DROP or VACUUM FULL); anything stronger is not,
#     nor may A hold a tuple lock.
#   - pg_stat_activity: the worker's transaction age (now() - xact_start).
#     It is never older than 1 s while its 3 s confirm is in flight, i.e. the
#     worker runs no transaction across the call.
#
# With tcc.workers > 1 (test/run.sh's suite "workers") "the worker" is every
# one of them: the oldest of their transactions and the row locks any of
# them holds.

import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import Background, Caller, status, wait_status  # noqa: E402
from tcclib import (diag, done_testing, is_, ok, q, q1,  # noqa: E402
                    tp_requests, tp_rule, wait_until, worker_pids)

SLOW_MS = 3000
LIMIT = 1.5          # seconds for any one call of another session
OLD_XACT = 1.0       # seconds: a worker transaction this old would be wrong

TABLES = ["tcc._gtx", "tcc._branch", "tcc._decision", "tcc._try",
          "tcc._attempt", "tcc._action"]

SAMPLE_SQL = """
SELECT clock_timestamp(),
       (SELECT max(extract(epoch FROM clock_timestamp() - xact_start))
          FROM pg_stat_activity WHERE pid = ANY(%(workers)s::int[])),
       (SELECT coalesce(array_agg(DISTINCT l.mode || ' ' || c.relname), '{}')
          FROM pg_locks l
          JOIN pg_class c ON c.oid = l.relation
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE l.pid = %(a)s AND n.nspname = 'tcc'),
       (SELECT count(*) FROM pg_locks l
         WHERE l.pid = %(a)s AND l.locktype = 'tuple'),
       (SELECT coalesce(array_agg(t.rel || ' ' || r.locked_row::text
                                  || ' ' || r.pids::text), '{}')
          FROM unnest(%(tables)s::text[]) t(rel),
               LATERAL pgrowlocks(t.rel) r
         WHERE %(a)s = ANY(r.pids)),
       (SELECT count(*)
          FROM unnest(%(tables)s::text[]) t(rel),
               LATERAL pgrowlocks(t.rel) r
         WHERE r.pids && %(workers)s::int[])
"""


class Samples:
    """Lock and transaction samples of session A and the worker."""

    def __init__(self, a_pid, answer_at):
        self.a_pid = a_pid
        self.answer_at = answer_at
        self.n = 0
        self.worker_max_age = 0.0
        self.worker_row_locks_old = []
        self.worker_lock_samples = 0
        self.a_modes = set()
        self.a_tuple_locks = 0
        self.a_row_locks = []

    def take(self):
        """Take one sample; returns False once the slow call may have been
        answered (such a sample is not counted)."""
        workers = worker_pids()
        at, age, a_modes, a_tuples, a_rows, w_rows = q(
            SAMPLE_SQL, {"workers": workers, "a": self.a_pid or 0,
                         "tables": TABLES})[0]
        if at >= self.answer_at:
            return False
        self.n += 1
        age = float(age) if age is not None else 0.0
        self.worker_max_age = max(self.worker_max_age, age)
        if w_rows:
            self.worker_lock_samples += 1
            if age >= OLD_XACT:
                self.worker_row_locks_old.append((age, w_rows))
        for m in a_modes:
            self.a_modes.add(m.split(" ")[0])
        self.a_tuple_locks += a_tuples
        self.a_row_locks.extend(a_rows)
        return True


def quick_transactions(label, prefix, count):
    """count complete global transactions in other sessions, each call
    timed; returns (slowest call in s, its name, gids)."""
    slowest = (0.0, None)
    gids = []
    for i in range(count):
        caller = Caller()
        try:
            steps = [("tcc_begin", lambda: caller.begin("1 min")),
                     ("tcc_branch", lambda: caller.branch(
                         gids[-1], "%s/quick%d" % (prefix, i))),
                     ("tcc_finish", lambda: caller.finish(gids[-1], True)),
                     ("COMMIT", caller.commit)]
            for name, fn in steps:
                t0 = time.monotonic()
                value = fn()
                took = time.monotonic() - t0
                if name == "tcc_begin":
                    gids.append(value)
                if took > slowest[0]:
                    slowest = (took, name)
        finally:
            caller.close()
    return slowest[0], slowest[1], gids


def while_waiting(label, prefix, gid, op, a_pid):
    """Other sessions' work and lock samples while the slow call of gid's
    op waits.  The participant records a request, then holds it SLOW_MS:
    until that much after the recorded time the call is surely waiting."""
    received = q1("SELECT min(at) FROM tp.requests WHERE gid = %s"
                  "   AND op = %s", (gid, op))
    answer_at = received + datetime.timedelta(milliseconds=SLOW_MS)
    samples = Samples(a_pid, answer_at)
    samples.take()
    slowest, which, gids = quick_transactions(label, prefix, 2)
    ok(slowest < LIMIT, "%s: every call of other sessions took < %.1f s"
       " (slowest %s, %.2f s)" % (label, LIMIT, which, slowest))
    wait_until(lambda: all(status(g) == "confirmed" for g in gids),
               SLOW_MS / 1000.0)
    is_(q1("SELECT count(*) FROM tcc.transactions WHERE gid = ANY(%s::uuid[])"
           "   AND status = 'confirmed' AND finished_at < %s",
           (gids, answer_at)), len(gids),
        "%s: their transactions confirmed while the slow call was still"
        " waiting" % label)
    while samples.take():
        pass
    diag("%s: %d samples; worker seen locking rows in %d, oldest worker"
         " transaction %.2f s" % (label, samples.n,
                                  samples.worker_lock_samples,
                                  samples.worker_max_age))
    ok(samples.n >= 5, "%s: sampled locks while waiting (%d samples)"
       % (label, samples.n))
    ok(samples.worker_max_age < OLD_XACT,
       "%s: no worker transaction older than %.0f s (oldest %.2f s)"
       % (label, OLD_XACT, samples.worker_max_age))
    is_(samples.worker_row_locks_old, [],
        "%s: the worker held no row lock in an old transaction" % label)
    return samples


def slow_try():
    label = "slow try"
    prefix = "/t270/slow_try"
    tp_rule(prefix + "/a/try", delay_ms=SLOW_MS)
    a = Caller()
    try:
        gid = a.begin("1 hour")
        call = Background(lambda: a.branch(gid, prefix + "/a"))
        ok(wait_until(lambda: any(r["op"] == "try"
                                  for r in tp_requests(gid)), 10),
           "%s: A's try reached the participant" % label)
        samples = while_waiting(label, prefix, gid, "try", a.pid)
        is_(samples.a_row_locks, [], "%s: A holds no row lock on any tcc"
            " table" % label)
        is_(samples.a_tuple_locks, 0, "%s: A holds no tuple lock" % label)
        ok(samples.a_modes <= {"AccessShareLock"},
           "%s: A's relation locks on tcc objects are AccessShareLock only"
           " (%s)" % (label, sorted(samples.a_modes)))
        is_(call.result(10)[0], "ok", "%s: A's tcc_branch returned" % label)
        a.rollback()
    finally:
        a.close()


def slow_confirm():
    label = "slow confirm"
    prefix = "/t270/slow_confirm"
    tp_rule(prefix + "/w/confirm", delay_ms=SLOW_MS)
    caller = Caller()
    try:
        gid = caller.begin("1 hour")
        caller.branch(gid, prefix + "/w")
        caller.finish(gid, True)
        caller.commit()
    finally:
        caller.close()
    ok(wait_until(lambda: any(r["op"] == "confirm"
                              for r in tp_requests(gid))
                  and q1("SELECT sum(in_flight) FROM tcc.worker") >= 1, 10),
       "%s: the worker's confirm reached the participant" % label)
    while_waiting(label, prefix, gid, "confirm", None)
    is_(wait_status(gid, "confirmed", 10), "confirmed",
        "%s: the slow confirm completed" % label)


created = q1("SELECT NOT EXISTS (SELECT 1 FROM pg_extension"
             " WHERE extname = 'pgrowlocks')")
q("CREATE EXTENSION IF NOT EXISTS pgrowlocks")
try:
    slow_try()
    slow_confirm()
finally:
    if created:
        q("DROP EXTENSION IF EXISTS pgrowlocks")

done_testing()
