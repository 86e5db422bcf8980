#!/usr/bin/python3
# Operator actions on a transaction that is already final are a no-op that
# says so, not an error: "SELECT tcc_retry(gid) FROM tcc.pending" must not
# fail as a whole when the worker settles one of the rows in between.
#
# docs/api.md (tcc_retry, tcc_resolve: recorded, visible in the views);
# docs/states.md (final states: confirmed, cancelled, resolved).  tcc_retry and
# tcc_resolve on a final transaction raise a NOTICE naming the status, record
# no action and change nothing; on an undecided one tcc_retry still raises
# TC003.

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, connect, error_of, pgcode, q1,  # noqa: E402
                      run, run1, status, system_settings, tp_rule,
                      wait_final, wait_status)
from tcclib import done_testing, is_, like, ok  # noqa: E402


def begin_branch(conn, prefix, decide=None):
    """A transaction with one branch under prefix, decided if asked."""
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    run(conn, "SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + branch_urls(prefix))
    if decide is not None:
        run(conn, "SELECT tcc_finish(%s, %s)", (gid, decide))
    return gid


def actions(gid):
    return q1("SELECT count(*) FROM tcc.actions WHERE gid = %s", (gid,))


conn = connect()
confirmed = begin_branch(conn, "/t470/ok/1", True)
cancelled = begin_branch(conn, "/t470/no/1", False)
is_(wait_final(confirmed, 10), "confirmed", "a transaction is confirmed")
is_(wait_final(cancelled, 10), "cancelled", "another is cancelled")

# ---- one call at a time: NOTICE, nothing recorded, nothing changed
del conn.notices[:]
err = error_of(conn, "SELECT tcc_retry(%s)", (confirmed,))
is_(err, None, "tcc_retry on a confirmed transaction raises no error")
like(" ".join(conn.notices),
     r"NOTICE:  global transaction %s is already confirmed, nothing to retry"
     % confirmed, "a NOTICE says it is already confirmed")
del conn.notices[:]
err = error_of(conn, "SELECT tcc_resolve(%s, 'too late')", (cancelled,))
is_(err, None, "tcc_resolve on a cancelled transaction raises no error")
like(" ".join(conn.notices),
     r"already cancelled, nothing to resolve",
     "a NOTICE says it is already cancelled")
is_(actions(confirmed), 0, "no action is recorded for the confirmed one")
is_(actions(cancelled), 0, "no action is recorded for the cancelled one")
is_(status(cancelled), "cancelled", "the cancelled one stays cancelled")

# ---- a set of gids, one of them settled: the others are still acted on
tp_rule("/t470/stuck/1/confirm", status=500, body="down")
with system_settings(max_attempts=2):
    stuck = begin_branch(conn, "/t470/stuck/1", True)
    is_(wait_final(stuck, 10), "failed", "a third transaction fails")
    del conn.notices[:]
    err = error_of(conn, "SELECT tcc_retry(gid) FROM tcc.transactions"
                   " WHERE gid IN (%s, %s, %s)", (confirmed, stuck, cancelled))
    is_(err, None, "tcc_retry over a set with settled rows succeeds as a whole")
    is_(len(conn.notices), 2, "one NOTICE for each settled row")
    is_(actions(stuck), 1, "the failed one got its retry recorded")
    tp_rule("/t470/stuck/1/confirm", status=200)
    is_(wait_status(stuck, "confirmed", 15), "confirmed",
        "and it is confirmed once the participant answers")

# ---- resolve after the worker confirmed it: no-op, stays confirmed
del conn.notices[:]
err = error_of(conn, "SELECT tcc_resolve(%s, 'by hand')", (stuck,))
is_(err, None, "tcc_resolve after the confirm raises no error")
is_(status(stuck), "confirmed", "the transaction stays confirmed")
is_(q1("SELECT count(*) FROM tcc.actions WHERE gid = %s AND action = 'resolve'",
       (stuck,)), 0, "no resolve is recorded")

# ---- undecided is still an error for retry (nothing to retry yet)
tx = connect(autocommit=False)
trying = begin_branch(tx, "/t470/open/1")
tx.commit()
err = error_of(conn, "SELECT tcc_retry(%s)", (trying,))
is_(pgcode(err), "TC003", "tcc_retry on an undecided transaction: TC003")
run(conn, "SELECT tcc_finish(%s, false)", (trying,))
ok(wait_final(trying, 10) == "cancelled", "cleanup: cancelled")

done_testing()
