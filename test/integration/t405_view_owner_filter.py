#!/usr/bin/python3
# Who sees which transactions, across ALTER EXTENSION tcc UPDATE from 1.0
# (docs/api.md#views: a role that is not superuser sees only its own
# transactions, in every view; a superuser sees every one).
#
# Version 1.1 reads tcc._gtx through one private view, tcc._own_gtx, in
# tcc.transactions, tcc.branches, tcc.attempts, tcc.actions (views of 1.0,
# replaced in place by the update) and tcc.transaction_list.  Checked:
#
#   a SELECT granted on the 1.0 views, and a role's own view built on
#   tcc.transactions, still work after the update; the columns and comments
#   of the 1.0 views are those of 1.0 (1.2 appends columns after them)
#   an ordinary role sees exactly its own rows in all five views, another
#   role its own, a superuser all of them
#   no ordinary role can read tcc._own_gtx or tcc._transaction_rows, the
#   rows tcc.transactions and tcc.transaction_list share (PUBLIC has no
#   grant on them)
#   on 100,000 transactions, a page of tcc.transaction_list (newest first,
#   keyset, and the transactions not final) is an index range scan on
#   _gtx_created or _gtx_open, not a Seq Scan and a Sort, and a lookup by
#   gid in tcc.transactions or tcc.branches reads _gtx by its primary key;
#   as an ordinary role and as superuser

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (connect, drop_roles, login_roles, q, q1,  # noqa: E402
                      run, run1, sqlstate)
from tcclib import diag, done_testing, is_, ok  # noqa: E402

APP1 = "tcc_t405_app1"
APP2 = "tcc_t405_app2"
KIND = "t405"
VIEWS_10 = ("transactions", "branches", "attempts", "actions")
VIEWS = VIEWS_10 + ("transaction_list",)

GRANTS = """
GRANT USAGE ON SCHEMA tcc TO {r};
GRANT SELECT ON tcc.transactions, tcc.branches, tcc.attempts, tcc.actions
  TO {r};
"""

# the shape of the views, as pg_catalog has it: columns in order with
# types, column comments, view comments, options
SHAPE = """
SELECT c.relname, a.attnum, a.attname,
       format_type(a.atttypid, a.atttypmod),
       col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class'),
       c.reloptions::text
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'tcc'::regnamespace AND c.relkind = 'v'
   AND c.relname = ANY (%s)
 ORDER BY 1, 2
"""


def cleanup():
    """Remove this test's transactions, schema and roles."""
    q("DELETE FROM tcc._action WHERE gid IN"
      " (SELECT gid FROM tcc._gtx WHERE kind = %s)", (KIND,))
    q("DELETE FROM tcc._attempt WHERE gid IN"
      " (SELECT gid FROM tcc._gtx WHERE kind = %s)", (KIND,))
    q("DELETE FROM tcc._try WHERE gid IN"
      " (SELECT gid FROM tcc._gtx WHERE kind = %s)", (KIND,))
    q("DELETE FROM tcc._decision WHERE gid IN"
      " (SELECT gid FROM tcc._gtx WHERE kind = %s)", (KIND,))
    q("DELETE FROM tcc._branch WHERE gid IN"
      " (SELECT gid FROM tcc._gtx WHERE kind = %s)", (KIND,))
    q("DELETE FROM tcc._gtx WHERE kind = %s", (KIND,))
    q("DROP SCHEMA IF EXISTS t405 CASCADE")
    drop_roles((APP1, APP2))


def add(owner, n):
    """n confirmed transactions of role owner, each with a decision, a
    branch, a try, a confirm attempt and an applied action; their gids
    (sorted)."""
    gids = [r[0] for r in q(
        "INSERT INTO tcc._gtx (gid, owner, kind, parallel, deadline, status,"
        "                      finished_at)"
        " SELECT gen_random_uuid(), %s::regrole, %s, false,"
        "        now() + interval '1 min', 'confirmed', now()"
        "   FROM generate_series(1, %s)"
        " RETURNING gid::text", (owner, KIND, n))]
    decide(gids)
    q("INSERT INTO tcc._branch (gid, branch, payload, status)"
      " SELECT gid, 1, '{}', 'confirmed' FROM tcc._gtx"
      "  WHERE gid = ANY (%s::uuid[])", (gids,))
    q("INSERT INTO tcc._try (gid, branch, started_at, duration_ms,"
      "                      http_status)"
      " SELECT gid, 1, now(), 1, 200 FROM tcc._gtx"
      "  WHERE gid = ANY (%s::uuid[])", (gids,))
    q("INSERT INTO tcc._attempt (gid, branch, op, started_at, duration_ms,"
      "                          http_status)"
      " SELECT gid, 1, 'confirm', now(), 1, 200 FROM tcc._gtx"
      "  WHERE gid = ANY (%s::uuid[])", (gids,))
    q("INSERT INTO tcc._action (gid, action, actor, applied)"
      " SELECT gid, 'retry', %s::regrole, true FROM tcc._gtx"
      "  WHERE gid = ANY (%s::uuid[])", (owner, gids))
    return sorted(gids)


