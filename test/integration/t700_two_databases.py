#!/usr/bin/python3
# Several coordinator databases in one cluster (docs/settings.md#tccdatabase
# (1.1): tcc.database may name several databases, each gets its own worker and
# its transactions are independent of the others'; docs/worker.md: each worker
# shows in pg_stat_activity as "tcc coordinator", DROP DATABASE never hangs on
# a worker; README.md#installation: a database not listed gets 55000;
# docs/settings.md: tcc.database is a postmaster setting, checked before it is
# used).
#
# test/run.sh sets tcc.database = 'tcc_test,tcc_test2'.  Order: both
# workers; a transaction settling in each, and a deadline passing in one;
# tcc_test2's participant hanging with every call slot of its worker taken,
# while tcc_test's confirms go out at once; tcc_test2's worker killed while
# tcc_test works on; DROP DATABASE tcc_test2 with a call in flight, then
# created again; last, values of tcc.database that are refused, by ALTER
# SYSTEM and at server start (a throwaway data directory, single-user mode).

import os
import re
import subprocess
import sys
import time

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import system_settings  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (connect, crashes, diag, done_testing, is_,  # noqa: E402
                    like, log_size, ok, q, q1, timed, tp_requests, tp_rule,
                    tp_url, wait_until, wait_worker, worker_pid)

DB1, DB2 = "tcc_test", "tcc_test2"
HANG_MS = 60000                  # a participant that does not answer


def run_gtx(db, tag, timeout="1 hour", finish=True):
    """Begin, one branch (tried), and confirm unless finish is false, in
    database db; returns the gid."""
    gid = q1("SELECT tcc_begin(%s::interval)", (timeout,), dbname=db)
    q("SELECT tcc_branch(%s, %s, %s, %s)",
      (gid, tp_url("/t700/%s/try" % tag), tp_url("/t700/%s/confirm" % tag),
       tp_url("/t700/%s/cancel" % tag)), dbname=db)
    if finish:
        q("SELECT tcc_finish(%s)", (gid,), dbname=db)
    return gid


def wait_final(db, gid, timeout):
    """tcc_wait in database db: the status once final, else at timeout."""
    return q1("SELECT tcc_wait(%s, %s * interval '1 s')",
              (gid, float(timeout)), dbname=db)


def confirm_secs(db, tag, timeout=20.0):
    """Runs a transaction in db; (its status, seconds from tcc_finish's
    commit until it was confirmed)."""
    gid = run_gtx(db, tag, finish=False)
    t0 = time.monotonic()
    q("SELECT tcc_finish(%s)", (gid,), dbname=db)
    st = wait_final(db, gid, timeout)
    return st, time.monotonic() - t0


def confirms(gid):
    """How many confirm calls of gid the participant received."""
    return len([r for r in tp_requests(gid) if r["op"] == "confirm"])


def workers():
    """(datname, pid) of every coordinator worker, by database."""
    return q("SELECT datname, pid FROM pg_stat_activity"
             " WHERE backend_type = 'tcc coordinator' ORDER BY datname, pid")


# ------------------------------------------------------------ two workers
p1 = wait_worker(dbname=DB1)
p2 = wait_worker(dbname=DB2)
ok(p1 is not None and p2 is not None,
   "a coordinator worker runs in each database of tcc.database")
is_([r[0] for r in workers()], [DB1, DB2],
    "pg_stat_activity shows two 'tcc coordinator' backends, one per"
    " database, each with its datname")
is_(q1("SELECT pid FROM tcc.worker", dbname=DB1), p1,
    "tcc.worker in tcc_test shows tcc_test's worker")
is_(q1("SELECT pid FROM tcc.worker", dbname=DB2), p2,
    "tcc.worker in tcc_test2 shows tcc_test2's worker")

# ------------------------------------------------ each settles on its own
g1 = run_gtx(DB1, "a")
g2 = run_gtx(DB2, "b")
is_(wait_final(DB1, g1, 15), "confirmed", "a transaction confirms in tcc_test")
is_(wait_final(DB2, g2, 15), "confirmed",
    "a transaction confirms in tcc_test2")
ok(confirms(g1) == 1 and confirms(g2) == 1,
   "the participant received each one's confirm once")
is_(q1("SELECT count(*) FROM tcc.transactions WHERE gid = %s", (g2,),
       dbname=DB1), 0, "tcc_test does not see tcc_test2's transaction")
try:
    q1("SELECT tcc_wait(%s, '1 s')", (g1,), dbname=DB2)
    ok(False, "tcc_wait in tcc_test2 on a gid of tcc_test raises TC004")
except psycopg2.Error as e:
    is_(e.pgcode, "TC004",
        "tcc_wait in tcc_test2 on a gid of tcc_test raises TC004")

