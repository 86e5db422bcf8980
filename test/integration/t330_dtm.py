#!/usr/bin/python3
# Participants written for DTM's HTTP TCC protocol (docs/protocol.md, 1.1,
# protocol => 'dtm').  test/dtm_participant.py is such a bank: it reads the
# transaction only from DTM's query parameters and keeps DTM's barrier.
#
#   the transfer example's scenarios against it: success (confirmed), a
#   refused try (TC001, cancelled; (1.2) the refused branch is cancelled too,
#   an empty rollback at its barrier, as DTM's server does), a transaction
#   left undecided (cancelled at its deadline); the balances are exact each
#   time
#   every call carries gid, trans_type=tcc, branch_id (two digits) and op
#   appended to the URL's own query, and the Tcc-* headers as well
#   DTM's answers: 409 or a body with FAILURE refuses a try (TC001), a body
#   with ONGOING is unknown (TC002); a confirm answered 425 / ONGOING is
#   retried, and the participant's barrier skips the duplicate
#   empty rollback and hanging: a try slower than tcc.request_timeout is
#   cancelled before it is handled; the bank's barrier makes the cancel an
#   empty rollback and the late try a no-op
#   tcc_branches with "protocol": "dtm", and the protocol stored per branch
#   for the worker's confirm and cancel

import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (connect, error_of, message, pgcode, run,  # noqa: E402
                      run1, wait_final)
from tcclib import (done_testing, is_, like, ok, q, q1,  # noqa: E402
                    tp_rule, tp_url, wait_until)

import json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PARTICIPANT = os.path.join(HERE, "..", "dtm_participant.py")
S = "t330"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


PORT = free_port()
BASE = "http://127.0.0.1:%d" % PORT
proc = subprocess.Popen(["/usr/bin/python3", PARTICIPANT, "--port", str(PORT),
                         "--schema", S, "--dsn", ""],
                        stdin=subprocess.DEVNULL)


def listening():
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
        return True
    except OSError:
        return False


