#!/usr/bin/python3
# The coordinator background worker (docs/worker.md: one worker for
# tcc.database, restarted by the postmaster if it dies, backend_type "tcc
# coordinator"; docs/settings.md: sighup settings are reloaded, not a restart;
# R3 of docs/guarantees.md: the worker dying does not stop coordination).
# With tcc.workers > 1 (test/run.sh's suite "workers") the database has that
# many, and one of them that dies is restarted alone.

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (diag, done_testing, is_, isnt, kill_backend,  # noqa: E402
                    ok, q, q1, wait_until, wait_worker, worker_pid,
                    worker_pids, workers)

# Worker restarts are bounded by the worker's bgw_restart_time.
RESTART_TIMEOUT = 15.0


def stays(pids, seconds):
    """True if the workers keep their pids for the whole window."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker_pids() != pids:
            return False
        time.sleep(0.05)
    return True


N = workers()


# Running, one of it for this database of tcc.database (t700_two_databases.py
# covers the second database's worker).
pid = wait_worker(RESTART_TIMEOUT)
ok(pid is not None, "the coordinator worker is running")
is_(q1("SELECT count(*) FROM pg_stat_activity"
       " WHERE backend_type = 'tcc coordinator'"
       " AND datname = current_database()"), N,
    "exactly %d coordinator worker(s) for tcc_test (tcc.workers)" % N)
is_(q1("SELECT datname FROM pg_stat_activity WHERE pid = %s", (pid,)),
    "tcc_test", "connected to its database of tcc.database")
pids = worker_pids()

# SIGHUP: a changed sighup setting is reloaded by the same process.
old = q1("SHOW tcc.max_attempts")
q("ALTER SYSTEM SET tcc.max_attempts = 7")
q("SELECT pg_reload_conf()")
ok(wait_until(lambda: q1("SHOW tcc.max_attempts") == "7", 10),
   "reloaded setting visible to new sessions")
ok(stays(pids, 1.0), "worker keeps its pid across pg_reload_conf()")
q("ALTER SYSTEM RESET tcc.max_attempts")
q("SELECT pg_reload_conf()")
wait_until(lambda: q1("SHOW tcc.max_attempts") == old, 10)

# pg_terminate_backend: the postmaster starts a new worker (with several,
# for the one terminated only).
pids = worker_pids()
pid = pids[0]
is_(q1("SELECT pg_terminate_backend(%s)", (pid,)), True,
    "pg_terminate_backend on the worker")
new = wait_worker(RESTART_TIMEOUT, other_than=pid)
ok(new is not None, "a new worker appears after pg_terminate_backend")
isnt(new, pid, "with a different pid")
is_(sorted(set(worker_pids()) - {new}), pids[1:],
    "the other %d worker(s) kept their pids" % (N - 1))

# SIGKILL: the postmaster resets the cluster, which comes back with a worker.
pid = worker_pid()
if pid is not None:
    kill_backend(pid, signal.SIGKILL)
ok(wait_until(lambda: q1("SELECT 1") == 1, 30),
   "the cluster accepts connections again after SIGKILL of the worker")
new = wait_worker(RESTART_TIMEOUT, other_than=pid)
ok(new is not None, "a worker is back after SIGKILL")
if new is None:
    diag("backends: %r" % (q("SELECT pid, backend_type, datname"
                              " FROM pg_stat_activity"),))
is_(q1("SELECT count(*) FROM pg_stat_activity"
       " WHERE backend_type = 'tcc coordinator'"
       " AND datname = current_database()"), N,
    "still exactly %d coordinator worker(s) for tcc_test" % N)

done_testing()
