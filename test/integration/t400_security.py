#!/usr/bin/python3
# Security (docs/api.md: another role's gid raises 42501; docs/protocol.md:
# redirects are never followed; docs/api.md#views: a role that is not superuser
# sees only its own transactions, in every view and also through a leaky
# function in its own WHERE clause; header values never show in any view or
# log; docs/settings.md: tcc.allowed_urls is a superuser setting and is
# enforced for all three URLs at registration; docs/api.md#bad-input).
#
# The server log check: the header value is a random secret made on the
# server and passed to tcc_branch through a subquery, so no SQL text this
# test sends holds it (statements the server logs, e.g. with an ERROR, name
# only the table).  A log line holding the secret can therefore only come
# from the extension or the worker, at any log level.
#
# What an application role needs, and nothing more (the extension REVOKEs
# every function from PUBLIC; the tables stay private):
#
#   GRANT USAGE ON SCHEMA tcc TO app;
#   GRANT EXECUTE ON FUNCTION
#       tcc_begin(interval, text, text, boolean, text, text),
#       tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean),
#       tcc_finish(uuid, boolean),
#       tcc_wait(uuid, interval),
#       tcc_retry(uuid),
#       tcc_resolve(uuid, text),
#       tcc_worker_state()             -- needed to read the view tcc.worker
#     TO app;
#   GRANT SELECT ON tcc.transactions, tcc.branches, tcc.attempts,
#       tcc.actions, tcc.pending, tcc.attention, tcc.stats, tcc.worker
#     TO app;
#
# A participant whose database runs the barrier needs only
#   GRANT EXECUTE ON FUNCTION tcc_barrier(uuid, integer, text) TO svc;
# (and tcc_barrier_cleanup(interval) for whoever cleans up).

import os
import sys
import threading
import time

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (connect, drop_roles, error_of,  # noqa: E402
                      login_roles, message, pgcode, q, q1, run, run1,
                      sqlstate, tp_requests, tp_rule, tp_url, wait_until)
from tcclib import (PostHandler, done_testing, is_, like,  # noqa: E402
                    log_since, log_size, ok, serve_http)

APP1 = "tcc_t400_app1"
APP2 = "tcc_t400_app2"
NOBODY = "tcc_t400_nobody"
ROLES = (APP1, APP2, NOBODY)

VIEWS = ("transactions", "branches", "attempts", "actions", "pending",
         "attention", "stats", "worker")
TABLES = ("_gtx", "_branch", "_decision", "_try", "_attempt", "_action",
          "_barrier")

GRANTS = """
GRANT USAGE ON SCHEMA tcc TO {r};
GRANT EXECUTE ON FUNCTION
    tcc_begin(interval, text, text, boolean, text, text),
    tcc_branch(uuid, text, text, text, jsonb, text, jsonb, text, interval, integer, boolean),
    tcc_finish(uuid, boolean),
    tcc_wait(uuid, interval),
    tcc_retry(uuid),
    tcc_resolve(uuid, text),
    tcc_worker_state()
  TO {r};
GRANT SELECT ON tcc.transactions, tcc.branches, tcc.attempts, tcc.actions,
    tcc.pending, tcc.attention, tcc.stats, tcc.worker TO {r};
"""

# The header value whose absence from views and logs is checked.  It is
# made on the server (never part of any SQL text this test sends, so a
# statement logged by the server cannot contain it) and read from there.
SECRET_TABLE = "public.t400_secret"


def set_max_attempts(n):
    """ALTER SYSTEM tcc.max_attempts (None resets) and wait for the reload."""
    if n is None:
        q("ALTER SYSTEM RESET tcc.max_attempts")
    else:
        q("ALTER SYSTEM SET tcc.max_attempts = %s", (n,))
    q("SELECT pg_reload_conf()")
    want = str(n) if n is not None else q1(
        "SELECT boot_val FROM pg_settings WHERE name = 'tcc.max_attempts'")
    ok(wait_until(lambda: q1("SHOW tcc.max_attempts") == want, 10),
       "tcc.max_attempts is %s" % want)
    # the worker reloads on SIGHUP at its next turn; give it that turn
    time.sleep(0.3)


