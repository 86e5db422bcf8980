#!/usr/bin/python3
# Upgrading a live coordinator from the released 1.1 to this tree's 1.2
# (README.md#upgrading-from-11; docs/states.md; R3 and R5 of docs/guarantees.md:
# nothing stays undecided, pending calls survive; docs/api.md#privileges).
#
# Builds version 1.1 from the git history (commit TCC_1_1, its last) into a
# cluster of this test's own (upgradelib.py), grants a role EXECUTE on the
# functions whose signatures 1.2 changes, and makes transactions in every
# state: confirmed, cancelled, failed, confirming and cancelling with their
# participant failing, trying, resolved.  Then puts this tree's build over
# it: with the 1.1 objects the coordinator refuses with 55000, the views
# still read; after ALTER EXTENSION tcc UPDATE every live transaction
# settles, the final ones stay, the grants carry over to the new
# signatures, the 1.1 rows read as having no policy of their own, and a
# 1.1 transaction's calls carry a trace context whose trace id is its gid.
#
# The counters (docs/views.md#metrics): 1.1 purges some transactions first
# (tcc._metric_retired holds their counts) and keeps HISTORY more, written
# straight into the tables as bench S9 does (bench/sql/history.sql); after
# the update every counter of tcc.metrics equals the recount of the kept
# rows plus what 1.1 kept of the purged ones, none is below the last scrape
# of 1.1, and as the live transactions settle they move as the recount.

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import header  # noqa: E402
from tcclib import (diag, done_testing, is_, ok, tp_requests,  # noqa: E402
                    tp_rule, tp_url, wait_until)
from upgradelib import OldCluster  # noqa: E402

TCC_1_1 = "c1e40b1"     # the last commit of version 1.1
HISTORY = 20000         # kept transactions written into the tables
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GAUGES = ("tcc_pending_transactions", "tcc_failed_transactions",
          "tcc_attention_transactions", "tcc_oldest_pending_age_seconds",
          "tcc_calls_in_flight", "tcc_worker_up")
OLD_SIGNATURES = ("tcc_begin(interval, text, text, boolean)",
                  "tcc_branch(uuid, text, text, text, jsonb, text, jsonb,"
                  " text)",
                  "tcc_run(jsonb, interval, text, text, boolean)")
NEW_SIGNATURES = ("tcc_begin(interval, text, text, boolean, text, text)",
                  "tcc_branch(uuid, text, text, text, jsonb, text, jsonb,"
                  " text, interval, integer, boolean)",
                  "tcc_run(jsonb, interval, text, text, boolean, text, text)")

c = OldCluster(TCC_1_1, "t820", "tcc.retry_interval = '200ms'\n"
               "tcc.retry_max_interval = '1s'\n")
status, wait_status = c.status, c.wait_status
if not ok(c.found, "version 1.1 (commit %s) is in the git history"
          % TCC_1_1):
    diag(c.why)
    done_testing()
    sys.exit(0)
is_(c.extension_files(), ["tcc--1.0--1.1.sql", "tcc--1.0.sql",
                          "tcc--1.1.sql", "tcc.control"],
    "the private copy holds version 1.1's extension files only")
c.sql("CREATE EXTENSION tcc")
is_(c.sql1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"),
    "1.1", "1.1: CREATE EXTENSION tcc installs version 1.1")
c.sql("CREATE ROLE t820_app")
c.sql("GRANT EXECUTE ON FUNCTION %s TO t820_app" % ", ".join(OLD_SIGNATURES))


def urls(name):
    """Try, confirm and cancel URLs of the test participant for a branch."""
    return tuple(tp_url("/t820/%s/%s" % (name, op))
                 for op in ("try", "confirm", "cancel"))


def begin_branch(name, timeout="1 min"):
    """tcc_begin and one tcc_branch, in autocommit; the gid."""
    gid = c.sql1("SELECT tcc_begin(%s)", (timeout,))
    c.sql("SELECT tcc_branch(%s, %s, %s, %s)", (gid,) + urls(name))
    return gid


def phase_two_calls(gid, n):
    """Waits until gid's phase two has made n calls."""
    return wait_until(lambda: c.sql1(
        "SELECT count(*) FROM tcc.attempts WHERE gid = %s"
        " AND op <> 'try'", (gid,)) >= n, 20)


def counters():
    """The counter and histogram samples of tcc.metrics."""
    return {tuple(r[:6]): r[6] for r in c.sql("SELECT * FROM tcc.metrics")
            if r[0] not in GAUGES}


def differ(a, b):
    """The samples where a and b differ (sums of seconds are floats added
    in another order: a relative 1e-9 is no difference)."""
    return sorted((k, a.get(k), b.get(k)) for k in set(a) | set(b)
                  if abs(a.get(k, 0.0) - b.get(k, 0.0))
                  > 1e-9 * max(1.0, abs(b.get(k, 0.0))))


