#!/usr/bin/python3
# ALTER EXTENSION tcc UPDATE from 1.0 and the objects of tcc_branches /
# tcc_run / protocol dtm (docs/api.md: tcc_branch's new parameter
# protocol; docs/protocol.md: the protocol stored per branch).
#
#   tcc_branch is replaced by its 1.1 signature: the EXECUTE grants given on
#   the 1.0 function carry over, PUBLIC still has none, the comment is there
#   tcc._branch gains protocol, and the branches of 1.0 read as tcc
#   after the update tcc_branch(protocol => 'dtm'), tcc_branches and
#   tcc_run work

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import branch_urls, calls, wait_final  # noqa: E402
from tcclib import done_testing, is_, q, q1  # noqa: E402

q("DROP EXTENSION tcc")
q("CREATE EXTENSION tcc VERSION '1.0'")
is_(q1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.0",
    "the database has version 1.0 of the objects")
q("DROP ROLE IF EXISTS t325_app")
q("CREATE ROLE t325_app")
q("GRANT EXECUTE ON FUNCTION tcc_branch(uuid, text, text, text, jsonb, text,"
  " jsonb) TO t325_app")
# a branch of 1.0, written as 1.0 wrote it
q("INSERT INTO tcc._gtx (gid, owner, parallel, deadline, status, finished_at)"
  " VALUES ('00000000-0000-4000-8000-000000000325', 10, false,"
  " now() - interval '1 day', 'cancelled', now())")
q("INSERT INTO tcc._branch (gid, branch, payload, status)"
  " VALUES ('00000000-0000-4000-8000-000000000325', 1, '{}', 'cancelled')")

q("ALTER EXTENSION tcc UPDATE")
is_(q1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.2",
    "updated to 1.2")
is_(q1("SELECT has_function_privilege('t325_app', 'tcc_branch(uuid, text,"
       " text, text, jsonb, text, jsonb, text, interval, integer, boolean)',"
       " 'EXECUTE')"), True,
    "the grant on the 1.0 tcc_branch carries over to the new signatures"
    " (1.1, then 1.2)")
is_(q1("SELECT has_function_privilege('public', 'tcc_branch(uuid, text,"
       " text, text, jsonb, text, jsonb, text, interval, integer, boolean)',"
       " 'EXECUTE')"), False,
    "PUBLIC still has no EXECUTE")
is_(q1("SELECT count(*) FROM pg_proc WHERE proname = 'tcc_branch'"), 1,
    "one tcc_branch: the 1.0 signature is gone")
is_(q1("SELECT obj_description('tcc_branch(uuid, text, text, text, jsonb,"
       " text, jsonb, text, interval, integer, boolean)'::regprocedure,"
       " 'pg_proc') IS NOT NULL"), True,
    "the new tcc_branch has its comment")
is_(q1("SELECT protocol FROM tcc._branch"
       " WHERE gid = '00000000-0000-4000-8000-000000000325'"), "tcc",
    "a branch of 1.0 speaks tcc")

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
