#!/usr/bin/python3
"""Test participant for tcc: an HTTP server scripted from SQL.

Every request is recorded in tp.requests (committed before the answer is
sent) and answered according to tp.rules, looked up by the exact request
path without its query string.  The schema lives in test/participant.sql,
which this program runs at start (it is idempotent).

  rule column   effect
  status        status code answered (no rule: 200); 0 closes the connection
                without answering
  body          response body (no rule: {"ok":true})
  delay_ms      sleep this long before answering (the request is already
                recorded)
  retry_after   sent as a Retry-After header when not NULL
  fail_next     while > 0, answer fail_status instead and decrement it
  content_type  Content-Type of the answer

NOTIFY tp_control, 'down' closes the listening socket and breaks the open
connections, so kept-alive ones fail too and new connections
are refused; 'up' listens again on the same port.  tp.state.down shows which
is in force once done.  SIGTERM or SIGINT stops the server cleanly.

Run with Debian's python3 (psycopg2):
  /usr/bin/python3 test/participant.py --port 18080 \
      --dsn "host=127.0.0.1 port=25329 dbname=tcc_test user=postgres"
"""

import argparse
import http.server
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import uuid

import psycopg2
import psycopg2.errors

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_FILE = os.path.join(HERE, "participant.sql")

# How long a request waits for the database to come back (e.g. during a
# cluster restart in a test) before it is answered 500 unrecorded.
DB_RETRY_SECONDS = 30.0
POOL_SIZE = 16  # database connections the handler threads share (Database)

# Largest request body read into memory; larger bodies are drained.
MAX_BODY = 64 * 1024 * 1024

RULE_SQL = """
WITH failing AS (
    UPDATE tp.rules SET fail_next = fail_next - 1
     WHERE path = %(path)s AND fail_next > 0
    RETURNING path, fail_status
)
SELECT r.status, r.body, r.delay_ms, r.retry_after, r.content_type,
       f.fail_status
  FROM tp.rules r LEFT JOIN failing f USING (path)
 WHERE r.path = %(path)s
"""

RECORD_SQL = """
INSERT INTO tp.requests (method, path, headers, body, gid, branch, op, idem,
                         status)
VALUES (%(method)s, %(path)s, %(headers)s, %(body)s, %(gid)s, %(branch)s,
        %(op)s, %(idem)s, %(status)s)
"""

DEFAULT_BODY = '{"ok":true}'
FAIL_BODY = '{"error":"injected failure"}'


