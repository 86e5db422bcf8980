#!/usr/bin/python3
# A hostile co-tenant and a careless database owner cannot hold up the
# coordinator for everybody else.
#
# docs/api.md (another role's gid raises 42501; and (1.1, issue 13) a
# role that is refused never takes the gid's lock, so it cannot make the
# owner's tcc_branch fail), docs/worker.md (the worker's session is immune to
# database- and role-level settings: it pins what it depends on; NOTIFY
# tcc_alert carries {"gid", "status", "branch"} only, no error text, URL or
# host, since any role may LISTEN; no participant, transaction or role can
# hold the worker up: an open transaction holding a gid past its deadline
# does not make it spin) and R3 (an undecided transaction whose beginning
# transaction aborted is cancelled promptly; one begun by a transaction the
# commit log no longer knows counts as committed).
#
# The database owner is a role that is not superuser: what it does to its
# database (ALTER DATABASE ... SET) must not reach the worker.
#
# With tcc.workers > 1 (test/run.sh's suite "workers") each check holds for
# every worker: none spins, none restarts on the way, and every one is
# restarted to start under the owner's settings.

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_urls, connect,  # noqa: E402
                      drop_roles, error_of, login_roles, notifications,
                      pgcode, q, q1, run, run1, status, system_settings,
                      tp_rule, transaction, wait_final, wait_status,
                      wait_until)
from tcclib import (diag, done_testing, is_, note, ok, tp_url,  # noqa: E402
                    worker_pids, workers)

DB = os.environ["PGDATABASE"]
APP1 = "tcc_t440_app1"
APP2 = "tcc_t440_app2"
OWNER = "tcc_t440_dbowner"
EAVESDROPPER = "tcc_t440_listener"
ROLES = (APP1, APP2, OWNER, EAVESDROPPER)

GRANTS = """
GRANT USAGE ON SCHEMA tcc TO {r};
GRANT EXECUTE ON FUNCTION
    tcc_begin(interval, text, text, boolean, text, text),
    tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean),
    tcc_finish(uuid, boolean),
    tcc_wait(uuid, interval),
    tcc_resolve(uuid, text)
  TO {r};
GRANT SELECT ON tcc.transactions, tcc.branches TO {r};
"""

# sessions of this test opt out of what the database owner sets
READ_WRITE = "-c default_transaction_read_only=off -c tcc.request_timeout=10s"


def connect_as(role=None, autocommit=True):
    """A connection as role (None: the harness's superuser) that opts out
    of what the database owner sets."""
    return connect(autocommit, user=role, options=READ_WRITE)


def restart_worker():
    """Stop the workers (every one of them); wait for the postmaster to
    start new ones."""
    old = worker_pids()
    for p in old:
        q1("SELECT pg_terminate_backend(%s, 10000)", (p,))

    def restarted():
        pids = worker_pids()
        return len(pids) == workers() and not set(pids) & set(old)
    if not wait_until(restarted, 30):
        raise RuntimeError("the coordinator workers did not come back")


def cpu_seconds(pid):
    """User plus system CPU time of a process, in seconds (/proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


login_roles(ROLES, GRANTS, (APP1, APP2))
app1 = connect_as(APP1)

# ---------------------------------------------------------------- 42501 first
# app2 calls tcc_finish on app1's gid in a loop (42501 each time) while app1
# registers branches: app2 must never hold the gid's lock.
g = run1(app1, "SELECT tcc_begin('5 min')")
stop = threading.Event()
codes = []


def hammer():
    """tcc_finish on another role's gid, as fast as it goes."""
    conn = connect_as(APP2)
    try:
        while not stop.is_set():
            codes.append(pgcode(error_of(conn, "SELECT tcc_finish(%s)", (g,))))
    finally:
        conn.close()


