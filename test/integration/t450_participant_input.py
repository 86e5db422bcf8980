#!/usr/bin/python3
# A participant's answer is untrusted input, and no setting makes the
# retry delay go wrong.
#
# docs/api.md#bad-input (a try body that is not valid UTF-8 JSON is treated as
# no body: tcc_branch returns NULL, nothing stored breaks a later read),
# docs/protocol.md (Retry-After is honoured for 425, 429 and 503 only, and the
# next attempt waits the longer of it and the backoff, capped at
# tcc.retry_max_interval) and docs/worker.md (backoff: attempt n waits
# tcc.retry_interval * 2^(n-1), capped, +/-10 % jitter; delays never overflow,
# whatever the settings).

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_urls, calls, connect, q, q1,  # noqa: E402
                      run, run1, system_settings, tp_rule, tp_url,
                      wait_final, wait_until)
from tcclib import (PostHandler, diag, done_testing, is_, note,  # noqa: E402
                    ok, serve_http)

BODIES = {
    "/bad-utf8": b'{"a":"\xff\xfe\xc3"}',
    "/overlong": b'{"a":"\xc0\xaf"}',
    "/good-utf8": b'{"a":"\xc3\xa9"}',
}


class Raw(PostHandler):
    """Answers 200 with the raw bytes of BODIES[path]."""

    def do_POST(self):
        self.read_body()
        self.answer(200, BODIES.get(self.path.split("?", 1)[0], b"{}"))


srv, raw = serve_http(Raw)

# ---------------------------------------------------------------- UTF-8
conn = connect()
gid = run1(conn, "SELECT tcc_begin('1 min')")
confirm, cancel = branch_urls("/t450/utf8")[1:]
for path in ("/bad-utf8", "/overlong"):
    run(conn, "CREATE TEMP TABLE kept AS SELECT tcc_branch(%s, %s, %s, %s)"
        " AS body", (gid, raw + path, confirm, cancel))
    is_(run1(conn, "SELECT body IS NULL FROM kept"), True,
        "%s: tcc_branch returns NULL" % path)
    run(conn, "SET client_encoding = 'LATIN1'")
    is_(run1(conn, "SELECT count(*) FROM kept WHERE body::text IS NOT NULL"),
        0, "%s: what the caller kept reads back in LATIN1" % path)
    run(conn, "RESET client_encoding")
    run(conn, "DROP TABLE kept")
is_(run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)::text",
         (gid, raw + "/good-utf8", confirm, cancel)), '{"a": "\u00e9"}',
    "a valid UTF-8 body is returned as it is")
run(conn, "SET client_encoding = 'LATIN1'")
n = run1(conn, "SELECT count(*) FROM (SELECT b::text FROM tcc.branches b"
         " WHERE gid = %s UNION ALL SELECT t::text FROM tcc._try t"
         " WHERE gid = %s UNION ALL SELECT x::text FROM tcc.transactions x"
         " WHERE gid = %s) s", (gid, gid, gid))
is_(n, 7, "the coordinator's rows of the transaction read back in LATIN1")
run(conn, "RESET client_encoding")
run(conn, "SELECT tcc_finish(%s)", (gid,))
is_(wait_final(gid, 20), "confirmed", "and it confirms")
conn.close()
srv.shutdown()


# ---------------------------------------------------------------- helpers
def start(confirm_url):
    """Begin, one branch without try, finish; returns the gid."""
    conn = connect()
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    run(conn, "SELECT tcc_branch(%s, NULL, %s, NULL)", (gid, confirm_url))
    run(conn, "SELECT tcc_finish(%s)", (gid,))
    conn.close()
    return gid


