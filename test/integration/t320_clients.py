#!/usr/bin/python3
# The transfer initiator from other languages (examples/clients/): Python
# with psycopg 3, Node.js with pg, Java with JDBC and Go with pgx v5 (a Go
# module: go.mod and go.sum pin pgx, fetched from the Go module proxy), each
# built and run against the test cluster, with the transfer example's banks
# (examples/transfer/bank.py) as participants.
#
# docs/api.md: tcc_begin, tcc_branch, the caller's own write and tcc_finish in
# one local transaction, confirmed at its COMMIT (docs/guarantees.md R2: the
# own write is there exactly when the transfer confirms); a refused try raises
# TC001 to the client's driver, the client rolls back (its own write is gone)
# and the transaction is cancelled (docs/states.md).

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from golib import go_command, go_env  # noqa: E402
from tcclib import (diag, done_testing, is_, ok, q, q1,  # noqa: E402
                    wait_until)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CLIENTS = os.path.join(ROOT, "examples", "clients")
TRANSFER = os.path.join(ROOT, "examples", "transfer")
PSQL = os.path.join(os.environ["TCC_PGBIN"], "psql")
BANKS = ("clients_bank1", "clients_bank2")

tmp = tempfile.mkdtemp(prefix="t320.", dir=os.environ.get("TCC_TEST_DIR"))
bank_procs = []


def free_ports(n):
    """n ports after TCC_TP_PORT that nothing listens on."""
    ports = []
    port = int(os.environ["TCC_TP_PORT"])
    while len(ports) < n:
        port += 1
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            ports.append(port)
    return ports


def psql(db, *args):
    """psql on database db of the test cluster; raise if it fails."""
    subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db] +
                   list(args), check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, cwd=TRANSFER)


def run(name, cmd, cwd, env=None, timeout=300):
    """Run a build or client command; (exit status, output, seconds)."""
    start = time.monotonic()
    try:
        res = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=timeout)
        rc, out = res.returncode, res.stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        rc, out = -1, str(e)
    secs = time.monotonic() - start
    if rc != 0:
        diag("%s: %s exited %s:\n%s" % (name, " ".join(cmd), rc, out))
    return rc, out, secs


def cleanup():
    """Stop the banks, drop their databases and the transfers table."""
    for p in bank_procs:
        p.terminate()
        p.wait()
    for db in BANKS:
        q("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
    q("DROP TABLE IF EXISTS transfers")
    shutil.rmtree(tmp, ignore_errors=True)


# ---- the banks of the transfer example, and the initiator's own table
for db in BANKS:
    q("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
    q("CREATE DATABASE %s" % db)
psql(BANKS[0], "-v", "id=1", "-v", "name=A", "-v", "balance=1000.00",
     "-f", "bank.sql")
psql(BANKS[1], "-v", "id=2", "-v", "name=B", "-v", "balance=0.00",
     "-f", "bank.sql")
q("DROP TABLE IF EXISTS transfers")
psql(os.environ["PGDATABASE"], "-f", os.path.join(CLIENTS, "schema.sql"))

ports = free_ports(2)
for n, (db, role, port) in enumerate(zip(BANKS, "ab", ports), 1):
    pidfile = os.path.join(tmp, "bank%d.pid" % n)
    bank_procs.append(subprocess.Popen(
        ["/usr/bin/python3", os.path.join(TRANSFER, "bank.py"),
         "--port", str(port), "--role", role, "--pidfile", pidfile,
         "--dsn", "host=127.0.0.1 port=%s dbname=%s user=postgres"
         % (os.environ["PGPORT"], db)],
        stdin=subprocess.DEVNULL,
        stdout=open(os.path.join(tmp, "bank%d.log" % n), "w"),
        stderr=subprocess.STDOUT))
    if not wait_until(lambda: os.path.exists(pidfile), 15):
        cleanup()
        raise RuntimeError("bank%d's service did not start" % n)

env = dict(os.environ, BANK1_URL="http://127.0.0.1:%d" % ports[0],
           BANK2_URL="http://127.0.0.1:%d" % ports[1],
           HOME=tmp, npm_config_cache=os.path.join(tmp, "npm"))
go, why = go_command()
if go is None:
    diag("go: %s" % why)
else:
    env = go_env(go, env)

# ---- build each client (in a scratch copy), then run it
builds = {
    "python": [],
    "node": [["npm", "ci", "--no-audit", "--no-fund"]],
    "java": [["javac", "-d", "classes", "Transfer.java"]],
    "go": [[go or "go", "build", "-o", "transfer", "."]],
}
commands = {
    "python": ["/usr/bin/python3", "transfer.py"],
    "node": ["node", "transfer.js"],
    "java": ["java", "-cp", "classes:/usr/share/java/postgresql.jar",
             "Transfer"],
    "go": ["./transfer"],
}

try:
    for n, lang in enumerate(("python", "node", "java", "go"), 1):
        src = os.path.join(tmp, lang)
        shutil.copytree(os.path.join(CLIENTS, lang), src,
                        ignore=shutil.ignore_patterns("node_modules"))
        built = True
        secs = 0.0
        for cmd in builds[lang]:
            rc, _, s = run(lang, cmd, src, env)
            secs += s
            built = built and rc == 0
        if builds[lang]:
            ok(built, "%s: the client builds (%.0f s)" % (lang, secs))
        rc, out, secs = run(lang, commands[lang] + [lang], src, env, 120)
        is_((rc, out.splitlines()),
            (0, ["%s-1: confirmed" % lang, "%s-2: refused (TC001)" % lang]),
            "%s: the transfer is confirmed, the one to a missing account"
            " refused with TC001 (%.1f s)" % (lang, secs))

        status = dict(q("SELECT business_key, tcc_wait(gid, '10 s')"
                        " FROM tcc.transactions WHERE business_key IN"
                        " (%s, %s)", (lang + "-1", lang + "-2")))
        is_(status, {lang + "-1": "confirmed", lang + "-2": "cancelled"},
            "%s: in tcc.transactions the first is confirmed, the refused"
            " one cancelled" % lang)
        is_([r[0] for r in q("SELECT business_key FROM transfers"
                             " WHERE business_key LIKE %s ORDER BY 1",
                             (lang + "-%",))],
            [lang + "-1"],
            "%s: the client's own write is there for the confirmed transfer"
            " and not for the refused one" % lang)
        balances = (
            q1("SELECT balance || '/' || frozen FROM accounts WHERE id = 1",
               dbname=BANKS[0]),
            q1("SELECT balance || '/' || frozen FROM accounts WHERE id = 2",
               dbname=BANKS[1]))
        is_(balances, ("%.2f/0.00" % (1000 - 10 * n), "%.2f/0.00" % (10 * n)),
            "%s: A paid 10.00 once, B got it, nothing left frozen" % lang)
finally:
    cleanup()

done_testing()
