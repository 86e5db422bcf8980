#!/usr/bin/python3
# Private CAs and client certificates (docs/settings.md#tls,
# docs/protocol.md#transport), with a CA and certificates made by openssl
# here and HTTPS participants of the test's own:
#
#   mutual TLS     with tcc.ca_file, tcc.client_cert and tcc.client_key set,
#                  a participant that requires a client certificate gets
#                  the try (the caller's backend) and the confirm (the
#                  worker), both presenting tcc's certificate
#   refused        no client certificate, an expired client certificate, a
#                  CA file of another CA, the system's CAs, an expired
#                  participant certificate: the try fails (TC002), with
#                  TLS's reason in the message
#   unreadable     ALTER SYSTEM refuses a CA file the server cannot read,
#                  saying why; a file made unreadable before a reload is
#                  refused by the reload, the log saying why, and the value
#                  in force stays

import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import http.server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coordlib import (connect, error_of, message, pgcode,  # noqa: E402
                      system_settings, wait_final)
from tcclib import (done_testing, is_, like, log_since, log_size,  # noqa: E402
                    ok, q, q1, wait_until)

D = tempfile.mkdtemp(prefix="t813.", dir=os.environ.get("TCC_TEST_DIR"))
os.chmod(D, 0o755)


def openssl(*args):
    """Runs openssl in the test's directory."""
    subprocess.run(["openssl"] + list(args), cwd=D, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def key_and_csr(name, cn):
    """An EC key name.key and a request name.csr for common name cn."""
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + cn)


