#!/usr/bin/python3
# The 1.1 library on a database still at version 1.0, then ALTER EXTENSION
# tcc UPDATE (SPEC section 3: tcc_branch's new parameter protocol; section 4:
# the protocol stored per branch for the worker's calls).
#
#   at 1.0: tcc._branch has no protocol column and tcc_branch its 1.0
#   signature; the new library still records branches and confirms them
#   (every branch speaks tcc), also a confirm that is retried across the
#   update
#   the update: tcc_branch gets its protocol parameter, keeps the EXECUTE
#   grants given on the old signature, and the branches of 1.0 are tcc
#   after it: tcc_branches, tcc_run and protocol dtm work

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import branch_urls, calls, wait_final  # noqa: E402
from tcclib import (done_testing, is_, ok, q, q1, tp_rule,  # noqa: E402
                    wait_until)

q("DROP EXTENSION tcc")
q("CREATE EXTENSION tcc VERSION '1.0'")
is_(q1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.0",
    "the database has version 1.0 of the objects")
q("DROP ROLE IF EXISTS t325_app")
q("CREATE ROLE t325_app")
q("GRANT EXECUTE ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text,"
  " jsonb) TO t325_app")

# at 1.0, with the new library: a transaction confirmed at once, and one
# whose confirm fails until after the update
tp_rule("/t325/slow/1/confirm", fail_next=3, fail_status=503)
gids = {}
for name in ("now", "slow"):
    gid = q1("SELECT tcc_begin('1 min')")
    r = q1("SELECT tcc_branch(%s, %s, %s, %s)",
           (gid,) + branch_urls("/t325/%s/1" % name))
    is_(r, {"ok": True}, "1.0: %s: the 1.0 tcc_branch records and tries" % name)
    q("SELECT tcc_finish(%s)", (gid,))
    gids[name] = gid
is_(wait_final(gids["now"]), "confirmed", "1.0: confirmed by the worker")
ok(wait_until(lambda: len(calls(gids["slow"], "confirm")) >= 1, 10),
   "1.0: the slow confirm was tried and failed")

q("ALTER EXTENSION tcc UPDATE")
is_(q1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.1",
    "updated to 1.1")
is_(wait_final(gids["slow"], 20), "confirmed",
    "the confirm pending across the update completes")
is_(q1("SELECT has_function_privilege('t325_app', 'tcc_branch(uuid, text,"
       " text, text, jsonb, text, jsonb, text)', 'EXECUTE')"), True,
    "the grant on the 1.0 tcc_branch carries over to the new signature")
is_(q1("SELECT has_function_privilege('public', 'tcc_branch(uuid, text,"
       " text, text, jsonb, text, jsonb, text)', 'EXECUTE')"), False,
    "PUBLIC still has no EXECUTE")
is_(q1("SELECT obj_description('tcc_branch(uuid, text, text, text, jsonb,"
       " text, jsonb, text)'::regprocedure, 'pg_proc') IS NOT NULL"), True,
    "the new tcc_branch has its comment")
is_(q1("SELECT string_agg(DISTINCT protocol, ',') FROM tcc._branch"
       " WHERE gid IN (%s, %s)", (gids["now"], gids["slow"])), "tcc",
    "the branches of 1.0 speak tcc")

gid = q1("SELECT tcc_begin('1 min')")
q("SELECT tcc_branch(%s, %s, %s, %s, protocol => 'dtm')",
  (gid,) + branch_urls("/t325/dtm/1"))
q("SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid), "confirmed", "1.1: a dtm branch is confirmed")
is_([r["path"] for r in calls(gid)], ["/t325/dtm/1/try",
                                      "/t325/dtm/1/confirm"],
    "1.1: the dtm branch's calls")
gid = q1("SELECT gid FROM tcc_run(%s)",
         ('[{"try": "%s", "confirm": "%s", "cancel": "%s"}]'
          % branch_urls("/t325/run/1"),))
is_(wait_final(gid), "confirmed", "1.1: tcc_run works after the update")

q("DROP OWNED BY t325_app")
q("DROP ROLE t325_app")
done_testing()
