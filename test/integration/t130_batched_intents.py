#!/usr/bin/python3
# The worker writes the intents of every session waiting at the same moment
# together, in a few set-based statements (R1 of docs/guarantees.md).  Requests
# that arrive together must come out exactly as if each had been written on
# its own:
#
#   same business key         24 sessions begin with one (kind,
#                             business_key) at the same instant: exactly one
#                             gets a gid, every other gets 23505 naming the
#                             key, and there is one such transaction.
#   one gid, many sessions    16 sessions add a branch to one gid at the same
#                             instant: branches 1..16, each once, each with
#                             the name its session gave; the transaction
#                             still confirms and calls all 16.
#   good and bad together     at the same instant: branches to 8 good gids
#                             (half with headers), to an unknown gid (TC004),
#                             to a decided gid (TC003) and to a gid being
#                             decided by an open transaction (TC003); each
#                             good one is recorded once with its headers,
#                             each bad one fails with its SQLSTATE and
#                             leaves no branch behind.
#   decisions handed over     20 sessions commit a decision at the same
#                             instant, and one transaction decides 80 gids
#                             (more than a commit hands over by gid, so the
#                             worker looks for them all): every one confirms.
#
# Refusals are answers, not errors: none of the above may make the worker
# fall back to writing each request on its own (it logs when it does).

import json
import os
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, branches, calls, connect,  # noqa: E402
                      error_of, pgcode, q, q1, run, run1, system_settings,
                      wait_final)
from tcclib import done_testing, is_, log_since, log_size, ok  # noqa: E402


