#!/usr/bin/python3
# Confirm end to end, with 2 and with 5 branches.
#
# docs/api.md (tcc_branch returns the try's response body as jsonb),
# docs/protocol.md (the request: POST, Content-Type, Tcc-Gid, Tcc-Branch
# numbered from 1 in registration order, Tcc-Op, Idempotency-Key
# <gid>.<branch>.<op>, User-Agent tcc/<version>, the branch's own headers, the
# same payload bytes for every operation), docs/states.md (confirm in
# registration order, one branch after the other; final status confirmed) and
# docs/api.md#views (tcc.attempts holds one try and one confirm per branch).

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (attempts, branch_statuses, branch_urls,  # noqa: E402
                      branches, calls, connect, gaps, header, q1, run1,
                      status, tp_rule, transaction, ts, wait_final)
from tcclib import diag, done_testing, is_, ok  # noqa: E402

# Each confirm takes this long to answer, so that a confirm sent before the
# previous one was answered would show in the arrival times.
CONFIRM_DELAY_MS = 150

PAYLOAD = {"amount": 12.5, "currency": "EUR", "note": "h\u00e9llo \u2713",
           "items": [1, 2, {"sku": "A-1", "qty": 3}], "nested": {"k": None}}


def scenario(name, n):
    """Begin, register n branches, finish and commit; check everything."""
    conn = connect(autocommit=False)
    payload = json.dumps(PAYLOAD)
    # The bytes on the wire: PostgreSQL's text form of the jsonb payload.
    wire = q1("SELECT %s::jsonb::text", (payload,))
    prefixes = ["/t020/%s/%d" % (name, i) for i in range(1, n + 1)]
    sent_headers = []
    returned = []
    for i, prefix in enumerate(prefixes, 1):
        tp_rule(prefix + "/try",
                body=json.dumps({"reserved": i, "by": name, "ok": True}))
        tp_rule(prefix + "/confirm", delay_ms=CONFIRM_DELAY_MS)

    gid = run1(conn, "SELECT tcc_begin('1 min')")
    for i, prefix in enumerate(prefixes, 1):
        try_url, confirm_url, cancel_url = branch_urls(prefix)
        hdrs = {"Authorization": "Bearer token-%s-%d" % (name, i),
                "X-Request-Source": "t020 %s" % name}
        sent_headers.append(hdrs)
        returned.append(run1(
            conn, "SELECT tcc_branch(%s, %s, %s, %s, %s::jsonb,"
            " name => %s, headers => %s::jsonb)",
            (gid, try_url, confirm_url, cancel_url, payload,
             "branch-%d" % i, json.dumps(hdrs))))
    is_(run1(conn, "SELECT tcc_finish(%s, true)", (gid,)), "confirming",
        "%s: tcc_finish(gid, true) returns confirming" % name)
    conn.commit()
    conn.close()

    is_(returned, [{"reserved": i, "by": name, "ok": True}
                   for i in range(1, n + 1)],
        "%s: each tcc_branch returned its participant's try body as jsonb"
        % name)

    is_(wait_final(gid, 10), "confirmed",
        "%s: the global transaction becomes confirmed" % name)
    is_(status(gid), "confirmed",
        "%s: tcc.transactions shows confirmed" % name)
    is_(branch_statuses(gid), ["confirmed"] * n,
        "%s: every branch is confirmed" % name)
    t = transaction(gid) or {}
    ok(t.get("branches") == n and t.get("decided_at") is not None
       and t.get("finished_at") is not None
       and ts(t["decided_at"]) <= ts(t["finished_at"]),
       "%s: tcc.transactions counts %d branches, with decided_at and"
       " finished_at" % (name, n))
    b = branches(gid)
    is_([(x["branch"], x["name"], x["attempts"], x["last_http_status"])
         for x in b],
        [(i, "branch-%d" % i, 1, 200) for i in range(1, n + 1)],
        "%s: tcc.branches: names, one phase-two attempt each, last HTTP 200"
        % name)

    tries = calls(gid, "try")
    confirms = calls(gid, "confirm")
    is_([r["branch"] for r in tries], list(range(1, n + 1)),
        "%s: one try per branch, Tcc-Branch 1..%d in registration order"
        % (name, n))
    is_([r["path"] for r in tries], [p + "/try" for p in prefixes],
        "%s: branch k's try went to the k-th registered try URL" % name)
    is_([r["branch"] for r in confirms], list(range(1, n + 1)),
        "%s: one confirm per branch, in registration order" % name)
    is_([r["path"] for r in confirms], [p + "/confirm" for p in prefixes],
        "%s: each confirm went to its branch's confirm URL" % name)
    is_(calls(gid, "cancel"), [], "%s: no cancel was sent" % name)

    # one after the other: each confirm arrives only after the previous one
    # was answered, i.e. at least CONFIRM_DELAY_MS later
    g = gaps(confirms)
    if not ok(len(g) == n - 1 and
              all(x >= CONFIRM_DELAY_MS / 1000.0 * 0.95 for x in g),
              "%s: each confirm arrives after the previous one was answered"
              % name):
        diag("gaps between confirms (s): %r" % (g,))

    # the protocol headers and the branch's own headers, on every request
    bad = []
    for r in tries + confirms:
        b = r["branch"]
        want = {
            "Content-Type": "application/json",
            "Tcc-Gid": str(gid),
            "Tcc-Branch": str(b),
            "Tcc-Op": r["op"],
            "Idempotency-Key": "%s.%d.%s" % (gid, b, r["op"]),
            "User-Agent": "tcc/1.2",
        }
        if 1 <= b <= n:
            want.update(sent_headers[b - 1])
        for k, v in want.items():
            if header(r, k) != v:
                bad.append((b, r["op"], k, header(r, k), v))
        if r["method"] != "POST":
            bad.append((b, r["op"], "method", r["method"], "POST"))
    if not ok(not bad, "%s: method, protocol and branch headers as specified"
              " on all %d requests" % (name, len(tries) + len(confirms))):
        for b in bad:
            diag("branch %s %s: %s is %r, expected %r" % b)
    ok(all(header(r, "Tcc-Gid") == str(gid) for r in tries + confirms)
       and all(r["idem"] == "%s.%d.%s" % (gid, r["branch"], r["op"])
               for r in tries + confirms),
       "%s: the participant parsed gid and idempotency key" % name)

    bodies = set(r["body"] for r in tries + confirms)
    if not is_(bodies, {wire}, "%s: the same payload bytes (jsonb text) in"
               " every try and confirm" % name):
        diag("bodies seen: %r" % (bodies,))
    ok(all(json.loads(r["body"]) == PAYLOAD for r in tries + confirms),
       "%s: the payload decodes to what was passed" % name)

    rows = attempts(gid)
    got = sorted((a["branch"], a["op"], a["http_status"]) for a in rows)
    want = sorted([(b, "try", 200) for b in range(1, n + 1)] +
                  [(b, "confirm", 200) for b in range(1, n + 1)])
    if not is_(got, want, "%s: tcc.attempts has one try and one confirm per"
               " branch, all 200" % name):
        diag("attempts: %r" % (rows,))


