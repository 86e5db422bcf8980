#!/usr/bin/python3
# Robustness (docs/api.md#bad-input: no input, however large or malformed, may
# crash a backend or the worker; docs/api.md: tcc_branch returns the try's
# body, NULL if empty or not JSON; docs/protocol.md: the body is kept capped).
#
# Every function gets long, malformed and hostile values.  Each call must
# either work or fail with an SQLSTATE, on a session that stays usable; where
# docs/api.md#sqlstates names the SQLSTATE, that one.  Then the participant
# answers tries with hostile bodies: tcc_branch returns NULL or a value,
# without error, and the transaction still confirms.  Afterwards the worker has
# the same pid and the server log tells of no crashed process.

import os
import sys
import uuid

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import (connect, crashes, diag, done_testing, is_,  # noqa: E402
                    log_size, ok, q, q1, tp_requests, tp_rule, tp_url,
                    wait_worker, worker_pid)

MB = 1024 * 1024
BIG = "repeat('x', 10 * 1024 * 1024)"            # a 10 MB text, made on the server
NEST = "(repeat('[', %d) || repeat(']', %d))"     # nested arrays, as text
ANY = None                   # works, or fails with any SQLSTATE
# Longest error message a hostile argument may produce: the message goes
# to the client and to the server log, so echoing a 10 MB argument back
# would let any caller flood the log.
MAX_MESSAGE = 1024


class Session:
    """One long-lived connection; notices a backend that went away."""

    def __init__(self):
        self.conn = connect()
        self.pid = self.one("SELECT pg_backend_pid()")
        self.lost = 0

    def one(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0] if cur.description else None

    def attempt(self, sql, params=None):
        """('ok', value) or ('error', SQLSTATE, message) or ('lost', text)."""
        try:
            return ("ok", self.one(sql, params))
        except psycopg2.Error as e:
            if self.conn.closed or e.pgcode is None:
                self.lost += 1
                text = str(e).strip()
                try:
                    self.conn.close()
                except psycopg2.Error:
                    pass
                self.conn = connect()
                self.pid = self.one("SELECT pg_backend_pid()")
                return ("lost", text)
            return ("error", e.pgcode, e.diag.message_primary or "")

    def alive(self):
        """True if the same backend still answers."""
        try:
            return self.one("SELECT pg_backend_pid()") == self.pid
        except psycopg2.Error:
            return False


gids = []


def fresh(session):
    """A new undecided global transaction (one hour)."""
    g = session.one("SELECT tcc_begin('1 hour')")
    gids.append(g)
    return g


def check(session, label, sql, params=None, want=ANY):
    """Run one hostile call: it works or fails with an SQLSTATE (want, if
    given: one SQLSTATE or a tuple of them, 'ok' for success)."""
    res = session.attempt(sql, params)
    alive = res[0] != "lost" and session.alive()
    if want is ANY:
        good = alive and res[0] in ("ok", "error") and \
            (res[0] == "ok" or len(res[1]) == 5)
    else:
        wants = want if isinstance(want, tuple) else (want,)
        got = "ok" if res[0] == "ok" else res[1] if res[0] == "error" else None
        good = alive and got in wants
    shown = ("works" if res[0] == "ok" else
             "%s %s" % (res[1], res[2]) if res[0] == "error" else
             "CONNECTION LOST: %s" % res[1])
    ok(good, "%s: %s" % (label, shown[:160]))
    if not good and want is not ANY:
        diag("    expected: %r" % (want,))
    if res[0] == "error" and len(res[2]) > MAX_MESSAGE:
        # the message goes to the client and the server log
        ok(False, "%s: the error message is at most %d bytes (it has %d)"
           % (label, MAX_MESSAGE, len(res[2])))
    return res


log_start = log_size()
pid0 = wait_worker()
ok(pid0 is not None, "the worker is running")
s = Session()
T, C, X = (tp_url("/t430/ok/try"), tp_url("/t430/ok/confirm"),
           tp_url("/t430/ok/cancel"))