class Redirector(PostHandler):
    """Answers /3xx paths with that redirect status and a Location header."""

    target = None
    hits = {}
    lock = threading.Lock()

    def do_POST(self):
        self.read_body()
        path = self.path.split("?", 1)[0]
        with Redirector.lock:
            Redirector.hits[path] = Redirector.hits.get(path, 0) + 1
        code = int(path.strip("/").split("/")[-1])
        self.answer(code, b'{"redirected":true}',
                    {"Location": Redirector.target + path})


def start_redirector():
    """A loopback HTTP server answering redirects; returns it and its base
    URL."""
    Redirector.target = tp_url("/t400/redirect-target")
    return serve_http(Redirector)


# ---------------------------------------------------------------- setup

q("DROP TABLE IF EXISTS %s" % SECRET_TABLE)
login_roles(ROLES, GRANTS, (APP1, APP2))
q("CREATE TABLE %s AS SELECT 'Bearer s3cr3t-' || md5(random()::text) AS v"
  % SECRET_TABLE)
q("GRANT SELECT ON %s TO %s, %s" % (SECRET_TABLE, APP1, APP2))
secret = q1("SELECT v FROM %s" % SECRET_TABLE)
secret_tail = secret.split("-", 1)[1]        # the random part
HDRS = ("(SELECT jsonb_build_object('Authorization', v) FROM %s)"
        % SECRET_TABLE)

log_start = log_size()
redirector, redirect_base = start_redirector()
app1 = connect(user=APP1)
app2 = connect(user=APP2)
app1_gids = []

