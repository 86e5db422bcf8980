#!/usr/bin/python3
# The participant barrier under concurrency
# (docs/protocol.md#participant-barrier: "Concurrent try and cancel of the
# same branch cannot both act").  A try and a cancel of
# the same (gid, branch) run in two sessions, each in its own local
# transaction as a participant would: the second one waits for the first
# one's transaction, then
#   - try committed first: the try acted, so the cancel acts too (true, true);
#   - cancel committed first: an empty rollback, and the try hangs
#     (false, false);
#   - the first one rolled back: the second one behaves as if alone.
# The single-session rules are in sql/barrier.sql.

import os
import random
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (connect, diag, done_testing, is_, note, ok,  # noqa: E402
                    q, q1, wait_until)

RACES = 50
BLOCK_TIMEOUT = 10.0


class Call(threading.Thread):
    """tcc_barrier(gid, 1, op) in its own connection and transaction.

    Waits for `start` (a threading.Barrier) if given, sleeps `delay`
    seconds, calls the barrier, holds the transaction `hold` seconds, then
    commits.  The result is in .act, an exception in .error; .called,
    .returned and .ended are the monotonic times of the call, its answer
    and the end of the commit.
    """

    def __init__(self, gid, op, start=None, delay=0.0, hold=0.0):
        super().__init__(daemon=True)
        self.gid, self.op = gid, op
        self.start_barrier, self.delay, self.hold = start, delay, hold
        self.conn = connect(autocommit=False)
        self.pid = self.conn.get_backend_pid()
        self.act = None
        self.error = None
        self.called = self.returned = self.ended = None

    def run(self):
        try:
            if self.start_barrier is not None:
                self.start_barrier.wait(BLOCK_TIMEOUT)
            time.sleep(self.delay)
            self.called = time.monotonic()
            with self.conn.cursor() as cur:
                cur.execute("SELECT tcc_barrier(%s, 1, %s)",
                            (str(self.gid), self.op))
                self.act = cur.fetchone()[0]
            self.returned = time.monotonic()
            time.sleep(self.hold)
            self.conn.commit()
            self.ended = time.monotonic()
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.conn.close()


def waited(x, y):
    """True if x's call was answered only after y's transaction ended."""
    return x.called < y.ended and x.returned >= y.ended


def barrier_in_xact(conn, gid, op):
    """tcc_barrier(gid, 1, op) in conn's open transaction."""
    with conn.cursor() as cur:
        cur.execute("SELECT tcc_barrier(%s, 1, %s)", (str(gid), op))
        return cur.fetchone()[0]


def waits_on_lock(pid):
    """True once backend pid waits for a lock (the other transaction)."""
    return wait_until(lambda: q1("SELECT wait_event_type = 'Lock'"
                                 " FROM pg_stat_activity WHERE pid = %s",
                                 (pid,)), BLOCK_TIMEOUT)


def first_waits_for_second(first_op, second_op, end):
    """Session A runs first_op and holds its transaction; B runs second_op.

    Checks that B waits until A ends (end: "commit" or "rollback");
    returns (A's result, B's result).
    """
    gid = uuid.uuid4()
    a = connect(autocommit=False)
    try:
        a_act = barrier_in_xact(a, gid, first_op)
        b = Call(gid, second_op)
        b.start()
        ok(waits_on_lock(b.pid),
           "%s waits while the %s's transaction is open" % (second_op,
                                                           first_op))
        ok(b.is_alive() and b.act is None,
           "%s has not returned before the %s's transaction ends"
           % (second_op, first_op))
        if end == "commit":
            a.commit()
        else:
            a.rollback()
    finally:
        a.close()
    b.join(BLOCK_TIMEOUT)
    ok(not b.is_alive() and b.error is None,
       "%s returns once the %s's transaction %s" % (
           second_op, first_op,
           "commits" if end == "commit" else "rolls back"))
    if b.error is not None:
        diag("%s failed: %s" % (second_op, b.error))
    return a_act, b.act


# Try holds its row, cancel waits; the try committed, so the cancel acts.
try_act, cancel_act = first_waits_for_second("try", "cancel", "commit")
is_(try_act, True, "try first: the try acts")
is_(cancel_act, True, "try committed first: the cancel acts")

# Cancel holds the rows, try waits; the cancel was an empty rollback and the
# try that arrives after it hangs.
cancel_act, try_act = first_waits_for_second("cancel", "try", "commit")
is_(cancel_act, False, "cancel first: an empty rollback")
is_(try_act, False, "cancel committed first: the hanging try does nothing")

# The try's transaction rolls back: the try never happened, so the waiting
# cancel is an empty rollback.
try_act, cancel_act = first_waits_for_second("try", "cancel", "rollback")
is_(try_act, True, "try in a transaction that will roll back acts")
is_(cancel_act, False,
    "try rolled back: the waiting cancel is an empty rollback")

# The cancel's transaction rolls back: the waiting try acts.
cancel_act, try_act = first_waits_for_second("cancel", "try", "rollback")
is_(cancel_act, False, "cancel in a transaction that will roll back")
is_(try_act, True, "cancel rolled back: the waiting try acts")

# Races: both sessions released together, each after a random delay of up
# to 5 ms, each holding its transaction up to 5 ms.  Whichever inserted
# the try's row first wins; the row's reason says which one it was.
rng = random.Random(os.environ.get("TCC_RACE_SEED"))
bad = []
errors = []
try_won = cancel_won = contended = 0
race_gids = []
for i in range(RACES):
    gid = uuid.uuid4()
    race_gids.append(str(gid))
    start = threading.Barrier(2)
    t = Call(gid, "try", start, rng.uniform(0, 0.005), rng.uniform(0, 0.005))
    c = Call(gid, "cancel", start, rng.uniform(0, 0.005),
             rng.uniform(0, 0.005))
    t.start()
    c.start()
    t.join(BLOCK_TIMEOUT)
    c.join(BLOCK_TIMEOUT)
    if t.is_alive() or c.is_alive() or t.error or c.error:
        errors.append((i, t.error, c.error))
        continue
    winner = q1("SELECT reason FROM tcc._barrier"
                " WHERE gid = %s AND branch = 1 AND op = 'try'", (str(gid),))
    if waited(t, c) or waited(c, t):
        contended += 1
    if winner == "try":
        try_won += 1
        expected = (True, True)
    else:
        cancel_won += 1
        expected = (False, False)
    if (t.act, c.act) != expected:
        bad.append((i, winner, t.act, c.act))

is_(errors, [], "%d races ran to the end without errors" % RACES)
is_(bad, [], "in every race: try and cancel both act when the try came"
    " first, neither when the cancel came first")
note("try came first in %d races, cancel in %d; in %d one session waited"
     " for the other" % (try_won, cancel_won, contended))
ok(try_won > 0 and cancel_won > 0,
   "the races went both ways (try first %d, cancel first %d)"
   % (try_won, cancel_won))
ok(contended > 0,
   "in some races one session waited for the other (%d)" % contended)

# Every race left exactly two rows: the try's and the cancel's.
is_(q1("SELECT count(*) FROM tcc._barrier WHERE gid = ANY(%s::uuid[])",
       (race_gids,)), 2 * RACES, "each race left one try and one cancel row")

q("DELETE FROM tcc._barrier WHERE gid = ANY(%s::uuid[])", (race_gids,))
done_testing()