s.one("SET tcc.request_timeout = '3s'")      # unresolvable hosts fail fast

# ------------------------------------------------------------- tcc_begin
for label, arg, want in (
        ("NULL timeout", "NULL", "ok"),
        ("zero", "'0'", "22023"),
        ("negative", "'-1 s'", "22023"),
        ("negative months, positive time", "'-1 mon 1 s'", "22023"),
        ("one microsecond", "'1 microsecond'", ANY),
        ("ten years and a day", "'3651 days'", "22023"),
        ("largest interval", "'178000000 years'", "22023"),
        ("smallest interval", "'-178000000 years'", "22023"),
        ("extreme parts", "make_interval(years => 178000000,"
                          " days => 2147483647)", ANY),
        ("extreme negative parts", "make_interval(years => -178000000,"
                                   " days => -2147483647,"
                                   " secs => -1e12)", ANY),
        ("huge seconds", "make_interval(secs => 9e15)", ANY)):
    res = check(s, "tcc_begin(%s)" % label, "SELECT tcc_begin(%s)" % arg,
                want=want)
    if res[0] == "ok":
        gids.append(res[1])
for label, args, want in (
        ("kind 10 MB", "NULL, %s" % BIG, "22023"),
        ("business_key 10 MB", "NULL, 'k', %s" % BIG, "22023"),
        ("business_key without kind", "NULL, NULL, 'b'", "22023"),
        ("kind with control characters and unicode",
         "NULL, E'k\\n\\r\\t\\x01\u00e9\u6f22', NULL", "ok"),
        ("empty kind and key", "NULL, '', ''", ANY),
        ("parallel NULL", "NULL, NULL, NULL, NULL", "ok")):
    res = check(s, "tcc_begin(%s)" % label, "SELECT tcc_begin(%s)" % args,
                want=want)
    if res[0] == "ok":
        gids.append(res[1])

# ------------------------------------------------------------ tcc_branch
BR = "SELECT tcc_branch(%s, %s, %s, %s, %s, %s, %s)"


def branch(label, try_url="%(t)s", confirm="%(c)s", cancel="%(x)s",
           payload="'{}'", name="NULL", headers="NULL", want=ANY):
    """tcc_branch on a fresh gid with the given SQL expressions."""
    g = fresh(s)
    sql = BR % ("%(g)s", try_url, confirm, cancel, payload, name, headers)
    return check(s, "tcc_branch(%s)" % label, sql,
                 {"g": g, "t": T, "c": C, "x": X}, want)


# NULL in every position
check(s, "tcc_branch(gid NULL)",
      BR % ("NULL", "%(t)s", "%(c)s", "%(x)s", "'{}'", "NULL", "NULL"),
      {"t": T, "c": C, "x": X}, "22023")
branch("try_url NULL", try_url="NULL", want="ok")
branch("confirm_url NULL", confirm="NULL", want="ok")
branch("cancel_url NULL", cancel="NULL", want="ok")
branch("all URLs NULL", try_url="NULL", confirm="NULL", cancel="NULL",
       want="22023")
branch("payload NULL", payload="NULL", want="22023")
branch("name NULL", name="NULL", want="ok")
branch("headers NULL", headers="NULL", want="ok")
branch("headers JSON null", headers="'null'::jsonb", want="22023")

# long values
for pos in ("try_url", "confirm", "cancel"):
    kw = {pos: "%%(t)s || %s" % BIG}
    branch("%s 10 MB" % pos, want="22023", **kw)
branch("payload 10 MB", payload="jsonb_build_object('p', %s)" % BIG,
       want="54000")
branch("payload of 100000 keys",
       payload="(SELECT jsonb_object_agg('k' || i, i)"
               " FROM generate_series(1, 100000) i)", want="54000")