def decide(gids=None):
    """The confirm decisions of the given transactions of this test (of
    all those confirmed when gids is None)."""
    q("INSERT INTO tcc._decision (gid, commit, source, decided_by)"
      " SELECT g.gid, true, 'caller', g.owner FROM tcc._gtx g"
      "  WHERE g.kind = %s AND g.status = 'confirmed'"
      "    AND (%s::uuid[] IS NULL OR g.gid = ANY (%s::uuid[]))"
      "    AND NOT EXISTS (SELECT FROM tcc._decision d WHERE d.gid = g.gid)",
      (KIND, gids, gids))


def seen(conn, view):
    """The distinct gids of tcc.<view> that conn's role sees (sorted)."""
    return [r[0] for r in run(
        conn, "SELECT DISTINCT gid::text FROM tcc.%s ORDER BY 1" % view)]


def plan_nodes(conn, sql, params=None):
    """The nodes of sql's plan (EXPLAIN FORMAT JSON), depth first."""
    plan = run1(conn, "EXPLAIN (FORMAT JSON) " + sql, params)
    if isinstance(plan, str):
        plan = json.loads(plan)
    out, todo = [], [plan[0]["Plan"]]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(reversed(node.get("Plans", [])))
    return out


def reads_by_index(conn, sql, params, index, name, sorts=False):
    """Pass if sql's plan reads tcc._gtx only by index scans, one of them
    on index, and sorts nothing (unless sorts: a lookup by gid in a view
    kept newest first sorts the row it finds); show the plan's nodes when
    not."""
    nodes = plan_nodes(conn, sql, params)
    on_gtx = [n for n in nodes if n.get("Relation Name") == "_gtx"]
    res = ok(on_gtx != []
             and all(n["Node Type"] in ("Index Scan", "Index Only Scan")
                     for n in on_gtx)
             and any(n.get("Index Name") == index for n in on_gtx)
             and (sorts or not any(n["Node Type"] in ("Sort",
                                                       "Incremental Sort")
                                   for n in nodes)), name)
    if not res:
        diag("  plan: " + " / ".join(
            n["Node Type"] + (" on " + n["Relation Name"]
                              if "Relation Name" in n else "")
            + (" using " + n["Index Name"] if "Index Name" in n else "")
            for n in nodes))
    return res


# ---- version 1.0, with grants and a role's own view on tcc.transactions
cleanup()
q("DROP EXTENSION tcc")
q("CREATE EXTENSION tcc VERSION '1.0'")
login_roles((APP1, APP2), GRANTS, (APP1, APP2))
q("CREATE SCHEMA t405 AUTHORIZATION %s" % APP1)
SU = q1("SELECT current_user")
mine = {APP1: add(APP1, 3), APP2: add(APP2, 2), SU: add(SU, 1)}
app1 = connect(user=APP1)
run(app1, "CREATE VIEW t405.mine AS SELECT gid::text FROM tcc.transactions")
is_([r[0] for r in run(app1, "SELECT gid FROM t405.mine ORDER BY 1")],
    mine[APP1], "1.0: a role's own view on tcc.transactions shows its rows")
app1.close()
shape_10 = q(SHAPE, (list(VIEWS_10),))
is_(len(shape_10), 40, "1.0: the four views have 40 columns")

# ---- the update
q("ALTER EXTENSION tcc UPDATE")
is_(q1("SELECT extversion FROM pg_extension WHERE extname = 'tcc'"), "1.2",
    "updated to 1.2")
shape_now = q(SHAPE, (list(VIEWS_10),))
kept = {(r[0], r[1]) for r in shape_10}
is_([r for r in shape_now if (r[0], r[1]) in kept], shape_10,
    "the four views of 1.0 keep their columns, types, comments and options")
for v in VIEWS_10:
    ok(q1("SELECT has_table_privilege(%s, %s, 'SELECT')", (APP1, "tcc." + v)),
       "the SELECT granted on tcc.%s in 1.0 is kept" % v)