# a deadline is kept by the worker of the transaction's own database
gd = run_gtx(DB2, "deadline", timeout="1 s", finish=False)
is_(wait_final(DB2, gd, 20), "cancelled",
    "an undecided transaction of tcc_test2 is cancelled at its deadline")

# a database tcc.database does not list still gets 55000 (in a transaction
# rolled back, so tcc_other keeps whatever extensions it had)
conn = connect(autocommit=False, dbname="tcc_other")
try:
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS tcc")
        cur.execute("SELECT tcc_begin()")
    ok(False, "tcc_begin in tcc_other raises 55000")
except psycopg2.Error as e:
    is_(e.pgcode, "55000", "tcc_begin in tcc_other raises 55000")
    like(e.diag.message_hint, r"tcc\.database",
         "its hint names tcc.database")
finally:
    conn.rollback()
    conn.close()

# ------------------------------- tcc_test2's participant hangs: tcc_test
# goes on.  Each worker has two call slots; tcc_test2's are both taken by
# calls that wait a minute for an answer.
# (tcc.destination_share = 100: the hanging participant is one destination
# and may take both.)
with system_settings(max_concurrency=2, request_timeout="1min",
                     destination_share=100):
    tp_rule("/t700/hang/confirm", delay_ms=HANG_MS)
    hung = [run_gtx(DB2, "hang") for _ in range(4)]
    ok(wait_until(lambda: sum(confirms(g) for g in hung) == 2, 15),
       "tcc_test2: two confirms sent to the hanging participant")
    ok(wait_until(lambda: q1("SELECT sum(in_flight) FROM tcc.worker",
                             dbname=DB2) == 2, 10),
       "tcc_test2's worker has both its call slots in flight")
    is_(q1("SELECT sum(in_flight) FROM tcc.worker", dbname=DB1), 0,
        "tcc_test's worker counts none of them")

    for i in range(3):
        st, secs = confirm_secs(DB1, "fast")
        ok(st == "confirmed" and secs < 10,
           "tcc_test confirms while tcc_test2's participant hangs (%d: %s"
           " in %.2f s)" % (i + 1, st, secs))
    is_(q1("SELECT count(*) FROM tcc.transactions"
           " WHERE gid = ANY(%s::uuid[]) AND status = 'confirming'",
           (hung,), dbname=DB2), 4,
        "meanwhile tcc_test2's transactions are still confirming")

    # ---------------------------------------- tcc_test2's worker killed
    p1 = worker_pid(DB1)
    p2 = worker_pid(DB2)
    tp_rule("/t700/hang/confirm", delay_ms=0)    # answers the new worker
    offset = log_size()
    is_(q1("SELECT pg_terminate_backend(%s)", (p2,)), True,
        "pg_terminate_backend on tcc_test2's worker")
    st, secs = confirm_secs(DB1, "during_kill")
    ok(st == "confirmed" and secs < 10,
       "tcc_test confirms while tcc_test2's worker restarts (%s in %.2f s)"
       % (st, secs))
    new2 = wait_worker(30, other_than=p2, dbname=DB2)
    ok(new2 is not None, "tcc_test2 gets a new worker")
    is_(worker_pid(DB1), p1, "tcc_test's worker kept running, same pid")
    ok(all(wait_final(DB2, g, 30) == "confirmed" for g in hung),
       "tcc_test2's new worker confirms the transactions the old one left")
    is_(crashes(offset), [], "no server process crashed")

# ---------------------------------- DROP DATABASE of one coordinator db
tp_rule("/t700/hang2/confirm", delay_ms=HANG_MS)
tp_rule("/t700/slow1/confirm", delay_ms=3000)
offset = log_size()
try:
    gdrop = run_gtx(DB2, "hang2")
    ok(wait_until(lambda: confirms(gdrop) == 1, 10),
       "tcc_test2 has a confirm in flight")
    p1 = worker_pid(DB1)
    gslow = run_gtx(DB1, "slow1")
    ok(wait_until(lambda: confirms(gslow) == 1, 10),
       "tcc_test has a confirm in flight")
    secs, res = timed(q, "DROP DATABASE %s" % DB2)
    ok(not isinstance(res, Exception) and secs < 5,
       "DROP DATABASE tcc_test2 does not hang on its worker (%.2f s%s)"
       % (secs, ", %s" % res if isinstance(res, Exception) else ""))
    is_(q1("SELECT count(*) FROM pg_database WHERE datname = %s", (DB2,)), 0,
        "tcc_test2 is gone")
    is_(wait_final(DB1, gslow, 20), "confirmed",
        "tcc_test's call in flight during the drop completes")
    st, secs = confirm_secs(DB1, "after_drop")
    ok(st == "confirmed" and secs < 10,
       "tcc_test confirms after the drop (%s in %.2f s)" % (st, secs))
    is_(worker_pid(DB1), p1, "tcc_test's worker kept running, same pid")
    is_([r[0] for r in workers()], [DB1], "only tcc_test's worker is left")