branch("name 10 MB", name=BIG, want="22023")
branch("header value 10 MB",
       headers="jsonb_build_object('X-Big', %s)" % BIG, want="22023")
branch("header name 10 MB",
       headers="jsonb_build_object(%s, 'x')" % BIG, want="22023")
branch("reserved header name 10 MB",
       headers="jsonb_build_object('Tcc-' || %s, 'x')" % BIG, want="22023")
branch("1000 headers",
       headers="(SELECT jsonb_object_agg('X-H' || i, 'v')"
               " FROM generate_series(1, 1000) i)", want="22023")

# deeply nested JSON
for depth in (1000, 10000, 100000):
    branch("payload nested %d deep" % depth,
           payload=(NEST % (depth, depth)) + "::jsonb", want=ANY)
    branch("header value nested %d deep" % depth,
           headers="jsonb_build_object('X-N', %s::jsonb)"
                   % (NEST % (depth, depth)), want=("22023", "54001"))
branch("headers nested 100000 deep",
       headers="%s::jsonb" % (NEST % (100000, 100000)), want=("22023",
                                                              "54001"))

# malformed values
branch("headers an array", headers="'[\"A\", \"b\"]'", want="22023")
branch("headers a string", headers="'\"Authorization: x\"'", want="22023")
branch("headers a number", headers="'42'", want="22023")
for v in ("1", "1.5e300", "true", "false", "null", "[\"a\"]", "{\"a\":1}"):
    branch("header value %s" % v, headers="'{\"X-V\": %s}'" % v,
           want="22023")
branch("header value with CR LF", headers="'{\"X-V\": \"a\\r\\nB: c\"}'",
       want="22023")
branch("header name with LF", headers="'{\"X\\nV\": \"a\"}'", want="22023")
branch("header name unicode", headers="'{\"X-\u00c4\": \"a\"}'",
       want="22023")
branch("header value with other control characters",
       headers="'{\"X-V\": \"a\\u0001\\u001fb\\tc\\u007f\"}'", want=ANY)
branch("header value unicode", headers="'{\"X-V\": \"\u00e9\u6f22\"}'",
       want=ANY)
branch("header value empty", headers="'{\"X-V\": \"\"}'", want=ANY)
branch("payload a JSON scalar", payload="'42'", want="ok")
branch("payload JSON null", payload="'null'::jsonb", want="ok")
branch("name with control characters", name="E'a\\r\\nb\\x01'", want="ok")

# URLs
for label, url, want in (
        ("with a space", "'http://127.0.0.1/a b'", "22023"),
        ("with a tab", "E'http://127.0.0.1/a\\tb'", "22023"),
        ("with \\x01", "E'http://127.0.0.1/a\\x01b'", "22023"),
        ("with DEL", "E'http://127.0.0.1/a\\x7fb'", "22023"),
        ("with CR LF", "E'http://127.0.0.1/a\\r\\nHost: x'", "22023"),
        ("with credentials", "'http://user:pass@127.0.0.1/x'", "22023"),
        ("with @ in the path", "%(t)s || '@x'", ANY),
        ("unicode path", "%(t)s || '/\u00e9\u6f22'", ANY),
        ("unicode host", "'http://\u00e9\u6f22.invalid/x'", ANY),
        ("percent garbage", "%(t)s || '%%zz%%'", ANY),
        ("upper-case scheme", "replace(%(t)s, 'http:', 'HTTP:')", ANY),
        ("https to a plain HTTP port", "replace(%(t)s, 'http:', 'https:')",
         ANY),
        ("javascript:", "'javascript:alert(1)'", "22023"),
        ("file:", "'file:///etc/passwd'", "22023"),
        ("empty", "''", "22023"),
        ("only a scheme", "'http://'", "22023"),
        ("4096 bytes", "%(t)s || repeat('a', 4096 - length(%(t)s))", ANY),
        ("4097 bytes", "%(t)s || repeat('a', 4097 - length(%(t)s))",
         "22023")):
    branch("try_url %s" % label, try_url=url, want=want)
    branch("cancel_url %s" % label, try_url="NULL", cancel=url, want=want)