# ---- 1.1 purges some transactions: their counts go to _metric_retired
for op in ("try", "confirm", "cancel"):
    tp_rule("/t820/gone/%s" % op)
gone = []
for _ in range(3):
    g = c.sql1("SELECT tcc_begin('1 min')")
    c.sql("SELECT tcc_branch(%s, %s, %s, %s)",
          (g,) + tuple(tp_url("/t820/gone/%s" % op)
                       for op in ("try", "confirm", "cancel")))
    c.sql("SELECT tcc_finish(%s)", (g,))
    gone.append(g)
c.set_system(retention="1s")
ok(wait_until(lambda: c.sql1("SELECT count(*) FROM tcc._gtx"
                             " WHERE gid = ANY (%s::uuid[])", (gone,)) == 0,
              30), "1.1: tcc.retention purges three confirmed transactions")
c.sql("ALTER SYSTEM RESET tcc.retention")
c.sql("SELECT pg_reload_conf()")
ok(c.sql1("SELECT count(*) FROM tcc._metric_retired") > 0,
   "1.1 keeps their counts in tcc._metric_retired")

# ---- a history of kept transactions, straight into 1.1's tables
res = subprocess.run(
    [os.path.join(c.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
     "-h", "127.0.0.1", "-p", str(c.port), "-U", "postgres", "-d", "coord",
     "-v", "n=%d" % HISTORY, "-v", "owner=postgres",
     "-f", os.path.join(ROOT, "bench", "sql", "history.sql")],
    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT, text=True)
is_(res.returncode, 0, "1.1: %d kept transactions written into the tables"
    % HISTORY)
if res.returncode != 0:
    diag(res.stdout[-2000:])
# the few of them not final point at no participant: written final too,
# so that no call of theirs goes on during the checks (the live ones of
# every state come next, made by 1.1 itself)
c.sql("UPDATE tcc._branch SET status = 'confirmed' WHERE gid IN ("
      "  SELECT gid FROM tcc._gtx WHERE kind LIKE 'k%%'"
      "     AND finished_at IS NULL)")
c.sql("UPDATE tcc._gtx SET status = 'confirmed',"
      "       finished_at = created_at + interval '40 ms'"
      " WHERE kind LIKE 'k%' AND finished_at IS NULL")

# ---- transactions in every state, made by version 1.1
for name in ("ok", "fail", "up", "down", "try", "res"):
    for op in ("try", "confirm", "cancel"):
        tp_rule("/t820/%s/%s" % (name, op))
tp_rule("/t820/refused/try", status=409)
for path in ("/t820/fail/confirm", "/t820/up/confirm", "/t820/down/cancel",
             "/t820/res/confirm"):
    tp_rule(path, status=503)

confirmed = begin_branch("ok")
c.sql("SELECT tcc_finish(%s)", (confirmed,))
is_(wait_status(confirmed, "confirmed"), "confirmed", "1.1: confirmed")
cancelled = c.sql1("SELECT tcc_begin('1 min')")
err = c.error_of("SELECT tcc_branch(%s, %s, %s, %s)",
                 (cancelled,) + urls("refused"))
is_(err and err.pgcode, "TC001", "1.1: a refused try")
is_(wait_status(cancelled, "cancelled"), "cancelled", "1.1: cancelled")

c.set_system(max_attempts=2)
failed = begin_branch("fail")
c.sql("SELECT tcc_finish(%s)", (failed,))
is_(wait_status(failed, "failed"), "failed", "1.1: failed")
c.set_system(max_attempts=1000)

confirming = begin_branch("up")
c.sql("SELECT tcc_finish(%s)", (confirming,))
cancelling = begin_branch("down")
c.sql("SELECT tcc_finish(%s, false)", (cancelling,))
resolved = begin_branch("res")
c.sql("SELECT tcc_finish(%s)", (resolved,))
ok(phase_two_calls(confirming, 2) and phase_two_calls(cancelling, 2)
   and phase_two_calls(resolved, 1),
   "1.1: confirm and cancel calls failing and retried")
c.sql("SELECT tcc_resolve(%s, 'settled by hand')", (resolved,))
is_(wait_status(resolved, "resolved"), "resolved", "1.1: resolved")
trying = begin_branch("try", "10 min")
is_([status(g) for g in (confirming, cancelling, trying)],
    ["confirming", "cancelling", "trying"],
    "1.1: confirming, cancelling and trying")
before = dict(c.sql("SELECT gid, status FROM tcc.transactions"))
scraped = counters()

# ---- this tree's build over 1.1, the database still at 1.1
at = c.install_current()
is_(dict(c.sql("SELECT gid, status FROM tcc.transactions")), before,
    "new library, 1.1 objects: every transaction is there, in its state")
err = c.error_of("SELECT tcc_begin()")
is_(err and err.pgcode, "55000",
    "new library, 1.1 objects: the coordinator refuses with 55000")

# ---- ALTER EXTENSION tcc UPDATE, the participants back: all settle
retired = {tuple(r[:6]): r[6] for r in c.sql(
    "SELECT metric, status, kind, op, outcome, le, value"
    "  FROM tcc._metric_retired")}
c.sql("ALTER EXTENSION tcc UPDATE")
is_(c.sql1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"),
    "1.2", "ALTER EXTENSION tcc UPDATE brings the objects to 1.2")
after_update = counters()
kept_then = {tuple(r[:6]): r[6] for r in c.sql(
    "SELECT * FROM tcc._metric_counts(NULL)")}
want = dict(kept_then)
for k, v in retired.items():
    want[k] = want.get(k, 0.0) + v
is_(differ(after_update, want), [],
    "after the update every counter equals the recount of the %d kept"
    " transactions plus what 1.1 kept of the purged ones" % len(before))
is_([k for k, v in scraped.items() if after_update.get(k, 0.0) < v - 1e-6],
    [], "no counter is below the last scrape of 1.1")
for path in ("/t820/fail/confirm", "/t820/up/confirm", "/t820/down/cancel"):
    tp_rule(path)
is_(wait_status(confirming, "confirmed"), "confirmed",
    "the confirming transaction is confirmed")
is_(wait_status(cancelling, "cancelled"), "cancelled",
    "the cancelling transaction is cancelled")
c.sql("SELECT tcc_retry(%s)", (failed,))
is_(wait_status(failed, "confirmed"), "confirmed",
    "the failed transaction is confirmed after tcc_retry")
is_(c.sql1("SELECT tcc_finish(%s)", (trying,)), "confirming",
    "the transaction tried under 1.1 is decided")
is_(wait_status(trying, "confirmed"), "confirmed", "and confirmed")
is_([status(g) for g in (confirmed, cancelled, resolved)],
    ["confirmed", "cancelled", "resolved"],
    "the final transactions stay as they were")


def moved_alike():
    """Whether each counter moved since the update as the recount did."""
    now = counters()
    kept_now = {tuple(r[:6]): r[6] for r in c.sql(
        "SELECT * FROM tcc._metric_counts(NULL)")}
    return differ({k: v - after_update.get(k, 0.0) for k, v in now.items()},
                  {k: v - kept_then.get(k, 0.0)
                   for k, v in kept_now.items()}) == []


ok(wait_until(moved_alike, 10),
   "as the live transactions settled, the counters moved as the recount")

# ---- what 1.2 adds, on the rows of 1.1
is_([c.sql1("SELECT has_function_privilege('t820_app', %s, 'EXECUTE')",
            (s,)) for s in NEW_SIGNATURES], [True, True, True],
    "the grants on tcc_begin, tcc_branch and tcc_run carry over")
is_([c.sql1("SELECT has_function_privilege('public', %s, 'EXECUTE')",
            (s,)) for s in NEW_SIGNATURES], [False, False, False],
    "PUBLIC has no EXECUTE on them")
is_(c.sql("SELECT DISTINCT timeout, max_attempts, pass_try_response"
          " FROM tcc.branches"), [(None, None, False)],
    "the branches of 1.1 have no policy of their own")
own = str(trying).replace("-", "")
is_(c.sql1("SELECT trace_id FROM tcc.transactions WHERE gid = %s",
           (trying,)), own, "a transaction of 1.1: its trace id is its gid")
tp = [header(r, "traceparent") or "" for r in tp_requests(trying)
      if r["op"] == "confirm"]
ok(tp and all(t.startswith("00-%s-" % own) for t in tp),
   "its confirm, sent by 1.2, carries that trace (%s)" % tp)

fresh = c.sql1("SELECT tcc_begin('1 min')")
c.sql("SELECT tcc_branch(%s, %s, %s, %s, max_attempts => 3,"
      " pass_try_response => true)", (fresh,) + urls("ok"))
c.sql("SELECT tcc_finish(%s)", (fresh,))
is_(wait_status(fresh, "confirmed"), "confirmed",
    "a new transaction with a policy of its own is confirmed")
is_(c.sql("SELECT destination FROM tcc.destinations"), [],
    "tcc.destinations reads")
is_(c.crash_lines(), [], "no server process crashed during the upgrade")
ok("ALTER EXTENSION tcc UPDATE" in c.log_text()[at:],
   "the worker said in the log that it waited for the update")

done_testing()