try:
    # ------------------------------------------------------------ PUBLIC
    # A fresh role gets nothing from PUBLIC: no function, no view, no
    # table, not even the schema.
    funcs = q("SELECT p.oid::regprocedure::text,"
              "       has_function_privilege(%s, p.oid, 'EXECUTE'),"
              "       p.proacl IS NOT NULL"
              "         AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a"
              "                          WHERE a.grantee = 0)"
              "  FROM pg_proc p JOIN pg_depend d"
              "    ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
              "   AND d.deptype = 'e'"
              "  JOIN pg_extension e ON e.oid = d.refobjid"
              " WHERE e.extname = 'tcc' ORDER BY 1", (NOBODY,))
    ok(len(funcs) >= 9, "the extension has its functions (%d)" % len(funcs))
    # (1.2) tcc_worker_states(), which tcc.worker reads, is executable by
    # PUBLIC so that the roles given tcc_worker_state() read tcc.worker as
    # before; it refuses every other role itself (checked below).
    gated = ["tcc_worker_states()"]
    is_([f for f, can, _ in funcs if can and f not in gated], [],
        "a fresh role may EXECUTE no tcc function (but %s, gated)" % gated)
    is_([f for f, _, revoked in funcs if not revoked and f not in gated], [],
        "no tcc function has an ACL entry for PUBLIC (proacl set, no grantee 0)")

    rels = q("SELECT c.oid::regclass::text FROM pg_class c"
             " WHERE c.relnamespace = 'tcc'::regnamespace"
             "   AND c.relkind IN ('r', 'v')"
             "   AND (has_table_privilege(%s, c.oid, 'SELECT')"
             "        OR has_table_privilege(%s, c.oid,"
             "                               'INSERT, UPDATE, DELETE'))",
             (NOBODY, NOBODY))
    is_(rels, [], "a fresh role has no privilege on any tcc table or view")
    is_(q1("SELECT has_schema_privilege(%s, 'tcc', 'USAGE')", (NOBODY,)),
        False, "a fresh role has no USAGE on schema tcc")
    nobody = connect(user=NOBODY)
    is_(sqlstate(nobody, "SELECT * FROM tcc_worker_states()"), "42501",
        "tcc_worker_states() refuses a role without EXECUTE on tcc_worker_state()")
    is_(sqlstate(nobody, "SELECT tcc_begin()"), "42501",
        "a fresh role calling tcc_begin: 42501")
    is_(sqlstate(nobody, "SELECT * FROM tcc.transactions"), "42501",
        "a fresh role reading tcc.transactions: 42501")
    nobody.close()

    # ------------------------------------------------- a full transaction
    tp_rule("/t400/ok/try", status=200, body='{"held":1}')
    gid = run1(app1, "SELECT tcc_begin()")
    app1_gids.append(gid)
    res = run1(app1, "SELECT tcc_branch(%%s, %%s, %%s, %%s, '{\"amount\": 5}',"
                    " 'acct', %s)" % HDRS,
              (gid, tp_url("/t400/ok/try"), tp_url("/t400/ok/confirm"),
               tp_url("/t400/ok/cancel")))
    is_(res, {"held": 1}, "app role: tcc_branch returns the try's body")
    app1.autocommit = False
    is_(run1(app1, "SELECT tcc_finish(%s)", (gid,)), "confirming",
        "app role: tcc_finish")
    app1.commit()
    app1.autocommit = True
    is_(run1(app1, "SELECT tcc_wait(%s, '20 s')", (gid,)), "confirmed",
        "app role: tcc_wait sees the transaction confirmed")
    reqs = tp_requests(gid)
    is_([r["op"] for r in reqs], ["try", "confirm"],
        "the participant got try and confirm")
    ok(all(r["headers"].get("Authorization") == secret for r in reqs),
       "the Authorization header reached the participant on every call")
    is_(run1(app1, "SELECT owner::text FROM tcc.transactions WHERE gid = %s",
            (gid,)), APP1, "tcc.transactions shows the owner")
    is_(run1(app1, "SELECT count(*) FROM tcc.branches WHERE gid = %s", (gid,)),
        1, "app role sees its branch")
    is_(run1(app1, "SELECT count(*) FROM tcc.attempts WHERE gid = %s", (gid,)),
        2, "app role sees its attempts (try and confirm)")
    ok(run1(app1, "SELECT pid FROM tcc.worker") is not None,
       "app role reads tcc.worker")
    confirmed_gid = gid

    # an undecided one and a failed one, both app1's
    pending_gid = run1(app1, "SELECT tcc_begin('1 hour')")
    app1_gids.append(pending_gid)
    run1(app1, "SELECT tcc_branch(%%s, %%s, %%s, %%s, '{}', 'held', %s)"
        % HDRS, (pending_gid, tp_url("/t400/pending/try"),
                 tp_url("/t400/pending/confirm"),
                 tp_url("/t400/pending/cancel")))

    set_max_attempts(2)
    try:
        tp_rule("/t400/fail/confirm", status=500)
        failed_gid = run1(app1, "SELECT tcc_begin()")
        app1_gids.append(failed_gid)
        run1(app1, "SELECT tcc_branch(%%s, %%s, %%s, %%s, '{}', 'x', %s)"
            % HDRS, (failed_gid, tp_url("/t400/fail/try"),
                     tp_url("/t400/fail/confirm"),
                     tp_url("/t400/fail/cancel")))
        run1(app1, "SELECT tcc_finish(%s)", (failed_gid,))
        is_(run1(app1, "SELECT tcc_wait(%s, '20 s')", (failed_gid,)), "failed",
            "a confirm answered 500 twice fails the transaction")

        # a confirm answered 409 (the worker logs a WARNING for it)
        tp_rule("/t400/c409/confirm", status=409)
        c409_gid = run1(app1, "SELECT tcc_begin()")
        app1_gids.append(c409_gid)
        run1(app1, "SELECT tcc_branch(%%s, %%s, %%s, %%s, '{}', 'x', %s)"
            % HDRS, (c409_gid, tp_url("/t400/c409/try"),
                     tp_url("/t400/c409/confirm"),
                     tp_url("/t400/c409/cancel")))
        run1(app1, "SELECT tcc_finish(%s)", (c409_gid,))
        is_(run1(app1, "SELECT tcc_wait(%s, '20 s')", (c409_gid,)), "failed",
            "a confirm answered 409 twice fails the transaction")

        # --------------------------------------------------- redirects
        # A try answered with a redirect is an unknown outcome (TC002) and
        # the Location is never requested.
        for code in (301, 302, 303, 307, 308):
            g = run1(app1, "SELECT tcc_begin()")
            app1_gids.append(g)
            got = error_of(app1, "SELECT tcc_branch(%s, %s, %s, %s)",
                           (g, "%s/try/%d" % (redirect_base, code),
                            tp_url("/t400/r/confirm"),
                            tp_url("/t400/r/cancel")))
            is_(pgcode(got), "TC002",
                "try answered %d: TC002 (%s)" % (code, message(got)))
            is_(run1(app1, "SELECT tcc_wait(%s, '20 s')", (g,)), "cancelled",
                "try answered %d: the transaction cancels" % code)
            is_(Redirector.hits.get("/try/%d" % code), 1,
                "try answered %d: called once" % code)
        # A confirm answered with a redirect is retried, never followed.
        g = run1(app1, "SELECT tcc_begin()")
        app1_gids.append(g)
        run1(app1, "SELECT tcc_branch(%s, %s, %s, %s)",
            (g, tp_url("/t400/rc/try"), "%s/confirm/307" % redirect_base,
             tp_url("/t400/rc/cancel")))
        run1(app1, "SELECT tcc_finish(%s)", (g,))
        is_(run1(app1, "SELECT tcc_wait(%s, '20 s')", (g,)), "failed",
            "confirm answered 307: retried until failed, not followed")
        is_(Redirector.hits.get("/confirm/307"), 2,
            "confirm answered 307: called max_attempts (2) times")
        is_(run1(app1, "SELECT last_http_status FROM tcc.branches"
                      " WHERE gid = %s", (g,)), 307,
            "tcc.branches shows the 307")
        is_(tp_requests("/t400/redirect-target"), [],
            "no Location target ever got a request")
        redirect_failed_gid = g
    finally:
        set_max_attempts(None)

    # ------------------------------------- what the second role can see
    for view in ("transactions", "branches", "attempts", "actions",
                 "pending", "attention"):
        is_(run1(app2, "SELECT count(*) FROM tcc.%s WHERE gid = ANY(%%s::uuid[])"
                % view, (app1_gids,)), 0,
            "another role sees none of app1's rows in tcc.%s" % view)
        is_(run1(app2, "SELECT count(*) FROM tcc.%s" % view), 0,
            "another role (no transactions of its own) sees tcc.%s empty"
            % view)
    stats2 = run(app2, "SELECT trying + confirming + cancelling + confirmed"
                       " + cancelled + failed + resolved, started_5min,"
                       " finished_5min, confirm_p50_ms, confirm_p99_ms"
                       " FROM tcc.stats")[0]
    is_(stats2, (0, 0, 0, None, None),
        "another role's tcc.stats counts nothing of app1's")
    stats1 = run(app1, "SELECT confirmed, failed, trying + confirming,"
                       " started_5min FROM tcc.stats")[0]
    own = run(app1, "SELECT count(*) FILTER (WHERE status = 'confirmed'),"
                    " count(*) FILTER (WHERE status = 'failed'),"
                    " count(*) FILTER (WHERE status IN ('trying', 'confirming')),"
                    " count(*) FROM tcc.transactions")[0]
    is_(stats1, own, "app1's tcc.stats counts exactly its own transactions")
    ok(stats1[0] >= 1 and stats1[1] >= 3,
       "app1's stats count its confirmed and failed transactions")
    is_(run1(app1, "SELECT count(*) FROM tcc.attention WHERE gid = %s",
            (failed_gid,)), 1, "app1 sees its failed transaction in attention")
    is_(run1(app1, "SELECT count(*) FROM tcc.pending WHERE gid = %s",
            (pending_gid,)), 1, "app1 sees its undecided one in pending")

    # A leaky function in the second role's WHERE clause (cheap, so the
    # planner would like to run it first) must not see app1's rows: the
    # views are security barriers.
    run(app2, "CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean"
              " LANGUAGE plpgsql COST 0.0000001 AS"
              " $$BEGIN RAISE NOTICE 'leak:%', t; RETURN true; END$$")
    for view, col in (("transactions", "gid"), ("transactions", "last_error"),
                      ("branches", "try_url"), ("branches", "last_error"),
                      ("attempts", "gid"), ("attempts", "op"),
                      ("actions", "note"), ("pending", "gid"),
                      ("attention", "why")):
        del app2.notices[:]
        run(app2, "SELECT count(*) FROM tcc.%s WHERE pg_temp.leak(%s::text)"
            % (view, col))
        leaked = [n.strip() for n in app2.notices if "leak:" in n]
        is_(leaked, [], "a leaky function on tcc.%s.%s in another role's"
            " query sees no row" % (view, col))

    # 42501 on app1's gids, and nothing changed by trying
    before = q("SELECT count(*) FROM tcc._decision WHERE gid = %s",
               (pending_gid,))
    calls = [
        ("tcc_branch", "SELECT tcc_branch(%s, %s, %s, %s)",
         (pending_gid, tp_url("/t400/x/try"), tp_url("/t400/x/confirm"),
          tp_url("/t400/x/cancel"))),
        ("tcc_finish", "SELECT tcc_finish(%s)", (pending_gid,)),
        ("tcc_finish false", "SELECT tcc_finish(%s, false)", (pending_gid,)),
        ("tcc_wait", "SELECT tcc_wait(%s, '1 s')", (pending_gid,)),
        ("tcc_retry", "SELECT tcc_retry(%s)", (failed_gid,)),
        ("tcc_resolve", "SELECT tcc_resolve(%s, 'not mine')", (failed_gid,)),
        ("tcc_resolve undecided", "SELECT tcc_resolve(%s, 'not mine')",
         (pending_gid,)),
    ]
    for name, sql, params in calls:
        is_(sqlstate(app2, sql, params), "42501",
            "another role: %s on app1's gid: 42501" % name)
    is_(tp_requests("/t400/x/"), [], "no HTTP call for those")
    is_(q("SELECT count(*) FROM tcc._decision WHERE gid = %s",
          (pending_gid,)), before, "no decision written for those")
    is_(q1("SELECT count(*) FROM tcc._action WHERE gid = ANY(%s::uuid[])",
           ([failed_gid, pending_gid],)), 0, "no action written for those")
    is_(q1("SELECT count(*) FROM tcc._branch WHERE gid = %s", (pending_gid,)),
        1, "no branch written for those")

    # a superuser sees everything
    is_(q1("SELECT count(*) FROM tcc.transactions WHERE gid = ANY(%s::uuid[])",
           (app1_gids,)), len(app1_gids),
        "a superuser sees all of app1's transactions")
    ok(q1("SELECT count(*) FROM tcc.transactions")
       >= run1(app1, "SELECT count(*) FROM tcc.transactions"),
       "a superuser sees at least as many transactions as app1")
    ok(q1("SELECT failed FROM tcc.stats") >= stats1[1],
       "a superuser's tcc.stats counts app1's failed ones too")
    is_(q1("SELECT count(*) FROM tcc.attention WHERE gid = %s",
           (failed_gid,)), 1, "a superuser sees app1's failed one in attention")

    # private tables: 42501 for both roles, for reading and for writing
    for role, conn in ((APP1, app1), (APP2, app2)):
        denied = [t for t in TABLES
                  if sqlstate(conn, "SELECT * FROM tcc.%s LIMIT 1" % t)
                  != "42501"]
        is_(denied, [], "%s cannot SELECT any private table" % role)
    is_(sqlstate(app2, "INSERT INTO tcc._decision (gid, commit, source,"
                       " decided_by) VALUES (%s, true, 'forged', 10)",
                 (pending_gid,)), "42501",
        "another role cannot forge a decision in tcc._decision")
    is_(sqlstate(app1, "UPDATE tcc._gtx SET status = 'confirmed'"), "42501",
        "an app role cannot UPDATE tcc._gtx")
    is_(sqlstate(app1, "SELECT tcc_barrier_cleanup('1 s')"), "42501",
        "tcc_barrier_cleanup is not granted by the application list")

    # operator actions as the owner
    run1(app1, "SELECT tcc_resolve(%s, 'settled by hand in t400')",
        (failed_gid,))
    ok(wait_until(lambda: run1(app1, "SELECT status FROM tcc.transactions"
                                    " WHERE gid = %s", (failed_gid,))
                  == "resolved", 10),
       "app role resolves its own failed transaction")
    is_(run(app1, "SELECT action, actor::text, note FROM tcc.actions"
                  " WHERE gid = %s", (failed_gid,)),
        [("resolve", APP1, "settled by hand in t400")],
        "tcc.actions shows who resolved it and the note")
    is_(run1(app2, "SELECT count(*) FROM tcc.actions"), 0,
        "another role does not see that action")
    for g in (c409_gid, redirect_failed_gid):
        run1(app1, "SELECT tcc_resolve(%s, 't400 cleanup')", (g,))

    # ------------------------------------------------- tcc.allowed_urls
    is_(sqlstate(app1, "SET tcc.allowed_urls = ''"), "42501",
        "SET tcc.allowed_urls as an app role: 42501")
    app1.autocommit = False
    is_(sqlstate(app1, "SET LOCAL tcc.allowed_urls = ''"), "42501",
        "SET LOCAL tcc.allowed_urls as an app role, in a transaction: 42501")
    app1.rollback()
    app1.autocommit = True
    is_(sqlstate(app1, "SELECT set_config('tcc.allowed_urls', '', false)"),
        "42501", "set_config('tcc.allowed_urls') as an app role: 42501")
    is_(sqlstate(app1, "ALTER SYSTEM SET tcc.allowed_urls = ''"), "42501",
        "ALTER SYSTEM SET tcc.allowed_urls as an app role: 42501")
    is_(sqlstate(app1, "ALTER ROLE %s SET tcc.allowed_urls = ''" % APP1),
        "42501", "ALTER ROLE ... SET tcc.allowed_urls on itself: 42501")
    try:
        c = connect(user=APP1, options="-c tcc.allowed_urls=")
        c.close()
        ok(False, "an app role cannot set tcc.allowed_urls at connection")
    except psycopg2.Error as e:
        like(str(e), "permission denied",
             "an app role cannot set tcc.allowed_urls at connection")

    allowed = tp_url("/t400/allowed/")
    q("ALTER ROLE %s SET tcc.allowed_urls = %%s" % APP1, (allowed,))
    fenced = connect(user=APP1)
    try:
        is_(run1(fenced, "SHOW tcc.allowed_urls"), allowed,
            "a superuser fenced the app role with ALTER ROLE ... SET")
        is_(sqlstate(fenced, "RESET tcc.allowed_urls"), "42501",
            "the fenced role cannot RESET it")
        g = run1(fenced, "SELECT tcc_begin()")
        app1_gids.append(g)
        n_branches = q1("SELECT count(*) FROM tcc._branch WHERE gid = %s",
                        (g,))
        for what, arg, urls in (
                ("try_url", "try_url", (tp_url("/t400/outside/try"),
                                        allowed + "confirm",
                                        allowed + "cancel")),
                ("confirm_url", "confirm_url",
                 (allowed + "try", tp_url("/t400/outside/confirm"),
                  allowed + "cancel")),
                ("cancel_url", "cancel_url",
                 (allowed + "try", allowed + "confirm",
                  tp_url("/t400/outside/cancel"))),
                ("confirm_url of a branch without try", "confirm_url",
                 (None, tp_url("/t400/outside/confirm"), None)),
                ("a sibling path sharing the prefix text", "try_url",
                 (allowed.rstrip("/") + "-evil/try", None, None)),
                ("the same port under another host name", "try_url",
                 ("http://localhost:%s/t400/allowed/try"
                  % os.environ["TCC_TP_PORT"], None, None))):
            got = error_of(fenced, "SELECT tcc_branch(%s, %s, %s, %s)",
                           (g,) + urls)
            is_((pgcode(got), message(got)),
                ("22023", "%s is not allowed by tcc.allowed_urls" % arg),
                "%s outside tcc.allowed_urls: 22023" % what)
        is_(q1("SELECT count(*) FROM tcc._branch WHERE gid = %s", (g,)),
            n_branches, "no branch registered for a refused URL")
        is_(tp_requests("/t400/outside/"), [],
            "no request to a URL outside tcc.allowed_urls")
        run1(fenced, "SELECT tcc_branch(%s, %s, %s, %s)",
            (g, allowed + "try", allowed + "confirm", allowed + "cancel"))
        run1(fenced, "SELECT tcc_finish(%s)", (g,))
        is_(run1(fenced, "SELECT tcc_wait(%s, '20 s')", (g,)), "confirmed",
            "URLs inside tcc.allowed_urls work")
    finally:
        fenced.close()
        q("ALTER ROLE %s RESET tcc.allowed_urls" % APP1)

    # ------------------------------------------- secrets in views and log
    # Failures whose messages could carry a header: a try refused and one
    # answered 500, a try to a closed port, and header checks on a value
    # that holds the secret.
    tp_rule("/t400/s409/try", status=409)
    tp_rule("/t400/s500/try", status=500)
    for path, want in (("/t400/s409/try", "TC001"), ("/t400/s500/try",
                                                      "TC002"),
                       (None, "TC002")):
        g = run1(app1, "SELECT tcc_begin()")
        app1_gids.append(g)
        url = tp_url(path) if path else "http://127.0.0.1:1/t400/closed"
        got = error_of(app1, "SELECT tcc_branch(%%s, %%s, %%s, %%s, '{}',"
                             " NULL, %s)" % HDRS,
                       (g, url, tp_url("/t400/s/confirm"),
                        tp_url("/t400/s/cancel")))
        is_(pgcode(got), want, "try %s: %s" % (path or "to a closed port",
                                                want))
        ok(got is not None and secret_tail not in message(got),
           "its error message does not hold the header value")
    g = run1(app1, "SELECT tcc_begin()")
    app1_gids.append(g)
    for label, expr in (
            ("CR LF", "jsonb_build_object('Authorization', v || E'\\r\\nX: y')"),
            ("too long", "jsonb_build_object('Authorization',"
                         " v || repeat('x', 9000))"),
            ("reserved name", "jsonb_build_object('Tcc-Gid', v)"),
            # a whole header line given as the name, a likely mistake
            ("line as name",
             "jsonb_build_object('Authorization: ' || v, '')")):
        try:
            run(app1, "SELECT tcc_branch(%%s, %%s, NULL, NULL, '{}', NULL,"
                      " (SELECT %s FROM %s))" % (expr, SECRET_TABLE),
                (g, tp_url("/t400/h/try")))
            ok(False, "header %s: refused" % label)
        except psycopg2.Error as e:
            ok(e.pgcode == "22023" and secret_tail not in str(e),
               "header %s: 22023, the value is not in the message (%s)"
               % (label, e.diag.message_primary))

    # every column of every view, as a superuser and as the owner
    for view in VIEWS:
        for who, conn in (("superuser", None), (APP1, app1)):
            sql = "SELECT t::text FROM tcc.%s t" % view
            rows = q(sql) if conn is None else run(conn, sql)
            leaked = [r[0] for r in rows if secret_tail in r[0]]
            is_(leaked, [], "tcc.%s (as %s) shows no header value"
                % (view, who))

    # The server log.  The secret was made on the server and is never part
    # of an SQL text this test sends (headers come from a subquery on
    # SECRET_TABLE), so a log line holding it can only come from the
    # extension or the worker: there must be none, whatever the log level.
    ok(wait_until(lambda: "answered 409 to confirm" in log_since(log_start),
                  5), "the worker's 409 warning is in the server log")
    log = log_since(log_start)
    lines = [line for line in log.splitlines() if secret_tail in line]
    is_(lines, [], "no server log line holds the header value")
    ok(any(SECRET_TABLE in line for line in log.splitlines()
           if "STATEMENT:" in line),
       "the log holds this test's failed statements, which name the secret's"
       " table, not the secret")