def retry_delays(gids, timeout=20):
    """Seconds from each gid's first confirm attempt to its second: the
    second's start when it came already, else its planned time."""
    sql = ("SELECT b.gid::text, (SELECT min(a.started_at) FROM tcc.attempts a"
           "                      WHERE a.gid = b.gid),"
           "       (SELECT a.started_at FROM tcc.attempts a WHERE a.gid = b.gid"
           "         ORDER BY a.started_at OFFSET 1 LIMIT 1),"
           "       b.next_attempt_at"
           "  FROM tcc.branches b WHERE b.gid = ANY(%s::uuid[])")
    keys = [str(g) for g in gids]
    found = {}

    def planned():
        for gid, first, second, planned_at in q(sql, (keys,)):
            if first is not None and (second or planned_at) is not None:
                found.setdefault(gid, ((second or planned_at) -
                                       first).total_seconds())
        return len(found) == len(keys)
    if not wait_until(planned, timeout):
        diag("no retry planned for some of %r" % keys)
    return [found.get(k) for k in keys]


def resolve(gids):
    """Settle the given transactions by hand: no more calls."""
    for g in gids:
        q("SELECT tcc_resolve(%s, 'test over')", (g,))


# ---------------------------------------------------------------- Retry-After
with system_settings(retry_interval="5s", retry_max_interval="1min"):
    cases = {
        # not 425 / 429 / 503: the header means nothing, the backoff holds
        "r500": dict(status=500, retry_after="0"),
        # shorter than the backoff: the backoff holds
        "r503short": dict(status=503, retry_after="1"),
        # longer than the backoff: it holds
        "r503long": dict(status=503, retry_after="8"),
        # longer than tcc.retry_max_interval: capped
        "r429cap": dict(status=429, retry_after="3600"),
    }
    gids = {}
    for name, rule in cases.items():
        tp_rule("/t450/%s/confirm" % name, **rule)
        gids[name] = start(tp_url("/t450/%s/confirm" % name))
    delays = dict(zip(gids, retry_delays(gids.values())))
    note("first retry planned after: %r" % delays)
    for name, low, high, what in (
            ("r500", 4.4, 6.5,
             "500 with Retry-After: 0 waits the backoff (5 s +/-10 %)"),
            ("r503short", 4.4, 6.5,
             "503 with Retry-After: 1 waits the longer backoff"),
            ("r503long", 7.9, 9.5,
             "503 with Retry-After: 8 waits 8 s, longer than the backoff"),
            ("r429cap", 59.9, 61.5,
             "429 with Retry-After: 3600 waits tcc.retry_max_interval")):
        d = delays[name]
        ok(d is not None and low <= d <= high, "%s: %s" % (what, d))
    # and no attempt comes early: 2 s after the first, still one each
    first = q1("SELECT max(started_at) FROM tcc.attempts WHERE gid = ANY(%s::uuid[])",
               ([str(g) for g in gids.values()],))
    wait_until(lambda: q1("SELECT clock_timestamp() > %s + interval '2 s'",
                          (first,)), 10)
    is_({name: len(calls(g, "confirm")) for name, g in gids.items()},
        {name: 1 for name in gids}, "no early retry")
    resolve(gids.values())

# ---------------------------------------------------------------- overflow
# Both settings at their largest (about 24.8 days): with the jitter the
# delay goes past 2^31 ms about every other time.
with system_settings(retry_interval="2147483647ms",
                     retry_max_interval="2147483647ms"):
    gids = [start("http://127.0.0.1:1/t450/overflow/%d" % i)
            for i in range(8)]
    planned = wait_until(lambda: q1(
        "SELECT count(*) = %s FROM tcc.branches"
        " WHERE gid = ANY(%s::uuid[]) AND attempts >= 1 AND next_attempt_at IS NOT NULL",
        (len(gids), [str(g) for g in gids])), 20)
    ok(planned, "every branch failed once and has its retry planned")
    rows = q("SELECT attempts, next_attempt_at - now() FROM tcc.branches"
             " WHERE gid = ANY(%s::uuid[])", ([str(g) for g in gids],))
    note("delays: %s" % ", ".join(str(r[1]) for r in rows))
    ok(rows and all(r[1].total_seconds() > 20 * 86400 for r in rows),
       "every retry is more than 20 days ahead")
    ok(rows and all(r[1].total_seconds() < 28 * 86400 for r in rows),
       "and less than 28 days (24.8 days + 10 %)")
    is_(sorted(set(r[0] for r in rows)), [1], "no branch was retried")
    resolve(gids)

done_testing()
