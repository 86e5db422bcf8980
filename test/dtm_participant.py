#!/usr/bin/python3
"""A bank written for DTM's HTTP TCC protocol, for tests of protocol 'dtm'.

It knows nothing of tcc: it reads the transaction from DTM's query
parameters (gid, trans_type, branch_id, op), never from the Tcc-* headers,
and answers as a DTM participant does: 200 {"dtm_result":"SUCCESS"}, or 409
{"dtm_result":"FAILURE"} when a try is refused.  Its barrier follows DTM's
rules, keyed on (gid, branch_id, op):

  try      a row (gid, branch_id, try); already there: skip (duplicate,
           or hanging: the cancel came first and took the place)
  confirm  a row (gid, branch_id, confirm); already there: skip (duplicate)
  cancel   a row (gid, branch_id, try) first: if that succeeds the try never
           ran (empty rollback): skip; then (gid, branch_id, cancel);
           already there: skip (duplicate)

The barrier rows and the business action commit in one local transaction.

Routes: POST /bank1/{try,confirm,cancel} (money leaves account 1 .. n of
schema <schema>1: balance -> frozen on try) and /bank2/... (money arrives:
frozen + amount on try; 409 FAILURE if the account does not exist).  The
payload is {"account": id, "amount": "1.00"}.  Test hooks, per path in
table <schema>.hooks: delay_ms (sleep before handling), ongoing (answer 425
{"dtm_result":"ONGOING"} after the work committed, that many times).  Every
request is recorded in <schema>.requests.

  /usr/bin/python3 test/dtm_participant.py --port P --schema S --dsn DSN
"""

import argparse
import decimal
import http.server
import json
import os
import signal
import sys
import time
import urllib.parse

import psycopg2
import psycopg2.pool

SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.accounts (
    bank int, id int, balance numeric(12,2) NOT NULL, frozen numeric(12,2) NOT NULL,
    PRIMARY KEY (bank, id));
CREATE TABLE IF NOT EXISTS {s}.barrier (
    gid text, branch_id text, op text, reason text,
    PRIMARY KEY (gid, branch_id, op));
