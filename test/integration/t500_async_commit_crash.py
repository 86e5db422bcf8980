#!/usr/bin/python3
# R2 of docs/guarantees.md (decision = caller's commit: "no confirm is sent
# before the decision is durable, even when the caller commits with
# synchronous_commit = off") and R4 (one outcome).
#
# A cluster of the test's own (clusterlib.py; the harness's cluster holds
# the participant's request log, whose synchronous commits would flush the
# WAL this test means to lose) with autovacuum and the background writer's
# page cleaning off and ample WAL buffers, so that nothing but tcc itself
# writes out the WAL while its WAL writer is held back.
#
# N callers each begin a global transaction and try one branch at the test
# participant in an open transaction (the intents are flushed then, R1).
# The WAL writer is stopped with SIGSTOP.  Each caller then decides,
# tcc_finish(gid, true), and COMMITs at synchronous_commit = off.  About a
# second later every process of the cluster is SIGKILLed (by pid, all
# frozen first), and the cluster is started again (crash recovery).  Then,
# once every gid is final:
#   - no gid got both a confirm and a cancel at the participant;
#   - the gids whose decision survived (confirmed) got their confirm, and
#     only those got one;
#   - the others (their decision was lost with the WAL) are cancelled and
#     their branch got its cancel.
# The same again with the callers at synchronous_commit = local.

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import FINAL, branch_urls  # noqa: E402
from tcclib import (diag, done_testing, is_, note, ok, q,  # noqa: E402
                    wait_until)
from clusterlib import Cluster, port, proc_state, watchdog  # noqa: E402

N = 8
WINDOW = 1.0            # from the last decision to the kill
CONFIRM_WAIT = 5.0      # at most, for the confirms to reach the participant
SETTLE = 60.0

watchdog(240)
cluster = Cluster("t500", port(3))
cluster.init({
    # nothing else may write the WAL out while the WAL writer is stopped
    "autovacuum": "off",
    "bgwriter_lru_maxpages": "0",
    "wal_buffers": "'16MB'",
    "checkpoint_timeout": "'1h'",
    "max_wal_size": "'1GB'",
})
cluster.start()
cluster.q("CREATE EXTENSION tcc")
ok(wait_until(lambda: cluster.pids_of("tcc coordinator"), 30),
   "the test's own cluster runs a coordinator worker")


def phase_two_ops(gids):
    """{gid: set of phase-two ops} the participant received for gids."""
    seen = {g: set() for g in gids}
    for gid, op in q("SELECT gid::text, op FROM tp.requests"
                     " WHERE gid = ANY(%s::uuid[])"
                     "   AND op IN ('confirm', 'cancel')", (gids,)):
        seen[gid].add(op)
    return seen


def statuses(gids):
    """{gid: (status, decided_by)} on the test's cluster."""
    return {g: (s, d) for g, s, d in cluster.q(
        "SELECT gid::text, status, decided_by FROM tcc.transactions"
        " WHERE gid = ANY(%s::uuid[])", (gids,))}


def run_case(sync_commit):
    """Decide N transactions at sync_commit with the WAL writer stopped,
    SIGKILL the cluster, restart it and check the outcomes."""
    label = "synchronous_commit = %s" % sync_commit
    prefix = "/t500/%s/%d" % (sync_commit, int(time.time() * 1000))
    try_url, confirm_url, cancel_url = branch_urls(prefix)

    callers = []
    gids = []
    for _ in range(N):
        conn = cluster.connect(autocommit=False,
                               application_name="t500 caller")
        callers.append(conn)
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = %s" % sync_commit)
            cur.execute("SELECT tcc_begin('1 hour')::text")
            gid = cur.fetchone()[0]
            cur.execute("SELECT tcc_branch(%s, %s, %s, %s)",
                        (gid, try_url, confirm_url, cancel_url))
        gids.append(gid)
    is_(len(gids), N, "%s: %d transactions tried, each in an open"
        " transaction" % (label, N))

    walwriter = cluster.pids_of("walwriter")
    is_(len(walwriter), 1, "%s: the WAL writer's pid" % label)
    committed = 0
    try:
        for pid in walwriter:
            os.kill(pid, signal.SIGSTOP)
        ok(all(wait_until(lambda: proc_state(p) == "T", 5)
               for p in walwriter), "%s: the WAL writer is stopped" % label)

        for conn, gid in zip(callers, gids):
            with conn.cursor() as cur:
                cur.execute("SELECT tcc_finish(%s, true)", (gid,))
            conn.commit()
            committed += 1
        decided = time.monotonic()
        is_(committed, N, "%s: %d decisions committed" % (label, N))

        # the window in which the confirms go out: no statement of the test
        # writes to the cluster meanwhile
        wait_until(lambda: all("confirm" in ops for ops in
                               phase_two_ops(gids).values()),
                   CONFIRM_WAIT, 0.05)
        left = WINDOW - (time.monotonic() - decided)
        if left > 0:
            time.sleep(left)
        sent = sum(1 for ops in phase_two_ops(gids).values()
                   if "confirm" in ops)
        flush, insert = cluster.q(
            "SELECT pg_current_wal_flush_lsn(), pg_current_wal_insert_lsn()")[0]
        note("%s: %d of %d confirms sent before the kill; WAL flushed to %s"
             " of %s" % (label, sent, N, flush, insert))
    finally:
        for conn in callers:
            try:
                conn.close()
            except Exception:
                pass
        cluster.kill_all()

    cluster.start()
    ok(wait_until(lambda: cluster.pids_of("tcc coordinator"), 30),
       "%s: the cluster is back after SIGKILL of every process, with its"
       " worker" % label)

    t0 = time.monotonic()
    final = wait_until(lambda: all(s[0] in FINAL for s in
                                   statuses(gids).values())
                       and len(statuses(gids)) == N, SETTLE, 0.2)
    ok(final, "%s: all %d transactions final within %.0f s (took %.1f s)"
       % (label, N, SETTLE, time.monotonic() - t0))

    st = statuses(gids)
    confirmed = sorted(g for g in gids if st.get(g, (None,))[0] == "confirmed")
    lost = sorted(g for g in gids if g not in confirmed)
    note("%s: %d decisions survived the crash, %d were lost"
         % (label, len(confirmed), len(lost)))

    # each gid's final call was recorded before it was answered
    def settled():
        seen = phase_two_ops(gids)
        done = all(("confirm" if g in confirmed else "cancel") in seen[g]
                   for g in gids)
        return seen if done else None
    seen = wait_until(settled, 10, 0.2) or phase_two_ops(gids)

    both = [g for g in gids if seen[g] >= {"confirm", "cancel"}]
    ok(not both, "%s: no gid got both a confirm and a cancel" % label)
    for g in both[:5]:
        diag("  %s got confirm and cancel; now %s (decided by %s)"
             % (g, st.get(g, (None, None))[0], st.get(g, (None, None))[1]))

    got_confirm = sorted(g for g in gids if "confirm" in seen[g])
    is_(got_confirm, confirmed, "%s: the gids whose decision survived got"
        " confirms, and only those" % label)
    is_([g for g in lost if st.get(g, (None,))[0] != "cancelled"
         or "cancel" not in seen[g]], [],
        "%s: the gids whose decision was lost are cancelled, their branch"
        " got its cancel" % label)


try:
    run_case("off")
    run_case("local")
finally:
    cluster.stop()

done_testing()