try:
    ok(wait_until(listening, 20), "the DTM bank listens")
    q("TRUNCATE %s.accounts, %s.barrier, %s.hooks, %s.requests" % (S, S, S, S))
    q("INSERT INTO %s.accounts VALUES (1, 1, 1000, 0), (2, 2, 0, 0)" % S)

    def balances():
        return [tuple(str(v) for v in r) for r in
                q("SELECT balance, frozen FROM %s.accounts ORDER BY bank" % S)]

    def urls(bank):
        # the URL's own query is kept; DTM's parameters are appended
        return ("%s/bank%d/try?x=1" % (BASE, bank),
                "%s/bank%d/confirm" % (BASE, bank),
                "%s/bank%d/cancel" % (BASE, bank))

    def requests(gid, bank=None):
        rows = q("SELECT path, query, op, branch_id, tcc_gid, status, acted"
                 " FROM %s.requests WHERE gid = %%s ORDER BY id" % S,
                 (str(gid),))
        keys = ("path", "query", "op", "branch_id", "tcc_gid", "status",
                "acted")
        out = [dict(zip(keys, r)) for r in rows]
        if bank is not None:
            out = [r for r in out if r["path"].startswith("/bank%d/" % bank)]
        return out

    def transfer(key, to, amount="10.00", timeout="1 min", finish=True):
        """The example's initiator, with protocol => 'dtm': (gid, error)."""
        conn = connect(autocommit=True)
        run(conn, "BEGIN")
        gid = run1(conn, "SELECT tcc_begin(%s, 'transfer', %s)",
                   (timeout, key))
        err = None
        for bank, account in ((1, 1), (2, to)):
            err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s, %s,"
                           " protocol => 'dtm')", (gid,) + urls(bank) + (
                               json.dumps({"account": account,
                                           "amount": amount}),))
            if err is not None:
                break
        if err is None and finish:
            run(conn, "SELECT tcc_finish(%s)", (gid,))
        run(conn, "ROLLBACK" if err is not None else "COMMIT")
        conn.close()
        return gid, err

    # ---- 1. success
    gid, err = transfer("dtm-1", 2)
    is_(err, None, "1: both tries succeed")
    is_(wait_final(gid), "confirmed", "1: confirmed")
    is_(balances(), [("990.00", "0.00"), ("10.00", "0.00")],
        "1: A has 990.00, B 10.00, nothing frozen")
    reqs = requests(gid)
    is_(sorted((r["path"], r["branch_id"]) for r in reqs),
        [("/bank1/confirm", "01"), ("/bank1/try", "01"),
         ("/bank2/confirm", "02"), ("/bank2/try", "02")],
        "1: branch_id is two digits, 01 = first")
    tries = [r for r in reqs if r["op"] == "try"]
    is_([r["query"] for r in tries],
        ["x=1&gid=%s&trans_type=tcc&branch_id=01&op=try" % gid,
         "x=1&gid=%s&trans_type=tcc&branch_id=02&op=try" % gid],
        "1: DTM's parameters follow the URL's own query")
    ok(all(r["tcc_gid"] == str(gid) for r in reqs),
       "1: the Tcc-* headers are sent as well")
    is_(q1("SELECT string_agg(DISTINCT protocol, ',') FROM tcc._branch"
           " WHERE gid = %s", (gid,)), "dtm", "1: the protocol is stored")

    # ---- 2. refused: account 3 does not exist at bank2
    gid, err = transfer("dtm-2", 3)
    is_(pgcode(err), "TC001", "2: bank2's 409 FAILURE raises TC001")
    is_(wait_final(gid), "cancelled", "2: cancelled")
    is_(balances(), [("990.00", "0.00"), ("10.00", "0.00")],
        "2: A's money came back")
    is_([(r["op"], r["acted"]) for r in requests(gid, 1)],
        [("try", True), ("cancel", True)], "2: bank1 tried and cancelled")
    # as DTM's server does (1.2, docs/states.md#phase-two): the refused
    # branch is cancelled too, and the barrier makes that an empty rollback
    is_([(r["op"], r["acted"]) for r in requests(gid, 2)],
        [("try", False), ("cancel", False)],
        "2: the refused bank2 gets a cancel, an empty rollback at its barrier")

    # ---- 3. undecided: cancelled at its deadline
    gid, err = transfer("dtm-3", 2, timeout="2 s", finish=False)
    is_(err, None, "3: both tries succeed, no decision")
    is_(balances(), [("980.00", "10.00"), ("10.00", "10.00")],
        "3: the money is frozen")
    is_(wait_final(gid, 15), "cancelled", "3: cancelled at the deadline")
    is_(balances(), [("990.00", "0.00"), ("10.00", "0.00")],
        "3: nothing moved")

    # ---- 4. tcc_branches with "protocol": "dtm"; a confirm answered
    # ONGOING after its work is retried, the barrier skips the duplicate
    q("INSERT INTO %s.hooks (path, ongoing) VALUES ('/bank2/confirm', 1)" % S)
    b = []
    for bank, account in ((1, 1), (2, 2)):
        t, c, x = urls(bank)
        b.append({"try": t, "confirm": c, "cancel": x, "protocol": "dtm",
                  "payload": {"account": account, "amount": "5.00"}})
    gid = q1("SELECT gid FROM tcc_run(%s)", (json.dumps(b),))
    is_(wait_final(gid), "confirmed", "4: tcc_run with dtm branches confirmed")
    is_([(r["op"], r["status"], r["acted"]) for r in requests(gid, 2)],
        [("try", 200, True), ("confirm", 425, True),
         ("confirm", 200, False)],
        "4: the confirm answered ONGOING is sent again and skipped")
    is_(balances(), [("985.00", "0.00"), ("15.00", "0.00")],
        "4: B credited once")

    # ---- 5. empty rollback and hanging
    q("INSERT INTO %s.hooks (path, delay_ms) VALUES ('/bank2/try', 1500)" % S)
    conn = connect(autocommit=True)
    run(conn, "SET tcc.request_timeout = '300ms'")
    run(conn, "BEGIN")
    gid = run1(conn, "SELECT tcc_begin('1 min')")
    t, c, x = urls(2)
    err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s, %s,"
                   " protocol => 'dtm')", (gid, t, c, x,
                                           '{"account": 2, "amount": "7"}'))
    run(conn, "ROLLBACK")
    conn.close()
    is_(pgcode(err), "TC002", "5: the slow try's outcome is unknown")
    is_(wait_final(gid), "cancelled", "5: cancelled")
    ok(wait_until(lambda: len(requests(gid)) == 2, 10),
       "5: the late try reached the bank too")
    is_([(r["op"], r["acted"]) for r in requests(gid)],
        [("cancel", False), ("try", False)],
        "5: the cancel came first (empty rollback), the try after it"
        " did nothing (hanging)")
    is_(balances(), [("985.00", "0.00"), ("15.00", "0.00")],
        "5: nothing frozen or moved")

    # ---- DTM's answers in the body (the scripted test participant)
    tp_rule("/t330/fail/try", status=200, body='{"dtm_result":"FAILURE"}')
    tp_rule("/t330/ongoing/try", status=200, body='{"dtm_result":"ONGOING"}')
    for path, want, proto in (("/t330/fail", "TC001", "dtm"),
                              ("/t330/ongoing", "TC002", "dtm"),
                              ("/t330/fail", None, "tcc")):
        conn = connect(autocommit=True)
        gid = run1(conn, "SELECT tcc_begin('1 min')")
        err = error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s,"
                       " protocol => %s)", (gid, tp_url(path + "/try"),
                                            tp_url(path + "/confirm"),
                                            tp_url(path + "/cancel"), proto))
        is_(pgcode(err), want, "%s: a 200 answer %s is %s"
            % (proto, path.split("/")[-1], want or "a success"))
        if want == "TC001":
            like(message(err), r"refused", "dtm: FAILURE is a refusal")
        run(conn, "SELECT tcc_finish(%s, false)", (gid,))
        conn.close()
finally:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

done_testing()