finally:
    tp_rule("/t700/hang2/confirm", delay_ms=0)
    tp_rule("/t700/slow1/confirm", delay_ms=0)
    if not q1("SELECT count(*) FROM pg_database WHERE datname = %s", (DB2,)):
        q("CREATE DATABASE %s" % DB2)
        q("CREATE EXTENSION tcc", dbname=DB2)

ok(wait_worker(60, dbname=DB2) is not None,
   "created again, tcc_test2 gets its worker back by itself")
is_(wait_final(DB2, run_gtx(DB2, "recreated"), 20), "confirmed",
    "and a transaction confirms there")
is_(crashes(offset), [], "no server process crashed")

# ---------------------------------------------- values that are refused
BAD = (
    ("tcc_test,,tcc_test2", r"Entry 2 of the list is empty"),
    ("tcc_test,", r"Entry 2 of the list is empty"),
    (" ", r"Entry 1 of the list is empty"),
    ("tcc_test, tcc_test", r'Database "tcc_test" is listed twice'),
    ("x" * 64, r"is longer than 63 bytes"),
    (",".join("d%d" % i for i in range(17)), r"At most 16 databases"),
)
for value, detail in BAD:
    try:
        q("ALTER SYSTEM SET tcc.database = %s", (value,))
        ok(False, "ALTER SYSTEM refuses tcc.database = '%s'" % value[:40])
    except psycopg2.Error as e:
        ok(e.pgcode == "22023" and
           e.diag.message_detail is not None and
           re.search(detail, e.diag.message_detail),
           "ALTER SYSTEM refuses tcc.database = '%s' (%s: %s)"
           % (value[:40], e.pgcode, e.diag.message_detail))
is_(q1("SELECT count(*) FROM pg_file_settings WHERE name = 'tcc.database'"
       " AND sourcefile LIKE '%%postgresql.auto.conf'"), 0,
    "none of them reached postgresql.auto.conf")

# At server start the same values stop the server, saying why.  Checked in
# single-user mode on a data directory of this test: it loads
# shared_preload_libraries as the postmaster does.
bindir = os.environ["TCC_PGBIN"]
scratch = os.path.join(os.environ["TCC_TEST_DIR"], "t700")
datadir = os.path.join(scratch, "data")


def as_postgres(cmd, stdin=None):
    """Runs cmd as the postgres OS user; (exit code, its output)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    res = subprocess.run(cmd, cwd=scratch, input=stdin,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, timeout=120)
    return res.returncode, res.stdout


os.makedirs(scratch, exist_ok=True)
if os.geteuid() == 0:
    subprocess.run(["chown", "postgres:postgres", scratch], check=True)
rc, out = as_postgres([os.path.join(bindir, "initdb"), "-D", datadir,
                       "--auth=trust", "--username=postgres", "--no-sync",
                       "--locale=C", "--encoding=UTF8"])
if not is_(rc, 0, "a throwaway data directory"):
    diag(out)


def single_user(value, *extra):
    """Starts the throwaway server in single-user mode with tcc preloaded
    and tcc.database = value; (exit code, output)."""
    cmd = [os.path.join(bindir, "postgres"), "--single", "-D", datadir,
           "-c", "shared_preload_libraries=tcc",
           "-c", "tcc.database=%s" % value]
    for setting in extra:
        cmd += ["-c", setting]
    return as_postgres(cmd + ["postgres"], stdin="SELECT 1\n")


for value, detail in BAD[:4]:
    rc, out = single_user(value)
    ok(rc != 0 and 'FATAL:  invalid value for parameter "tcc.database"'
       in out and re.search(detail, out),
       "the server refuses to start with tcc.database = '%s'" % value)
    if rc == 0:
        diag(out)
rc, out = single_user(",".join("postgres" + "x" * i for i in range(9)),
                      "max_worker_processes=8")
ok(rc != 0 and "more than max_worker_processes (8)" in out,
   "and with more databases than max_worker_processes")
rc, out = single_user("postgres, template1", "max_worker_processes=8",
                      "tcc.workers=5")
ok(rc != 0 and "10 workers, more than max_worker_processes (8)" in out,
   "and with more databases times tcc.workers than max_worker_processes")
rc, out = single_user("postgres, template1")
ok(rc == 0 and "FATAL" not in out,
   "a valid list, spaces after the commas, starts")
if rc != 0:
    diag(out)

done_testing()