scenario("two", 2)
scenario("five", 5)

# tcc_branch returns NULL for an empty or non-JSON try body, and any 2xx is
# a successful try (docs/api.md, docs/protocol.md table).
tp_rule("/t020/bodies/1/try", status=201, body='[1, "two", {"three": 3}]')
tp_rule("/t020/bodies/2/try", status=200, body="reserved, thanks",
        content_type="text/plain")
tp_rule("/t020/bodies/3/try", status=204, body="")
tp_rule("/t020/bodies/4/try", status=202, body='{"truncated": ')
conn = connect()
gid = run1(conn, "SELECT tcc_begin('1 min')")
got = [run1(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
            (gid,) + branch_urls("/t020/bodies/%d" % i)) for i in (1, 2, 3, 4)]
is_(got, [[1, "two", {"three": 3}], None, None, None],
    "bodies: a JSON array is returned; plain text, empty and broken JSON"
    " give NULL")
is_(run1(conn, "SELECT tcc_finish(%s, true)", (gid,)), "confirming",
    "bodies: 201, 200, 204 and 202 all count as successful tries")
conn.close()
is_(wait_final(gid, 10), "confirmed", "bodies: the transaction confirms")
is_([r["branch"] for r in calls(gid, "confirm")], [1, 2, 3, 4],
    "bodies: every branch got its confirm")

done_testing()
