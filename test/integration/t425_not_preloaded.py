#!/usr/bin/python3
# docs/api.md (installation without preloading) and docs/protocol.md
# (participant barrier): CREATE EXTENSION tcc succeeds on a server that does
# not preload tcc; there the barrier works, and the coordinator functions
# raise 55000 with a hint that names shared_preload_libraries.  A
# participant's own database is such a server.
#
# The test makes a private cluster (clusterlib.py) without tcc in
# shared_preload_libraries and with a tcc.database line left in its
# configuration, as an operator who removed the preload would.

import os
import sys

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import Cluster, port, watchdog  # noqa: E402,I100
from tcclib import done_testing, is_, like, ok  # noqa: E402

watchdog(120)
cluster = Cluster("t425", port(5))
cluster.init({"shared_preload_libraries": "''"})
cluster.start()

conn = cluster.connect()
cur = conn.cursor()
created = None
try:
    cur.execute("CREATE EXTENSION tcc")
    created = True
except psycopg2.Error as e:
    created = e
ok(created is True, "CREATE EXTENSION tcc succeeds without preloading (%s)"
   % created)

# the session survives: a FATAL during CREATE EXTENSION would have closed it
alive = False
try:
    cur.execute("SELECT 1")
    alive = cur.fetchone()[0] == 1
except psycopg2.Error:
    pass
ok(alive, "the session that created the extension is still usable")

conn = cluster.connect()
cur = conn.cursor()
gid = "20000000-0000-0000-0000-000000000001"
got = []
for op in ("try", "try", "confirm", "confirm"):
    cur.execute("SELECT tcc_barrier(%s, 1, %s)", (gid, op))
    got.append(cur.fetchone()[0])
is_(got, [True, False, True, False],
    "the barrier runs each operation once without preloading")

cur.execute("SELECT tcc_barrier(%s, 2, 'cancel')", (gid,))
is_(cur.fetchone()[0], False, "a cancel whose try never ran does nothing")

err = None
try:
    cur.execute("SELECT tcc_begin()")
except psycopg2.Error as e:
    err = e
is_(err.pgcode if err else None, "55000",
    "tcc_begin raises 55000 without preloading")
like(err.diag.message_hint if err else "", r"shared_preload_libraries",
     "the hint names shared_preload_libraries")

cluster.stop()
done_testing()