def together(jobs):
    """Runs each job (a function of a connection) in its own session, all
    released at the same instant; returns their results in order, an
    exception standing for a failure."""
    conns = [connect() for _ in jobs]
    start = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run_one(i):
        start.wait()
        try:
            results[i] = jobs[i](conns[i])
        except Exception as e:  # noqa: BLE001 - the test inspects it
            results[i] = e

    threads = [threading.Thread(target=run_one, args=(i,))
               for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for c in conns:
        c.close()
    return results


# --------------------------------------------------------------------------
# same business key

KEY = "order-%s" % uuid.uuid4()


def begin_keyed(conn):
    return run1(conn, "SELECT tcc_begin(kind => 't130', business_key => %s)",
                (KEY,))


LOG_START = log_size()
results = together([begin_keyed] * 24)
gids = [r for r in results if not isinstance(r, Exception)]
errors = [r for r in results if isinstance(r, Exception)]
is_(len(gids), 1, "same business key: exactly one session gets a gid")
is_(sorted(set(pgcode(e) for e in errors)), ["23505"],
    "same business key: every other session gets 23505")
ok(all(KEY in str(e) for e in errors),
   "same business key: the error names the key")
is_(q1("SELECT count(*) FROM tcc.transactions WHERE kind = 't130'"
       " AND business_key = %s", (KEY,)), 1,
    "same business key: one transaction with that key")
for g in gids:
    run(connect(), "SELECT tcc_finish(%s, false)", (g,))

# --------------------------------------------------------------------------
# one gid, many sessions

setup = connect()
gid = run1(setup, "SELECT tcc_begin()")


def add_branch(n):
    def job(conn):
        t, c, x = branch_urls("/t130/many/%d" % n)
        return run1(conn, "SELECT tcc_branch(%s, %s, %s, %s, name => %s)",
                    (gid, t, c, x, "s%d" % n))
    return job


results = together([add_branch(n) for n in range(16)])
is_([r for r in results if isinstance(r, Exception)], [],
    "one gid: every session's branch is recorded")
rows = q("SELECT branch, name FROM tcc.branches WHERE gid = %s"
         " ORDER BY branch", (gid,))
is_([r[0] for r in rows], list(range(1, 17)),
    "one gid: branches numbered 1..16, each once")
is_(sorted(r[1] for r in rows), sorted("s%d" % n for n in range(16)),
    "one gid: each session's branch is there once, with its name")
run(setup, "SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "one gid: the transaction confirms")
is_(len(calls(gid, "confirm")), 16, "one gid: all 16 branches confirmed")

# --------------------------------------------------------------------------
# good and bad together

good = [run1(setup, "SELECT tcc_begin()") for _ in range(8)]
decided = run1(setup, "SELECT tcc_begin()")
run(setup, "SELECT tcc_finish(%s, false)", (decided,))
held = run1(setup, "SELECT tcc_begin()")
holder = connect(autocommit=False)
run(holder, "SELECT tcc_finish(%s)", (held,))      # open: holds the gid
unknown = str(uuid.uuid4())


def good_branch(i):
    def job(conn):
        t, c, x = branch_urls("/t130/mixed/%d" % i)
        headers = json.dumps({"X-T130": "h%d" % i}) if i % 2 else None
        return run1(conn, "SELECT tcc_branch(%s, %s, %s, %s, headers => %s)",
                    (good[i], t, c, x, headers))
    return job


def bad_branch(target):
    def job(conn):
        t, c, x = branch_urls("/t130/bad")
        return error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                        (target, t, c, x))
    return job


results = together([good_branch(i) for i in range(8)] +
                   [bad_branch(unknown), bad_branch(decided),
                    bad_branch(held)])
is_([r for r in results[:8] if isinstance(r, Exception)], [],
    "good and bad: every good branch is recorded")
is_([pgcode(e) if e is not None else None for e in results[8:]],
    ["TC004", "TC003", "TC003"],
    "good and bad: unknown gid TC004, decided TC003, being decided TC003")
for i, g in enumerate(good):
    rows = branches(g)
    is_(len(rows), 1, "good and bad: good gid %d has its one branch" % i)
hdrs = q("SELECT b.gid, b.headers FROM tcc._branch b"
         " WHERE b.gid = ANY (%s::uuid[]) ORDER BY b.gid", (good,))
with_headers = sum(1 for _, h in hdrs if h and any("X-T130" in x for x in h))
is_(with_headers, 4, "good and bad: the four branches with headers kept them")
is_(q1("SELECT count(*) FROM tcc._branch WHERE gid IN (%s, %s, %s)",
       (unknown, decided, held)), 0,
    "good and bad: no branch left behind by a refused request")
holder.rollback()
holder.close()
run(setup, "SELECT tcc_finish(%s, false)", (held,))
for g in good:
    run(setup, "SELECT tcc_finish(%s)", (g,))
ok(all(wait_final(g) == "confirmed" for g in good),
   "good and bad: the good transactions confirm")
setup.close()

# --------------------------------------------------------------------------
# decisions handed over

def tried_gid(conn, tag):
    g = run1(conn, "SELECT tcc_begin()")
    t, c, x = branch_urls("/t130/decide/%s" % tag)
    run(conn, "SELECT tcc_branch(%s, %s, %s, %s)", (g, t, c, x))
    return g


setup = connect()
each = [tried_gid(setup, "each%d" % i) for i in range(20)]


def decide(g):
    def job(conn):
        return run1(conn, "SELECT tcc_finish(%s)", (g,))
    return job


results = together([decide(g) for g in each])
is_(results, ["confirming"] * 20,
    "decisions handed over: 20 sessions decide at the same instant")
ok(all(wait_final(g) == "confirmed" for g in each),
   "decisions handed over: each of the 20 confirms")
many = [tried_gid(setup, "many%d" % i) for i in range(80)]
# fewer confirms in flight than the default allows, as when this test
# was written against a test participant with a session per request
with system_settings(max_concurrency=16):
    one = connect(autocommit=False)
    for g in many:
        run(one, "SELECT tcc_finish(%s)", (g,))
    one.commit()
    one.close()
    ok(all(wait_final(g, 30) == "confirmed" for g in many),
       "decisions handed over: 80 decided in one transaction all confirm")
setup.close()

is_([line for line in log_since(LOG_START).splitlines()
     if "intents together failed" in line],
    [], "no batch of intents fell back to one request at a time")

done_testing()
