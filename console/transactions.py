"""console/transactions.py - what the transaction list and one transaction's
page show.

The list's query is built from the filter fields, as a parameterized query
on tcc.transaction_list with keyset paging; one transaction's page reads
its row, branches, calls and actions.  Both read as the logged-in role
through the functions the application passes in.
"""

import datetime

from flask import abort

from overview import STATUSES

# the final states: src/states.h's TCC_FINAL_STATES is their one list, and
# test/integration/t611_code_layout.py checks that this says the same
FINAL = ("confirmed", "cancelled", "resolved")


def parse_time(s):
    """A timestamp from a filter field, or None."""
    s = (s or "").strip()
    if not s:
        return None
    try:
        return datetime.datetime.fromisoformat(s)
    except ValueError:
        abort(400, "bad time: %s" % s)


def list_query(params, page_size):
    """(filters, sql, args): the list's query for the filter fields of
    params (a request's arguments), one row more than a page.

    Keyset paging on tcc.transaction_list (newest first): the next page
    starts after the (created_at, gid) of the last row shown, so each page
    is one index range scan, however deep it is."""
    f = {k: params.get(k, "").strip()
         for k in ("status", "kind", "business_key", "gid", "from", "to")}
    where, args = [], []
    if f["status"]:
        if f["status"] not in STATUSES:
            abort(400, "unknown status")
        where.append("status = %s")
        args.append(f["status"])
        if f["status"] not in FINAL:
            # exactly the transactions not final have no finished_at: this
            # lets the scan use the small index of open transactions
            where.append("finished_at IS NULL")
    if f["kind"]:
        where.append("kind = %s")
        args.append(f["kind"])
    if f["business_key"]:
        where.append("business_key = %s")
        args.append(f["business_key"])
    if f["gid"]:
        # a gid or its first hex digits: a range of the primary key
        digits = "".join(c for c in f["gid"].lower() if c in "0123456789abcdef")
        if not digits or len(digits) > 32:
            abort(400, "gid: give a gid or its first hex digits")
        where.append("gid BETWEEN %s::uuid AND %s::uuid")
        args += [digits.ljust(32, "0"), digits.ljust(32, "f")]
    t_from, t_to = parse_time(f["from"]), parse_time(f["to"])
    # as timestamptz: a comparison of created_at with a timestamp without
    # time zone is not leakproof, so it would stay outside the view and
    # every row of the other filters would be read
    if t_from:
        where.append("created_at >= %s::timestamptz")
        args.append(t_from)
    if t_to:
        where.append("created_at < %s::timestamptz")
        args.append(t_to)
    after = params.get("after", "")
    if after:
        try:
            at, gid = after.rsplit("|", 1)
        except ValueError:
            abort(400, "bad page mark")
        where.append("created_at <= %s::timestamptz"
                     " AND (created_at < %s::timestamptz OR gid < %s::uuid)")
        args += [at, at, gid]
    sql = ("SELECT gid, kind, business_key, status, owner, created_at,"
           "       finished_at, branches, attempts, last_error"
           "  FROM tcc.transaction_list"
           + (" WHERE " + " AND ".join(where) if where else "")
           # no ORDER BY here: the view's own order (newest first) is kept,
           # and only then does the LIMIT reach its index scan
           + " LIMIT %d" % (page_size + 1))
    return f, sql, args


def transaction_data(rows, try_rows, gid):
    """One transaction, its branches, calls and actions, read as the
    role with rows(sql, args) and try_rows (which gives the error instead
    of raising it); 404 if the role cannot see it."""
    tx = rows("SELECT * FROM tcc.transactions WHERE gid = %s", (gid,))
    if not tx:
        abort(404)
    tx = tx[0]
    branches = rows("SELECT * FROM tcc.branches WHERE gid = %s ORDER BY branch",
                    (gid,))
    calls = rows("SELECT branch, op, started_at, duration_ms, http_status, error"
                 "  FROM tcc.attempts WHERE gid = %s ORDER BY started_at, branch",
                 (gid,))
    actions, actions_err = try_rows(
        "SELECT action, actor, at, note, applied FROM tcc.actions"
        " WHERE gid = %s ORDER BY at", (gid,))
    # the timeline: each call a bar from its start, scaled to the span
    t0 = tx["created_at"]
    ends = [c["started_at"] + datetime.timedelta(milliseconds=c["duration_ms"] or 0)
            for c in calls]
    span = max([(e - t0).total_seconds() for e in ends] + [0.001])
    for c in calls:
        c["x"] = 100.0 * (c["started_at"] - t0).total_seconds() / span
        c["w"] = max(100.0 * (c["duration_ms"] or 0) / 1000.0 / span, 0.4)
        c["offset_ms"] = (c["started_at"] - t0).total_seconds() * 1000
    return {"tx": tx, "branches": branches, "calls": calls,
            "actions": actions, "actions_err": actions_err, "span": span,
            "final": tx["status"] in FINAL}