def ca(name):
    """A self-signed CA, name.pem and name.key, with its openssl ca files."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
            "-out", name + ".pem", "-days", "2", "-subj", "/CN=" + name)
    os.mkdir(os.path.join(D, name + ".db"))
    open(os.path.join(D, name + ".db", "index.txt"), "w").close()
    with open(os.path.join(D, name + ".db", "serial"), "w") as f:
        f.write("01\n")
    with open(os.path.join(D, name + ".cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %(db)s/index.txt\n"
                "new_certs_dir = %(db)s\nserial = %(db)s/serial\n"
                "default_md = sha256\npolicy = p\ncopy_extensions = copy\n"
                "unique_subject = no\n[p]\ncommonName = supplied\n"
                % {"db": os.path.join(D, name + ".db")})


def sign(ca_name, name, cn, start, end, san=None):
    """name.pem for cn, signed by ca_name, valid from start to end
    (YYYYMMDDHHMMSSZ), with subjectAltName san."""
    key_and_csr(name, cn)
    args = ["ca", "-batch", "-config", ca_name + ".cnf", "-cert",
            ca_name + ".pem", "-keyfile", ca_name + ".key", "-in",
            name + ".csr", "-out", name + ".pem", "-notext",
            "-startdate", start, "-enddate", end]
    if san:
        with open(os.path.join(D, name + ".ext"), "w") as f:
            f.write("[x]\nsubjectAltName = %s\n" % san)
        args += ["-extfile", name + ".ext", "-extensions", "x"]
    openssl(*args)


NOW, LATER = "20200101000000Z", "20991231000000Z"
ca("ca")
ca("other-ca")
sign("ca", "server", "127.0.0.1", NOW, LATER, "IP:127.0.0.1")
sign("ca", "old-server", "127.0.0.1", NOW, "20200102000000Z", "IP:127.0.0.1")
sign("ca", "client", "tcc-coordinator", NOW, LATER)
sign("ca", "old-client", "tcc-coordinator", NOW, "20200102000000Z")
for f in os.listdir(D):
    os.chmod(os.path.join(D, f), 0o644 if f.endswith((".pem", ".key")) else
             os.stat(os.path.join(D, f)).st_mode)


def path(name):
    return os.path.join(D, name)


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers 200 and notes the client certificate's common name."""

    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cert = self.connection.getpeercert() or {}
        cn = [v for rdn in cert.get("subject", ()) for k, v in rdn
              if k == "commonName"]
        Handler.seen.append((self.headers.get("Tcc-Op"), cn[0] if cn else None))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class Server(http.server.ThreadingHTTPServer):
    """An HTTPS server; failed handshakes are expected, not printed."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def https(cert, client_ca):
    """Serves Handler over TLS with cert; client_ca: require a client
    certificate of that CA.  Returns the server and its base URL."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(path(cert + ".pem"), path(cert + ".key"))
    if client_ca:
        ctx.load_verify_locations(path(client_ca + ".pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
    srv = Server(("127.0.0.1", 0), Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "https://127.0.0.1:%d" % srv.server_address[1]


mtls, MTLS = https("server", "ca")
old, OLD = https("old-server", None)


def try_at(base):
    """A try at base in a new session: None if it works, else the error."""
    conn = connect()
    try:
        gid = q1("SELECT tcc_begin('1 min')")
        return error_of(conn, "SELECT tcc_branch(%s, %s, %s, %s)",
                        (gid, base + "/try", base + "/confirm",
                         base + "/cancel"))
    finally:
        conn.close()


def refused(what, base, reason=None):
    """The try at base fails with TC002, never reaching the handler, and
    with a message matching reason (when tcc refused: a participant that
    refuses may just close the connection)."""
    before = len(Handler.seen)
    err = try_at(base)
    is_((pgcode(err), len(Handler.seen) - before), ("TC002", 0),
        "refused: %s: TC002, no request got through" % what)
    if reason:
        like(message(err), reason, "refused: %s: the message says why"
             % what)


try:
    # ---- mutual TLS: the try and the worker's confirm
    with system_settings(ca_file=path("ca.pem"),
                         client_cert=path("client.pem"),
                         client_key=path("client.key")):
        gid = q1("SELECT tcc_begin('1 min')")
        q("SELECT tcc_branch(%s, %s, %s, %s)",
          (gid, MTLS + "/try", MTLS + "/confirm", MTLS + "/cancel"))
        q("SELECT tcc_finish(%s)", (gid,))
        is_(wait_final(gid, 20), "confirmed",
            "mutual TLS: the transaction is confirmed")
        is_(Handler.seen, [("try", "tcc-coordinator"),
                           ("confirm", "tcc-coordinator")],
            "mutual TLS: try and confirm presented tcc's client certificate")
        refused("an expired participant certificate", OLD,
                r"certificate has expired")

    with system_settings(ca_file=path("ca.pem")):
        refused("no client certificate", MTLS)
    with system_settings(ca_file=path("ca.pem"),
                         client_cert=path("old-client.pem"),
                         client_key=path("old-client.key")):
        refused("an expired client certificate", MTLS)
    with system_settings(ca_file=path("other-ca.pem"),
                         client_cert=path("client.pem"),
                         client_key=path("client.key")):
        refused("the CA file of another CA", MTLS,
                r"SSL certificate problem|certificate verify")
    refused("the system's CAs", MTLS,
            r"SSL certificate problem|certificate verify")

    # ---- unreadable files
    shutil.copy(path("ca.pem"), path("locked.pem"))
    os.chmod(path("locked.pem"), 0o000)
    err = None
    try:
        q("ALTER SYSTEM SET tcc.ca_file = %s", (path("locked.pem"),))
    except Exception as e:      # noqa: BLE001 - the error is the result
        err = e
    is_(pgcode(err), "22023", "unreadable: ALTER SYSTEM refuses it: 22023")
    like(getattr(getattr(err, "diag", None), "message_detail", None),
         r"Could not open file .*locked\.pem.*: Permission denied",
         "unreadable: the detail names the file and the reason")

    shutil.copy(path("ca.pem"), path("later.pem"))
    os.chmod(path("later.pem"), 0o644)
    q("ALTER SYSTEM SET tcc.ca_file = %s", (path("later.pem"),))
    os.chmod(path("later.pem"), 0o000)
    at = log_size()
    q("SELECT pg_reload_conf()")
    ok(wait_until(lambda: "later.pem" in log_since(at) and
                  "Permission denied" in log_since(at), 10),
       "unreadable at reload: the log says which file and why")
    is_(q1("SHOW tcc.ca_file"), "",
        "unreadable at reload: the value in force stays")
finally:
    q("ALTER SYSTEM RESET tcc.ca_file")
    q("ALTER SYSTEM RESET tcc.client_cert")
    q("ALTER SYSTEM RESET tcc.client_key")
    q("SELECT pg_reload_conf()")
    mtls.shutdown()
    old.shutdown()
    shutil.rmtree(D, ignore_errors=True)

done_testing()