# ------------------------------------- finish, wait, retry, resolve, state
g = fresh(s)
for label, sql, params, want in (
        ("tcc_finish(NULL)", "SELECT tcc_finish(NULL)", None, "22023"),
        ("tcc_finish(gid, NULL)", "SELECT tcc_finish(%s, NULL)", (g,),
         "22023"),
        ("tcc_finish(unknown)", "SELECT tcc_finish(%s)",
         (str(uuid.uuid4()),), "TC004"),
        ("tcc_wait(NULL)", "SELECT tcc_wait(NULL)", None, "22023"),
        ("tcc_wait(gid, NULL)", "SELECT tcc_wait(%s, NULL)", (g,), "22023"),
        ("tcc_wait(gid, 0)", "SELECT tcc_wait(%s, '0')", (g,), "22023"),
        ("tcc_wait(gid, -1 h)", "SELECT tcc_wait(%s, '-1 h')", (g,),
         "22023"),
        ("tcc_wait(gid, 178000000 years)",
         "SELECT tcc_wait(%s, '178000000 years')", (g,), "22023"),
        ("tcc_wait(gid, 1 microsecond)",
         "SELECT tcc_wait(%s, '1 microsecond')", (g,), "ok"),
        ("tcc_retry(NULL)", "SELECT tcc_retry(NULL)", None, "22023"),
        ("tcc_retry(undecided)", "SELECT tcc_retry(%s)", (g,), "TC003"),
        ("tcc_resolve(NULL, note)", "SELECT tcc_resolve(NULL, 'n')", None,
         "22023"),
        ("tcc_resolve(gid, NULL)", "SELECT tcc_resolve(%s, NULL)", (g,),
         "22023"),
        ("tcc_worker_state()", "SELECT tcc_worker_state()", None, "ok")):
    check(s, label, sql, params, want)
check(s, "tcc_resolve(gid, 10 MB note)",
      "SELECT tcc_resolve(%%s, %s)" % BIG, (fresh(s),), ANY)
check(s, "tcc_resolve(gid, note with control characters)",
      "SELECT tcc_resolve(%s, E'a\\r\\n\\x01b')", (fresh(s),), "ok")

# ----------------------------------------------------------- the barrier
B = "00000000-0000-0000-0000-00000000c430"
for label, args, want in (
        ("gid NULL", "NULL, 1, 'try'", "22023"),
        ("branch NULL", "%(b)s, NULL, 'try'", "22023"),
        ("op NULL", "%(b)s, 1, NULL", "22023"),
        ("branch 0", "%(b)s, 0, 'try'", "22023"),
        ("branch -2147483648", "%(b)s, -2147483648, 'try'", "22023"),
        ("branch 2147483647", "%(b)s, 2147483647, 'try'", "ok"),
        ("op 10 MB", "%%(b)s, 1, %s" % BIG, "22023"),
        ("op with control characters", "%(b)s, 1, E'try\\n'", "22023"),
        ("op unicode", "%(b)s, 1, 'tr\u00ff'", "22023")):
    check(s, "tcc_barrier(%s)" % label, "SELECT tcc_barrier(%s)" % args,
          {"b": B}, want)
for label, arg, want in (
        ("NULL", "NULL", "22023"), ("zero", "'0'", "22023"),
        ("negative", "'-1 day'", "22023"),
        ("largest interval", "'178000000 years'", "22023"),
        ("ten years", "'3650 days'", "ok")):
    check(s, "tcc_barrier_cleanup(%s)" % label,
          "SELECT tcc_barrier_cleanup(%s)" % arg, None, want)
s.one("DELETE FROM tcc._barrier WHERE gid = %s", (B,))

is_(s.lost, 0, "no call lost its backend")
is_(worker_pid(), pid0, "the worker kept its pid through the hostile calls")

