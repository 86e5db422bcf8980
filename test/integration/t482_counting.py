#!/usr/bin/python3
# docs/views.md#metrics (1.2): what each statement on tcc._gtx, tcc._try
# and tcc._attempt adds to the kept counters (tcc._metric_total and
# tcc._metric_delta) and to tcc.activity's minutes, statement by statement
# (the triggers of src/counting.c), each figure worked out by hand:
#   * rows inserted begin at their minute; final rows inserted are kept and
#     ended at their minute, but count no transaction as ended;
#   * an update that makes rows final ends them: by status, kind and owner,
#     the settle histogram (decision to end; none without a decision) and
#     the end-to-end one (none for resolved), their minutes, tcc_kept;
#   * a final row updated again nets to nothing; one moved between final
#     states (confirmed -> resolved) moves its counts;
#   * a deleted final row leaves tcc_kept, and nothing else;
#   * calls by op and outcome (200-299 success, 409 refused, no status
#     no_answer, others error), the try histogram for tries only, a bound
#     inclusive.
# The rows are written by hand in transactions that leave none of them
# undecided, so the worker has nothing to do with them; their times lie a
# day ahead, out of the purge's and other tests' way.

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tcclib import connect, diag, done_testing, is_, q, q1, run  # noqa: E402

O1, O2 = 48201, 48202          # owners no role has: no other row counts for them
A, B = "t482-a", "t482-b"


def raw():
    """{(metric, status, kind, op, outcome, le, owner): value} kept."""
    return {tuple(r[:7]): r[7] for r in q(
        "SELECT metric, status, kind, op, outcome, le, owner, sum(value)"
        "  FROM (SELECT metric, status, kind, op, outcome, le, owner, value"
        "          FROM tcc._metric_total"
        "        UNION ALL"
        "        SELECT metric, status, kind, op, outcome, le, owner, value"
        "          FROM tcc._metric_delta) x"
        " GROUP BY 1, 2, 3, 4, 5, 6, 7")}


def minutes():
    """{(minute offset in minutes from t0, owner): (started, finished,
    confirmed, confirm_seconds)} of the two owners."""
    return {(int(r[0]), r[1]): (int(r[2]), int(r[3]), int(r[4]), float(r[5]))
            for r in q(
                "SELECT extract(epoch FROM minute - %s::timestamptz) / 60, owner,"
                "       sum(started), sum(finished), sum(confirmed),"
                "       sum(confirm_seconds)"
                "  FROM (SELECT * FROM tcc._minute_total"
                "        UNION ALL SELECT * FROM tcc._minute_delta) m"
                " WHERE owner IN (%s, %s)"
                " GROUP BY 1, 2", (T0, O1, O2))}


def moved(a, b):
    """{key: b - a} for what differs (floats to 1e-9)."""
    out = {}
    for k in set(a) | set(b):
        x, y = a.get(k), b.get(k)
        if isinstance(x or y, tuple):
            x = x or (0, 0, 0, 0.0)
            y = y or (0, 0, 0, 0.0)
            d = tuple(round(j - i, 6) for i, j in zip(x, y))
            if any(abs(v) > 1e-9 for v in d):
                out[k] = d
        else:
            d = (y or 0.0) - (x or 0.0)
            if abs(d) > 1e-9:
                out[k] = round(d, 6)
    return out


def sample(metric, status="", kind="", op="", outcome="", le="", owner=0):
    return (metric, status, kind, op, outcome, le, owner)


def step(label, sql, want, want_minutes):
    """Runs sql (a list of statements, one transaction); checks what the
    counters and the minutes moved."""
    r0, m0 = raw(), minutes()
    conn = connect(autocommit=False)
    try:
        for s in sql:
            run(conn, s, {"t0": T0, "o1": O1, "o2": O2, "a": A, "b": B})
        conn.commit()
    finally:
        conn.close()
    got = moved(r0, raw())
    if not is_(got, want, "%s: the counters moved as worked out" % label):
        for k in sorted(set(got) | set(want), key=str):
            if got.get(k) != want.get(k):
                diag("  %r: got %s, want %s" % (k, got.get(k), want.get(k)))
    is_(moved(m0, minutes()), want_minutes,
        "%s: tcc.activity's minutes moved as worked out" % label)


T0 = q1("SELECT date_trunc('minute', now()) + interval '1 day'")
G = {i: q1("SELECT gen_random_uuid()::text") for i in range(1, 5)}
SEL = "(SELECT gid FROM tcc._gtx WHERE gid IN ('%s'))" % "', '".join(G.values())