CREATE TABLE IF NOT EXISTS {s}.hooks (
    path text PRIMARY KEY, delay_ms int NOT NULL DEFAULT 0,
    ongoing int NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS {s}.requests (
    id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(),
    path text, query text, gid text, branch_id text, op text,
    tcc_gid text, status int, acted boolean);
"""

# (bank, op): the business action; no row returned means refused
ACTIONS = {
    (1, "try"): "UPDATE {s}.accounts SET balance = balance - %(amount)s,"
                " frozen = frozen + %(amount)s WHERE bank = 1 AND id ="
                " %(account)s AND balance >= %(amount)s RETURNING balance",
    (1, "confirm"): "UPDATE {s}.accounts SET frozen = frozen - %(amount)s"
                    " WHERE bank = 1 AND id = %(account)s RETURNING balance",
    (1, "cancel"): "UPDATE {s}.accounts SET balance = balance + %(amount)s,"
                   " frozen = frozen - %(amount)s WHERE bank = 1 AND id ="
                   " %(account)s RETURNING balance",
    (2, "try"): "UPDATE {s}.accounts SET frozen = frozen + %(amount)s"
                " WHERE bank = 2 AND id = %(account)s RETURNING balance",
    (2, "confirm"): "UPDATE {s}.accounts SET balance = balance + %(amount)s,"
                    " frozen = frozen - %(amount)s WHERE bank = 2 AND id ="
                    " %(account)s RETURNING balance",
    (2, "cancel"): "UPDATE {s}.accounts SET frozen = frozen - %(amount)s"
                   " WHERE bank = 2 AND id = %(account)s RETURNING balance",
}

SUCCESS = {"dtm_result": "SUCCESS"}
FAILURE = {"dtm_result": "FAILURE"}
ONGOING = {"dtm_result": "ONGOING"}


def barrier_insert(cur, s, gid, branch_id, op, reason):
    """DTM's insert-or-ignore of one barrier row: 1 if it was new."""
    cur.execute("INSERT INTO %s.barrier VALUES (%%s, %%s, %%s, %%s)"
                " ON CONFLICT DO NOTHING" % s, (gid, branch_id, op, reason))
    return cur.rowcount


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        srv = self.server
        s = srv.schema
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        one = {k: v[0] for k, v in query.items()}
        parts = url.path.strip("/").split("/")
        conn = srv.pool.getconn()
        status, answer, acted = 400, {"error": "bad request"}, False
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT delay_ms FROM %s.hooks WHERE path = %%s"
                            % s, (url.path,))
                row = cur.fetchone()
            if row and row[0] > 0:
                time.sleep(row[0] / 1000.0)
            op = one.get("op")
            if (len(parts) == 2 and parts[0] in ("bank1", "bank2")
                    and parts[1] == op and one.get("trans_type") == "tcc"
                    and one.get("gid") and one.get("branch_id")):
                status, answer, acted = self.operate(conn, int(parts[0][-1]),
                                                    one, body)
            with conn.cursor() as cur:
                if status == 200:
                    cur.execute("UPDATE %s.hooks SET ongoing = ongoing - 1"
                                " WHERE path = %%s AND ongoing > 0"
                                " RETURNING 1" % s, (url.path,))
                    if cur.fetchone():
                        status, answer = 425, ONGOING
                cur.execute(
                    "INSERT INTO %s.requests (path, query, gid, branch_id,"
                    " op, tcc_gid, status, acted) VALUES (%%s, %%s, %%s,"
                    " %%s, %%s, %%s, %%s, %%s)" % s,
                    (url.path, url.query, one.get("gid"),
                     one.get("branch_id"), one.get("op"),
                     self.headers.get("Tcc-Gid"), status, acted))
        except psycopg2.Error as e:
            status, answer = 500, {"error": str(e).strip()}
        finally:
            srv.pool.putconn(conn)
        data = (json.dumps(answer) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass                # the caller gave up waiting (a timeout)

    def operate(self, conn, bank, q, body):
        """One operation in one local transaction: (status, answer, acted)."""
        s = self.server.schema
        gid, branch_id, op = q["gid"], q["branch_id"], q["op"]
        try:
            payload = json.loads(body)
            args = {"account": int(payload["account"]),
                    "amount": decimal.Decimal(str(payload["amount"]))}
        except (ValueError, KeyError, TypeError, decimal.InvalidOperation):
            return 400, {"error": "bad payload"}, False
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                if op == "cancel":
                    origin = barrier_insert(cur, s, gid, branch_id, "try",
                                            "cancel")
                    current = barrier_insert(cur, s, gid, branch_id,
                                             "cancel", "cancel")
                    skip = origin > 0 or current == 0
                else:
                    skip = barrier_insert(cur, s, gid, branch_id, op,
                                          op) == 0
                if skip:
                    conn.commit()
                    return 200, SUCCESS, False
                cur.execute(ACTIONS[(bank, op)].format(s=s), args)
                if cur.fetchone() is None:
                    conn.rollback()
                    if op == "try":
                        return 409, FAILURE, False
                    return 500, {"error": "no such account"}, False
            conn.commit()
            return 200, SUCCESS, True
        finally:
            if not conn.closed:
                conn.rollback()
                conn.autocommit = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--schema", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--pidfile")
    args = ap.parse_args()
    conn = psycopg2.connect(args.dsn)
    with conn, conn.cursor() as cur:
        cur.execute(SCHEMA_SQL.format(s=args.schema))
    conn.close()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port),
                                             Handler)
    server.daemon_threads = True
    server.schema = args.schema
    server.pool = psycopg2.pool.ThreadedConnectionPool(1, 16, args.dsn)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pidfile + ".tmp", args.pidfile)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
