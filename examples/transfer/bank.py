#!/usr/bin/python3
"""A bank's TCC participant service for the transfer example.

Serves POST /try, /confirm and /cancel for one bank database.  The payload
is {"account": <id>, "amount": "<decimal>"}.  Role a is the payer's bank,
role b the payee's:

  op        role a (money leaves)              role b (money arrives)
  try       balance -> frozen; 409 if the      frozen + amount; 409 if the
            account is missing or too poor     account is missing
  confirm   frozen - amount                    frozen -> balance
  cancel    frozen -> balance                  frozen - amount

Each request is handled in one local transaction that begins with
SELECT tcc_barrier(gid, branch, op), from the Tcc-Gid, Tcc-Branch and
Tcc-Op headers.  When the barrier answers false (a repeated delivery, a
cancel whose try never ran, or a try that arrives after its cancel) the
business action is skipped and the answer is 200 all the same.

Run with Debian's python3 (it has psycopg2):
  /usr/bin/python3 bank.py --port 18201 --role a \\
      --dsn "host=127.0.0.1 port=25399 dbname=bank1 user=postgres"

  /usr/bin/python3 bank.py --stop --pidfile FILE
      stops the service started with --pidfile FILE, and returns once it
      has exited
"""

import argparse
import decimal
import http.server
import json
import os
import signal
import sys
import time
import uuid

import psycopg2
import psycopg2.pool

# The business action of each role and operation.  Each UPDATE returns the
# account's new balance and frozen amount; no row means refused.
ACTIONS = {
    ("a", "try"): """
        UPDATE accounts SET balance = balance - %(amount)s,
                            frozen = frozen + %(amount)s
         WHERE id = %(account)s AND balance >= %(amount)s
        RETURNING balance, frozen""",
    ("a", "confirm"): """
        UPDATE accounts SET frozen = frozen - %(amount)s
         WHERE id = %(account)s
        RETURNING balance, frozen""",
    ("a", "cancel"): """
        UPDATE accounts SET balance = balance + %(amount)s,
                            frozen = frozen - %(amount)s
         WHERE id = %(account)s
        RETURNING balance, frozen""",
    ("b", "try"): """
        UPDATE accounts SET frozen = frozen + %(amount)s
         WHERE id = %(account)s
        RETURNING balance, frozen""",
    ("b", "confirm"): """
        UPDATE accounts SET balance = balance + %(amount)s,
                            frozen = frozen - %(amount)s
         WHERE id = %(account)s
        RETURNING balance, frozen""",
    ("b", "cancel"): """
        UPDATE accounts SET frozen = frozen - %(amount)s
         WHERE id = %(account)s
        RETURNING balance, frozen""",
}

OPS = ("try", "confirm", "cancel")


class BadRequest(Exception):
    """The request cannot be handled as sent (answered 400)."""


def log(msg):
    """One line on stdout, with the time."""
    sys.stdout.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def parse_request(headers, path, body):
    """The barrier arguments and the payload of a request, checked."""
    op = path.strip("/")
    if op not in OPS:
        raise BadRequest("unknown path %s" % path)
    if headers.get("Tcc-Op") != op:
        raise BadRequest("Tcc-Op %r does not match the path %s"
                         % (headers.get("Tcc-Op"), path))
    try:
        gid = str(uuid.UUID(headers.get("Tcc-Gid", "")))
        branch = int(headers.get("Tcc-Branch", ""))
    except ValueError:
        raise BadRequest("Tcc-Gid and Tcc-Branch are required")
    try:
        payload = json.loads(body)
        account = int(payload["account"])
        amount = decimal.Decimal(str(payload["amount"]))
    except (ValueError, KeyError, TypeError, decimal.InvalidOperation):
        raise BadRequest('payload must be {"account": id, "amount": "1.00"}')
    if not amount.is_finite() or amount <= 0:
        raise BadRequest("amount must be positive")
    return op, gid, branch, {"account": account, "amount": amount}


