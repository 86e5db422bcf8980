#!/usr/bin/python3
# Lifecycle (docs/worker.md: DROP DATABASE, DROP EXTENSION and a fast shutdown
# never hang on the worker; R5 of docs/guarantees.md: pending confirm calls
# survive a restart).
#
# Order: DROP EXTENSION in tcc.database; fast shutdown with calls in
# flight; last, DROP DATABASE of the coordinator database.  For that last
# part the cluster is restarted with tcc.database = 'tcc_t420', a database
# of this test, so tcc_test (where the participant keeps its tables) is
# never dropped; tcc.database is reset and the cluster restarted at the end.

import os
import sys
import time

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (connect, crashes, diag, done_testing, is_,  # noqa: E402
                    isnt, log_size, ok, pg_ctl, q, q1, timed, tp_requests,
                    tp_rule, tp_url, wait_until, wait_worker, worker_pid)

OTHER_DB = "tcc_t420"


def run_gtx(tag, dbname=None, parallel=False, branches=1):
    """Begin, branch (tried) and confirm; returns the gid."""
    gid = q1("SELECT tcc_begin('1 hour', parallel => %s)", (parallel,),
             dbname=dbname)
    for _ in range(branches):
        q("SELECT tcc_branch(%s, %s, %s, %s)",
          (gid, tp_url("/t420/%s/try" % tag), tp_url("/t420/%s/confirm" % tag),
           tp_url("/t420/%s/cancel" % tag)), dbname=dbname)
    q("SELECT tcc_finish(%s)", (gid,), dbname=dbname)
    return gid


def wait_confirmed(gid, dbname=None, timeout=30):
    """tcc_wait until confirmed, retrying while the server comes back."""
    def done():
        return q1("SELECT tcc_wait(%s, '1 s')", (gid,),
                  dbname=dbname) == "confirmed"
    return bool(wait_until(done, timeout, 0.2))


def cluster_up():
    """Wait until the cluster accepts connections."""
    return wait_until(lambda: q1("SELECT 1") == 1, 60, 0.2)


def worker_dbs():
    """The databases coordinator workers are connected to."""
    return [r[0] for r in q("SELECT datname FROM pg_stat_activity"
                            " WHERE backend_type = 'tcc coordinator'")]


log_start = log_size()

# ------------------------------------------------------------ DROP EXTENSION
pid = wait_worker()
ok(pid is not None, "the worker is running")
keeper = connect()               # a session that used tcc before the drop
with keeper.cursor() as cur:
    cur.execute("SELECT tcc_begin()")
    warm = cur.fetchone()[0]
    cur.execute("SELECT tcc_finish(%s, false)", (warm,))

tp_rule("/t420/drop/confirm", delay_ms=2000)
inflight = run_gtx("drop")
ok(wait_until(lambda: len(tp_requests(inflight)) == 2, 10),
   "a confirm is in flight to a slow participant")
secs, res = timed(q, "DROP EXTENSION tcc")
ok(not isinstance(res, Exception) and secs < 5,
   "DROP EXTENSION tcc with the worker running and a call in flight"
   " completes in < 5 s (%.2f s%s)"
   % (secs, ", %s" % res if isinstance(res, Exception) else ""))
is_(q1("SELECT count(*) FROM pg_extension WHERE extname = 'tcc'"), 0,
    "the extension is gone")
time.sleep(2.5)                  # the call in flight ends meanwhile
ok(cluster_up(), "the cluster still accepts connections")

secs, res = timed(q, "CREATE EXTENSION tcc")
ok(not isinstance(res, Exception) and secs < 5,
   "CREATE EXTENSION tcc again (%.2f s%s)"
   % (secs, ", %s" % res if isinstance(res, Exception) else ""))
ok(wait_worker() is not None, "a worker is running")
gid = run_gtx("after_drop")
ok(wait_confirmed(gid), "the worker resumes: a new transaction confirms")
with keeper.cursor() as cur:
    try:
        cur.execute("SELECT tcc_begin()")
        g2 = cur.fetchone()[0]
        cur.execute("SELECT tcc_finish(%s, false)", (g2,))
        cur.execute("SELECT tcc_wait(%s, '10 s')", (g2,))
        is_(cur.fetchone()[0], "cancelled",
            "a session that used tcc before the drop works after CREATE")
    except psycopg2.Error as e:
        ok(False, "a session that used tcc before the drop works after"
           " CREATE (%s: %s)" % (e.pgcode, str(e).strip()))
keeper.close()
is_(crashes(log_start), [], "no server process crashed")

# -------------------------------------------------- fast shutdown in flight
N = 4
tp_rule("/t420/slow/confirm", delay_ms=60000)
slow = run_gtx("slow", parallel=True, branches=N)
ok(wait_until(lambda: len([r for r in tp_requests(slow)
                           if r["op"] == "confirm"]) == N, 10),
   "%d confirms in flight to a participant that answers in 60 s" % N)