thread = threading.Thread(target=hammer, daemon=True)
thread.start()
wait_until(lambda: len(codes) >= 20, 10)
failed = []
for i in range(40):
    err = error_of(app1, "SELECT tcc_branch(%s, %s, NULL, NULL)",
                   (g, tp_url("/t440/owner/%d/try" % i)))
    if err is not None:
        failed.append(pgcode(err))
stop.set()
thread.join(10)
note("the other role called tcc_finish %d times meanwhile" % len(codes))
ok(len(codes) >= 20, "the other role kept calling tcc_finish meanwhile")
is_(sorted(set(codes)), ["42501"], "the other role got 42501 each time")
is_(failed, [], "all 40 of the owner's tcc_branch calls succeeded")
run1(app1, "SELECT tcc_finish(%s, false)", (g,))
is_(wait_final(g, 20), "cancelled", "the owner could still decide")

# ---------------------------------------------------------------- no spin
# A transaction holds a gid's lock (tcc_finish) past the gid's deadline and
# stays open: the worker must wait for it without busy-looping.
holder = connect_as(APP1, autocommit=False)
g = run1(holder, "SELECT tcc_begin('1 s')")
run1(holder, "SELECT tcc_finish(%s, false)", (g,))
ok(wait_until(lambda: q1("SELECT clock_timestamp() > deadline + interval '1 s'"
                         " FROM tcc._gtx WHERE gid = %s", (g,)), 10),
   "the open transaction holds the gid past its deadline")
pids = worker_pids()
cpu0, t0 = [cpu_seconds(p) for p in pids], time.monotonic()
time.sleep(3)   # a window to measure in, not a proof of anything by itself
cpu1, t1 = [cpu_seconds(p) for p in pids], time.monotonic()
used = max(b - a for a, b in zip(cpu0, cpu1)) if pids else None
note("worker CPU while the lock is held: %s s in %.1f s (the busiest of %d)"
     % (used, t1 - t0, len(pids)))
share = used / (t1 - t0) if used is not None else 1.0
ok(share < 0.10, "the worker does not spin on the held lock (%.0f %% CPU)"
   % (share * 100))
is_(status(g), "trying", "the gid is left alone while its lock is held")
app2 = connect_as(APP2)
is_(pgcode(error_of(app2, "SELECT tcc_branch(%s, NULL, %s, NULL)",
                    (g, tp_url("/t440/other/confirm")))), "42501",
    "another role's tcc_branch on the held gid: 42501, not TC003")
app2.close()
holder.rollback()
holder.close()
is_(wait_status(g, "cancelled", 10), "cancelled",
    "once the holder rolls back, the deadline cancels the gid")
is_((transaction(g) or {}).get("decided_by"), "deadline",
    "decided by the deadline")

# ---------------------------------------------------------------- tcc_alert
# Any role may LISTEN: the alert names the gid, status and branch only.
eavesdropper = connect_as(EAVESDROPPER)
run(eavesdropper, "LISTEN tcc_alert")
with system_settings(max_attempts=2):
    g = run1(app1, "SELECT tcc_begin('1 min')")
    run1(app1, "SELECT tcc_branch(%s, NULL, 'http://127.0.0.1:1/t440/secret',"
        " NULL)", (g,))
    run1(app1, "SELECT tcc_finish(%s)", (g,))
    is_(wait_final(g, 20), "failed", "the confirm fails for good")
    got = notifications(eavesdropper, lambda ps: any(str(g) in p for p in ps),
                        10)
    mine = [p for p in got if str(g) in p]
    if not is_(len(mine), 1, "another role received the alert"):
        diag("payloads: %r" % (got,))
    payload = mine[0] if mine else ""
    is_(payload, '{"gid" : "%s", "status" : "failed", "branch" : 1}' % g,
        "the payload holds gid, status and branch only")
    ok("127.0.0.1" not in payload and "t440" not in payload,
       "no host, port or URL in the payload")
    run1(app1, "SELECT tcc_resolve(%s, 'test')", (g,))