finally:
    app1.close()
    app2.close()
    redirector.shutdown()
    for g in app1_gids:
        status = q1("SELECT status FROM tcc.transactions WHERE gid = %s",
                    (g,))
        if status == "trying":
            q("SELECT tcc_finish(%s, false)", (g,))
        elif status in ("failed", "confirming", "cancelling"):
            q("SELECT tcc_resolve(%s, 't400 cleanup')", (g,))
    q("DROP TABLE IF EXISTS %s" % SECRET_TABLE)
    drop_roles(ROLES)
    if q1("SHOW tcc.max_attempts") != q1(
            "SELECT boot_val FROM pg_settings WHERE name = 'tcc.max_attempts'"):
        q("ALTER SYSTEM RESET tcc.max_attempts")
        q("SELECT pg_reload_conf()")

# ---- a hostile search_path: the caller's own "=" on uuid, which says
# every gid equals every other, must not reach the coordinator's SQL.  A new
# session, so that its first tcc call prepares the statements under that
# path; then a gid that is decided and one that is not are told apart.
evil = connect()
try:
    run(evil, "DROP SCHEMA IF EXISTS t400_evil CASCADE")
    run(evil, "CREATE SCHEMA t400_evil")
    run(evil, "CREATE FUNCTION t400_evil.same(uuid, uuid) RETURNS boolean"
              " LANGUAGE sql IMMUTABLE AS 'SELECT true'")
    run(evil, "CREATE OPERATOR t400_evil.= (LEFTARG = uuid, RIGHTARG = uuid,"
              " FUNCTION = t400_evil.same)")
    evil.close()
    evil = connect()
    run(evil, "SET search_path = t400_evil, pg_catalog, public")
    decided = run1(evil, "SELECT tcc_begin()")
    run(evil, "SELECT tcc_finish(%s, false)", (decided,))
    fresh = run1(evil, "SELECT tcc_begin()")
    try:
        got = run1(evil, "SELECT tcc_finish(%s)", (fresh,))
    except psycopg2.Error as e:
        got = "error %s: %s" % (e.pgcode, e.diag.message_primary)
    is_(got, "confirming",
        "hostile search_path: tcc_finish reads its own gid, not another")
    is_(q1("SELECT tcc_wait(%s, '10 s')", (fresh,)), "confirmed",
        "hostile search_path: the undecided gid confirms")
    is_(q1("SELECT tcc_wait(%s, '10 s')", (decided,)), "cancelled",
        "hostile search_path: the other gid stays cancelled")
finally:
    evil.close()
    q("DROP SCHEMA IF EXISTS t400_evil CASCADE")

done_testing()