def log(msg):
    """Write one line to stderr, with a timestamp."""
    sys.stderr.write("%s participant: %s\n"
                     % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def clean_text(s):
    """Make a str storable in a text or jsonb column (no NUL)."""
    return s.replace("\x00", "\\u0000")


def parse_gid(value):
    """The Tcc-Gid header as a uuid string, or None."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None


def parse_branch(value):
    """The Tcc-Branch header as an int4, or None."""
    if value is None:
        return None
    try:
        n = int(value.strip(), 10)
    except ValueError:
        return None
    if -2**31 <= n < 2**31:
        return n
    return None


class Database:
    """Connections the handler threads share: POOL_SIZE, not one each."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.lock = threading.Lock()
        self.idle = []
        self.slots = threading.BoundedSemaphore(POOL_SIZE)

    def take(self):  # an idle connection, or a new one
        with self.lock:
            if self.idle:
                return self.idle.pop()
        conn = psycopg2.connect(self.dsn,
                                application_name="tcc test participant")
        conn.autocommit = True
        return conn

    def drop_all(self, conn):
        """Close conn and the idle ones (an outage broke them too)."""
        with self.lock:
            conns, self.idle = self.idle + ([conn] if conn else []), []
        for c in conns:
            try:
                c.close()
            except psycopg2.Error:
                pass

    def run(self, sql, params=None, fetch=False):
        """Run one statement, retrying on a lost connection for a while."""
        deadline = time.monotonic() + DB_RETRY_SECONDS
        while True:
            with self.slots:
                conn = None
                try:
                    conn = self.take()
                    with conn.cursor() as cur:
                        cur.execute(sql, params)
                        return cur.fetchone() if fetch else None
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                    self.drop_all(conn)
                    conn = None
                    if time.monotonic() > deadline:
                        raise
                    log("database unavailable, retrying: %s"
                        % str(e).strip().splitlines()[0:1])
                finally:
                    if conn is not None:
                        with self.lock:
                            self.idle.append(conn)
            time.sleep(0.1)


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers any method on any path from tp.rules and records it."""

    protocol_version = "HTTP/1.1"
    server_version = "tcc-test-participant/1.0"
    sys_version = ""

    def __getattr__(self, name):
        # BaseHTTPRequestHandler dispatches on do_<METHOD>: accept them all.
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    def log_message(self, format, *args):
        # Requests are recorded in tp.requests; keep stderr for errors.
        pass

    def read_body(self):
        """The request body as bytes (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        data = self.rfile.read(min(length, MAX_BODY))
        left = length - len(data)
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
        return data

    def read_chunked(self):
        """Read a chunked request body."""
        parts = []
        size = 0
        while True:
            line = self.rfile.readline(65537)
            if not line:
                break
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                break
            if n == 0:
                # trailers, up to the empty line
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunk = self.rfile.read(n)
            self.rfile.readline(65537)
            if size < MAX_BODY:
                parts.append(chunk)
                size += len(chunk)
        return b"".join(parts)

    def header_map(self):
        """Request headers as a dict, names as sent, repeats joined."""
        headers = {}
        for name, value in self.headers.items():
            name = clean_text(name)
            value = clean_text(value)
            if name in headers:
                headers[name] += ", " + value
            else:
                headers[name] = value
        return headers

    def request_path(self):
        """The request path without query string or fragment."""
        target = self.path
        if "://" in target.split("?", 1)[0]:
            # absolute-form: http://host:port/path
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return target.split("?", 1)[0].split("#", 1)[0]

    def handle_any(self):
        """Record the request, then answer it as its rule says."""
        db = self.server.db
        path = self.request_path()
        body = self.read_body()
        try:
            rule = db.run(RULE_SQL, {"path": path}, fetch=True)
        except psycopg2.Error as e:
            log("rule lookup failed: %s" % e)
            self.answer(500, '{"error":"participant database error"}',
                        "application/json", None)
            return
        if rule is None:
            status, text, delay_ms, retry_after, ctype = (
                200, DEFAULT_BODY, 0, None, "application/json")
        else:
            status, text, delay_ms, retry_after, ctype, fail_status = rule
            if fail_status is not None:
                status, text = fail_status, FAIL_BODY
        get = self.headers.get
        record = {
            "method": clean_text(self.command),
            "path": clean_text(path),
            "headers": json.dumps(self.header_map()),
            "body": clean_text(body.decode("utf-8", "backslashreplace")),
            "gid": parse_gid(get("Tcc-Gid")),
            "branch": parse_branch(get("Tcc-Branch")),
            "op": clean_text(get("Tcc-Op")) if get("Tcc-Op") else None,
            "idem": (clean_text(get("Idempotency-Key"))
                     if get("Idempotency-Key") else None),
            "status": status,
        }
        try:
            db.run(RECORD_SQL, record)
        except psycopg2.Error as e:
            log("recording failed: %s" % e)
            self.answer(500, '{"error":"participant database error"}',
                        "application/json", None)
            return
        if delay_ms and delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        if status == 0:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.answer(status, text, ctype, retry_after)

    def answer(self, status, text, ctype, retry_after):
        """Send one response with a correct Content-Length."""
        data = (text or "").encode("utf-8")
        if status in (204, 304) or 100 <= status < 200:
            data = b""
        self.send_response(status)
        if ctype and data:
            self.send_header("Content-Type", ctype)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)


class Server(http.server.ThreadingHTTPServer):
    """Threaded server: a thread per HTTP connection (the database
    connections are shared, Database)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, db):
        self.db = db
        self.open_conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request_thread(self, request, client_address):
        with self.conns_lock:
            self.open_conns.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conns_lock:
                self.open_conns.discard(request)

    def cut_connections(self):
        """Break every open connection, as an outage would."""
        with self.conns_lock:
            conns = list(self.open_conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Participant:
    """The listening socket, its serving thread and the control channel."""

    def __init__(self, port, dsn, pidfile):
        self.port = port
        self.dsn = dsn
        self.pidfile = pidfile
        self.db = Database(dsn)
        self.server = None
        self.thread = None
        self.control = None

    def setup_schema(self):
        """Create schema tp if needed and record the port and state."""
        with open(SCHEMA_FILE) as f:
            schema = f.read()
        conn = psycopg2.connect(self.dsn)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('tp'))")
                cur.execute(schema)
                cur.execute("DELETE FROM tp.config")
                cur.execute("INSERT INTO tp.config (port) VALUES (%s)",
                            (self.port,))
                cur.execute("UPDATE tp.state SET down = false")
        finally:
            conn.close()

    def up(self):
        """Listen on the port and serve in a thread."""
        if self.server is not None:
            return
        self.server = Server(("127.0.0.1", self.port), self.db)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def down(self):
        """Close the listening socket and break the open connections."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server.cut_connections()
        self.thread.join()
        self.server = None
        self.thread = None

    def connect_control(self):
        """Open the LISTEN connection, retrying while the database is away."""
        deadline = time.monotonic() + DB_RETRY_SECONDS
        while True:
            try:
                conn = psycopg2.connect(
                    self.dsn, application_name="tcc test participant control")
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("LISTEN tp_control")
                self.control = conn
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def set_state(self, down):
        """Acknowledge a control command in tp.state."""
        with self.control.cursor() as cur:
            cur.execute("UPDATE tp.state SET down = %s", (down,))

    def on_control(self, payload):
        """Apply one tp_control notification."""
        if payload == "down":
            self.down()
            self.set_state(True)
        elif payload == "up":
            self.up()
            self.set_state(False)
        else:
            log("unknown control payload %r" % payload)

    def run(self):
        """Serve until SIGTERM or SIGINT."""
        rfd, wfd = os.pipe()
        os.set_blocking(wfd, False)
        signal.set_wakeup_fd(wfd)
        stop = []

        def on_signal(signum, frame):
            stop.append(signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        self.setup_schema()
        self.up()
        self.connect_control()
        if self.pidfile:
            tmp = self.pidfile + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % os.getpid())
            os.rename(tmp, self.pidfile)
        print("ready", flush=True)

        try:
            while not stop:
                try:
                    ready, _, _ = select.select([self.control, rfd], [], [],
                                                1.0)
                    if rfd in ready:
                        os.read(rfd, 512)
                    if self.control in ready:
                        self.control.poll()
                        while self.control.notifies:
                            n = self.control.notifies.pop(0)
                            self.on_control(n.payload)
                except (psycopg2.OperationalError, psycopg2.InterfaceError,
                        ValueError) as e:
                    log("control connection lost (%s), reconnecting" % e)
                    try:
                        self.control.close()
                    except psycopg2.Error:
                        pass
                    self.connect_control()
        finally:
            self.down()
            try:
                self.control.close()
            except psycopg2.Error:
                pass
            if self.pidfile:
                try:
                    os.unlink(self.pidfile)
                except FileNotFoundError:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--dsn", required=True,
                    help="libpq connection string of the test database")
    ap.add_argument("--pidfile", help="written once listening")
    args = ap.parse_args()
    Participant(args.port, args.dsn, args.pidfile).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
