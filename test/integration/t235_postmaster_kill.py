#!/usr/bin/python3
# R3 of docs/guarantees.md (no limbo "even when ... the postmaster crashes")
# and R5 (retries survive crashes).
#
# With 20 decided transactions waiting on slow confirms (2 s each) and a
# caller in the middle of a slow try (its transaction began the gid), the
# postmaster is killed with SIGKILL.  Its children notice and exit; once they
# are all gone the cluster is started again (pg_ctl start, crash recovery).
# Then:
#   - all 20 end confirmed, none gets a cancel, cut-off confirms are re-sent
#     with the same Idempotency-Key
#   - the caller's gid, whose beginning transaction never committed, is
#     cancelled promptly after the start, both branches get their cancel and
#     no confirm is sent

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultlib import (Background, Caller, branches_with,  # noqa: E402
                      explain_gid, ops_seen, tries_seen, wait_all_final,
                      wait_cluster, wait_status)
from tcclib import (diag, done_testing, is_, ok, pg_ctl, q, q1,  # noqa: E402
                    tp_rule, wait_until)

N = 20
CONFIRM_DELAY_MS = 2000
TRY_DELAY_MS = 1500
EXIT_TIMEOUT = 30.0     # for the postmaster's children to exit
PROMPT = 10.0           # after the start, for the caller's gid to cancel
SETTLE = 60.0


def postmaster_pid():
    with open(os.path.join(os.environ["TCC_PGDATA"], "postmaster.pid")) as f:
        return int(f.readline())


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def start_cluster(timeout):
    """pg_ctl start, retried while the old children still hold shared
    memory; True once started."""
    def started():
        res = pg_ctl("start", "-w", "-t", "60", "-l",
                     os.environ["TCC_PGLOG"], check=False)
        if res.returncode != 0:
            diag("pg_ctl start: %s" % res.stdout.strip().splitlines()[-1:])
        return res.returncode == 0
    return wait_until(started, timeout, 0.5)


prefix = "/t235/%d" % int(time.time())
tp_rule(prefix + "/batch/confirm", delay_ms=CONFIRM_DELAY_MS)
tp_rule(prefix + "/slow/try", delay_ms=TRY_DELAY_MS)

batch = Caller()
try:
    gids = []
    for _ in range(N):
        gid = batch.begin("1 hour")
        batch.branch(gid, prefix + "/batch")
        batch.finish(gid, True)
        gids.append(gid)
    batch.commit()
finally:
    batch.close()
ok(wait_until(lambda: q1("SELECT count(*) FROM tp.requests"
                         " WHERE gid = ANY(%s::uuid[]) AND op = 'confirm'",
                         (gids,)) >= N, 30),
   "%d confirms in flight" % N)

caller = Caller()
slow = None
try:
    mine = caller.begin("1 hour")
    caller.branch(mine, prefix + "/fast")
    slow = Background(lambda: caller.branch(mine, prefix + "/slow"))
    ok(wait_until(lambda: any(r["branch"] == 2 for r in tries_seen(mine)),
                  10), "the caller's slow try reached the participant")

    children = [pid for (pid,) in q("SELECT pid FROM pg_stat_activity")]
    os.kill(postmaster_pid(), signal.SIGKILL)
    t0 = time.monotonic()
    gone = wait_until(lambda: not any(alive(p) for p in children),
                      EXIT_TIMEOUT, 0.1)
    ok(gone, "every server process exited after the postmaster died"
       " (%.1f s)" % (time.monotonic() - t0))
    if not gone:
        diag("still alive: %r" % [p for p in children if alive(p)])
    slow.result(TRY_DELAY_MS / 1000.0 + 10)
finally:
    caller.close()

ok(start_cluster(60), "the cluster starts again")
started = time.monotonic()
ok(wait_cluster() is not None, "with a coordinator worker")

reached = wait_status(mine, ("cancelled", "confirmed", "failed"), PROMPT)
good = is_(reached, "cancelled",
           "the caller's gid is cancelled within %.0f s of the start"
           " (took %.1f s)" % (PROMPT, time.monotonic() - started))
good &= ok("confirm" not in ops_seen(mine), "no confirm sent for it")
good &= is_(branches_with(mine, "cancel"), [1, 2],
            "both of its branches got their cancel")
if not good:
    explain_gid(mine)

left = wait_all_final(gids, SETTLE)
is_(left, [], "all %d decided transactions final" % N)
is_(q1("SELECT count(*) FROM tcc.transactions"
       " WHERE gid = ANY(%s::uuid[]) AND status = 'confirmed'", (gids,)),
    N, "all %d confirmed" % N)
counts = q("SELECT count(*) FILTER (WHERE op = 'cancel'),"
           "       count(*) FILTER (WHERE op = 'confirm'),"
           "       count(*) FILTER (WHERE op IN ('confirm', 'cancel')"
           "                          AND idem <> gid || '.' || branch"
           "                                      || '.' || op)"
           "  FROM tp.requests WHERE gid = ANY(%s::uuid[])", (gids,))[0]
is_(counts[0], 0, "no cancel sent to any of them")
ok(counts[1] > N, "cut-off confirms were sent again (%d extra)"
   % (counts[1] - N))
is_(counts[2], 0, "every call carried <gid>.<branch>.<op>")
for gid in left[:3]:
    explain_gid(gid)

done_testing()