ok(wait_until(lambda: q1("SELECT sum(in_flight) FROM tcc.worker") == N, 5),
   "tcc.worker shows them in flight")
tp_rule("/t420/slow/confirm", delay_ms=0)   # for the calls after restart
old_pid = worker_pid()
offset = log_size()
secs, res = timed(pg_ctl, "stop", "-m", "fast", "-w", "-t", "60")
ok(not isinstance(res, Exception) and secs < 10,
   "fast shutdown with calls in flight completes in < 10 s (%.2f s)" % secs)
if isinstance(res, Exception):
    diag(str(res))
pg_ctl("start", "-w", "-t", "60", "-l", os.environ["TCC_PGLOG"])
ok(cluster_up(), "the cluster is back")
isnt(wait_worker(30), None, "with a worker")
ok(wait_confirmed(slow, timeout=30),
   "after the restart the pending confirms complete (R5)")
calls = [r["branch"] for r in tp_requests(slow) if r["op"] == "confirm"]
ok(all(calls.count(b) >= 2 for b in range(1, N + 1)),
   "each branch's confirm was sent again after the restart (%s)"
   % sorted(calls))
is_(crashes(offset), [], "no server process crashed in the shutdown")

# ----------------------------------------------- DROP DATABASE (coordinator)
q("DROP DATABASE IF EXISTS %s" % OTHER_DB)
q("CREATE DATABASE %s" % OTHER_DB)
q("CREATE EXTENSION tcc", dbname=OTHER_DB)
q("ALTER SYSTEM SET tcc.database = %s", (OTHER_DB,))
try:
    pg_ctl("restart", "-w", "-t", "60", "-m", "fast",
           "-l", os.environ["TCC_PGLOG"])
    cluster_up()
    ok(wait_until(lambda: OTHER_DB in worker_dbs(), 30),
       "the worker runs in %s after the restart" % OTHER_DB)
    g = run_gtx("otherdb", dbname=OTHER_DB)
    ok(wait_confirmed(g, dbname=OTHER_DB), "a transaction confirms there")

    offset = log_size()
    for force in (False, True):
        how = "DROP DATABASE" + (" WITH (FORCE)" if force else "")
        # a call in flight while the database goes
        tp_rule("/t420/dropdb/confirm", delay_ms=3000)
        g = run_gtx("dropdb", dbname=OTHER_DB)
        ok(wait_until(lambda: len(tp_requests(g)) == 2, 10),
           "%s: a confirm is in flight" % how)
        ok(wait_until(lambda: OTHER_DB in worker_dbs(), 30),
           "%s: the worker is connected to %s" % (how, OTHER_DB))
        secs, res = timed(q, "DROP DATABASE %s%s"
                          % (OTHER_DB, " WITH (FORCE)" if force else ""))
        ok(not isinstance(res, Exception) and secs < 5,
           "%s of the coordinator database does not hang on the worker and"
           " succeeds (%.2f s%s)"
           % (how, secs, ", %s" % res if isinstance(res, Exception) else ""))
        is_(q1("SELECT count(*) FROM pg_database WHERE datname = %s",
               (OTHER_DB,)), 0, "%s: the database is gone" % how)
        ok(cluster_up(), "%s: the cluster still accepts connections" % how)
        tp_rule("/t420/dropdb/confirm", delay_ms=0)
        # create it again: the worker comes back to it by itself
        q("CREATE DATABASE %s" % OTHER_DB)
        q("CREATE EXTENSION tcc", dbname=OTHER_DB)
        ok(wait_until(lambda: OTHER_DB in worker_dbs(), 45, 0.2),
           "%s: the worker reconnects once the database exists again" % how)
        g = run_gtx("recreated", dbname=OTHER_DB)
        ok(wait_confirmed(g, dbname=OTHER_DB),
           "%s: a new transaction confirms in the new database" % how)
    is_(crashes(offset), [], "no server process crashed")
finally:
    q("ALTER SYSTEM RESET tcc.database")
    pg_ctl("restart", "-w", "-t", "60", "-m", "fast",
           "-l", os.environ["TCC_PGLOG"])
    cluster_up()
    wait_until(lambda: "tcc_test" in worker_dbs(), 30)
    try:
        q("DROP DATABASE IF EXISTS %s WITH (FORCE)" % OTHER_DB)
    except psycopg2.Error as e:
        diag("could not drop %s: %s" % (OTHER_DB, e))

ok("tcc_test" in worker_dbs(), "back in tcc_test at the end")
g = run_gtx("end")
ok(wait_confirmed(g), "and a transaction confirms there")
is_(crashes(log_start), [], "no server process crashed during the test")

done_testing()