class Bank:
    """The bank's database and the role it plays in a transfer."""

    def __init__(self, dsn, role):
        self.role = role
        self.pool = psycopg2.pool.ThreadedConnectionPool(1, 16, dsn)

    def handle(self, op, gid, branch, args):
        """Run one operation in one local transaction: (status, answer)."""
        conn = self.pool.getconn()
        broken = False
        try:
            with conn:  # commits, or rolls back on an exception
                with conn.cursor() as cur:
                    cur.execute("SELECT tcc_barrier(%s, %s, %s)",
                                (gid, branch, op))
                    if not cur.fetchone()[0]:
                        return 200, {"skipped": True}
                    cur.execute(ACTIONS[(self.role, op)], args)
                    row = cur.fetchone()
                    if row is None and op == "try":
                        # refused: roll the barrier row back with it, so
                        # that the refusal is not remembered as a try
                        conn.rollback()
                        return 409, {"refused": "no such account"
                                     if self.role == "b"
                                     else "no such account or not enough"
                                     " money"}
                    if row is None:
                        raise psycopg2.DataError("account %s does not exist"
                                                 % args["account"])
                    return 200, {"account": args["account"],
                                 "balance": str(row[0]),
                                 "frozen": str(row[1])}
        except psycopg2.OperationalError:
            broken = True
            raise
        finally:
            self.pool.putconn(conn, close=broken or conn.closed != 0)


class Handler(http.server.BaseHTTPRequestHandler):
    """One participant request: POST /try, /confirm or /cancel."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms stall between header and body
    server_version = "bank"

    def do_POST(self):
        """Handle a try, confirm or cancel."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            op, gid, branch, args = parse_request(self.headers, self.path,
                                                  body)
            status, answer = self.server.bank.handle(op, gid, branch, args)
            log("%-7s gid %s branch %d account %d amount %s: %d %s"
                % (op, gid, branch, args["account"], args["amount"], status,
                   json.dumps(answer)))
        except BadRequest as e:
            status, answer = 400, {"error": str(e)}
            log("%s: 400 %s" % (self.path, e))
        except psycopg2.Error as e:
            status, answer = 500, {"error": str(e).strip()}
            log("%s: 500 %s" % (self.path, str(e).strip()))
        self.answer(status, answer)

    def do_GET(self):
        """Anything else is not found."""
        self.answer(404, {"error": "POST /try, /confirm or /cancel"})

    def answer(self, status, obj):
        """Send a JSON answer (the connection stays open)."""
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        """Requests are logged by do_POST."""


def serve(args):
    """Run the service until SIGTERM or SIGINT."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port),
                                             Handler)
    server.daemon_threads = True
    server.bank = Bank(args.dsn, args.role)
    # Stop at once, as a crashed service would: open connections close and
    # unfinished local transactions roll back in the bank's database.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pidfile + ".tmp", args.pidfile)
    log("bank (role %s) listening on 127.0.0.1:%d" % (args.role, args.port))
    server.serve_forever()


def running(pid):
    """True while process pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def stop(pidfile):
    """Stop the service that wrote pidfile; return once it has exited."""
    try:
        with open(pidfile) as f:
            pid = int(f.read())
    except FileNotFoundError:
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while running(pid):
        if time.monotonic() > deadline:
            sys.stderr.write("bank.py: process %d did not stop\n" % pid)
            return 1
        time.sleep(0.02)
    os.unlink(pidfile)
    return 0


def main():
    p = argparse.ArgumentParser(description="A bank's TCC participant"
                                " service (examples/transfer).")
    p.add_argument("--port", type=int, help="port on 127.0.0.1")
    p.add_argument("--dsn", help="the bank's database (libpq connection"
                   " string)")
    p.add_argument("--role", choices=("a", "b"),
                   help="a: money leaves this bank; b: money arrives")
    p.add_argument("--pidfile", help="write the pid here once listening")
    p.add_argument("--stop", action="store_true",
                   help="stop the service that wrote --pidfile")
    args = p.parse_args()
    if args.stop:
        if not args.pidfile:
            p.error("--stop needs --pidfile")
        return stop(args.pidfile)
    if args.port is None or args.dsn is None or args.role is None:
        p.error("--port, --dsn and --role are required")
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