q("GRANT SELECT ON tcc.transaction_list TO %s, %s" % (APP1, APP2))

app1, app2 = connect(user=APP1), connect(user=APP2)
su = connect()
is_([r[0] for r in run(app1, "SELECT gid FROM t405.mine ORDER BY 1")],
    mine[APP1], "the role's own view on tcc.transactions still works")

# ---- every view: own rows for a role, all rows for a superuser
everyone = sorted(mine[APP1] + mine[APP2] + mine[SU])
for v in VIEWS:
    is_([g for g in seen(app1, v) if g in everyone], mine[APP1],
        "tcc.%s: %s sees its own transactions, no other" % (v, APP1))
    is_([g for g in seen(app2, v) if g in everyone], mine[APP2],
        "tcc.%s: %s sees its own transactions, no other" % (v, APP2))
    is_([g for g in seen(su, v) if g in everyone], everyone,
        "tcc.%s: a superuser sees every transaction" % v)

# ---- the private base views
for base in ("_own_gtx", "_transaction_rows"):
    is_(sqlstate(app1, "SELECT count(*) FROM tcc.%s" % base), "42501",
        "an ordinary role cannot select tcc.%s" % base)
    ok(not q1("SELECT has_table_privilege('public', 'tcc.%s', 'SELECT')"
              % base),
       "PUBLIC has no SELECT on tcc.%s" % base)

# ---- plans on 100,000 transactions: one in a hundred open (trying, not
# decided), the others confirmed
q("INSERT INTO tcc._gtx (gid, owner, kind, parallel, created_at, deadline,"
  "                      status, finished_at)"
  " SELECT gen_random_uuid(),"
  "        CASE WHEN i %% 2 = 0 THEN %s::regrole ELSE %s::regrole END,"
  "        %s, false, now() - i * interval '1 s',"
  "        now() - i * interval '1 s' + interval '1 hour',"
  "        CASE WHEN i %% 100 = 0 THEN 'trying' ELSE 'confirmed' END,"
  "        CASE WHEN i %% 100 <> 0 THEN now() END"
  "   FROM generate_series(1, 100000) i", (APP1, APP2, KIND))
decide()
q("ANALYZE tcc._gtx, tcc._decision")
at, gid = q("SELECT created_at, gid FROM tcc._gtx WHERE owner = %s::regrole"
            " ORDER BY created_at DESC, gid DESC OFFSET 1000 LIMIT 1",
            (APP1,))[0]
# the console's queries: no ORDER BY of their own (the view's order is
# kept; an outer ORDER BY would have the view planned for every row)
PAGE = "SELECT gid, status FROM tcc.transaction_list LIMIT 51"
NEXT = ("SELECT gid, status FROM tcc.transaction_list"
        " WHERE created_at <= %s AND (created_at < %s OR gid < %s)"
        " LIMIT 51")
OPEN = ("SELECT gid, status FROM tcc.transaction_list"
        " WHERE finished_at IS NULL AND created_at <= %s LIMIT 51")
for who, conn in ((APP1, app1), ("superuser", su)):
    reads_by_index(conn, PAGE, None, "_gtx_created",
                   "%s: the first page of tcc.transaction_list is an index"
                   " scan on _gtx_created" % who)
    reads_by_index(conn, NEXT, (at, at, gid), "_gtx_created",
                   "%s: the next page (keyset) is an index scan"
                   " on _gtx_created" % who)
    reads_by_index(conn, OPEN, (at,), "_gtx_open",
                   "%s: a page of the transactions not final is an index"
                   " scan on _gtx_open" % who)
    for v in ("transactions", "branches"):
        reads_by_index(conn, "SELECT * FROM tcc.%s WHERE gid = %%s" % v,
                       (gid,), "_gtx_pkey",
                       "%s: tcc.%s by gid reads _gtx by its primary key"
                       % (who, v), sorts=(v == "transactions"))
is_(len(run(app1, PAGE)), 51, "the first page has its 51 rows")
is_(run1(app1, "SELECT count(*) FROM tcc.transaction_list"
         " WHERE finished_at IS NULL"),
    run1(su, "SELECT count(*) FROM tcc._gtx WHERE finished_at IS NULL"
         " AND owner = %s::regrole", (APP1,)),
    "the transactions not final of %s, as tcc._gtx has them" % APP1)

for c in (app1, app2, su):
    c.close()
cleanup()
done_testing()