eavesdropper.close()

# ---------------------------------------------------------------- R3 xids
# The aborted-beginner check: a beginning transaction that aborted cancels
# the gid; one the commit log cannot tell about (frozen, or not yet
# assigned) counts as committed and leaves the gid to its deadline.
def begin_xid(gid):
    return q1("SELECT begin_xid::text FROM tcc._gtx WHERE gid = %s", (gid,))


pids = worker_pids()
g = q1("SELECT tcc_begin('1 hour')")
ok(wait_until(lambda: begin_xid(g) is None, 10),
   "a committed beginner is forgotten")
q("UPDATE tcc._gtx SET begin_xid = '2' WHERE gid = %s", (g,))
ok(wait_until(lambda: begin_xid(g) is None, 10),
   "a frozen beginner counts as committed")
q("UPDATE tcc._gtx SET begin_xid = (pg_current_xact_id()::text::bigint"
  " + 1000000)::text::xid8 WHERE gid = %s", (g,))
ok(wait_until(lambda: begin_xid(g) is None, 10),
   "a beginner not yet assigned counts as committed")
is_(status(g), "trying", "neither cancels the gid")
conn = connect_as(autocommit=False)
aborted = run1(conn, "SELECT pg_current_xact_id()::text")
conn.rollback()
conn.close()
q("UPDATE tcc._gtx SET begin_xid = %s::xid8 WHERE gid = %s", (aborted, g))
is_(wait_status(g, "cancelled", 10), "cancelled",
    "an aborted beginner cancels the gid")
is_((transaction(g) or {}).get("decided_by"), "aborted", "decided: aborted")
is_(worker_pids(), pids, "the worker did not restart on the way")

# ---------------------------------------------------------------- settings
# The database's owner, not a superuser, sets what would stop the worker.
q('ALTER DATABASE "%s" OWNER TO %s' % (DB, OWNER))
owner = connect_as(OWNER)
try:
    run(owner, 'ALTER DATABASE "%s" SET default_transaction_read_only = on'
        % DB)
    restart_worker()
    rw = connect_as()
    err = error_of(rw, "SELECT tcc_begin('1 min')")
    is_(pgcode(err), None,
        "default_transaction_read_only = on for the database: tcc_begin works")
    if err is None:
        g = run1(rw, "SELECT gid FROM tcc._gtx ORDER BY created_at DESC"
                " LIMIT 1")
        run1(rw, "SELECT tcc_finish(%s, false)", (g,))
        is_(wait_final(g, 20), "cancelled", "and the worker settles it")
    else:
        diag("tcc_begin: %s" % str(err).strip())
    rw.close()
    run(owner, 'ALTER DATABASE "%s" RESET default_transaction_read_only' % DB)

    run(owner, "ALTER DATABASE \"%s\" SET tcc.request_timeout = '1ms'" % DB)
    restart_worker()
    urls = branch_urls("/t440/timeout")
    tp_rule("/t440/timeout/confirm", delay_ms=300)
    rw = connect_as()
    g = run1(rw, "SELECT tcc_begin('1 min')")
    run1(rw, "SELECT tcc_branch(%s, %s, %s, %s)", (g,) + urls)
    run1(rw, "SELECT tcc_finish(%s)", (g,))
    is_(wait_final(g, 20), "confirmed",
        "tcc.request_timeout = 1ms for the database: a confirm taking 300 ms"
        " succeeds")
    is_([a["http_status"] for a in attempts(g, "confirm")], [200],
        "at the first attempt")
    rw.close()
finally:
    rw = connect_as()
    run(rw, 'ALTER DATABASE "%s" RESET ALL' % DB)
    run(rw, 'ALTER DATABASE "%s" OWNER TO CURRENT_USER' % DB)
    rw.close()
    owner.close()
    restart_worker()

app1.close()
drop_roles(ROLES)
done_testing()
