#!/usr/bin/python3
# Calls past the ceiling of kept call data are read from the tables, and
# send exactly what the branch recorded.
#
# docs/worker.md: for a phase two it starts itself, the worker keeps what
# each pending call sends (URL, payload, headers) in memory, up to a ceiling
# of 32 MB; past it, a call is read from the tables when it is due.
# docs/protocol.md: every call of a branch carries its payload, the same
# bytes for try, confirm and cancel.  Here one caller transaction decides
# 40 transactions whose one branch has a payload of about 900 kB: 36 MB of
# call data handed to the worker at once, so some of it is kept and the
# rest is not.  Every confirm must carry its own branch's payload.

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (branch_urls, calls, connect, run, run1,  # noqa: E402
                      tp_rule, wait_final)
from tcclib import done_testing, is_, ok  # noqa: E402

N = 40
BLOB = 900 * 1024
PREFIX = "/t606/big"

try_url, confirm_url, cancel_url = branch_urls(PREFIX)
# the confirms answer slowly, so every phase two is started before the
# first of them ends
tp_rule(PREFIX + "/confirm", delay_ms=300)

conn = connect(autocommit=False)
gids = []
payloads = {}
for i in range(N):
    gid = run1(conn, "SELECT tcc_begin('5 min')")
    payload = {"n": i, "blob": chr(ord("a") + i % 26) * BLOB}
    run(conn, "SELECT tcc_branch(%s, %s, %s, %s, %s)",
        (gid, try_url, confirm_url, cancel_url, json.dumps(payload)))
    gids.append(gid)
    payloads[gid] = payload
for gid in gids:
    run(conn, "SELECT tcc_finish(%s, true)", (gid,))
conn.commit()
conn.close()

final = [wait_final(gid, timeout=120) for gid in gids]
is_(final.count("confirmed"), N, "all %d transactions are confirmed" % N)

wrong = []
for gid in gids:
    got = calls(gid, "confirm")
    bodies = [json.loads(r["body"]) for r in got if r["status"] == 200]
    if not bodies or any(b != payloads[gid] for b in bodies):
        wrong.append(str(gid))
is_(wrong, [], "every confirm carried its own branch's payload, kept or read")
ok(sum(len(json.dumps(p)) for p in payloads.values()) > 32 * 1024 * 1024,
   "the call data handed over at once is past the 32 MB ceiling")
done_testing()