# ------------------------------------------- hostile answers to the try
# tcc_branch returns NULL or a value (never an error), the body kept is
# capped, and the transaction still confirms.
bodies = (
    ("5 MB JSON", '{"pad": "%s"}' % ("x" * (5 * MB)), "application/json",
     200, "null"),
    ("5 MB of text", "y" * (5 * MB), "text/plain", 200, "null"),
    ("not JSON", "<html>hello</html>", "text/html", 200, "null"),
    ("empty", "", "application/json", 200, "null"),
    ("204", "", "application/json", 204, "null"),
    ("JSON with \\u0000", '{"a": "b\\u0000c"}', "application/json", 200,
     "null"),
    ("a number too large for numeric", '{"n": 1e1000000}',
     "application/json", 200, "null"),
    ("nested 30000 deep (60 kB)", "[" * 30000 + "]" * 30000,
     "application/json", 200, "any"),
    ("nested 2000 deep", "[" * 2000 + "]" * 2000, "application/json", 200,
     "value"),
    ("60 kB of valid JSON", '{"pad": "%s"}' % ("z" * 60000),
     "application/json", 200, "value"),
    ("JSON null", "null", "application/json", 200, "value"),
    ("JSON with a BOM", "\ufeff{\"a\": 1}", "application/json", 200, "any"),
    ("299 with JSON", '{"ok": 299}', "application/json", 299, "value"),
    ("unicode JSON", '{"\u00e9": "\u6f22\U0001F600"}', "application/json",
     200, "value"))
for i, (label, body, ctype, status, want) in enumerate(bodies):
    path = "/t430/body%d" % i
    tp_rule(path + "/try", status=status, body=body, content_type=ctype)
    g = fresh(s)
    res = s.attempt("SELECT tcc_branch(%s, %s, %s, %s)::text",
                    (g, tp_url(path + "/try"), tp_url(path + "/confirm"),
                     tp_url(path + "/cancel")))
    if res[0] != "ok":
        ok(False, "try answered %s: tcc_branch does not fail (%s)"
           % (label, res[1:]))
    elif want == "null":
        is_(res[1], None, "try answered %s: tcc_branch returns NULL" % label)
    elif want == "value":
        ok(res[1] is not None,
           "try answered %s: tcc_branch returns the body (%s)"
           % (label, (res[1] or "")[:40]))
    else:
        ok(True, "try answered %s: tcc_branch returns %s"
           % (label, "NULL" if res[1] is None else "a value"))
    kept = q1("SELECT max(octet_length(body)) FROM tcc._try WHERE gid = %s",
              (g,))
    ok(kept is None or kept <= 64 * 1024,
       "try answered %s: the body kept is capped (%s bytes)" % (label, kept))
    check(s, "try answered %s: tcc_finish" % label,
          "SELECT tcc_finish(%s)", (g,), "ok")
    is_(s.one("SELECT tcc_wait(%s, '20 s')", (g,)), "confirmed",
        "try answered %s: the transaction confirms" % label)
    is_([r["op"] for r in tp_requests(g)], ["try", "confirm"],
        "try answered %s: one try, one confirm" % label)

# ------------------------------------------------------------- afterwards
ok(s.alive(), "the session is still alive")
is_(s.lost, 0, "no backend was lost")
is_(worker_pid(), pid0, "the worker has the same pid")
is_(crashes(log_start), [], "the server log tells of no crashed process")

# No call of this test's transactions (some have URLs nobody answers) is
# left to be retried: whatever is not final is resolved.
for g in gids:
    st = q1("SELECT status FROM tcc.transactions WHERE gid = %s", (g,))
    if st in ("trying", "failed", "confirming", "cancelling"):
        try:
            q("SELECT tcc_resolve(%s, 't430 cleanup')", (g,))
        except psycopg2.Error as e:      # became final meanwhile
            diag("cleanup of %s: %s" % (g, str(e).strip()))

done_testing()