step("three transactions begun, decided and ended in one transaction", [
    "INSERT INTO tcc._gtx (gid, owner, kind, parallel, created_at, deadline)"
    " VALUES ('%s', %%(o1)s, %%(a)s, false, %%(t0)s, %%(t0)s + interval '1 hour'),"
    "        ('%s', %%(o1)s, %%(a)s, false, %%(t0)s, %%(t0)s + interval '1 hour'),"
    "        ('%s', %%(o2)s, NULL, false, %%(t0)s, %%(t0)s + interval '1 hour')"
    % (G[1], G[2], G[3]),
    "INSERT INTO tcc._decision (gid, commit, source, decided_at, decided_by)"
    " VALUES ('%s', true, 'caller', %%(t0)s + interval '1 s', %%(o1)s),"
    "        ('%s', false, 'caller', %%(t0)s + interval '2 s', %%(o1)s)" % (G[1], G[2]),
    # one statement ends all three: confirmed, cancelled, resolved
    "UPDATE tcc._gtx SET"
    "  status = CASE gid WHEN '%s' THEN 'confirmed' WHEN '%s' THEN 'cancelled'"
    "                    ELSE 'resolved' END,"
    "  finished_at = %%(t0)s + CASE gid WHEN '%s' THEN interval '3.5 s'"
    "                               WHEN '%s' THEN interval '62 s'"
    "                               ELSE interval '10 s' END"
    " WHERE gid IN ('%s', '%s', '%s')"
    % (G[1], G[2], G[1], G[2], G[1], G[2], G[3]),
], {
    sample("tcc_transactions_total", "confirmed", A, owner=O1): 1,
    sample("tcc_transactions_total", "cancelled", A, owner=O1): 1,
    sample("tcc_transactions_total", "resolved", "", owner=O2): 1,
    sample("tcc_kept", "confirmed", owner=O1): 1,
    sample("tcc_kept", "cancelled", owner=O1): 1,
    sample("tcc_kept", "resolved", owner=O2): 1,
    # decision to end: 2.5 s and 60 s (the resolved one has none)
    sample("tcc_settle_duration_seconds_bucket", le="2.5"): 1,
    sample("tcc_settle_duration_seconds_bucket", le="60"): 1,
    sample("tcc_settle_duration_seconds_sum"): 62.5,
    # begin to end: 3.5 s and 62 s
    sample("tcc_transaction_duration_seconds_bucket", le="5"): 1,
    sample("tcc_transaction_duration_seconds_bucket", le="300"): 1,
    sample("tcc_transaction_duration_seconds_sum"): 65.5,
}, {
    (0, O1): (2, 1, 1, 2.5),
    (0, O2): (1, 1, 0, 0.0),
    (1, O1): (0, 1, 0, 0.0),
})

step("the final rows updated again, their status as it was", [
    "UPDATE tcc._gtx SET last_error = 'noted' WHERE gid IN %s" % SEL,
], {}, {})

step("a confirmed transaction resolved", [
    "UPDATE tcc._gtx SET status = 'resolved' WHERE gid = '%s'" % G[1],
], {
    sample("tcc_transactions_total", "confirmed", A, owner=O1): -1,
    sample("tcc_transactions_total", "resolved", A, owner=O1): 1,
    sample("tcc_kept", "confirmed", owner=O1): -1,
    sample("tcc_kept", "resolved", owner=O1): 1,
    sample("tcc_settle_duration_seconds_bucket", le="2.5"): -1,
    sample("tcc_settle_duration_seconds_sum"): -2.5,
    sample("tcc_transaction_duration_seconds_bucket", le="5"): -1,
    sample("tcc_transaction_duration_seconds_sum"): -3.5,
}, {})

step("a final transaction inserted", [
    "INSERT INTO tcc._gtx (gid, owner, kind, parallel, created_at, deadline,"
    "                      status, finished_at)"
    " VALUES ('%s', %%(o2)s, %%(b)s, false, %%(t0)s, %%(t0)s,"
    "         'confirmed', %%(t0)s + interval '5 s')" % G[4],
], {
    sample("tcc_kept", "confirmed", owner=O2): 1,
}, {
    (0, O2): (1, 1, 1, 0.0),
})

step("the four deleted", [
    "DELETE FROM tcc._decision WHERE gid IN %s" % SEL,
    "DELETE FROM tcc._gtx WHERE gid IN %s" % SEL,
], {
    sample("tcc_kept", "resolved", owner=O1): -2 + 1,
    sample("tcc_kept", "cancelled", owner=O1): -1,
    sample("tcc_kept", "resolved", owner=O2): -1,
    sample("tcc_kept", "confirmed", owner=O2): -1,
}, {})

CALL = ("INSERT INTO tcc._attempt (gid, branch, op, started_at, duration_ms,"
        "                          http_status, error)"
        " SELECT gen_random_uuid(), 1, op, %(t0)s, ms, st, NULL"
        "   FROM (VALUES ('confirm', 1.5, 200), ('cancel', 2.0, 409),"
        "                ('confirm', NULL, NULL), ('try', 4.0, 500),"
        "                ('try', 7.0, NULL), ('cancel', 9.0, 299))"
        "        AS v (op, ms, st)")
TRY = ("INSERT INTO tcc._try (gid, branch, started_at, duration_ms, http_status)"
       " SELECT gen_random_uuid(), 1, %(t0)s, ms, st"
       "   FROM (VALUES (5.0, 200), (400000.0, 201), (10.0, 409)) AS v (ms, st)")
step("calls of each op and outcome recorded", [CALL, TRY], {
    sample("tcc_calls_total", op="confirm", outcome="success"): 1,
    sample("tcc_calls_total", op="cancel", outcome="refused"): 1,
    sample("tcc_calls_total", op="confirm", outcome="no_answer"): 1,
    sample("tcc_calls_total", op="cancel", outcome="success"): 1,
    sample("tcc_calls_total", op="try", outcome="error"): 1,
    sample("tcc_calls_total", op="try", outcome="no_answer"): 1,
    sample("tcc_calls_total", op="try", outcome="success"): 2,
    sample("tcc_calls_total", op="try", outcome="refused"): 1,
    # tries only: 4 ms and 5 ms (a bound is inclusive), 7 ms and 10 ms,
    # 400 s
    sample("tcc_try_duration_seconds_bucket", le="0.005"): 2,
    sample("tcc_try_duration_seconds_bucket", le="0.01"): 2,
    sample("tcc_try_duration_seconds_bucket", le="+Inf"): 1,
    sample("tcc_try_duration_seconds_sum"): 400.026,
}, {})
q("DELETE FROM tcc._attempt WHERE started_at = %s", (T0,))
q("DELETE FROM tcc._try WHERE started_at = %s", (T0,))

done_testing()
